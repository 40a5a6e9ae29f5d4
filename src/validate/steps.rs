//! The shape of each step: its `run` and rollback actions, connections, retry policies,
//! secrets, and the lints that concern a single step. (That a step has exactly one kind is
//! checked when the model is built.)

use crate::diagnostic::{Problem, list, suggestion};
use crate::model::{RehearseKind, Retry, Rollback, RollbackKind, Run, Runbook, Sql, StepKind};

/// The loop keys of a step: `as`, `concurrency` and `max_failures` belong to a `for_each`, and
/// the item variable must not hide a name templates read.
fn check_loop(step: &crate::model::Step, problems: &mut Vec<Problem>) {
    if step.for_each.is_none() {
        let keys = [
            ("as", step.item_as.as_ref().map(|a| a.span)),
            ("concurrency", step.concurrency.as_ref().map(|c| c.span)),
            ("max_failures", step.max_failures.as_ref().map(|m| m.span)),
        ];
        for (key, span) in keys {
            if let Some(span) = span {
                problems.push(Problem::LoopKeyWithoutForEach {
                    id: step.id.value.clone(),
                    key,
                    span: span.into(),
                });
            }
        }
        return;
    }
    if let Some(name) = &step.item_as {
        let valid = name
            .value
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && name
                .value
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_');
        let taken = crate::validate::references::ROOTS.contains(&name.as_str());
        if !valid || taken {
            problems.push(Problem::BadItemName {
                name: name.value.clone(),
                span: name.span.into(),
            });
        }
    }
}

pub fn check(runbook: &Runbook, problems: &mut Vec<Problem>) {
    for secret in runbook.secrets.values() {
        if secret.source().is_none() {
            problems.push(Problem::InvalidSecret {
                name: secret.name.value.clone(),
                span: secret.span.into(),
            });
        }
    }
    if let Some(retry) = &runbook.defaults.retry {
        check_retry(retry, problems);
    }
    for hook in &runbook.notify {
        check_run(&hook.run, hook.target.is_some(), problems);
        check_env(&hook.env, problems);
    }
    let default_attempts = runbook
        .defaults
        .retry
        .as_ref()
        .and_then(|r| r.attempts.as_ref())
        .map_or(1, |a| a.value);

    for step in runbook.steps.iter().chain(&runbook.finally) {
        match &step.kind {
            StepKind::Run(run) => check_run(run, step.target.is_some(), problems),
            StepKind::Sql(sql) => check_connection(runbook, sql, problems),
            StepKind::Wait(_) | StepKind::Assert(_) | StepKind::Approval(_) => {}
        }
        match step.rehearse.as_ref().map(|r| &r.kind) {
            Some(RehearseKind::Run(run)) => check_run(
                run,
                step.rehearse.as_ref().is_some_and(|r| r.target.is_some()),
                problems,
            ),
            Some(RehearseKind::Sql(sql)) => check_connection(runbook, sql, problems),
            None => {}
        }
        if let Some(retry) = &step.retry {
            check_retry(retry, problems);
        }
        check_env(&step.env, problems);
        check_loop(step, problems);
        if let Some(action) = &step.rollback {
            check_env(&action.env, problems);
            check_action(runbook, action, problems);
            if step.is_irreversible() {
                problems.push(Problem::IrreversibleRollback {
                    id: step.id.value.clone(),
                    span: action.span.into(),
                });
            }
        }
        if let Some(until) = &step.until {
            let attempts = step
                .retry
                .as_ref()
                .and_then(|r| r.attempts.as_ref())
                .map_or(default_attempts, |a| a.value);
            if attempts == 1 {
                problems.push(Problem::UntilSingleAttempt {
                    id: step.id.value.clone(),
                    span: until.span.into(),
                });
            }
        }
    }
}

fn check_action(runbook: &Runbook, action: &Rollback, problems: &mut Vec<Problem>) {
    match &action.kind {
        RollbackKind::Run(run) => check_run(run, action.target.is_some(), problems),
        RollbackKind::Sql(sql) => check_connection(runbook, sql, problems),
        RollbackKind::Approval(_) => {}
    }
    if let Some(retry) = &action.retry {
        check_retry(retry, problems);
    }
}

/// Environment variable names the operating system can take.
fn check_env(
    env: &indexmap::IndexMap<String, crate::model::Spanned<String>>,
    problems: &mut Vec<Problem>,
) {
    for (name, value) in env {
        if name.is_empty() || name.contains(['=', '\0']) {
            problems.push(Problem::InvalidEnvName {
                name: name.clone(),
                // The value's span: keys keep none in the model, and the value is beside it.
                span: value.span.into(),
            });
        }
    }
}

/// `remote`: the action runs on a target, whose shell runs a script without `shell`.
fn check_run(run: &Run, remote: bool, problems: &mut Vec<Problem>) {
    let reason = match (&run.program, &run.shell, &run.script) {
        (Some(program), None, None) if program.trim().is_empty() => {
            Some("`program` is empty: name the program to start")
        }
        (Some(_), None, None) => None,
        (None, Some(_), Some(_)) => {
            if run.args.is_empty() {
                None
            } else {
                Some("`args` go with `program`; a script takes its values from templates")
            }
        }
        (None, None, None) => Some("it has neither `program` nor `script`"),
        (Some(_), _, Some(_)) | (Some(_), Some(_), None) => {
            Some("`program` and `shell`/`script` cannot be combined")
        }
        (None, None, Some(_)) if remote => None,
        (None, None, Some(_)) => Some("`script` needs a `shell`"),
        (None, Some(_), None) => Some("`shell` needs a `script`"),
    };
    if let Some(reason) = reason {
        problems.push(Problem::InvalidRun {
            reason,
            span: run.span.into(),
        });
    }
}

fn check_connection(runbook: &Runbook, sql: &Sql, problems: &mut Vec<Problem>) {
    if runbook.connections.contains_key(sql.connection.as_str()) {
        return;
    }
    let names = runbook.connections.keys().map(String::as_str);
    let help = suggestion(&sql.connection, names, || {
        if runbook.connections.is_empty() {
            "declare it under `connections:` with an `mssql` connection string".to_owned()
        } else {
            format!(
                "connections are {}",
                list(runbook.connections.keys().map(String::as_str))
            )
        }
    });
    problems.push(Problem::UnknownConnection {
        name: sql.connection.value.clone(),
        span: sql.connection.span.into(),
        help,
    });
}

fn check_retry(retry: &Retry, problems: &mut Vec<Problem>) {
    if let Some(attempts) = &retry.attempts
        && attempts.value == 0
    {
        problems.push(Problem::InvalidRetry {
            reason: "`attempts` is 0".to_owned(),
            span: attempts.span.into(),
            help: "`attempts` counts the first try: 1 means no retry".to_owned(),
        });
    }
    if let (Some(delay), Some(max)) = (&retry.delay, &retry.max_delay)
        && max.value < delay.value
    {
        problems.push(Problem::InvalidRetry {
            reason: format!(
                "`max_delay` ({}) is shorter than `delay` ({})",
                max.value, delay.value
            ),
            span: max.span.into(),
            help: "`max_delay` caps the growing delay: make it at least `delay`".to_owned(),
        });
    }
}
