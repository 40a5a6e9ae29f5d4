//! The opt-in lint of `validate --strict`: a step that changes something (`run`, `sql`) with
//! neither `probe: true` nor a `rehearse:` action is one `runbook check` can only report as
//! not rehearsed.

use crate::diagnostic::Problem;
use crate::model::{Runbook, StepKind};

/// Warns for each mutating step `runbook check` cannot rehearse.
pub fn check(runbook: &Runbook, problems: &mut Vec<Problem>) {
    for step in runbook.steps.iter().chain(&runbook.finally) {
        let kind = match &step.kind {
            StepKind::Run(_) => "run",
            StepKind::Sql(_) => "sql",
            StepKind::Wait(_) | StepKind::Assert(_) | StepKind::Approval(_) => continue,
        };
        if step.is_probe() || step.rehearse.is_some() {
            continue;
        }
        problems.push(Problem::NotRehearsable {
            id: step.id.value.clone(),
            kind,
            span: step.id.span.into(),
        });
    }
}
