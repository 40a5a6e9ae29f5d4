//! The test's stand-in for the world: answers each attempt of a command or query from the
//! scenario's mocks, and remembers every attempt that had no mock so the test can fail naming
//! it.

use std::collections::HashMap;
use std::sync::Mutex;

use super::file::{Fail, Mock, Mocks, Reason};
use super::names::step_of;
use crate::exec::stand_in::StandIn;
use crate::render::Action;
use crate::retry::Failure;
use crate::steps::sql::Results;
use crate::steps::{Attempt, Failed};

/// The mocks of one scenario.
pub struct Mocked {
    mocks: HashMap<String, Mocks>,
    /// The mocks' keys in the order the test file gives them.
    order: Vec<String>,
    /// Attempts made so far, per unit.
    made: Mutex<HashMap<String, usize>>,
    /// Per mock key, the furthest attempt it answered.
    used: Mutex<HashMap<String, usize>>,
    /// What had no mock, as said to the author.
    missing: Mutex<Vec<String>>,
}

impl Mocked {
    pub fn new(mocks: Vec<(String, Mocks)>) -> Self {
        Self {
            order: mocks.iter().map(|(key, _)| key.clone()).collect(),
            mocks: mocks.into_iter().collect(),
            made: Mutex::default(),
            used: Mutex::default(),
            missing: Mutex::default(),
        }
    }

    pub fn missing(&self) -> Vec<String> {
        self.missing.lock().map(|m| m.clone()).unwrap_or_default()
    }

    /// The mocks the run never asked for, and lists of per-attempt mocks it did not use to
    /// their end, as said to the author: the run took another path than the one they were
    /// written for. `shared` mocks are left out: written for other scenarios too, they are
    /// expected to go unused in some.
    pub fn unused(&self, shared: &[String]) -> Vec<String> {
        let Ok(used) = self.used.lock() else {
            return Vec::new();
        };
        let mut never = Vec::new();
        let mut said = Vec::new();
        for key in self.order.iter().filter(|key| !shared.contains(key)) {
            match (used.get(key), self.mocks.get(key)) {
                (None, _) => never.push(format!("`{key}`")),
                (Some(&made), Some(Mocks::PerAttempt(list))) if made < list.len() => {
                    said.push(format!(
                        "`{key}` lists {} mocks, one per attempt; the run made {made} attempt{}",
                        list.len(),
                        if made == 1 { "" } else { "s" }
                    ));
                }
                _ => {}
            }
        }
        if !never.is_empty() {
            said.insert(0, format!("mocks the run never used: {}", never.join(", ")));
        }
        said
    }

    /// The mocks of `unit`: its own, or its loop step's for every instance.
    fn of(&self, unit: &str) -> Option<(&str, &Mocks)> {
        if let Some((key, mocks)) = self.mocks.get_key_value(unit) {
            return Some((key, mocks));
        }
        let (prefix, rest) = match unit.strip_prefix("rollback:") {
            Some(rest) => ("rollback:", rest),
            None => ("", unit),
        };
        let step = format!("{prefix}{}", step_of(rest));
        self.mocks
            .get_key_value(&step)
            .map(|(k, m)| (k.as_str(), m))
    }

    /// An attempt with no mock fails; the test names the first such attempt of each unit
    /// (retries of it would only repeat the same want).
    fn miss(&self, unit: &str, text: String) -> Attempt {
        if let Ok(mut missing) = self.missing.lock() {
            let said = format!("`{unit}`");
            if !missing.iter().any(|m| m.contains(&said)) {
                missing.push(text.clone());
            }
        }
        Attempt::failed(Failure::Error, text)
    }
}

impl StandIn for Mocked {
    fn answer(&self, unit: &str, action: &Action) -> Attempt {
        let attempt = {
            let Ok(mut made) = self.made.lock() else {
                return Attempt::failed(Failure::Error, "the mocks are unusable");
            };
            let n = made.entry(unit.to_owned()).or_insert(0);
            *n += 1;
            *n
        };
        if let (Some((key, _)), Ok(mut used)) = (self.of(unit), self.used.lock()) {
            let furthest = used.entry(key.to_owned()).or_insert(0);
            *furthest = (*furthest).max(attempt);
        }
        let mock = match self.of(unit) {
            Some((_, Mocks::Every(mock))) => mock,
            Some((key, Mocks::PerAttempt(list))) => match list.get(attempt - 1) {
                Some(mock) => mock,
                None => {
                    return self.miss(unit, format!(
                        "no mock for attempt {attempt} of `{unit}`: `mocks.\"{key}\"` lists {} (one per attempt); add one for each further attempt",
                        list.len()
                    ));
                }
            },
            None => {
                let what = match action {
                    Action::Sql { .. } => "a query result such as `{ rows: [] }`",
                    _ => "a result such as `{ exit_code: 0, stdout: \"...\" }`",
                };
                return self.miss(
                    unit,
                    format!("no mock for `{unit}`: add `mocks: {{ \"{unit}\": ... }}` with {what}"),
                );
            }
        };
        attempt_of(mock, action)
    }
}

/// The attempt a mock stands for, shaped as the real executor of `action` would shape it.
fn attempt_of(mock: &Mock, action: &Action) -> Attempt {
    let command = matches!(action, Action::Command { .. } | Action::Script { .. });
    let exit_code = mock.exit_code.or(command.then_some(0));
    let failure = match (&mock.fail, exit_code) {
        (Some(fail), _) => Some(failed(fail, exit_code)),
        (None, Some(code)) if code != 0 => Some(Failed::new(
            Failure::Exit { code: Some(code) },
            format!("exit code {code}"),
        )),
        _ => None,
    };
    Attempt {
        stdout: mock.stdout.clone(),
        stderr: mock.stderr.clone(),
        exit_code,
        failure,
        sql: (mock.rows.is_some() || mock.rows_affected.is_some()).then(|| Results {
            result_sets: mock.rows.iter().cloned().collect(),
            rows_affected: mock.rows_affected.unwrap_or(0),
        }),
        messages: mock.messages.clone(),
        outputs: mock.outputs.clone(),
    }
}

fn failed(fail: &Fail, exit_code: Option<i32>) -> Failed {
    let said = |default: String| fail.message.clone().unwrap_or(default);
    match fail.reason {
        Reason::Exit => {
            let code = fail
                .number
                .and_then(|n| i32::try_from(n).ok())
                .or(exit_code);
            Failed::new(
                Failure::Exit { code },
                said(code.map_or("killed by a signal".to_owned(), |c| {
                    format!("exit code {c}")
                })),
            )
        }
        Reason::Sql => {
            let number = fail.number.unwrap_or(0);
            // A recorded message is the server's whole message, number included.
            let message = match &fail.message {
                Some(m) if m.starts_with("SQL error") => m.clone(),
                Some(m) => format!("SQL error {number}: {m}"),
                None => format!("SQL error {number} (mocked)"),
            };
            Failed::new(Failure::Sql { number }, message)
        }
        Reason::Timeout => Failed::new(Failure::Timeout, said("timed out (mocked)".to_owned())),
        Reason::Connect => {
            Failed::new(Failure::Connect, said("cannot connect (mocked)".to_owned()))
        }
        Reason::Until => Failed::new(Failure::Until, said("until is false (mocked)".to_owned())),
        Reason::Error => Failed::new(Failure::Error, said("failed (mocked)".to_owned())),
    }
}
