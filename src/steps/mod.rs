//! One executor per step kind. Each runs one attempt of a rendered action and says how it
//! went; retries, `until` and outputs are the engine's business.

pub mod approval;
pub mod command;
pub mod lines;
pub mod process_group;
pub mod quorum;
pub mod remote;
pub mod sql;
pub mod sql_messages;
pub mod ssh;
pub mod supervisor;
pub mod supervisor_client;
pub mod supervisor_request;
pub mod vfork;

use crate::retry::Failure;

/// What one attempt produced.
#[derive(Clone, Debug, Default)]
pub struct Attempt {
    pub stdout: String,
    pub stderr: String,
    pub exit_code: Option<i32>,
    /// Why it failed, with a message for people.
    pub failure: Option<Failed>,
    /// What a SQL query returned.
    pub sql: Option<sql::Results>,
    /// Informational messages the server sent (PRINT, progress).
    pub messages: Vec<String>,
    /// Outputs given as they are rather than rendered from `outputs` (a test's mock).
    pub outputs: std::collections::BTreeMap<String, String>,
}

/// Why an attempt failed (what retry decides on), and the message for people.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failed {
    pub reason: Failure,
    pub message: String,
}

impl Failed {
    pub fn new(reason: Failure, message: impl Into<String>) -> Self {
        Self {
            reason,
            message: message.into(),
        }
    }
}

impl Attempt {
    pub fn failed(reason: Failure, message: impl Into<String>) -> Self {
        Self {
            failure: Some(Failed::new(reason, message)),
            ..Self::default()
        }
    }
}
