//! Executes a runbook: a ready-queue scheduler over the DAG on tokio, retries, timeouts,
//! approvals, and rollback of completed steps on failure. The engine only emits events.

pub mod attempt;
pub mod event;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::context::{Context, RunInfo};
use crate::dag::Dag;
use crate::model::Runbook;
use crate::render::Renderer;
use crate::retry::Policy;
use crate::steps::approval::Approvals;
use crate::steps::command::Groups;
use crate::template::Templates;
use attempt::{Outcome, Spec};
use event::{EventKind, Sink, Status, event};

/// Exit codes of a run.
pub mod exit {
    pub const OK: u8 = 0;
    pub const FAILED: u8 = 1;
    pub const INVALID: u8 = 2;
    pub const NEEDS_PERSON: u8 = 3;
    pub const INTERRUPTED: u8 = 130;
}

/// How to run.
#[derive(Clone, Debug)]
pub struct Options {
    pub concurrency: usize,
    pub approvals: Approvals,
    pub no_rollback: bool,
}

/// Everything the tasks of one run share.
pub struct Shared {
    pub runbook: Arc<Runbook>,
    pub templates: Templates,
    pub sink: Arc<dyn Sink>,
    pub cancel: CancellationToken,
    pub groups: Groups,
    pub approvals: Approvals,
    pub prompt_lock: tokio::sync::Mutex<()>,
    pub pool: crate::steps::sql::Pool,
}

impl Shared {
    pub fn emit(&self, kind: EventKind) {
        self.sink.emit(&event(kind));
    }
}

/// The end of a run.
#[derive(Clone, Debug)]
pub struct Summary {
    pub exit_code: u8,
    pub status: String,
    pub steps: Vec<StepSummary>,
    pub rollback: Vec<(String, Status)>,
    pub not_rolled_back: Vec<(String, String)>,
    pub duration: Duration,
}

#[derive(Clone, Debug)]
pub struct StepSummary {
    pub id: String,
    pub status: Option<Status>,
    pub attempts: u32,
    pub duration: Duration,
}

/// Steps with an approval (their own, or in their rollback) that is not given up front.
pub fn missing_approvals(runbook: &Runbook, approvals: &Approvals) -> Vec<String> {
    if approvals.interactive || approvals.all {
        return Vec::new();
    }
    runbook
        .steps
        .iter()
        .filter(|s| s.is_approval() || s.rollback.as_ref().is_some_and(|r| r.is_approval()))
        .filter(|s| !approvals.preapproved(&s.id))
        .map(|s| s.id.value.clone())
        .collect()
}

/// What to run: a checked runbook with its values bound.
pub struct Job {
    pub runbook: Arc<Runbook>,
    pub dag: Arc<Dag>,
    pub params: serde_json::Map<String, serde_json::Value>,
    pub secrets: Vec<(String, String)>,
    pub run: RunInfo,
    /// The runbook file and its hash, recorded for `resume`.
    pub origin: Option<(String, String)>,
    /// Where a resumed run picks up.
    pub resume: Option<Resume>,
}

/// The state of a run rebuilt from its journal.
#[derive(Clone, Debug, Default)]
pub struct Resume {
    /// Steps that ended (succeeded, skipped, or failed and tolerated), in the order they ended.
    pub done: Vec<(usize, Outcome)>,
    /// Steps that completed, in completion order (what rollback undoes).
    pub completed: Vec<usize>,
    /// The run had failed or stopped (or an in-doubt step is assumed failed): roll back.
    pub stopped: Option<String>,
    /// Rollback actions that already ran before the crash.
    pub rolled_back: Vec<usize>,
    /// Decisions about in-doubt steps, for the record.
    pub decisions: Vec<String>,
    /// Roll back only (`runbook rollback`), whatever state the run was in.
    pub rollback_only: bool,
}

/// Runs the runbook to its end (rollback included) and returns the summary.
pub async fn run(
    job: Job,
    options: Options,
    sink: Arc<dyn Sink>,
    mut interrupts: Interrupts,
) -> Summary {
    let Job {
        runbook,
        dag,
        params,
        secrets,
        run,
        origin,
        resume,
    } = job;
    let (params, secrets, run) = (&params, &secrets[..], &run);
    let started = Instant::now();
    let shared = Arc::new(Shared {
        runbook: runbook.clone(),
        templates: Templates::new(),
        sink,
        cancel: CancellationToken::new(),
        groups: interrupts.groups.clone(),
        approvals: options.approvals.clone(),
        prompt_lock: tokio::sync::Mutex::new(()),
        pool: crate::steps::sql::Pool::default(),
    });
    let concurrency = options.concurrency.max(1);
    shared.emit(EventKind::RunStarted {
        run_id: run.id.clone(),
        runbook: runbook.name.value.clone(),
        steps: runbook.steps.len(),
        concurrency,
    });

    let n = runbook.steps.len();
    let mut context = Context::new(params, secrets, run);
    let mut pending: Vec<usize> = (0..n).map(|i| dag.parents(i).count()).collect();
    let mut ready: BTreeSet<usize> = (0..n).filter(|&i| pending[i] == 0).collect();
    let mut results: Vec<Option<Outcome>> = vec![None; n];
    let mut completed: Vec<usize> = Vec::new();
    let mut running: JoinSet<(usize, Outcome)> = JoinSet::new();
    let mut stopping: Option<String> = None;
    let mut interrupted = false;
    let mut rolled_back_before: Vec<usize> = Vec::new();
    match &resume {
        None => {
            if let Some((path, hash)) = &origin {
                shared.emit(EventKind::RunContext {
                    path: path.clone(),
                    hash: hash.clone(),
                    params: params.clone(),
                    user: crate::steps::approval::user(),
                    host: crate::lock::host(),
                    pid: std::process::id(),
                    no_rollback: options.no_rollback,
                });
            }
        }
        Some(resume) => {
            shared.emit(EventKind::RunResumed {
                run_id: run.id.clone(),
                decisions: resume.decisions.clone(),
            });
            for (i, outcome) in &resume.done {
                context.set_step(&runbook.steps[*i].id, outcome.value());
                results[*i] = Some(outcome.clone());
                release(&dag, *i, &mut pending, &mut ready);
            }
            completed = resume.completed.clone();
            ready.retain(|&i| results[i].is_none());
            rolled_back_before = resume.rolled_back.clone();
            if let Some(why) = &resume.stopped {
                stopping = Some(why.clone());
            }
        }
    }
    let deadline = runbook
        .timeout
        .as_ref()
        .map(|t| tokio::time::Instant::now() + t.value.get());

    loop {
        while stopping.is_none() && running.len() < concurrency {
            let Some(i) = ready.pop_first() else { break };
            let step = &runbook.steps[i];
            if let Some(when) = &step.when {
                match shared.templates.eval(when, &context.value()) {
                    Ok(v) if v.is_true() => {}
                    Ok(_) => {
                        shared.emit(EventKind::StepSkipped {
                            step: step.id.value.clone(),
                            reason: format!("when `{}` is false", when.value),
                        });
                        let outcome = skipped();
                        context.set_step(&step.id, outcome.value());
                        results[i] = Some(outcome);
                        release(&dag, i, &mut pending, &mut ready);
                        continue;
                    }
                    Err(e) => {
                        let outcome = Outcome {
                            status: Status::Failed,
                            message: Some(format!(
                                "cannot evaluate when: {}",
                                crate::template::error_text(&e)
                            )),
                            ..skipped()
                        };
                        finished(&shared, &step.id, &outcome);
                        results[i] = Some(outcome);
                        stopping = Some(format!("step `{}` failed", step.id.value));
                        break;
                    }
                }
            }
            interrupts.track(|u| {
                u.running.insert(step.id.value.clone());
            });
            let shared = shared.clone();
            let snapshot = context.clone();
            running.spawn(async move {
                let step = &shared.runbook.steps[i];
                let render = |r: &Renderer, v: &minijinja::Value| r.step(step, v);
                let spec = Spec {
                    id: &step.id,
                    policy: Policy::resolve(
                        step.retry.as_ref(),
                        shared.runbook.defaults.retry.as_ref(),
                    ),
                    timeout: step_timeout(&shared.runbook, i),
                    until: step.until.as_ref().map(|u| u.as_str()),
                    outputs: Some(&step.outputs),
                    rollback: false,
                    render: &render,
                };
                let outcome = attempt::run(&shared, &spec, &snapshot).await;
                (i, outcome)
            });
        }
        if running.is_empty() {
            break;
        }
        let run_deadline = async {
            match deadline {
                Some(d) => tokio::time::sleep_until(d).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            joined = running.join_next() => {
                let Some(Ok((i, outcome))) = joined else { continue };
                let step = &runbook.steps[i];
                interrupts.track(|u| {
                    u.running.remove(step.id.as_str());
                });
                finished(&shared, &step.id, &outcome);
                context.set_step(&step.id, outcome.value());
                match outcome.status {
                    Status::Succeeded => {
                        completed.push(i);
                        release(&dag, i, &mut pending, &mut ready);
                    }
                    Status::Failed if step.continues_on_failure() => {
                        release(&dag, i, &mut pending, &mut ready);
                    }
                    _ => {
                        if stopping.is_none() {
                            stopping = Some(format!("step `{}` failed", step.id.value));
                        }
                    }
                }
                results[i] = Some(outcome);
            }
            () = run_deadline, if stopping.is_none() => {
                stopping = Some(format!(
                    "the run timed out after {}",
                    runbook.timeout.as_ref().map(|t| t.value.to_string()).unwrap_or_default()
                ));
                shared.cancel.cancel();
            }
            () = interrupts.next(), if !interrupted => {
                interrupted = true;
                stopping = Some("interrupted".to_owned());
                shared.cancel.cancel();
            }
        }
    }

    let mut rollback_results = Vec::new();
    let mut not_rolled_back = Vec::new();
    let mut past_no_return = false;
    let mut rollback_failed = false;
    if stopping.is_some() {
        let plan = crate::rollback::plan(&runbook, &dag, &completed);
        past_no_return = !plan.past_no_return.is_empty();
        if options.no_rollback {
            for &i in &plan.actions {
                let id = runbook.steps[i].id.value.clone();
                shared.emit(EventKind::NotRolledBack {
                    step: id.clone(),
                    reason: "--no-rollback: left for inspection".to_owned(),
                });
                not_rolled_back.push((id, "--no-rollback".to_owned()));
            }
        } else if !plan.actions.is_empty() {
            shared.emit(EventKind::RollbackStarted {
                steps: plan
                    .actions
                    .iter()
                    .map(|&i| runbook.steps[i].id.value.clone())
                    .collect(),
            });
            // Rollback runs even after an interrupt: a fresh token, so only a hard exit stops it.
            let rollback_shared = Arc::new(Shared {
                runbook: runbook.clone(),
                templates: Templates::new(),
                sink: shared.sink.clone(),
                cancel: CancellationToken::new(),
                groups: shared.groups.clone(),
                approvals: shared.approvals.clone(),
                prompt_lock: tokio::sync::Mutex::new(()),
                // Rollback opens its own sessions: those of the run may be mid-query.
                pool: crate::steps::sql::Pool::default(),
            });
            interrupts.track(|u| {
                u.rollback_left = plan
                    .actions
                    .iter()
                    .map(|&i| runbook.steps[i].id.value.clone())
                    .collect();
            });
            for &i in &plan.actions {
                if rolled_back_before.contains(&i) {
                    continue;
                }
                let step = &runbook.steps[i];
                interrupts.track(|u| {
                    u.rollback_left.retain(|id| id != step.id.as_str());
                    u.running.insert(format!("rollback of {}", step.id.value));
                });
                let Some(action) = &step.rollback else {
                    continue;
                };
                let render = |r: &Renderer, v: &minijinja::Value| {
                    r.rollback(step, v).unwrap_or_else(|| {
                        Err(crate::render::RenderError {
                            field: "rollback".to_owned(),
                            message: "no rollback".to_owned(),
                        })
                    })
                };
                let spec = Spec {
                    id: &step.id,
                    policy: Policy::resolve(action.retry.as_ref(), None),
                    timeout: action
                        .timeout
                        .as_ref()
                        .or(runbook.defaults.timeout.as_ref())
                        .map(|t| t.value.get()),
                    until: None,
                    outputs: None,
                    rollback: true,
                    render: &render,
                };
                let outcome = attempt::run(&rollback_shared, &spec, &context).await;
                interrupts.track(|u| {
                    u.running.remove(&format!("rollback of {}", step.id.value));
                });
                if outcome.status != Status::Succeeded {
                    rollback_failed = true;
                }
                rollback_shared.emit(EventKind::RollbackStepFinished {
                    step: step.id.value.clone(),
                    status: outcome.status,
                    message: outcome.message.clone(),
                });
                rollback_results.push((step.id.value.clone(), outcome.status));
            }
        }
        for (i, reason) in &plan.kept {
            let id = runbook.steps[*i].id.value.clone();
            shared.emit(EventKind::NotRolledBack {
                step: id.clone(),
                reason: reason.to_string(),
            });
            not_rolled_back.push((id, reason.to_string()));
        }
    }

    let (exit_code, status) = match &stopping {
        None => {
            let tolerated = results
                .iter()
                .filter(|r| r.as_ref().is_some_and(|o| o.status == Status::Failed))
                .count();
            if tolerated == 0 {
                (exit::OK, "succeeded".to_owned())
            } else {
                (
                    exit::OK,
                    format!("succeeded with {tolerated} tolerated failure(s)"),
                )
            }
        }
        Some(why) if past_no_return => (
            exit::NEEDS_PERSON,
            format!("{why}; stopped past a point of no return: a forward fix is needed"),
        ),
        Some(why) if rollback_failed => (
            exit::NEEDS_PERSON,
            format!("{why}; rollback incomplete: a person must finish it"),
        ),
        Some(why) if interrupted => (exit::INTERRUPTED, format!("{why}; rolled back")),
        Some(why) if options.no_rollback => (
            exit::FAILED,
            format!("{why}; not rolled back (--no-rollback)"),
        ),
        Some(why) if rollback_results.is_empty() => {
            (exit::FAILED, format!("{why}; nothing to roll back"))
        }
        Some(why) => (exit::FAILED, format!("{why}; rolled back")),
    };
    let duration = started.elapsed();
    shared.emit(EventKind::RunFinished {
        status: status.clone(),
        exit_code,
        duration_ms: duration.as_millis() as u64,
    });
    Summary {
        exit_code,
        status,
        steps: runbook
            .steps
            .iter()
            .zip(&results)
            .map(|(s, r)| StepSummary {
                id: s.id.value.clone(),
                status: r.as_ref().map(|o| o.status),
                attempts: r.as_ref().map_or(0, |o| o.attempts),
                duration: r.as_ref().map_or(Duration::ZERO, |o| o.duration),
            })
            .collect(),
        rollback: rollback_results,
        not_rolled_back,
        duration,
    }
}

fn skipped() -> Outcome {
    Outcome {
        status: Status::Skipped,
        attempts: 0,
        duration: Duration::ZERO,
        exit_code: None,
        stdout: String::new(),
        stderr: String::new(),
        outputs: Default::default(),
        message: None,
        sql: None,
        messages: Vec::new(),
        restored: None,
    }
}

fn finished(shared: &Shared, id: &str, outcome: &Outcome) {
    shared.emit(EventKind::StepFinished {
        step: id.to_owned(),
        status: outcome.status,
        attempts: outcome.attempts,
        duration_ms: outcome.duration.as_millis() as u64,
        exit_code: outcome.exit_code,
        message: outcome.message.clone(),
        stdout: outcome.stdout.clone(),
        stderr: outcome.stderr.clone(),
        data: Some(outcome.data()),
    });
}

fn release(dag: &Dag, step: usize, pending: &mut [usize], ready: &mut BTreeSet<usize>) {
    for child in dag.children(step) {
        // A journal that names a step twice must not wrap the count around.
        if pending[child] == 0 {
            continue;
        }
        pending[child] -= 1;
        if pending[child] == 0 {
            ready.insert(child);
        }
    }
}

/// The time limit of one attempt of step `i`.
pub fn step_timeout(runbook: &Runbook, i: usize) -> Option<Duration> {
    let step = &runbook.steps[i];
    if step.is_approval() {
        // A person may take longer than a command: only the step's own timeout applies.
        return step.timeout.as_ref().map(|t| t.value.get());
    }
    step.timeout
        .as_ref()
        .or(runbook.defaults.timeout.as_ref())
        .map(|t| t.value.get())
}

/// Ctrl-C and SIGTERM: the first stops the run and rolls back; the second kills every running
/// command's process group and exits at once with 130, saying what was left undone.
pub struct Interrupts {
    rx: tokio::sync::mpsc::UnboundedReceiver<()>,
    groups: Groups,
    undone: Arc<std::sync::Mutex<Undone>>,
}

impl Interrupts {
    pub fn listen(sink: Arc<dyn Sink>) -> Self {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let groups = Groups::default();
        let undone: Arc<std::sync::Mutex<Undone>> = Arc::default();
        let (to_kill, left) = (groups.clone(), undone.clone());
        tokio::spawn(async move {
            use tokio::signal::unix::{SignalKind, signal};
            let (Ok(mut int), Ok(mut term)) = (
                signal(SignalKind::interrupt()),
                signal(SignalKind::terminate()),
            ) else {
                return;
            };
            let mut count = 0;
            loop {
                tokio::select! {
                    _ = int.recv() => {}
                    _ = term.recv() => {}
                }
                count += 1;
                if count == 1 {
                    eprintln!(
                        "interrupted: stopping and rolling back; interrupt again to exit at once"
                    );
                    let _ = tx.send(());
                    continue;
                }
                to_kill.kill_all();
                let status = left
                    .lock()
                    .map(|u| u.describe())
                    .unwrap_or_else(|_| "interrupted twice: exited at once".to_owned());
                eprintln!("{status}");
                sink.emit(&event(EventKind::RunFinished {
                    status,
                    exit_code: exit::INTERRUPTED,
                    duration_ms: 0,
                }));
                std::process::exit(i32::from(exit::INTERRUPTED));
            }
        });
        Self { rx, groups, undone }
    }

    /// No signal handling (tests of the library).
    pub fn none() -> Self {
        let (_tx, rx) = tokio::sync::mpsc::unbounded_channel();
        Self {
            rx,
            groups: Groups::default(),
            undone: Arc::default(),
        }
    }

    async fn next(&mut self) {
        if self.rx.recv().await.is_none() {
            std::future::pending::<()>().await;
        }
    }

    fn track(&self, change: impl FnOnce(&mut Undone)) {
        if let Ok(mut undone) = self.undone.lock() {
            change(&mut undone);
        }
    }
}

/// What a hard exit leaves undone: said when it happens, so the operator knows where to look.
#[derive(Debug, Default)]
pub struct Undone {
    running: BTreeSet<String>,
    rollback_left: Vec<String>,
}

impl Undone {
    fn describe(&self) -> String {
        let list = |v: Vec<&String>| {
            if v.is_empty() {
                "none".to_owned()
            } else {
                v.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
            }
        };
        format!(
            "interrupted twice: exited at once. Steps killed while running: {}. Rollbacks not run: {}. Check the state of the system by hand",
            list(self.running.iter().collect()),
            list(self.rollback_left.iter().collect()),
        )
    }
}
