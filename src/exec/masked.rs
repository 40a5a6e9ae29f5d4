//! The sink every event of a run goes through first: it masks the secret values an event
//! carries (rendered actions, output, messages, rows, params, reasons) before the journal
//! stores it or the screen shows it. Only values are masked; step ids, event names, keys,
//! numbers and statuses are the structure the journal is read back by, and are never touched.
//!
//! Every variant is named (no wildcard arm), and those with values are taken apart field by
//! field, so a new event is a compile error here until someone decides what in it is a value.

use std::sync::Arc;

use super::event::{ApprovalNeeded, ApprovalVote, Event, EventKind, Sink, StepData};
use crate::mask::Masker;
use crate::render::Action;

/// Masks events, then hands them on.
pub struct Masked {
    masker: Masker,
    inner: Arc<dyn Sink>,
}

impl Masked {
    pub fn new(masker: Masker, inner: Arc<dyn Sink>) -> Self {
        Self { masker, inner }
    }
}

impl Sink for Masked {
    fn emit(&self, event: &Event) {
        if self.masker.is_empty() {
            self.inner.emit(event);
            return;
        }
        self.inner.emit(&Event {
            at: event.at.clone(),
            kind: mask_event(&event.kind, &self.masker),
        });
    }

    fn broken(&self) -> Option<String> {
        self.inner.broken()
    }

    fn commit(&self) -> Option<String> {
        self.inner.commit()
    }
}

/// Output that the capture cap may have cut: the cut can fall inside a secret.
fn output(text: &str, m: &Masker) -> String {
    match text.rfind(crate::steps::command::TRUNCATED) {
        Some(i) => format!("{}{}", m.cut(&text[..i]), &text[i..]),
        None => m.value(text).into_owned(),
    }
}

fn value(text: &str, m: &Masker) -> String {
    m.value(text).into_owned()
}

fn values(texts: &[String], m: &Masker) -> Vec<String> {
    texts.iter().map(|t| value(t, m)).collect()
}

/// An event with its secret values masked.
pub fn mask_event(kind: &EventKind, m: &Masker) -> EventKind {
    use EventKind as K;
    match kind {
        K::RunContext {
            path,
            hash,
            params,
            user,
            host,
            pid,
            no_rollback,
            step_ids,
            rto_ms,
            service_restored_at,
        } => K::RunContext {
            path: path.clone(),
            hash: hash.clone(),
            params: m.map(params),
            user: user.clone(),
            host: host.clone(),
            pid: *pid,
            no_rollback: *no_rollback,
            step_ids: step_ids.clone(),
            rto_ms: *rto_ms,
            service_restored_at: service_restored_at.clone(),
        },
        // Every field named (no `..`): a new one is a compile error here too.
        K::ApprovalNeeded(a) => K::ApprovalNeeded(ApprovalNeeded {
            step: a.step.clone(),
            prompt: value(&a.prompt, m),
            approvers: a.approvers.clone(),
            group: a.group.clone(),
            min: a.min,
            self_approval: a.self_approval,
            operator: a.operator.clone(),
            timeout_ms: a.timeout_ms,
            command: a.command.clone(),
            ignored: a.ignored.clone(),
        }),
        K::ApprovalVote(v) => K::ApprovalVote(ApprovalVote {
            step: v.step.clone(),
            user: v.user.clone(),
            decision: v.decision,
            reason: v.reason.as_deref().map(|t| value(t, m)),
            voted_at: v.voted_at.clone(),
        }),
        K::RunResumed {
            run_id,
            decisions,
            rollback,
        } => K::RunResumed {
            run_id: run_id.clone(),
            decisions: decisions.clone(),
            rollback: *rollback,
        },
        K::StepStarted {
            step,
            attempt,
            attempts,
            action,
            detail,
            target,
        } => K::StepStarted {
            step: step.clone(),
            attempt: *attempt,
            attempts: *attempts,
            action: value(action, m),
            detail: detail.as_ref().map(|a| mask_action(a, m)),
            target: remote(target.as_ref(), m),
        },
        K::AttemptFailed {
            step,
            attempt,
            reason,
            message,
            retry_in_ms,
        } => K::AttemptFailed {
            step: step.clone(),
            attempt: *attempt,
            reason: reason.clone(),
            message: value(message, m),
            retry_in_ms: *retry_in_ms,
        },
        K::StepFinished {
            step,
            status,
            attempts,
            duration_ms,
            exit_code,
            message,
            stdout,
            stderr,
            data,
        } => K::StepFinished {
            step: step.clone(),
            status: *status,
            attempts: *attempts,
            duration_ms: *duration_ms,
            exit_code: *exit_code,
            message: message.as_deref().map(|t| value(t, m)),
            stdout: output(stdout, m),
            stderr: output(stderr, m),
            data: data.as_ref().map(|d| mask_data(d, m)),
        },
        K::StepSkipped { step, reason } => K::StepSkipped {
            step: step.clone(),
            reason: value(reason, m),
        },
        K::StepMessage { step, message } => K::StepMessage {
            step: step.clone(),
            message: value(message, m),
        },
        K::Output {
            step,
            stream,
            line,
            cut,
        } => K::Output {
            step: step.clone(),
            stream: *stream,
            // A cut line may end inside a secret.
            line: if *cut {
                m.cut(line).into_owned()
            } else {
                value(line, m)
            },
            cut: *cut,
        },
        K::NotifyFailed { hook, on, message } => K::NotifyFailed {
            hook: *hook,
            on: on.clone(),
            message: value(message, m),
        },
        K::RollbackStepStarted {
            step,
            action,
            detail,
        } => K::RollbackStepStarted {
            step: step.clone(),
            action: value(action, m),
            detail: detail.as_ref().map(|a| mask_action(a, m)),
        },
        K::RollbackStepFinished {
            step,
            status,
            message,
        } => K::RollbackStepFinished {
            step: step.clone(),
            status: *status,
            message: message.as_deref().map(|t| value(t, m)),
        },
        K::NotRolledBack { step, reason } => K::NotRolledBack {
            step: step.clone(),
            reason: value(reason, m),
        },
        K::JournalFailed { reason } => K::JournalFailed {
            reason: value(reason, m),
        },
        // Structure only: ids, names, counts, statuses.
        K::RunStarted { .. }
        | K::ProcessStarted { .. }
        | K::Approved { .. }
        | K::VoteIgnored { .. }
        | K::RollbackStarted { .. }
        | K::SecretsNotSearched { .. }
        | K::Interrupted { .. }
        | K::FinallyStarted { .. }
        | K::RunFinished { .. } => kind.clone(),
    }
}

fn mask_data(data: &StepData, m: &Masker) -> StepData {
    let StepData {
        messages,
        outputs,
        result_sets,
        rows,
        rows_affected,
    } = data;
    StepData {
        messages: values(messages, m),
        outputs: outputs
            .iter()
            .map(|(k, v)| (k.clone(), value(v, m)))
            .collect(),
        result_sets: result_sets
            .iter()
            .map(|set| set.iter().map(|row| m.map(row)).collect())
            .collect(),
        rows: rows.iter().map(|row| m.map(row)).collect(),
        rows_affected: *rows_affected,
    }
}

/// Where a remote action runs, its rendered destination masked.
fn remote(target: Option<&crate::target::Remote>, m: &Masker) -> Option<crate::target::Remote> {
    target.map(|r| crate::target::Remote {
        target: value(&r.target, m),
        ssh: value(&r.ssh, m),
        shell: r.shell.clone(),
    })
}

/// A rendered action with its rendered values masked; the shell, the connection's name and the
/// expression of an assertion are written in the runbook, not rendered, and stay as written.
pub fn mask_action(action: &Action, m: &Masker) -> Action {
    let env = |env: &[(String, String)]| -> Vec<(String, String)> {
        env.iter().map(|(k, v)| (k.clone(), value(v, m))).collect()
    };
    match action {
        Action::Command {
            program,
            args,
            cwd,
            env: vars,
            target,
        } => Action::Command {
            program: value(program, m),
            args: values(args, m),
            cwd: cwd.as_deref().map(|c| value(c, m)),
            env: env(vars),
            target: remote(target.as_ref(), m),
        },
        Action::Script {
            shell,
            script,
            cwd,
            env: vars,
            target,
        } => Action::Script {
            shell: shell.clone(),
            script: value(script, m),
            cwd: cwd.as_deref().map(|c| value(c, m)),
            env: env(vars),
            target: remote(target.as_ref(), m),
        },
        Action::Sql {
            connection,
            server,
            database,
            query,
            args,
        } => Action::Sql {
            connection: connection.clone(),
            server: server.as_deref().map(|s| value(s, m)),
            database: database.as_deref().map(|d| value(d, m)),
            query: value(query, m),
            args: args.iter().map(|a| m.json(a)).collect(),
        },
        Action::Wait { duration, time } => Action::Wait {
            duration: duration.clone(),
            time: *time,
        },
        Action::Assert { that, message } => Action::Assert {
            that: that.clone(),
            message: message.as_deref().map(|t| value(t, m)),
        },
        Action::Approval {
            prompt,
            instructions,
            quorum,
        } => Action::Approval {
            prompt: value(prompt, m),
            instructions: instructions.as_deref().map(|t| value(t, m)),
            quorum: quorum.clone(),
        },
    }
}
