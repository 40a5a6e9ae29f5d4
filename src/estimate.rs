//! The time estimate of a plan: each step's expected duration (its `expect`, a `wait`'s
//! length, or the median of past runs with `--history`), expected start and end when every
//! ready step starts at once, the critical path to the `service_restored_at` step, the time
//! to service restored against the `rto`, and the worst case (every attempt running out of
//! time, with the longest retry delays).

use std::time::Duration;

use serde::Serialize;

use crate::dag::Dag;
use crate::history::History;
use crate::model::{Runbook, StepKind};
use crate::plan::PlannedStep;
use crate::retry::Policy;

/// The estimate of a whole plan.
#[derive(Clone, Debug, Serialize)]
pub struct Estimate {
    /// The longest chain of steps ending at the `service_restored_at` step, first to last.
    pub critical_path: Vec<String>,
    pub service_restored_at: String,
    pub service_restored_s: f64,
    /// `None`: unbounded (see `unbounded`).
    pub worst_case_s: Option<f64>,
    pub rto_s: Option<f64>,
    pub exceeds_rto: bool,
    /// Why the worst case has no bound: steps without a timeout, loops whose items are
    /// known only at run time.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unbounded: Vec<String>,
    /// Steps with neither `expect` nor history (counted as 0).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub no_estimate: Vec<String>,
    /// Approvals: a person's time, counted as 0 unless they declare `expect`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub human_waits: Vec<String>,
    /// `for_each` steps whose items are known only at run time: `expect` counted once.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub items_unknown: Vec<String>,
    /// With `--history`: how many succeeded runs were read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub history_runs: Option<usize>,
    /// With `--history`: journals of the state directory that could not be read (skipped).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub history_unreadable: Option<usize>,
    /// Whether the runbook says anything about time (an `expect`, an `rto`, or history):
    /// the human plan shows the estimate only then.
    #[serde(skip)]
    pub declared: bool,
}

/// Where a step's expected duration comes from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// Its `expect` (times the rounds of a `for_each`).
    Expect,
    /// The median of past runs (`--history`).
    History,
    /// A `wait` step: its length.
    Wait,
    /// An approval without `expect`: a person's time, counted as 0.
    HumanWait,
    /// An assertion: evaluated at once.
    Assert,
    /// `when` is false on the params: skipped.
    Skipped,
    /// Nothing says: counted as 0.
    #[default]
    None,
}

impl Source {
    pub const fn name(self) -> &'static str {
        match self {
            Source::Expect => "expect",
            Source::History => "history",
            Source::Wait => "wait",
            Source::HumanWait => "a person's time, not counted",
            Source::Assert => "an assertion, at once",
            Source::Skipped => "skipped",
            Source::None => "no estimate",
        }
    }
}

/// One step's place in the estimate.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Expected {
    pub expected_start_s: f64,
    pub expected_end_s: f64,
    pub expected_from: Source,
    /// With `expected_from: history`: how many runs the median is of.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub history_runs: Option<usize>,
    pub critical: bool,
}

/// Seconds, to the millisecond.
pub fn seconds(d: Duration) -> f64 {
    d.as_millis() as f64 / 1000.0
}

/// Fills in each planned step's `Expected` and returns the plan's estimate (`None` for a
/// runbook without steps). `waves` are `dag`'s, parents first.
pub fn estimate(
    runbook: &Runbook,
    dag: &Dag,
    waves: &[Vec<usize>],
    steps: &mut [PlannedStep],
    history: Option<&History>,
) -> Option<Estimate> {
    let n = runbook.steps.len().min(steps.len());
    let service = match &runbook.service_restored_at {
        Some(named) => dag.index_of(named)?,
        None => n.checked_sub(1)?,
    };
    let mut expected = vec![Duration::ZERO; n];
    let mut worst: Vec<Option<Duration>> = vec![Some(Duration::ZERO); n];
    let mut estimate = Estimate {
        critical_path: Vec::new(),
        service_restored_at: runbook.steps[service].id.value.clone(),
        service_restored_s: 0.0,
        worst_case_s: None,
        rto_s: runbook.rto.as_ref().map(|r| seconds(r.value.get())),
        exceeds_rto: false,
        unbounded: Vec::new(),
        no_estimate: Vec::new(),
        human_waits: Vec::new(),
        items_unknown: Vec::new(),
        history_runs: history.map(|h| h.runs),
        history_unreadable: history.map(|h| h.unreadable).filter(|&n| n > 0),
        declared: history.is_some()
            || runbook.rto.is_some()
            || runbook.steps.iter().any(|s| s.expect.is_some()),
    };
    for i in 0..n {
        let (duration, source, runs) = expected_duration(runbook, i, &steps[i], history);
        let id = &runbook.steps[i].id.value;
        if source == Source::None {
            estimate.no_estimate.push(id.clone());
        }
        if runbook.steps[i].is_approval() {
            estimate.human_waits.push(id.clone());
        }
        if source == Source::Expect && rounds(&steps[i]).is_none() {
            estimate.items_unknown.push(id.clone());
        }
        expected[i] = duration;
        worst[i] = worst_duration(runbook, i, &steps[i]);
        steps[i].expected.expected_from = source;
        steps[i].expected.history_runs = runs;
    }

    // Longest paths, in the order the scheduler releases steps (parents first).
    let mut end = vec![Duration::ZERO; n];
    let mut worst_end: Vec<Option<Duration>> = vec![None; n];
    let mut via: Vec<Option<usize>> = vec![None; n];
    for i in waves.iter().flatten().copied().filter(|&i| i < n) {
        let mut parents: Vec<usize> = dag.parents(i).filter(|&p| p < n).collect();
        parents.sort_unstable();
        // The first declared of the latest-ending parents.
        let latest = parents
            .iter()
            .copied()
            .fold(None::<usize>, |best, p| match best {
                Some(b) if end[b] >= end[p] => Some(b),
                _ => Some(p),
            });
        let start = latest.map_or(Duration::ZERO, |p| end[p]);
        via[i] = latest;
        end[i] = start.saturating_add(expected[i]);
        steps[i].expected.expected_start_s = seconds(start);
        steps[i].expected.expected_end_s = seconds(end[i]);
        let worst_start = parents
            .iter()
            .try_fold(Duration::ZERO, |acc, &p| worst_end[p].map(|e| acc.max(e)));
        worst_end[i] = worst_start.and_then(|s| worst[i].map(|w| s.saturating_add(w)));
    }

    let mut path = vec![service];
    while let Some(p) = path.last().and_then(|&last| via[last]) {
        path.push(p);
    }
    path.reverse();
    for &i in &path {
        steps[i].expected.critical = true;
    }
    estimate.critical_path = path
        .iter()
        .map(|&i| runbook.steps[i].id.value.clone())
        .collect();
    estimate.service_restored_s = seconds(end[service]);
    estimate.worst_case_s = worst_end[service].map(seconds);
    estimate.exceeds_rto = runbook
        .rto
        .as_ref()
        .is_some_and(|rto| end[service] > rto.value.get());
    // Only what comes before service is restored can leave its worst case unbounded.
    let mut before = vec![false; n];
    let mut stack = vec![service];
    before[service] = true;
    while let Some(i) = stack.pop() {
        for p in dag.parents(i).filter(|&p| p < n) {
            if !before[p] {
                before[p] = true;
                stack.push(p);
            }
        }
    }
    for i in (0..n).filter(|&i| before[i] && worst[i].is_none()) {
        let id = &runbook.steps[i].id.value;
        estimate.unbounded.push(match rounds(&steps[i]) {
            None if runbook.attempt_timeout(&runbook.steps[i]).is_some() => {
                format!("the items of `{id}` are known only at run time")
            }
            _ => format!("`{id}` has no timeout"),
        });
    }
    Some(estimate)
}

/// How many rounds a `for_each` step takes (items ÷ concurrency, rounded up); 1 for any
/// other step; `None` when its items are known only at run time.
fn rounds(step: &PlannedStep) -> Option<u32> {
    match &step.for_each {
        None => Some(1),
        Some(each) if each.items_of.is_some() => None,
        Some(each) => {
            let rounds = each.instances.len().div_ceil(each.concurrency.max(1));
            Some(u32::try_from(rounds).unwrap_or(u32::MAX))
        }
    }
}

/// Step `i`'s expected duration, where it comes from, and the runs of its history.
fn expected_duration(
    runbook: &Runbook,
    i: usize,
    planned: &PlannedStep,
    history: Option<&History>,
) -> (Duration, Source, Option<usize>) {
    let step = &runbook.steps[i];
    if planned
        .when
        .as_ref()
        .is_some_and(|w| w.value == Some(false))
    {
        return (Duration::ZERO, Source::Skipped, None);
    }
    if let Some(measured) = history.and_then(|h| h.get(&step.id.value)) {
        return (measured.median, Source::History, Some(measured.runs));
    }
    if let Some(expect) = &step.expect {
        // Items known only at run time: one item's worth (listed in `items_unknown`).
        let rounds = rounds(planned).unwrap_or(1);
        return (
            expect.value.get().saturating_mul(rounds),
            Source::Expect,
            None,
        );
    }
    match &step.kind {
        StepKind::Wait(d) => (d.value.get(), Source::Wait, None),
        StepKind::Approval(_) => (Duration::ZERO, Source::HumanWait, None),
        StepKind::Assert(_) => (Duration::ZERO, Source::Assert, None),
        _ => (Duration::ZERO, Source::None, None),
    }
}

/// Step `i`'s worst case: every attempt runs out of time, with the longest delay before
/// each retry (jitter only shortens it); `None` when nothing bounds it. An approval without
/// its own timeout counts 0: a person's time is not the runbook's (the plan says so).
fn worst_duration(runbook: &Runbook, i: usize, planned: &PlannedStep) -> Option<Duration> {
    let step = &runbook.steps[i];
    if planned
        .when
        .as_ref()
        .is_some_and(|w| w.value == Some(false))
    {
        return Some(Duration::ZERO);
    }
    match &step.kind {
        StepKind::Wait(d) => return Some(d.value.get()),
        // Evaluated at once: only the delays between its attempts take time.
        StepKind::Assert(_) => return Some(attempts_worst(Duration::ZERO, &planned.retry)),
        _ => {}
    }
    let timeout = runbook.attempt_timeout(step);
    if step.is_approval() && timeout.is_none() {
        return Some(Duration::ZERO);
    }
    let one = attempts_worst(timeout?, &planned.retry);
    Some(one.saturating_mul(rounds(planned)?))
}

/// `attempts` attempts of `timeout` each, and the delays between them.
fn attempts_worst(timeout: Duration, policy: &Policy) -> Duration {
    // Past 32 attempts the delay no longer grows (see `Policy::base_delay`): the rest are
    // counted at once, so a hostile `attempts: 4000000000` costs nothing.
    const GROWING: u32 = 40;
    let attempts = policy.attempts.max(1);
    let mut total = timeout.saturating_mul(attempts);
    for next in 2..=attempts.min(GROWING) {
        total = total.saturating_add(policy.base_delay(next));
    }
    if attempts > GROWING {
        total = total.saturating_add(
            policy
                .base_delay(GROWING)
                .saturating_mul(attempts - GROWING),
        );
    }
    total
}
