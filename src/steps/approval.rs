//! `approval` steps: a person confirms. With a person to ask (a terminal) the prompt is asked
//! through the [`Prompter`] the command line supplies; otherwise the approval must have been
//! given up front with `--approve STEP` or `--approve-all`.

use std::io::IsTerminal;
use std::sync::Arc;

use crate::prompt::{Answer, Prompter};

/// How approvals are obtained for a run.
#[derive(Clone, Default)]
pub struct Approvals {
    pub given: Vec<String>,
    pub all: bool,
    /// Who to ask when an approval was not given up front; `None` without a terminal.
    pub prompter: Option<Arc<dyn Prompter>>,
    /// Where multi-party approvals are voted; `None` when nobody can vote (a test).
    pub ballot: Option<crate::steps::quorum::Ballot>,
}

impl std::fmt::Debug for Approvals {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Approvals")
            .field("given", &self.given)
            .field("all", &self.all)
            .field("interactive", &self.prompter.is_some())
            .finish()
    }
}

/// Why an approval was not given.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NotApproved {
    #[error("not approved: no terminal to ask on (use --approve or --approve-all)")]
    NoTerminal,
    #[error(
        "refused at the prompt by {by}: {}",
        reason.as_deref().unwrap_or("no reason given")
    )]
    Refused { by: String, reason: Option<String> },
    #[error("no answer could be read")]
    Unreadable,
    #[error("no answer within {}", humantime::format_duration(*.0))]
    TimedOut(std::time::Duration),
    #[error("rejected by {by}: {}", reason.as_deref().unwrap_or("no reason given"))]
    Rejected { by: String, reason: Option<String> },
    #[error("timed out: {given} of the {min} approvals needed were given")]
    VotesTimedOut { given: usize, min: u32 },
    #[error(
        "only {eligible} approvers can vote but {min} approvals are needed (the operator, {operator}, may not approve the run)"
    )]
    TooFewApprovers {
        eligible: usize,
        min: u32,
        operator: String,
    },
    #[error("no group `{group}` in the group database: nobody can approve")]
    NoGroup { group: String },
    #[error("a multi-party approval is voted with `runbook approve` on a real run")]
    NoBallot,
    #[error("the run stopped while waiting for the approvals")]
    Cancelled,
}

/// Who approved and how.
#[derive(Clone, Debug)]
pub struct Granted {
    pub by: String,
    pub how: &'static str,
}

impl Approvals {
    pub fn preapproved(&self, step: &str) -> bool {
        self.all || self.given.iter().any(|g| g == step)
    }

    pub fn interactive(&self) -> bool {
        self.prompter.is_some()
    }

    /// Asks for, or looks up, the approval of `step`. `Err` carries why it was not given.
    pub async fn ask(
        &self,
        step: &str,
        prompt: &str,
        instructions: Option<&str>,
        lock: &tokio::sync::Mutex<()>,
    ) -> Result<Granted, NotApproved> {
        if self.preapproved(step) {
            return Ok(Granted {
                by: user(),
                how: if self.all {
                    "--approve-all"
                } else {
                    "--approve"
                },
            });
        }
        let Some(prompter) = self.prompter.clone() else {
            return Err(NotApproved::NoTerminal);
        };
        // One prompt at a time, even when parallel steps ask together.
        let _guard = lock.lock().await;
        let (step, prompt) = (step.to_owned(), prompt.to_owned());
        let instructions = instructions.map(str::to_owned);
        let answer = tokio::task::spawn_blocking(move || {
            prompter.approve(&step, &prompt, instructions.as_deref())
        })
        .await
        .unwrap_or(Answer::Unreadable);
        match answer {
            Answer::Yes => Ok(Granted {
                by: user(),
                how: "terminal",
            }),
            Answer::No { reason } => Err(NotApproved::Refused { by: user(), reason }),
            Answer::Unreadable => Err(NotApproved::Unreadable),
        }
    }
}

/// Whether approvals can be asked on this terminal.
pub fn interactive() -> bool {
    std::io::stdin().is_terminal() && std::io::stderr().is_terminal()
}

/// The operating-system user running this process: the name of its real uid in the user
/// database. `$USER` is not asked: anyone can set it, and the record names who approved.
/// Only a uid with no entry (a container's bare uid) is told as `uid N`.
pub fn user() -> String {
    // SAFETY: getuid has no preconditions and cannot fail.
    let uid = unsafe { libc::getuid() };
    user_of(uid)
}

/// The name of `uid` in the user database, or `uid N` when it has none.
pub fn user_of(uid: libc::uid_t) -> String {
    user_name(uid).unwrap_or_else(|| format!("uid {uid}"))
}

fn user_name(uid: libc::uid_t) -> Option<String> {
    lookup(|buffer| {
        // SAFETY: an all-zero passwd is a valid value for a C struct of pointers and integers.
        let mut entry: libc::passwd = unsafe { std::mem::zeroed() };
        let mut found: *mut libc::passwd = std::ptr::null_mut();
        // SAFETY: every pointer is valid for the call, and `buffer.len()` is its real size;
        // the strings `entry` points at live in `buffer`, read before it is dropped.
        let rc = unsafe {
            libc::getpwuid_r(
                uid,
                &mut entry,
                buffer.as_mut_ptr(),
                buffer.len(),
                &mut found,
            )
        };
        if rc == libc::ERANGE {
            return Lookup::TooSmall;
        }
        if rc != 0 || found.is_null() || entry.pw_name.is_null() {
            return Lookup::Done(None);
        }
        // SAFETY: getpwuid_r succeeded, so pw_name is a NUL-terminated string in `buffer`.
        let name = unsafe { std::ffi::CStr::from_ptr(entry.pw_name) };
        Lookup::Done(Some(name.to_string_lossy().into_owned()).filter(|n| !n.is_empty()))
    })
}

/// What one call of a reentrant user or group database lookup gave.
pub(crate) enum Lookup<T> {
    /// The buffer was too small (`ERANGE`).
    TooSmall,
    Done(Option<T>),
}

/// Calls a reentrant lookup (`getpwuid_r`, `getgrnam_r`) with a buffer that grows while it is
/// too small: large directories (LDAP) may need more room. Within reason: 4 MiB at most.
pub(crate) fn lookup<T>(mut call: impl FnMut(&mut [libc::c_char]) -> Lookup<T>) -> Option<T> {
    let mut buffer = vec![0 as libc::c_char; 4096];
    while buffer.len() <= 1 << 22 {
        match call(&mut buffer) {
            Lookup::TooSmall => buffer.resize(buffer.len() * 2, 0),
            Lookup::Done(found) => return found,
        }
    }
    None
}
