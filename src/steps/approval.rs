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
    #[error("refused at the prompt")]
    Refused,
    #[error("no answer could be read")]
    Unreadable,
    #[error("no answer within {}", humantime::format_duration(*.0))]
    TimedOut(std::time::Duration),
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
            Answer::No => Err(NotApproved::Refused),
            Answer::Unreadable => Err(NotApproved::Unreadable),
        }
    }
}

/// Whether approvals can be asked on this terminal.
pub fn interactive() -> bool {
    std::io::stdin().is_terminal() && std::io::stderr().is_terminal()
}

/// The operating-system user running this process.
pub fn user() -> String {
    std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .or_else(|_| std::env::var("USERNAME"))
        .unwrap_or_else(|_| {
            // SAFETY: getuid has no preconditions and cannot fail.
            format!("uid {}", unsafe { libc::getuid() })
        })
}
