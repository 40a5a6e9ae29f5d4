//! Which steps a template or an expression reads (`steps.ID…`, `steps['ID']…`), for
//! `runbook check`: a step that reads what only a real run of another step produces cannot be
//! checked. The same walk as the reference checks, so both agree on what a template reads.

use minijinja::machinery;

use super::template_walk::{self, Finding};

/// The ids of the steps `text` reads; `expression` for `when`, `until` and `assert`. A text
/// that does not parse reads nothing here (validation has reported it).
pub(crate) fn steps_read(text: &str, expression: bool) -> Vec<String> {
    if expression {
        match crate::template::guarded(|| machinery::parse_expr(text)) {
            Ok(expr) => ids(&template_walk::expression_findings(&expr)),
            Err(_) => Vec::new(),
        }
    } else {
        match super::templates::parse(text) {
            Ok(tree) => ids(&template_walk::template_findings(&tree)),
            Err(_) => Vec::new(),
        }
    }
}

fn ids(findings: &[Finding<'_>]) -> Vec<String> {
    let mut ids: Vec<String> = findings
        .iter()
        .filter_map(|f| match f {
            Finding::Reference(r) if r.root == "steps" => {
                r.segments.first().map(|(id, _)| id.clone())
            }
            Finding::Hyphenated { id, .. } => Some(id.clone()),
            _ => None,
        })
        .collect();
    ids.sort();
    ids.dedup();
    ids
}
