//! `show --format human`: the outcome, each step with its action, and the rollback.

use std::fmt::Write;

use super::{approved, decided, outcome, rollbacks};
use crate::record::RunRecord;

pub fn human(r: &RunRecord) -> String {
    let mut out = format!(
        "Run {} of `{}` ({}), started {}{}\nOutcome: {}\n\n",
        r.run_id,
        r.runbook,
        r.path(),
        r.started_at,
        super::by_whom(r),
        outcome(r)
    );
    for s in &r.steps {
        let _ = writeln!(
            out,
            "{:10} {}  ({} attempt(s), {:.2}s)",
            s.status_name(),
            s.id,
            s.attempts,
            s.duration_ms as f64 / 1000.0
        );
        if !s.action.is_empty() {
            let _ = writeln!(out, "           {}", s.action);
        }
        if let Some(remote) = &s.target {
            let _ = writeln!(out, "           via ssh {}", remote.ssh);
        }
        if let Some(a) = approved(s) {
            let _ = writeln!(out, "           {a}");
        }
        if let Some(d) = decided(s) {
            let _ = writeln!(out, "           {d}");
        }
        if let Some(m) = &s.message {
            let _ = writeln!(out, "           {m}");
        }
    }
    let rb = rollbacks(r);
    if !rb.is_empty() {
        out.push_str("\nRollback:\n");
        for (id, status) in rb {
            let _ = writeln!(out, "  {id}: {status}");
        }
    }
    out
}
