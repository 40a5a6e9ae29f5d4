//! Runs one step (or one rollback action) to its end: attempts, `until`, outputs, and the
//! delays between attempts. Every attempt is an event.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use minijinja::Value;

use super::Shared;
use super::event::{EventKind, Status, StepData};
use crate::context::Context;
use crate::model::Spanned;
use crate::render::{Action, RenderError, Renderer};
use crate::retry::{Failure, Policy};
use crate::steps::approval::NotApproved;
use crate::steps::lines::{Line, Splitter, Stream};
use crate::steps::sql_messages::Messages;
use crate::steps::{Attempt, Failed, command, ssh};

/// What a step or rollback action is, for the attempt loop.
pub struct Spec<'a> {
    pub id: &'a str,
    pub policy: Policy,
    pub timeout: Option<Duration>,
    pub until: Option<&'a str>,
    pub outputs: Option<&'a indexmap::IndexMap<String, Spanned<String>>>,
    pub rollback: bool,
    pub render: &'a (dyn Fn(&Renderer, &Value) -> Result<Action, RenderError> + Sync),
}

/// How a step ended, and what it leaves for later templates.
#[derive(Clone, Debug)]
pub struct Outcome {
    pub status: Status,
    pub attempts: u32,
    pub duration: Duration,
    pub exit_code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub message: Option<String>,
    /// `outputs`, SQL rows and server messages.
    pub data: StepData,
    /// The action succeeded but an `outputs` template failed: the step counts as completed
    /// (its effect happened, so its rollback applies) and the run stops.
    pub outputs_failed: bool,
}

impl StepData {
    /// The rows and messages of one attempt (outputs come later, from `outputs`).
    fn of(attempt: &Attempt) -> Self {
        let (result_sets, rows_affected) = attempt.sql.as_ref().map_or((Vec::new(), 0), |r| {
            (r.result_sets.clone(), r.rows_affected)
        });
        Self {
            messages: attempt.messages.clone(),
            outputs: BTreeMap::new(),
            rows: result_sets.first().cloned().unwrap_or_default(),
            result_sets,
            rows_affected,
        }
    }
}

fn merge(mut base: serde_json::Value, data: &StepData) -> Value {
    if let (Some(b), Ok(serde_json::Value::Object(e))) =
        (base.as_object_mut(), serde_json::to_value(data))
    {
        b.extend(e);
    }
    Value::from_serialize(base)
}

impl Outcome {
    /// A step that ended without running: skipped by `when`, or restored without a record.
    pub fn empty(status: Status) -> Self {
        Self {
            status,
            attempts: 0,
            duration: Duration::ZERO,
            exit_code: None,
            stdout: String::new(),
            stderr: String::new(),
            message: None,
            data: StepData::default(),
            outputs_failed: false,
        }
    }

    /// What `steps.<id>` holds for later templates.
    pub fn value(&self) -> Value {
        merge(
            serde_json::json!({
                "stdout": self.stdout,
                "stderr": self.stderr,
                "exit_code": self.exit_code,
                "status": self.status.name(),
                "attempts": self.attempts,
                "duration": self.duration.as_secs_f64(),
            }),
            &self.data,
        )
    }
}

fn result_value(attempt: &Attempt, number: u32) -> Value {
    merge(
        serde_json::json!({
            "stdout": attempt.stdout,
            "stderr": attempt.stderr,
            "exit_code": attempt.exit_code,
            "attempt": number,
        }),
        &StepData::of(attempt),
    )
}

pub async fn run(shared: &Shared, spec: &Spec<'_>, context: &Context) -> Outcome {
    let started = Instant::now();
    let renderer = Renderer {
        templates: &shared.templates,
        dry_run: false,
        runbook: &shared.runbook,
    };
    let value = context.value();
    let masked = context.masked().value();
    let mut last = Attempt::default();
    let mut attempt = 0;
    while attempt < spec.policy.attempts {
        attempt += 1;
        let action = match (spec.render)(&renderer, &value) {
            Ok(action) => action,
            Err(e) => {
                last = Attempt::failed(Failure::Error, e.to_string());
                // A template that cannot render will not render on the next attempt either.
                emit_failure(shared, spec, attempt, &last, None);
                break;
            }
        };
        let rendered_masked = if shared.masker.is_empty() {
            None
        } else {
            (spec.render)(&renderer, &masked).ok()
        };
        let shown = shared.shown(&action, rendered_masked);
        if spec.rollback {
            if attempt == 1 {
                shared.emit(EventKind::RollbackStepStarted {
                    step: spec.id.to_owned(),
                    action: crate::report::action::summary(&shown),
                    detail: Some(shown.clone()),
                });
            }
        } else {
            shared.emit(EventKind::StepStarted {
                step: spec.id.to_owned(),
                attempt,
                attempts: spec.policy.attempts,
                action: crate::report::action::summary(&shown),
                detail: (attempt == 1).then(|| shown.clone()),
                target: shown.target().cloned(),
            });
        }
        // The started event is on disk before the action starts; if it is not, the action
        // must not start either (a journal that cannot be written stops the run).
        if let Some(reason) = shared.sink.broken() {
            last = Attempt::failed(
                Failure::Error,
                format!("not started: the run journal cannot be written ({reason})"),
            );
            return finish(last, Status::Cancelled, attempt, started);
        }
        last = execute(shared, spec, &action, &shown, &value).await;
        let mut outputs = BTreeMap::new();
        if last.failure.is_none() {
            let with_result = context.with_result(Some(&result_value(&last, attempt)));
            if let Some(until) = spec.until {
                match shared.templates.eval(until, &with_result) {
                    Ok(v) if v.is_true() => {}
                    Ok(_) => {
                        last.failure = Some(Failed::new(
                            Failure::Until,
                            format!("until `{until}` is false"),
                        ))
                    }
                    Err(e) => {
                        last.failure = Some(Failed::new(
                            Failure::Error,
                            format!("cannot evaluate until: {}", crate::template::error_text(&e)),
                        ));
                    }
                }
            }
            if last.failure.is_none()
                && let Some(declared) = spec.outputs
            {
                for (name, template) in declared {
                    let given = last.outputs.get(name).cloned().map(Ok);
                    match given.unwrap_or_else(|| {
                        renderer.text(&format!("outputs.{name}"), template, &with_result)
                    }) {
                        Ok(v) => {
                            outputs.insert(name.clone(), v);
                        }
                        Err(e) => {
                            // Not retried: the action already had its effect, and another
                            // attempt would do it again.
                            let mut outcome = finish(last, Status::Succeeded, attempt, started);
                            outcome.data.outputs = outputs;
                            outcome.message = Some(format!(
                                "the action succeeded, but its outputs could not be read: {e}; not retried (the action already had its effect)"
                            ));
                            outcome.outputs_failed = true;
                            return outcome;
                        }
                    }
                }
            }
        }
        let Some(Failed {
            reason: failure, ..
        }) = &last.failure
        else {
            let mut outcome = finish(last, Status::Succeeded, attempt, started);
            outcome.data.outputs = outputs;
            return outcome;
        };
        if shared.cancel.is_cancelled() {
            return finish(last, Status::Cancelled, attempt, started);
        }
        let retry = attempt < spec.policy.attempts && spec.policy.retries(failure);
        // Rollback actions always get their attempts; steps make none once the run stops.
        let stopping = async {
            if spec.rollback {
                std::future::pending::<()>().await;
            }
            shared.stopping.cancelled().await;
        };
        if retry && !spec.rollback && shared.stopping.is_cancelled() {
            emit_failure(shared, spec, attempt, &last, None);
            return not_retried(last, attempt, started);
        }
        let delay = retry.then(|| spec.policy.delay_before(attempt + 1));
        emit_failure(shared, spec, attempt, &last, delay);
        let Some(delay) = delay else {
            break;
        };
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = shared.cancel.cancelled() => return finish(last, Status::Cancelled, attempt, started),
            () = stopping => return not_retried(last, attempt, started),
        }
    }
    finish(last, Status::Failed, attempt, started)
}

/// A step whose next attempt was called off because the run is stopping.
fn not_retried(last: Attempt, attempts: u32, started: Instant) -> Outcome {
    let mut outcome = finish(last, Status::Cancelled, attempts, started);
    outcome.message = Some(match outcome.message {
        Some(m) => format!("{m}; not retried: the run is stopping"),
        None => "not retried: the run is stopping".to_owned(),
    });
    outcome
}

fn finish(last: Attempt, status: Status, attempts: u32, started: Instant) -> Outcome {
    Outcome {
        status,
        attempts,
        duration: started.elapsed(),
        data: StepData::of(&last),
        exit_code: last.exit_code,
        message: last.failure.map(|f| f.message),
        stdout: last.stdout,
        stderr: last.stderr,
        outputs_failed: false,
    }
}

fn emit_failure(
    shared: &Shared,
    spec: &Spec<'_>,
    attempt: u32,
    last: &Attempt,
    delay: Option<Duration>,
) {
    if let Some(Failed {
        reason: failure,
        message,
    }) = &last.failure
    {
        shared.emit(EventKind::AttemptFailed {
            step: spec.id.to_owned(),
            attempt,
            reason: failure.clone(),
            message: message.clone(),
            retry_in_ms: delay.map(|d| d.as_millis() as u64),
        });
    }
}

/// Waits for the votes of a multi-party approval.
async fn multi_party(
    shared: &Shared,
    spec: &Spec<'_>,
    prompt: &str,
    quorum: &crate::steps::quorum::Quorum,
) -> Attempt {
    let Some(ballot) = &shared.approvals.ballot else {
        return Attempt::failed(Failure::Refused, NotApproved::NoBallot.to_string());
    };
    let approvals = &shared.approvals;
    let wait = crate::steps::quorum::Wait {
        ballot,
        step: spec.id,
        prompt,
        quorum,
        limit: spec.timeout,
        ignored_preapproval: approvals.preapproved(spec.id).then_some(if approvals.all {
            "--approve-all"
        } else {
            "--approve"
        }),
        cancel: &shared.cancel,
        stopping: &shared.stopping,
    };
    let answer = wait.run(&|kind| shared.emit(kind)).await;
    decided(shared, spec, answer)
}

/// An approval's end: `approved` journaled, or the step refused with why.
fn decided(
    shared: &Shared,
    spec: &Spec<'_>,
    answer: Result<crate::steps::approval::Granted, NotApproved>,
) -> Attempt {
    match answer {
        Ok(granted) => {
            shared.emit(EventKind::Approved {
                step: spec.id.to_owned(),
                by: granted.by,
                how: granted.how.to_owned(),
            });
            Attempt::default()
        }
        Err(why) => Attempt::failed(Failure::Refused, why.to_string()),
    }
}

/// Runs `action`; `shown` is the same action with its secrets masked, for whoever is asked.
async fn execute(
    shared: &Shared,
    spec: &Spec<'_>,
    action: &Action,
    shown: &Action,
    value: &Value,
) -> Attempt {
    // Under test, commands and queries are answered by the test's mocks; waits, asserts and
    // approvals are decided as in a real run (a test's clock is virtual: waits take no time).
    if let Some(stand_in) = &shared.stand_in
        && matches!(
            action,
            Action::Command { .. } | Action::Script { .. } | Action::Sql { .. }
        )
    {
        let unit = if spec.rollback {
            format!("rollback:{}", spec.id)
        } else {
            spec.id.to_owned()
        };
        let attempt = stand_in.answer(&unit, action);
        // A mocked query's messages reach the report as a real server's would: one by one.
        if matches!(action, Action::Sql { .. }) {
            for message in &attempt.messages {
                shared.emit(EventKind::StepMessage {
                    step: spec.id.to_owned(),
                    message: message.clone(),
                });
            }
        }
        // A mocked command's output reaches the report as a real one's would: line by line.
        if matches!(action, Action::Command { .. } | Action::Script { .. }) {
            let on_line = output_lines(shared, spec.id);
            for (stream, text) in [
                (Stream::Stdout, &attempt.stdout),
                (Stream::Stderr, &attempt.stderr),
            ] {
                let mut lines = Splitter::default();
                lines.push(text.as_bytes(), &mut |line| on_line(stream, line));
                lines.finish(&mut |line| on_line(stream, line));
            }
        }
        return attempt;
    }
    match action {
        Action::Command { .. } | Action::Script { .. } => {
            let spawned = |group| {
                shared.emit(EventKind::ProcessStarted {
                    step: spec.id.to_owned(),
                    group,
                });
            };
            let supervision = command::Supervision {
                hidden: &shared.hidden_env,
                timeout: spec.timeout,
                cancel: &shared.cancel,
                groups: &shared.groups,
                spawned: &spawned,
            };
            let on_line = output_lines(shared, spec.id);
            match action.target() {
                Some(target) => {
                    ssh::run(&shared.ssh, target, action, supervision, on_line, None).await
                }
                None => {
                    let streams = command::Streams {
                        stdin: None,
                        on_line,
                    };
                    command::run(action, supervision, streams).await
                }
            }
        }
        Action::Wait { time, .. } => {
            let limit = spec.timeout.filter(|t| t < time);
            tokio::select! {
                () = tokio::time::sleep(limit.unwrap_or(*time)) => match limit {
                    Some(t) => Attempt::failed(Failure::Timeout, format!("timed out after {}", humantime::format_duration(t))),
                    None => Attempt::default(),
                },
                () = shared.cancel.cancelled() => Attempt::failed(Failure::Error, "cancelled"),
            }
        }
        Action::Assert { that, message } => match shared.templates.eval(that, value) {
            Ok(v) if v.is_true() => Attempt::default(),
            Ok(_) => Attempt::failed(
                Failure::Assert,
                message
                    .clone()
                    .unwrap_or_else(|| format!("assertion `{that}` is false")),
            ),
            Err(e) => Attempt::failed(
                Failure::Error,
                format!(
                    "cannot evaluate `{that}`: {}",
                    crate::template::error_text(&e)
                ),
            ),
        },
        Action::Approval { .. } => {
            // Whoever is asked sees the prompt as the journal does: masked.
            let Action::Approval {
                prompt,
                instructions,
                quorum,
            } = shown
            else {
                return Attempt::failed(Failure::Error, "not an approval");
            };
            if let Some(quorum) = quorum
                && shared.stand_in.is_none()
            {
                return multi_party(shared, spec, prompt, quorum).await;
            }
            let asked = shared.approvals.ask(
                spec.id,
                prompt,
                instructions.as_deref(),
                &shared.prompt_lock,
            );
            let answer = match spec.timeout {
                Some(t) => tokio::time::timeout(t, asked)
                    .await
                    .unwrap_or(Err(NotApproved::TimedOut(t))),
                None => asked.await,
            };
            decided(shared, spec, answer)
        }
        Action::Sql {
            connection,
            database,
            query,
            args,
            ..
        } => {
            let Some(declared) = shared.runbook.connections.get(connection) else {
                return Attempt::failed(Failure::Error, format!("no connection `{connection}`"));
            };
            let connection_string = match shared.templates.render(&declared.mssql, value) {
                Ok(s) => s,
                Err(e) => {
                    return Attempt::failed(
                        Failure::Error,
                        format!(
                            "cannot render connection `{connection}`: {}",
                            crate::template::error_text(&e)
                        ),
                    );
                }
            };
            let sink = shared.sink.clone();
            let step = spec.id.to_owned();
            let messages = Messages::new(move |message| {
                sink.emit(&super::event::event(EventKind::StepMessage {
                    step: step.clone(),
                    message: message.to_owned(),
                }));
            });
            let run = shared.pool.run(
                connection,
                &connection_string,
                database.as_deref(),
                query,
                args,
                spec.timeout,
                &shared.cancel,
                &messages,
            );
            let (mut attempt, results) = run.await;
            attempt.sql = results;
            attempt.messages = messages.take();
            attempt
        }
    }
}

/// Where a command's output lines go as they arrive: `output` events of the step.
fn output_lines(shared: &Shared, step: &str) -> Arc<crate::steps::lines::OnLine> {
    let sink = shared.sink.clone();
    let step = step.to_owned();
    Arc::new(move |stream, line: Line| {
        sink.emit(&super::event::event(EventKind::Output {
            step: step.clone(),
            stream,
            line: line.text,
            cut: line.cut,
        }));
    })
}
