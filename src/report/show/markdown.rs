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
