//! A run on one time axis, from its journal: when each step, instance and rollback action
//! started (as an offset from the start of the run), how long it took, how it ended; and
//! the measured time to service restored (from the start of the run to the end of the
//! `service_restored_at` step) against the runbook's RTO, both recorded when the run started.

use std::collections::HashMap;
use std::time::SystemTime;

use crate::exec::event::{EventKind, Status};
use crate::record::RunRecord;

/// One bar of the timeline.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bar {
    /// The step or instance id.
    pub step: String,
    /// A rollback action, not the step itself.
    pub rollback: bool,
    /// Milliseconds from the start of the run; `None` when the journal cannot say.
    pub start_ms: Option<u64>,
    /// `None`: it never finished (in doubt).
    pub duration_ms: Option<u64>,
    pub status: String,
    pub attempts: u32,
}

/// The measured time to service restored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Restored {
    pub step: String,
    /// From the start of the run to the end of `step`; `None`: it did not succeed.
    pub after_ms: Option<u64>,
    pub rto_ms: Option<u64>,
}

/// The bars in the order they started, and the time to service restored.
#[derive(Clone, Debug, Default)]
pub struct Timeline {
    pub bars: Vec<Bar>,
    pub restored: Option<Restored>,
}

/// A journal timestamp.
pub fn at(text: &str) -> Option<SystemTime> {
    humantime::parse_rfc3339_weak(text).ok()
}

/// Milliseconds from `from` to `to` (0 when a clock went backwards).
pub fn between(from: SystemTime, to: SystemTime) -> u64 {
    to.duration_since(from)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl Timeline {
    pub fn of(record: &RunRecord) -> Self {
        let origin = at(&record.started_at);
        let offset = |t: Option<SystemTime>| Some(between(origin?, t?));
        let mut bars: Vec<Bar> = Vec::new();
        // Open bars (started, not finished) by (rollback, step).
        let mut open: HashMap<(bool, String), usize> = HashMap::new();
        let mut started: HashMap<(bool, String), Option<SystemTime>> = HashMap::new();
        for event in &record.events {
            let now = at(&event.at);
            match &event.kind {
                EventKind::StepStarted { step, attempt, .. } => {
                    let key = (false, step.clone());
                    if *attempt == 1 || !open.contains_key(&key) {
                        started.insert(key.clone(), now);
                        open.insert(key, push(&mut bars, step, false, offset(now)));
                    }
                    if let Some(&i) = open.get(&(false, step.clone())) {
                        bars[i].attempts = *attempt;
                    }
                }
                EventKind::RollbackStepStarted { step, .. } => {
                    let key = (true, step.clone());
                    started.insert(key.clone(), now);
                    open.insert(key, push(&mut bars, step, true, offset(now)));
                    if let Some(&i) = open.get(&(true, step.clone())) {
                        bars[i].attempts = 1;
                    }
                }
                EventKind::AttemptFailed { step, attempt, .. } => {
                    // A failed attempt of a rollback action: its next one follows.
                    if let Some(&i) = open.get(&(true, step.clone())) {
                        bars[i].attempts = attempt.saturating_add(1);
                    }
                }
                EventKind::StepFinished {
                    step,
                    status,
                    attempts,
                    duration_ms,
                    ..
                } => {
                    let key = (false, step.clone());
                    // A `for_each` step has no start of its own: its loop began
                    // `duration_ms` before it ended.
                    let i = match open.remove(&key) {
                        Some(i) => i,
                        None => {
                            let start = now.and_then(|n| {
                                n.checked_sub(std::time::Duration::from_millis(*duration_ms))
                            });
                            push(&mut bars, step, false, offset(start))
                        }
                    };
                    bars[i].duration_ms = Some(*duration_ms);
                    bars[i].status = status.name().to_owned();
                    bars[i].attempts = *attempts;
                }
                EventKind::StepSkipped { step, .. } => {
                    let i = push(&mut bars, step, false, offset(now));
                    bars[i].duration_ms = Some(0);
                    bars[i].status = Status::Skipped.name().to_owned();
                }
                EventKind::RollbackStepFinished { step, status, .. } => {
                    let key = (true, step.clone());
                    if let Some(i) = open.remove(&key) {
                        let from = started.get(&key).copied().flatten();
                        bars[i].duration_ms = from.zip(now).map(|(f, n)| between(f, n));
                        bars[i].status = status.name().to_owned();
                        if *status != Status::Succeeded {
                            // The attempt that failed last is counted already.
                            bars[i].attempts = bars[i].attempts.saturating_sub(1).max(1);
                        }
                    }
                }
                _ => {}
            }
        }
        bars.sort_by_key(|b| b.start_ms.unwrap_or(u64::MAX));
        let restored = record.context.as_ref().and_then(|c| {
            let step = c
                .service_restored_at
                .clone()
                .or_else(|| c.step_ids.last().cloned())?;
            let after_ms = bars
                .iter()
                .filter(|b| !b.rollback && b.step == step && b.status == "succeeded")
                .find_map(|b| {
                    b.start_ms
                        .zip(b.duration_ms)
                        .map(|(s, d)| s.saturating_add(d))
                });
            Some(Restored {
                step,
                after_ms,
                rto_ms: c.rto_ms,
            })
        });
        Self { bars, restored }
    }
}

/// A new open bar; its index.
fn push(bars: &mut Vec<Bar>, step: &str, rollback: bool, start_ms: Option<u64>) -> usize {
    bars.push(Bar {
        step: step.to_owned(),
        rollback,
        start_ms,
        duration_ms: None,
        status: "in doubt".to_owned(),
        attempts: 0,
    });
    bars.len() - 1
}
