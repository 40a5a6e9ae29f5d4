//! The terminal as the person the engine asks: approval prompts (y/N) and the question about a
//! step in doubt, on stderr, answered on stdin.

use std::io::{BufRead, Write};

use crate::prompt::{Answer, Decision, Prompter};

pub struct Terminal;

impl Terminal {
    /// The terminal, when stdin and stderr are both one.
    pub fn if_interactive() -> Option<Self> {
        crate::steps::approval::interactive().then_some(Terminal)
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

    fn in_doubt(&self, step: &str) -> Option<Decision> {
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
}
