//! Finally steps: once the run has ended (after its rollback, if any), whatever its outcome,
//! the `finally:` steps run over their own graph through the same scheduler, reading
//! `run.outcome`. They are never rolled back, a failed one does not stop the others, and the
//! ones that failed are counted by [`crate::outcome::conclude`].

use std::sync::Arc;

use super::attempt::Outcome;
use super::event::{EventKind, Status};
use super::{Interrupts, Shared, forward};
use crate::context::Context;
use crate::dag::Dag;
use crate::model::Spanned;

/// What the finally steps did.
#[derive(Default)]
pub(super) struct Finally {
    /// Ids of the finally steps that failed, in declaration order.
    pub failed: Vec<String>,
    /// Each finally step with how it ended (`None`: it never started).
    pub results: Vec<(String, Option<Outcome>)>,
}

pub(super) async fn run(
    shared: &Shared,
    outcome: &str,
    context: &Context,
    interrupts: &mut Interrupts,
    concurrency: usize,
    done: Vec<(String, Outcome)>,
) -> Finally {
    let runbook = &shared.runbook;
    if runbook.finally.is_empty() {
        return Finally::default();
    }
    let mut part = runbook.finally_part();
    // Cleanup goes on after a failed cleanup step: every finally step runs, in `needs` order.
    for step in &mut part.steps {
        step.continue_on_failure = Some(Box::new(Spanned::new(true, step.id.span)));
    }
    let dag = Dag::new(&part);
    // A resumed run: the finally steps that ended before the crash are not run again.
    let resume = (!done.is_empty()).then(|| super::Resume {
        done: done
            .into_iter()
            .filter_map(|(id, outcome)| {
                let i = part.steps.iter().position(|s| s.id.value == id)?;
                Some((i, outcome))
            })
            .collect(),
        ..super::Resume::default()
    });
    // Fresh cancellation: the run's own was used up by the failure or interrupt that ended it.
    let finally_shared = Arc::new(Shared::new(
        Arc::new(part),
        shared.sink.clone(),
        shared.groups.clone(),
        shared.approvals.clone(),
        shared.masker.clone(),
        shared.stand_in.clone(),
    ));
    shared.emit(EventKind::FinallyStarted {
        outcome: outcome.to_owned(),
        steps: runbook.finally.len(),
    });
    let mut context = context.clone();
    for step in &runbook.steps {
        if !context.has_step(&step.id) {
            let not_run = serde_json::json!({ "status": "not_run" });
            context.set_step(&step.id, minijinja::Value::from_serialize(&not_run));
        }
    }
    context.set_outcome(outcome);
    let forward = forward::run(
        &finally_shared,
        &dag,
        concurrency,
        resume,
        &mut context,
        interrupts,
    )
    .await;
    let failed = runbook
        .finally
        .iter()
        .zip(&forward.results)
        .filter(|(_, r)| {
            r.as_ref()
                .is_some_and(|o| matches!(o.status, Status::Failed | Status::Cancelled))
        })
        .map(|(s, _)| s.id.value.clone())
        .collect();
    Finally {
        failed,
        results: runbook
            .finally
            .iter()
            .map(|s| s.id.value.clone())
            .zip(forward.results)
            .collect(),
    }
}
