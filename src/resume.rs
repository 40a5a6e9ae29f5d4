//! Where a recorded run stands, for `resume` and `rollback`: what completed (with what later
//! steps read), what was in flight when the process died ("in doubt") and what the operator
//! decided about it, and how far a rollback had got. Built on the run's [`RunRecord`].

use std::collections::HashMap;
use std::time::Duration;

use crate::exec::Resume;
use crate::exec::attempt::Outcome;
use crate::exec::event::Status;
use crate::model::Runbook;
use crate::outcome::Stop;
use crate::prompt::Decision;
use crate::record::{RollbackState, RunRecord, StepRecord, StepState};
use crate::steps::process_group::{Leftover, ProcessGroup};

#[derive(Debug, thiserror::Error)]
pub enum ResumeError {
    #[error(
        "run `{run}` already finished: {status}; nothing to resume (`runbook rollback {run}` undoes it)"
    )]
    Finished { run: String, status: String },
    #[error(
        "the runbook changed since run `{run}` started ({path}); resume with --allow-changed only if the change is safe"
    )]
    Changed { run: String, path: String },
    #[error("steps in doubt (started, not known to have finished): {}; decide with --assume STEP=done|failed|rerun", .0.join(", "))]
    InDoubt(Vec<String>),
    #[error("--assume {0}: expected STEP=done, STEP=failed or STEP=rerun")]
    BadAssume(String),
}

/// `STEP=done|failed|rerun` (`rollback:STEP=…` for a rollback action).
pub fn parse_assume(args: &[String]) -> Result<HashMap<String, Decision>, ResumeError> {
    args.iter()
        .map(|a| {
            let (step, what) = a
                .split_once('=')
                .ok_or_else(|| ResumeError::BadAssume(a.clone()))?;
            let decision = match what {
                "done" => Decision::Done,
                "failed" => Decision::Failed,
                "rerun" => Decision::Rerun,
                _ => return Err(ResumeError::BadAssume(a.clone())),
            };
            Ok((step.to_owned(), decision))
        })
        .collect()
}

fn outcome(step: &StepRecord, status: Status) -> Outcome {
    Outcome {
        status,
        attempts: step.attempts,
        duration: Duration::from_millis(step.duration_ms),
        exit_code: step.exit_code,
        stdout: step.stdout.clone(),
        stderr: step.stderr.clone(),
        message: step.message.clone(),
        data: step.data.clone().unwrap_or_default(),
        outputs_failed: false,
    }
}

/// Ends what steps in doubt left running, so that what they did is settled before anyone
/// decides whether they are done. Returns each recorded group, with its step and what became
/// of it.
pub fn end_leftovers(record: &RunRecord) -> Vec<(String, ProcessGroup, Leftover)> {
    let doubtful = record
        .in_doubt()
        .map(|s| s.id.as_str())
        .chain(record.rollbacks_in_doubt().map(|r| r.step.as_str()));
    let mut ended = Vec::new();
    for id in doubtful {
        if let Some(group) = record.get(id).and_then(|s| s.group.as_ref()) {
            ended.push((id.to_owned(), group.clone(), group.end_leftover()));
        }
    }
    if ended.iter().any(|(_, _, l)| *l == Leftover::Ended) {
        std::thread::sleep(Duration::from_millis(50));
    }
    ended
}

/// Each step's position, by id.
fn positions(steps: &[crate::model::Step]) -> HashMap<&str, usize> {
    steps
        .iter()
        .enumerate()
        .map(|(i, s)| (s.id.as_str(), i))
        .collect()
}

/// Rebuilds where the run stands. `rollback_only` is `runbook rollback`.
pub fn rebuild(
    record: &RunRecord,
    runbook: &Runbook,
    assume: &HashMap<String, Decision>,
    rollback_only: bool,
) -> Result<Resume, ResumeError> {
    let index = positions(&runbook.steps);
    // `STEP[KEY]`: an instance of the `for_each` step STEP.
    let loop_of = |id: &str| -> Option<usize> {
        let (step, _) = id.strip_suffix(']')?.split_once('[')?;
        index
            .get(step)
            .copied()
            .filter(|&i| runbook.steps[i].for_each.is_some())
    };
    let finally = positions(&runbook.finally);
    let mut resume = Resume::default();
    for step in record.ended_in_order() {
        if let (Some(_), StepState::Ended(status)) = (finally.get(step.id.as_str()), step.state) {
            resume
                .finally_done
                .push((step.id.clone(), outcome(step, status)));
            continue;
        }
        if let (None, Some(_), StepState::Ended(status)) =
            (index.get(step.id.as_str()), loop_of(&step.id), step.state)
        {
            resume
                .instances
                .push((step.id.clone(), outcome(step, status)));
            continue;
        }
        let (Some(&i), StepState::Ended(status)) = (index.get(step.id.as_str()), step.state) else {
            continue;
        };
        match status {
            Status::Succeeded | Status::Skipped => resume.done.push((i, outcome(step, status))),
            Status::Failed if runbook.steps[i].continues_on_failure() => {
                resume.done.push((i, outcome(step, status)));
            }
            Status::Failed | Status::Cancelled => {
                resume.stopped.get_or_insert(Stop::StepFailed {
                    step: step.id.clone(),
                });
            }
        }
    }
    if record.rolling_back {
        resume.stopped.get_or_insert(Stop::WasRollingBack);
    }
    for r in &record.rollbacks {
        // Only a rollback action that succeeded is done; a failed one is tried again.
        if let (
            Some(&i),
            RollbackState::Ended {
                status: Status::Succeeded,
                ..
            },
        ) = (index.get(r.step.as_str()), &r.state)
        {
            resume.rolled_back.push(i);
        } else if loop_of(&r.step).is_some()
            && let RollbackState::Ended {
                status: Status::Succeeded,
                ..
            } = &r.state
        {
            resume.rolled_back_instances.push(r.step.clone());
        }
    }
    if rollback_only {
        resume.rollback = true;
        resume.stopped = Some(Stop::RollbackRequested);
    } else if let Some(finished) = &record.finished {
        return Err(ResumeError::Finished {
            run: record.run_id.clone(),
            status: finished.status.clone(),
        });
    }

    let mut missing = Vec::new();
    for step in record.in_doubt() {
        // A finally step in doubt: decided like any step, but never a reason to stop.
        if let Some(&f) = finally.get(step.id.as_str()) {
            let id = &step.id;
            let decision = assume.get(id.as_str()).copied().or_else(|| {
                runbook.finally[f]
                    .is_idempotent()
                    .then_some(Decision::Rerun)
            });
            let status = match decision {
                Some(Decision::Done) => Status::Succeeded,
                Some(Decision::Failed) => Status::Failed,
                Some(Decision::Rerun) => {
                    resume.decisions.push(format!("{id}=rerun"));
                    continue;
                }
                None => {
                    missing.push(id.clone());
                    continue;
                }
            };
            resume
                .finally_done
                .push((id.clone(), Outcome::empty(status)));
            resume.decisions.push(format!(
                "{id}={}",
                if status == Status::Succeeded {
                    "done"
                } else {
                    "failed"
                }
            ));
            continue;
        }
        let instance = !index.contains_key(step.id.as_str());
        let Some(i) = index
            .get(step.id.as_str())
            .copied()
            .or_else(|| loop_of(&step.id))
        else {
            continue;
        };
        let id = &step.id;
        let decision = assume
            .get(id.as_str())
            .copied()
            .or_else(|| runbook.steps[i].is_idempotent().then_some(Decision::Rerun))
            // A multi-party approval that was waiting did nothing: it waits again, and the
            // votes its journal holds still count.
            .or_else(|| step.quorum.is_some().then_some(Decision::Rerun));
        match decision {
            Some(Decision::Done) if instance => {
                let done = Outcome::empty(Status::Succeeded);
                resume.instances.push((id.clone(), done));
                resume.decisions.push(format!("{id}=done"));
            }
            Some(Decision::Done) => {
                resume.done.push((i, Outcome::empty(Status::Succeeded)));
                resume.decisions.push(format!("{id}=done"));
            }
            Some(Decision::Failed) => {
                if instance {
                    let failed = Outcome::empty(Status::Failed);
                    resume.instances.push((id.clone(), failed));
                }
                resume
                    .stopped
                    .get_or_insert_with(|| Stop::AssumedFailed { step: id.clone() });
                resume.decisions.push(format!("{id}=failed"));
            }
            Some(Decision::Rerun) => resume.decisions.push(format!("{id}=rerun")),
            None => missing.push(id.clone()),
        }
    }
    for r in record.rollbacks_in_doubt() {
        let step = index.get(r.step.as_str()).copied();
        if step.is_none() && loop_of(&r.step).is_none() {
            continue;
        }
        let key = format!("rollback:{}", r.step);
        match assume.get(&key) {
            Some(Decision::Done) | Some(Decision::Failed) => {
                match step {
                    Some(i) => resume.rolled_back.push(i),
                    None => resume.rolled_back_instances.push(r.step.clone()),
                }
                resume.decisions.push(format!("{key}=done"));
            }
            Some(Decision::Rerun) => resume.decisions.push(format!("{key}=rerun")),
            None => missing.push(key),
        }
    }
    if !missing.is_empty() {
        return Err(ResumeError::InDoubt(missing));
    }
    Ok(resume)
}
