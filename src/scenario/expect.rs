//! What a scenario's run did, read from its events, and how it differs from what the test
//! expects. `ran` is compared as a partial order: the same steps, and every pair whose order
//! the graph fixes (one needs the other, or a `finally` step after the run's steps) in that
//! order; steps the graph leaves free may complete in any order.

use std::collections::{BTreeSet, HashMap};

use super::excerpt;
use super::file::Expect;
use crate::exec::event::{Event, EventKind, Status};
use crate::model::Runbook;

/// What the run did, in the terms of the expectations.
#[derive(Debug, Default)]
pub struct Actual {
    /// Steps (not instances) that completed, in completion order.
    pub ran: Vec<String>,
    pub skipped: Vec<String>,
    /// Attempts per step and instance.
    pub attempts: HashMap<String, u32>,
    /// Rollback actions that succeeded, in order.
    pub rolled_back: Vec<String>,
    /// Left for a person: not rolled back past a point of no return (the irreversible step
    /// and the steps before it), or whose rollback failed.
    pub needs_person: Vec<String>,
}

impl Actual {
    pub fn of(runbook: &Runbook, events: &[Event]) -> Self {
        let mut actual = Actual::default();
        let is_step = |id: &str| {
            runbook
                .steps
                .iter()
                .chain(&runbook.finally)
                .any(|s| s.id.as_str() == id)
        };
        let push = |list: &mut Vec<String>, id: &str| {
            if !list.iter().any(|x| x == id) {
                list.push(id.to_owned());
            }
        };
        for event in events {
            match &event.kind {
                EventKind::StepFinished {
                    step,
                    status,
                    attempts,
                    ..
                } => {
                    actual.attempts.insert(step.clone(), *attempts);
                    match status {
                        Status::Succeeded if is_step(step) => push(&mut actual.ran, step),
                        Status::Skipped => push(&mut actual.skipped, step),
                        _ => {}
                    }
                }
                EventKind::StepSkipped { step, .. } => push(&mut actual.skipped, step),
                EventKind::RollbackStepFinished { step, status, .. } => {
                    if *status == Status::Succeeded {
                        actual.rolled_back.push(step.clone());
                    } else {
                        push(&mut actual.needs_person, step);
                    }
                }
                // Kept past a point of no return: a forward fix is needed. A step that
                // declares no rollback has nothing for anyone to undo.
                EventKind::NotRolledBack { step, reason }
                    if *reason != crate::rollback::Reason::NoRollback.to_string() =>
                {
                    push(&mut actual.needs_person, step)
                }
                _ => {}
            }
        }
        actual
    }
}

/// Whether the graph fixes that `first` completes before `then`.
struct Order<'a> {
    needs: HashMap<&'a str, Vec<&'a str>>,
    finally: BTreeSet<&'a str>,
}

impl<'a> Order<'a> {
    fn new(runbook: &'a Runbook) -> Self {
        Self {
            needs: runbook
                .steps
                .iter()
                .chain(&runbook.finally)
                .map(|s| (s.id.as_str(), s.needs.iter().map(|n| n.as_str()).collect()))
                .collect(),
            finally: runbook.finally.iter().map(|s| s.id.as_str()).collect(),
        }
    }

    /// Why `first` must complete before `then`, if the graph says so.
    fn before(&self, first: &str, then: &str) -> Option<String> {
        if !self.finally.contains(first) && self.finally.contains(then) {
            return Some(format!("`{then}` is a finally step"));
        }
        let mut seen = BTreeSet::new();
        let mut stack = vec![then];
        while let Some(id) = stack.pop() {
            for &need in self.needs.get(id).into_iter().flatten() {
                if need == first {
                    return Some(if id == then {
                        format!("`{then}` needs `{first}`")
                    } else {
                        format!("`{then}` depends on `{first}` through `{id}`")
                    });
                }
                if seen.insert(need) {
                    stack.push(need);
                }
            }
        }
        None
    }
}

fn join(ids: &[String]) -> String {
    if ids.is_empty() {
        "(none)".to_owned()
    } else {
        ids.join(", ")
    }
}

/// Every way the run differs from what the scenario expects, each said in full.
pub fn compare(
    runbook: &Runbook,
    expect: &Expect,
    actual: &Actual,
    exit_code: u8,
    output: &str,
) -> Vec<String> {
    let mut failures = Vec::new();
    let names = |ids: &[crate::model::Spanned<String>]| -> Vec<String> {
        ids.iter().map(|i| i.value.clone()).collect()
    };
    if let Some(ran) = &expect.ran {
        let expected = names(ran);
        if let Some(why) = ran_differs(runbook, &expected, &actual.ran) {
            failures.push(format!(
                "ran: {why}\n  expected: {}\n  actual:   {}",
                join(&expected),
                join(&actual.ran)
            ));
        }
    }
    for (what, expected, got) in [
        ("skipped", &expect.skipped, &actual.skipped),
        ("needs_person", &expect.needs_person, &actual.needs_person),
    ] {
        if let Some(expected) = expected {
            let expected = names(expected);
            let (e, g): (BTreeSet<_>, BTreeSet<_>) =
                (expected.iter().collect(), got.iter().collect());
            if e != g {
                failures.push(format!(
                    "{what}: expected {}, actual {}",
                    join(&expected),
                    join(got)
                ));
            }
        }
    }
    if let Some(expected) = &expect.rolled_back {
        let expected = names(expected);
        if expected != actual.rolled_back {
            failures.push(format!(
                "rolled_back (in order): expected {}, actual {}",
                join(&expected),
                join(&actual.rolled_back)
            ));
        }
    }
    for (id, expected) in &expect.attempts {
        let got = actual.attempts.get(id.as_str()).copied().unwrap_or(0);
        if got != *expected {
            failures.push(format!(
                "attempts of `{}`: expected {expected}, actual {got}",
                id.value
            ));
        }
    }
    if let Some(expected) = expect.exit_code
        && expected != exit_code
    {
        failures.push(format!(
            "exit_code: expected {expected}, actual {exit_code}"
        ));
    }
    // A short output is shown once, with the first text it lacks; a long one by the lines
    // nearest each text.
    let mut shown = false;
    for text in &expect.output_contains {
        if !output.contains(text.as_str()) {
            let searched = if !excerpt::is_short(output) {
                excerpt::nearest(output, text)
            } else if shown {
                " (the output is shown above)".to_owned()
            } else {
                shown = true;
                format!("; the output searched:{}", excerpt::whole(output))
            };
            failures.push(format!(
                "output_contains: the output has no `{text}`{searched}"
            ));
        }
    }
    for text in &expect.output_lacks {
        if output.contains(text.as_str()) {
            failures.push(format!(
                "output_lacks: the output has `{text}`:{}",
                excerpt::occurrences(output, text)
            ));
        }
    }
    failures
}

/// Why the completed steps differ from the expected ones, if they do.
fn ran_differs(runbook: &Runbook, expected: &[String], actual: &[String]) -> Option<String> {
    let missing: Vec<String> = expected
        .iter()
        .filter(|e| !actual.contains(e))
        .cloned()
        .collect();
    let extra: Vec<String> = actual
        .iter()
        .filter(|a| !expected.contains(a))
        .cloned()
        .collect();
    if !missing.is_empty() || !extra.is_empty() {
        let mut parts = Vec::new();
        if !missing.is_empty() {
            parts.push(format!("expected but did not complete: {}", join(&missing)));
        }
        if !extra.is_empty() {
            parts.push(format!("completed but not expected: {}", join(&extra)));
        }
        return Some(parts.join("; "));
    }
    let order = Order::new(runbook);
    let position = |id: &String| actual.iter().position(|a| a == id);
    for (i, first) in expected.iter().enumerate() {
        for then in &expected[i + 1..] {
            // Listed `first` then `then`, but the run completed `then` first, and the graph
            // fixes that order.
            if position(then) < position(first)
                && let Some(why) = order.before(then, first)
            {
                return Some(format!(
                    "`{first}` is listed before `{then}`, but `{then}` completes first ({why})"
                ));
            }
        }
    }
    None
}
