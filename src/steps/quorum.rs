//! Multi-party approvals: the run waits for votes cast with `runbook approve` in its
//! directory ([`crate::ballot`]), counts each approver once by the OS identity that owns the
//! vote, journals every vote it counts and every vote it ignores, and ends the wait when
//! enough approvers approved, one rejected, or the timeout passed.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::ballot::{self, Decision};
use crate::exec::event::{ApprovalNeeded, ApprovalVote, EventKind};
use crate::model::{Approval, Approvers};
use crate::steps::approval::{Granted, Lookup, NotApproved};

/// How often the waiting run looks for new votes.
const POLL: Duration = Duration::from_millis(200);

/// Who must vote on a multi-party approval, as rendered into the step's action.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Quorum {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub approvers: Vec<String>,
    /// The OS group whose members may approve (instead of `approvers`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    pub min: u32,
    pub self_approval: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
}

impl Quorum {
    /// The quorum of a multi-party approval; `None` for a single-person one.
    pub fn of(approval: &Approval) -> Option<Self> {
        let (approvers, group) = match approval.approvers.as_ref()? {
            Approvers::Users(users) => (users.iter().map(|u| u.value.clone()).collect(), None),
            Approvers::Group(g) => (Vec::new(), Some(g.group.value.clone())),
        };
        Some(Self {
            approvers,
            group,
            min: approval
                .min
                .as_ref()
                .map_or(1, |m| u32::try_from(m.value).unwrap_or(u32::MAX)),
            self_approval: approval.self_approval.as_ref().is_some_and(|s| s.value),
            timeout_ms: approval
                .timeout
                .as_ref()
                .map(|t| t.value.0.as_millis() as u64),
        })
    }

    /// The user names that may vote: the list, or the group's members now.
    pub fn resolve(&self) -> Result<Vec<String>, NotApproved> {
        match &self.group {
            None => Ok(self.approvers.clone()),
            Some(group) => group_members(group).ok_or_else(|| NotApproved::NoGroup {
                group: group.clone(),
            }),
        }
    }
}

/// Where the run's votes are cast.
#[derive(Clone, Debug)]
pub struct Ballot {
    pub state: PathBuf,
    pub run_id: String,
}

impl Ballot {
    pub fn run_dir(&self) -> PathBuf {
        crate::journal::run_dir(&self.state, &self.run_id)
    }

    /// The command an approver runs (from any directory: the state directory is absolute).
    pub fn command(&self, step: &str) -> String {
        let state = std::fs::canonicalize(&self.state).unwrap_or_else(|_| self.state.clone());
        format!(
            "runbook approve {} {} --state-dir {} [--reason TEXT | --reject]",
            self.run_id,
            crate::template::shell_quote(step.to_owned()),
            crate::template::shell_quote(state.display().to_string())
        )
    }
}

/// One multi-party approval being waited for.
pub struct Wait<'a> {
    pub ballot: &'a Ballot,
    pub step: &'a str,
    pub prompt: &'a str,
    pub quorum: &'a Quorum,
    /// The step's own timeout, when shorter than the approval's.
    pub limit: Option<Duration>,
    /// `--approve`/`--approve-all` given for this step: said, never counted.
    pub ignored_preapproval: Option<&'static str>,
    pub cancel: &'a CancellationToken,
    /// The run stops (another step failed for good): no step would follow the approval.
    pub stopping: &'a CancellationToken,
}

impl Wait<'_> {
    /// Waits for the votes. `emit` journals each event.
    pub async fn run(&self, emit: &(dyn Fn(EventKind) + Sync)) -> Result<Granted, NotApproved> {
        let approvers = self.quorum.resolve()?;
        let operator = crate::steps::approval::user();
        let eligible = approvers
            .iter()
            .filter(|a| self.quorum.self_approval || **a != operator)
            .count();
        if eligible < self.quorum.min as usize {
            return Err(NotApproved::TooFewApprovers {
                eligible,
                min: self.quorum.min,
                operator,
            });
        }
        let timeout = [
            self.quorum.timeout_ms.map(Duration::from_millis),
            self.limit,
        ]
        .into_iter()
        .flatten()
        .min();
        emit(EventKind::ApprovalNeeded(ApprovalNeeded {
            step: self.step.to_owned(),
            prompt: self.prompt.to_owned(),
            approvers: approvers.clone(),
            group: self.quorum.group.clone(),
            min: self.quorum.min,
            self_approval: self.quorum.self_approval,
            operator: operator.clone(),
            timeout_ms: timeout.map(|t| t.as_millis() as u64),
            command: self.ballot.command(self.step),
            ignored: self.ignored_preapproval.map(str::to_owned),
        }));
        let run_dir = self.ballot.run_dir();
        // Created by the run, with its umask, so that approvers need no more than the run
        // directory's group permissions. If it cannot be, `approve` says why.
        let _ = ballot::open(&run_dir);
        let mut counted = self.journaled();
        let mut seen = std::collections::BTreeSet::new();
        let deadline = timeout.map(|t| tokio::time::Instant::now() + t);
        loop {
            for found in ballot::read(&run_dir, &self.ballot.run_id, self.step) {
                if !seen.insert(found.file.clone()) {
                    continue;
                }
                let owner = found.owner.clone();
                let ignore = |reason: String| EventKind::VoteIgnored {
                    step: self.step.to_owned(),
                    file: found.file.clone(),
                    owner: owner.clone(),
                    reason,
                };
                let Some(vote) = found.vote else {
                    emit(ignore(
                        "not a readable vote on this step of this run".to_owned(),
                    ));
                    continue;
                };
                if found.writable_by_others {
                    emit(ignore(
                        "others than its owner may write it, so it may not say what its owner cast"
                            .to_owned(),
                    ));
                } else if vote.user != owner {
                    emit(ignore(format!(
                        "it claims to be {}'s vote but the file belongs to {owner}",
                        vote.user
                    )));
                } else if !approvers.contains(&owner) {
                    emit(ignore(format!("{owner} is not an approver")));
                } else if owner == operator && !self.quorum.self_approval {
                    emit(ignore(format!(
                        "{owner} runs this run and may not approve it (self_approval: false)"
                    )));
                } else if !counted.contains_key(&owner) {
                    counted.insert(owner.clone(), vote.decision);
                    emit(EventKind::ApprovalVote(ApprovalVote {
                        step: self.step.to_owned(),
                        user: owner.clone(),
                        decision: vote.decision,
                        reason: vote.reason.clone(),
                        voted_at: vote.at.clone(),
                    }));
                    if vote.decision == Decision::Reject {
                        return Err(NotApproved::Rejected {
                            by: owner,
                            reason: vote.reason,
                        });
                    }
                }
            }
            let approved: Vec<&String> = counted
                .iter()
                .filter(|(_, d)| **d == Decision::Approve)
                .map(|(u, _)| u)
                .collect();
            if approved.len() >= self.quorum.min as usize {
                return Ok(Granted {
                    by: approved
                        .iter()
                        .map(|u| u.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                    how: "multi-party approval",
                });
            }
            if deadline.is_some_and(|d| tokio::time::Instant::now() >= d) {
                return Err(NotApproved::VotesTimedOut {
                    given: approved.len(),
                    min: self.quorum.min,
                });
            }
            tokio::select! {
                () = tokio::time::sleep(POLL) => {}
                () = self.cancel.cancelled() => return Err(NotApproved::Cancelled),
                () = self.stopping.cancelled() => return Err(NotApproved::Cancelled),
            }
        }
    }

    /// The votes on this step the journal already holds (a resumed run counts them).
    fn journaled(&self) -> BTreeMap<String, Decision> {
        let path = crate::journal::journal_path(&self.ballot.state, &self.ballot.run_id);
        let mut counted = BTreeMap::new();
        for event in crate::journal::read(&path).unwrap_or_default() {
            if let EventKind::ApprovalVote(vote) = event.kind
                && vote.step == self.step
            {
                counted.entry(vote.user).or_insert(vote.decision);
            }
        }
        counted
    }
}

/// The members listed for `group` in the group database; `None` when there is no such group.
pub fn group_members(group: &str) -> Option<Vec<String>> {
    let name = std::ffi::CString::new(group).ok()?;
    crate::steps::approval::lookup(|buffer| {
        // SAFETY: an all-zero group is a valid value for a C struct of pointers and integers.
        let mut entry: libc::group = unsafe { std::mem::zeroed() };
        let mut found: *mut libc::group = std::ptr::null_mut();
        // SAFETY: every pointer is valid for the call and `buffer.len()` is its real size; the
        // strings `entry` points at live in `buffer`, read before it is dropped.
        let rc = unsafe {
            libc::getgrnam_r(
                name.as_ptr(),
                &mut entry,
                buffer.as_mut_ptr(),
                buffer.len(),
                &mut found,
            )
        };
        if rc == libc::ERANGE {
            return Lookup::TooSmall;
        }
        if rc != 0 || found.is_null() {
            return Lookup::Done(None);
        }
        let mut members = Vec::new();
        let mut at = entry.gr_mem;
        // SAFETY: gr_mem is a NULL-terminated array of NUL-terminated strings in `buffer`.
        unsafe {
            while !at.is_null() && !(*at).is_null() {
                members.push(std::ffi::CStr::from_ptr(*at).to_string_lossy().into_owned());
                at = at.add(1);
            }
        }
        Lookup::Done(Some(members))
    })
}
