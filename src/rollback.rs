//! Which completed steps are rolled back, in which order, and why the others are not.
//!
//! One function decides this for both the dry-run scenario (`plan --fail-at`) and a real run,
//! so that what a rehearsal predicts is what a failure does.

use std::collections::HashSet;

use serde::Serialize;

use crate::dag::Dag;
use crate::model::Runbook;

/// Why a completed step is not rolled back.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Reason {
    /// The step declares no `rollback`.
    NoRollback,
    /// The step is irreversible: a point of no return.
    Irreversible,
    /// The step declares a rollback, and is an ancestor of a completed irreversible step.
    BehindIrreversible { step: String },
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Reason::NoRollback => f.write_str("no rollback declared"),
            Reason::Irreversible => f.write_str("irreversible: a point of no return"),
            Reason::BehindIrreversible { step } => {
                write!(f, "behind irreversible step `{step}`")
            }
        }
    }
}

/// The rollback of a failed run: actions in the order they run, and the steps left as they are.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RollbackPlan {
    /// Steps whose `rollback` runs, in this order (reverse completion order).
    pub actions: Vec<usize>,
    /// Completed steps that are not rolled back, in reverse completion order.
    pub kept: Vec<(usize, Reason)>,
    /// Completed irreversible steps: the run needs a person (forward fix).
    pub past_no_return: Vec<usize>,
}

/// Plans the rollback of `completed` (indices of steps in completion order).
pub fn plan(runbook: &Runbook, dag: &Dag, completed: &[usize]) -> RollbackPlan {
    let done: HashSet<usize> = completed.iter().copied().collect();
    // Each protected step remembers the irreversible step that protects it.
    let mut protected: Vec<Option<usize>> = vec![None; runbook.steps.len()];
    let mut past_no_return = Vec::new();
    for &step in completed {
        if !runbook.steps[step].is_irreversible() {
            continue;
        }
        past_no_return.push(step);
        protected[step] = Some(step);
        let mut stack = vec![step];
        while let Some(node) = stack.pop() {
            for parent in dag.parents(node) {
                if done.contains(&parent) && protected[parent].is_none() {
                    protected[parent] = Some(step);
                    stack.push(parent);
                }
            }
        }
    }
    let mut result = RollbackPlan {
        past_no_return,
        ..RollbackPlan::default()
    };
    for &step in completed.iter().rev() {
        let undoable = runbook.steps[step].rollback.is_some();
        match protected[step] {
            Some(by) if by == step => result.kept.push((step, Reason::Irreversible)),
            // A step with no rollback (a probe, an assert, an approval) had nothing to undo
            // whether or not an irreversible step follows it: saying it was kept for that step
            // would leave a person looking for a change that is not there.
            Some(by) if undoable => result.kept.push((
                step,
                Reason::BehindIrreversible {
                    step: runbook.steps[by].id.value.clone(),
                },
            )),
            None if undoable => result.actions.push(step),
            _ => result.kept.push((step, Reason::NoRollback)),
        }
    }
    result
}
