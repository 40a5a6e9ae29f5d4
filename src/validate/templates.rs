//! Every template and expression of a runbook: where it stands (which decides what it may
//! read), its syntax, and what it reads, handed to the reference checks and to the lints.
//!
//! Templates are parsed with minijinja's own parser, so that a syntax error is the one a run
//! would meet; its place, and the place of everything the walk finds, is mapped back into the
//! YAML scalar.

use std::collections::HashMap;
use std::ops::Range;
use std::rc::Rc;

use minijinja::machinery::{self, Span as JSpan, WhitespaceConfig};
use minijinja::syntax::SyntaxConfig;

use super::lints::{self, Lint};
use super::references::References;
use super::template_walk::{self, Finding};
use crate::dag::Dag;
use crate::diagnostic::Problem;
use crate::model::{
    Approval, Rollback, RollbackKind, Run, Runbook, Scalar, Shell, Spanned, Sql, StepKind,
};
use crate::template::{self};
use crate::template_limit::{self, TooComplex};
use crate::yaml::{Span, scalar_offset};

/// Parses a template as a run would (minijinja's parser, guarded against its panics).
pub(super) fn parse(text: &str) -> Result<machinery::ast::Stmt<'_>, minijinja::Error> {
    template::guarded(|| {
        machinery::parse(
            text,
            "<template>",
            SyntaxConfig,
            WhitespaceConfig::default(),
        )
    })
}

/// Where a template stands, which decides what it may read.
#[derive(Clone, Copy)]
pub(super) struct Place {
    /// The step whose field this is; `None` for connections.
    pub owner: Option<usize>,
    /// `result` is readable (`until`, `outputs`).
    pub result: bool,
    /// The owner itself is readable (its rollback runs after it).
    pub own_step: bool,
    /// The owner's `for_each` item is readable (everywhere in the step but `for_each`).
    pub item: bool,
    pub kind: Kind,
}

/// What the rendered text becomes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Text,
    /// A program or its arguments: visible to every user of the machine.
    Args,
    /// A T-SQL query, where values belong in `args`.
    SqlQuery,
    /// A script run by this shell, where values must be quoted for it.
    Script(Shell),
}

impl Place {
    const fn step(owner: usize) -> Self {
        Self {
            owner: Some(owner),
            result: false,
            own_step: false,
            item: true,
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

/// One template where it stands: its text, the span of its YAML scalar, and its place.
pub(super) struct Site<'a> {
    pub runbook: &'a Runbook,
    /// The graph of `runbook`, whose index finds a step by id.
    dag: &'a Dag,
    pub place: Place,
    source: &'a str,
    text: &'a str,
    span: Span,
}

impl Site<'_> {
    /// The step of this runbook with id `id` (the first, if the id is repeated).
    pub fn step(&self, id: &str) -> Option<&crate::model::Step> {
        self.dag
            .index_of(id)
            .and_then(|i| self.runbook.steps.get(i))
    }

    /// The template text after a place in it (to see the filters applied to a value).
    pub fn text_after(&self, j: JSpan) -> &str {
        self.text.get(j.end_offset as usize..).unwrap_or("")
    }

    /// The template's text.
    pub fn text(&self) -> &str {
        self.text
    }

    /// The file span of a place inside the template, as the parser gives it.
    pub fn at(&self, j: JSpan) -> Span {
        self.locate(Some(j.start_offset as usize..j.end_offset as usize))
    }

    /// The file span of a byte range inside the template text (all of it for `None`).
    fn locate(&self, range: Option<Range<usize>>) -> Span {
        let range = range.unwrap_or(0..self.text.len());
        let start = scalar_offset(self.source, self.span, self.text, range.start);
        let end = scalar_offset(
            self.source,
            self.span,
            self.text,
            range.end.max(range.start),
        );
        Span::new(start, end.saturating_sub(start))
    }
}

/// Checks every template of `runbook`; `finally` is its finally part with its own graph.
pub fn check(
    runbook: &Runbook,
    dag: &Dag,
    finally: Option<&(Runbook, Dag)>,
    source: &str,
    problems: &mut Vec<Problem>,
) {
    let mut checker = Checker {
        runbook,
        dag,
        source,
        problems,
        references: References::new(runbook, dag),
        lints: lints::registry(),
        parsed: HashMap::new(),
    };
    checker.runbook_templates();
    if let Some((part, finally_dag)) = finally {
        // Finally steps read each other along their own graph, and any step of the run.
        checker.runbook = part;
        checker.dag = finally_dag;
        checker.references = References::new(part, finally_dag).after(runbook, dag);
        checker.steps_templates();
    }
    for lint in &mut checker.lints {
        lint.finish(runbook, checker.problems);
    }
}

struct Checker<'a> {
    runbook: &'a Runbook,
    dag: &'a Dag,
    source: &'a str,
    problems: &'a mut Vec<Problem>,
    references: References<'a>,
    lints: Vec<Box<dyn Lint>>,
    /// What recently parsed templates hold, by text: the same text (`{{ params.target }}`
    /// in every step) is parsed once. Bounded, so a file of distinct texts holds few.
    parsed: HashMap<&'a str, Rc<[Finding<'a>]>>,
}

/// Templates whose findings are kept at once (then the cache starts again).
const PARSED_KEPT: usize = 256;

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
                    item: false,
                    kind: Kind::Text,
                },
            );
        }
        let defaults = Place {
            owner: None,
            result: false,
            own_step: false,
            item: false,
            kind: Kind::Text,
        };
        // A target's destination reads what a connection string reads (no step, no item).
        for target in runbook.targets.values() {
            self.template(&target.ssh, defaults);
        }
        for value in runbook.defaults.env.values() {
            self.template(value, defaults);
        }
        if let Some(cwd) = &runbook.defaults.cwd {
            self.template(cwd, defaults);
        }
        for key in &runbook.locks {
            self.template(key, defaults);
        }
        for hook in &runbook.notify {
            self.run(&hook.run, hook.target.as_ref(), defaults);
            for value in hook.env.values() {
                self.template(value, defaults);
            }
        }
        self.steps_templates();
    }

    fn steps_templates(&mut self) {
        let runbook = self.runbook;
        for (i, step) in runbook.steps.iter().enumerate() {
            let place = Place::step(i);
            if let Some(for_each) = &step.for_each
                && let crate::model::ForEach::Template(text) = &for_each.value
            {
                // The list is rendered before any item exists.
                self.template_text(
                    text,
                    for_each.span,
                    Place {
                        item: false,
                        ..place
                    },
                );
            }
            if let Some(when) = &step.when {
                // `when` decides for the whole step, before its list is rendered.
                self.expression(
                    when,
                    Place {
                        item: false,
                        ..place
                    },
                );
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
            if let Some(target) = &step.target {
                self.template(target, place);
            }
            match &step.kind {
                StepKind::Run(run) => self.run(run, step.target.as_deref(), place),
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
            match step.rehearse.as_ref().map(|r| (&r.kind, r.target.as_ref())) {
                Some((crate::model::RehearseKind::Run(run), target)) => {
                    self.run(run, target, place)
                }
                Some((crate::model::RehearseKind::Sql(sql), _)) => self.sql(sql, place),
                None => {}
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

    fn action(&mut self, action: &'a Rollback, place: Place) {
        for value in action.env.values() {
            self.template(value, place);
        }
        if let Some(target) = &action.target {
            self.template(target, place);
        }
        match &action.kind {
            RollbackKind::Run(run) => self.run(run, action.target.as_ref(), place),
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

    /// `target`: where the action runs. On a target, `program` and `args` travel on ssh's
    /// stdin (in no process list), and a script without `shell` runs in the target's shell.
    fn run(&mut self, run: &'a Run, target: Option<&'a Spanned<String>>, place: Place) {
        let remote_shell = target.map(|t| {
            self.runbook
                .targets
                .get(t.as_str())
                .map_or(Shell::Sh, crate::model::Target::shell)
        });
        let args = if remote_shell.is_some() {
            Kind::Text
        } else {
            Kind::Args
        };
        if let Some(program) = &run.program {
            self.template(program, place.with(args));
        }
        for arg in &run.args {
            self.template(arg, place.with(args));
        }
        if let Some(script) = &run.script {
            let shell = run
                .shell
                .as_ref()
                .map(|s| s.value)
                .or(remote_shell)
                .unwrap_or(Shell::Sh);
            self.template(script, place.with(Kind::Script(shell)));
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

    /// Where a template of the runbook stands, to locate what is found in it.
    fn site<'s>(&self, text: &'s str, span: Span, place: Place) -> Site<'s>
    where
        'a: 's,
    {
        Site {
            runbook: self.runbook,
            dag: self.dag,
            place,
            source: self.source,
            text,
            span,
        }
    }

    /// A template of the runbook: as [`Self::template_text`], its findings read once per text.
    fn template(&mut self, text: &'a Spanned<String>, place: Place) {
        if let Some(findings) = template_walk::lone_reference(text) {
            let site = self.site(text, text.span, place);
            return self.findings(&findings, &site);
        }
        if !has_template(text) {
            return;
        }
        let findings = match self.parsed.get(text.as_str()) {
            Some(findings) => Rc::clone(findings),
            None => {
                let tree = template_limit::check_template(text)
                    .is_ok()
                    .then(|| parse(text).ok())
                    .flatten();
                let Some(tree) = tree else {
                    // Something to report: the whole path.
                    return self.template_text(&text.value, text.span, place);
                };
                let findings: Rc<[Finding<'a>]> = template_walk::template_findings(&tree).into();
                if self.parsed.len() >= PARSED_KEPT {
                    self.parsed.clear();
                }
                self.parsed.insert(text.as_str(), Rc::clone(&findings));
                findings
            }
        };
        let site = self.site(text, text.span, place);
        self.findings(&findings, &site);
    }

    fn template_text(&mut self, text: &str, span: Span, place: Place) {
        if !has_template(text) {
            return;
        }
        let site = self.site(text, span, place);
        if let Err(err) = template_limit::check_template(text) {
            return self.too_complex(&err, &site);
        }
        match parse(text) {
            Ok(tree) => self.findings(&template_walk::template_findings(&tree), &site),
            Err(err) => {
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
                    span: site.locate(err.range()).into(),
                    help,
                });
            }
        }
    }

    fn expression(&mut self, text: &Spanned<String>, place: Place) {
        let site = self.site(&text.value, text.span, place);
        if let Err(err) = template_limit::check_expression(text) {
            return self.too_complex(&err, &site);
        }
        match template::guarded(|| machinery::parse_expr(&text.value)) {
            Ok(expr) => self.findings(&template_walk::expression_findings(&expr), &site),
            Err(err) => {
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
                    span: site.locate(err.range()).into(),
                    help,
                });
            }
        }
    }

    /// A template refused before parsing: too many operators to parse, or a stray `}}`.
    fn too_complex(&mut self, err: &TooComplex, site: &Site<'_>) {
        let span = site.locate(Some(err.range())).into();
        self.problems.push(match err {
            TooComplex::Operators { .. } => Problem::TemplateTooComplex {
                message: err.to_string(),
                span,
            },
            TooComplex::StrayClose { .. } => Problem::ExpressionSyntax {
                message: err.to_string(),
                span,
                help: "write the bare expression, e.g. `params.env == 'prod'`".to_owned(),
            },
        });
    }

    /// Each finding in the order the walk met it: its reference checked, then every lint.
    fn findings(&mut self, findings: &[Finding<'_>], site: &Site<'_>) {
        for finding in findings {
            match finding {
                Finding::Reference(r) => self.references.check(r, site, self.problems),
                Finding::HugeLoop { iterations, span } => {
                    self.problems.push(Problem::TemplateLoopTooLong {
                        iterations: *iterations,
                        fuel: crate::template::FUEL,
                        span: site.at(*span).into(),
                    });
                }
                _ => {}
            }
            for lint in &mut self.lints {
                lint.finding(finding, site, self.problems);
            }
        }
    }
}

/// Whether `text` has any template syntax: without it, it is plain text.
fn has_template(text: &str) -> bool {
    text.contains("{{") || text.contains("{%") || text.contains("{#")
}
