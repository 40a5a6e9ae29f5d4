//! `notify:` hooks. The notifier sits in the event stream just after masking, so it sees each
//! event with its secret values already masked. When an event is one a hook is run on
//! (`approval_needed`, `step_failed`, `needs_person`, `finished`, `interrupted`), it queues the
//! hook, the event as JSON on its stdin. One worker runs the queue in order in the background
//! (so a chat never hears `finished` before `step_failed`), each hook through the same command
//! executor as a `run` step (supervised process group, hidden secret variables) under its own
//! time limit. A hook that fails is reported (`notify_failed`) and never changes the run's
//! outcome; the run waits for the queue at its end, each hook at most its timeout.

use std::sync::{Arc, Mutex};

use minijinja::Value;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::event::{Event, EventKind, Sink, Status, event};
use super::masked::mask_event;
use crate::mask::Masker;
use crate::model::{DEFAULT_NOTIFY_TIMEOUT, NotifyEvent, Runbook};
use crate::render::{Action, Renderer};
use crate::steps::approval::Approvals;
use crate::steps::command::{self, Groups, Streams};
use crate::template::Templates;

/// What the hooks of a run need.
pub struct Hooks {
    pub runbook: Arc<Runbook>,
    /// What their templates read: params, secrets, env and run.
    pub context: Value,
    pub masker: Masker,
    /// Environment variables secrets are read from: hooks do not inherit them either.
    pub hidden: Vec<String>,
    /// Approvals given up front: no person is asked for them.
    pub approvals: Approvals,
    /// The hooks' own ssh connections (hooks on a target), closed once the queue is done.
    pub ssh: crate::steps::ssh::Ssh,
}

/// Passes events on, and runs the hooks they call for.
pub struct Notifier {
    inner: Arc<dyn Sink>,
    hooks: Arc<Hooks>,
    /// The run's id and runbook, from `run_started`.
    run: Mutex<(String, String)>,
    /// The queue of hooks to run, and the worker running it (started with the first hook).
    queue: Mutex<Option<Queue>>,
}

struct Queue {
    jobs: mpsc::UnboundedSender<Job>,
    worker: JoinHandle<()>,
}

/// One hook to run: its position, the event it is run on, and its stdin.
struct Job {
    index: usize,
    on: NotifyEvent,
    input: Vec<u8>,
}

impl Notifier {
    pub fn new(hooks: Hooks, inner: Arc<dyn Sink>) -> Self {
        Self {
            inner,
            hooks: Arc::new(hooks),
            run: Mutex::new((String::new(), String::new())),
            queue: Mutex::new(None),
        }
    }

    /// Waits for every hook queued so far (each ends by its timeout at the latest); no hook
    /// is queued after this.
    pub async fn drain(&self) {
        let queue = self.queue.lock().ok().and_then(|mut q| q.take());
        if let Some(Queue { jobs, worker }) = queue {
            // The worker ends once the queue is empty and closed.
            drop(jobs);
            let _ = worker.await;
        }
        self.hooks.ssh.close().await;
    }

    /// The hook events `event` calls for, with their fields.
    fn triggers(&self, event: &Event) -> Vec<(NotifyEvent, serde_json::Value)> {
        use serde_json::json;
        match &event.kind {
            EventKind::RunStarted {
                run_id, runbook, ..
            } => {
                if let Ok(mut run) = self.run.lock() {
                    *run = (run_id.clone(), runbook.clone());
                }
                Vec::new()
            }
            EventKind::StepStarted {
                step,
                attempt: 1,
                detail: Some(Action::Approval { prompt, .. }),
                ..
            } if !self.hooks.approvals.preapproved(step) && !self.multi_party(step) => vec![(
                NotifyEvent::ApprovalNeeded,
                json!({ "step": step, "prompt": prompt }),
            )],
            // A multi-party approval says who may vote and how, when its wait begins.
            EventKind::ApprovalNeeded(a) => vec![(
                NotifyEvent::ApprovalNeeded,
                json!({ "step": a.step, "prompt": a.prompt, "approvers": a.approvers, "min": a.min, "command": a.command, "timeout_ms": a.timeout_ms }),
            )],
            EventKind::RollbackStepStarted { step, action, .. }
                if self.rollback_asks(step) && !self.hooks.approvals.preapproved(step) =>
            {
                vec![(
                    NotifyEvent::ApprovalNeeded,
                    json!({ "step": step, "prompt": action, "rollback": true }),
                )]
            }
            EventKind::StepFinished {
                step,
                status: Status::Failed,
                attempts,
                exit_code,
                message,
                ..
            } => vec![(
                NotifyEvent::StepFailed,
                json!({ "step": step, "attempts": attempts, "exit_code": exit_code, "message": message }),
            )],
            EventKind::Interrupted { signal } => {
                vec![(NotifyEvent::Interrupted, json!({ "signal": signal }))]
            }
            EventKind::RunFinished {
                status,
                exit_code,
                duration_ms,
            } => {
                let fields =
                    json!({ "status": status, "exit_code": exit_code, "duration_ms": duration_ms });
                let mut out = vec![(NotifyEvent::Finished, fields.clone())];
                if *exit_code == crate::exit::NEEDS_PERSON {
                    out.push((NotifyEvent::NeedsPerson, fields));
                }
                out
            }
            _ => Vec::new(),
        }
    }

    /// The runbook's step `step` is (or the loop its instance `step[KEY]` is of).
    fn step(&self, step: &str) -> Option<&crate::model::Step> {
        let id = step.split_once('[').map_or(step, |(id, _)| id);
        self.hooks
            .runbook
            .steps
            .iter()
            .find(|s| s.id.as_str() == id)
    }

    /// Whether `step` is a multi-party approval.
    fn multi_party(&self, step: &str) -> bool {
        self.step(step).is_some_and(
            |s| matches!(&s.kind, crate::model::StepKind::Approval(a) if a.is_multi_party()),
        )
    }

    /// Whether the rollback of `step` asks a person.
    fn rollback_asks(&self, step: &str) -> bool {
        self.step(step)
            .and_then(|s| s.rollback.as_ref())
            .is_some_and(|r| r.is_approval())
    }

    fn start(&self, job: Job) {
        let Ok(mut queue) = self.queue.lock() else {
            return;
        };
        if queue.is_none() {
            let Ok(runtime) = tokio::runtime::Handle::try_current() else {
                return;
            };
            let (jobs, mut rx) = mpsc::unbounded_channel::<Job>();
            let hooks = self.hooks.clone();
            let inner = self.inner.clone();
            let worker = runtime.spawn(async move {
                while let Some(Job { index, on, input }) = rx.recv().await {
                    if let Some(message) = run_hook(&hooks, index, input).await {
                        let failed = EventKind::NotifyFailed {
                            hook: index + 1,
                            on: on.name().to_owned(),
                            message,
                        };
                        inner.emit(&event(mask_event(&failed, &hooks.masker)));
                    }
                }
            });
            *queue = Some(Queue { jobs, worker });
        }
        if let Some(queue) = queue.as_ref() {
            let _ = queue.jobs.send(job);
        }
    }
}

impl Sink for Notifier {
    fn emit(&self, event: &Event) {
        // The record first: the event is on disk before anyone is told of it.
        self.inner.emit(event);
        let hooks = &self.hooks.runbook.notify;
        if hooks.is_empty() {
            return;
        }
        let triggers = self.triggers(event);
        if !triggers.is_empty() {
            // A `step_started` is synced at its step's commit: hooks hear of it once it is on
            // disk.
            let _ = self.inner.commit();
        }
        for (on, fields) in triggers {
            let (run_id, runbook) = self.run.lock().map(|r| r.clone()).unwrap_or_default();
            let mut input = serde_json::json!({
                "event": on.name(),
                "run_id": run_id,
                "runbook": runbook,
                "at": event.at,
            });
            if let (Some(input), serde_json::Value::Object(fields)) =
                (input.as_object_mut(), fields)
            {
                input.extend(fields);
            }
            let mut input = serde_json::to_vec(&input).unwrap_or_default();
            input.push(b'\n');
            for (index, hook) in hooks.iter().enumerate() {
                if hook.on.iter().any(|e| e.value == on) {
                    self.start(Job {
                        index,
                        on,
                        input: input.clone(),
                    });
                }
            }
        }
    }

    fn broken(&self) -> Option<String> {
        self.inner.broken()
    }

    fn commit(&self) -> Option<String> {
        self.inner.commit()
    }
}

/// Runs hook `index` with `input` on its stdin; why it failed, if it did.
async fn run_hook(hooks: &Hooks, index: usize, input: Vec<u8>) -> Option<String> {
    let hook = hooks.runbook.notify.get(index)?;
    let templates = Templates::new();
    let renderer = Renderer {
        templates: &templates,
        dry_run: false,
        runbook: &hooks.runbook,
    };
    let action = match renderer.hook(hook, &hooks.context) {
        Ok(action) => action,
        Err(e) => return Some(e.to_string()),
    };
    let timeout = hook
        .timeout
        .as_ref()
        .map_or(DEFAULT_NOTIFY_TIMEOUT, |t| t.value.get());
    let cancel = CancellationToken::new();
    let groups = Groups::default();
    let programs = crate::program_path::ProgramPath::from_env();
    let supervision = command::Supervision {
        hidden: &hooks.hidden,
        timeout: Some(timeout),
        // Nothing but its timeout ends a hook: an interrupt is what it may be reporting.
        cancel: &cancel,
        groups: &groups,
        spawned: &|_| {},
        programs: &programs,
    };
    let on_line: Arc<crate::steps::lines::OnLine> = Arc::new(|_, _| {});
    let attempt = match action.target() {
        Some(target) => {
            let event = String::from_utf8_lossy(&input);
            let event = event.trim_end_matches('\n');
            let ssh = &hooks.ssh;
            crate::steps::ssh::run(ssh, target, &action, supervision, on_line, Some(event)).await
        }
        None => {
            let stdin = Some(input);
            command::run(&action, supervision, Streams { stdin, on_line }).await
        }
    };
    let failure = attempt.failure?;
    // The hook's last words say why (`curl: (22) … 404`).
    Some(match attempt.stderr.trim().lines().last() {
        Some(last) => format!("{}: {}", failure.message, last.trim()),
        None => failure.message,
    })
}
