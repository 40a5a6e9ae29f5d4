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
    /// Print the JSON Schema of the runbook format.
    Schema,
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
