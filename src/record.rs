//! A run as its journal tells it, built once from the typed events: who ran what and where,
//! what each step did (its action, attempts, output, approval), what was in flight when the
//! process died, how far a rollback got, and how the run ended. `resume`, `rollback`, `runs`
//! and every `show` format read this record; none of them reads events on its own.

use std::collections::HashMap;
use std::path::Path;

use crate::exec::event::{Event, EventKind, Status, StepData};
use crate::journal::{self, JournalError};
use crate::render::Action;

/// The run, from its journal.
#[derive(Clone, Debug)]
pub struct RunRecord {
    pub run_id: String,
    pub runbook: String,
    /// The runbook file, its hash, the params and who ran it (from `run_context`).
    pub context: Option<RunContext>,
    pub started_at: String,
    /// Every step the journal mentions, in the order it first mentions them.
    pub steps: Vec<StepRecord>,
    /// Rollback actions, in the order they started (or were declined).
    pub rollbacks: Vec<RollbackRecord>,
    /// The journal shows a rollback under way (or done).
    pub rolling_back: bool,
    /// Decisions taken on resuming (`STEP=done`), in order.
    pub decisions: Vec<String>,
    /// How the run's steps had ended when its finally steps started (`run.outcome`).
    pub finally_outcome: Option<String>,
    pub finished: Option<Finished>,
    /// The process running it now, when it is running (its lock is held).
    pub live: Option<crate::lock::Holder>,
    /// The events themselves (for `show --format json`).
    pub events: Vec<Event>,
}

/// What the journal needs to resume a run.
#[derive(Clone, Debug)]
pub struct RunContext {
    pub path: String,
    pub hash: String,
    pub params: serde_json::Map<String, serde_json::Value>,
    pub user: String,
    pub host: String,
    pub pid: u32,
    pub no_rollback: bool,
    /// Every step of the runbook, in declaration order.
    pub step_ids: Vec<String>,
    /// The runbook's `rto` (milliseconds) and the step that ends the outage.
    pub rto_ms: Option<u64>,
    pub service_restored_at: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finished {
    pub status: String,
    pub exit_code: u8,
    pub duration_ms: u64,
}

/// Where a step stands in the journal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StepState {
    /// Started and never known to have finished: in doubt after a crash.
    Started,
    Ended(Status),
}

/// What one step did (the last attempt wins).
#[derive(Clone, Debug)]
pub struct StepRecord {
    pub id: String,
    pub state: StepState,
    /// Position among the events that ended steps: the order of completion.
    pub ended_seq: Option<usize>,
    /// The one-line summary of the action, and the whole rendered action (first attempt).
    pub action: String,
    pub detail: Option<Action>,
    pub attempts: u32,
    pub duration_ms: u64,
    pub exit_code: Option<i32>,
    pub message: Option<String>,
    pub stdout: String,
    pub stderr: String,
    pub data: Option<StepData>,
    pub approval: Option<ApprovalRecord>,
    /// The operator's decision about it when it was in doubt (`--assume STEP=done|failed`):
    /// it counts as ended that way, by decision, not because the journal saw it end.
    pub decided: Option<DecidedRecord>,
    /// The process group of its (or its rollback's) latest command.
    pub group: Option<crate::steps::process_group::ProcessGroup>,
    /// The target and ssh destination of its latest attempt; `None`: it ran here.
    pub target: Option<crate::target::Remote>,
    /// A multi-party approval this step asked for, and the votes the run counted.
    pub quorum: Option<QuorumRecord>,
}

/// A multi-party approval, from its `approval_needed` event and the votes that followed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QuorumRecord {
    pub approvers: Vec<String>,
    pub min: u32,
    pub self_approval: bool,
    pub operator: String,
    pub since: String,
    pub votes: Vec<VoteRecord>,
}

/// A vote the run counted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VoteRecord {
    pub user: String,
    pub decision: crate::ballot::Decision,
    pub reason: Option<String>,
    pub at: String,
}

impl StepRecord {
    /// The approval this step waits for: asked, and the step has not ended since.
    pub fn waiting(&self) -> Option<&QuorumRecord> {
        self.quorum
            .as_ref()
            .filter(|_| self.state == StepState::Started && self.approval.is_none())
    }
}

/// A decision about a step in doubt, and when it was taken.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecidedRecord {
    /// `done` or `failed`.
    pub decision: String,
    pub at: String,
}

impl std::fmt::Display for DecidedRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} by the operator's decision (--assume, {}): it was in doubt",
            self.decision, self.at
        )
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApprovalRecord {
    pub by: String,
    pub how: String,
    pub at: String,
}

/// A step's rollback.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RollbackRecord {
    pub step: String,
    pub state: RollbackState,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RollbackState {
    /// Its action started and never finished: in doubt.
    Started,
    Ended {
        status: Status,
        message: Option<String>,
    },
    /// Declined: the reason it is left as it is.
    NotRolledBack { reason: String },
}

/// Why a run cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error("no run `{0}` in this state directory")]
    NoRun(String),
    #[error("there are no runs in this state directory")]
    NoRuns,
    #[error("the journal of run `{0}` does not say which runbook it ran")]
    NoContext(String),
}

/// The run ids in a state directory, in the order the runs started: by the time of the
/// journal's first event (millisecond precision), then, for runs started within the same
/// millisecond, by when the journal file was created (nanoseconds), then by id. The random
/// part of an id says nothing about order.
pub fn run_ids(state: &Path) -> Vec<String> {
    let mut runs: Vec<(String, Option<std::time::SystemTime>, String)> =
        std::fs::read_dir(state.join("runs"))
            .map(|entries| {
                entries
                    .filter_map(|e| e.ok())
                    .filter_map(|e| {
                        let journal = e.path().join("journal.jsonl");
                        let created = std::fs::metadata(&journal).ok()?.created().ok();
                        let id = e.file_name().to_str()?.to_owned();
                        Some((first_event_at(&journal), created, id))
                    })
                    .collect()
            })
            .unwrap_or_default();
    runs.sort();
    runs.into_iter().map(|(_, _, id)| id).collect()
}

/// The `at` of a journal's first event ("" when it cannot be read: such runs sort first).
fn first_event_at(journal: &Path) -> String {
    use std::io::BufRead;
    #[derive(serde::Deserialize)]
    struct At {
        at: String,
    }
    let Ok(file) = std::fs::File::open(journal) else {
        return String::new();
    };
    let mut line = String::new();
    // A first line is one small event; the cap keeps a hostile file from being read whole.
    let _ = std::io::BufReader::new(std::io::Read::take(file, 64 * 1024)).read_line(&mut line);
    serde_json::from_str::<At>(line.trim_end())
        .map(|a| a.at)
        .unwrap_or_default()
}

/// Reads the record of `run_id`, or of the most recent run when there is none.
pub fn load_or_last(state: &Path, run_id: Option<&str>) -> Result<RunRecord, RecordError> {
    match run_id {
        Some(id) => load(state, id),
        None => load(state, &run_ids(state).pop().ok_or(RecordError::NoRuns)?),
    }
}

/// Reads a run's journal into its record.
pub fn load(state: &Path, run_id: &str) -> Result<RunRecord, RecordError> {
    let path = journal::journal_path(state, run_id);
    if !path.exists() {
        return Err(RecordError::NoRun(run_id.to_owned()));
    }
    let events = journal::read(&path)?;
    let mut record = RunRecord::from_events(run_id, events);
    record.live = crate::lock::running(state, run_id);
    Ok(record)
}

impl RunRecord {
    pub fn from_events(run_id: &str, events: Vec<Event>) -> Self {
        let mut record = RunRecord {
            run_id: run_id.to_owned(),
            runbook: String::new(),
            context: None,
            started_at: String::new(),
            steps: Vec::new(),
            rollbacks: Vec::new(),
            rolling_back: false,
            decisions: Vec::new(),
            finally_outcome: None,
            finished: None,
            live: None,
            events: Vec::new(),
        };
        let mut index: HashMap<String, usize> = HashMap::new();
        let mut ended = 0;
        for event in &events {
            record.apply(event, &mut index, &mut ended);
        }
        record.events = events;
        record
    }

    fn step(&mut self, index: &mut HashMap<String, usize>, id: &str) -> &mut StepRecord {
        let i = *index.entry(id.to_owned()).or_insert_with(|| {
            self.steps.push(StepRecord::new(id));
            self.steps.len() - 1
        });
        &mut self.steps[i]
    }

    fn apply(&mut self, event: &Event, index: &mut HashMap<String, usize>, ended: &mut usize) {
        match &event.kind {
            EventKind::RunStarted { runbook, .. } => {
                if self.started_at.is_empty() {
                    self.started_at = event.at.clone();
                    self.runbook = runbook.clone();
                }
            }
            EventKind::RunContext {
                path,
                hash,
                params,
                user,
                host,
                pid,
                no_rollback,
                step_ids,
                rto_ms,
                service_restored_at,
            } => {
                self.context.get_or_insert_with(|| RunContext {
                    path: path.clone(),
                    hash: hash.clone(),
                    params: params.clone(),
                    user: user.clone(),
                    host: host.clone(),
                    pid: *pid,
                    no_rollback: *no_rollback,
                    step_ids: step_ids.clone(),
                    rto_ms: *rto_ms,
                    service_restored_at: service_restored_at.clone(),
                });
            }
            EventKind::RunResumed { decisions, .. } => {
                for decision in decisions {
                    self.decide(decision, &event.at, index, ended);
                }
                self.decisions.extend(decisions.iter().cloned());
                // A resumed run is running again until it says otherwise.
                self.finished = None;
            }
            EventKind::StepStarted {
                step,
                action,
                detail,
                target,
                ..
            } => {
                let s = self.step(index, step);
                s.state = StepState::Started;
                s.action = action.clone();
                s.target = target.clone();
                if let Some(detail) = detail {
                    s.detail = Some(detail.clone());
                }
            }
            EventKind::ProcessStarted { step, group } => {
                self.step(index, step).group = Some(group.clone());
            }
            EventKind::StepFinished {
                step,
                status,
                attempts,
                duration_ms,
                exit_code,
                message,
                stdout,
                stderr,
                data,
            } => {
                let seq = *ended;
                *ended += 1;
                let s = self.step(index, step);
                s.state = StepState::Ended(*status);
                s.ended_seq.get_or_insert(seq);
                s.attempts = *attempts;
                s.duration_ms = *duration_ms;
                s.exit_code = *exit_code;
                s.message = message.clone();
                s.stdout = stdout.clone();
                s.stderr = stderr.clone();
                s.data = data.clone();
            }
            EventKind::StepSkipped { step, reason } => {
                let seq = *ended;
                *ended += 1;
                let s = self.step(index, step);
                s.state = StepState::Ended(Status::Skipped);
                s.ended_seq.get_or_insert(seq);
                s.message = Some(reason.clone());
            }
            EventKind::Approved { step, by, how } => {
                self.step(index, step).approval = Some(ApprovalRecord {
                    by: by.clone(),
                    how: how.clone(),
                    at: event.at.clone(),
                });
            }
            EventKind::RollbackStarted { .. } => self.rolling_back = true,
            EventKind::RollbackStepStarted { step, .. } => {
                self.rolling_back = true;
                self.set_rollback(step, RollbackState::Started);
            }
            EventKind::RollbackStepFinished {
                step,
                status,
                message,
            } => self.set_rollback(
                step,
                RollbackState::Ended {
                    status: *status,
                    message: message.clone(),
                },
            ),
            EventKind::NotRolledBack { step, reason } => {
                self.rollbacks.push(RollbackRecord {
                    step: step.clone(),
                    state: RollbackState::NotRolledBack {
                        reason: reason.clone(),
                    },
                });
            }
            EventKind::FinallyStarted { outcome, .. } => {
                self.finally_outcome = Some(outcome.clone());
            }
            EventKind::RunFinished {
                status,
                exit_code,
                duration_ms,
            } => {
                self.finished = Some(Finished {
                    status: status.clone(),
                    exit_code: *exit_code,
                    duration_ms: *duration_ms,
                });
            }
            EventKind::ApprovalNeeded(a) => {
                // Votes counted before (a resumed run) stay counted.
                let s = self.step(index, &a.step);
                let votes = s.quorum.take().map(|q| q.votes).unwrap_or_default();
                s.quorum = Some(QuorumRecord {
                    approvers: a.approvers.clone(),
                    min: a.min,
                    self_approval: a.self_approval,
                    operator: a.operator.clone(),
                    since: event.at.clone(),
                    votes,
                });
            }
            EventKind::ApprovalVote(v) => {
                if let Some(q) = self.step(index, &v.step).quorum.as_mut() {
                    q.votes.push(VoteRecord {
                        user: v.user.clone(),
                        decision: v.decision,
                        reason: v.reason.clone(),
                        at: v.voted_at.clone(),
                    });
                }
            }
            EventKind::VoteIgnored { .. }
            | EventKind::AttemptFailed { .. }
            | EventKind::StepMessage { .. }
            | EventKind::Output { .. }
            | EventKind::NotifyFailed { .. }
            | EventKind::SecretsNotSearched { .. }
            | EventKind::Interrupted { .. }
            | EventKind::JournalFailed { .. } => {}
        }
    }

    /// Applies a decision taken on resuming (`STEP=done|failed|rerun`, `rollback:STEP=…`) to
    /// a step still in doubt: it ends the way the operator said. `rerun` changes nothing (the
    /// step starts again).
    fn decide(
        &mut self,
        decision: &str,
        at: &str,
        index: &mut HashMap<String, usize>,
        ended: &mut usize,
    ) {
        let Some((target, what)) = decision.rsplit_once('=') else {
            return;
        };
        let decided = DecidedRecord {
            decision: what.to_owned(),
            at: at.to_owned(),
        };
        if let Some(step) = target.strip_prefix("rollback:") {
            if what != "rerun" && self.rollbacks_in_doubt().any(|r| r.step == step) {
                self.set_rollback(
                    step,
                    RollbackState::Ended {
                        status: Status::Succeeded,
                        message: Some(decided.to_string()),
                    },
                );
            }
            return;
        }
        let status = match what {
            "done" => Status::Succeeded,
            "failed" => Status::Failed,
            _ => return,
        };
        if !index.contains_key(target) {
            return;
        }
        let seq = *ended;
        let s = self.step(index, target);
        if s.state != StepState::Started {
            return;
        }
        s.state = StepState::Ended(status);
        s.ended_seq = Some(seq);
        s.decided = Some(decided);
        *ended += 1;
    }

    /// A rollback action's latest state: a re-run after a crash replaces its in-doubt start.
    fn set_rollback(&mut self, step: &str, state: RollbackState) {
        let open = self
            .rollbacks
            .iter_mut()
            .rev()
            .find(|r| r.step == step && r.state == RollbackState::Started);
        match open {
            Some(r) => r.state = state,
            None => self.rollbacks.push(RollbackRecord {
                step: step.to_owned(),
                state,
            }),
        }
    }

    /// Steps that ended, in the order they ended.
    pub fn ended_in_order(&self) -> Vec<&StepRecord> {
        let mut ended: Vec<&StepRecord> = self
            .steps
            .iter()
            .filter(|s| s.ended_seq.is_some())
            .collect();
        ended.sort_by_key(|s| s.ended_seq);
        ended
    }

    /// Steps started and never known to have finished.
    pub fn in_doubt(&self) -> impl Iterator<Item = &StepRecord> {
        self.steps.iter().filter(|s| s.state == StepState::Started)
    }

    /// Rollback actions started and never known to have finished.
    pub fn rollbacks_in_doubt(&self) -> impl Iterator<Item = &RollbackRecord> {
        self.rollbacks
            .iter()
            .filter(|r| r.state == RollbackState::Started)
    }

    /// Steps whose latest rollback action failed (or was cancelled): a person is needed until
    /// `runbook rollback` runs them again with success.
    pub fn failed_rollbacks(&self) -> Vec<&str> {
        let mut latest: Vec<(&str, &RollbackState)> = Vec::new();
        for r in &self.rollbacks {
            match latest.iter_mut().find(|(s, _)| *s == r.step) {
                Some(entry) => entry.1 = &r.state,
                None => latest.push((&r.step, &r.state)),
            }
        }
        latest
            .into_iter()
            .filter(|(_, state)| {
                matches!(state, RollbackState::Ended { status, .. } if *status != Status::Succeeded)
            })
            .map(|(step, _)| step)
            .collect()
    }

    pub fn get(&self, id: &str) -> Option<&StepRecord> {
        self.steps.iter().find(|s| s.id == id)
    }

    /// The runbook file the run used (empty when the journal does not say).
    pub fn path(&self) -> &str {
        self.context.as_ref().map_or("", |c| c.path.as_str())
    }
}

impl StepRecord {
    fn new(id: &str) -> Self {
        Self {
            id: id.to_owned(),
            state: StepState::Started,
            ended_seq: None,
            action: String::new(),
            detail: None,
            attempts: 0,
            duration_ms: 0,
            exit_code: None,
            message: None,
            stdout: String::new(),
            stderr: String::new(),
            data: None,
            approval: None,
            group: None,
            decided: None,
            target: None,
            quorum: None,
        }
    }

    /// The status word `show` prints: `started` for a step in doubt.
    pub fn status_name(&self) -> &'static str {
        match self.state {
            StepState::Started => "started",
            StepState::Ended(status) => status.name(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn journal(state: &Path, id: &str, at: &str) {
        let dir = state.join("runs").join(id);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("journal.jsonl"),
            format!("{{\"at\":\"{at}\",\"event\":\"run_started\"}}\n"),
        )
        .unwrap();
    }

    #[test]
    fn runs_are_ordered_by_start_then_by_creation_never_by_the_random_part_of_the_id() {
        let state = tempfile::tempdir().unwrap();
        let state = state.path();
        // Same second, the later one with the smaller random part.
        journal(state, "20261126T094427-ffff", "2026-11-26T09:44:27.100Z");
        journal(state, "20261126T094427-0000", "2026-11-26T09:44:27.900Z");
        // Same millisecond: the one created later started later.
        journal(state, "20261126T094428-ffff", "2026-11-26T09:44:28.500Z");
        std::thread::sleep(std::time::Duration::from_millis(5));
        journal(state, "20261126T094428-0000", "2026-11-26T09:44:28.500Z");
        assert_eq!(
            run_ids(state),
            [
                "20261126T094427-ffff",
                "20261126T094427-0000",
                "20261126T094428-ffff",
                "20261126T094428-0000",
            ]
        );
    }
}
