//! `runbook test`: runbook tests with mocked results. A test file (`*.test.yaml`) names a
//! runbook and scenarios; each scenario runs the runbook through the real engine, on a virtual
//! clock, with every command and query answered by its mocks ([`mock`]), then compares what happened with
//! what it expects ([`expect`]). `--record` ([`record`]) writes a test file from a real run.
//!
//! Stages: find the files, read each ([`file`]), check the names it uses against its runbook
//! ([`names`]), run each scenario ([`run`]), compare.

pub mod excerpt;
pub mod expect;
pub mod file;
pub mod mock;
pub mod names;
pub mod record;
pub mod run;

use std::path::Path;
use std::time::{Duration, Instant};

use crate::report::FileReport;

/// How one test file went.
pub struct FileResult {
    pub path: String,
    pub outcome: FileOutcome,
}

pub enum FileOutcome {
    /// The test file, or the runbook it names, has errors: nothing ran.
    Invalid(Vec<FileReport>),
    Ran(Vec<ScenarioResult>),
}

/// How one scenario went: no failures is a pass. Warnings never fail it.
pub struct ScenarioResult {
    pub name: String,
    pub failures: Vec<String>,
    /// Mocks the run did not use.
    pub warnings: Vec<String>,
    pub duration: Duration,
}

/// Reads and runs one test file.
pub fn run_file(path: &Path, concurrency: usize) -> FileResult {
    let display = path.display().to_string();
    let invalid = |reports| FileResult {
        path: display.clone(),
        outcome: FileOutcome::Invalid(reports),
    };
    let source = match crate::load::read(path) {
        Ok(source) => source,
        Err(failure) => {
            let (problem, source) = *failure;
            return invalid(vec![FileReport {
                path: display.clone(),
                source,
                problems: vec![problem],
                included_from: Vec::new(),
                included: Vec::new(),
            }]);
        }
    };
    let mut problems = Vec::new();
    let report = |problems| FileReport {
        path: display.clone(),
        source: source.clone(),
        problems,
        included_from: Vec::new(),
        included: Vec::new(),
    };
    let Some(test) = file::parse(path, &source, &mut problems) else {
        return invalid(vec![report(problems)]);
    };
    if !test.runbook.is_file() {
        let message = format!(
            "the runbook `{}` cannot be read",
            test.runbook.value.display()
        );
        problems.push(file::invalid(
            test.runbook.span,
            &message,
            "no such file",
            "`runbook:` is a path relative to the test file",
        ));
        return invalid(vec![report(problems)]);
    }
    let (runbook_report, checked) = crate::session::check(&test.runbook);
    let (runbook, dag) = match checked {
        Some(checked) if runbook_report.errors() == 0 => checked,
        _ => return invalid(vec![runbook_report]),
    };
    names::check(&test, &runbook, &mut problems);
    if !problems.is_empty() {
        return invalid(vec![report(problems)]);
    }
    let scenarios = test
        .scenarios
        .iter()
        .map(|scenario| {
            let started = Instant::now();
            let (failures, warnings) = match run::run(&runbook, &dag, scenario, concurrency) {
                Ok(ran) => {
                    let actual = expect::Actual::of(&runbook, &ran.events);
                    // Without its mocks the run is not the one the scenario describes: its
                    // expectations say nothing until the mocks are there, and what it left
                    // unused neither.
                    if ran.missing.is_empty() {
                        let failures = expect::compare(
                            &runbook,
                            &scenario.expect,
                            &actual,
                            ran.exit_code,
                            &ran.output,
                        );
                        (failures, ran.unused)
                    } else {
                        (ran.missing, Vec::new())
                    }
                }
                Err(e) => (vec![format!("the scenario could not run: {e}")], Vec::new()),
            };
            ScenarioResult {
                name: scenario.name.value.clone(),
                failures,
                warnings,
                duration: started.elapsed(),
            }
        })
        .collect();
    FileResult {
        path: display,
        outcome: FileOutcome::Ran(scenarios),
    }
}
