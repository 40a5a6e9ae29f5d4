//! `approval` steps: a person confirms. On a terminal the prompt is asked (y/N); otherwise
//! the approval must have been given up front with `--approve STEP` or `--approve-all`.

use std::io::{BufRead, IsTerminal, Write};

/// How approvals are obtained for a run.
#[derive(Clone, Debug, Default)]
pub struct Approvals {
    pub given: Vec<String>,
    pub all: bool,
    pub interactive: bool,
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

    /// Asks for, or looks up, the approval of `step`. `Err` carries why it was not given.
    pub async fn ask(
        &self,
        step: &str,
        prompt: &str,
        instructions: Option<&str>,
        lock: &tokio::sync::Mutex<()>,
    ) -> Result<Granted, String> {
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
        if !self.interactive {
            return Err(
                "not approved: no terminal to ask on (use --approve or --approve-all)".to_owned(),
            );
        }
        // One prompt at a time, even when parallel steps ask together.
        let _guard = lock.lock().await;
        let prompt = prompt.to_owned();
        let instructions = instructions.map(str::to_owned);
        let step = step.to_owned();
        let answer = tokio::task::spawn_blocking(move || {
            let mut err = std::io::stderr().lock();
            let _ = writeln!(err, "\n── approval needed: {step} ──");
            if let Some(text) = instructions {
                for line in text.trim_end().lines() {
                    let _ = writeln!(err, "  {line}");
                }
            }
            let _ = write!(err, "{prompt} [y/N] ");
            let _ = err.flush();
            let mut line = String::new();
            std::io::stdin().lock().read_line(&mut line).map(|_| line)
        })
        .await;
        match answer {
            Ok(Ok(line)) if matches!(line.trim(), "y" | "Y" | "yes" | "YES" | "Yes") => {
                Ok(Granted {
                    by: user(),
                    how: "terminal",
                })
            }
            Ok(Ok(_)) => Err("refused at the prompt".to_owned()),
            _ => Err("no answer could be read".to_owned()),
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
