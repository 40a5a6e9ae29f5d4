//! Validation: every problem of a runbook in one pass, after the shape has been read.
//!
//! Each check lives in its own file and appends to one list of problems: `graph` (ids and
//! `needs`), `finally` (the finally steps' own graph), `steps` (each step's fields), `targets` (where `run` actions run), `params`, and `templates`, which walks every
//! template (`template_walk`), checks what it reads (`references`) and runs the template
//! lints registered in `lints`.

mod finally;
mod lints;
mod needs;
mod no_return;
mod param_declarations;
pub(crate) mod reads;
mod recovery;
mod references;
pub(crate) mod scalars;
mod steps;
mod targets;
mod template_walk;
mod templates;
mod unrehearsed;

use crate::dag::Dag;
use crate::diagnostic::Problem;
use crate::model::Runbook;

/// Checks `runbook` (read from `source`) and appends what is wrong to `problems`.
/// Returns the dependency graph, which is acyclic when no error was found.
pub fn validate(runbook: &Runbook, source: &str, problems: &mut Vec<Problem>) -> Dag {
    let dag = needs::check(runbook, problems);
    let finally = finally::check(runbook, &dag, problems);
    steps::check(runbook, problems);
    targets::check(runbook, problems);
    no_return::check(runbook, &dag, problems);
    param_declarations::check(runbook, problems);
    recovery::check(runbook, &dag, problems);
    templates::check(runbook, &dag, finally.as_ref(), source, problems);
    dag
}

/// The opt-in checks of `validate --strict`, appended to `problems`.
pub fn strict(runbook: &Runbook, problems: &mut Vec<Problem>) {
    unrehearsed::check(runbook, problems);
}

/// Ids of steps, params, secrets, outputs and connections: a letter or `_` first, then
/// letters, digits, `_` or `-` (step ids only).
pub(crate) fn is_valid_id(id: &str, allow_hyphen: bool) -> bool {
    let mut chars = id.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || (allow_hyphen && c == '-'))
}
