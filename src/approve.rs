//! `runbook approve RUN STEP`: one approver's vote on a multi-party approval the run is
//! waiting for. The voter is the real uid of this process (its name in the user database),
//! never `$USER`. The vote is refused here when it cannot count (not an approver, the
//! operator's own, a second vote, a run not waiting there); the run checks it again when it
//! reads it, so a vote file written by hand counts no more than its owner's vote would.

use std::path::{Path, PathBuf};

use crate::ballot::{self, BallotError, Decision, Vote};
use crate::record::RecordError;

/// A vote as the command line gives it.
#[derive(Clone, Debug)]
pub struct Request {
    pub run_id: String,
    pub step: String,
    pub decision: Decision,
    pub reason: Option<String>,
}

/// A vote cast.
#[derive(Clone, Debug)]
pub struct Cast {
    pub user: String,
    pub file: PathBuf,
    /// Approvals the run had counted before this vote, and how many it needs.
    pub approved: usize,
    pub min: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum ApproveError {
    #[error(transparent)]
    Record(#[from] RecordError),
    #[error("run {run} has no step `{step}`{}", waiting_help(waiting))]
    UnknownStep {
        run: String,
        step: String,
        waiting: Vec<String>,
    },
    #[error(
        "run {run} is not waiting for an approval at `{step}`{}",
        waiting_help(waiting)
    )]
    NotWaiting {
        run: String,
        step: String,
        waiting: Vec<String>,
    },
    #[error(
        "run {run} is not running: it stopped while waiting for approval at `{step}`; `runbook resume {run}` waits again (the votes already counted still count)"
    )]
    NotRunning { run: String, step: String },
    #[error("{user} may not approve `{step}`: the approvers are {}", approvers.join(", "))]
    NotApprover {
        user: String,
        step: String,
        approvers: Vec<String>,
    },
    #[error(
        "{user} runs run {run} and may not approve its own run (`{step}` has self_approval: false); ask one of {}",
        others.join(", ")
    )]
    SelfApproval {
        user: String,
        run: String,
        step: String,
        others: Vec<String>,
    },
    #[error(transparent)]
    Ballot(#[from] BallotError),
}

fn waiting_help(waiting: &[String]) -> String {
    if waiting.is_empty() {
        "; it waits for no approval now".to_owned()
    } else {
        format!("; it waits for an approval at {}", waiting.join(", "))
    }
}

/// Casts the vote of the user running this process.
pub fn approve(state: &Path, request: &Request) -> Result<Cast, ApproveError> {
    let record = crate::record::load(state, &request.run_id)?;
    let run = record.run_id.clone();
    let waiting: Vec<String> = record
        .steps
        .iter()
        .filter(|s| s.waiting().is_some())
        .map(|s| s.id.clone())
        .collect();
    let known = record.steps.iter().any(|s| s.id == request.step)
        || record
            .context
            .as_ref()
            .is_some_and(|c| c.step_ids.contains(&request.step));
    let Some(step) = record.steps.iter().find(|s| s.id == request.step) else {
        return Err(if known {
            ApproveError::NotWaiting {
                run,
                step: request.step.clone(),
                waiting,
            }
        } else {
            ApproveError::UnknownStep {
                run,
                step: request.step.clone(),
                waiting,
            }
        });
    };
    let Some(quorum) = step.waiting() else {
        return Err(ApproveError::NotWaiting {
            run,
            step: request.step.clone(),
            waiting,
        });
    };
    if record.live.is_none() {
        return Err(ApproveError::NotRunning {
            run,
            step: request.step.clone(),
        });
    }
    let user = crate::steps::approval::user();
    if !quorum.approvers.contains(&user) {
        return Err(ApproveError::NotApprover {
            user,
            step: request.step.clone(),
            approvers: quorum.approvers.clone(),
        });
    }
    if user == quorum.operator && !quorum.self_approval {
        return Err(ApproveError::SelfApproval {
            others: quorum
                .approvers
                .iter()
                .filter(|a| **a != user)
                .cloned()
                .collect(),
            user,
            run,
            step: request.step.clone(),
        });
    }
    if quorum.votes.iter().any(|v| v.user == user) {
        return Err(BallotError::AlreadyVoted {
            user,
            step: request.step.clone(),
        }
        .into());
    }
    let vote = Vote {
        run: run.clone(),
        step: request.step.clone(),
        user: user.clone(),
        decision: request.decision,
        reason: request.reason.clone(),
        at: crate::exec::event::now(),
    };
    let file = ballot::cast(&crate::journal::run_dir(state, &run), &vote)?;
    Ok(Cast {
        user,
        file,
        approved: quorum
            .votes
            .iter()
            .filter(|v| v.decision == Decision::Approve)
            .count(),
        min: quorum.min,
    })
}
