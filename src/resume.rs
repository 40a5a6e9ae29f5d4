//! Rebuilds a run from its journal: what completed (with the outputs later steps read), what
//! was in flight when the process died ("in doubt"), and how far a rollback had got.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use crate::exec::Resume;
use crate::exec::attempt::Outcome;
use crate::exec::event::Status;
use crate::journal::{self, JournalError};
use crate::model::Runbook;

/// A run as its journal tells it.
#[derive(Debug)]
pub struct Recorded {
    pub run_id: String,
    pub runbook: String,
    pub path: String,
    pub hash: String,
    pub params: serde_json::Map<String, Value>,
    pub started_at: String,
    pub no_rollback: bool,
    pub events: Vec<Value>,
    /// `(status, exit_code)` when the run finished.
    pub finished: Option<(String, u8)>,
}

#[derive(Debug, thiserror::Error)]
pub enum ResumeError {
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error("no run `{0}` in this state directory")]
    NoRun(String),
    #[error("there are no runs in this state directory")]
    NoRuns,
    #[error("the journal of run `{0}` does not say which runbook it ran")]
    NoContext(String),
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

/// The run ids in a state directory, oldest first (ids sort by time).
pub fn run_ids(state: &Path) -> Vec<String> {
    let mut ids: Vec<String> = std::fs::read_dir(state.join("runs"))
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .filter(|e| e.path().join("journal.jsonl").exists())
                .filter_map(|e| e.file_name().to_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    ids.sort();
    ids
}

/// Reads the journal of `run_id`, or of the most recent run when there is none.
pub fn load_or_last(state: &Path, run_id: Option<&str>) -> Result<Recorded, ResumeError> {
    match run_id {
        Some(id) => load(state, id),
        None => load(state, &run_ids(state).pop().ok_or(ResumeError::NoRuns)?),
    }
}

/// Reads a run's journal.
pub fn load(state: &Path, run_id: &str) -> Result<Recorded, ResumeError> {
    let path = journal::journal_path(state, run_id);
    if !path.exists() {
        return Err(ResumeError::NoRun(run_id.to_owned()));
    }
    let events = journal::read(&path)?;
    let find = |kind: &str| events.iter().find(|e| e["event"] == kind);
    let started = find("run_started");
    let context = find("run_context").ok_or_else(|| ResumeError::NoContext(run_id.to_owned()))?;
    let finished = events
        .iter()
        .rev()
        .find(|e| e["event"] == "run_finished")
        .map(|e| {
            (
                e["status"].as_str().unwrap_or_default().to_owned(),
                u8::try_from(e["exit_code"].as_u64().unwrap_or(1)).unwrap_or(1),
            )
        });
    Ok(Recorded {
        run_id: run_id.to_owned(),
        runbook: started
            .and_then(|e| e["runbook"].as_str())
            .unwrap_or_default()
            .to_owned(),
        path: context["path"].as_str().unwrap_or_default().to_owned(),
        hash: context["hash"].as_str().unwrap_or_default().to_owned(),
        params: context["params"].as_object().cloned().unwrap_or_default(),
        started_at: started
            .and_then(|e| e["at"].as_str())
            .unwrap_or_default()
            .to_owned(),
        no_rollback: context["no_rollback"].as_bool().unwrap_or(false),
        events,
        finished,
    })
}

/// What to do with a step that was in flight.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    Done,
    Failed,
    Rerun,
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

fn outcome(event: &Value, status: Status) -> Outcome {
    Outcome {
        status,
        attempts: u32::try_from(event["attempts"].as_u64().unwrap_or(0)).unwrap_or(0),
        duration: Duration::from_millis(event["duration_ms"].as_u64().unwrap_or(0)),
        exit_code: event["exit_code"]
            .as_i64()
            .and_then(|c| i32::try_from(c).ok()),
        stdout: event["stdout"].as_str().unwrap_or_default().to_owned(),
        stderr: event["stderr"].as_str().unwrap_or_default().to_owned(),
        outputs: Default::default(),
        message: event["message"].as_str().map(str::to_owned),
        sql: None,
        messages: Vec::new(),
        restored: event.get("data").cloned().filter(|d| !d.is_null()),
    }
}

/// Rebuilds where the run stands. `rollback_only` is `runbook rollback`.
pub fn rebuild(
    recorded: &Recorded,
    runbook: &Runbook,
    assume: &HashMap<String, Decision>,
    rollback_only: bool,
) -> Result<Resume, ResumeError> {
    let index: HashMap<&str, usize> = runbook
        .steps
        .iter()
        .enumerate()
        .map(|(i, s)| (s.id.as_str(), i))
        .collect();
    let mut resume = Resume {
        rollback_only,
        ..Resume::default()
    };
    let mut in_flight: BTreeSet<usize> = BTreeSet::new();
    let mut rollback_in_flight: BTreeSet<usize> = BTreeSet::new();
    let mut processes: HashMap<usize, u32> = HashMap::new();
    for event in &recorded.events {
        let step = event["step"].as_str().and_then(|s| index.get(s).copied());
        match (event["event"].as_str().unwrap_or_default(), step) {
            ("process_started", Some(i)) => {
                if let Some(pgid) = event["pgid"].as_u64().and_then(|p| u32::try_from(p).ok()) {
                    processes.insert(i, pgid);
                }
            }
            ("step_started", Some(i)) => {
                in_flight.insert(i);
            }
            ("step_finished", Some(i)) => {
                in_flight.remove(&i);
                let status = match event["status"].as_str() {
                    Some("succeeded") => Status::Succeeded,
                    Some("skipped") => Status::Skipped,
                    Some("cancelled") => Status::Cancelled,
                    _ => Status::Failed,
                };
                // A step the journal already counts as done is not counted twice.
                if resume.done.iter().any(|(d, _)| *d == i) {
                    continue;
                }
                match status {
                    Status::Succeeded => {
                        resume.done.push((i, outcome(event, status)));
                        resume.completed.push(i);
                    }
                    Status::Failed if runbook.steps[i].continues_on_failure() => {
                        resume.done.push((i, outcome(event, status)));
                    }
                    _ => {
                        resume.stopped.get_or_insert_with(|| {
                            format!("step `{}` {}", runbook.steps[i].id.value, status.name())
                        });
                    }
                }
            }
            ("step_skipped", Some(i)) => {
                resume.done.push((i, outcome(event, Status::Skipped)));
            }
            ("rollback_started", _) => {
                resume
                    .stopped
                    .get_or_insert_with(|| "the run was rolling back".to_owned());
            }
            ("rollback_step_started", Some(i)) => {
                rollback_in_flight.insert(i);
            }
            ("rollback_step_finished", Some(i)) => {
                rollback_in_flight.remove(&i);
                resume.rolled_back.push(i);
            }
            _ => {}
        }
    }
    // Whatever an in-doubt step left running is ended first, so that what it did is settled
    // before anyone decides whether it is done.
    for i in in_flight.iter().chain(&rollback_in_flight) {
        if let Some(&pgid) = processes.get(i)
            && crate::steps::command::kill_leftover(pgid)
        {
            eprintln!(
                "note: ended process group {pgid} left running by `{}`",
                runbook.steps[*i].id.value
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    if rollback_only {
        resume.stopped = Some("rollback requested".to_owned());
    } else if let Some((status, _)) = &recorded.finished {
        return Err(ResumeError::Finished {
            run: recorded.run_id.clone(),
            status: status.clone(),
        });
    }

    let mut missing = Vec::new();
    for &i in &in_flight {
        let id = &runbook.steps[i].id.value;
        let decision = assume
            .get(id.as_str())
            .copied()
            .or_else(|| runbook.steps[i].is_idempotent().then_some(Decision::Rerun));
        match decision {
            Some(Decision::Done) => {
                resume.done.push((
                    i,
                    Outcome {
                        restored: None,
                        ..outcome(&Value::Null, Status::Succeeded)
                    },
                ));
                resume.completed.push(i);
                resume.decisions.push(format!("{id}=done"));
            }
            Some(Decision::Failed) => {
                resume
                    .stopped
                    .get_or_insert_with(|| format!("step `{id}` assumed failed"));
                resume.decisions.push(format!("{id}=failed"));
            }
            Some(Decision::Rerun) => resume.decisions.push(format!("{id}=rerun")),
            None => missing.push(id.clone()),
        }
    }
    for &i in &rollback_in_flight {
        let key = format!("rollback:{}", runbook.steps[i].id.value);
        match assume.get(&key) {
            Some(Decision::Done) | Some(Decision::Failed) => {
                resume.rolled_back.push(i);
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
