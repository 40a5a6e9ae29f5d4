//! Run history from the journals: `runbook runs` and `runbook show` in human, json, markdown
//! and JUnit form. Journals hold secrets masked already.

use std::fmt::Write;
use std::path::Path;

use serde_json::Value;

use crate::resume::{Recorded, load, run_ids};

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
                duration_ms: r
                    .events
                    .iter()
                    .rev()
                    .find(|e| e["event"] == "run_finished")
                    .and_then(|e| e["duration_ms"].as_u64()),
                status: match (&r.finished, crate::lock::running(state, &id)) {
                    (Some((status, _)), _) => status.clone(),
                    (None, Some(holder)) => format!("running (pid {})", holder.pid),
                    (None, None) => {
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

pub fn runs_human(state: &Path) -> String {
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

pub fn runs_json(state: &Path) -> String {
    let runs: Vec<Value> = lines(state)
        .into_iter()
        .map(|l| {
            serde_json::json!({
                "id": l.id, "runbook": l.runbook, "status": l.status,
                "started": l.started, "duration_ms": l.duration_ms,
            })
        })
        .collect();
    let mut text = serde_json::to_string_pretty(&Value::Array(runs)).unwrap_or_default();
    text.push('\n');
    text
}

/// What one step did, as the journal tells it (the last attempt wins).
#[derive(Default)]
struct StepRecord {
    id: String,
    action: String,
    status: String,
    attempts: u64,
    duration_ms: u64,
    message: Option<String>,
    stdout: String,
    stderr: String,
    approved: Option<String>,
    detail: Option<Value>,
}

fn steps(r: &Recorded) -> Vec<StepRecord> {
    let mut steps: Vec<StepRecord> = Vec::new();
    let mut get = |id: &str| -> usize {
        match steps.iter().position(|s| s.id == id) {
            Some(i) => i,
            None => {
                steps.push(StepRecord {
                    id: id.to_owned(),
                    status: "started".to_owned(),
                    ..StepRecord::default()
                });
                steps.len() - 1
            }
        }
    };
    let mut out: Vec<(usize, Value)> = Vec::new();
    for e in &r.events {
        let Some(id) = e["step"].as_str() else {
            continue;
        };
        let kind = e["event"].as_str().unwrap_or_default();
        if !matches!(
            kind,
            "step_started" | "step_finished" | "step_skipped" | "approved"
        ) {
            continue;
        }
        let i = get(id);
        out.push((i, e.clone()));
    }
    for (i, e) in out {
        let s = &mut steps[i];
        match e["event"].as_str().unwrap_or_default() {
            "step_started" => {
                s.action = e["action"].as_str().unwrap_or_default().to_owned();
                if let Some(detail) = e.get("detail") {
                    s.detail = Some(detail.clone());
                }
            }
            "step_finished" => {
                s.status = e["status"].as_str().unwrap_or_default().to_owned();
                s.attempts = e["attempts"].as_u64().unwrap_or(0);
                s.duration_ms = e["duration_ms"].as_u64().unwrap_or(0);
                s.message = e["message"].as_str().map(str::to_owned);
                s.stdout = e["stdout"].as_str().unwrap_or_default().to_owned();
                s.stderr = e["stderr"].as_str().unwrap_or_default().to_owned();
            }
            "step_skipped" => {
                s.status = "skipped".to_owned();
                s.message = e["reason"].as_str().map(str::to_owned);
            }
            "approved" => {
                s.approved = Some(format!(
                    "approved by {} ({}) at {}",
                    e["by"].as_str().unwrap_or_default(),
                    e["how"].as_str().unwrap_or_default(),
                    e["at"].as_str().unwrap_or_default()
                ));
            }
            _ => {}
        }
    }
    steps
}

fn rollbacks(r: &Recorded) -> Vec<(String, String)> {
    r.events
        .iter()
        .filter_map(|e| match e["event"].as_str()? {
            "rollback_step_finished" => Some((
                e["step"].as_str()?.to_owned(),
                e["status"].as_str().unwrap_or_default().to_owned(),
            )),
            "not_rolled_back" => Some((
                e["step"].as_str()?.to_owned(),
                format!(
                    "not rolled back: {}",
                    e["reason"].as_str().unwrap_or_default()
                ),
            )),
            _ => None,
        })
        .collect()
}

fn outcome(r: &Recorded) -> String {
    r.finished.as_ref().map_or_else(
        || {
            "unfinished: the process stopped before the end (`runbook resume` continues it)"
                .to_owned()
        },
        |(status, code)| format!("{status} (exit {code})"),
    )
}

pub fn show_human(r: &Recorded) -> String {
    let mut out = format!(
        "Run {} of `{}` ({}), started {}\nOutcome: {}\n\n",
        r.run_id,
        r.runbook,
        r.path,
        r.started_at,
        outcome(r)
    );
    for s in steps(r) {
        let _ = writeln!(
            out,
            "{:10} {}  ({} attempt(s), {:.2}s)",
            s.status,
            s.id,
            s.attempts,
            s.duration_ms as f64 / 1000.0
        );
        if !s.action.is_empty() {
            let _ = writeln!(out, "           {}", s.action);
        }
        if let Some(a) = &s.approved {
            let _ = writeln!(out, "           {a}");
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

pub fn show_json(r: &Recorded) -> String {
    let value = serde_json::json!({
        "run_id": r.run_id,
        "runbook": r.runbook,
        "path": r.path,
        "started": r.started_at,
        "outcome": r.finished.as_ref().map(|(s, c)| serde_json::json!({"status": s, "exit_code": c})),
        "events": r.events,
    });
    let mut text = serde_json::to_string_pretty(&value).unwrap_or_default();
    text.push('\n');
    text
}

pub fn show_markdown(r: &Recorded) -> String {
    let mut out = format!(
        "# Run `{}` of `{}`\n\n- Runbook file: `{}`\n- Started: {}\n- Outcome: **{}**\n\n",
        r.run_id,
        r.runbook,
        r.path,
        r.started_at,
        outcome(r)
    );
    out.push_str("| step | status | attempts | duration | details |\n|---|---|---:|---:|---|\n");
    for s in steps(r) {
        let details = [s.approved.clone(), s.message.clone()]
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
            s.status,
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
    for s in steps(r).iter().filter(|s| !s.action.is_empty()) {
        let _ = writeln!(out, "\n### `{}`\n\n```text\n{}\n```", s.id, rendered(s));
        if !s.stdout.trim().is_empty() {
            let _ = writeln!(out, "\nOutput:\n\n```text\n{}\n```", s.stdout.trim_end());
        }
    }
    out
}

/// The whole action as it ran, from the journal's record of it.
fn rendered(s: &StepRecord) -> String {
    let Some(d) = &s.detail else {
        return s.action.clone();
    };
    let text = |k: &str| d[k].as_str().unwrap_or_default().to_owned();
    match d["kind"].as_str().unwrap_or_default() {
        "command" => {
            let mut line = crate::template::shell_quote(text("program"));
            for a in d["args"].as_array().into_iter().flatten() {
                line.push(' ');
                line.push_str(&crate::template::shell_quote(
                    a.as_str().unwrap_or_default().to_owned(),
                ));
            }
            format!("$ {line}")
        }
        "script" => format!("{} script:\n{}", text("shell"), text("script").trim_end()),
        "sql" => {
            let mut out = format!(
                "sql on {}:\n{}",
                text("connection"),
                text("query").trim_end()
            );
            for (i, a) in d["args"].as_array().into_iter().flatten().enumerate() {
                let _ = write!(out, "\n@P{} = {a}", i + 1);
            }
            out
        }
        _ => s.action.clone(),
    }
}

fn xml(text: &str) -> String {
    text.chars()
        .filter(|c| !c.is_control() || matches!(c, '\n' | '\t'))
        .collect::<String>()
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

pub fn show_junit(r: &Recorded) -> String {
    let steps = steps(r);
    let failures = steps
        .iter()
        .filter(|s| s.status == "failed" || s.status == "started")
        .count();
    let skipped = steps.iter().filter(|s| s.status == "skipped").count();
    let total: u64 = steps.iter().map(|s| s.duration_ms).sum();
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"runbook\" tests=\"{}\" failures=\"{failures}\" time=\"{:.3}\">",
        steps.len(),
        total as f64 / 1000.0
    );
    let _ = writeln!(
        out,
        "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{failures}\" skipped=\"{skipped}\" time=\"{:.3}\" timestamp=\"{}\">",
        xml(&r.runbook),
        steps.len(),
        total as f64 / 1000.0,
        xml(&r.started_at)
    );
    for s in &steps {
        let _ = writeln!(
            out,
            "    <testcase classname=\"{}\" name=\"{}\" time=\"{:.3}\">",
            xml(&r.runbook),
            xml(&s.id),
            s.duration_ms as f64 / 1000.0
        );
        match s.status.as_str() {
            "failed" => {
                let _ = writeln!(
                    out,
                    "      <failure message=\"{}\">{}</failure>",
                    xml(s.message.as_deref().unwrap_or("failed")),
                    xml(&s.stderr)
                );
            }
            "started" => {
                let _ = writeln!(
                    out,
                    "      <failure message=\"in doubt: started, never finished\"/>"
                );
            }
            "skipped" => {
                let _ = writeln!(
                    out,
                    "      <skipped message=\"{}\"/>",
                    xml(s.message.as_deref().unwrap_or(""))
                );
            }
            _ => {}
        }
        if !s.stdout.is_empty() {
            let _ = writeln!(out, "      <system-out>{}</system-out>", xml(&s.stdout));
        }
        out.push_str("    </testcase>\n");
    }
    out.push_str("  </testsuite>\n</testsuites>\n");
    out
}
