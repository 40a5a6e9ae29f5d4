//! Command-line interface: the arguments as typed, and the dispatch to the library.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

use crate::report::{self, FileReport};
use crate::{graph, load, validate};

/// Validate, rehearse and execute declarative operational runbooks.
#[derive(Debug, Parser)]
#[command(name = "runbook", version, about, max_term_width = 100)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check runbook files and report every problem at once.
    ///
    /// Exit status: 0 no errors, 1 errors found (or warnings with --deny-warnings),
    /// 2 usage problems.
    Validate {
        /// Runbook files, or directories searched for *.yaml and *.yml (parameter files named
        /// params.*.yaml or *.params.yaml are skipped in directories).
        #[arg(required = true, value_name = "PATH")]
        paths: Vec<PathBuf>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = ValidateFormat::Human)]
        format: ValidateFormat,
        /// Fail (exit 1) on warnings too.
        #[arg(long)]
        deny_warnings: bool,
    },
    /// Draw the step graph of a runbook.
    Graph {
        /// The runbook file.
        file: PathBuf,
        /// Output format.
        #[arg(long, value_enum, default_value_t = GraphFormat::Dot)]
        format: GraphFormat,
    },
    /// Rehearse a runbook: every step rendered, nothing executed.
    ///
    /// Exit status: 0 plan shown, 2 invalid runbook or parameters.
    Plan {
        /// The runbook file.
        file: PathBuf,
        #[command(flatten)]
        params: ParamArgs,
        /// Show what happens when this step fails: completions, then rollbacks, in order.
        #[arg(long, value_name = "STEP")]
        fail_at: Option<String>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = PlanFormat::Human)]
        format: PlanFormat,
    },
    /// Execute a runbook.
    ///
    /// Exit status: 0 success; 1 failed (rolled back, or nothing to roll back); 2 invalid
    /// runbook or arguments; 3 needs a person (rollback incomplete, or stopped past a point of
    /// no return); 130 interrupted.
    Run {
        /// The runbook file.
        file: PathBuf,
        #[command(flatten)]
        params: ParamArgs,
        /// On failure, stop and leave everything as it is for inspection.
        #[arg(long)]
        no_rollback: bool,
        /// Show the plan instead of running (same as `runbook plan`).
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        exec: ExecArgs,
    },
    /// Continue a run that was interrupted or crashed, from its journal.
    ///
    /// Completed steps are not run again. Steps that were running when it died are in doubt:
    /// re-run when `idempotent`, otherwise decide with --assume. Exit codes as for `run`.
    Resume {
        /// The run to continue (see `runbook runs`).
        #[arg(required_unless_present = "last")]
        run_id: Option<String>,
        /// Continue the most recent run.
        #[arg(long, conflicts_with = "run_id")]
        last: bool,
        /// What happened to a step in doubt: STEP=done|failed|rerun (repeatable;
        /// `rollback:STEP=done|rerun` for a rollback action in doubt).
        #[arg(long, value_name = "STEP=DECISION")]
        assume: Vec<String>,
        /// Resume even though the runbook file changed since the run started.
        #[arg(long)]
        allow_changed: bool,
        #[command(flatten)]
        exec: ExecArgs,
    },
    /// Roll back a finished or stopped run (reverse completion order; points of no return
    /// respected), e.g. to undo a successful rehearsal.
    Rollback {
        /// The run to roll back (see `runbook runs`).
        #[arg(required_unless_present = "last")]
        run_id: Option<String>,
        /// Roll back the most recent run.
        #[arg(long, conflicts_with = "run_id")]
        last: bool,
        /// Roll back even though the runbook file changed since the run.
        #[arg(long)]
        allow_changed: bool,
        #[command(flatten)]
        exec: ExecArgs,
    },
    /// List the runs in the state directory.
    Runs {
        #[arg(long, value_enum, default_value_t = RunsFormat::Human)]
        format: RunsFormat,
        #[arg(long, env = "RUNBOOK_STATE_DIR", value_name = "DIR")]
        state_dir: Option<PathBuf>,
    },
    /// Show what a run did: the evidence of a rehearsal or a real failover.
    Show {
        /// The run (see `runbook runs`).
        #[arg(required_unless_present = "last")]
        run_id: Option<String>,
        /// Show the most recent run.
        #[arg(long, conflicts_with = "run_id")]
        last: bool,
        #[arg(long, value_enum, default_value_t = ShowFormat::Human)]
        format: ShowFormat,
        #[arg(long, env = "RUNBOOK_STATE_DIR", value_name = "DIR")]
        state_dir: Option<PathBuf>,
    },
    /// Print the JSON Schema of the runbook format.
    Schema,
}

/// How a resumed run or a rollback executes.
#[derive(Debug, clap::Args)]
struct ExecArgs {
    /// Steps that may run at the same time.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..))]
    concurrency: u16,
    /// Approve this approval step up front (repeatable); needed without a terminal.
    #[arg(long, value_name = "STEP")]
    approve: Vec<String>,
    /// Approve every approval step up front.
    #[arg(long)]
    approve_all: bool,
    /// Progress output: timestamped lines, or one JSON event per line.
    #[arg(long, value_enum, default_value_t = OutputFormat::Human)]
    output: OutputFormat,
    /// Where runs are kept: journals and locks [default: .runbook].
    #[arg(long, env = "RUNBOOK_STATE_DIR", value_name = "DIR")]
    state_dir: Option<PathBuf>,
}

impl ExecArgs {
    fn execution(self, no_rollback: bool) -> Execution {
        Execution {
            options: crate::exec::Options {
                concurrency: usize::from(self.concurrency),
                approvals: crate::steps::approval::Approvals {
                    given: self.approve,
                    all: self.approve_all,
                    interactive: crate::steps::approval::interactive(),
                },
                no_rollback,
            },
            output: self.output,
            state: crate::journal::state_dir(self.state_dir.as_deref()),
        }
    }
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum RunsFormat {
    Human,
    Json,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum ShowFormat {
    Human,
    Json,
    Markdown,
    Junit,
}

/// Parameters of a run or a plan.
#[derive(Debug, clap::Args)]
struct ParamArgs {
    /// A parameter value, read as its declared type (repeatable).
    #[arg(short = 'p', long = "param", value_name = "KEY=VALUE")]
    pairs: Vec<String>,
    /// A YAML file of parameter values (`-p` wins over it).
    #[arg(long = "params", value_name = "FILE")]
    params_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum PlanFormat {
    Human,
    Json,
    Markdown,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum OutputFormat {
    Human,
    Json,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum ValidateFormat {
    /// Annotated source snippets (plain when not a terminal or NO_COLOR is set).
    Human,
    /// One JSON document with every diagnostic and a summary.
    Json,
    /// GitHub Actions workflow commands.
    Github,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum GraphFormat {
    Dot,
    Mermaid,
}

/// Exit codes shared by every command.
pub mod exit {
    pub const OK: u8 = 0;
    pub const FAILED: u8 = 1;
    pub const USAGE: u8 = 2;
}

/// Parses the arguments and runs the command.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    ExitCode::from(run(cli))
}

fn run(cli: Cli) -> u8 {
    match cli.command {
        Command::Validate {
            paths,
            format,
            deny_warnings,
        } => validate_command(&paths, format, deny_warnings),
        Command::Graph { file, format } => graph_command(&file, format),
        Command::Plan {
            file,
            params,
            fail_at,
            format,
        } => plan_command(&file, &params, fail_at.as_deref(), format),
        Command::Run {
            file,
            params,
            no_rollback,
            dry_run,
            exec,
        } => {
            if dry_run {
                let format = match exec.output {
                    OutputFormat::Human => PlanFormat::Human,
                    OutputFormat::Json => PlanFormat::Json,
                };
                return plan_command(&file, &params, None, format);
            }
            run_command(&file, &params, exec.execution(no_rollback))
        }
        Command::Resume {
            run_id,
            last: _,
            assume,
            allow_changed,
            exec,
        } => continue_command(
            run_id.as_deref(),
            &assume,
            allow_changed,
            false,
            exec.execution(false),
        ),
        Command::Rollback {
            run_id,
            last: _,
            allow_changed,
            exec,
        } => continue_command(
            run_id.as_deref(),
            &[],
            allow_changed,
            true,
            exec.execution(false),
        ),
        Command::Runs { format, state_dir } => {
            let state = crate::journal::state_dir(state_dir.as_deref());
            let text = match format {
                RunsFormat::Human => report::history::runs_human(&state),
                RunsFormat::Json => report::history::runs_json(&state),
            };
            print(&text);
            exit::OK
        }
        Command::Show {
            run_id,
            last: _,
            format,
            state_dir,
        } => {
            let state = crate::journal::state_dir(state_dir.as_deref());
            let Some(recorded) = reported(crate::resume::load_or_last(&state, run_id.as_deref()))
            else {
                return exit::USAGE;
            };
            let text = match format {
                ShowFormat::Human => report::history::show_human(&recorded),
                ShowFormat::Json => report::history::show_json(&recorded),
                ShowFormat::Markdown => report::history::show_markdown(&recorded),
                ShowFormat::Junit => report::history::show_junit(&recorded),
            };
            print(&text);
            exit::OK
        }
        Command::Schema => {
            print(&crate::schema::json());
            exit::OK
        }
    }
}

fn validate_command(paths: &[PathBuf], format: ValidateFormat, deny_warnings: bool) -> u8 {
    let files = match expand(paths) {
        Ok(files) => files,
        Err(message) => {
            eprintln!("error: {message}");
            return exit::USAGE;
        }
    };
    let reports: Vec<FileReport> = files.iter().map(|f| check(f).0).collect();
    let text = match format {
        ValidateFormat::Human => report::human(&reports, use_color()),
        ValidateFormat::Json => report::json(&reports),
        ValidateFormat::Github => report::github(&reports),
    };
    print(&text);
    let (_, errors, warnings) = report::totals(&reports);
    if errors > 0 || (deny_warnings && warnings > 0) {
        exit::FAILED
    } else {
        exit::OK
    }
}

fn graph_command(file: &Path, format: GraphFormat) -> u8 {
    let (report, checked) = check(file);
    let Some((runbook, dag)) = checked.filter(|_| report.errors() == 0) else {
        eprint!("{}", report::human(&[report], use_color_on_stderr()));
        return exit::FAILED;
    };
    let text = match format {
        GraphFormat::Dot => graph::dot(&runbook, &dag),
        GraphFormat::Mermaid => graph::mermaid(&runbook, &dag),
    };
    print(&text);
    exit::OK
}

/// Loads and validates a runbook for `plan` and `run`; on errors prints them and returns None.
fn checked(file: &Path) -> Option<(crate::model::Runbook, crate::dag::Dag)> {
    let (report, checked) = check(file);
    if report.errors() > 0 || checked.is_none() {
        eprint!("{}", report::human(&[report], use_color_on_stderr()));
        return None;
    }
    checked
}

fn bind(
    runbook: &crate::model::Runbook,
    params: &ParamArgs,
    examples: bool,
) -> Option<crate::params::Bound> {
    match crate::params::bind(
        runbook,
        &params.pairs,
        params.params_file.as_deref(),
        examples,
    ) {
        Ok(bound) => {
            if !bound.ignored.is_empty() {
                eprintln!(
                    "note: not params of this runbook, ignored: {}",
                    bound.ignored.join(", ")
                );
            }
            Some(bound)
        }
        Err(errors) => {
            eprintln!("error: invalid parameters:");
            for e in errors {
                eprintln!("  - {e}");
            }
            None
        }
    }
}

fn plan_command(file: &Path, params: &ParamArgs, fail_at: Option<&str>, format: PlanFormat) -> u8 {
    let Some((runbook, dag)) = checked(file) else {
        return exit::USAGE;
    };
    let Some(bound) = bind(&runbook, params, true) else {
        return exit::USAGE;
    };
    let failing = match fail_at {
        None => None,
        Some(id) => match dag.index_of(id) {
            Some(i) => Some(i),
            None => {
                let help = crate::diagnostic::suggestion(
                    id,
                    runbook.steps.iter().map(|s| s.id.as_str()),
                    || "see `runbook graph` for the step ids".to_owned(),
                );
                eprintln!("error: --fail-at: no step `{id}`; {help}");
                return exit::USAGE;
            }
        },
    };
    let Some(plan) = reported(crate::plan::build(&runbook, &dag, &bound, failing)) else {
        return exit::USAGE;
    };
    let text = match format {
        PlanFormat::Human => report::plan::human(&plan),
        PlanFormat::Json => report::plan::json(&plan),
        PlanFormat::Markdown => report::plan::markdown(&plan),
    };
    print(&text);
    exit::OK
}

/// How `run`, `resume` and `rollback` execute, once the job is known.
struct Execution {
    options: crate::exec::Options,
    output: OutputFormat,
    state: PathBuf,
}

fn run_command(file: &Path, params: &ParamArgs, execution: Execution) -> u8 {
    let Some((runbook, dag)) = checked(file) else {
        return exit::USAGE;
    };
    let Some(bound) = bind(&runbook, params, false) else {
        return exit::USAGE;
    };
    let hash = match std::fs::read(file) {
        Ok(bytes) => crate::journal::hash(&bytes),
        Err(e) => {
            eprintln!("error: cannot read `{}`: {e}", file.display());
            return exit::USAGE;
        }
    };
    let path = std::fs::canonicalize(file).unwrap_or_else(|_| file.to_path_buf());
    let run = crate::context::RunInfo {
        id: run_id(),
        dry_run: false,
        started_at: crate::exec::event::now(),
    };
    execute(
        runbook,
        dag,
        bound.values,
        run,
        Some((path.display().to_string(), hash)),
        None,
        execution,
    )
}

/// `resume` and `rollback`: rebuild the run from its journal, then execute what is left.
fn continue_command(
    run_id: Option<&str>,
    assume: &[String],
    allow_changed: bool,
    rollback_only: bool,
    execution: Execution,
) -> u8 {
    let Some(recorded) = reported(crate::resume::load_or_last(&execution.state, run_id)) else {
        return exit::USAGE;
    };
    let file = PathBuf::from(&recorded.path);
    let Some((runbook, dag)) = checked(&file) else {
        return exit::USAGE;
    };
    let unchanged = std::fs::read(&file).is_ok_and(|b| crate::journal::hash(&b) == recorded.hash);
    if !unchanged && !allow_changed {
        eprintln!(
            "error: {}",
            crate::resume::ResumeError::Changed {
                run: recorded.run_id.clone(),
                path: recorded.path.clone(),
            }
        );
        return exit::USAGE;
    }
    let mut decisions = match crate::resume::parse_assume(assume) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::USAGE;
        }
    };
    let resume = loop {
        match crate::resume::rebuild(&recorded, &runbook, &decisions, rollback_only) {
            Ok(r) => break r,
            Err(crate::resume::ResumeError::InDoubt(steps))
                if crate::steps::approval::interactive() =>
            {
                for step in steps {
                    match ask_in_doubt(&step) {
                        Some(decision) => {
                            decisions.insert(step, decision);
                        }
                        None => {
                            eprintln!("error: no decision for `{step}`; nothing was run");
                            return exit::USAGE;
                        }
                    }
                }
            }
            Err(e) => {
                eprintln!("error: {e}; nothing was run");
                return exit::USAGE;
            }
        }
    };
    let run = crate::context::RunInfo {
        id: recorded.run_id.clone(),
        dry_run: false,
        started_at: recorded.started_at.clone(),
    };
    let mut execution = execution;
    execution.options.no_rollback |= recorded.no_rollback && !rollback_only;
    let code = execute(
        runbook,
        dag,
        recorded.params,
        run,
        None,
        Some(resume),
        execution,
    );
    // Undoing a run on purpose is a success when every rollback ran.
    if rollback_only && code == exit::FAILED {
        exit::OK
    } else {
        code
    }
}

/// Asks on the terminal what happened to a step that was running when the run stopped.
fn ask_in_doubt(step: &str) -> Option<crate::resume::Decision> {
    use std::io::BufRead;
    let mut err = std::io::stderr().lock();
    for _ in 0..3 {
        let _ = write!(
            err,
            "`{step}` was running when the run stopped. Check the system, then say what happened: done (it completed), failed, or rerun? "
        );
        let _ = err.flush();
        let mut line = String::new();
        if std::io::stdin().lock().read_line(&mut line).ok()? == 0 {
            return None;
        }
        match line.trim() {
            "done" => return Some(crate::resume::Decision::Done),
            "failed" => return Some(crate::resume::Decision::Failed),
            "rerun" => return Some(crate::resume::Decision::Rerun),
            _ => {}
        }
    }
    None
}

fn execute(
    runbook: crate::model::Runbook,
    dag: crate::dag::Dag,
    params: serde_json::Map<String, serde_json::Value>,
    run: crate::context::RunInfo,
    origin: Option<(String, String)>,
    resume: Option<crate::exec::Resume>,
    execution: Execution,
) -> u8 {
    let Execution {
        options,
        output,
        state,
    } = execution;
    let missing = crate::exec::missing_approvals(&runbook, &options.approvals);
    if !missing.is_empty() {
        eprintln!(
            "error: approvals needed and no terminal to ask on: {}\n  approve them up front with --approve STEP (repeatable) or --approve-all; nothing was run",
            missing.join(", ")
        );
        return exit::USAGE;
    }
    let secrets = match crate::params::read_secrets(&runbook) {
        Ok(secrets) => secrets,
        Err(errors) => {
            eprintln!("error: secrets could not be read; nothing was run:");
            for e in errors {
                eprintln!("  - {e}");
            }
            return exit::USAGE;
        }
    };
    let (_lock, stale) = match crate::lock::acquire(&state, &runbook.name, &run.id, &run.started_at)
    {
        Ok(taken) => taken,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::USAGE;
        }
    };
    if let Some(stale) = stale {
        eprintln!(
            "note: took over the lock left by run {} (pid {} on {}, started {}), whose process is gone",
            stale.run_id, stale.pid, stale.host, stale.started
        );
    }
    let masker = crate::mask::Masker::new(secrets.iter().map(|(_, v)| v.as_str()));
    let journal = match crate::journal::Journal::open(&state, &run.id, masker.clone()) {
        Ok(j) => std::sync::Arc::new(j),
        Err(e) => {
            eprintln!(
                "error: cannot open the run journal under `{}`: {e}; nothing was run",
                state.display()
            );
            return exit::USAGE;
        }
    };
    let mode = match output {
        OutputFormat::Human => report::progress::Mode::Lines,
        OutputFormat::Json => report::progress::Mode::Json,
    };
    // On a terminal, human output is the live view; elsewhere timestamped lines.
    let live = (mode == report::progress::Mode::Lines && std::io::stdout().is_terminal())
        .then(|| std::sync::Arc::new(report::Live::new(masker.clone())));
    let progress = std::sync::Arc::new(report::progress::Progress::new(mode, masker));
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return exit::FAILED;
        }
    };
    crate::steps::sql_messages::install();
    let summary = runtime.block_on(async {
        let screen: std::sync::Arc<dyn crate::exec::event::Sink> = match &live {
            Some(live) => live.clone(),
            None => progress.clone(),
        };
        // The journal first: an event is on disk before it is on the screen.
        let sink: std::sync::Arc<dyn crate::exec::event::Sink> =
            std::sync::Arc::new(crate::journal::Tee(vec![journal, screen]));
        let interrupts = crate::exec::Interrupts::listen(sink.clone());
        let job = crate::exec::Job {
            runbook: std::sync::Arc::new(runbook),
            dag: std::sync::Arc::new(dag),
            params,
            secrets,
            run: run.clone(),
            origin,
            resume,
        };
        crate::exec::run(job, options, sink, interrupts).await
    });
    progress.summary(&run.id, &summary);
    summary.exit_code
}

/// The value, or `None` with the error printed (the caller exits with a usage error).
fn reported<T, E: std::fmt::Display>(result: Result<T, E>) -> Option<T> {
    result.map_err(|e| eprintln!("error: {e}")).ok()
}

/// A run id that sorts by time: `20261126T094427-3fa2`.
fn run_id() -> String {
    let now = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    let compact: String = now
        .chars()
        .filter(|c| c.is_ascii_digit() || *c == 'T')
        .collect();
    format!("{compact}-{:04x}", fastrand::u16(..))
}

/// Loads and validates one file.
pub fn check(path: &Path) -> (FileReport, Option<(crate::model::Runbook, crate::dag::Dag)>) {
    let loaded = load::load(path);
    let mut problems = loaded.problems;
    let checked = loaded.runbook.map(|runbook| {
        let dag = validate::validate(&runbook, &loaded.source, &mut problems);
        (runbook, dag)
    });
    // Report in file order; problems without a place (unreadable file) come first.
    problems.sort_by_key(|p| p.primary_span().map(|s| s.offset()));
    (
        FileReport {
            path: loaded.path,
            source: loaded.source,
            problems,
        },
        checked,
    )
}

/// Files named on the command line, with directories expanded to their YAML files (sorted).
fn expand(paths: &[PathBuf]) -> Result<Vec<PathBuf>, String> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            let before = files.len();
            walk(path, &mut files).map_err(|e| format!("cannot read `{}`: {e}", path.display()))?;
            if files.len() == before {
                return Err(format!(
                    "no runbook files (*.yaml, *.yml) under `{}`",
                    path.display()
                ));
            }
        } else {
            // A missing or unreadable file is reported as a problem of that file.
            files.push(path.clone());
        }
    }
    Ok(files)
}

fn walk(dir: &Path, files: &mut Vec<PathBuf>) -> std::io::Result<()> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    entries.sort();
    for path in entries {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.starts_with('.') {
            continue;
        }
        if path.is_dir() {
            walk(&path, files)?;
        } else if is_runbook_name(name) {
            files.push(path);
        }
    }
    Ok(())
}

fn is_runbook_name(name: &str) -> bool {
    let yaml = name.ends_with(".yaml") || name.ends_with(".yml");
    let params = name.starts_with("params.")
        || name.ends_with(".params.yaml")
        || name.ends_with(".params.yml");
    yaml && !params
}

fn use_color() -> bool {
    std::env::var_os("NO_COLOR").is_none() && std::io::stdout().is_terminal()
}

fn use_color_on_stderr() -> bool {
    std::env::var_os("NO_COLOR").is_none() && std::io::stderr().is_terminal()
}

/// Writes to stdout; a closed pipe (`| head`) is not an error worth a panic.
fn print(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
}
