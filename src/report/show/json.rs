//! `show --format json`: the run's header and outcome, the operator's decisions about steps in
//! doubt, and every event of its journal.

use crate::record::RunRecord;

pub fn json(r: &RunRecord) -> String {
    let value = serde_json::json!({
        "run_id": r.run_id,
        "runbook": r.runbook,
        "path": r.path(),
        "started": r.started_at,
        "outcome": r.finished.as_ref().map(|f| serde_json::json!({"status": f.status, "exit_code": f.exit_code})),
        "decisions": r.steps.iter().filter_map(|s| s.decided.as_ref().map(|d| serde_json::json!({
            "step": s.id, "decision": d.decision, "at": d.at, "by": "operator",
        }))).collect::<Vec<_>>(),
        "events": r.events,
    });
    let mut text = serde_json::to_string_pretty(&value).unwrap_or_default();
    text.push('\n');
    text
}
