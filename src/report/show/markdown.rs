//! `show --format markdown`: a table of steps, the rollback, and what ran (for a ticket).

use std::fmt::Write;

use super::{approved, decided, outcome, rollbacks};
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
        let details = [approved(s), decided(s), s.message.clone()]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join("; ")
            .replace('|', "\\|")
            .replace('\n', " ");
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
        let text = match &s.detail {
            Some(action) => crate::report::action::full(action),
            None => s.action.clone(),
        };
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
    let Some(restored) = &timeline.restored else {
        return;
    };
    let rto = restored
        .rto_ms
        .map(|ms| crate::report::estimate::duration(ms as f64 / 1000.0));
    let line = match (restored.after_ms, restored.rto_ms, rto) {
        (None, _, _) => format!(
            "**Service not restored:** `{}` did not succeed in this run.",
            restored.step
        ),
        (Some(after), Some(limit), Some(rto)) if after > limit => format!(
            "**Time to service restored:** {} (from the start of the run to the end of `{}`): **exceeds the RTO of {rto}**.",
            seconds(Some(after)),
            restored.step
        ),
        (Some(after), _, Some(rto)) => format!(
            "**Time to service restored:** {} (from the start of the run to the end of `{}`), within the RTO of {rto}.",
            seconds(Some(after)),
            restored.step
        ),
        (Some(after), _, None) => format!(
            "**Time to service restored:** {} (from the start of the run to the end of `{}`); no RTO declared.",
            seconds(Some(after)),
            restored.step
        ),
    };
    let _ = writeln!(out, "\n{line}");
}
