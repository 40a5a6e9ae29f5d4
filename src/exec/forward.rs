//! The forward part of a run: the scheduler driving real steps. Ready steps start in
//! declaration order up to the concurrency limit; a step whose `when` is false is skipped; a
//! failure, the run's timeout or an interrupt stops new starts, and in-flight steps finish their
//! current attempt without starting another (or are cancelled).

use std::sync::Arc;

use tokio::task::JoinSet;

use super::attempt::{self, Outcome, Spec};
use super::each::{self, Looped};
use super::event::{EventKind, Status};
use super::{Interrupts, Resume, Shared, finished};
use crate::context::Context;
use crate::dag::Dag;
use crate::outcome::Stop;
use crate::render::Renderer;
use crate::retry::Policy;
use crate::schedule::{Ended, Scheduler};

/// Where the forward part left the run.
pub(super) struct Forward {
    /// How each step ended (`None`: it never started).
    pub results: Vec<Option<Outcome>>,
    /// The instances of each `for_each` step that started.
    pub loops: Vec<Option<Looped>>,
    /// Completed steps in completion order: what a rollback undoes.
    pub completed: Vec<usize>,
    pub stop: Option<Stop>,
    pub interrupted: bool,
}

/// How a step's end counts for scheduling.
fn ended(shared: &Shared, i: usize, status: Status) -> Ended {
    match status {
        Status::Succeeded => Ended::Completed,
        Status::Skipped => Ended::Skipped,
        Status::Failed if shared.runbook.steps[i].continues_on_failure() => Ended::Tolerated,
        Status::Failed | Status::Cancelled => Ended::Failed,
    }
}

/// What `when` says about starting step `i`.
enum Gate {
    Run,
    Skip(String),
    Fail(String),
}

fn gate(shared: &Shared, i: usize, context: &Context) -> Gate {
    let Some(when) = &shared.runbook.steps[i].when else {
        return Gate::Run;
    };
    match shared.templates.eval(when, &context.value()) {
        Ok(v) if v.is_true() => Gate::Run,
        Ok(_) => Gate::Skip(format!("when `{}` is false", when.value)),
        Err(e) => Gate::Fail(format!(
            "cannot evaluate when: {}",
            crate::template::error_text(&e)
        )),
    }
}

/// The attempts of step `i` under `id` (its own, or one of its instances'): its action,
/// retry, timeout, `until` and `outputs`.
pub(super) async fn attempts(shared: &Shared, i: usize, id: &str, context: &Context) -> Outcome {
    let step = &shared.runbook.steps[i];
    let render = |r: &Renderer, v: &minijinja::Value| r.step(step, v);
    let spec = Spec {
        id,
        policy: Policy::resolve(step.retry.as_deref(), shared.runbook.default_retry(step)),
        timeout: shared.runbook.attempt_timeout(step),
        until: step.until.as_ref().map(|u| u.as_str()),
        outputs: Some(&step.outputs),
        rollback: false,
        render: &render,
    };
    attempt::run(shared, &spec, context).await
}

pub(super) async fn run(
    shared: &Arc<Shared>,
    dag: &Dag,
    concurrency: usize,
    resume: Option<Resume>,
    context: &mut Context,
    interrupts: &mut Interrupts,
) -> Forward {
    let runbook = &shared.runbook;
    let n = runbook.steps.len();
    let mut scheduler = Scheduler::new(dag, concurrency);
    let mut results: Vec<Option<Outcome>> = vec![None; n];
    let mut loops: Vec<Option<Looped>> = vec![None; n];
    let mut prior: Vec<(String, Outcome)> = Vec::new();
    if let Some(resume) = resume {
        prior = resume.instances;
        for (i, outcome) in resume.done {
            match each::restored(shared, i, context, &prior) {
                Some(looped) => {
                    context.set_step(&runbook.steps[i].id, looped.value(&outcome));
                    loops[i] = Some(looped);
                }
                None => context.set_step(&runbook.steps[i].id, outcome.value()),
            }
            scheduler.restore(i, ended(shared, i, outcome.status));
            results[i] = Some(outcome);
        }
        if let Some(stop) = resume.stopped {
            scheduler.stop(stop);
            // A loop stopped part-way: its completed items count for the rollback.
            for i in 0..n {
                if results[i].is_none()
                    && let Some(looped) = each::restored(shared, i, context, &prior)
                    && !looped.completed.is_empty()
                {
                    scheduler.partly_completed(i);
                    loops[i] = Some(looped);
                }
            }
        }
    }
    let deadline = runbook
        .timeout
        .as_ref()
        .map(|t| tokio::time::Instant::now() + t.value.get());
    let mut running: JoinSet<(usize, Outcome, Option<Looped>)> = JoinSet::new();
    let mut interrupted = false;
    loop {
        while let Some(i) = scheduler.start_next() {
            let step = &runbook.steps[i];
            // A step from a group reads the group's params and siblings.
            let scoped = crate::scope::for_step(step, &shared.templates, context);
            match gate(shared, i, &scoped) {
                Gate::Run => {}
                Gate::Skip(reason) => {
                    shared.emit(EventKind::StepSkipped {
                        step: step.id.value.clone(),
                        reason,
                    });
                    let outcome = Outcome::empty(Status::Skipped);
                    context.set_step(&step.id, outcome.value());
                    results[i] = Some(outcome);
                    scheduler.ended(i, Ended::Skipped, &step.id);
                    continue;
                }
                Gate::Fail(message) => {
                    let outcome = Outcome {
                        message: Some(message),
                        ..Outcome::empty(Status::Failed)
                    };
                    finished(shared, &step.id, &outcome);
                    results[i] = Some(outcome);
                    scheduler.ended(i, Ended::Failed, &step.id);
                    shared.stopping.cancel();
                    continue;
                }
            }
            let items =
                match crate::items::items(step, &shared.templates, &scoped.value(), &shared.masker)
                {
                    None => None,
                    Some(Ok(items)) => Some(items),
                    Some(Err(e)) => {
                        let outcome = Outcome {
                            message: Some(e.to_string()),
                            ..Outcome::empty(Status::Failed)
                        };
                        finished(shared, &step.id, &outcome);
                        context.set_step(&step.id, outcome.value());
                        let how = ended(shared, i, Status::Failed);
                        results[i] = Some(outcome);
                        scheduler.ended(i, how, &step.id);
                        if how == Ended::Failed {
                            shared.stopping.cancel();
                        }
                        continue;
                    }
                };
            interrupts.track(|u| {
                u.running.insert(step.id.value.clone());
            });
            let shared = shared.clone();
            let snapshot = scoped;
            if let Some(items) = items {
                let prefix = format!("{}[", step.id.value);
                let prior: Vec<(String, Outcome)> = prior
                    .iter()
                    .filter(|(id, _)| id.starts_with(&prefix))
                    .cloned()
                    .collect();
                running.spawn(async move {
                    let (outcome, looped) = each::run(&shared, i, items, prior, &snapshot).await;
                    (i, outcome, Some(looped))
                });
                continue;
            }
            running.spawn(async move {
                let id = &shared.runbook.steps[i].id;
                let outcome = attempts(&shared, i, id, &snapshot).await;
                (i, outcome, None)
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
                let Some(Ok((i, outcome, looped))) = joined else { continue };
                let step = &runbook.steps[i];
                interrupts.track(|u| {
                    u.running.remove(step.id.as_str());
                });
                finished(shared, &step.id, &outcome);
                match &looped {
                    Some(looped) => context.set_step(&step.id, looped.value(&outcome)),
                    None => context.set_step(&step.id, outcome.value()),
                }
                scheduler.ended(i, ended(shared, i, outcome.status), &step.id);
                if let Some(looped) = &looped
                    && outcome.status != Status::Succeeded
                    && !looped.completed.is_empty()
                {
                    // Items that completed did their work: the rollback undoes them.
                    scheduler.partly_completed(i);
                }
                loops[i] = looped;
                if outcome.outputs_failed {
                    scheduler.stop(Stop::OutputsFailed { step: step.id.value.clone() });
                }
                results[i] = Some(outcome);
                if scheduler.stopping().is_some() {
                    // Siblings still polling must not delay the rollback with new attempts.
                    shared.stopping.cancel();
                }
            }
            () = run_deadline, if scheduler.stopping().is_none() => {
                scheduler.stop(Stop::TimedOut {
                    after: runbook.timeout.as_ref().map(|t| t.value.to_string()).unwrap_or_default(),
                });
                shared.stopping.cancel();
                shared.cancel.cancel();
            }
            _ = interrupts.next(), if !interrupted => {
                interrupted = true;
                scheduler.stop(Stop::Interrupted);
                shared.stopping.cancel();
                shared.cancel.cancel();
            }
        }
    }
    let (completed, stop) = scheduler.into_parts();
    Forward {
        results,
        loops,
        completed,
        stop,
        interrupted,
    }
}
