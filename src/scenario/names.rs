//! Checks every name a test file uses against its runbook: mocked units, expected steps,
//! approvals and params. A typo is an error at its line with a suggestion, never a mock that
//! silently answers nothing or an expectation that can never hold.

use super::file::{Approvals, TestFile, invalid};
use crate::diagnostic::{Problem, list, suggestion};
use crate::model::{RollbackKind, Runbook, Spanned, Step, StepKind};

/// The step a unit names: `STEP`, or `STEP[KEY]` for an instance of a `for_each` step.
pub fn step_of(unit: &str) -> &str {
    match unit.split_once('[') {
        Some((step, _)) if unit.ends_with(']') => step,
        _ => unit,
    }
}

fn all_steps(runbook: &Runbook) -> impl Iterator<Item = &Step> + Clone {
    runbook.steps.iter().chain(&runbook.finally)
}

/// The step a unit names, or the problem of an unknown one.
fn step<'a>(runbook: &'a Runbook, unit: &Spanned<String>, what: &str) -> Result<&'a Step, Problem> {
    let id = step_of(unit);
    let Some(step) = all_steps(runbook).find(|s| s.id.as_str() == id) else {
        let ids = all_steps(runbook).map(|s| s.id.as_str());
        return Err(invalid(
            unit.span,
            &format!("{what}: no step `{id}` in runbook `{}`", runbook.name.value),
            "unknown step",
            &suggestion(id, ids.clone(), || format!("its steps are {}", list(ids))),
        ));
    };
    if id != unit.as_str() && step.for_each.is_none() {
        return Err(invalid(
            unit.span,
            &format!(
                "{what}: `{id}` has no `for_each`, so it has no instance `{}`",
                unit.value
            ),
            "not a loop",
            &format!("name the step itself: `{id}`"),
        ));
    }
    Ok(step)
}

pub fn check(file: &TestFile, runbook: &Runbook, problems: &mut Vec<Problem>) {
    for scenario in &file.scenarios {
        let mut push = |r: Result<&Step, Problem>| {
            if let Err(p) = r {
                problems.push(p);
            }
        };
        for (unit, _) in &scenario.mocks {
            let (target, rollback) = match unit.strip_prefix("rollback:") {
                Some(rest) => (Spanned::new(rest.to_owned(), unit.span), true),
                None => (unit.clone(), false),
            };
            push(step(runbook, &target, "mocks").and_then(|s| mockable(s, unit, rollback)));
        }
        let expect = &scenario.expect;
        for (what, ids) in [
            ("expect.ran", &expect.ran),
            ("expect.skipped", &expect.skipped),
            ("expect.rolled_back", &expect.rolled_back),
            ("expect.needs_person", &expect.needs_person),
        ] {
            for id in ids.iter().flatten() {
                push(step(runbook, id, what));
            }
        }
        for (id, _) in &expect.attempts {
            push(step(runbook, id, "expect.attempts"));
        }
        if let Approvals::Given(ids) = &scenario.approvals {
            for id in ids {
                push(step(runbook, id, "approvals").and_then(|s| {
                    if s.is_approval() || s.rollback.as_ref().is_some_and(|r| r.is_approval()) {
                        Ok(s)
                    } else {
                        Err(invalid(
                            id.span,
                            &format!("approvals: `{}` is not an approval step", id.value),
                            "not an approval",
                            "list the approval steps to approve; the others are refused",
                        ))
                    }
                }));
            }
        }
        for (name, _) in &scenario.params {
            if !runbook.params.contains_key(name.as_str())
                && !runbook.secrets.contains_key(name.as_str())
            {
                let names = runbook.params.keys().chain(runbook.secrets.keys());
                let names = names.map(String::as_str);
                problems.push(invalid(
                    name.span,
                    &format!(
                        "params: `{}` is neither a param nor a secret of the runbook",
                        name.value
                    ),
                    "unknown param",
                    &suggestion(name, names.clone(), || {
                        format!("its params and secrets are {}", list(names))
                    }),
                ));
            }
        }
        mocked_fields(scenario, runbook, problems);
    }
}

/// Only actions that would touch the world take a mock: commands and queries.
fn mockable<'a>(
    step: &'a Step,
    unit: &Spanned<String>,
    rollback: bool,
) -> Result<&'a Step, Problem> {
    let why = if rollback {
        match &step.rollback {
            None => Some("it has no `rollback`".to_owned()),
            Some(r) if r.is_approval() => {
                Some("its rollback is an approval, given with `approvals`".to_owned())
            }
            Some(_) => None,
        }
    } else {
        match &step.kind {
            StepKind::Assert(_) => {
                Some("an `assert` is evaluated on the mocked results of earlier steps".to_owned())
            }
            StepKind::Approval(_) => Some("an approval is given with `approvals`".to_owned()),
            StepKind::Wait(_) => {
                Some("a wait waits on the test's virtual clock, taking no time".to_owned())
            }
            _ => None,
        }
    };
    match why {
        None => Ok(step),
        Some(why) => Err(invalid(
            unit.span,
            &format!("mocks: `{}` takes no mock: {why}", unit.value),
            "nothing to mock",
            "mock the commands and queries the run would execute",
        )),
    }
}

/// The step a mocked unit belongs to, and whether the mock answers its rollback.
fn mocked_step<'a>(runbook: &'a Runbook, unit: &str) -> Option<(&'a Step, bool)> {
    let (target, rollback) = match unit.strip_prefix("rollback:") {
        Some(rest) => (rest, true),
        None => (unit, false),
    };
    all_steps(runbook)
        .find(|s| s.id.as_str() == step_of(target))
        .map(|step| (step, rollback))
}

/// What a mock gives must be what its action returns: outputs its step declares (a rollback
/// has none), and `messages` or `rows_affected` only for a query (a command given them would
/// hand its templates what no real command returns).
fn mocked_fields(scenario: &super::file::Scenario, runbook: &Runbook, problems: &mut Vec<Problem>) {
    for (unit, mocks) in &scenario.mocks {
        let Some((step, rollback)) = mocked_step(runbook, unit) else {
            continue;
        };
        let given = mocks.all().iter().flat_map(|m| m.outputs.keys());
        for name in given {
            if rollback {
                let message = format!(
                    "mocks: `{}` gives output `{name}`, but a rollback action has no outputs",
                    unit.value
                );
                problems.push(invalid(
                    unit.span,
                    &message,
                    "no outputs",
                    "give the rollback's result: `exit_code`, `stdout`, `stderr`, or `rows` for a query",
                ));
            } else if !step.outputs.contains_key(name) {
                let declared = step.outputs.keys().map(String::as_str);
                problems.push(invalid(
                    unit.span,
                    &format!(
                        "mocks: `{}` gives output `{name}`, which `{}` does not declare",
                        unit.value, step.id.value
                    ),
                    "undeclared output",
                    &suggestion(name, declared.clone(), || {
                        format!("its outputs are {}", list(declared))
                    }),
                ));
            }
        }
        let query = if rollback {
            step.rollback
                .as_ref()
                .is_some_and(|r| matches!(r.kind, RollbackKind::Sql(_)))
        } else {
            matches!(step.kind, StepKind::Sql(_))
        };
        let answered = mocks
            .all()
            .iter()
            .any(|m| !m.messages.is_empty() || m.rows_affected.is_some());
        if answered && !query {
            problems.push(invalid(
                unit.span,
                &format!(
                    "mocks: `{}` gives `messages` or `rows_affected`, which only a query returns",
                    unit.value
                ),
                "not a query",
                "a command's mock gives `exit_code`, `stdout`, `stderr` and `outputs`",
            ));
        }
    }
}
