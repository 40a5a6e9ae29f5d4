//! The rollback of a stopped run: the planner ([`crate::rollback::plan`]) decides which
//! completed steps are undone and in what order; this runs their actions one at a time, on a
//! fresh cancellation token and SQL sessions of their own, so that only a hard stop ends it.

use std::sync::Arc;

use super::attempt::{self, Spec};
use super::event::{EventKind, Status};
use super::{Interrupts, Shared};
use crate::context::Context;
use crate::dag::Dag;
use crate::outcome::Undo;
use crate::render::{RenderError, Renderer};
use crate::retry::Policy;

/// What the rollback did.
#[derive(Debug, Default)]
pub(super) struct Undone {
    pub results: Vec<(String, Status)>,
    pub not_rolled_back: Vec<(String, String)>,
    pub summary: Undo,
}

pub(super) async fn run(
    shared: &Arc<Shared>,
    dag: &Dag,
    completed: &[usize],
    rolled_back_before: &[usize],
    context: &Context,
    interrupts: &Interrupts,
    no_rollback: bool,
) -> Undone {
    let runbook = &shared.runbook;
    let id = |i: usize| runbook.steps[i].id.value.clone();
    let plan = crate::rollback::plan(runbook, dag, completed);
    let mut undone = Undone {
        summary: Undo {
            past_no_return: !plan.past_no_return.is_empty(),
            suppressed: no_rollback,
            ran: rolled_back_before.len(),
            ..Undo::default()
        },
        ..Undone::default()
    };
    if no_rollback {
        for &i in &plan.actions {
            shared.emit(EventKind::NotRolledBack {
                step: id(i),
                reason: "--no-rollback: left for inspection".to_owned(),
            });
            undone
                .not_rolled_back
                .push((id(i), "--no-rollback".to_owned()));
        }
    } else if !plan.actions.is_empty() {
        shared.emit(EventKind::RollbackStarted {
            steps: plan.actions.iter().map(|&i| id(i)).collect(),
        });
        // Rollback runs even after an interrupt: a fresh token, and sessions of its own (those
        // of the run may be mid-query).
        let rollback_shared = Shared::new(
            runbook.clone(),
            shared.sink.clone(),
            shared.groups.clone(),
            shared.approvals.clone(),
            shared.masker.clone(),
        );
        interrupts.track(|u| u.rollback_left = plan.actions.iter().map(|&i| id(i)).collect());
        for &i in &plan.actions {
            if rolled_back_before.contains(&i) {
                continue;
            }
            let step = &runbook.steps[i];
            let label = format!("rollback of {}", step.id.value);
            interrupts.track(|u| {
                u.rollback_left.retain(|s| s != step.id.as_str());
                u.running.insert(label.clone());
            });
            let Some(action) = &step.rollback else {
                continue;
            };
            let render = |r: &Renderer, v: &minijinja::Value| {
                r.rollback(step, v).unwrap_or_else(|| {
                    Err(RenderError {
                        field: "rollback".to_owned(),
                        message: "no rollback".to_owned(),
                    })
                })
            };
            let spec = Spec {
                id: &step.id,
                policy: Policy::resolve(action.retry.as_ref(), None),
                timeout: runbook.rollback_timeout(action),
                until: None,
                outputs: None,
                rollback: true,
                render: &render,
            };
            let outcome = attempt::run(&rollback_shared, &spec, context).await;
            interrupts.track(|u| {
                u.running.remove(&label);
            });
            undone.summary.ran += 1;
            if outcome.status != Status::Succeeded {
                undone.summary.failed = true;
            }
            rollback_shared.emit(EventKind::RollbackStepFinished {
                step: id(i),
                status: outcome.status,
                message: outcome.message.clone(),
            });
            undone.results.push((id(i), outcome.status));
        }
    }
    for (i, reason) in &plan.kept {
        shared.emit(EventKind::NotRolledBack {
            step: id(*i),
            reason: reason.to_string(),
        });
        undone.not_rolled_back.push((id(*i), reason.to_string()));
    }
    undone
}
