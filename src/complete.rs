//! What the shell completes beyond clap's own knowledge: the step ids of the runbook named on
//! the command line (`--fail-at`, `--approve`), the steps of a run (`--assume`) and the run
//! ids in the state directory.
//!
//! Completion runs `runbook` itself (clap_complete's `COMPLETE=<shell>` protocol, see
//! `runbook completions`) with the words typed so far after `--`; a candidate list only reads
//! files, and anything unreadable gives no candidates rather than an error in the shell.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use clap::CommandFactory;
use clap_complete::engine::CompletionCandidate;

/// The words typed so far, as far as completion needs them.
#[derive(Debug, Default)]
struct Typed {
    positionals: Vec<String>,
    state_dir: Option<PathBuf>,
}

impl Typed {
    /// Reads the words after `--` in this process's arguments (the completion protocol).
    fn from_args() -> Self {
        let args: Vec<OsString> = std::env::args_os().collect();
        let words: Vec<String> = match args.iter().position(|a| a == "--") {
            // The program name, then the subcommand.
            Some(i) => args[i + 1..]
                .iter()
                .skip(1)
                .map(|a| a.to_string_lossy().into_owned())
                .collect(),
            None => return Self::default(),
        };
        Self::parse(&words)
    }

    /// `words` starts with the subcommand; flags that take a value take the next word (or
    /// their `=` part), as clap's definitions say.
    fn parse(words: &[String]) -> Self {
        let mut typed = Self::default();
        let Some((name, rest)) = words.split_first() else {
            return typed;
        };
        let mut cli = crate::cli::Cli::command();
        cli.build();
        let Some(command) = cli.find_subcommand(name) else {
            return typed;
        };
        let takes_value = |word: &str| {
            command.get_arguments().any(|arg| {
                let named = match word.strip_prefix("--") {
                    Some(long) => arg.get_long() == Some(long),
                    None => word
                        .strip_prefix('-')
                        .and_then(|s| s.chars().next())
                        .is_some_and(|short| arg.get_short() == Some(short)),
                };
                named && arg.get_action().takes_values()
            })
        };
        let mut words = rest.iter();
        while let Some(word) = words.next() {
            if word == "--state-dir" {
                typed.state_dir = words.next().map(PathBuf::from);
            } else if let Some(dir) = word.strip_prefix("--state-dir=") {
                typed.state_dir = Some(PathBuf::from(dir));
            } else if word.starts_with('-') && word.len() > 1 {
                if !word.contains('=') && takes_value(word) {
                    words.next();
                }
            } else {
                typed.positionals.push(word.clone());
            }
        }
        typed
    }

    fn runbook(&self) -> Option<crate::model::Runbook> {
        let file = self.positionals.first()?;
        // With its groups expanded: their steps are offered as `USE.STEP`.
        crate::session::check(Path::new(file))
            .1
            .map(|(runbook, _)| runbook)
    }

    fn state(&self) -> PathBuf {
        crate::journal::state_dir(self.state_dir.as_deref())
    }
}

/// Every step of the runbook on the command line (`--fail-at`).
pub fn steps() -> Vec<CompletionCandidate> {
    runbook_steps(|_| true)
}

/// The approval steps of the runbook on the command line (`--approve`).
pub fn approvals() -> Vec<CompletionCandidate> {
    runbook_steps(crate::model::Step::is_approval)
}

fn runbook_steps(wanted: impl Fn(&crate::model::Step) -> bool) -> Vec<CompletionCandidate> {
    let Some(runbook) = Typed::from_args().runbook() else {
        return Vec::new();
    };
    runbook
        .steps
        .iter()
        .filter(|s| wanted(s))
        .map(|s| {
            CompletionCandidate::new(s.id.as_str())
                .help(s.title.as_ref().map(|t| t.as_str().to_owned().into()))
        })
        .collect()
}

/// `STEP=DECISION` for every step of the run named on the command line, or the latest
/// (`--assume`).
pub fn assumptions() -> Vec<CompletionCandidate> {
    let typed = Typed::from_args();
    let Ok(record) = crate::record::load_or_last(
        &typed.state(),
        typed.positionals.first().map(String::as_str),
    ) else {
        return Vec::new();
    };
    record
        .steps
        .iter()
        .flat_map(|s| {
            ["done", "failed", "rerun"]
                .into_iter()
                .map(move |d| CompletionCandidate::new(format!("{}={d}", s.id)))
        })
        .collect()
}

/// The runs in the state directory, newest last (`resume`, `rollback`, `show`).
pub fn runs() -> Vec<CompletionCandidate> {
    crate::record::run_ids(&Typed::from_args().state())
        .into_iter()
        .map(CompletionCandidate::new)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::Typed;

    #[test]
    fn values_of_flags_are_not_taken_for_the_runbook_file() {
        let words: Vec<String> = [
            "plan",
            "--params",
            "p.yaml",
            "-p",
            "a=b",
            "--color=never",
            "f.yaml",
            "--fail-at",
            "",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let typed = Typed::parse(&words);
        assert_eq!(typed.positionals, ["f.yaml"]);
        let words: Vec<String> = ["resume", "--state-dir", "/s", "r1", "--assume", ""]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let typed = Typed::parse(&words);
        assert_eq!(typed.positionals, ["r1"]);
        assert_eq!(typed.state_dir.as_deref(), Some(std::path::Path::new("/s")));
    }
}
