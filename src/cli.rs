//! Command-line interface: the arguments as typed, and the dispatch to the library.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum, ValueHint};
use clap_complete::engine::ArgValueCandidates;

use crate::exit;
use crate::report::{self, FileReport};
use crate::session::{self, Notice, SessionError, Start};

/// Validate, rehearse and execute declarative operational runbooks.
#[derive(Debug, Parser)]
#[command(name = "runbook", version = env!("RUNBOOK_VERSION"), about, max_term_width = 100)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Colour: `auto` when writing to a terminal, unless NO_COLOR is set (CLICOLOR_FORCE
    /// forces it on); `always` and `never` win over both.
    #[arg(long, global = true, value_enum, default_value_t = ColorWhen::Auto, value_name = "WHEN")]
    color: ColorWhen,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ColorWhen {
    Auto,
    Always,
    Never,
}

impl ColorWhen {
    /// Whether text written to a stream that is (or is not) a terminal is coloured.
    fn on(self, terminal: bool) -> bool {
        let set = |var: &str| std::env::var_os(var).is_some_and(|v| !v.is_empty());
        match self {
            Self::Always => true,
            Self::Never => false,
            Self::Auto if set("NO_COLOR") => false,
            Self::Auto
                if set("CLICOLOR_FORCE")
                    && std::env::var_os("CLICOLOR_FORCE") != Some("0".into()) =>
            {
                true
            }
            Self::Auto => terminal,
        }
    }

    fn stdout(self) -> bool {
        self.on(std::io::stdout().is_terminal())
    }

    fn stderr(self) -> bool {
        self.on(std::io::stderr().is_terminal())
    }
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
        #[arg(required = true, value_name = "PATH", value_hint = ValueHint::AnyPath)]
        paths: Vec<PathBuf>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = ValidateFormat::Human)]
        format: ValidateFormat,
        /// Fail (exit 1) on warnings too.
        #[arg(long)]
        deny_warnings: bool,
        /// Add the opt-in lints: a step that changes something (`run`, `sql`) with neither
        /// `probe` nor `rehearse`.
        #[arg(long)]
        strict: bool,
    },
    /// Draw the step graph of a runbook.
    Graph {
        /// The runbook file.
        #[arg(value_hint = ValueHint::FilePath)]
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
        #[arg(value_hint = ValueHint::FilePath)]
        file: PathBuf,
        #[command(flatten)]
        params: ParamArgs,
        /// Show what happens when this step fails: completions, then rollbacks, in order.
        #[arg(long, value_name = "STEP", add = ArgValueCandidates::new(crate::complete::steps))]
        fail_at: Option<String>,
        /// Steps that may run at the same time, as for `run` (with more than one, --fail-at
        /// also says which steps may complete beside the failing one).
        #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..))]
        concurrency: u16,
        /// Output format.
        #[arg(long, value_enum, default_value_t = PlanFormat::Human)]
        format: PlanFormat,
        /// Estimate with the median duration of each step over the succeeded runs of this
        /// runbook in the state directory (steps without history keep their `expect`).
        #[arg(long)]
        history: bool,
        /// Where runs are kept (for --history) [default: .runbook].
        #[arg(long, env = "RUNBOOK_STATE_DIR", value_name = "DIR")]
        state_dir: Option<PathBuf>,
    },
    /// Pre-flight against the live estate: run the probes and `rehearse:` actions only.
    ///
    /// Never runs a step's own action unless it is `probe: true`, never rolls back, asks no
    /// approval and writes no journal. Exit status: 0 nothing failed, 1 a step failed,
    /// 2 invalid runbook or parameters.
    Check {
        /// The runbook file.
        #[arg(value_hint = ValueHint::FilePath)]
        file: PathBuf,
        #[command(flatten)]
        params: ParamArgs,
        /// Output format.
        #[arg(long, value_enum, default_value_t = CheckFormat::Human)]
        format: CheckFormat,
    },
    /// Execute a runbook.
    ///
    /// Exit status: 0 success; 1 failed (rolled back, or nothing to roll back); 2 invalid
    /// runbook or arguments; 3 needs a person (rollback incomplete, or stopped past a point of
    /// no return); 4 the run journal could not be written; 130 interrupted.
    Run {
        /// The runbook file.
        #[arg(value_hint = ValueHint::FilePath)]
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
        #[arg(required_unless_present = "last", add = ArgValueCandidates::new(crate::complete::runs))]
        run_id: Option<String>,
        /// Continue the most recent run.
        #[arg(long, conflicts_with = "run_id")]
        last: bool,
        /// What happened to a step in doubt: STEP=done|failed|rerun (repeatable;
        /// `rollback:STEP=done|rerun` for a rollback action in doubt).
        #[arg(long, value_name = "STEP=DECISION", add = ArgValueCandidates::new(crate::complete::assumptions))]
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
        #[arg(required_unless_present = "last", add = ArgValueCandidates::new(crate::complete::runs))]
        run_id: Option<String>,
        /// Roll back the most recent run.
        #[arg(long, conflicts_with = "run_id")]
        last: bool,
        /// What happened to a step in doubt: STEP=done (it completed: it is undone) or
        /// STEP=failed (nothing to undo), repeatable; `rollback:STEP=done|rerun` for a
        /// rollback action in doubt.
        #[arg(long, value_name = "STEP=DECISION", add = ArgValueCandidates::new(crate::complete::assumptions))]
        assume: Vec<String>,
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
    /// Vote on a multi-party approval a running run waits for.
    ///
    /// You are identified by your real user id (your login), never by $USER. Run it from
    /// your own terminal on the run's state directory. Exit status: 0 the vote was cast, 2 it
    /// was refused (not an approver, your own run, a second vote, no such run or step, the
    /// run not waiting there).
    Approve {
        /// The run (see `runbook runs`).
        #[arg(add = ArgValueCandidates::new(crate::complete::runs))]
        run_id: String,
        /// The approval step the run waits at.
        step: String,
        /// Why: journaled with your vote.
        #[arg(long, value_name = "TEXT")]
        reason: Option<String>,
        /// Refuse: the run stops waiting and rolls back as after a failure.
        #[arg(long)]
        reject: bool,
        #[arg(long, env = "RUNBOOK_STATE_DIR", value_name = "DIR")]
        state_dir: Option<PathBuf>,
    },
    /// Show what a run did: the evidence of a rehearsal or a real failover.
    Show {
        /// The run (see `runbook runs`).
        #[arg(required_unless_present = "last", add = ArgValueCandidates::new(crate::complete::runs))]
        run_id: Option<String>,
        /// Show the most recent run.
        #[arg(long, conflicts_with = "run_id")]
        last: bool,
        #[arg(long, value_enum, default_value_t = ShowFormat::Human)]
        format: ShowFormat,
        #[arg(long, env = "RUNBOOK_STATE_DIR", value_name = "DIR")]
        state_dir: Option<PathBuf>,
    },
    /// Run runbook tests (*.test.yaml): scenarios with mocked results, through the real engine.
    ///
    /// Nothing real runs: every command, query and rollback action is answered by its mock.
    /// With --record, writes a test file from a finished run's journal instead. Exit status:
    /// 0 every scenario passed (or the test was written), 1 a scenario failed, 2 an invalid
    /// test file or usage problem.
    Test {
        /// Test files, or directories searched for *.test.yaml.
        #[arg(value_name = "PATH", required_unless_present = "record", value_hint = ValueHint::AnyPath)]
        paths: Vec<PathBuf>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = TestFormat::Human)]
        format: TestFormat,
        /// Steps that may run at the same time, as for `run`.
        #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..))]
        concurrency: u16,
        /// Write a test file from this run's journal: its results become the mocks, what it
        /// did the expectations.
        #[arg(long, value_name = "RUN_ID", conflicts_with = "paths", add = ArgValueCandidates::new(crate::complete::runs))]
        record: Option<String>,
        /// With --record: the file to write [default: <runbook stem>.<run id>.test.yaml next to
        /// the runbook].
        #[arg(short = 'o', long = "output", value_name = "FILE", requires = "record", value_hint = ValueHint::FilePath)]
        output: Option<PathBuf>,
        /// Where runs are kept (for --record) [default: .runbook].
        #[arg(long, env = "RUNBOOK_STATE_DIR", value_name = "DIR")]
        state_dir: Option<PathBuf>,
    },
    /// Print the JSON Schema of the runbook format.
    Schema,
    /// Write a new runbook to start from: NAME.yaml (default runbook.yaml), never over an
    /// existing file.
    ///
    /// It has the schema line for editors, params, a step of each common kind, a rollback and
    /// an approval, and validates with --deny-warnings. Exit status: 0 written, 2 the file
    /// exists or the name is not a valid runbook name.
    Init {
        /// The runbook's name (also its file name), or a path ending in it.
        name: Option<String>,
        /// What the runbook does.
        #[arg(long, value_enum, default_value_t = crate::init::Kind::Minimal)]
        kind: crate::init::Kind,
    },
    /// Print the shell script that completes commands, flags, files, run ids and step ids.
    ///
    /// Load it from the shell's startup file (see the README): for bash,
    /// `source <(runbook completions bash)` in ~/.bashrc. Step ids and run ids are read when
    /// you press Tab, by running `runbook` itself.
    Completions { shell: Shell },
    /// Print the manual page (roff), for `man -l` or a man directory.
    Man,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Shell {
    Bash,
    Zsh,
    Fish,
    Powershell,
    Elvish,
}

impl Shell {
    fn name(self) -> &'static str {
        match self {
            Self::Bash => "bash",
            Self::Zsh => "zsh",
            Self::Fish => "fish",
            Self::Powershell => "powershell",
            Self::Elvish => "elvish",
        }
    }
}

/// How a resumed run or a rollback executes.
#[derive(Debug, clap::Args)]
struct ExecArgs {
    /// Steps that may run at the same time.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..))]
    concurrency: u16,
    /// Approve this approval step up front (repeatable); needed without a terminal.
    #[arg(long, value_name = "STEP", add = ArgValueCandidates::new(crate::complete::approvals))]
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
    /// Do not show the steps' output lines as they arrive (human output; the journal and
    /// `show` still have it).
    #[arg(long, short)]
    quiet: bool,
}

impl ExecArgs {
    fn settings(&self) -> crate::session::Settings {
        crate::session::Settings {
            concurrency: usize::from(self.concurrency),
            approve: self.approve.clone(),
            approve_all: self.approve_all,
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
    /// A self-contained evidence report (no external resources; prints).
    Html,
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
enum CheckFormat {
    Human,
    Json,
    Markdown,
    Junit,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum OutputFormat {
    Human,
    Json,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum ValidateFormat {
    /// Annotated source snippets (in colour when colour is on: see --color).
    Human,
    /// One JSON document with every diagnostic and a summary.
    Json,
    /// GitHub Actions workflow commands.
    Github,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum TestFormat {
    /// Pass or fail per scenario, with the reasons.
    Human,
    /// JUnit XML, one test case per scenario.
    Junit,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum GraphFormat {
    Dot,
    Mermaid,
}

/// Parses the arguments and runs the command.
pub fn main() -> ExitCode {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if args
        .get(1)
        .is_some_and(|a| a == crate::steps::supervisor::SUBCOMMAND)
    {
        // A step's supervisor (see `steps::supervisor`): not a command for people.
        crate::steps::supervisor::main(&args[2..]);
    }
    // A shell asking for completions (`COMPLETE=bash runbook -- runbook plan …`).
    clap_complete::CompleteEnv::with_factory(Cli::command)
        .var(COMPLETE_VAR)
        .complete();
    // clap's own help and errors follow `--color always|never` too (and, with `auto`, the
    // same NO_COLOR and CLICOLOR_FORCE); it is read before the arguments are parsed.
    let mut command = Cli::command();
    if let Some(when) = color_flag(&args) {
        command = command.color(match when {
            ColorWhen::Always => clap::ColorChoice::Always,
            ColorWhen::Never => clap::ColorChoice::Never,
            ColorWhen::Auto => clap::ColorChoice::Auto,
        });
    }
    let cli = match Cli::from_arg_matches(&command.get_matches_from(args)) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    let code = run(cli);
    // The run's supervisor, if a command was started, ends with runbook's work.
    crate::steps::supervisor_client::shutdown();
    ExitCode::from(code)
}

/// The last `--color WHEN` or `--color=WHEN` before a `--`, if it is a valid one.
fn color_flag(args: &[std::ffi::OsString]) -> Option<ColorWhen> {
    let args: Vec<&str> = args
        .iter()
        .skip(1)
        .map(|a| a.to_str().unwrap_or_default())
        .take_while(|a| *a != "--")
        .collect();
    let mut found = None;
    for (i, arg) in args.iter().enumerate() {
        let value = match arg.strip_prefix("--color") {
            Some("") => args.get(i + 1).copied(),
            Some(rest) => rest.strip_prefix('='),
            None => None,
        };
        if let Some(when) = value.and_then(|v| ColorWhen::from_str(v, false).ok()) {
            found = Some(when);
        }
    }
    found
}

/// The variable the completion scripts set when they call `runbook` for candidates.
const COMPLETE_VAR: &str = "COMPLETE";

fn run(cli: Cli) -> u8 {
    let color = cli.color;
    match cli.command {
        Command::Validate {
            paths,
            format,
            deny_warnings,
            strict,
        } => validate_command(&paths, format, deny_warnings, strict, color),
        Command::Check {
            file,
            params,
            format,
        } => check_command(&file, &params, format, color),
        Command::Graph { file, format } => graph_command(&file, format, color),
        Command::Plan {
            file,
            params,
            fail_at,
            concurrency,
            format,
            history,
            state_dir,
        } => plan_command(
            &file,
            &params,
            fail_at.as_deref(),
            usize::from(concurrency),
            format,
            history.then(|| crate::journal::state_dir(state_dir.as_deref())),
            color,
        ),
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
                return plan_command(
                    &file,
                    &params,
                    None,
                    usize::from(exec.concurrency),
                    format,
                    None,
                    color,
                );
            }
            let start = Start::New {
                file,
                pairs: params.pairs,
                params_file: params.params_file,
                no_rollback,
            };
            session_command(start, &exec, color)
        }
        Command::Resume {
            run_id,
            last: _,
            assume,
            allow_changed,
            exec,
        } => session_command(
            Start::Resume {
                run_id,
                assume,
                allow_changed,
            },
            &exec,
            color,
        ),
        Command::Rollback {
            run_id,
            last: _,
            assume,
            allow_changed,
            exec,
        } => session_command(
            Start::Rollback {
                run_id,
                assume,
                allow_changed,
            },
            &exec,
            color,
        ),
        Command::Runs { format, state_dir } => {
            let state = crate::journal::state_dir(state_dir.as_deref());
            let text = match format {
                RunsFormat::Human => safe(report::runs::human(&state)),
                RunsFormat::Json => report::runs::json(&state),
            };
            print(&text);
            exit::OK
        }
        Command::Approve {
            run_id,
            step,
            reason,
            reject,
            state_dir,
        } => {
            let state = crate::journal::state_dir(state_dir.as_deref());
            let request = crate::approve::Request {
                run_id,
                step,
                decision: if reject {
                    crate::ballot::Decision::Reject
                } else {
                    crate::ballot::Decision::Approve
                },
                reason,
            };
            match crate::approve::approve(&state, &request) {
                Ok(cast) => {
                    print(&safe(report::quorum::cast(&request, &cast)));
                    exit::OK
                }
                Err(e) => usage_error(&safe(e.to_string())),
            }
        }
        Command::Show {
            run_id,
            last: _,
            format,
            state_dir,
        } => {
            let state = crate::journal::state_dir(state_dir.as_deref());
            let record = match crate::record::load_or_last(&state, run_id.as_deref()) {
                Ok(record) => record,
                Err(e) => return usage_error(&e),
            };
            let text = match format {
                ShowFormat::Human => safe(report::show::human(&record)),
                ShowFormat::Json => report::show::json(&record),
                ShowFormat::Markdown => safe(report::show::markdown(&record)),
                ShowFormat::Junit => report::show::junit(&record),
                ShowFormat::Html => report::show::html(&record),
            };
            print(&text);
            exit::OK
        }
        Command::Test {
            paths,
            format,
            concurrency,
            record,
            output,
            state_dir,
        } => match record {
            Some(run_id) => {
                let state = crate::journal::state_dir(state_dir.as_deref());
                match crate::scenario::record::record(&state, &run_id, output.as_deref()) {
                    Ok(path) => {
                        print(&format!(
                            "wrote {}\nnext: runbook test {}\n",
                            path.display(),
                            path.display()
                        ));
                        exit::OK
                    }
                    Err(e) => usage_error(&e),
                }
            }
            None => test_command(&paths, format, usize::from(concurrency), color),
        },
        Command::Schema => {
            print(&crate::schema::json());
            exit::OK
        }
        Command::Init { name, kind } => match crate::init::init(name.as_deref(), kind) {
            Ok(written) => {
                let path = written.path.display();
                let mut text = format!("wrote {path}\n");
                if let Some(schema) = written.schema_missing {
                    text.push_str(&format!(
                        "note: for completion in editors, write the schema it names: runbook schema > {}\n",
                        schema.display()
                    ));
                }
                text.push_str(&format!(
                    "next: runbook validate {path} && runbook plan {path}\n"
                ));
                print(&text);
                exit::OK
            }
            Err(e) => usage_error(&e),
        },
        Command::Completions { shell } => completions(shell),
        Command::Man => {
            print(&crate::report::man::page(Cli::command()));
            exit::OK
        }
    }
}

/// The shell's registration script: it calls this binary (by its full path, so completion
/// works before it is on PATH) with `COMPLETE=<shell>` for every Tab.
fn completions(shell: Shell) -> u8 {
    let shells = clap_complete::env::Shells::builtins();
    let Some(completer) = shells.completer(shell.name()) else {
        return usage_error(&format!("no completion support for {}", shell.name()));
    };
    let program = std::env::current_exe()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| "runbook".to_owned());
    let mut script = Vec::new();
    if let Err(e) =
        completer.write_registration(COMPLETE_VAR, "runbook", "runbook", &program, &mut script)
    {
        return usage_error(&e);
    }
    print(&String::from_utf8_lossy(&script));
    exit::OK
}

fn validate_command(
    paths: &[PathBuf],
    format: ValidateFormat,
    deny_warnings: bool,
    strict: bool,
    color: ColorWhen,
) -> u8 {
    let files = match crate::discover::expand(paths) {
        Ok(files) => files,
        Err(e) => return usage_error(&e),
    };
    let mut groups = crate::include::Groups::default();
    let reports: Vec<FileReport> = files
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let (mut report, checked) = session::check_with(f, &mut groups);
            if strict && let Some((runbook, _)) = &checked {
                crate::validate::strict(runbook, &mut report.problems);
                report
                    .problems
                    .sort_by_key(|p| p.primary_span().map(|s| s.offset()));
            }
            // The last file's model is left to the exit rather than freed piece by piece:
            // only the report is used from here, and a large runbook's teardown is a
            // noticeable part of its validation.
            if i + 1 == files.len() {
                std::mem::forget(checked);
            }
            report
        })
        .collect();
    let text = match format {
        ValidateFormat::Human => report::human(&reports, color.stdout()),
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

fn test_command(paths: &[PathBuf], format: TestFormat, concurrency: usize, color: ColorWhen) -> u8 {
    let files = match crate::discover::tests(paths) {
        Ok(files) => files,
        Err(e) => return usage_error(&e),
    };
    let results: Vec<crate::scenario::FileResult> = files
        .iter()
        .map(|f| crate::scenario::run_file(f, concurrency))
        .collect();
    let text = match format {
        TestFormat::Human => safe(report::test::human(&results, color.stdout())),
        TestFormat::Junit => report::test::junit(&results),
    };
    print(&text);
    match report::test::totals(&results) {
        (_, _, invalid) if invalid > 0 => exit::USAGE,
        (_, failed, _) if failed > 0 => exit::FAILED,
        _ => exit::OK,
    }
}

/// Prints why a command could not start, and returns the usage exit code.
fn usage_error(error: &dyn std::fmt::Display) -> u8 {
    eprintln!("error: {error}");
    exit::USAGE
}

/// Prints the problems of an invalid runbook, or any other session error.
fn session_error(error: &SessionError, color: ColorWhen) -> u8 {
    match error {
        SessionError::Invalid(report) => {
            eprint!(
                "{}",
                report::human(std::slice::from_ref(report), color.stderr())
            );
            exit::USAGE
        }
        SessionError::Runtime(_) => {
            eprintln!("error: {error}");
            exit::FAILED
        }
        other => usage_error(other),
    }
}

fn graph_command(file: &Path, format: GraphFormat, color: ColorWhen) -> u8 {
    let (runbook, dag) = match session::checked(file) {
        Ok(checked) => checked,
        Err(e) => return session_error(&e, color),
    };
    let text = match format {
        GraphFormat::Dot => report::diagram::dot(&runbook, &dag),
        GraphFormat::Mermaid => report::diagram::mermaid(&runbook, &dag),
    };
    print(&text);
    exit::OK
}

fn plan_command(
    file: &Path,
    params: &ParamArgs,
    fail_at: Option<&str>,
    concurrency: usize,
    format: PlanFormat,
    history: Option<PathBuf>,
    color: ColorWhen,
) -> u8 {
    let (runbook, dag) = match session::checked(file) {
        Ok(checked) => checked,
        Err(e) => return session_error(&e, color),
    };
    let bound =
        match crate::bind::bind(&runbook, &params.pairs, params.params_file.as_deref(), true) {
            Ok(bound) => bound,
            Err(errors) => return session_error(&SessionError::Params(errors), color),
        };
    if !bound.ignored.is_empty() {
        eprintln!("note: {}", Notice::IgnoredParams(bound.ignored.clone()));
    }
    let failing = match fail_at {
        None => None,
        Some(id) => match dag.index_of(id) {
            Some(i) => Some(crate::plan::FailAt::from(i)),
            // `STEP[KEY]`: one instance of a `for_each` step.
            None if let Some(i) = id
                .split_once('[')
                .filter(|_| id.ends_with(']'))
                .and_then(|(step, _)| dag.index_of(step))
                .filter(|&i| runbook.steps[i].for_each.is_some()) =>
            {
                Some(crate::plan::FailAt {
                    step: i,
                    instance: Some(id.to_owned()),
                })
            }
            None => {
                let help = crate::diagnostic::suggestion(
                    id,
                    runbook.steps.iter().map(|s| s.id.as_str()),
                    || "see `runbook graph` for the step ids".to_owned(),
                );
                return usage_error(&format!("--fail-at: no step `{id}`; {help}"));
            }
        },
    };
    let history = history.map(|state| crate::history::History::load(&state, &runbook.name));
    let plan = match crate::plan::build(
        &runbook,
        &dag,
        &bound,
        failing,
        concurrency,
        history.as_ref(),
    ) {
        Ok(plan) => plan,
        Err(e) => return usage_error(&e),
    };
    let text = match format {
        PlanFormat::Human if color.stdout() => {
            report::paint::plan(&safe(report::plan::human(&plan)))
        }
        PlanFormat::Human => safe(report::plan::human(&plan)),
        PlanFormat::Json => report::plan::json(&plan),
        PlanFormat::Markdown => safe(report::plan::markdown(&plan)),
    };
    print(&text);
    exit::OK
}

/// `check`: the live pre-flight and its report.
fn check_command(file: &Path, params: &ParamArgs, format: CheckFormat, color: ColorWhen) -> u8 {
    let report = match crate::check::check(file, &params.pairs, params.params_file.as_deref()) {
        Ok(report) => report,
        Err(e) => return session_error(&e, color),
    };
    if !report.ignored_params.is_empty() {
        eprintln!(
            "note: {}",
            Notice::IgnoredParams(report.ignored_params.clone())
        );
    }
    if !report.short_secrets.is_empty() {
        eprintln!(
            "note: secrets shorter than {} characters are masked only where a value is exactly the secret, not inside output: {}",
            crate::mask::MIN_SEARCH_LEN,
            report.short_secrets.join(", ")
        );
    }
    let text = match format {
        CheckFormat::Human => safe(report::check::human(&report)),
        CheckFormat::Json => report::check::json(&report),
        CheckFormat::Markdown => safe(report::check::markdown(&report)),
        CheckFormat::Junit => report::check::junit(&report),
    };
    print(&text);
    report.exit_code()
}

/// The terminal and output of a run on the command line.
struct CommandLine {
    output: OutputFormat,
    color: ColorWhen,
    prompter: Option<Arc<dyn crate::prompt::Prompter>>,
    /// The live view's spinners, shared with the prompter that hides them while it asks.
    spinners: indicatif::MultiProgress,
    /// `--quiet`: no output lines of steps.
    quiet: bool,
}

impl CommandLine {
    fn mode(&self) -> report::progress::Mode {
        match self.output {
            OutputFormat::Human => report::progress::Mode::Lines,
            OutputFormat::Json => report::progress::Mode::Json,
        }
    }
}

impl session::Ui for CommandLine {
    fn screen(&self, masker: &crate::mask::Masker) -> Arc<dyn crate::exec::event::Sink> {
        // On a terminal, human output is the live view; elsewhere timestamped lines.
        if self.mode() == report::progress::Mode::Lines && std::io::stdout().is_terminal() {
            Arc::new(report::Live::new(
                masker.clone(),
                self.color.stdout(),
                self.spinners.clone(),
                self.quiet,
            ))
        } else {
            Arc::new(
                report::progress::Progress::new(self.mode(), masker.clone(), self.color.stdout())
                    .quiet(self.quiet && self.mode() == report::progress::Mode::Lines),
            )
        }
    }

    fn prompter(&self) -> Option<Arc<dyn crate::prompt::Prompter>> {
        self.prompter.clone()
    }

    fn notice(&self, notice: &Notice) {
        eprintln!("note: {notice}");
    }
}

/// `run`, `resume` and `rollback`.
fn session_command(start: Start, exec: &ExecArgs, color: ColorWhen) -> u8 {
    let spinners = indicatif::MultiProgress::new();
    let ui = CommandLine {
        output: exec.output,
        color,
        prompter: report::terminal::Terminal::if_interactive(spinners.clone())
            .map(|t| Arc::new(t) as Arc<dyn crate::prompt::Prompter>),
        spinners,
        quiet: exec.quiet,
    };
    match session::run(start, exec.settings(), &ui) {
        Ok(finished) => {
            report::progress::Progress::new(ui.mode(), finished.masker, color.stdout())
                .summary(&finished.run_id, &finished.summary);
            finished.summary.exit_code
        }
        Err(e) => session_error(&e, color),
    }
}

/// Text for people, with control characters from runbooks and output made visible.
fn safe(text: String) -> String {
    report::control_chars::escape(&text).into_owned()
}

/// Writes to stdout; a closed pipe (`| head`) is not an error worth a panic.
fn print(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
}
