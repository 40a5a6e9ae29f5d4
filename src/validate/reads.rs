//! Which steps a template or an expression reads (`steps.ID…`, `steps['ID']…`), for
//! `runbook check`: a step that reads what only a real run of another step produces cannot be
//! checked. The same walk as the reference checks, so both agree on what a template reads.

use minijinja::machinery;

use super::template_walk::{self, Finding};

/// The ids of the steps `text` reads; `expression` for `when`, `until` and `assert`. A text
/// that does not parse reads nothing here (validation has reported it).
pub(crate) fn steps_read(text: &str, expression: bool) -> Vec<String> {
    let mut ids: Vec<String> = fields_read(text, expression)
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    ids.dedup();
    ids
}

/// What `text` reads of each step: its id and the field read first (`outputs` of
/// `steps.tail.outputs.file`), None when the step is read whole or the field is not known.
/// Sorted by id.
pub(crate) fn fields_read(text: &str, expression: bool) -> Vec<(String, Option<String>)> {
    let findings = |f: &[Finding<'_>]| fields(f);
    if expression {
        match crate::template::guarded(|| machinery::parse_expr(text)) {
            Ok(expr) => findings(&template_walk::expression_findings(&expr)),
            Err(_) => Vec::new(),
        }
    } else {
        match super::templates::parse(text) {
            Ok(tree) => findings(&template_walk::template_findings(&tree)),
            Err(_) => Vec::new(),
        }
    }
}

fn fields(findings: &[Finding<'_>]) -> Vec<(String, Option<String>)> {
    let mut read: Vec<(String, Option<String>)> = findings
        .iter()
        .filter_map(|f| match f {
            Finding::Reference(r) if r.root == "steps" => r.segments.first().map(|(id, _)| {
                (
                    id.to_string(),
                    r.segments.get(1).map(|(f, _)| f.to_string()),
                )
            }),
            Finding::Hyphenated { id, .. } => Some((id.clone(), None)),
            _ => None,
        })
        .collect();
    read.sort();
    read.dedup();
    read
}
