//! A run session: everything between "the operator typed `run`, `resume` or `rollback`" and
//! the run's summary. It checks the runbook, binds params, finds approvals that cannot be
//! asked, reads secrets, takes the run lock, opens the journal, builds the runtime and drives
//! the engine; the command line only supplies the screen and the person to ask ([`Ui`]) and
//! maps the typed result to an exit code.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::bind::ParamError;
use crate::context::RunInfo;
use crate::dag::Dag;
use crate::diagnostic::Problem;
use crate::exec::event::{Sink, event};
use crate::exec::{self, Interrupts, Job, Origin, Summary};
use crate::journal::{Journal, Recorder};
use crate::lock::{Holder, LockError};
use crate::mask::Masker;
use crate::model::Runbook;
use crate::prompt::{Decision, Prompter};
use crate::record::{RecordError, RunRecord};
use crate::report::FileReport;
use crate::resume::ResumeError;
use crate::steps::process_group::Leftover;

/// What the session needs from whoever drives it (the command line).
pub trait Ui {
    /// Where the events of the run are shown (their secret values already masked).
    fn screen(&self, masker: &Masker) -> Arc<dyn Sink>;
    /// Who to ask for approvals and about steps in doubt; `None` without a terminal.
    fn prompter(&self) -> Option<Arc<dyn Prompter>>;
    /// Something the operator should know before the run starts.
    fn notice(&self, notice: &Notice);
}

/// What to do.
#[derive(Clone, Debug)]
pub enum Start {
    /// A new run of a runbook file.
    New {
        file: PathBuf,
        pairs: Vec<String>,
        params_file: Option<PathBuf>,
        no_rollback: bool,
    },
    /// `resume`: continue a stopped run from its journal.
    Resume {
        run_id: Option<String>,
        assume: Vec<String>,
        allow_changed: bool,
    },
    /// `rollback`: undo a run.
    Rollback {
        run_id: Option<String>,
        assume: Vec<String>,
        allow_changed: bool,
    },
}

/// How the run executes.
#[derive(Clone, Debug)]
pub struct Settings {
    pub concurrency: usize,
    pub approve: Vec<String>,
    pub approve_all: bool,
    pub state: PathBuf,
}

/// Told to the operator before the run starts.
#[derive(Clone, Debug)]
pub enum Notice {
    /// Keys of a params file that are not params of this runbook.
    IgnoredParams(Vec<String>),
    /// A lock whose process is gone was taken over.
    TookOverLock(Holder),
    /// An estate lock whose process is gone was taken over.
    TookOverEstateLock(Box<crate::estate_lock::EstateHolder>),
    /// A process group left running by a step in doubt was ended.
    EndedLeftover { step: String, pgid: u32 },
    /// A process group recorded by a step in doubt that resume may not signal.
    OtherHostLeftover {
        step: String,
        pgid: u32,
        host: String,
    },
}

impl std::fmt::Display for Notice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Notice::IgnoredParams(keys) => write!(
                f,
                "not params of this runbook, ignored: {}",
                keys.join(", ")
            ),
            Notice::TookOverLock(stale) => write!(
                f,
                "took over the lock left by run {} (pid {} on {}, started {}), whose process is gone",
                stale.run_id, stale.pid, stale.host, stale.started
            ),
            Notice::TookOverEstateLock(stale) => write!(
                f,
                "took over estate lock `{}` left by run {} of `{}` (pid {} on {}, started {}), whose process is gone",
                stale.key,
                stale.holder.run_id,
                stale.runbook,
                stale.holder.pid,
                stale.holder.host,
                stale.holder.started
            ),
            Notice::EndedLeftover { step, pgid } => {
                write!(f, "ended process group {pgid} left running by `{step}`")
            }
            Notice::OtherHostLeftover { step, pgid, host } => write!(
                f,
                "`{step}` ran on host {host} (process group {pgid}): not signalled from here; check that host before deciding about it"
            ),
        }
    }
}

/// Why a session ran nothing (or, for `Runtime`, could not go on).
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// The runbook has errors; the report says which.
    #[error("the runbook has errors")]
    Invalid(Box<FileReport>),
    #[error("cannot read `{path}`: {reason}")]
    Unreadable { path: String, reason: String },
    #[error("invalid parameters:{}", list(.0))]
    Params(Vec<ParamError>),
    #[error(
        "approvals needed and no terminal to ask on: {}\n  approve them up front with --approve STEP (repeatable) or --approve-all; nothing was run",
        .0.join(", ")
    )]
    ApprovalsMissing(Vec<String>),
    #[error("--approve {step}: {why}; {help}; nothing was run")]
    NotAnApproval {
        step: String,
        /// "no step `x`" or "`x` is not an approval step".
        why: String,
        help: String,
    },
    #[error("secrets could not be read; nothing was run:{}", list(.0))]
    Secrets(Vec<ParamError>),
    #[error("{0}; nothing was run")]
    EnvFile(#[from] crate::env_file::EnvFileError),
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error(transparent)]
    EstateLock(#[from] crate::estate_lock::EstateLockError),
    #[error(
        "run `{run}` is still running (pid {} on {}, started {}); wait for it to end, or stop that process first (Ctrl-C in its terminal, or `kill {}`); nothing was done",
        holder.pid, holder.host, holder.started, holder.pid
    )]
    Live { run: String, holder: Holder },
    #[error("cannot open the run journal under `{state}`: {reason}; nothing was run")]
    Journal { state: String, reason: String },
    #[error(transparent)]
    Record(#[from] RecordError),
    #[error("{0}; nothing was run")]
    Resume(ResumeError),
    #[error("--assume: {0}")]
    Assume(ResumeError),
    #[error("no decision for `{0}`; nothing was run")]
    NoDecision(String),
    #[error("cannot start the runtime: {0}")]
    Runtime(String),
}

fn list(items: &[ParamError]) -> String {
    items.iter().map(|e| format!("\n  - {e}")).collect()
}

/// How a session ended.
pub struct Finished {
    pub run_id: String,
    pub summary: Summary,
    /// Masks the secrets of the run, for whatever is printed after it.
    pub masker: Masker,
}

/// Loads and validates one file: its report, and the runbook with its graph when it loaded.
pub fn check(path: &Path) -> (FileReport, Option<(Runbook, Dag)>) {
    check_with(path, &mut crate::include::Groups::default())
}

/// [`check`], reading each group file once however many files include it.
pub fn check_with(
    path: &Path,
    groups: &mut crate::include::Groups,
) -> (FileReport, Option<(Runbook, Dag)>) {
    let loaded = crate::load::load(path);
    let mut problems = loaded.problems;
    let mut included = Vec::new();
    let checked = loaded.runbook.map(|runbook| {
        // Groups expand into the flat list of steps; the file is validated with stand-ins
        // for the groups' steps, each group in its own file.
        let expanded = groups.expand(runbook, &loaded.path, &loaded.source, &mut problems);
        let dag = crate::include::check(expanded.view(), &loaded.source, &mut problems);
        included = expanded.included;
        (expanded.runbook, dag)
    });
    // Report in file order; problems without a place (unreadable file) come first.
    problems.sort_by_key(|p| p.primary_span().map(|s| s.offset()));
    (
        FileReport {
            path: loaded.path,
            source: loaded.source,
            problems,
            included_from: Vec::new(),
            included,
        },
        checked,
    )
}

/// A runbook without errors, or its report.
pub fn checked(path: &Path) -> Result<(Runbook, Dag), SessionError> {
    let (mut report, checked) = check(path);
    if let Some((runbook, _)) = &checked
        && runbook.group.is_some()
    {
        report.problems.push(Problem::GroupNotRunnable {
            path: report.path.clone(),
            span: runbook.version.span.into(),
        });
    }
    match checked {
        Some(checked) if report.errors() == 0 => Ok(checked),
        _ => Err(SessionError::Invalid(Box::new(report))),
    }
}

/// A run id that sorts by time: `20261126T094427-3fa2`.
pub fn new_run_id() -> String {
    let now = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    let compact: String = now
        .chars()
        .filter(|c| c.is_ascii_digit() || *c == 'T')
        .collect();
    format!("{compact}-{:04x}", fastrand::u16(..))
}

/// The job a session runs, before the parts every session shares.
struct Prepared {
    runbook: Runbook,
    dag: Dag,
    params: serde_json::Map<String, serde_json::Value>,
    run: RunInfo,
    origin: Option<Origin>,
    resume: Option<exec::Resume>,
    no_rollback: bool,
    /// The runbook file (to say where a lock key that cannot be rendered is written).
    file: PathBuf,
}

/// Runs a session to its end.
pub fn run(start: Start, settings: Settings, ui: &dyn Ui) -> Result<Finished, SessionError> {
    let prompter = ui.prompter();
    let rollback_only = matches!(start, Start::Rollback { .. });
    let prepared = match start {
        Start::New {
            file,
            pairs,
            params_file,
            no_rollback,
        } => prepare_new(&file, &pairs, params_file.as_deref(), no_rollback, ui)?,
        Start::Resume {
            run_id,
            assume,
            allow_changed,
        }
        | Start::Rollback {
            run_id,
            assume,
            allow_changed,
        } => prepare_continue(
            &settings.state,
            run_id.as_deref(),
            &assume,
            allow_changed,
            rollback_only,
            prompter.as_deref(),
            ui,
        )?,
    };
    execute(prepared, settings, prompter, ui)
}

fn prepare_new(
    file: &Path,
    pairs: &[String],
    params_file: Option<&Path>,
    no_rollback: bool,
    ui: &dyn Ui,
) -> Result<Prepared, SessionError> {
    let (runbook, dag) = checked(file)?;
    let bound =
        crate::bind::bind(&runbook, pairs, params_file, false).map_err(SessionError::Params)?;
    if !bound.ignored.is_empty() {
        ui.notice(&Notice::IgnoredParams(bound.ignored.clone()));
    }
    let bytes = std::fs::read(file).map_err(|e| SessionError::Unreadable {
        path: file.display().to_string(),
        reason: e.to_string(),
    })?;
    let path = std::fs::canonicalize(file).unwrap_or_else(|_| file.to_path_buf());
    let dir = runbook.dir.display().to_string();
    let hash = crate::journal::hash(&crate::include::fingerprint(&bytes, &runbook));
    Ok(Prepared {
        runbook,
        dag,
        params: bound.values,
        run: RunInfo {
            id: new_run_id(),
            dry_run: false,
            started_at: crate::exec::event::now(),
            dir,
            outcome: None,
        },
        origin: Some(Origin {
            path: path.display().to_string(),
            hash,
        }),
        resume: None,
        no_rollback,
        file: file.to_path_buf(),
    })
}

/// `resume` and `rollback`: rebuild the run from its journal.
fn prepare_continue(
    state: &Path,
    run_id: Option<&str>,
    assume: &[String],
    allow_changed: bool,
    rollback_only: bool,
    prompter: Option<&dyn Prompter>,
    ui: &dyn Ui,
) -> Result<Prepared, SessionError> {
    let record = crate::record::load_or_last(state, run_id)?;
    // Before anything else (ending leftovers would kill the live run's steps).
    if let Some(holder) = record.live.clone() {
        return Err(SessionError::Live {
            run: record.run_id.clone(),
            holder,
        });
    }
    let context = record
        .context
        .clone()
        .ok_or_else(|| RecordError::NoContext(record.run_id.clone()))?;
    let file = PathBuf::from(&context.path);
    let (runbook, dag) = checked(&file)?;
    let unchanged = std::fs::read(&file).is_ok_and(|b| {
        crate::journal::hash(&crate::include::fingerprint(&b, &runbook)) == context.hash
    });
    if !unchanged && !allow_changed {
        return Err(SessionError::Resume(ResumeError::Changed {
            run: record.run_id.clone(),
            path: context.path.clone(),
        }));
    }
    let mut decisions = crate::resume::parse_assume(assume).map_err(SessionError::Assume)?;
    for (step, group, leftover) in crate::resume::end_leftovers(&record) {
        let pgid = group.pgid;
        match leftover {
            Leftover::Ended => ui.notice(&Notice::EndedLeftover { step, pgid }),
            Leftover::OtherHost => ui.notice(&Notice::OtherHostLeftover {
                step,
                pgid,
                host: group.host,
            }),
            Leftover::Gone | Leftover::Unverifiable => {}
        }
    }
    let resume = decide(&record, &runbook, &mut decisions, rollback_only, prompter)?;
    let dir = runbook.dir.display().to_string();
    Ok(Prepared {
        runbook,
        dag,
        params: context.params.clone(),
        run: RunInfo {
            id: record.run_id.clone(),
            dry_run: false,
            started_at: record.started_at.clone(),
            dir,
            outcome: None,
        },
        origin: None,
        resume: Some(resume),
        no_rollback: context.no_rollback && !rollback_only,
        file,
    })
}

/// Rebuilds where the run stands, asking about steps in doubt when a person can answer.
fn decide(
    record: &RunRecord,
    runbook: &Runbook,
    decisions: &mut HashMap<String, Decision>,
    rollback_only: bool,
    prompter: Option<&dyn Prompter>,
) -> Result<exec::Resume, SessionError> {
    loop {
        match (
            crate::resume::rebuild(record, runbook, decisions, rollback_only),
            prompter,
        ) {
            (Ok(resume), _) => return Ok(resume),
            (Err(ResumeError::InDoubt(steps)), Some(prompter)) => {
                for step in steps {
                    let decision = prompter
                        .in_doubt(&step)
                        .ok_or_else(|| SessionError::NoDecision(step.clone()))?;
                    decisions.insert(step, decision);
                }
            }
            (Err(e), _) => return Err(SessionError::Resume(e)),
        }
    }
}

/// Every `--approve STEP` names a step that asks for an approval (its own, or in its
/// rollback): a typo must not leave the real approval unasked for, or approve nothing.
fn check_approve(runbook: &Runbook, given: &[String]) -> Result<(), SessionError> {
    let approvals: Vec<&str> = runbook
        .steps
        .iter()
        .chain(&runbook.finally)
        .filter(|s| s.is_approval() || s.rollback.as_ref().is_some_and(|r| r.is_approval()))
        .map(|s| s.id.as_str())
        .collect();
    let Some(step) = given.iter().find(|g| !approvals.contains(&g.as_str())) else {
        return Ok(());
    };
    let why = if runbook
        .steps
        .iter()
        .chain(&runbook.finally)
        .any(|s| s.id.as_str() == step)
    {
        format!("`{step}` is not an approval step")
    } else {
        format!("no step `{step}`")
    };
    let help = crate::diagnostic::suggestion(step, approvals.iter().copied(), || {
        if approvals.is_empty() {
            "this runbook has no approval steps".to_owned()
        } else {
            format!(
                "its approval steps are {}",
                crate::diagnostic::list(approvals.iter().copied())
            )
        }
    });
    Err(SessionError::NotAnApproval {
        step: step.clone(),
        why,
        help,
    })
}

fn execute(
    prepared: Prepared,
    settings: Settings,
    prompter: Option<Arc<dyn Prompter>>,
    ui: &dyn Ui,
) -> Result<Finished, SessionError> {
    let Prepared {
        runbook,
        dag,
        params,
        run,
        origin,
        resume,
        no_rollback,
        file,
    } = prepared;
    let options = exec::Options {
        concurrency: settings.concurrency,
        approvals: crate::steps::approval::Approvals {
            given: settings.approve,
            all: settings.approve_all,
            prompter,
            ballot: Some(crate::steps::quorum::Ballot {
                state: settings.state.clone(),
                run_id: run.id.clone(),
            }),
        },
        no_rollback,
        stand_in: None,
    };
    check_approve(&runbook, &options.approvals.given)?;
    let missing = exec::missing_approvals(&runbook, &options.approvals);
    if !missing.is_empty() {
        return Err(SessionError::ApprovalsMissing(missing));
    }
    let secrets = crate::bind::read_secrets(&runbook).map_err(SessionError::Secrets)?;
    let env = crate::env_file::read(&runbook)?;
    // The commands' supervisor starts while the run takes its locks and opens its journal.
    crate::steps::supervisor_client::prepare();
    let (_lock, stale) =
        crate::lock::acquire(&settings.state, &runbook.name, &run.id, &run.started_at)?;
    if let Some(stale) = stale {
        ui.notice(&Notice::TookOverLock(stale));
    }
    let keys = crate::estate_lock::keys(&runbook, &params, &run, &file)?;
    let (_estate_locks, stale) = crate::estate_lock::acquire(
        &settings.state,
        &keys,
        &runbook.name,
        &run.id,
        &run.started_at,
    )?;
    for stale in stale {
        ui.notice(&Notice::TookOverEstateLock(Box::new(stale)));
    }
    let masker = Masker::new(
        secrets
            .iter()
            .map(|(_, v)| v.as_str())
            .chain(env.secret_values()),
    );
    let journal = Journal::open(&settings.state, &run.id).map_err(|e| SessionError::Journal {
        state: settings.state.display().to_string(),
        reason: e.to_string(),
    })?;
    // Secrets are masked in each event's values before the journal or the screen sees it.
    let recorder = Arc::new(Recorder::new(journal, ui.screen(&masker)));
    let runbook = Arc::new(runbook);
    // Hooks see each event masked, after the journal has it.
    let notifier = Arc::new(exec::notify::Notifier::new(
        hooks(&runbook, &params, &secrets, &env, &run, &masker, &options),
        recorder,
    ));
    let sink: Arc<dyn Sink> = Arc::new(exec::masked::Masked::new(masker.clone(), notifier.clone()));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| SessionError::Runtime(e.to_string()))?;
    crate::steps::sql_messages::install();
    let run_id = run.id.clone();
    let started = std::time::Instant::now();
    let summary = runtime.block_on(async {
        let mut interrupts = Interrupts::listen(sink.clone());
        let hard = interrupts.hard_stop();
        let job = Job {
            runbook,
            dag: Arc::new(dag),
            params,
            secrets,
            env,
            run,
            origin,
            resume,
        };
        tokio::select! {
            summary = exec::run(job, options, sink.clone(), interrupts) => summary,
            status = hard.wait() => {
                let duration = started.elapsed();
                sink.emit(&event(crate::exec::event::EventKind::RunFinished {
                    status: status.clone(),
                    exit_code: crate::exit::INTERRUPTED,
                    duration_ms: duration.as_millis() as u64,
                }));
                Summary::aborted(status, duration)
            }
        }
    });
    // A prompt may still be waiting on the terminal: do not wait for it.
    // The hooks of the run's last events (`finished`) end before the run does, each within
    // its timeout; after a second interrupt nothing more is waited for.
    if !summary.aborted {
        runtime.block_on(notifier.drain());
    }
    runtime.shutdown_background();
    Ok(Finished {
        run_id,
        summary,
        masker,
    })
}

/// What the run's `notify` hooks need: their templates read params, secrets, env and run.
fn hooks(
    runbook: &Arc<Runbook>,
    params: &serde_json::Map<String, serde_json::Value>,
    secrets: &[(String, String)],
    env: &crate::env_file::EnvValues,
    run: &RunInfo,
    masker: &Masker,
    options: &exec::Options,
) -> exec::notify::Hooks {
    let mut context = crate::context::Context::new(params, secrets, run);
    context.set_env(env);
    exec::notify::Hooks {
        runbook: runbook.clone(),
        context: context.value(),
        masker: masker.clone(),
        hidden: crate::bind::secret_variables(runbook),
        approvals: options.approvals.clone(),
        ssh: crate::steps::ssh::Ssh::default(),
    }
}
