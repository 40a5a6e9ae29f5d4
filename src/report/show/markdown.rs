//! `show --format markdown`: a table of steps, the rollback, and what ran (for a ticket).

use std::fmt::Write;

use super::{outcome, rollbacks};
use crate::record::RunRecord;

pub fn markdown(r: &RunRecord) -> String {
    let mut out = format!(
        "# Run `{}` of `{}`\n\n- Runbook file: `{}`\n- Started: {}{}\n- Outcome: **{}**\n\n",
        r.run_id,
        r.runbook,
        r.path(),
        r.started_at,
        super::by_whom(r),
        outcome(r)
    );
    out.push_str("| step | status | attempts | duration | details |\n|---|---|---:|---:|---|\n");
    for s in &r.steps {
        let details = super::details(s).replace('|', "\\|").replace('\n', " ");
        let _ = writeln!(
            out,
            "| `{}` | {} | {} | {:.2}s | {} |",
            s.id,
            s.status_name(),
            s.attempts,
            s.duration_ms as f64 / 1000.0,
            details
        );
    }
    timeline(r, &mut out);
    let rb = rollbacks(r);
    if !rb.is_empty() {
        out.push_str("\n## Rollback\n\n");
        for (id, status) in rb {
            let _ = writeln!(out, "- `{id}`: {status}");
        }
    }
    out.push_str("\n## What ran\n");
    for s in r.steps.iter().filter(|s| !s.action.is_empty()) {
        let text = super::ran(s);
        let _ = writeln!(out, "\n### `{}`\n\n```text\n{}\n```", s.id, text);
        if !s.stdout.trim().is_empty() {
            let _ = writeln!(out, "\nOutput:\n\n```text\n{}\n```", s.stdout.trim_end());
        }
    }
    out
}

/// The timeline table (steps, instances and rollback actions on one time axis) and the
/// measured time to service restored against the RTO.
fn timeline(r: &RunRecord, out: &mut String) {
    let timeline = crate::timeline::Timeline::of(r);
    let seconds = |ms: Option<u64>| {
        ms.map_or_else(
            || "—".to_owned(),
            |ms| format!("{:.2}s", ms as f64 / 1000.0),
        )
    };
    out.push_str("\n## Timeline\n\n| step | start | duration | status | attempts |\n|---|---:|---:|---|---:|\n");
    for bar in &timeline.bars {
        let what = match bar.rollback {
            true => format!("rollback of `{}`", bar.step),
            false => format!("`{}`", bar.step),
        };
        let _ = writeln!(
            out,
            "| {what} | {} | {} | {} | {} |",
            seconds(bar.start_ms),
            seconds(bar.duration_ms),
            bar.status,
            bar.attempts
        );
    }
    let Some(restored) = super::restored(r) else {
        return;
    };
    let line = match restored {
        super::Restored::Not { step } => {
            format!("**Service not restored:** `{step}` did not succeed in this run.")
        }
        super::Restored::Measured { after, step, rto } => {
            let rto = match rto {
                Some((rto, true)) => format!(": **exceeds the RTO of {rto}**."),
                Some((rto, false)) => format!(", within the RTO of {rto}."),
                None => "; no RTO declared.".to_owned(),
            };
            format!(
                "**Time to service restored:** {after} (from the start of the run to the end of `{step}`){rto}"
            )
        }
    };
    let _ = writeln!(out, "\n{line}");
}
