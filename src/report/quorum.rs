//! The lines a run prints while a multi-party approval waits: who may approve and the
//! command they run, each vote counted, each vote ignored.

use crate::ballot::Decision;
use crate::exec::event::EventKind;

/// The progress line(s) of a multi-party approval event; empty for any other event.
pub fn line(t: &str, kind: &EventKind) -> String {
    match kind {
        EventKind::ApprovalNeeded(a) => {
            let step = &a.step;
            let mut out = String::new();
            if let Some(flag) = &a.ignored {
                out.push_str(&format!(
                    "{t} note: {flag} does not satisfy {step}: it is a multi-party approval, voted with `runbook approve`\n"
                ));
            }
            let from = a
                .group
                .as_ref()
                .map(|g| format!(" (members of group {g})"))
                .unwrap_or_default();
            let who = if a.approvers.is_empty() {
                "nobody".to_owned()
            } else {
                a.approvers.join(", ")
            };
            let within = within(a.timeout_ms, " ");
            let own = if a.self_approval {
                String::new()
            } else {
                format!("; {} runs this run and does not count", a.operator)
            };
            out.push_str(&format!(
                "{t} ? {step} waits for {} approval(s){within}: {}\n      may approve: {who}{from}{own}\n      each runs: {}\n",
                a.min, a.prompt, a.command
            ));
            out
        }
        EventKind::ApprovalVote(v) => {
            let why = v
                .reason
                .as_ref()
                .map(|r| format!(": {r}"))
                .unwrap_or_default();
            let mark = match v.decision {
                Decision::Approve => '✔',
                Decision::Reject => '✗',
            };
            format!(
                "{t} {mark} {} {} by {} at {}{why}\n",
                v.step,
                v.decision.verb(),
                v.user,
                v.voted_at
            )
        }
        EventKind::VoteIgnored {
            step,
            file,
            owner,
            reason,
        } => format!("{t} ! {step}: vote file {file} (owner {owner}) ignored: {reason}\n"),
        _ => String::new(),
    }
}

/// What `runbook approve` says when the vote was cast.
pub fn cast(request: &crate::approve::Request, cast: &crate::approve::Cast) -> String {
    let counted = match request.decision {
        Decision::Approve => format!(
            "; with the {} approval(s) counted before, {} of {} needed",
            cast.approved,
            cast.approved + 1,
            cast.min
        ),
        Decision::Reject => "; the run stops waiting and rolls back".to_owned(),
    };
    format!(
        "{} {} `{}` of run {}{counted}\nthe run counts the vote when it reads {}\n",
        cast.user,
        request.decision.verb(),
        request.step,
        request.run_id,
        cast.file.display()
    )
}

/// What a running run waits for, for `runbook runs`: each multi-party approval, whose votes
/// it has and who else may vote; `None` when it waits for none.
pub fn waiting(record: &crate::record::RunRecord) -> Option<String> {
    let parts: Vec<String> = record
        .steps
        .iter()
        .filter_map(|s| s.waiting().map(|q| (s, q)))
        .map(|(s, q)| {
            let approved: Vec<&str> = q
                .votes
                .iter()
                .filter(|v| v.decision == Decision::Approve)
                .map(|v| v.user.as_str())
                .collect();
            let others: Vec<&str> = q
                .approvers
                .iter()
                .map(String::as_str)
                .filter(|a| !q.votes.iter().any(|v| v.user == *a))
                .filter(|a| q.self_approval || *a != q.operator)
                .collect();
            let have = if approved.is_empty() {
                "no approvals yet".to_owned()
            } else {
                format!("approved by {}", approved.join(", "))
            };
            format!(
                "WAITING FOR APPROVAL at {}: {} of {} ({have}); may still approve: {}",
                s.id,
                approved.len(),
                q.min,
                if others.is_empty() {
                    "nobody".to_owned()
                } else {
                    others.join(", ")
                }
            )
        })
        .collect();
    (!parts.is_empty()).then(|| parts.join("; "))
}

/// Who must vote on a multi-party approval, for the plan and `show`.
pub fn needs(quorum: &crate::steps::quorum::Quorum) -> String {
    let who = match &quorum.group {
        Some(group) => format!("the members of group {group}"),
        None => quorum.approvers.join(", "),
    };
    let own = if quorum.self_approval {
        ""
    } else {
        " (the operator's own vote does not count)"
    };
    let within = within(quorum.timeout_ms, ", ");
    format!(
        "needs {} approval(s) of {who}{own}{within}, voted with `runbook approve`",
        quorum.min
    )
}

/// `{before}within 30m` for a wait with a timeout; empty without one.
fn within(timeout_ms: Option<u64>, before: &str) -> String {
    timeout_ms
        .map(|ms| {
            format!(
                "{before}within {}",
                humantime::format_duration(std::time::Duration::from_millis(ms))
            )
        })
        .unwrap_or_default()
}

/// The votes a run counted, for `show`: `votes: alice approved at T (why); bob rejected at T`.
pub fn votes(quorum: &crate::record::QuorumRecord) -> String {
    let told: Vec<String> = quorum
        .votes
        .iter()
        .map(|v| {
            let why = v
                .reason
                .as_ref()
                .map(|r| format!(" ({r})"))
                .unwrap_or_default();
            format!("{} {} at {}{why}", v.user, v.decision.verb(), v.at)
        })
        .collect();
    format!("votes: {}", told.join("; "))
}
