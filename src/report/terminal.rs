//! The terminal as the person the engine asks: approval prompts (y/N) and the question about a
//! step in doubt, on stderr, answered on stdin.

use std::io::{BufRead, Write};

use crate::prompt::{Answer, Decision, Prompter};

pub struct Terminal {
    /// The live view's spinners, hidden while a question is on the screen: a redraw below a
    /// prompt would bury it.
    spinners: indicatif::MultiProgress,
}

impl Terminal {
    /// The terminal, when stdin and stderr are both one.
    pub fn if_interactive(spinners: indicatif::MultiProgress) -> Option<Self> {
        crate::steps::approval::interactive().then_some(Terminal { spinners })
    }
}

fn read_line() -> Option<String> {
    let mut line = String::new();
    match std::io::stdin().lock().read_line(&mut line) {
        Ok(0) | Err(_) => None,
        Ok(_) => Some(line),
    }
}

/// Asks why an approval was refused: the answer goes into the record.
fn refusal_reason() -> Option<String> {
    let mut err = std::io::stderr().lock();
    let _ = write!(err, "Refused. Reason (recorded in the run's journal): ");
    let _ = err.flush();
    drop(err);
    read_line()
        .map(|line| line.trim().to_owned())
        .filter(|r| !r.is_empty())
}

impl Prompter for Terminal {
    fn approve(&self, step: &str, prompt: &str, instructions: Option<&str>) -> Answer {
        self.without_spinners(|| ask_approval(step, prompt, instructions))
    }

    fn in_doubt(&self, step: &str) -> Option<Decision> {
        self.without_spinners(|| ask_in_doubt(step))
    }
}

impl Terminal {
    /// Asks with the spinners cleared and not redrawn until the answer is in. (Not
    /// `suspend`: that would hold the live view's lock, and with it every event of the run,
    /// Ctrl-C included, until a person answers.)
    fn without_spinners<T>(&self, ask: impl FnOnce() -> T) -> T {
        let _ = self.spinners.clear();
        self.spinners
            .set_draw_target(indicatif::ProgressDrawTarget::hidden());
        let answer = ask();
        self.spinners
            .set_draw_target(indicatif::ProgressDrawTarget::stderr());
        answer
    }
}

fn ask_approval(step: &str, prompt: &str, instructions: Option<&str>) -> Answer {
    use super::control_chars::escape;
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "\n── approval needed: {step} ──");
    if let Some(text) = instructions {
        for line in text.trim_end().lines() {
            let _ = writeln!(err, "  {}", escape(line));
        }
    }
    let _ = write!(err, "{} [y/N] ", escape(prompt));
    let _ = err.flush();
    drop(err);
    match read_line() {
        Some(line) if matches!(line.trim(), "y" | "Y" | "yes" | "YES" | "Yes") => Answer::Yes,
        Some(_) => Answer::No {
            reason: refusal_reason(),
        },
        None => Answer::Unreadable,
    }
}

fn ask_in_doubt(step: &str) -> Option<Decision> {
    for _ in 0..3 {
        let mut err = std::io::stderr().lock();
        let _ = write!(
            err,
            "`{step}` was running when the run stopped. Check the system, then say what happened: done (it completed), failed, or rerun? "
        );
        let _ = err.flush();
        drop(err);
        match read_line()?.trim() {
            "done" => return Some(Decision::Done),
            "failed" => return Some(Decision::Failed),
            "rerun" => return Some(Decision::Rerun),
            _ => {}
        }
    }
    None
}
