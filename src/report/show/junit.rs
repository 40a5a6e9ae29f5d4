//! `show --format junit`: one test case per step of the runbook (steps that never ran are
//! skipped cases), for CI systems that collect JUnit XML. Written with quick-junit.

use std::time::Duration;

use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};

use crate::exec::event::Status;
use crate::record::{RunRecord, StepRecord, StepState};

fn case(runbook: &str, id: &str, step: Option<&StepRecord>) -> TestCase {
    let status = match step.map(|s| s.state) {
        None => {
            let mut status = TestCaseStatus::skipped();
            status.set_message("not run");
            status
        }
        Some(StepState::Started) => {
            let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
            status.set_message("in doubt: started, never finished");
            status
        }
        Some(StepState::Ended(Status::Failed)) => {
            let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
            let s = step.map_or_else(Default::default, |s| {
                let message = s
                    .decided
                    .as_ref()
                    .map(ToString::to_string)
                    .or(s.message.clone());
                (message.unwrap_or_default(), s.stderr.clone())
            });
            status.set_message(if s.0.is_empty() {
                "failed".to_owned()
            } else {
                s.0
            });
            if !s.1.is_empty() {
                status.set_description(s.1);
            }
            status
        }
        Some(StepState::Ended(Status::Skipped)) => {
            let mut status = TestCaseStatus::skipped();
            status.set_message(step.and_then(|s| s.message.clone()).unwrap_or_default());
            status
        }
        Some(StepState::Ended(Status::Cancelled)) => {
            let mut status = TestCaseStatus::non_success(NonSuccessKind::Error);
            status.set_message("cancelled");
            status
        }
        Some(StepState::Ended(Status::Succeeded)) => TestCaseStatus::success(),
    };
    let mut case = TestCase::new(id, status);
    case.set_classname(runbook);
    if let Some(step) = step {
        case.set_time(Duration::from_millis(step.duration_ms));
        // A step done by decision passes, and says why it passes without a recorded end.
        let system_out = match &step.decided {
            Some(d) => format!("{d}\n{}", step.stdout),
            None => step.stdout.clone(),
        };
        if !system_out.is_empty() {
            case.set_system_out(system_out);
        }
    }
    case
}

pub fn junit(r: &RunRecord) -> String {
    // Every step of the runbook in declaration order; journals that do not list them name
    // the steps they saw.
    let ids: Vec<&str> = match r.context.as_ref().filter(|c| !c.step_ids.is_empty()) {
        Some(c) => c.step_ids.iter().map(String::as_str).collect(),
        None => r.steps.iter().map(|s| s.id.as_str()).collect(),
    };
    let mut suite = TestSuite::new(r.runbook.as_str());
    for id in ids {
        suite.add_test_case(case(&r.runbook, id, r.get(id)));
    }
    // The run's wall time: steps in parallel overlap, and waits between them count.
    let wall = r.finished.as_ref().map_or_else(
        || Duration::from_millis(r.steps.iter().map(|s| s.duration_ms).sum()),
        |f| Duration::from_millis(f.duration_ms),
    );
    suite.set_time(wall);
    let started = chrono::DateTime::parse_from_rfc3339(&r.started_at).ok();
    if let Some(at) = started {
        suite.set_timestamp(at);
    }
    let mut report = Report::new("runbook");
    report.set_time(wall);
    if let Some(at) = started {
        report.set_timestamp(at);
    }
    report.add_test_suite(suite);
    let mut text = report.to_string().unwrap_or_default();
    if !text.ends_with('\n') {
        text.push('\n');
    }
    text
}
