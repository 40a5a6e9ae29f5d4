//! Run output: timestamped lines for people, or one JSON event per line (`--output json`),
//! then a summary of every step. Events arrive with their secret values masked
//! ([`crate::exec::masked`]); the summary's free text is masked here.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::io::Write;
use std::sync::Mutex;

use crate::exec::Summary;
use crate::exec::event::{Event, EventKind, Sink, Status};
use crate::exit;
use crate::mask::Masker;
use crate::retry::Failure;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Lines,
    Json,
}

/// Prints events as they happen.
pub struct Progress {
    mode: Mode,
    masker: Masker,
    color: bool,
    out: Mutex<()>,
    /// `--quiet`: steps' output lines are not shown (human mode).
    quiet: bool,
    /// Steps between the attempts of a poll (`until` false): the next attempt's start is not
    /// a line of its own, so each attempt is one line.
    polling: Mutex<HashSet<String>>,
    /// Completed steps with no rollback, said in one line once the run says something else.
    no_rollback: Mutex<Vec<String>>,
    /// Where the text goes instead of stdout (`runbook test` keeps the report a run prints).
    capture: Option<std::sync::Arc<Mutex<String>>>,
}

impl Progress {
    /// `color`: mark lines for people in colour (never JSON).
    pub fn new(mode: Mode, masker: Masker, color: bool) -> Self {
        Self {
            mode,
            masker,
            color,
            out: Mutex::new(()),
            quiet: false,
            polling: Mutex::new(HashSet::new()),
            no_rollback: Mutex::new(Vec::new()),
            capture: None,
        }
    }

    /// Human lines kept in `capture` rather than printed: the report a run would print.
    pub fn captured(masker: Masker, capture: std::sync::Arc<Mutex<String>>) -> Self {
        Self {
            capture: Some(capture),
            ..Self::new(Mode::Lines, masker, false)
        }
    }

    /// Hides steps' output lines (`--quiet`).
    pub fn quiet(mut self, quiet: bool) -> Self {
        self.quiet = quiet;
        self
    }

    /// One line of a step's output: `step │ line`, after the time when `at` is given.
    pub fn output(&self, at: Option<&str>, step: &str, line: &str, cut: bool) {
        if self.quiet {
            return;
        }
        let more = if cut { " […]" } else { "" };
        let text = match at {
            Some(at) => format!("{}   {step} │ {line}{more}\n", clock(at)),
            None => format!("  {step} │ {line}{more}\n"),
        };
        self.print(&text);
    }

    /// The steps with no rollback gathered so far, as one line.
    fn no_rollback_line(&self, t: &str) -> Option<String> {
        let steps = std::mem::take(&mut *self.no_rollback.lock().ok()?);
        (!steps.is_empty()).then(|| {
            format!(
                "{t} · not rolled back ({}): {}\n",
                crate::rollback::Reason::NoRollback,
                steps.join(", ")
            )
        })
    }

    fn print(&self, text: &str) {
        // JSON escapes control characters itself; lines for people get them made visible.
        let text = match self.mode {
            Mode::Json => std::borrow::Cow::Borrowed(text),
            Mode::Lines if self.color => std::borrow::Cow::Owned(super::paint::run_lines(
                &super::control_chars::escape(text),
            )),
            Mode::Lines => super::control_chars::escape(text),
        };
        if let Some(capture) = &self.capture {
            if let Ok(mut kept) = capture.lock() {
                kept.push_str(&text);
            }
            return;
        }
        let _guard = self.out.lock();
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(text.as_bytes());
        let _ = out.flush();
    }

    /// The closing summary (human mode only; JSON ends with `run_finished`).
    pub fn summary(&self, run_id: &str, summary: &Summary) {
        if summary.aborted {
            // Said on stderr in every mode: the operator must know what was left undone.
            // Never a panic: after SIGHUP the terminal may be gone.
            let _ = writeln!(std::io::stderr(), "{}", self.masker.text(&summary.status));
            return;
        }
        if self.mode == Mode::Json {
            return;
        }
        let mut text = format!(
            "\nSummary of run {run_id} ({:.1}s):\n",
            summary.duration.as_secs_f64()
        );
        let width = summary.steps.iter().map(|s| s.id.len()).max().unwrap_or(0);
        for step in &summary.steps {
            let (mark, status) = match step.status {
                Some(Status::Succeeded) => ("✓", "succeeded"),
                Some(Status::Failed) => ("✗", "failed"),
                Some(Status::Skipped) => ("–", "skipped"),
                Some(Status::Cancelled) => ("■", "cancelled"),
                None => ("·", "not run"),
            };
            let _ = write!(text, "  {mark} {:width$}  {status:9}", step.id);
            if step.attempts > 0 {
                let plural = if step.attempts == 1 {
                    "attempt"
                } else {
                    "attempts"
                };
                let _ = write!(
                    text,
                    "  {} {plural:8}  {:.2}s",
                    step.attempts,
                    step.duration.as_secs_f64()
                );
            }
            if !step.failed_items.is_empty() {
                let _ = write!(text, "  failed items: {}", step.failed_items.join(", "));
            }
            text.push('\n');
        }
        if !summary.rollback.is_empty() {
            let parts: Vec<String> = summary
                .rollback
                .iter()
                .map(|(id, status)| {
                    format!(
                        "{id} {}",
                        if *status == Status::Succeeded {
                            "✓"
                        } else {
                            "✗"
                        }
                    )
                })
                .collect();
            let _ = writeln!(text, "Rolled back: {}", parts.join(", "));
        }
        let none = crate::rollback::Reason::NoRollback.to_string();
        let (undeclared, kept): (Vec<_>, Vec<_>) = summary
            .not_rolled_back
            .iter()
            .partition(|(_, reason)| *reason == none);
        if !undeclared.is_empty() {
            let ids: Vec<&str> = undeclared.iter().map(|(id, _)| id.as_str()).collect();
            let _ = writeln!(text, "Not rolled back ({none}): {}", ids.join(", "));
        }
        for (id, reason) in kept {
            let _ = writeln!(text, "Not rolled back: {id} ({})", self.masker.text(reason));
        }
        let _ = writeln!(
            text,
            "Outcome: {} (exit {})",
            self.masker.text(&summary.status),
            summary.exit_code
        );
        if summary.exit_code == exit::NEEDS_PERSON {
            text.push_str("ACTION NEEDED: a person must check the state of the system.\n");
        }
        self.print(&text);
    }
}

fn clock(at: &str) -> &str {
    at.get(11..19).unwrap_or(at)
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.trim_end().lines().collect();
    let start = all.len().saturating_sub(lines);
    all[start..]
        .iter()
        .map(|l| format!("      │ {l}\n"))
        .collect()
}

impl Sink for Progress {
    /// A screen keeps no record: only the journal can be broken.
    fn broken(&self) -> Option<String> {
        None
    }

    fn emit(&self, event: &Event) {
        if self.mode == Mode::Json {
            let mut line = serde_json::to_string(event).unwrap_or_default();
            line.push('\n');
            self.print(&line);
            return;
        }
        let t = clock(&event.at);
        if let EventKind::NotRolledBack { step, reason } = &event.kind
            && *reason == crate::rollback::Reason::NoRollback.to_string()
        {
            if let Ok(mut steps) = self.no_rollback.lock() {
                steps.push(step.clone());
            }
            return;
        }
        if let Some(line) = self.no_rollback_line(t) {
            self.print(&line);
        }
        let line = match &event.kind {
            EventKind::RunStarted {
                run_id,
                runbook,
                steps,
                concurrency,
                ..
            } => format!(
                "{t} run {run_id} of `{runbook}`: {steps} steps, concurrency {concurrency}\n"
            ),
            EventKind::StepStarted {
                step,
                attempt,
                attempts,
                action,
                ..
            } => {
                if self.polling.lock().is_ok_and(|mut p| p.remove(step)) {
                    return;
                }
                let n = if *attempts > 1 {
                    format!(" (attempt {attempt}/{attempts})")
                } else {
                    String::new()
                };
                format!("{t} ▶ {step}{n}: {action}\n")
            }
            EventKind::AttemptFailed {
                step,
                attempt,
                message,
                retry_in_ms: Some(ms),
                reason: Failure::Until,
            } => {
                if let Ok(mut polling) = self.polling.lock() {
                    polling.insert(step.clone());
                }
                format!(
                    "{t} … {step} attempt {attempt}: {message}; next attempt in {}\n",
                    humantime::format_duration(std::time::Duration::from_millis(*ms))
                )
            }
            EventKind::AttemptFailed {
                step,
                attempt,
                message,
                retry_in_ms,
                ..
            } => match retry_in_ms {
                Some(ms) => format!(
                    "{t} ✗ {step} attempt {attempt} failed: {message}; next attempt in {}\n",
                    humantime::format_duration(std::time::Duration::from_millis(*ms))
                ),
                None => format!("{t} ✗ {step} attempt {attempt} failed: {message}\n"),
            },
            EventKind::StepFinished {
                step,
                status,
                attempts,
                duration_ms,
                message,
                stdout,
                stderr,
                ..
            } => {
                let secs = *duration_ms as f64 / 1000.0;
                match status {
                    Status::Succeeded => match message {
                        None => format!("{t} ✓ {step} ({secs:.2}s)\n"),
                        // It ran, but the run cannot go on (outputs that cannot be read).
                        Some(m) => format!("{t} ✗ {step} ({secs:.2}s): {m}\n"),
                    },
                    Status::Failed => {
                        let mut text = format!(
                            "{t} ✗ {step} failed after {attempts} attempt{}: {}\n",
                            if *attempts == 1 { "" } else { "s" },
                            message.as_deref().unwrap_or("failed")
                        );
                        // Its lines were shown as they came, unless `--quiet` hid them.
                        if self.quiet {
                            text.push_str(&tail(stderr, 10));
                            if stderr.trim().is_empty() {
                                text.push_str(&tail(stdout, 10));
                            }
                        }
                        text
                    }
                    Status::Cancelled => format!("{t} ■ {step} cancelled\n"),
                    Status::Skipped => format!("{t} – {step} skipped\n"),
                }
            }
            EventKind::StepSkipped { step, reason } => format!("{t} – {step} skipped: {reason}\n"),
            EventKind::StepMessage { step, message } => format!("{t}   {step} │ {message}\n"),
            EventKind::Approved { step, by, how } => {
                format!("{t} ✔ {step} approved by {by} ({how})\n")
            }
            EventKind::ApprovalNeeded(_)
            | EventKind::ApprovalVote(_)
            | EventKind::VoteIgnored { .. } => super::quorum::line(t, &event.kind),
            EventKind::RollbackStarted { steps } => {
                format!("{t} ↺ rolling back, in order: {}\n", steps.join(", "))
            }
            EventKind::RollbackStepStarted { step, action, .. } => {
                format!("{t} ↺ {step}: {action}\n")
            }
            EventKind::RollbackStepFinished {
                step,
                status,
                message,
            } => match status {
                Status::Succeeded => format!("{t} ↺ {step} rolled back\n"),
                _ => format!(
                    "{t} ✗ rollback of {step} failed: {}\n",
                    message.as_deref().unwrap_or("failed")
                ),
            },
            EventKind::NotRolledBack { step, reason } => {
                format!("{t} · {step} not rolled back: {reason}\n")
            }
            EventKind::FinallyStarted { outcome, steps } => {
                format!("{t} ▸ finally: {steps} step(s), run.outcome = {outcome}\n")
            }
            EventKind::RunFinished {
                status, exit_code, ..
            } => format!("{t} run {status} (exit {exit_code})\n"),
            EventKind::RunContext { .. } | EventKind::ProcessStarted { .. } => return,
            EventKind::Output {
                step, line, cut, ..
            } => {
                self.output(Some(&event.at), step, line, *cut);
                return;
            }
            EventKind::NotifyFailed { hook, on, message } => format!(
                "{t} warning: notify hook #{hook} (on {on}) failed: {message}; the run's outcome is unchanged\n"
            ),
            EventKind::Interrupted { signal } => {
                let by = if signal.is_empty() {
                    String::new()
                } else {
                    format!(" by {signal}")
                };
                format!(
                    "{t} interrupted{by}: stopping and rolling back; interrupt again to exit at once\n"
                )
            }
            EventKind::JournalFailed { reason } => format!(
                "{t} error: cannot write the run journal: {reason}; resume will not know what happened after this point\n"
            ),
            EventKind::SecretsNotSearched {
                secrets,
                min_length,
            } => format!(
                "{t} note: secrets shorter than {min_length} characters are masked only where a value is exactly the secret, not inside output: {}\n",
                secrets.join(", ")
            ),
            EventKind::RunResumed {
                run_id,
                decisions,
                rollback,
            } => {
                let decided = if decisions.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", decisions.join(", "))
                };
                let verb = if *rollback {
                    "rolling back"
                } else {
                    "resuming"
                };
                format!("{t} {verb} run {run_id}{decided}\n")
            }
        };
        self.print(&line);
    }
}
