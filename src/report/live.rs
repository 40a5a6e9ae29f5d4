//! The live view on a terminal: a spinner line per running step with its attempt and elapsed
//! time; everything else is printed above the spinners as the timestamped lines of
//! [`Progress`](super::progress::Progress), and the steps' output lines as they arrive
//! (`step │ line`).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

use super::progress::{Mode, Progress};
use crate::exec::event::{Event, EventKind, Sink};
use crate::mask::Masker;

pub struct Live {
    lines: Progress,
    multi: MultiProgress,
    bars: Mutex<HashMap<String, ProgressBar>>,
    /// `--quiet`: output lines are dropped before the spinners are touched.
    quiet: bool,
}

impl Live {
    /// `multi` is shared with the terminal that asks questions, which hides the spinners
    /// while a prompt is on the screen. `quiet` hides the steps' output lines.
    pub fn new(masker: Masker, color: bool, multi: MultiProgress, quiet: bool) -> Self {
        Self {
            lines: Progress::new(Mode::Lines, masker, color).quiet(quiet),
            multi,
            bars: Mutex::new(HashMap::new()),
            quiet,
        }
    }

    fn bar(&self, step: &str, message: String) {
        let Ok(mut bars) = self.bars.lock() else {
            return;
        };
        let bar = bars.entry(step.to_owned()).or_insert_with(|| {
            let bar = self.multi.add(ProgressBar::new_spinner());
            bar.set_style(
                ProgressStyle::with_template("  {spinner} {msg} {elapsed}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        // Step ids only: an id is never masked.
        bar.set_message(message);
    }

    fn done(&self, step: &str) {
        if let Ok(mut bars) = self.bars.lock()
            && let Some(bar) = bars.remove(step)
        {
            bar.finish_and_clear();
            self.multi.remove(&bar);
        }
    }
}

impl Sink for Live {
    /// A screen keeps no record: only the journal can be broken.
    fn broken(&self) -> Option<String> {
        None
    }

    fn emit(&self, event: &Event) {
        match &event.kind {
            EventKind::StepStarted {
                step,
                attempt,
                attempts,
                ..
            } => {
                let n = if *attempts > 1 {
                    format!(" attempt {attempt}/{attempts}")
                } else {
                    String::new()
                };
                self.bar(step, format!("{step}{n}"));
            }
            EventKind::RollbackStepStarted { step, .. } => {
                self.bar(step, format!("rolling back {step}"));
            }
            EventKind::StepFinished { step, .. } | EventKind::RollbackStepFinished { step, .. } => {
                self.done(step);
            }
            // A step's output goes above the spinners as it comes, without a time: it is
            // shown now.
            EventKind::Output {
                step, line, cut, ..
            } => {
                if !self.quiet {
                    self.multi
                        .suspend(|| self.lines.output(None, step, line, *cut));
                }
                return;
            }
            _ => {}
        }
        // The lines go above the spinners.
        self.multi.suspend(|| self.lines.emit(event));
    }
}
