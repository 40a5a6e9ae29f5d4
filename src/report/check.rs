//! The report of `runbook check`, one function per format: human (one line per step, each
//! failure located as `file:line:col`), json, markdown and junit.

use std::fmt::Write;

use quick_junit::{NonSuccessKind, Report as Junit, TestCase, TestCaseStatus, TestSuite};

use crate::check::{CheckStatus, Report, StepCheck};

/// The width of the status column: the longest status name.
const STATUS_WIDTH: usize = 13;

fn located(report: &Report, step: &StepCheck) -> String {
    format!(
        "{}:{}:{}",
        report.path, step.location.line, step.location.column
    )
}

fn summary(report: &Report) -> String {
    let counts: Vec<String> = report
        .counts()
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .map(|(status, n)| format!("{n} {}", status.name()))
        .collect();
    let verdict = if report.failed() {
        "check failed"
    } else {
        "check passed"
    };
    format!("{verdict}: {}", counts.join(", "))
}

/// One line per step; a failure's reason follows on indented lines, after its location.
pub fn human(report: &Report) -> String {
    let mut out = format!(
        "check {} ({}): only probes and rehearse actions ran\n",
        report.runbook, report.path
    );
    for step in &report.steps {
        let name = if step.finally {
            format!("{} (finally)", step.id)
        } else {
            step.id.clone()
        };
        let _ = write!(out, "  {:<STATUS_WIDTH$}  {name}", step.status.name());
        match (&step.reason, step.status) {
            (Some(reason), CheckStatus::Failed) => {
                let _ = writeln!(out, "  at {}", located(report, step));
                for line in reason.lines() {
                    let _ = writeln!(out, "      {line}");
                }
            }
            (Some(reason), _) => {
                let first = reason.lines().next().unwrap_or_default();
                let _ = writeln!(out, "  ({first})");
            }
            (None, _) => out.push('\n'),
        }
    }
    let _ = writeln!(out, "{}", summary(report));
    out
}

pub fn json(report: &Report) -> String {
    let counts: serde_json::Map<String, serde_json::Value> = report
        .counts()
        .into_iter()
        .map(|(status, n)| (status.name().to_owned(), n.into()))
        .collect();
    let value = serde_json::json!({
        "runbook": report.runbook,
        "path": report.path,
        "steps": report.steps,
        "summary": counts,
        "exit_code": report.exit_code(),
    });
    let mut text = serde_json::to_string_pretty(&value).unwrap_or_default();
    text.push('\n');
    text
}

pub fn markdown(report: &Report) -> String {
    let mut out = format!("# Check: `{}`\n\n", report.runbook);
    let _ = writeln!(out, "| step | status | where | reason |");
    let _ = writeln!(out, "|---|---|---|---|");
    for step in &report.steps {
        let status = match step.status {
            CheckStatus::Failed => "**failed**".to_owned(),
            other => other.name().to_owned(),
        };
        let reason = step
            .reason
            .as_deref()
            .unwrap_or("")
            .lines()
            .collect::<Vec<_>>()
            .join("<br>")
            .replace('|', "\\|");
        let _ = writeln!(
            out,
            "| `{}` | {status} | {}:{} | {reason} |",
            step.id, step.location.line, step.location.column
        );
    }
    let _ = writeln!(out, "\n{}", summary(report));
    out
}

/// One test case per step: failed is a failure; passed, skipped and the steps check could
/// not judge are successes or skips, with the reason.
pub fn junit(report: &Report) -> String {
    let mut suite = TestSuite::new(format!("check {}", report.runbook));
    for step in &report.steps {
        let status = match step.status {
            CheckStatus::Checked | CheckStatus::Rehearsed => TestCaseStatus::success(),
            CheckStatus::Failed => {
                let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
                status.set_message(format!(
                    "{}: {}",
                    located(report, step),
                    step.reason.as_deref().unwrap_or("failed")
                ));
                status
            }
            other => {
                let mut status = TestCaseStatus::skipped();
                let reason = step.reason.as_deref().unwrap_or_default();
                status.set_message(format!("{}: {reason}", other.name()));
                status
            }
        };
        let mut case = TestCase::new(step.id.as_str(), status);
        case.set_classname(report.runbook.as_str());
        suite.add_test_case(case);
    }
    let mut junit = Junit::new("runbook check");
    junit.add_test_suite(suite);
    let mut text = junit.to_string().unwrap_or_default();
    if !text.ends_with('\n') {
        text.push('\n');
    }
    text
}
