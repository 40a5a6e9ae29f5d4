//! `finally:` steps: ids distinct from the run's steps, `needs` naming only other finally
//! steps, no rollback; then their own graph (ids, `needs`, cycles), checked as the run's is.

use std::collections::HashSet;

use super::needs;
use crate::dag::Dag;
use crate::diagnostic::Problem;
use crate::model::Runbook;

/// The finally steps as a runbook of their own, with their graph; `None` without any.
pub fn check(runbook: &Runbook, dag: &Dag, problems: &mut Vec<Problem>) -> Option<(Runbook, Dag)> {
    if runbook.finally.is_empty() {
        return None;
    }
    let own: HashSet<&str> = runbook.finally.iter().map(|s| s.id.as_str()).collect();
    let of_the_run = |id: &str| !own.contains(id) && dag.index_of(id).is_some();
    for step in &runbook.finally {
        if let Some(i) = dag.index_of(&step.id) {
            problems.push(Problem::DuplicateStep {
                id: step.id.value.clone(),
                span: step.id.span.into(),
                first: runbook.steps[i].id.span.into(),
            });
        }
        if let Some(rollback) = &step.rollback {
            problems.push(Problem::FinallyRollback {
                step: step.id.value.clone(),
                span: rollback.span.into(),
            });
        }
        for need in step.needs.iter().filter(|n| of_the_run(n)) {
            problems.push(Problem::FinallyNeedsStep {
                step: step.id.value.clone(),
                id: need.value.clone(),
                span: need.span.into(),
            });
        }
    }
    let mut part = runbook.finally_part();
    // Reported above: not again as unknown steps.
    for step in &mut part.steps {
        step.needs.retain(|n| !of_the_run(n));
    }
    let finally_dag = needs::check_steps(&part, problems);
    Some((part, finally_dag))
}
