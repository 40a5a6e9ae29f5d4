//! `show --format json`: the run's header and outcome, and every event of its journal.

use crate::record::RunRecord;

pub fn json(r: &RunRecord) -> String {
    let value = serde_json::json!({
        "run_id": r.run_id,
        "runbook": r.runbook,
        "path": r.path(),
        "started": r.started_at,
        "outcome": r.finished.as_ref().map(|f| serde_json::json!({"status": f.status, "exit_code": f.exit_code})),
        "events": r.events,
    });
    let mut text = serde_json::to_string_pretty(&value).unwrap_or_default();
    text.push('\n');
    text
}
