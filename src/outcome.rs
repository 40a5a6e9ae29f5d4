//! Why a run stops, and the one function from that to its outcome and exit code. A real run,
//! a resumed one, `runbook rollback` and the `--fail-at` prediction all end here.

use crate::exit;

/// Why a run stopped before its end.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Stop {
    /// A step failed after its last attempt (or its `when` could not be evaluated).
    StepFailed { step: String },
    /// A step's action succeeded but its `outputs` could not be rendered: it counts as
    /// completed (its rollback applies), and what follows cannot run without its outputs.
    OutputsFailed { step: String },
    /// The run's own `timeout` ran out.
    TimedOut { after: String },
    /// Ctrl-C or SIGTERM.
    Interrupted,
    /// `resume`: the operator said a step in doubt failed.
    AssumedFailed { step: String },
    /// `resume`: the journal shows the run was already rolling back.
    WasRollingBack,
    /// `runbook rollback`: the operator asked for the run to be undone.
    RollbackRequested,
    /// The journal could not be written: nothing more may start, a rollback included, since
    /// it could not be recorded either.
    JournalFailed { reason: String },
}

impl std::fmt::Display for Stop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Stop::StepFailed { step } => write!(f, "step `{step}` failed"),
            Stop::OutputsFailed { step } => {
                write!(f, "step `{step}` ran, but its outputs could not be read")
            }
            Stop::TimedOut { after } => write!(f, "the run timed out after {after}"),
            Stop::Interrupted => f.write_str("interrupted"),
            Stop::AssumedFailed { step } => write!(f, "step `{step}` assumed failed"),
            Stop::WasRollingBack => f.write_str("the run was rolling back"),
            Stop::RollbackRequested => f.write_str("rollback requested"),
            Stop::JournalFailed { reason } => {
                write!(f, "the run journal cannot be written ({reason})")
            }
        }
    }
}

/// What the rollback of a stopped run did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Undo {
    /// A completed irreversible step was kept: a forward fix is needed.
    pub past_no_return: bool,
    /// A rollback action failed.
    pub failed: bool,
    /// Rollback actions that ran (now or before a crash).
    pub ran: usize,
    /// `--no-rollback`: completed steps were left as they are.
    pub suppressed: bool,
    /// An interrupt arrived during the run.
    pub interrupted: bool,
}

/// How a run ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Conclusion {
    pub exit_code: u8,
    pub status: String,
}

impl Conclusion {
    /// `run.outcome` for finally steps: `succeeded`, `failed`, `needs_person` or
    /// `interrupted`.
    pub fn outcome(&self) -> &'static str {
        match self.exit_code {
            exit::OK => "succeeded",
            exit::INTERRUPTED => "interrupted",
            exit::NEEDS_PERSON => "needs_person",
            _ => "failed",
        }
    }
}

/// The outcome of a run: `stop` is why it stopped (`None`: it went through), `tolerated` the
/// number of failed steps with `continue_on_failure`, `finally_failed` the finally steps that
/// failed: they turn a success into exit 1 (cleanup that did not happen is worth a look) and
/// leave any other code as it is, since that code already says more.
pub fn conclude(
    stop: Option<&Stop>,
    tolerated: usize,
    undo: Undo,
    finally_failed: &[String],
) -> Conclusion {
    let mut conclusion = conclude_run(stop, tolerated, undo);
    if !finally_failed.is_empty() {
        if conclusion.exit_code == exit::OK {
            conclusion.exit_code = exit::FAILED;
        }
        let names: Vec<String> = finally_failed.iter().map(|s| format!("`{s}`")).collect();
        conclusion.status = format!(
            "{}; finally step(s) failed: {}",
            conclusion.status,
            names.join(", ")
        );
    }
    conclusion
}

fn conclude_run(stop: Option<&Stop>, tolerated: usize, undo: Undo) -> Conclusion {
    let (exit_code, status) = match stop {
        None if tolerated == 0 => (exit::OK, "succeeded".to_owned()),
        None => (
            exit::OK,
            format!("succeeded with {tolerated} tolerated failure(s)"),
        ),
        // Whatever else happened: what ran after this point is not on record.
        Some(why @ Stop::JournalFailed { .. }) => (
            exit::JOURNAL_FAILED,
            format!(
                "{why}; stopped before the next step and not rolled back; free the disk (or fix the state directory), then `runbook resume` or `runbook rollback`"
            ),
        ),
        Some(why) if undo.past_no_return => (
            exit::NEEDS_PERSON,
            format!("{why}; stopped past a point of no return: a forward fix is needed"),
        ),
        Some(why) if undo.failed => (
            exit::NEEDS_PERSON,
            format!("{why}; rollback incomplete: a person must finish it"),
        ),
        Some(why) if undo.interrupted => (exit::INTERRUPTED, format!("{why}; rolled back")),
        Some(why) if undo.suppressed => (
            exit::FAILED,
            format!("{why}; not rolled back (--no-rollback)"),
        ),
        // Undoing a run on purpose is a success when every rollback ran.
        Some(why @ Stop::RollbackRequested) if undo.ran == 0 => {
            (exit::OK, format!("{why}; nothing to roll back"))
        }
        Some(why @ Stop::RollbackRequested) => (exit::OK, format!("{why}; rolled back")),
        Some(why) if undo.ran == 0 => (exit::FAILED, format!("{why}; nothing to roll back")),
        Some(why) => (exit::FAILED, format!("{why}; rolled back")),
    };
    Conclusion { exit_code, status }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failed() -> Stop {
        Stop::StepFailed {
            step: "b".to_owned(),
        }
    }

    #[test]
    fn a_run_that_went_through_exits_0() {
        assert_eq!(conclude(None, 0, Undo::default(), &[]).exit_code, exit::OK);
        let tolerated = conclude(None, 2, Undo::default(), &[]);
        assert_eq!(tolerated.exit_code, exit::OK);
        assert_eq!(tolerated.status, "succeeded with 2 tolerated failure(s)");
    }

    #[test]
    fn a_failure_rolled_back_exits_1() {
        let c = conclude(
            Some(&failed()),
            0,
            Undo {
                ran: 2,
                ..Undo::default()
            },
            &[],
        );
        assert_eq!(
            c,
            Conclusion {
                exit_code: 1,
                status: "step `b` failed; rolled back".to_owned()
            }
        );
        let nothing = conclude(Some(&failed()), 0, Undo::default(), &[]);
        assert_eq!(nothing.status, "step `b` failed; nothing to roll back");
        let kept = conclude(
            Some(&failed()),
            0,
            Undo {
                suppressed: true,
                ..Undo::default()
            },
            &[],
        );
        assert_eq!(
            (kept.exit_code, kept.status.as_str()),
            (1, "step `b` failed; not rolled back (--no-rollback)")
        );
    }

    #[test]
    fn a_person_is_needed_past_a_point_of_no_return_or_after_a_failed_rollback() {
        let past = Undo {
            past_no_return: true,
            interrupted: true,
            ..Undo::default()
        };
        assert_eq!(
            conclude(Some(&failed()), 0, past, &[]).exit_code,
            exit::NEEDS_PERSON
        );
        let broken = Undo {
            failed: true,
            ran: 1,
            interrupted: true,
            ..Undo::default()
        };
        let c = conclude(Some(&Stop::Interrupted), 0, broken, &[]);
        assert_eq!(
            (c.exit_code, c.status.as_str()),
            (
                3,
                "interrupted; rollback incomplete: a person must finish it"
            )
        );
    }

    #[test]
    fn an_interrupt_exits_130() {
        let c = conclude(
            Some(&Stop::Interrupted),
            0,
            Undo {
                interrupted: true,
                ..Undo::default()
            },
            &[],
        );
        assert_eq!(
            (c.exit_code, c.status.as_str()),
            (130, "interrupted; rolled back")
        );
    }

    #[test]
    fn a_requested_rollback_that_ran_exits_0() {
        let c = conclude(
            Some(&Stop::RollbackRequested),
            0,
            Undo {
                ran: 1,
                ..Undo::default()
            },
            &[],
        );
        assert_eq!(
            (c.exit_code, c.status.as_str()),
            (0, "rollback requested; rolled back")
        );
        let failed = conclude(
            Some(&Stop::RollbackRequested),
            0,
            Undo {
                ran: 1,
                failed: true,
                ..Undo::default()
            },
            &[],
        );
        assert_eq!(failed.exit_code, exit::NEEDS_PERSON);
    }

    #[test]
    fn a_journal_that_cannot_be_written_exits_4_whatever_else_happened() {
        let stop = Stop::JournalFailed {
            reason: "No space left on device".to_owned(),
        };
        let undo = Undo {
            failed: true,
            past_no_return: true,
            interrupted: true,
            ..Undo::default()
        };
        let c = conclude(Some(&stop), 0, undo, &[]);
        assert_eq!(c.exit_code, exit::JOURNAL_FAILED);
        assert!(
            c.status
                .starts_with("the run journal cannot be written (No space left on device)"),
            "{}",
            c.status
        );
    }

    #[test]
    fn a_failed_finally_step_turns_0_into_1_and_leaves_other_codes() {
        let cleanup = ["cleanup".to_owned()];
        let ok = conclude(None, 0, Undo::default(), &cleanup);
        assert_eq!(
            (ok.exit_code, ok.status.as_str()),
            (exit::FAILED, "succeeded; finally step(s) failed: `cleanup`")
        );
        let rolled_back = Undo {
            ran: 1,
            ..Undo::default()
        };
        assert_eq!(
            conclude(Some(&failed()), 0, rolled_back, &cleanup).exit_code,
            exit::FAILED
        );
        let broken = Undo {
            failed: true,
            ..Undo::default()
        };
        assert_eq!(
            conclude(Some(&failed()), 0, broken, &cleanup).exit_code,
            exit::NEEDS_PERSON
        );
        let interrupted = Undo {
            interrupted: true,
            ..Undo::default()
        };
        assert_eq!(
            conclude(Some(&Stop::Interrupted), 0, interrupted, &cleanup).exit_code,
            exit::INTERRUPTED
        );
    }

    #[test]
    fn run_outcome_follows_the_exit_code() {
        let outcome = |stop: Option<&Stop>, undo| conclude(stop, 0, undo, &[]).outcome();
        assert_eq!(outcome(None, Undo::default()), "succeeded");
        assert_eq!(outcome(Some(&failed()), Undo::default()), "failed");
        let broken = Undo {
            failed: true,
            ..Undo::default()
        };
        assert_eq!(outcome(Some(&failed()), broken), "needs_person");
        let interrupted = Undo {
            interrupted: true,
            ..Undo::default()
        };
        assert_eq!(
            outcome(Some(&Stop::Interrupted), interrupted),
            "interrupted"
        );
    }

    #[test]
    fn a_timeout_names_its_limit() {
        let stop = Stop::TimedOut {
            after: "5m".to_owned(),
        };
        assert_eq!(
            conclude(Some(&stop), 0, Undo::default(), &[]).status,
            "the run timed out after 5m; nothing to roll back"
        );
    }
}
