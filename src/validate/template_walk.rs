//! The walk over one template's (or expression's) syntax tree, as parsed by minijinja: what it
//! reads and how, with spans inside the template text. It knows nothing of the runbook; the
//! reference checks and the lints judge what it finds.
//!
//! Names bound inside the template (`{% for x in … %}`, `{% set %}`, `loop`) are not
//! references, and neither are the global functions.

use std::borrow::Cow;

use minijinja::machinery::Span as JSpan;
use minijinja::machinery::ast::{self, Expr, Stmt};

/// Global functions of the template language.
const FUNCTIONS: &[&str] = &["range", "dict", "namespace", "debug"];

/// A variable reference found in a template: `root.seg1.seg2…` with spans in the template.
pub(super) struct Reference<'t> {
    pub root: &'t str,
    pub root_span: JSpan,
    /// Each segment's span runs from the root: `steps.a.stdot` as a whole. A name is
    /// borrowed from the template; a quoted key (`a['b']`) is owned.
    pub segments: Vec<(Cow<'t, str>, JSpan)>,
}

/// What the walk over one template finds, in the order it is met.
pub(super) enum Finding<'t> {
    Reference(Reference<'t>),
    /// `steps.copy-logs.stdout`, which the parser reads as a subtraction: the first part
    /// (`copy`), the id the author meant (`copy-logs`) and what was written from it on.
    /// Its parts are not references.
    Hyphenated {
        first: String,
        id: String,
        written: String,
        span: JSpan,
    },
    /// A `{{ … }}`, with the filter applied last to its value, if any. A list quoted item by
    /// item and joined by a literal (`x | map('shell_quote') | join(' ')`) counts as quoted by
    /// that filter.
    Emit {
        filter: Option<&'t str>,
        span: JSpan,
    },
    /// A `{% for %}` whose literal `range(…)` bounds, times those of the loops around it,
    /// run more iterations than the template engine's fuel allows: it would always fail.
    HugeLoop {
        iterations: u128,
        span: JSpan,
    },
    /// A filter (or test) by name.
    Filter {
        name: &'t str,
        test: bool,
        span: JSpan,
    },
}

/// The filter applied last to an emitted value, seeing through `map('f') | join(literal)`.
fn last_filter<'t>(expr: &Expr<'t>) -> Option<&'t str> {
    let Expr::Filter(f) = expr else {
        return None;
    };
    let literal = |arg: &ast::CallArg<'t>| matches!(arg, ast::CallArg::Pos(Expr::Const(c)) if c.value.as_str().is_some());
    if f.name == "join"
        && f.args.iter().all(literal)
        && let Some(Expr::Filter(map)) = &f.expr
        && map.name == "map"
        && let [ast::CallArg::Pos(Expr::Const(name))] = map.args.as_slice()
        && let Some(name) = name.value.as_str()
    {
        // A name the template environment owns: `&'static`, so it outlives the template.
        return crate::template::FILTERS
            .iter()
            .copied()
            .find(|f| *f == name);
    }
    Some(f.name)
}

/// Everything a parsed template reads and uses.
pub(super) fn template_findings<'t>(tree: &Stmt<'t>) -> Vec<Finding<'t>> {
    let mut walk = Walk::default();
    walk.stmt(tree);
    walk.findings
}

/// What [`template_findings`] finds in a template that is one name lookup and nothing else,
/// `{{ steps.build.stdout }}` (most templates of a runbook are), found without the parser;
/// `None` for any other template.
pub(super) fn lone_reference(text: &str) -> Option<[Finding<'_>; 2]> {
    const KEYWORDS: &[&str] = &[
        "true", "True", "false", "False", "none", "None", "and", "or", "not", "in", "is", "if",
        "else",
    ];
    let inner = text.strip_prefix("{{")?.strip_suffix("}}")?;
    let start = 2 + (inner.len() - inner.trim_start_matches(' ').len());
    let path = inner.trim_matches(' ');
    let is_name = |name: &str| {
        name.bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
            && (name.len() > 5 || !KEYWORDS.contains(&name))
    };
    let mut names = path.split('.');
    let root = names.next().filter(|root| is_name(root))?;
    // Spans as minijinja gives them: one line, columns counted from 0.
    let span = |from: usize, to: usize| {
        Some(JSpan {
            start_line: 1,
            start_col: u16::try_from(from).ok()?,
            start_offset: u32::try_from(from).ok()?,
            end_line: 1,
            end_col: u16::try_from(to).ok()?,
            end_offset: u32::try_from(to).ok()?,
        })
    };
    let root_span = span(start, start + root.len())?;
    let mut end = start + root.len();
    let mut segments = Vec::with_capacity(path.bytes().filter(|&b| b == b'.').count());
    for name in names {
        if !is_name(name) {
            return None;
        }
        end += 1 + name.len();
        segments.push((Cow::Borrowed(name), span(start, end)?));
    }
    Some([
        // From the `{{` to the end of the expression.
        Finding::Emit {
            filter: None,
            span: span(0, end)?,
        },
        Finding::Reference(Reference {
            root,
            root_span,
            segments,
        }),
    ])
}

/// Everything a parsed expression (`when`, `until`, `assert`) reads and uses.
pub(super) fn expression_findings<'t>(expr: &Expr<'t>) -> Vec<Finding<'t>> {
    let mut walk = Walk::default();
    walk.expr(expr);
    walk.findings
}

/// A walk over one template's syntax tree, keeping track of names bound inside it.
#[derive(Default)]
struct Walk<'t> {
    locals: Vec<&'t str>,
    findings: Vec<Finding<'t>>,
    /// Iterations of the `for` loops around the current statement, as far as literal
    /// `range(…)` bounds tell (0 read as 1: nothing known).
    iterations: u128,
}

impl<'t> Walk<'t> {
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
                self.findings.push(Finding::Emit {
                    filter: last_filter(&e.expr),
                    span: e.span(),
                });
                self.expr(&e.expr);
            }
            Stmt::EmitRaw(_) => {}
            Stmt::ForLoop(f) => {
                self.expr(&f.iter);
                let outer = self.iterations;
                self.iterations = outer.max(1).saturating_mul(literal_range_len(&f.iter));
                if self.iterations > u128::from(crate::template::FUEL)
                    && outer <= u128::from(crate::template::FUEL)
                {
                    self.findings.push(Finding::HugeLoop {
                        iterations: self.iterations,
                        span: f.span(),
                    });
                }
                let mark = self.locals.len();
                self.bind(&f.target);
                self.locals.push("loop");
                if let Some(filter) = &f.filter_expr {
                    self.expr(filter);
                }
                self.body(&f.body);
                self.locals.truncate(mark);
                self.iterations = outer;
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

/// How many items `range(…)` with literal integer bounds yields (1 for anything else).
fn literal_range_len(iter: &Expr<'_>) -> u128 {
    let Expr::Call(call) = iter else { return 1 };
    if !matches!(&call.expr, Expr::Var(v) if v.id == "range") {
        return 1;
    }
    let mut bounds = Vec::with_capacity(3);
    for arg in &call.args {
        match arg {
            ast::CallArg::Pos(Expr::Const(c)) => match c.value.as_i64() {
                Some(n) => bounds.push(i128::from(n)),
                None => return 1,
            },
            _ => return 1,
        }
    }
    let (start, stop, step) = match bounds[..] {
        [stop] => (0, stop, 1),
        [start, stop] => (start, stop, 1),
        [start, stop, step] if step != 0 => (start, stop, step),
        _ => return 1,
    };
    let span = if step > 0 { stop - start } else { start - stop };
    u128::try_from((span + step.abs() - 1) / step.abs())
        .unwrap_or(0)
        .max(1)
}

/// `root.a['b'].c` as a reference, or the first part of the chain that is not a name lookup.
fn chain<'e, 't>(mut expr: &'e Expr<'t>) -> Result<Reference<'t>, &'e Expr<'t>> {
    let mut segments = Vec::new();
    loop {
        match expr {
            Expr::GetAttr(a) => {
                segments.push((Cow::Borrowed(a.name), a.span()));
                expr = &a.expr;
            }
            Expr::GetItem(i) => match &i.subscript_expr {
                Expr::Const(c) if c.value.as_str().is_some() => {
                    let end = i.subscript_expr.span();
                    segments.push((
                        Cow::Owned(c.value.as_str().unwrap_or_default().to_owned()),
                        end,
                    ));
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
                ("steps", [(id, _)]) => (id.to_string(), id.to_string()),
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

#[cfg(test)]
mod tests {
    use super::{Finding, lone_reference, template_findings};

    /// The findings as text, to compare two lists of them.
    fn shown(findings: &[Finding<'_>]) -> Vec<String> {
        findings
            .iter()
            .map(|f| match f {
                Finding::Reference(r) => {
                    format!("ref {} {:#?} {:#?}", r.root, r.root_span, r.segments)
                }
                Finding::Emit { filter, span } => format!("emit {filter:?} {span:#?}"),
                Finding::Hyphenated { .. } => "hyphenated".to_owned(),
                Finding::HugeLoop { .. } => "loop".to_owned(),
                Finding::Filter { name, .. } => format!("filter {name}"),
            })
            .collect()
    }

    #[test]
    fn a_lone_reference_is_found_as_the_parser_finds_it() {
        let texts = [
            "{{ params.target }}",
            "{{ steps.s0.stdout }}",
            "{{steps.build_2.result.exit_code}}",
            "{{   x   }}",
            "{{ _a._b }}",
            "{{ item }}",
            "{{ loop.index }}",
            "{{ self.x }}",
        ];
        for text in texts {
            let tree = crate::validate::templates::parse(text).expect("a template");
            let parsed = shown(&template_findings(&tree));
            let lone = lone_reference(text).map(|f| shown(&f));
            assert_eq!(lone.as_ref(), Some(&parsed), "{text}");
        }
    }

    #[test]
    fn anything_else_goes_to_the_parser() {
        let texts = [
            "{{ true }}",
            "{{ none.x }}",
            "{{ a.true }}",
            "{{ not x }}",
            "{{ a.0 }}",
            "{{ a..b }}",
            "{{ a. }}",
            "{{ a | upper }}",
            "{{ a['b'] }}",
            "{{- a }}",
            "{{ a -}}",
            "{{\ta }}",
            "{{ a }} ",
            " {{ a }}",
            "{{ a }}{{ b }}",
            "{{ a\n}}",
            "{{ é }}",
            "{{ steps.copy-logs.stdout }}",
            "{{ }}",
            "{{}}",
        ];
        for text in texts {
            assert!(lone_reference(text).is_none(), "{text}");
        }
    }
}
