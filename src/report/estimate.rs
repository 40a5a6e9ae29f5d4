//! The estimate in a human plan: each step's expected start and end, then the critical path,
//! the time to service restored against the RTO (a warning when it exceeds it) and the worst
//! case. Shown only when the runbook says something about time (`expect`, `rto`, `--history`).

use std::fmt::Write;
use std::time::Duration;

use crate::estimate::{Estimate, Source};
use crate::plan::{Plan, PlannedStep};

/// `1h 5m`, `2m 30s`, `0s`: seconds as people read them (milliseconds kept below a minute).
pub fn duration(seconds: f64) -> String {
    let ms = (seconds * 1000.0).round();
    let d = Duration::from_millis(if ms.is_finite() && ms > 0.0 {
        ms as u64
    } else {
        0
    });
    if d.is_zero() {
        return "0s".to_owned();
    }
    // Above a minute, milliseconds are noise.
    let shown = if d >= Duration::from_secs(60) {
        Duration::from_secs(d.as_secs())
    } else {
        d
    };
    humantime::format_duration(shown).to_string()
}

/// The line under a step: `expected: 2m (expect), +0s → +2m, on the critical path`.
pub fn step_line(plan: &Plan, step: &PlannedStep, out: &mut String) {
    if !plan.estimate.as_ref().is_some_and(|e| e.declared) {
        return;
    }
    let e = &step.expected;
    let length = e.expected_end_s - e.expected_start_s;
    let from = match (e.expected_from, e.history_runs) {
        (Source::History, Some(runs)) => format!("median of {runs} past run(s)"),
        (Source::Expect, _) if step.for_each.as_ref().is_some_and(|f| f.items_of.is_some()) => {
            "expect, one item: the items are known only at run time".to_owned()
        }
        (source, _) => source.name().to_owned(),
    };
    let critical = if e.critical {
        ", on the critical path"
    } else {
        ""
    };
    let _ = writeln!(
        out,
        "      expected: {} ({from}), +{} → +{}{critical}",
        duration(length),
        duration(e.expected_start_s),
        duration(e.expected_end_s),
    );
}

/// The estimate section at the end of a human plan.
pub fn section(estimate: &Estimate, out: &mut String) {
    if !estimate.declared {
        return;
    }
    let _ = writeln!(
        out,
        "\nEstimate (every step starting as soon as what it needs is done):"
    );
    if let Some(runs) = estimate.history_runs {
        let _ = writeln!(
            out,
            "  history: {runs} succeeded run(s) of this runbook; steps marked \"median of N past run(s)\" use it, the others their `expect`"
        );
    }
    if let Some(skipped) = estimate.history_unreadable {
        let _ = writeln!(
            out,
            "  history: {skipped} journal(s) in the state directory could not be read and were skipped"
        );
    }
    let _ = writeln!(
        out,
        "  critical path: {}",
        estimate.critical_path.join(" → ")
    );
    let restored = duration(estimate.service_restored_s);
    let at = &estimate.service_restored_at;
    match estimate.rto_s {
        Some(rto) if estimate.exceeds_rto => {
            let _ = writeln!(
                out,
                "  service restored (end of `{at}`): {restored}\n  WARNING: the estimate exceeds the RTO of {} by {}",
                duration(rto),
                duration(estimate.service_restored_s - rto)
            );
        }
        Some(rto) => {
            let _ = writeln!(
                out,
                "  service restored (end of `{at}`): {restored}, within the RTO of {}",
                duration(rto)
            );
        }
        None => {
            let _ = writeln!(
                out,
                "  service restored (end of `{at}`): {restored} (no `rto` declared)"
            );
        }
    }
    match estimate.worst_case_s {
        Some(worst) => {
            let over = match estimate.rto_s {
                Some(rto) if worst > rto => ", beyond the RTO",
                _ => "",
            };
            let _ = writeln!(
                out,
                "  worst case: {}{over} (every attempt timing out, longest retry delays)",
                duration(worst)
            );
        }
        None => {
            let _ = writeln!(
                out,
                "  worst case: unbounded: {}",
                estimate.unbounded.join("; ")
            );
        }
    }
    let lists = [
        (
            "human waits (a person's time, not counted unless they declare `expect` or a timeout)",
            &estimate.human_waits,
        ),
        (
            "no estimate (no `expect`, counted as 0)",
            &estimate.no_estimate,
        ),
        (
            "items known only at run time (`expect` counted for one item)",
            &estimate.items_unknown,
        ),
    ];
    for (label, ids) in lists.into_iter().filter(|(_, ids)| !ids.is_empty()) {
        let _ = writeln!(out, "  {label}: {}", ids.join(", "));
    }
}
