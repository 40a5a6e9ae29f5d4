//! `runbook show`: what a run did, from its [`RunRecord`], one file per format. Journals hold
//! secrets masked already.

mod html;
mod human;
mod json;
mod junit;
mod markdown;

pub use html::html;
pub use human::human;
pub use json::json;
pub use junit::junit;
pub use markdown::markdown;

use crate::record::{RollbackState, RunRecord, StepRecord};

/// The outcome line.
fn outcome(r: &RunRecord) -> String {
    if let Some(live) = &r.live {
        // Never advise a resume of a run that is still going.
        return format!(
            "running now (pid {} on {}, started {})",
            live.pid, live.host, live.started
        );
    }
    r.finished.as_ref().map_or_else(
        || {
            "unfinished: the process stopped before the end (`runbook resume` continues it)"
                .to_owned()
        },
        |f| format!("{} (exit {})", f.status, f.exit_code),
    )
}

/// ` by USER on HOST (pid N)`, when the journal says.
fn by_whom(r: &RunRecord) -> String {
    r.context.as_ref().map_or_else(String::new, |c| {
        format!(" by {} on {} (pid {})", c.user, c.host, c.pid)
    })
}

/// How an approval is told, with the votes of a multi-party approval.
fn approved(s: &StepRecord) -> Option<String> {
    let approval = s
        .approval
        .as_ref()
        .map(|a| format!("approved by {} ({}) at {}", a.by, a.how, a.at));
    let votes = s
        .quorum
        .as_ref()
        .filter(|q| !q.votes.is_empty())
        .map(crate::report::quorum::votes);
    match (approval, votes) {
        (Some(a), Some(v)) => Some(format!("{a}; {v}")),
        (a, v) => a.or(v),
    }
}

/// How a decision about a step in doubt is told.
fn decided(s: &StepRecord) -> Option<String> {
    s.decided.as_ref().map(ToString::to_string)
}

/// Each rollback as `(step, what happened)`.
fn rollbacks(r: &RunRecord) -> Vec<(String, String)> {
    r.rollbacks
        .iter()
        .filter_map(|rb| match &rb.state {
            RollbackState::Started => None,
            RollbackState::Ended { status, message } => Some((
                rb.step.clone(),
                match message {
                    // A decision says so; a failure's message is in the step's events.
                    Some(m) if *status == crate::exec::event::Status::Succeeded => {
                        format!("{} ({m})", status.name())
                    }
                    _ => status.name().to_owned(),
                },
            )),
            RollbackState::NotRolledBack { reason } => {
                Some((rb.step.clone(), format!("not rolled back: {reason}")))
            }
        })
        .collect()
}

/// The measured time to service restored against the RTO, in parts each format marks up.
enum Restored {
    /// The step that ends the outage did not succeed.
    Not { step: String },
    Measured {
        /// `1.23s`.
        after: String,
        step: String,
        /// The RTO, and whether the measured time exceeds it; `None`: no RTO declared.
        rto: Option<(String, bool)>,
    },
}

fn restored(r: &RunRecord) -> Option<Restored> {
    let restored = crate::timeline::Timeline::of(r).restored?;
    let step = restored.step;
    Some(match restored.after_ms {
        None => Restored::Not { step },
        Some(after) => Restored::Measured {
            after: seconds(after),
            step,
            rto: restored.rto_ms.map(|limit| {
                (
                    crate::report::estimate::duration(limit as f64 / 1000.0),
                    after > limit,
                )
            }),
        },
    })
}

/// Milliseconds as `1.23s`.
fn seconds(ms: u64) -> String {
    format!("{:.2}s", ms as f64 / 1000.0)
}

/// A step's approval, decision and message, on one line.
fn details(s: &StepRecord) -> String {
    [approved(s), decided(s), s.message.clone()]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join("; ")
}

/// The whole action of a step as it ran (its summary when the journal has no more).
fn ran(s: &StepRecord) -> String {
    match &s.detail {
        Some(action) => crate::report::action::full(action),
        None => s.action.clone(),
    }
}
