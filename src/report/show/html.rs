//! `show --format html`: the evidence report of a run, one self-contained page for an
//! auditor. No script, no external resource (it works offline and prints); every text that
//! comes from the journal is escaped, since step output is hostile text. The timeline draws
//! every attempt, loop and rollback action on one time axis, with the critical path (from
//! the run's runbook, when its file is unchanged) and the point of no return.

use std::fmt::Write;

use super::{approved, outcome, rollbacks, seconds};
use crate::exec::event::EventKind;
use crate::record::RunRecord;
use crate::recorded::Recorded;
use crate::timeline::{Timeline, at, between};

const STYLE: &str = "body{font:14px/1.4 sans-serif;margin:2em;color:#111}\
h1{font-size:1.4em}h2{font-size:1.15em;margin-top:1.5em;border-bottom:1px solid #ccc}\
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 6px;text-align:left;vertical-align:top}\
pre{background:#f4f4f4;padding:6px;white-space:pre-wrap;word-break:break-all}\
.gantt{border:1px solid #ccc;padding:4px}.row{display:flex;align-items:center;height:22px}\
.row .name{width:14em;overflow:hidden;white-space:nowrap;text-overflow:ellipsis;font-family:monospace}\
.track{position:relative;flex:1;height:18px;background:#fafafa;margin-right:9em}\
.bar{position:absolute;top:2px;height:14px;min-width:2px;background:#7a9cc6;font-size:11px;line-height:14px;white-space:nowrap;overflow:visible}\
.bar.failed{background:#d88}.bar.rollback{background:#e0a84c}.bar.loop{background:#bbb}.bar.skipped{background:#ddd}\
.bar.critical{outline:2px solid #b00}\
.point-of-no-return{position:absolute;top:0;bottom:0;width:0;border-left:2px dashed #000}\
.point-of-no-return span{font-size:10px;position:absolute;left:2px;top:-2px;white-space:nowrap}\
.warn{color:#b00;font-weight:bold}\
details{margin:4px 0}summary{cursor:pointer;font-family:monospace}\
@media print{body{margin:0;font-size:11px}details::details-content{content-visibility:visible;display:block}.bar{print-color-adjust:exact;-webkit-print-color-adjust:exact}h2{break-after:avoid}.row{break-inside:avoid}}";

/// Escapes text for HTML content and attribute values; drops control characters a browser
/// would render as nothing (or that could hide text) but keeps line breaks and tabs.
fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\n' | '\t' => out.push(c),
            c if c.is_control() => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// One drawn bar: an attempt of a step (or an instance), a loop, or a rollback action.
struct Drawn {
    step: String,
    kind: &'static str,
    label: String,
    start_ms: u64,
    duration_ms: u64,
    status: String,
}

/// The attempts of each step, from the events: `(step, attempt, start, end, failed)`.
fn attempts(r: &RunRecord) -> Vec<(String, u32, u64, Option<u64>, bool)> {
    let Some(origin) = at(&r.started_at) else {
        return Vec::new();
    };
    let offset = |t: &str| at(t).map_or(0, |t| between(origin, t));
    let mut out: Vec<(String, u32, u64, Option<u64>, bool)> = Vec::new();
    let open = |out: &mut Vec<(String, u32, u64, Option<u64>, bool)>, step: &str| {
        out.iter()
            .rposition(|(s, _, _, end, _)| s == step && end.is_none())
    };
    for event in &r.events {
        match &event.kind {
            EventKind::StepStarted { step, attempt, .. } => {
                out.push((step.clone(), *attempt, offset(&event.at), None, false));
            }
            EventKind::AttemptFailed { step, .. } => {
                if let Some(i) = open(&mut out, step) {
                    out[i].3 = Some(offset(&event.at));
                    out[i].4 = true;
                }
            }
            EventKind::StepFinished { step, status, .. } => {
                if let Some(i) = open(&mut out, step) {
                    out[i].3 = Some(offset(&event.at));
                    out[i].4 = *status != crate::exec::event::Status::Succeeded;
                }
            }
            _ => {}
        }
    }
    out
}

/// Every bar of the run, in the order the timeline gives its rows.
fn drawn(r: &RunRecord, timeline: &Timeline) -> Vec<Drawn> {
    let attempts = attempts(r);
    let end = |start: u64, d: Option<u64>| d.map_or(start, |d| start.saturating_add(d));
    let mut out = Vec::new();
    for bar in &timeline.bars {
        let start_ms = bar.start_ms.unwrap_or(0);
        let mine: Vec<_> = attempts
            .iter()
            .filter(|a| !bar.rollback && a.0 == bar.step)
            .collect();
        let kind = match (bar.rollback, bar.status.as_str(), mine.is_empty()) {
            (true, _, _) => "rollback",
            (false, "skipped", _) => "skipped",
            (false, _, true) => "loop",
            (false, _, false) => "step",
        };
        if kind != "step" {
            let label = match kind {
                "rollback" => format!("rollback of {}", bar.step),
                _ => bar.step.clone(),
            };
            out.push(Drawn {
                step: bar.step.clone(),
                kind,
                label,
                start_ms,
                duration_ms: bar.duration_ms.unwrap_or(0),
                status: bar.status.clone(),
            });
            continue;
        }
        let last = end(start_ms, bar.duration_ms);
        for (step, attempt, from, to, failed) in mine {
            let to = to.unwrap_or(last);
            out.push(Drawn {
                step: step.clone(),
                kind: "step",
                label: match bar.attempts > 1 {
                    true => format!("{step} #{attempt}"),
                    false => step.clone(),
                },
                start_ms: *from,
                duration_ms: to.saturating_sub(*from),
                status: match failed {
                    true => "failed".to_owned(),
                    false => bar.status.clone(),
                },
            });
        }
    }
    out
}

/// `STEP` or an instance `STEP[KEY]` of it.
fn is_of(id: &str, step: &str) -> bool {
    id == step
        || id
            .strip_prefix(step)
            .is_some_and(|rest| rest.starts_with('['))
}

pub fn html(r: &RunRecord) -> String {
    let mut out = String::new();
    let title = format!("Run {} of {}", r.run_id, r.runbook);
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<h1>Evidence report: {}</h1>\n",
        esc(&title),
        esc(&title)
    );
    summary(r, &mut out);
    let recorded = Recorded::of(r);
    gantt(r, recorded.as_ref().ok(), &mut out);
    if let Err(why) = &recorded {
        let _ = writeln!(
            out,
            "<p class=\"no-critical-path\">No critical path or point of no return: {}.</p>",
            esc(&why.to_string())
        );
    }
    restored(r, &mut out);
    approvals(r, &mut out);
    let rb = rollbacks(r);
    if !rb.is_empty() {
        out.push_str("<h2>Rollback</h2>\n<ul class=\"rollbacks\">\n");
        for (id, status) in rb {
            let _ = writeln!(out, "<li><code>{}</code>: {}</li>", esc(&id), esc(&status));
        }
        out.push_str("</ul>\n");
    }
    what_ran(r, &mut out);
    out.push_str("</body>\n</html>\n");
    out
}

/// The runbook, its params, who ran it, where, when, and how it ended.
fn summary(r: &RunRecord, out: &mut String) {
    let row = |out: &mut String, k: &str, v: &str| {
        let _ = writeln!(out, "<tr><th>{k}</th><td>{}</td></tr>", esc(v));
    };
    out.push_str("<h2>Run</h2>\n<table class=\"summary\">\n");
    row(out, "Runbook", &r.runbook);
    row(out, "Run id", &r.run_id);
    row(out, "Started", &r.started_at);
    if let Some(c) = &r.context {
        row(out, "File", &c.path);
        row(out, "Hash", &c.hash);
        row(out, "Run by (OS user)", &c.user);
        row(out, "Host", &c.host);
        row(out, "Process", &c.pid.to_string());
    }
    row(out, "Outcome", &outcome(r));
    if let Some(f) = &r.finished {
        row(out, "Exit code", &f.exit_code.to_string());
        row(out, "Duration", &seconds(f.duration_ms));
    }
    out.push_str("</table>\n");
    let Some(c) = r.context.as_ref().filter(|c| !c.params.is_empty()) else {
        return;
    };
    out.push_str("<h2>Params</h2>\n<p>Secrets are masked as <code>***</code> in the journal this page is made from.</p>\n<table class=\"params\">\n");
    for (name, value) in &c.params {
        let text = match value {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let _ = writeln!(
            out,
            "<tr><th>{}</th><td><code>{}</code></td></tr>",
            esc(name),
            esc(&text)
        );
    }
    out.push_str("</table>\n");
}

/// The Gantt chart: one row per step, instance or rollback action; one bar per attempt.
fn gantt(r: &RunRecord, recorded: Option<&Recorded>, out: &mut String) {
    let timeline = Timeline::of(r);
    let bars = drawn(r, &timeline);
    let total = bars
        .iter()
        .map(|b| b.start_ms.saturating_add(b.duration_ms))
        .chain(r.finished.as_ref().map(|f| f.duration_ms))
        .max()
        .unwrap_or(0)
        .max(1);
    let pct = |ms: u64| ms as f64 * 100.0 / total as f64;
    let critical =
        |id: &str| recorded.is_some_and(|rec| rec.critical_path.iter().any(|c| is_of(id, c)));
    let _ = writeln!(
        out,
        "<h2>Timeline</h2>\n<p>0s to {} on one axis, one bar per attempt; failed attempts in red.{}</p>",
        seconds(total),
        match recorded {
            Some(_) =>
                " Bars outlined in red are on the critical path; a dashed line marks the point of no return.",
            None => "",
        }
    );
    if let Some(rec) = recorded {
        let _ = writeln!(
            out,
            "<p>Critical path: <span class=\"critical-path\">{}</span></p>",
            esc(&rec.critical_path.join(" → "))
        );
        if rec.irreversible.is_empty() {
            out.push_str(
                "<p class=\"no-point-of-no-return\">This runbook has no point of no return.</p>\n",
            );
        }
    }
    out.push_str("<div class=\"gantt\">\n");
    let mut row: Option<(String, &str)> = None;
    for bar in &bars {
        let key = (bar.step.clone(), bar.kind);
        let same = row
            .as_ref()
            .is_some_and(|(s, k)| *s == key.0 && (*k == "step") == (key.1 == "step"));
        if !same {
            if row.is_some() {
                out.push_str("</div></div>\n");
            }
            let name = match bar.kind {
                "rollback" => format!("↶ {}", bar.step),
                _ => bar.step.clone(),
            };
            let _ = write!(
                out,
                "<div class=\"row\"><div class=\"name\">{}</div><div class=\"track\">",
                esc(&name)
            );
            row = Some(key);
        }
        let crit = match bar.kind != "rollback" && critical(&bar.step) {
            true => " critical",
            false => "",
        };
        let status = bar.status.replace(' ', "-");
        let _ = write!(
            out,
            "<div class=\"bar {}{crit} {}\" data-step=\"{}\" style=\"left:{:.3}%;width:{:.3}%\" title=\"{} {} {}\">{}</div>",
            bar.kind,
            esc(&status),
            esc(&bar.step),
            pct(bar.start_ms),
            pct(bar.duration_ms),
            esc(&bar.label),
            esc(&bar.status),
            seconds(bar.duration_ms),
            esc(&bar.label)
        );
        let irreversible = bar.kind == "step"
            && bar.status == "succeeded"
            && recorded.is_some_and(|rec| rec.irreversible.iter().any(|i| is_of(&bar.step, i)));
        if irreversible {
            let _ = write!(
                out,
                "<div class=\"point-of-no-return\" data-step=\"{}\" style=\"left:{:.3}%\"><span>point of no return</span></div>",
                esc(&bar.step),
                pct(bar.start_ms.saturating_add(bar.duration_ms))
            );
        }
    }
    if row.is_some() {
        out.push_str("</div></div>\n");
    }
    out.push_str("</div>\n");
}

/// The measured time to service restored against the RTO.
fn restored(r: &RunRecord, out: &mut String) {
    let Some(restored) = super::restored(r) else {
        return;
    };
    let line = match restored {
        super::Restored::Not { step } => format!(
            "<span class=\"warn\">Service not restored:</span> <code>{}</code> did not succeed in this run.",
            esc(&step)
        ),
        super::Restored::Measured { after, step, rto } => {
            let rto = match rto {
                Some((rto, true)) => {
                    format!(": <span class=\"warn\">exceeds the RTO of {rto}</span>.")
                }
                Some((rto, false)) => format!(", within the RTO of {rto}."),
                None => "; no RTO declared.".to_owned(),
            };
            format!(
                "Time to service restored: <b>{after}</b> (from the start of the run to the end of <code>{}</code>){rto}",
                esc(&step)
            )
        }
    };
    let _ = writeln!(
        out,
        "<h2>Recovery time</h2>\n<p class=\"restored\">{line}</p>"
    );
}

/// Who approved what, when and how; the votes of multi-party approvals.
fn approvals(r: &RunRecord, out: &mut String) {
    let steps: Vec<_> = r
        .steps
        .iter()
        .filter(|s| s.approval.is_some() || s.quorum.is_some())
        .collect();
    if steps.is_empty() {
        return;
    }
    out.push_str("<h2>Approvals</h2>\n<ul class=\"approvals\">\n");
    for s in steps {
        let _ = write!(
            out,
            "<li class=\"approval\" data-step=\"{}\"><code>{}</code>: {}",
            esc(&s.id),
            esc(&s.id),
            esc(&approved(s).unwrap_or_else(|| "not approved".to_owned()))
        );
        if let Some(q) = s.quorum.as_ref().filter(|q| !q.votes.is_empty()) {
            out.push_str("<table class=\"votes\"><tr><th>user</th><th>vote</th><th>at</th><th>reason</th></tr>");
            for v in &q.votes {
                let _ = write!(
                    out,
                    "<tr class=\"vote\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                    esc(&v.user),
                    esc(v.decision.verb()),
                    esc(&v.at),
                    esc(v.reason.as_deref().unwrap_or(""))
                );
            }
            out.push_str("</table>");
        }
        out.push_str("</li>\n");
    }
    out.push_str("</ul>\n");
}

/// Each step's status, and every command, query and output in a collapsible section.
fn what_ran(r: &RunRecord, out: &mut String) {
    out.push_str("<h2>Steps</h2>\n<table class=\"steps\"><tr><th>step</th><th>status</th><th>attempts</th><th>duration</th><th>details</th></tr>\n");
    for s in &r.steps {
        let details = super::details(s);
        let _ = writeln!(
            out,
            "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&s.id),
            s.status_name(),
            s.attempts,
            seconds(s.duration_ms),
            esc(&details)
        );
    }
    out.push_str("</table>\n<h2>What ran</h2>\n");
    for s in r.steps.iter().filter(|s| !s.action.is_empty()) {
        let text = super::ran(s);
        let _ = write!(
            out,
            "<details class=\"ran\" data-step=\"{}\"><summary>{} — {}</summary>\n<pre class=\"action\">{}</pre>\n",
            esc(&s.id),
            esc(&s.id),
            s.status_name(),
            esc(&text)
        );
        for (name, text) in [("stdout", &s.stdout), ("stderr", &s.stderr)] {
            if !text.trim().is_empty() {
                let _ = write!(
                    out,
                    "<p>{name}:</p>\n<pre class=\"{name}\">{}</pre>\n",
                    esc(text.trim_end())
                );
            }
        }
        out.push_str("</details>\n");
    }
}
