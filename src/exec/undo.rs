//! The rollback of a stopped run: the planner ([`crate::rollback::plan`]) decides which
//! completed steps are undone and in what order; this runs their actions one at a time, on a
//! fresh cancellation token and SQL sessions of their own, so that only a hard stop ends it.

use std::sync::Arc;

use super::attempt::{self, Spec};
use super::event::{EventKind, Status};
use super::forward::Forward;
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
    forward: &Forward,
    rolled_back_before: &[String],
    context: &Context,
    interrupts: &Interrupts,
    no_rollback: bool,
) -> Undone {
    let runbook = &shared.runbook;
    let id = |i: usize| runbook.steps[i].id.value.clone();
    let (completed, loops) = (&forward.completed, &forward.loops);
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
        // A `for_each` step is undone instance by instance, in reverse completion order, each
        // with its own item.
        let units: Vec<(usize, String, Context)> = plan
            .actions
            .iter()
            .flat_map(|&i| {
                // A step from a group is undone in the group's context.
                let context =
                    &crate::scope::for_step(&runbook.steps[i], &shared.templates, context);
                match loops.get(i).and_then(Option::as_ref) {
                    Some(looped) => {
                        let name = runbook.steps[i].item_name();
                        looped
                            .completed
                            .iter()
                            .rev()
                            .map(|&n| {
                                let instance = &looped.instances[n];
                                (
                                    i,
                                    instance.id.clone(),
                                    context.with_item(name, &instance.item),
                                )
                            })
                            .collect()
                    }
                    None => vec![(i, id(i), context.clone())],
                }
            })
            .collect();
        shared.emit(EventKind::RollbackStarted {
            steps: units.iter().map(|(_, id, _)| id.clone()).collect(),
        });
        // Rollback runs even after an interrupt: a fresh token, and sessions of its own (those
        // of the run may be mid-query).
        let rollback_shared = Shared::new(
            runbook.clone(),
            shared.sink.clone(),
            shared.groups.clone(),
            shared.approvals.clone(),
            shared.masker.clone(),
            shared.stand_in.clone(),
        );
        interrupts.track(|u| u.rollback_left = units.iter().map(|(_, id, _)| id.clone()).collect());
        for (i, unit_id, unit_context) in &units {
            let i = *i;
            if rolled_back_before.contains(unit_id) {
                continue;
            }
            let step = &runbook.steps[i];
            let label = format!("rollback of {unit_id}");
            interrupts.track(|u| {
                u.rollback_left.retain(|s| s != unit_id);
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
                id: unit_id,
                policy: Policy::resolve(action.retry.as_ref(), None),
                timeout: runbook.rollback_timeout(action),
                until: None,
                outputs: None,
                rollback: true,
                render: &render,
            };
            let outcome = attempt::run(&rollback_shared, &spec, unit_context).await;
            interrupts.track(|u| {
                u.running.remove(&label);
            });
            undone.summary.ran += 1;
            if outcome.status != Status::Succeeded {
                undone.summary.failed = true;
            }
            rollback_shared.emit(EventKind::RollbackStepFinished {
                step: unit_id.clone(),
                status: outcome.status,
                message: outcome.message.clone(),
            });
            undone.results.push((unit_id.clone(), outcome.status));
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
