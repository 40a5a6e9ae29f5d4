//! What a run reports: one event per thing that happens. The engine emits events; the
//! journal records them and the report layer prints them. The same types read the journal
//! back, so a renamed field is a compile error or a clear version error, never a silent loss.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::render::Action;
use crate::retry::Failure;
use crate::steps::lines::Stream;
use crate::steps::process_group::ProcessGroup;

/// The version of the journal's event format, written in every `run_started` event. A journal
/// of another version is refused with a clear error rather than misread.
pub const JOURNAL_VERSION: u32 = 1;

/// A multi-party approval waiting for votes (the `approval_needed` event): the engine emits
/// it, the run record keeps it, the report prints it; one type so each reads its fields by
/// name.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ApprovalNeeded {
    pub step: String,
    pub prompt: String,
    pub approvers: Vec<String>,
    /// The OS group the approvers were read from, when the runbook named one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    pub min: u32,
    pub self_approval: bool,
    /// Who runs the run (the real uid's user name).
    pub operator: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    pub command: String,
    /// `--approve`/`--approve-all` was given but does not satisfy this approval.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ignored: Option<String>,
}

/// A vote a run counted (the `approval_vote` event): who (the vote file's owner), what, why,
/// and when it was cast.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ApprovalVote {
    pub step: String,
    pub user: String,
    pub decision: crate::ballot::Decision,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub voted_at: String,
}

/// One event, stamped with the time it happened.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Event {
    pub at: String,
    #[serde(flatten)]
    pub kind: EventKind,
}

/// How a step ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Succeeded,
    Failed,
    Skipped,
    Cancelled,
}

impl Status {
    pub const fn name(self) -> &'static str {
        match self {
            Status::Succeeded => "succeeded",
            Status::Failed => "failed",
            Status::Skipped => "skipped",
            Status::Cancelled => "cancelled",
        }
    }
}

/// What a step leaves for later templates besides its output: `outputs` and, for SQL, the rows
/// and messages. Kept in the journal so that a resumed run can restore it. (Fields in
/// alphabetical order: the journal's layout is stable.)
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct StepData {
    #[serde(default)]
    pub messages: Vec<String>,
    #[serde(default)]
    pub outputs: BTreeMap<String, String>,
    #[serde(default)]
    pub result_sets: Vec<Vec<Row>>,
    #[serde(default)]
    pub rows: Vec<Row>,
    #[serde(default)]
    pub rows_affected: u64,
}

/// One row of a result set: column name to value.
pub type Row = serde_json::Map<String, serde_json::Value>;

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum EventKind {
    RunStarted {
        journal_version: u32,
        run_id: String,
        runbook: String,
        steps: usize,
        concurrency: usize,
    },
    /// What the journal needs to resume: the file and its hash, the params, who and where.
    RunContext {
        path: String,
        hash: String,
        params: serde_json::Map<String, serde_json::Value>,
        user: String,
        host: String,
        pid: u32,
        no_rollback: bool,
        /// Every step of the runbook, in declaration order (so a report can name the steps
        /// that never ran).
        #[serde(default)]
        step_ids: Vec<String>,
        /// The runbook's `rto` in milliseconds, when it declares one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        rto_ms: Option<u64>,
        /// The step whose end ends the outage (`service_restored_at`, or the last step).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        service_restored_at: Option<String>,
    },
    /// Secrets too short to search for in free text (by name, never value): they are masked
    /// where a value is exactly the secret, not inside command output or messages.
    SecretsNotSearched {
        secrets: Vec<String>,
        min_length: usize,
    },
    /// A run picked up again from its journal.
    RunResumed {
        run_id: String,
        decisions: Vec<String>,
        /// `runbook rollback`: picked up to be undone, not to go on.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        rollback: bool,
    },
    StepStarted {
        step: String,
        attempt: u32,
        attempts: u32,
        action: String,
        /// The whole rendered action (first attempt only): the evidence of what ran.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        detail: Option<Action>,
        /// The target and ssh destination this attempt runs on; absent: here.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        target: Option<crate::target::Remote>,
    },
    /// A step's command started, in a process group of its own: the group's id and who leads
    /// it (host, boot, start time), so that `resume` never signals a process that reused it.
    ProcessStarted {
        step: String,
        #[serde(flatten)]
        group: ProcessGroup,
    },
    AttemptFailed {
        step: String,
        attempt: u32,
        reason: Failure,
        message: String,
        /// The delay before the next attempt; absent when there is none.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        retry_in_ms: Option<u64>,
    },
    StepFinished {
        step: String,
        status: Status,
        attempts: u32,
        duration_ms: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        exit_code: Option<i32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message: Option<String>,
        #[serde(default, skip_serializing_if = "String::is_empty")]
        stdout: String,
        #[serde(default, skip_serializing_if = "String::is_empty")]
        stderr: String,
        /// What later templates read besides the output: `outputs`, `rows`, `result_sets`,
        /// `rows_affected`, `messages` (so that a resumed run can restore it).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        data: Option<StepData>,
    },
    StepSkipped {
        step: String,
        reason: String,
    },
    /// An informational message from SQL Server, as it arrives.
    StepMessage {
        step: String,
        message: String,
    },
    Approved {
        step: String,
        by: String,
        how: String,
    },
    RollbackStarted {
        steps: Vec<String>,
    },
    RollbackStepStarted {
        step: String,
        action: String,
        /// The whole rendered rollback action, as `step_started` gives a step's; absent in
        /// journals written before it was recorded.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        detail: Option<Action>,
    },
    RollbackStepFinished {
        step: String,
        status: Status,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message: Option<String>,
    },
    NotRolledBack {
        step: String,
        reason: String,
    },
    /// Ctrl-C, SIGTERM or SIGHUP: the run stops and rolls back; another one exits at once.
    Interrupted {
        /// Which signal (`SIGINT`, `SIGTERM`, `SIGHUP`); empty in older journals.
        #[serde(default, skip_serializing_if = "String::is_empty")]
        signal: String,
    },
    /// The journal could not be written (shown, never journaled).
    JournalFailed {
        reason: String,
    },
    /// The run's steps (and their rollback) are over: the finally steps start.
    FinallyStarted {
        outcome: String,
        steps: usize,
    },
    RunFinished {
        status: String,
        exit_code: u8,
        duration_ms: u64,
    },
    /// A multi-party approval waits for votes: who may vote and the command they run.
    ApprovalNeeded(ApprovalNeeded),
    /// A vote the run counted: who (the vote file's owner), what, why, and when it was cast.
    ApprovalVote(ApprovalVote),
    /// A vote file the run did not count (forged, not an approver, the operator's own).
    VoteIgnored {
        step: String,
        file: String,
        owner: String,
        reason: String,
    },
    /// A line a running step printed, as it arrives (shown, never journaled: the journal keeps
    /// the step's whole output in `step_finished`).
    Output {
        step: String,
        stream: Stream,
        line: String,
        /// The line was too long: this is its beginning.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        cut: bool,
    },
    /// A `notify` hook failed (a non-zero exit, its timeout, a program not found): reported,
    /// never a change to the run's outcome. `hook` is its position under `notify` (from 1).
    NotifyFailed {
        hook: usize,
        on: String,
        message: String,
    },
}

/// Where events go.
pub trait Sink: Send + Sync {
    fn emit(&self, event: &Event);

    /// Why the record of the run cannot be kept (a journal write failed); `None` while it
    /// can. The engine starts no side effect once this says something. No default: a sink
    /// that wraps another must pass its answer on.
    fn broken(&self) -> Option<String>;

    /// Makes what was emitted so far durable, before a step's action starts: the journal
    /// syncs the `step_started` events written since its last sync, so that steps starting
    /// together share one sync. Says why the record cannot be kept, as [`Sink::broken`] does.
    /// A sink that keeps no record has nothing to make durable; one that wraps another must
    /// pass the call on.
    fn commit(&self) -> Option<String> {
        self.broken()
    }
}

pub fn now() -> String {
    humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string()
}

pub fn event(kind: EventKind) -> Event {
    Event { at: now(), kind }
}
