//! `runbook runs`: one line per run in the state directory, in human or JSON form.

use std::fmt::Write;
use std::path::Path;

use crate::record::{load, run_ids};

/// One line of `runbook runs`.
struct RunLine {
    id: String,
    runbook: String,
    status: String,
    started: String,
    duration_ms: Option<u64>,
}

fn lines(state: &Path) -> Vec<RunLine> {
    run_ids(state)
        .into_iter()
        .map(|id| match load(state, &id) {
            Ok(r) => RunLine {
                duration_ms: r.finished.as_ref().map(|f| f.duration_ms),
                status: match (&r.finished, r.live.clone(), r.failed_rollbacks()) {
                    (_, Some(holder), _) => match super::quorum::waiting(&r) {
                        Some(waiting) => format!("running (pid {}), {waiting}", holder.pid),
                        None => format!("running (pid {})", holder.pid),
                    },
                    (finished, None, failed) if !failed.is_empty() => format!(
                        "NEEDS A PERSON: rollback of {} failed (`runbook rollback {id}` tries it again); {}",
                        failed.join(", "),
                        finished
                            .as_ref()
                            .map_or("stopped before the end", |f| f.status.as_str())
                    ),
                    (Some(f), None, _) => f.status.clone(),
                    (None, None, _) => {
                        "stopped before the end (runbook resume continues it)".to_owned()
                    }
                },
                runbook: r.runbook,
                started: r.started_at,
                id,
            },
            Err(e) => RunLine {
                id,
                runbook: String::new(),
                status: format!("unreadable: {e}"),
                started: String::new(),
                duration_ms: None,
            },
        })
        .collect()
}

pub fn human(state: &Path) -> String {
    let lines = lines(state);
    if lines.is_empty() {
        return format!("no runs in {}\n", state.display());
    }
    let mut out = String::new();
    for l in lines {
        let duration = l
            .duration_ms
            .map(|ms| format!("{:.1}s", ms as f64 / 1000.0))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "{}  {:24}  {:24}  {:>8}  {}",
            l.id, l.runbook, l.started, duration, l.status
        );
    }
    out
}

pub fn json(state: &Path) -> String {
    let runs: Vec<serde_json::Value> = lines(state)
        .into_iter()
        .map(|l| {
            serde_json::json!({
                "id": l.id, "runbook": l.runbook, "status": l.status,
                "started": l.started, "duration_ms": l.duration_ms,
            })
        })
        .collect();
    let mut text = serde_json::to_string_pretty(&runs).unwrap_or_default();
    text.push('\n');
    text
}
