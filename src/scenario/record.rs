//! `runbook test --record RUN_ID`: a test file from a real run's journal. Each attempt's result
//! becomes a mock (per attempt, per instance, per rollback action) and what the run did becomes
//! the expectations, so a rehearsal on a test estate becomes a regression test. The journal is
//! masked already, and nothing here unmasks: a recorded test holds no secret. The test names the
//! runbook by path, not by hash: it still runs after the runbook changes, and says how the new
//! runbook behaves differently.

use std::path::{Path, PathBuf};

use indexmap::IndexMap;
use serde_json::{Value, json};

use super::expect::Actual;
use super::names::step_of;
use crate::exec::event::{EventKind, Status};
use crate::model::{RollbackKind, Runbook};
use crate::record::RecordError;
use crate::render::Action;
use crate::retry::Failure;

#[derive(Debug, thiserror::Error)]
pub enum RecordTestError {
    #[error(transparent)]
    Record(#[from] RecordError),
    #[error("run `{0}` has no record of its runbook file (it was not started by `runbook run`)")]
    NoContext(String),
    #[error("run `{0}` has not finished: only a finished run can be recorded")]
    Unfinished(String),
    #[error(
        "run `{0}` was resumed: its journal spans several processes and cannot be replayed as one run"
    )]
    Resumed(String),
    #[error("cannot read the runbook `{path}` of run `{run}`: it has errors or is gone")]
    Runbook { run: String, path: String },
    #[error("`{0}` exists; remove it or write elsewhere with -o FILE")]
    Exists(String),
    #[error("cannot write `{path}`: {reason}")]
    Write { path: String, reason: String },
}

/// Writes the test file of run `run_id`; returns its path.
pub fn record(state: &Path, run_id: &str, out: Option<&Path>) -> Result<PathBuf, RecordTestError> {
    let record = crate::record::load_or_last(state, Some(run_id))?;
    let run = record.run_id.clone();
    let context = record
        .context
        .clone()
        .ok_or_else(|| RecordTestError::NoContext(run.clone()))?;
    let finished = record
        .finished
        .clone()
        .ok_or_else(|| RecordTestError::Unfinished(run.clone()))?;
    if record
        .events
        .iter()
        .any(|e| matches!(e.kind, EventKind::RunResumed { .. }))
    {
        return Err(RecordTestError::Resumed(run));
    }
    let runbook_path = PathBuf::from(&context.path);
    let runbook =
        crate::load::load(&runbook_path)
            .runbook
            .ok_or_else(|| RecordTestError::Runbook {
                run: run.clone(),
                path: context.path.clone(),
            })?;
    let target = match out {
        Some(out) => out.to_path_buf(),
        None => {
            let stem = runbook_path
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or("runbook");
            runbook_path.with_file_name(format!(
                "{}.{run}.test.yaml",
                stem.trim_end_matches(".yaml")
            ))
        }
    };
    if target.exists() {
        return Err(RecordTestError::Exists(target.display().to_string()));
    }
    // The target does not exist yet: its directory does.
    let dir = match target.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let dir = std::fs::canonicalize(&dir).unwrap_or(dir);
    let runbook_ref = relative(&dir, &runbook_path);
    let mocks = mocks(&runbook, &record.events);
    let approvals: Vec<String> = record
        .events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Approved { step, .. } => Some(step_of(step).to_owned()),
            _ => None,
        })
        .fold(Vec::new(), |mut ids, id| {
            if !ids.contains(&id) {
                ids.push(id);
            }
            ids
        });
    let actual = Actual::of(&runbook, &record.events);
    let mut attempts: Vec<(&String, &u32)> = actual.attempts.iter().collect();
    attempts.sort();
    let text = |v: &Value| serde_json::to_string(v).unwrap_or_default();
    let mut yaml = format!(
        "# Recorded from run {run} of `{}` ({}, exit {}).\n# Mocks are the results the run's journal kept (secrets masked); expectations are what it did.\ntest: 1\nrunbook: {}\nscenarios:\n  - name: {}\n    params: {}\n",
        runbook.name.value,
        finished.status.replace(['\n', '\r'], " "),
        finished.exit_code,
        text(&json!(runbook_ref)),
        text(&json!(format!("recorded run {run}"))),
        text(&Value::Object(context.params.clone())),
    );
    if !approvals.is_empty() {
        yaml.push_str(&format!("    approvals: {}\n", text(&json!(approvals))));
    }
    yaml.push_str("    mocks:\n");
    if mocks.is_empty() {
        yaml.push_str("      {}\n");
    }
    for (unit, list) in &mocks {
        yaml.push_str(&format!(
            "      {}: {}\n",
            text(&json!(unit)),
            text(&json!(list))
        ));
    }
    yaml.push_str("    expect:\n");
    for (key, value) in [
        ("ran", json!(actual.ran)),
        ("skipped", json!(actual.skipped)),
        (
            "attempts",
            Value::Object(
                attempts
                    .into_iter()
                    .map(|(k, v)| (k.clone(), json!(v)))
                    .collect(),
            ),
        ),
        ("rolled_back", json!(actual.rolled_back)),
        ("needs_person", json!(actual.needs_person)),
        ("exit_code", json!(finished.exit_code)),
    ] {
        yaml.push_str(&format!("      {key}: {}\n", text(&value)));
    }
    std::fs::write(&target, yaml).map_err(|e| RecordTestError::Write {
        path: target.display().to_string(),
        reason: e.to_string(),
    })?;
    Ok(target)
}

/// `to` as a path relative to the directory `from` (absolute when they share nothing).
fn relative(from: &Path, to: &Path) -> String {
    let to = std::fs::canonicalize(to).unwrap_or_else(|_| to.to_path_buf());
    let from: Vec<_> = from.components().collect();
    let parts: Vec<_> = to.components().collect();
    let common = from.iter().zip(&parts).take_while(|(a, b)| a == b).count();
    if common <= 1 {
        return to.display().to_string();
    }
    let mut path = PathBuf::new();
    for _ in common..from.len() {
        path.push("..");
    }
    for part in &parts[common..] {
        path.push(part);
    }
    path.display().to_string()
}

/// One mock per attempt of every command, query and rollback action the run made.
fn mocks(runbook: &Runbook, events: &[crate::exec::event::Event]) -> IndexMap<String, Vec<Value>> {
    let mut mocks: IndexMap<String, Vec<Value>> = IndexMap::new();
    let mut mocked: Vec<String> = Vec::new();
    let mut rolling_back = false;
    for event in events {
        match &event.kind {
            EventKind::RollbackStarted { .. } => rolling_back = true,
            EventKind::FinallyStarted { .. } => rolling_back = false,
            EventKind::StepStarted {
                step,
                detail: Some(Action::Command { .. } | Action::Script { .. } | Action::Sql { .. }),
                ..
            } => {
                mocked.push(step.clone());
            }
            EventKind::RollbackStepStarted { step, .. } => {
                let acts = runbook
                    .steps
                    .iter()
                    .find(|s| s.id.as_str() == step_of(step))
                    .and_then(|s| s.rollback.as_ref())
                    .is_some_and(|r| !matches!(r.kind, RollbackKind::Approval(_)));
                if acts {
                    mocked.push(format!("rollback:{step}"));
                }
            }
            EventKind::AttemptFailed {
                step,
                reason,
                message,
                ..
            } => {
                let unit = if rolling_back {
                    format!("rollback:{step}")
                } else {
                    step.clone()
                };
                if mocked.contains(&unit) {
                    mocks.entry(unit).or_default().push(failed(reason, message));
                }
            }
            EventKind::StepFinished {
                step,
                status,
                exit_code,
                stdout,
                stderr,
                data,
                ..
            } if mocked.contains(step) => {
                let list = mocks.entry(step.clone()).or_default();
                let mut mock = serde_json::Map::new();
                if !stdout.is_empty() {
                    mock.insert("stdout".into(), json!(stdout));
                }
                if !stderr.is_empty() {
                    mock.insert("stderr".into(), json!(stderr));
                }
                if *status == Status::Succeeded {
                    if let Some(code) = exit_code {
                        mock.insert("exit_code".into(), json!(code));
                    }
                    if let Some(data) = data {
                        if !data.result_sets.is_empty() {
                            mock.insert("rows".into(), json!(data.rows));
                        }
                        if data.rows_affected != 0 {
                            mock.insert("rows_affected".into(), json!(data.rows_affected));
                        }
                        if !data.messages.is_empty() {
                            mock.insert("messages".into(), json!(data.messages));
                        }
                        if !data.outputs.is_empty() {
                            mock.insert("outputs".into(), json!(data.outputs));
                        }
                    }
                    list.push(Value::Object(mock));
                } else if let Some(Value::Object(last)) = list.last_mut() {
                    // The last failed attempt's output is kept with the step's end.
                    last.extend(mock);
                }
            }
            EventKind::RollbackStepFinished {
                step,
                status: Status::Succeeded,
                ..
            } => {
                let unit = format!("rollback:{step}");
                if mocked.contains(&unit) {
                    mocks.entry(unit).or_default().push(json!({}));
                }
            }
            _ => {}
        }
    }
    mocks
}

/// The mock of an attempt that failed.
fn failed(reason: &Failure, message: &str) -> Value {
    let fail = |reason: &str| json!({ "fail": { "reason": reason, "message": message } });
    match reason {
        Failure::Exit { code: Some(code) } => json!({ "exit_code": code }),
        Failure::Exit { code: None } => fail("exit"),
        Failure::Sql { number } => {
            json!({ "fail": { "reason": "sql", "number": number, "message": message } })
        }
        Failure::Timeout => fail("timeout"),
        Failure::Until => fail("until"),
        Failure::Connect => fail("connect"),
        Failure::Assert | Failure::Refused | Failure::Error => fail("error"),
    }
}
