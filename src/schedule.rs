//! The one scheduler: which step starts next. Ready steps start in declaration order as the
//! steps they need end, up to a concurrency limit; once the run is stopping nothing new starts.
//!
//! It is a pure state machine, driven by the executor with real steps, by `Dag::waves` for the
//! plan, and by the `--fail-at` prediction with simulated ones, so that what a rehearsal
//! predicts is what the run does by construction, not by a test keeping two copies in step.

use std::collections::BTreeSet;

use crate::dag::Dag;
use crate::outcome::Stop;

/// Steps whose needs have all ended, in declaration order.
#[derive(Clone, Debug)]
pub struct ReadyQueue {
    /// How many needed steps have not ended yet, per step.
    pending: Vec<usize>,
    ready: BTreeSet<usize>,
    /// Steps already released: a journal that names a step twice must not release it twice.
    released: Vec<bool>,
}

impl ReadyQueue {
    pub fn new(dag: &Dag) -> Self {
        let pending: Vec<usize> = (0..dag.len()).map(|i| dag.parents(i).count()).collect();
        let ready = (0..dag.len()).filter(|&i| pending[i] == 0).collect();
        Self {
            pending,
            ready,
            released: vec![false; dag.len()],
        }
    }

    /// The first ready step in declaration order.
    pub fn pop(&mut self) -> Option<usize> {
        self.ready.pop_first()
    }

    /// Every step ready now (a wave of the plan).
    pub fn take_all(&mut self) -> Vec<usize> {
        std::mem::take(&mut self.ready).into_iter().collect()
    }

    /// `step` ended in a way that lets its dependents run (completed, skipped, or failed with
    /// `continue_on_failure`).
    pub fn release(&mut self, dag: &Dag, step: usize) {
        if std::mem::replace(&mut self.released[step], true) {
            return;
        }
        self.ready.remove(&step);
        for child in dag.children(step) {
            if self.pending[child] == 0 {
                continue;
            }
            self.pending[child] -= 1;
            if self.pending[child] == 0 && !self.released[child] {
                self.ready.insert(child);
            }
        }
    }
}

/// How a step ended, as far as scheduling cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ended {
    /// It ran and succeeded: it counts for the rollback.
    Completed,
    /// `when` was false: its dependents still run; nothing to roll back.
    Skipped,
    /// It failed with `continue_on_failure`: its dependents still run.
    Tolerated,
    /// It failed (or was cancelled): the run stops.
    Failed,
}

/// The state of a run's scheduling: what is ready, running and completed, and why it stops.
#[derive(Clone, Debug)]
pub struct Scheduler<'d> {
    dag: &'d Dag,
    queue: ReadyQueue,
    concurrency: usize,
    running: usize,
    /// Completed steps in completion order: what a rollback undoes.
    completed: Vec<usize>,
    /// Whether each step is in `completed` (a search of the list was quadratic).
    is_completed: Vec<bool>,
    stop: Option<Stop>,
}

impl<'d> Scheduler<'d> {
    pub fn new(dag: &'d Dag, concurrency: usize) -> Self {
        Self {
            dag,
            queue: ReadyQueue::new(dag),
            concurrency: concurrency.max(1),
            running: 0,
            completed: Vec::new(),
            is_completed: vec![false; dag.len()],
            stop: None,
        }
    }

    /// The next step to start, if the run is not stopping and a slot is free. The step counts
    /// as running until [`Scheduler::ended`] is called for it.
    pub fn start_next(&mut self) -> Option<usize> {
        if self.stop.is_some() || self.running >= self.concurrency {
            return None;
        }
        let step = self.queue.pop()?;
        self.running += 1;
        Some(step)
    }

    /// A running step ended.
    pub fn ended(&mut self, step: usize, how: Ended, id: &str) {
        self.running = self.running.saturating_sub(1);
        self.restore(step, how);
        if how == Ended::Failed {
            self.stop(Stop::StepFailed {
                step: id.to_owned(),
            });
        }
    }

    /// A step that ended before (a resumed run): recorded without counting as running.
    pub fn restore(&mut self, step: usize, how: Ended) {
        match how {
            Ended::Completed => {
                if let Some(seen) = self.is_completed.get_mut(step)
                    && !*seen
                {
                    *seen = true;
                    self.completed.push(step);
                }
                self.queue.release(self.dag, step);
            }
            Ended::Skipped | Ended::Tolerated => self.queue.release(self.dag, step),
            Ended::Failed => {}
        }
    }

    /// A step that failed after part of its work completed (a `for_each` with items done):
    /// it counts for the rollback, and releases nothing.
    pub fn partly_completed(&mut self, step: usize) {
        if let Some(seen) = self.is_completed.get_mut(step)
            && !*seen
        {
            *seen = true;
            self.completed.push(step);
        }
    }

    /// The run stops: nothing new starts. The first reason is kept.
    pub fn stop(&mut self, why: Stop) {
        self.stop.get_or_insert(why);
    }

    pub fn stopping(&self) -> Option<&Stop> {
        self.stop.as_ref()
    }

    pub fn completed(&self) -> &[usize] {
        &self.completed
    }

    pub fn into_parts(self) -> (Vec<usize>, Option<Stop>) {
        (self.completed, self.stop)
    }
}

/// The items of a `for_each` step: they start in list order, up to the step's concurrency,
/// until more items have failed than its `max_failures` allows (or the run stops).
#[derive(Clone, Debug)]
pub struct ItemQueue {
    next: usize,
    len: usize,
    concurrency: usize,
    budget: usize,
    running: usize,
    failed: usize,
}

impl ItemQueue {
    pub fn new(len: usize, concurrency: usize, budget: usize) -> Self {
        Self {
            next: 0,
            len,
            concurrency: concurrency.max(1),
            budget,
            running: 0,
            failed: 0,
        }
    }

    /// The next item to start, if the budget is not spent and a slot is free.
    pub fn start_next(&mut self) -> Option<usize> {
        if self.over_budget() || self.running >= self.concurrency || self.next >= self.len {
            return None;
        }
        self.next += 1;
        self.running += 1;
        Some(self.next - 1)
    }

    /// A running item ended; `failed` when it failed or was cancelled.
    pub fn ended(&mut self, failed: bool) {
        self.running = self.running.saturating_sub(1);
        if failed {
            self.failed += 1;
        }
    }

    /// More items failed than `max_failures` allows: no new item starts, the step fails.
    pub fn over_budget(&self) -> bool {
        self.failed > self.budget
    }

    pub fn failed(&self) -> usize {
        self.failed
    }
}

/// What a run that fails at `failing` does before it rolls back, as predicted from the same
/// scheduler with simulated steps: every other step ends at once, in the order the scheduler
/// starts them, and `skipped(i)` says which steps `when` skips.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Prediction {
    /// Steps that complete before the failure, in completion order (as in a `--concurrency 1`
    /// run, where nothing runs beside the failing step).
    pub completed: Vec<usize>,
    pub skipped: Vec<usize>,
    /// With more than one step in flight, steps that may also complete while `failing` runs
    /// (and so may also be rolled back), in the order they would start.
    pub may_also_complete: Vec<usize>,
}

pub fn predict(
    dag: &Dag,
    failing: usize,
    id: &str,
    concurrency: usize,
    skipped: impl Fn(usize) -> bool,
) -> Prediction {
    let mut prediction = Prediction::default();
    // Nothing beside the failing step: what surely completes.
    let mut scheduler = Scheduler::new(dag, 1);
    while let Some(step) = scheduler.start_next() {
        let how = if step == failing {
            Ended::Failed
        } else if skipped(step) {
            prediction.skipped.push(step);
            Ended::Skipped
        } else {
            Ended::Completed
        };
        scheduler.ended(step, how, id);
    }
    prediction.completed = scheduler.completed().to_vec();
    if concurrency < 2 {
        return prediction;
    }
    let mut surely = vec![false; dag.len()];
    for &step in &prediction.completed {
        surely[step] = true;
    }
    // The failing step runs long while everything the other slots can start completes: the
    // most that may complete before it fails.
    let mut scheduler = Scheduler::new(dag, concurrency);
    while let Some(step) = scheduler.start_next() {
        if step == failing {
            // It stays running: it fails once nothing else can start.
            continue;
        }
        let how = if skipped(step) {
            Ended::Skipped
        } else {
            Ended::Completed
        };
        scheduler.ended(step, how, id);
        if how == Ended::Completed && !surely[step] {
            prediction.may_also_complete.push(step);
        }
    }
    prediction
}

/// What the items of a `for_each` step do when item `failing` fails (with no failure budget
/// left), as predicted from the same [`ItemQueue`] the run uses: the items that surely complete
/// (every item started before it), and, with more than one item at once, the later items that
/// may also start and complete while it runs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ItemPrediction {
    pub completed: Vec<usize>,
    pub may_also_complete: Vec<usize>,
}

pub fn predict_items(
    len: usize,
    failing: usize,
    concurrency: usize,
    budget: usize,
) -> ItemPrediction {
    let mut prediction = ItemPrediction::default();
    let mut queue = ItemQueue::new(len, 1, budget);
    while let Some(n) = queue.start_next() {
        queue.ended(n == failing);
        if n != failing {
            prediction.completed.push(n);
        }
    }
    if concurrency < 2 {
        return prediction;
    }
    // The failing item runs long while the other slots start every item they can.
    let mut queue = ItemQueue::new(len, concurrency, budget);
    while let Some(n) = queue.start_next() {
        if n == failing {
            continue;
        }
        queue.ended(false);
        if !prediction.completed.contains(&n) {
            prediction.may_also_complete.push(n);
        }
    }
    prediction
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Runbook;

    fn dag(yaml: &str) -> Dag {
        let source = format!("runbook: 1\nname: t\nsteps:\n{yaml}");
        let (runbook, problems) = crate::load::parse(&source);
        assert!(problems.is_empty(), "{problems:?}");
        let runbook: Runbook = runbook.expect("valid runbook");
        Dag::new(&runbook)
    }

    const DIAMOND: &str = "  - { id: a, wait: 1s }\n  - { id: b, needs: [a], wait: 1s }\n  - { id: c, needs: [a], wait: 1s }\n  - { id: d, needs: [b, c], wait: 1s }\n";

    #[test]
    fn ready_steps_start_in_declaration_order_up_to_the_limit() {
        let dag = dag(DIAMOND);
        let mut s = Scheduler::new(&dag, 2);
        assert_eq!(s.start_next(), Some(0));
        assert_eq!(s.start_next(), None);
        s.ended(0, Ended::Completed, "a");
        assert_eq!(s.start_next(), Some(1));
        assert_eq!(s.start_next(), Some(2));
        assert_eq!(s.start_next(), None, "two running, limit two");
        s.ended(2, Ended::Completed, "c");
        assert_eq!(s.start_next(), None, "d still needs b");
        s.ended(1, Ended::Completed, "b");
        assert_eq!(s.start_next(), Some(3));
        assert_eq!(s.completed(), &[0, 2, 1]);
    }

    #[test]
    fn a_failure_stops_new_starts_but_not_running_steps() {
        let dag = dag(DIAMOND);
        let mut s = Scheduler::new(&dag, 4);
        s.start_next();
        s.ended(0, Ended::Completed, "a");
        assert_eq!((s.start_next(), s.start_next()), (Some(1), Some(2)));
        s.ended(1, Ended::Failed, "b");
        assert_eq!(s.running, 1);
        assert_eq!(s.start_next(), None);
        s.ended(2, Ended::Completed, "c");
        assert_eq!(s.running, 0);
        assert_eq!(
            s.stopping(),
            Some(&Stop::StepFailed {
                step: "b".to_owned()
            })
        );
        assert_eq!(s.completed(), &[0, 2]);
    }

    #[test]
    fn skipped_and_tolerated_steps_release_their_dependents() {
        let dag = dag(DIAMOND);
        let mut s = Scheduler::new(&dag, 1);
        s.start_next();
        s.ended(0, Ended::Skipped, "a");
        assert_eq!(s.start_next(), Some(1));
        s.ended(1, Ended::Tolerated, "b");
        assert_eq!(s.start_next(), Some(2));
        s.ended(2, Ended::Completed, "c");
        assert_eq!(s.start_next(), Some(3));
        assert_eq!(s.completed(), &[2]);
    }

    #[test]
    fn a_step_restored_twice_releases_once() {
        let dag = dag(DIAMOND);
        let mut s = Scheduler::new(&dag, 1);
        s.restore(0, Ended::Completed);
        s.restore(0, Ended::Completed);
        s.restore(1, Ended::Completed);
        assert_eq!(s.start_next(), Some(2));
        assert_eq!(s.completed(), &[0, 1]);
    }

    #[test]
    fn items_start_in_order_up_to_the_limit_until_the_budget_is_spent() {
        let mut q = ItemQueue::new(4, 2, 1);
        assert_eq!(
            (q.start_next(), q.start_next(), q.start_next()),
            (Some(0), Some(1), None)
        );
        q.ended(true);
        assert_eq!(q.start_next(), Some(2), "one failure is within the budget");
        q.ended(true);
        assert!(q.over_budget());
        assert_eq!(q.start_next(), None, "past the budget nothing new starts");
        assert_eq!(q.failed(), 2);
    }

    #[test]
    fn items_after_a_failing_item_may_complete_only_with_room_beside_it() {
        let p = predict_items(5, 2, 1, 0);
        assert_eq!(p.completed, vec![0, 1]);
        assert!(p.may_also_complete.is_empty());
        let p = predict_items(5, 2, 2, 0);
        assert_eq!(p.completed, vec![0, 1]);
        assert_eq!(p.may_also_complete, vec![3, 4]);
    }

    #[test]
    fn the_prediction_stops_at_the_failing_step() {
        let dag = dag(DIAMOND);
        let p = predict(&dag, 2, "c", 1, |i| i == 1);
        assert_eq!(p.completed, vec![0]);
        assert_eq!(p.skipped, vec![1]);
        assert_eq!(p.may_also_complete, Vec::<usize>::new());
    }

    #[test]
    fn with_room_beside_it_a_sibling_may_also_complete() {
        let dag = dag(DIAMOND);
        // c fails; b runs beside it and may complete; d needs c and never starts.
        let p = predict(&dag, 2, "c", 2, |_| false);
        assert_eq!(
            p.completed,
            vec![0, 1],
            "b comes first in declaration order"
        );
        let p = predict(&dag, 1, "b", 2, |_| false);
        assert_eq!(p.completed, vec![0]);
        assert_eq!(p.may_also_complete, vec![2]);
        let p = predict(&dag, 1, "b", 1, |_| false);
        assert_eq!(
            p.may_also_complete,
            Vec::<usize>::new(),
            "no room beside it"
        );
    }
}
