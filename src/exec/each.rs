//! The items of a `for_each` step, each run as an instance with its own attempts, events (the
//! instance id as `step`), outputs and result. They start as [`ItemQueue`] says: in list
//! order, up to the step's concurrency, until the failure budget is spent or the run stops.

use std::sync::Arc;
use std::time::{Duration, Instant};

use minijinja::Value;
use tokio::task::JoinSet;

use super::attempt::Outcome;
use super::event::Status;
use super::{Shared, finished};
use crate::context::Context;
use crate::items::Item;
use crate::schedule::ItemQueue;

/// One item of a `for_each` step and how its instance ended (`None`: it never started).
#[derive(Clone, Debug)]
pub struct Instance {
    pub id: String,
    pub item: serde_json::Value,
    pub outcome: Option<Outcome>,
}

/// The instances of one `for_each` step.
#[derive(Clone, Debug, Default)]
pub struct Looped {
    pub instances: Vec<Instance>,
    /// Instances that succeeded, in completion order: what a rollback undoes, in reverse.
    pub completed: Vec<usize>,
}

impl Looped {
    /// Instances of `items`, none started yet.
    fn new(items: Vec<Item>) -> Self {
        Self {
            instances: items
                .into_iter()
                .map(|item| Instance {
                    id: item.id,
                    item: item.value,
                    outcome: None,
                })
                .collect(),
            completed: Vec::new(),
        }
    }

    /// What `steps.<id>` holds: the step's own result, `items` (each instance's result and
    /// its `item`, in list order) and `failed_items` (their instance ids).
    pub fn value(&self, outcome: &Outcome) -> Value {
        let items: Vec<serde_json::Value> = self
            .instances
            .iter()
            .map(|instance| {
                let mut value = instance
                    .outcome
                    .as_ref()
                    .and_then(|o| serde_json::to_value(o.value()).ok())
                    .unwrap_or_else(|| serde_json::json!({ "status": "not_started" }));
                if let Some(map) = value.as_object_mut() {
                    map.insert("item".to_owned(), instance.item.clone());
                }
                value
            })
            .collect();
        let mut value = serde_json::to_value(outcome.value()).unwrap_or_default();
        if let Some(map) = value.as_object_mut() {
            map.insert("items".to_owned(), items.into());
            map.insert("failed_items".to_owned(), self.failed_ids().into());
        }
        Value::from_serialize(value)
    }

    /// Ids of the instances that failed, in list order.
    pub fn failed_ids(&self) -> Vec<String> {
        self.instances
            .iter()
            .filter(|i| {
                i.outcome
                    .as_ref()
                    .is_some_and(|o| matches!(o.status, Status::Failed | Status::Cancelled))
            })
            .map(|i| i.id.clone())
            .collect()
    }
}

/// The instances of a `for_each` step that ended in an earlier process (a resumed run),
/// rebuilt with their items from the list rendered again; `None` if `i` has no `for_each`.
pub(super) fn restored(
    shared: &Shared,
    i: usize,
    context: &Context,
    prior: &[(String, Outcome)],
) -> Option<Looped> {
    let step = &shared.runbook.steps[i];
    // Instances are recorded under the step's id: `STEP[KEY]`.
    let prefix = format!("{}[", step.id.value);
    // A list that no longer renders: the recorded instances are kept, without their items.
    let scoped = crate::scope::for_step(step, &shared.templates, context);
    let items = crate::items::items(step, &shared.templates, &scoped.value(), &shared.masker)?
        .unwrap_or_default();
    let mut looped = Looped::new(items);
    for (id, outcome) in prior.iter().filter(|(id, _)| id.starts_with(&prefix)) {
        let n = match looped.instances.iter().position(|x| &x.id == id) {
            Some(n) => n,
            // The list renders differently now: the instance is kept, without its item.
            None => {
                looped.instances.push(Instance {
                    id: id.clone(),
                    item: serde_json::Value::Null,
                    outcome: None,
                });
                looped.instances.len() - 1
            }
        };
        looped.instances[n].outcome = Some(outcome.clone());
        if outcome.status == Status::Succeeded {
            looped.completed.push(n);
        }
    }
    Some(looped)
}

/// Runs the instances of step `i` over `items`; returns the step's outcome and its instances.
/// Items in `prior` (by instance id) ended in an earlier process: they are not run again.
pub(super) async fn run(
    shared: &Arc<Shared>,
    i: usize,
    items: Vec<Item>,
    prior: Vec<(String, Outcome)>,
    context: &Context,
) -> (Outcome, Looped) {
    let started = Instant::now();
    let step = &shared.runbook.steps[i];
    let mut queue = ItemQueue::new(items.len(), step.item_concurrency(), step.failure_budget());
    let mut looped = Looped::new(items);
    let mut running: JoinSet<(usize, Outcome)> = JoinSet::new();
    loop {
        while !shared.stopping.is_cancelled()
            && let Some(n) = queue.start_next()
        {
            let instance = &mut looped.instances[n];
            if let Some((_, outcome)) = prior.iter().find(|(id, _)| id == &instance.id) {
                let succeeded = outcome.status == Status::Succeeded;
                queue.ended(!succeeded);
                if succeeded {
                    looped.completed.push(n);
                }
                instance.outcome = Some(outcome.clone());
                continue;
            }
            let shared = shared.clone();
            let instance = &looped.instances[n];
            let id = instance.id.clone();
            let context = context.with_item(step.item_name(), &instance.item);
            running.spawn(async move {
                let outcome = super::forward::attempts(&shared, i, &id, &context).await;
                (n, outcome)
            });
        }
        let Some(joined) = running.join_next().await else {
            break;
        };
        let Ok((n, outcome)) = joined else { continue };
        finished(shared, &looped.instances[n].id, &outcome);
        let succeeded = outcome.status == Status::Succeeded;
        queue.ended(!succeeded);
        if succeeded {
            looped.completed.push(n);
        }
        looped.instances[n].outcome = Some(outcome);
    }
    let outcome = summarize(&looped, &queue, step.failure_budget(), started.elapsed());
    (outcome, looped)
}

/// The step's own outcome: failed past the budget, cancelled when the run stopped before
/// every item ran, else succeeded (failed items within the budget are named in its message).
fn summarize(looped: &Looped, queue: &ItemQueue, budget: usize, duration: Duration) -> Outcome {
    let total = looped.instances.len();
    let failed = looped.failed_ids();
    let not_run = looped
        .instances
        .iter()
        .filter(|i| i.outcome.is_none())
        .count();
    let outputs_failed = looped
        .instances
        .iter()
        .any(|i| i.outcome.as_ref().is_some_and(|o| o.outputs_failed));
    let (status, message) = if queue.over_budget() {
        (
            Status::Failed,
            Some(format!(
                "{} of {total} items failed (max_failures {budget}): {}",
                queue.failed(),
                failed.join(", ")
            )),
        )
    } else if not_run > 0 {
        (
            Status::Cancelled,
            Some(format!(
                "the run stopped: {not_run} of {total} items never started"
            )),
        )
    } else if failed.is_empty() {
        (Status::Succeeded, None)
    } else {
        (
            Status::Succeeded,
            Some(format!(
                "{} of {total} items failed within max_failures {budget}: {}",
                failed.len(),
                failed.join(", ")
            )),
        )
    };
    Outcome {
        status,
        attempts: looped
            .instances
            .iter()
            .filter_map(|i| i.outcome.as_ref())
            .map(|o| o.attempts)
            .sum(),
        duration,
        message,
        outputs_failed,
        ..Outcome::empty(status)
    }
}
