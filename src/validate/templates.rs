//! Templates and expressions: syntax, the variables they read, the data flow between steps,
//! and the lints about secrets in arguments and unquoted values in SQL.
//!
//! Templates are parsed with minijinja's own parser; the walk over its syntax tree finds each
//! variable reference with its span, which is then mapped back into the YAML scalar.

use std::collections::HashSet;

use minijinja::machinery::ast::{self, Expr, Stmt};
use minijinja::machinery::{self, Span as JSpan, WhitespaceConfig};
use minijinja::syntax::SyntaxConfig;

use crate::dag::{Dag, Scratch};
use crate::diagnostic::{Problem, list, suggestion};
use crate::model::{Action, Approval, RollbackKind, Run, Runbook, Scalar, Sp, Sql, StepKind};
use crate::yaml::{Span, scalar_offset};

/// Names a template can start from.
pub const ROOTS: &[&str] = &["params", "secrets", "steps", "run", "result"];
/// What `steps.<id>` holds once the step has run.
pub const STEP_ATTRS: &[&str] = &[
    "stdout",
    "stderr",
    "exit_code",
    "rows",
    "rows_affected",
    "result_sets",
    "messages",
    "outputs",
    "status",
    "attempts",
    "duration",
];
/// What `result` holds during `until` and `outputs`.
pub const RESULT_ATTRS: &[&str] = &[
    "stdout",
    "stderr",
    "exit_code",
    "rows",
    "rows_affected",
    "result_sets",
    "messages",
    "attempt",
];
/// What `run` holds.
pub const RUN_ATTRS: &[&str] = &["id", "dry_run", "started_at"];
/// Global functions of the template language.
const FUNCTIONS: &[&str] = &["range", "dict", "namespace", "debug"];

/// Where a template stands, which decides what it may read.
#[derive(Clone, Copy)]
struct Place {
    /// The step whose field this is; `None` for connections.
    owner: Option<usize>,
    /// `result` is readable (`until`, `outputs`).
    result: bool,
    /// The owner itself is readable (its rollback runs after it).
    own_step: bool,
    kind: Kind,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Text,
    Args,
    SqlQuery,
}

impl Place {
    const fn step(owner: usize) -> Self {
        Self {
            owner: Some(owner),
            result: false,
            own_step: false,
            kind: Kind::Text,
        }
    }

    const fn with(self, kind: Kind) -> Self {
        Self { kind, ..self }
    }

    const fn reading_result(self) -> Self {
        Self {
            result: true,
            ..self
        }
    }
}

pub fn check(runbook: &Runbook, dag: &Dag, source: &str, problems: &mut Vec<Problem>) {
    let mut checker = Checker {
        runbook,
        dag,
        source,
        problems,
        used_params: HashSet::new(),
        used_secrets: HashSet::new(),
        scratch: Scratch::default(),
        suggestions_left: super::graph::MAX_SUGGESTIONS,
        templates: crate::template::Templates::new(),
        known: std::collections::HashMap::new(),
    };
    checker.runbook_templates();
    let Checker {
        used_params,
        used_secrets,
        problems,
        ..
    } = checker;
    for param in runbook.params.values() {
        if !used_params.contains(param.name.as_str()) {
            problems.push(Problem::UnusedParam {
                name: param.name.value.clone(),
                span: param.name.span.into(),
            });
        }
    }
    for secret in runbook.secrets.values() {
        if !used_secrets.contains(secret.name.as_str()) {
            problems.push(Problem::UnusedSecret {
                name: secret.name.value.clone(),
                span: secret.name.span.into(),
            });
        }
    }
}

struct Checker<'a> {
    runbook: &'a Runbook,
    dag: &'a Dag,
    source: &'a str,
    problems: &'a mut Vec<Problem>,
    used_params: HashSet<&'a str>,
    used_secrets: HashSet<&'a str>,
    scratch: Scratch,
    /// Step-id suggestions compare against every step: bounded, as in `needs`.
    suggestions_left: usize,
    /// The environment that decides which filters and tests exist, and what it said.
    templates: crate::template::Templates,
    known: std::collections::HashMap<(String, bool), bool>,
}

/// A variable reference found in a template: `root.seg1.seg2…` with spans in the template.
struct Reference<'t> {
    root: &'t str,
    root_span: JSpan,
    segments: Vec<(String, JSpan)>,
}

/// What the walk over one template finds.
enum Finding<'t> {
    Reference(Reference<'t>),
    Hyphenated {
        first: String,
        id: String,
        written: String,
        span: JSpan,
    },
    UnquotedSql(JSpan),
    /// A filter (or test) by name, to be checked against the environment.
    Filter {
        name: &'t str,
        test: bool,
        span: JSpan,
    },
}

impl<'a> Checker<'a> {
    fn runbook_templates(&mut self) {
        let runbook = self.runbook;
        for connection in runbook.connections.values() {
            self.template(
                &connection.mssql,
                Place {
                    owner: None,
                    result: false,
                    own_step: false,
                    kind: Kind::Text,
                },
            );
        }
        for (i, step) in runbook.steps.iter().enumerate() {
            let place = Place::step(i);
            if let Some(when) = &step.when {
                self.expression(when, place);
            }
            if let Some(until) = &step.until {
                self.expression(until, place.reading_result());
            }
            for output in step.outputs.values() {
                self.template(output, place.reading_result());
            }
            for value in step.env.values() {
                self.template(value, place);
            }
            match &step.kind {
                StepKind::Run(run) => self.run(run, place),
                StepKind::Sql(sql) => self.sql(sql, place),
                StepKind::Wait(_) => {}
                StepKind::Assert(assert) => {
                    self.expression(&assert.that, place);
                    if let Some(message) = &assert.message {
                        self.template(message, place);
                    }
                }
                StepKind::Approval(approval) => self.approval(approval, place),
            }
            if let Some(action) = &step.rollback {
                self.action(
                    action,
                    Place {
                        own_step: true,
                        ..place
                    },
                );
            }
        }
    }

    fn action(&mut self, action: &'a Action, place: Place) {
        for value in action.env.values() {
            self.template(value, place);
        }
        match &action.kind {
            RollbackKind::Run(run) => self.run(run, place),
            RollbackKind::Sql(sql) => self.sql(sql, place),
            RollbackKind::Approval(approval) => self.approval(approval, place),
        }
    }

    fn approval(&mut self, approval: &'a Approval, place: Place) {
        self.template(&approval.prompt, place);
        if let Some(text) = &approval.instructions {
            self.template(text, place);
        }
    }

    fn run(&mut self, run: &'a Run, place: Place) {
        if let Some(program) = &run.program {
            self.template(program, place.with(Kind::Args));
        }
        for arg in &run.args {
            self.template(arg, place.with(Kind::Args));
        }
        if let Some(script) = &run.script {
            self.template(script, place);
        }
        if let Some(cwd) = &run.cwd {
            self.template(cwd, place);
        }
    }

    fn sql(&mut self, sql: &'a Sql, place: Place) {
        self.template(&sql.query, place.with(Kind::SqlQuery));
        for arg in &sql.args {
            if let Scalar::String(text) = &arg.value {
                self.template_text(text, arg.span, place);
            }
        }
        if let Some(database) = &sql.database {
            self.template(database, place);
        }
    }

    fn template(&mut self, text: &'a Sp<String>, place: Place) {
        self.template_text(&text.value, text.span, place);
    }

    fn template_text(&mut self, text: &'a str, span: Span, place: Place) {
        if !(text.contains("{{") || text.contains("{%") || text.contains("{#")) {
            return;
        }
        match machinery::parse(
            text,
            "<template>",
            SyntaxConfig,
            WhitespaceConfig::default(),
        ) {
            Ok(tree) => {
                let mut walk = Walk::new(place.kind == Kind::SqlQuery);
                walk.stmt(&tree);
                self.findings(walk.findings, text, span, place);
            }
            Err(err) => {
                let at = self.locate(text, span, err.range());
                let message = err.detail().unwrap_or("invalid template").to_owned();
                let help = if message.contains("unexpected end of input")
                    || message.contains("unclosed")
                {
                    "close every `{{` with `}}` and every `{%` with `%}`".to_owned()
                } else {
                    "templates use `{{ expression }}`; a literal `{{` is written `{{ '{{' }}`"
                        .to_owned()
                };
                self.problems.push(Problem::TemplateSyntax {
                    message,
                    span: at.into(),
                    help,
                });
            }
        }
    }

    fn expression(&mut self, text: &'a Sp<String>, place: Place) {
        match machinery::parse_expr(&text.value) {
            Ok(expr) => {
                let mut walk = Walk::new(false);
                walk.expr(&expr);
                self.findings(walk.findings, &text.value, text.span, place);
            }
            Err(err) => {
                let at = self.locate(&text.value, text.span, err.range());
                let trimmed = text.trim();
                let help = match trimmed.strip_prefix("{{").and_then(|t| t.strip_suffix("}}")) {
                    Some(inner) => format!(
                        "`when`, `until` and `assert` are bare expressions: write `{}` without the braces",
                        inner.trim()
                    ),
                    None => "`when`, `until` and `assert` are bare expressions, e.g. `result.exit_code == 0`".to_owned(),
                };
                self.problems.push(Problem::ExpressionSyntax {
                    message: err.detail().unwrap_or("invalid expression").to_owned(),
                    span: at.into(),
                    help,
                });
            }
        }
    }

    /// The file span of a byte range inside a scalar's value.
    fn locate(&self, text: &str, span: Span, range: Option<std::ops::Range<usize>>) -> Span {
        let range = range.unwrap_or(0..text.len());
        let start = scalar_offset(self.source, span, text, range.start);
        let end = scalar_offset(self.source, span, text, range.end.max(range.start));
        Span::new(start, end.saturating_sub(start))
    }

    fn at(&self, text: &str, span: Span, j: JSpan) -> Span {
        self.locate(
            text,
            span,
            Some(j.start_offset as usize..j.end_offset as usize),
        )
    }

    fn findings(&mut self, findings: Vec<Finding<'_>>, text: &str, span: Span, place: Place) {
        for finding in findings {
            match finding {
                Finding::Reference(r) => self.reference(&r, text, span, place),
                Finding::Hyphenated {
                    first,
                    id,
                    written,
                    span: j,
                } => {
                    let at = self.at(text, span, j);
                    self.problems.push(Problem::HyphenatedStepReference {
                        written,
                        id,
                        span: at.into(),
                        first,
                    });
                }
                Finding::UnquotedSql(j) => {
                    let at = self.at(text, span, j);
                    self.problems
                        .push(Problem::UnfilteredSqlTemplate { span: at.into() });
                }
                Finding::Filter {
                    name,
                    test,
                    span: j,
                } => {
                    let known = *self
                        .known
                        .entry((name.to_owned(), test))
                        .or_insert_with(|| self.templates.knows(name, test));
                    if !known {
                        let at = self.at(text, span, j);
                        let (kind, names) = if test {
                            ("test", crate::template::TESTS)
                        } else {
                            ("filter", crate::template::FILTERS)
                        };
                        let help = suggestion(name, names.iter().copied(), || {
                            format!("see the {kind}s in the README's template section")
                        });
                        self.problems.push(Problem::UnknownFilter {
                            kind,
                            name: name.to_owned(),
                            span: at.into(),
                            help,
                        });
                    }
                }
            }
        }
    }

    fn reference(&mut self, r: &Reference<'_>, text: &str, span: Span, place: Place) {
        let runbook = self.runbook;
        let first = r.segments.first();
        let seg_span = |k: usize| r.segments.get(k).map_or(r.root_span, |s| s.1);
        match r.root {
            "params" => match first {
                None => self
                    .used_params
                    .extend(runbook.params.keys().map(String::as_str)),
                Some((name, _)) => match runbook.params.get_key_value(name.as_str()) {
                    Some((key, _)) => {
                        self.used_params.insert(key.as_str());
                    }
                    None => {
                        let at = self.at(text, span, seg_span(0));
                        let names = runbook.params.keys().map(String::as_str);
                        let help = suggestion(name, names.clone(), || {
                            format!("declared params: {}", list(names))
                        });
                        self.problems.push(Problem::UnknownVariable {
                            name: format!("params.{name}"),
                            span: at.into(),
                            help,
                        });
                    }
                },
            },
            "secrets" => match first {
                None => self
                    .used_secrets
                    .extend(runbook.secrets.keys().map(String::as_str)),
                Some((name, _)) => match runbook.secrets.get_key_value(name.as_str()) {
                    Some((key, _)) => {
                        self.used_secrets.insert(key.as_str());
                        if place.kind == Kind::Args {
                            let at = self.at(text, span, seg_span(0));
                            self.problems.push(Problem::SecretInArgs {
                                name: name.clone(),
                                span: at.into(),
                            });
                        }
                    }
                    None => {
                        let at = self.at(text, span, seg_span(0));
                        let names = runbook.secrets.keys().map(String::as_str);
                        let help = suggestion(name, names.clone(), || {
                            format!("declared secrets: {}", list(names))
                        });
                        self.problems.push(Problem::UnknownVariable {
                            name: format!("secrets.{name}"),
                            span: at.into(),
                            help,
                        });
                    }
                },
            },
            "run" => {
                if let Some((name, _)) = first {
                    self.attribute("run", name, RUN_ATTRS, seg_span(0), text, span);
                }
            }
            "result" => {
                if !place.result {
                    let at = self.at(text, span, r.root_span);
                    self.problems
                        .push(Problem::ResultNotAvailable { span: at.into() });
                } else if let Some((name, _)) = first {
                    self.attribute("result", name, RESULT_ATTRS, seg_span(0), text, span);
                }
            }
            "steps" => {
                if let Some((id, _)) = first {
                    self.step_reference(r, id, text, span, place);
                }
            }
            other => {
                let at = self.at(text, span, r.root_span);
                let roots = ROOTS
                    .iter()
                    .copied()
                    .filter(|&n| n != "result" || place.result);
                let help = suggestion(other, roots.clone(), || {
                    format!(
                        "templates read {}; a literal text needs no braces",
                        list(roots)
                    )
                });
                self.problems.push(Problem::UnknownVariable {
                    name: other.to_owned(),
                    span: at.into(),
                    help,
                });
            }
        }
    }

    fn step_reference(
        &mut self,
        r: &Reference<'_>,
        id: &str,
        text: &str,
        span: Span,
        place: Place,
    ) {
        let runbook = self.runbook;
        let id_span = r.segments[0].1;
        let Some(target) = self.dag.index_of(id) else {
            let at = self.at(text, span, id_span);
            let budget = if self.suggestions_left > 0 {
                usize::MAX
            } else {
                0
            };
            self.suggestions_left = self.suggestions_left.saturating_sub(1);
            let ids = runbook.steps.iter().map(|s| s.id.as_str()).take(budget);
            let help = suggestion(id, ids, || {
                "check the spelling against the step ids".to_owned()
            });
            self.problems.push(Problem::UnknownStepReference {
                id: id.to_owned(),
                span: at.into(),
                help,
            });
            return;
        };
        if let Some(owner) = place.owner {
            let allowed = (place.own_step && target == owner)
                || self.dag.is_ancestor(target, owner, &mut self.scratch);
            if !allowed {
                let at = self.at(text, span, id_span);
                self.problems.push(Problem::NotAnAncestor {
                    step: runbook.steps[owner].id.value.clone(),
                    id: id.to_owned(),
                    span: at.into(),
                });
                return;
            }
        }
        let Some((attr, attr_span)) = r.segments.get(1) else {
            return;
        };
        let name = format!("steps.{id}");
        if !self.attribute(&name, attr, STEP_ATTRS, *attr_span, text, span) {
            return;
        }
        if attr == "outputs"
            && let Some((output, output_span)) = r.segments.get(2)
        {
            let outputs = &runbook.steps[target].outputs;
            if !outputs.contains_key(output.as_str()) {
                let at = self.at(text, span, *output_span);
                let names = outputs.keys().map(String::as_str);
                let help = suggestion(output, names.clone(), || {
                    format!("`{id}` declares outputs: {}", list(names))
                });
                self.problems.push(Problem::UnknownAttribute {
                    name: format!("{name}.outputs"),
                    attribute: output.clone(),
                    span: at.into(),
                    help,
                });
            }
        }
    }

    /// Checks `name.attr` against the known attributes; true when it is one.
    fn attribute(
        &mut self,
        name: &str,
        attr: &str,
        known: &[&str],
        j: JSpan,
        text: &str,
        span: Span,
    ) -> bool {
        if known.contains(&attr) {
            return true;
        }
        let at = self.at(text, span, j);
        let help = suggestion(attr, known.iter().copied(), || {
            format!("`{name}` has {}", list(known.iter().copied()))
        });
        self.problems.push(Problem::UnknownAttribute {
            name: name.to_owned(),
            attribute: attr.to_owned(),
            span: at.into(),
            help,
        });
        false
    }
}

/// A walk over one template's syntax tree, keeping track of names bound inside it.
struct Walk<'t> {
    locals: Vec<&'t str>,
    sql: bool,
    findings: Vec<Finding<'t>>,
}

impl<'t> Walk<'t> {
    fn new(sql: bool) -> Self {
        Self {
            locals: Vec::new(),
            sql,
            findings: Vec::new(),
        }
    }

    fn body(&mut self, body: &[Stmt<'t>]) {
        for stmt in body {
            self.stmt(stmt);
        }
    }

    fn bind(&mut self, target: &Expr<'t>) {
        match target {
            Expr::Var(v) => self.locals.push(v.id),
            Expr::List(l) => l.items.iter().for_each(|i| self.bind(i)),
            _ => {}
        }
    }

    fn stmt(&mut self, stmt: &Stmt<'t>) {
        match stmt {
            Stmt::Template(t) => self.body(&t.children),
            Stmt::EmitExpr(e) => {
                if self.sql
                    && !matches!(&e.expr, Expr::Filter(f) if f.name == "sql_ident" || f.name == "sql_literal")
                {
                    self.findings.push(Finding::UnquotedSql(e.span()));
                }
                self.expr(&e.expr);
            }
            Stmt::EmitRaw(_) => {}
            Stmt::ForLoop(f) => {
                self.expr(&f.iter);
                let mark = self.locals.len();
                self.bind(&f.target);
                self.locals.push("loop");
                if let Some(filter) = &f.filter_expr {
                    self.expr(filter);
                }
                self.body(&f.body);
                self.locals.truncate(mark);
                self.body(&f.else_body);
            }
            Stmt::IfCond(c) => {
                self.expr(&c.expr);
                self.body(&c.true_body);
                self.body(&c.false_body);
            }
            Stmt::WithBlock(w) => {
                for (_, value) in &w.assignments {
                    self.expr(value);
                }
                let mark = self.locals.len();
                for (target, _) in &w.assignments {
                    self.bind(target);
                }
                self.body(&w.body);
                self.locals.truncate(mark);
            }
            Stmt::Set(s) => {
                self.expr(&s.expr);
                self.bind(&s.target);
            }
            Stmt::SetBlock(s) => {
                if let Some(filter) = &s.filter {
                    self.expr(filter);
                }
                self.body(&s.body);
                self.bind(&s.target);
            }
            Stmt::AutoEscape(a) => {
                self.expr(&a.enabled);
                self.body(&a.body);
            }
            Stmt::FilterBlock(f) => {
                self.expr(&f.filter);
                self.body(&f.body);
            }
            Stmt::Do(d) => self.call(&d.call),
        }
    }

    fn call(&mut self, call: &ast::Call<'t>) {
        match &call.expr {
            Expr::Var(v) if FUNCTIONS.contains(&v.id) && !self.locals.contains(&v.id) => {}
            other => self.expr(other),
        }
        self.args(&call.args);
    }

    fn args(&mut self, args: &[ast::CallArg<'t>]) {
        for arg in args {
            match arg {
                ast::CallArg::Pos(e)
                | ast::CallArg::Kwarg(_, e)
                | ast::CallArg::PosSplat(e)
                | ast::CallArg::KwargSplat(e) => self.expr(e),
            }
        }
    }

    fn expr(&mut self, expr: &Expr<'t>) {
        match expr {
            Expr::Var(_) | Expr::GetAttr(_) | Expr::GetItem(_) => match chain(expr) {
                Ok(r) => {
                    if !self.locals.contains(&r.root) {
                        self.findings.push(Finding::Reference(r));
                    }
                }
                Err(Expr::GetItem(item)) => {
                    self.expr(&item.expr);
                    self.expr(&item.subscript_expr);
                }
                Err(other) => self.expr(other),
            },
            Expr::Const(_) => {}
            Expr::Slice(s) => {
                self.expr(&s.expr);
                for part in [&s.start, &s.stop, &s.step].into_iter().flatten() {
                    self.expr(part);
                }
            }
            Expr::UnaryOp(u) => self.expr(&u.expr),
            Expr::BinOp(b) => {
                if matches!(b.op, ast::BinOpKind::Sub)
                    && let Some((first, id, rest)) = hyphenated(b)
                {
                    self.findings.push(Finding::Hyphenated {
                        written: format!("{id}{rest}"),
                        first,
                        id,
                        span: expr.span(),
                    });
                    return;
                }
                self.expr(&b.left);
                self.expr(&b.right);
            }
            Expr::Compare(c) => {
                self.expr(&c.expr);
                for op in &c.ops {
                    self.expr(&op.expr);
                }
            }
            Expr::IfExpr(i) => {
                self.expr(&i.test_expr);
                self.expr(&i.true_expr);
                if let Some(e) = &i.false_expr {
                    self.expr(e);
                }
            }
            Expr::Filter(f) => {
                self.findings.push(Finding::Filter {
                    name: f.name,
                    test: false,
                    span: expr.span(),
                });
                if let Some(e) = &f.expr {
                    self.expr(e);
                }
                self.args(&f.args);
            }
            Expr::Test(t) => {
                self.findings.push(Finding::Filter {
                    name: t.name,
                    test: true,
                    span: expr.span(),
                });
                self.expr(&t.expr);
                self.args(&t.args);
            }
            Expr::Call(c) => self.call(c),
            Expr::List(l) => l.items.iter().for_each(|i| self.expr(i)),
            Expr::Map(m) => {
                m.keys.iter().for_each(|k| self.expr(k));
                m.values.iter().for_each(|v| self.expr(v));
            }
        }
    }
}

/// `root.a['b'].c` as a reference, or the first part of the chain that is not a name lookup.
fn chain<'e, 't>(mut expr: &'e Expr<'t>) -> Result<Reference<'t>, &'e Expr<'t>> {
    let mut segments = Vec::new();
    loop {
        match expr {
            Expr::GetAttr(a) => {
                segments.push((a.name.to_owned(), a.span()));
                expr = &a.expr;
            }
            Expr::GetItem(i) => match &i.subscript_expr {
                Expr::Const(c) if c.value.as_str().is_some() => {
                    let end = i.subscript_expr.span();
                    segments.push((c.value.as_str().unwrap_or_default().to_owned(), end));
                    expr = &i.expr;
                }
                _ => return Err(expr),
            },
            Expr::Var(v) => {
                segments.reverse();
                // Each segment's span runs from the root: `steps.a.stdot` as a whole.
                let root = v.span();
                for (_, span) in &mut segments {
                    span.start_line = root.start_line;
                    span.start_col = root.start_col;
                    span.start_offset = root.start_offset;
                }
                return Ok(Reference {
                    root: v.id,
                    root_span: v.span(),
                    segments,
                });
            }
            _ => return Err(expr),
        }
    }
}

/// `steps.copy-logs.stdout` parses as `steps.copy - logs.stdout`: returns the first part
/// (`copy`), the id the author meant (`copy-logs`) and what followed it (`.stdout`).
fn hyphenated(b: &ast::BinOp<'_>) -> Option<(String, String, String)> {
    let (first, left) = match &b.left {
        Expr::BinOp(inner) if matches!(inner.op, ast::BinOpKind::Sub) => {
            let (first, id, rest) = hyphenated(inner)?;
            if !rest.is_empty() {
                return None;
            }
            (first, id)
        }
        other => {
            let r = chain(other).ok()?;
            match (r.root, r.segments.as_slice()) {
                ("steps", [(id, _)]) => (id.clone(), id.clone()),
                _ => return None,
            }
        }
    };
    let right = chain(&b.right).ok()?;
    let rest: String = right
        .segments
        .iter()
        .map(|(s, _)| format!(".{s}"))
        .collect();
    Some((first, format!("{left}-{}", right.root), rest))
}
