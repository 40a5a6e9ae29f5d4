//! Rollbacks past a point of no return. A completed `irreversible` step protects itself and its
//! ancestors from rollback, but not the steps after it: their rollbacks still run when a later
//! step fails, undoing state that only makes sense with the irreversible step undone too (a
//! pool pointed back at the data centre that was just given up). Each such rollback is a
//! warning unless acknowledged with `past_point_of_no_return: true`.

use crate::dag::Dag;
use crate::diagnostic::Problem;
use crate::model::Runbook;

pub fn check(runbook: &Runbook, dag: &Dag, problems: &mut Vec<Problem>) {
    // Most runbooks have no irreversible step, or no rollback: nothing to walk.
    if !runbook.steps.iter().any(|s| s.is_irreversible())
        || !runbook.steps.iter().any(|s| s.rollback.is_some())
    {
        return;
    }
    // For each step, the first irreversible step that must complete before it starts, found in
    // one pass over the steps in scheduling order.
    let mut behind: Vec<Option<usize>> = vec![None; runbook.steps.len()];
    for wave in dag.waves() {
        for step in wave {
            behind[step] = dag.parents(step).find_map(|p| {
                if runbook.steps[p].is_irreversible() {
                    Some(p)
                } else {
                    behind[p]
                }
            });
        }
    }
    for (i, step) in runbook.steps.iter().enumerate() {
        let (Some(rollback), Some(irreversible)) = (&step.rollback, behind[i]) else {
            continue;
        };
        if step.is_irreversible()
            || rollback
                .past_point_of_no_return
                .as_ref()
                .is_some_and(|ack| ack.value)
        {
            continue;
        }
        problems.push(Problem::RollbackPastPointOfNoReturn {
            id: step.id.value.clone(),
            irreversible: runbook.steps[irreversible].id.value.clone(),
            span: rollback.span.into(),
        });
    }
}
