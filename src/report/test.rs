//! `runbook test` results: per scenario pass or fail with every reason, then a count (human),
//! or JUnit XML for CI (one suite per test file, one case per scenario). Invalid test files are
//! shown as the validator shows runbooks, located at their line and column.

use std::fmt::Write as _;
use std::sync::{Arc, Mutex};

use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};

use super::progress::Progress;
use crate::exec::Summary;
use crate::exec::event::{Event, EventKind, Sink};
use crate::mask::Masker;
use crate::scenario::{FileOutcome, FileResult};

/// What a run under test shows: its events (for the expectations), and the report it would
/// print, kept as text (`output_contains`), with the whole rendered text of every action
/// and rollback action under its line (a script's or query's later lines too).
pub struct Transcript {
    events: Mutex<Vec<Event>>,
    text: Arc<Mutex<String>>,
    screen: Progress,
}

impl Transcript {
    /// `masker` masks the summary's free text; events arrive masked.
    pub fn new(masker: Masker) -> Self {
        let text = Arc::new(Mutex::new(String::new()));
        Self {
            events: Mutex::default(),
            screen: Progress::captured(masker, text.clone()),
            text,
        }
    }

    pub fn summary(&self, run_id: &str, summary: &Summary) {
        self.screen.summary(run_id, summary);
    }

    pub fn events(&self) -> Vec<Event> {
        self.events.lock().map(|e| e.clone()).unwrap_or_default()
    }

    pub fn text(&self) -> String {
        self.text.lock().map(|t| t.clone()).unwrap_or_default()
    }
}

impl Sink for Transcript {
    fn emit(&self, event: &Event) {
        if let Ok(mut events) = self.events.lock() {
            events.push(event.clone());
        }
        self.screen.emit(event);
        if let EventKind::StepStarted {
            detail: Some(action),
            ..
        }
        | EventKind::RollbackStepStarted {
            detail: Some(action),
            ..
        } = &event.kind
        {
            let mut lines = String::new();
            super::action::lines(action, "      ", &mut lines);
            if let Ok(mut text) = self.text.lock() {
                text.push_str(&super::control_chars::escape(&lines));
            }
        }
    }

    fn broken(&self) -> Option<String> {
        None
    }
}

/// Scenarios that passed and failed, and files that were invalid.
pub fn totals(results: &[FileResult]) -> (usize, usize, usize) {
    let (mut passed, mut failed, mut invalid) = (0, 0, 0);
    for result in results {
        match &result.outcome {
            FileOutcome::Invalid(_) => invalid += 1,
            FileOutcome::Ran(scenarios) => {
                for s in scenarios {
                    if s.failures.is_empty() {
                        passed += 1;
                    } else {
                        failed += 1;
                    }
                }
            }
        }
    }
    (passed, failed, invalid)
}

/// Warnings over every scenario.
fn warnings(results: &[FileResult]) -> usize {
    results
        .iter()
        .map(|result| match &result.outcome {
            FileOutcome::Invalid(_) => 0,
            FileOutcome::Ran(scenarios) => scenarios.iter().map(|s| s.warnings.len()).sum(),
        })
        .sum()
}

fn plural(n: usize, one: &str) -> String {
    format!("{n} {one}{}", if n == 1 { "" } else { "s" })
}

pub fn human(results: &[FileResult], color: bool) -> String {
    let mut text = String::new();
    for result in results {
        match &result.outcome {
            FileOutcome::Invalid(reports) => {
                let _ = writeln!(text, "INVALID {}", result.path);
                text.push_str(&super::human(reports, color));
            }
            FileOutcome::Ran(scenarios) => {
                for s in scenarios {
                    let mark = if s.failures.is_empty() {
                        "PASS"
                    } else {
                        "FAIL"
                    };
                    let _ = writeln!(text, "{mark} {} › {}", result.path, s.name);
                    for failure in &s.failures {
                        let mut lines = failure.lines();
                        if let Some(first) = lines.next() {
                            let _ = writeln!(text, "  - {first}");
                        }
                        for line in lines {
                            let _ = writeln!(text, "    {line}");
                        }
                    }
                    for warning in &s.warnings {
                        let _ = writeln!(text, "  warning: {warning}");
                    }
                }
            }
        }
    }
    let (passed, failed, invalid) = totals(results);
    let _ = write!(
        text,
        "\n{}: {passed} passed, {failed} failed",
        plural(passed + failed, "scenario")
    );
    if invalid > 0 {
        let _ = write!(text, "; {}", plural(invalid, "invalid test file"));
    }
    let warned = warnings(results);
    if warned > 0 {
        let _ = write!(text, "; {}", plural(warned, "warning"));
    }
    text.push('\n');
    text
}

pub fn junit(results: &[FileResult]) -> String {
    let mut report = Report::new("runbook test");
    for result in results {
        let mut suite = TestSuite::new(result.path.as_str());
        match &result.outcome {
            FileOutcome::Invalid(reports) => {
                let mut status = TestCaseStatus::non_success(NonSuccessKind::Error);
                status.set_message("invalid test file");
                status.set_description(super::human(reports, false));
                let mut case = TestCase::new("(test file)", status);
                case.set_classname(result.path.as_str());
                suite.add_test_case(case);
            }
            FileOutcome::Ran(scenarios) => {
                for s in scenarios {
                    let status = if s.failures.is_empty() {
                        TestCaseStatus::success()
                    } else {
                        let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
                        status.set_message(s.failures[0].lines().next().unwrap_or("failed"));
                        status.set_description(s.failures.join("\n"));
                        status
                    };
                    let mut case = TestCase::new(s.name.as_str(), status);
                    case.set_classname(result.path.as_str());
                    case.set_time(s.duration);
                    if !s.warnings.is_empty() {
                        let said: Vec<String> =
                            s.warnings.iter().map(|w| format!("warning: {w}")).collect();
                        case.set_system_out(said.join("\n"));
                    }
                    suite.add_test_case(case);
                }
            }
        }
        report.add_test_suite(suite);
    }
    report
        .to_string()
        .unwrap_or_else(|e| format!("<!-- cannot write the JUnit report: {e} -->\n"))
}
