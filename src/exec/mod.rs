//! Executes a runbook: the steps forward ([`forward`], the scheduler driving real steps), then
//! on a stop the rollback of completed steps ([`undo`]), then the outcome
//! ([`crate::outcome::conclude`]). The engine only emits events; it never prints or exits.

pub mod attempt;
mod each;
pub mod event;
mod finally;
mod forward;
pub mod interrupts;
pub mod masked;
pub mod notify;
pub mod stand_in;
mod undo;

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::context::{Context, RunInfo};
use crate::dag::Dag;
use crate::mask::{MIN_SEARCH_LEN, Masker};
use crate::model::Runbook;
use crate::outcome::{Stop, conclude};
use crate::steps::approval::Approvals;
use crate::steps::command::Groups;
use crate::template::Templates;
use attempt::Outcome;
use event::{EventKind, Sink, Status, event};
pub use interrupts::Interrupts;

/// How to run.
#[derive(Clone, Debug)]
pub struct Options {
    pub concurrency: usize,
    pub approvals: Approvals,
    pub no_rollback: bool,
    /// Answers actions instead of running them (`runbook test`); `None` for a real run.
    pub stand_in: Option<Arc<dyn stand_in::StandIn>>,
}

/// Everything the tasks of one run share.
pub struct Shared {
    pub runbook: Arc<Runbook>,
    pub templates: Templates,
    pub sink: Arc<dyn Sink>,
    pub cancel: CancellationToken,
    /// The run is stopping (a step failed for good, or the run timed out or was interrupted):
    /// running steps finish their current attempt but make no new one. Unlike `cancel`, it
    /// does not end what is running.
    pub stopping: CancellationToken,
    pub groups: Groups,
    pub approvals: Approvals,
    pub prompt_lock: tokio::sync::Mutex<()>,
    pub pool: crate::steps::sql::Pool,
    /// The run's secrets, for what the engine builds from values (summaries, prompts).
    pub masker: Masker,
    /// Environment variables secrets are read from: commands do not inherit them.
    pub hidden_env: Vec<String>,
    /// Answers actions instead of running them (`runbook test`); `None` for a real run.
    pub stand_in: Option<Arc<dyn stand_in::StandIn>>,
    /// The ssh connections to targets, one per destination, closed when the run ends.
    pub ssh: crate::steps::ssh::Ssh,
    /// The programs of commands, looked up through `PATH` once per run.
    pub programs: crate::program_path::ProgramPath,
}

impl Shared {
    pub(crate) fn new(
        runbook: Arc<Runbook>,
        sink: Arc<dyn Sink>,
        groups: Groups,
        approvals: Approvals,
        masker: Masker,
        stand_in: Option<Arc<dyn stand_in::StandIn>>,
    ) -> Self {
        Self {
            hidden_env: crate::bind::secret_variables(&runbook),
            runbook,
            templates: Templates::new(),
            sink,
            cancel: CancellationToken::new(),
            stopping: CancellationToken::new(),
            groups,
            approvals,
            prompt_lock: tokio::sync::Mutex::new(()),
            pool: crate::steps::sql::Pool::default(),
            masker,
            stand_in,
            ssh: crate::steps::ssh::Ssh::default(),
            programs: crate::program_path::ProgramPath::from_env(),
        }
    }

    /// What may be shown and journaled of an action: the action rendered with every secret as
    /// `***` (`rendered_masked`), which masks a secret wherever a template put it however
    /// short, then masked as values (a template that computed on a secret, or could not render
    /// with `***`, falls back to the action itself). Summaries are made from it, so a short
    /// secret is masked before the summary shell-quotes it.
    pub fn shown(
        &self,
        action: &crate::render::Action,
        rendered_masked: Option<crate::render::Action>,
    ) -> crate::render::Action {
        masked::mask_action(rendered_masked.as_ref().unwrap_or(action), &self.masker)
    }

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
    /// Ended at once by a second interrupt: steps and rollbacks were left as they were.
    pub aborted: bool,
}

impl Summary {
    /// A run ended at once by a second interrupt.
    pub fn aborted(status: String, duration: Duration) -> Self {
        Self {
            exit_code: crate::exit::INTERRUPTED,
            status,
            steps: Vec::new(),
            rollback: Vec::new(),
            not_rolled_back: Vec::new(),
            duration,
            aborted: true,
        }
    }
}

#[derive(Clone, Debug)]
pub struct StepSummary {
    pub id: String,
    pub status: Option<Status>,
    /// For a `for_each` step: the sum over its items.
    pub attempts: u32,
    pub duration: Duration,
    /// For a `for_each` step: the instances that failed, in list order.
    pub failed_items: Vec<String>,
}

/// Steps with an approval (their own, or in their rollback) that is not given up front; an
/// approval under `when` may never be reached and is asked (or refused) when it is.
pub fn missing_approvals(runbook: &Runbook, approvals: &Approvals) -> Vec<String> {
    if approvals.interactive() || approvals.all {
        return Vec::new();
    }
    runbook
        .steps
        .iter()
        .chain(&runbook.finally)
        .filter(|s| {
            // A multi-party approval is voted with `runbook approve`, not asked here. One under
            // a `when` is a stop for a person that may never come: if it does, the run stops
            // there (not approved), as it does past a point of no return.
            let own = matches!(&s.kind, crate::model::StepKind::Approval(a) if !a.is_multi_party())
                && s.when.is_none();
            own || s.rollback.as_ref().is_some_and(|r| r.is_approval())
        })
        .filter(|s| !approvals.preapproved(&s.id))
        .map(|s| s.id.value.clone())
        .collect()
}

/// The runbook file of a new run and its hash, recorded for `resume`.
#[derive(Clone, Debug)]
pub struct Origin {
    pub path: String,
    pub hash: String,
}

/// What to run: a checked runbook with its values bound.
pub struct Job {
    pub runbook: Arc<Runbook>,
    pub dag: Arc<Dag>,
    pub params: serde_json::Map<String, serde_json::Value>,
    pub secrets: Vec<(String, String)>,
    /// The env file's values.
    pub env: crate::env_file::EnvValues,
    pub run: RunInfo,
    /// Where a new run comes from; `None` for a resumed one.
    pub origin: Option<Origin>,
    /// Where a resumed run picks up.
    pub resume: Option<Resume>,
}

/// The state of a run rebuilt from its journal.
#[derive(Clone, Debug, Default)]
pub struct Resume {
    /// Steps that ended (succeeded, skipped, or failed), in the order they ended.
    pub done: Vec<(usize, Outcome)>,
    /// Why the run is stopping: it had failed or stopped, an in-doubt step is assumed failed,
    /// or `runbook rollback` asks for the rollback.
    pub stopped: Option<Stop>,
    /// Rollback actions that already ran before the crash.
    pub rolled_back: Vec<usize>,
    /// Instances of `for_each` steps that ended before the crash (or were decided done or
    /// failed), in the order they ended: they are not run again.
    pub instances: Vec<(String, Outcome)>,
    /// Rollback actions of instances that already ran before the crash.
    pub rolled_back_instances: Vec<String>,
    /// Decisions about in-doubt steps, for the record.
    pub decisions: Vec<String>,
    /// `runbook rollback`: the run is picked up to be undone.
    pub rollback: bool,
    /// Finally steps that ended before the crash (or were decided done or failed), by id:
    /// they are not run again.
    pub finally_done: Vec<(String, Outcome)>,
}

/// Runs the runbook to its end (rollback included) and returns the summary.
pub async fn run(
    job: Job,
    options: Options,
    sink: Arc<dyn Sink>,
    mut interrupts: Interrupts,
) -> Summary {
    let started = Instant::now();
    let Job {
        runbook,
        dag,
        params,
        secrets,
        env,
        run,
        origin,
        mut resume,
    } = job;
    let shared = Arc::new(Shared::new(
        runbook.clone(),
        sink,
        interrupts.groups.clone(),
        options.approvals.clone(),
        Masker::new(
            secrets
                .iter()
                .map(|(_, v)| v.as_str())
                .chain(env.secret_values()),
        ),
        options.stand_in.clone(),
    ));
    let concurrency = options.concurrency.max(1);
    shared.emit(EventKind::RunStarted {
        journal_version: event::JOURNAL_VERSION,
        run_id: run.id.clone(),
        runbook: runbook.name.value.clone(),
        steps: runbook.steps.len(),
        concurrency,
    });
    match (&resume, origin) {
        (Some(resume), _) => shared.emit(EventKind::RunResumed {
            run_id: run.id.clone(),
            decisions: resume.decisions.clone(),
            rollback: resume.rollback,
        }),
        (None, Some(origin)) => shared.emit(EventKind::RunContext {
            path: origin.path,
            hash: origin.hash,
            params: params.clone(),
            user: crate::steps::approval::user(),
            host: crate::lock::host(),
            pid: std::process::id(),
            no_rollback: options.no_rollback,
            step_ids: runbook.steps.iter().map(|s| s.id.value.clone()).collect(),
            rto_ms: runbook
                .rto
                .as_ref()
                .map(|r| u64::try_from(r.value.get().as_millis()).unwrap_or(u64::MAX)),
            service_restored_at: runbook
                .service_restored_at
                .as_ref()
                .map(|s| s.value.clone())
                .or_else(|| runbook.steps.last().map(|s| s.id.value.clone())),
        }),
        (None, None) => {}
    }
    let short: Vec<String> = secrets
        .iter()
        .filter(|(_, v)| v.chars().count() < MIN_SEARCH_LEN)
        .map(|(name, _)| name.clone())
        .collect();
    if !short.is_empty() {
        shared.emit(EventKind::SecretsNotSearched {
            secrets: short,
            min_length: MIN_SEARCH_LEN,
        });
    }
    let mut context = Context::new(&params, &secrets, &run);
    context.set_env(&env);
    // By id: a `for_each` step's rollbacks are its instances'.
    let rolled_back_before: Vec<String> = resume
        .as_ref()
        .map(|r| {
            r.rolled_back
                .iter()
                .map(|&i| runbook.steps[i].id.value.clone())
                .chain(r.rolled_back_instances.iter().cloned())
                .collect()
        })
        .unwrap_or_default();
    let finally_done = resume
        .as_mut()
        .map(|r| std::mem::take(&mut r.finally_done))
        .unwrap_or_default();
    let forward = forward::run(
        &shared,
        &dag,
        concurrency,
        resume,
        &mut context,
        &mut interrupts,
    )
    .await;
    // A journal that cannot be written ends the run here: a rollback would be a side effect
    // with no record.
    let stop = match shared.sink.broken() {
        Some(reason) => Some(Stop::JournalFailed { reason }),
        None => forward.stop.clone(),
    };
    let undone = match &stop {
        Some(Stop::JournalFailed { .. }) => undo::Undone::default(),
        Some(_) => {
            undo::run(
                &shared,
                &dag,
                &forward,
                &rolled_back_before,
                &context,
                &interrupts,
                options.no_rollback,
            )
            .await
        }
        None => undo::Undone::default(),
    };
    let tolerated = forward
        .results
        .iter()
        .filter(|r| r.as_ref().is_some_and(|o| o.status == Status::Failed))
        .count();
    let mut summary = undone.summary;
    summary.interrupted = forward.interrupted;
    let finally = match &stop {
        // Nothing may start that could not be recorded.
        Some(Stop::JournalFailed { .. }) => finally::Finally::default(),
        _ => {
            let outcome = conclude(stop.as_ref(), tolerated, summary, &[]).outcome();
            finally::run(
                &shared,
                outcome,
                &context,
                &mut interrupts,
                concurrency,
                finally_done,
            )
            .await
        }
    };
    let conclusion = conclude(stop.as_ref(), tolerated, summary, &finally.failed);
    // Nothing runs on a target any more: its connection ends with the run.
    shared.ssh.close().await;
    let duration = started.elapsed();
    shared.emit(EventKind::RunFinished {
        status: conclusion.status.clone(),
        exit_code: conclusion.exit_code,
        duration_ms: duration.as_millis() as u64,
    });
    let step_summary = |id: &str, r: &Option<Outcome>| StepSummary {
        id: id.to_owned(),
        status: r.as_ref().map(|o| o.status),
        attempts: r.as_ref().map_or(0, |o| o.attempts),
        duration: r.as_ref().map_or(Duration::ZERO, |o| o.duration),
        failed_items: Vec::new(),
    };
    Summary {
        exit_code: conclusion.exit_code,
        status: conclusion.status,
        steps: runbook
            .steps
            .iter()
            .zip(&forward.results)
            .zip(&forward.loops)
            .map(|((s, r), looped)| StepSummary {
                failed_items: looped.as_ref().map_or_else(Vec::new, |l| l.failed_ids()),
                ..step_summary(&s.id, r)
            })
            .chain(finally.results.iter().map(|(id, r)| step_summary(id, r)))
            .collect(),
        rollback: undone.results,
        not_rolled_back: undone.not_rolled_back,
        duration,
        aborted: false,
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
        data: Some(outcome.data.clone()),
    });
}
