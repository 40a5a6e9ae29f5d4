//! What past runs measured, for `plan --history`: the median duration of each step over the
//! succeeded runs of one runbook (by name) in a state directory, read through their records.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use crate::exec::event::Status;
use crate::record::{self, StepState};

/// The measured durations of a runbook's succeeded runs.
#[derive(Clone, Debug, Default)]
pub struct History {
    /// How many succeeded runs of the runbook were read.
    pub runs: usize,
    /// Journals of the state directory that could not be read (skipped).
    pub unreadable: usize,
    /// Per step id: its median duration and how many runs it is the median of.
    medians: HashMap<String, Measured>,
}

/// One step's median duration and the number of runs it comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Measured {
    pub median: Duration,
    pub runs: usize,
}

impl History {
    /// Reads every run of `runbook` in `state`; only runs that succeeded count, and in them
    /// only steps that ran and succeeded (a step skipped, or decided by the operator, took no
    /// measurable time).
    pub fn load(state: &Path, runbook: &str) -> Self {
        let mut history = Self::default();
        let mut durations: HashMap<String, Vec<u64>> = HashMap::new();
        for id in record::run_ids(state) {
            let Ok(run) = record::load(state, &id) else {
                history.unreadable += 1;
                continue;
            };
            let succeeded = run
                .finished
                .as_ref()
                .is_some_and(|f| f.status == "succeeded");
            if run.runbook != runbook || !succeeded {
                continue;
            }
            history.runs += 1;
            for step in &run.steps {
                if step.state == StepState::Ended(Status::Succeeded) && step.decided.is_none() {
                    durations
                        .entry(step.id.clone())
                        .or_default()
                        .push(step.duration_ms);
                }
            }
        }
        history.medians = durations
            .into_iter()
            .map(|(id, mut ms)| {
                let runs = ms.len();
                (
                    id,
                    Measured {
                        median: Duration::from_millis(median(&mut ms)),
                        runs,
                    },
                )
            })
            .collect();
        history
    }

    /// The measured median of step `id`, when a succeeded run ran it.
    pub fn get(&self, id: &str) -> Option<Measured> {
        self.medians.get(id).copied()
    }
}

/// The middle value; with an even count, the mean of the two middle values.
fn median(values: &mut [u64]) -> u64 {
    values.sort_unstable();
    let n = values.len();
    match n {
        0 => 0,
        _ if n % 2 == 1 => values[n / 2],
        _ => {
            values[n / 2 - 1] / 2
                + values[n / 2] / 2
                + (values[n / 2 - 1] % 2 + values[n / 2] % 2) / 2
        }
    }
}

#[cfg(test)]
mod tests {
    use super::median;

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&mut [900, 100, 300]), 300);
        assert_eq!(median(&mut [400, 100, 300, 200]), 250);
        assert_eq!(median(&mut [u64::MAX, u64::MAX]), u64::MAX);
        assert_eq!(median(&mut []), 0);
    }
}
