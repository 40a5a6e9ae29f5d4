//! Everything printed: validation results (one file per format), the plan, the live output of
//! a run, `runs` and `show`, the text of an action, and the terminal that asks questions.

pub mod action;
pub mod check;
pub mod control_chars;
pub mod diagram;
pub mod estimate;
mod github;
mod human;
mod json;
mod live;
pub mod man;
pub mod paint;
pub mod plan;
pub mod progress;
pub mod quorum;
pub mod runs;
pub mod show;
pub mod terminal;
pub mod test;

pub use github::github;
pub use human::human;
pub use json::json;
pub use live::Live;

use std::borrow::Cow;

use crate::diagnostic::Problem;
use crate::line_index::LineIndex;

/// The problems of one file, with the text they point into.
#[derive(Debug)]
pub struct FileReport {
    pub path: String,
    pub source: String,
    pub problems: Vec<Problem>,
    /// For a group file: the `use:` places it was included from, innermost first.
    pub included_from: Vec<String>,
    /// The reports of the group files this file includes (those with problems).
    pub included: Vec<FileReport>,
}

impl FileReport {
    /// The problems of this file and of the groups it includes.
    pub fn errors(&self) -> usize {
        self.problems.iter().filter(|p| p.is_error()).count()
            + self.included.iter().map(Self::errors).sum::<usize>()
    }

    pub fn warnings(&self) -> usize {
        self.problems.iter().filter(|p| !p.is_error()).count()
            + self.included.iter().map(Self::warnings).sum::<usize>()
    }

    /// This report and those of the groups it includes, depth first.
    pub fn with_included(&self) -> Vec<&FileReport> {
        let mut all = vec![self];
        for report in &self.included {
            all.extend(report.with_included());
        }
        all
    }

    /// "in groups/x.yaml:12:5, included from failover.yaml:40:7" for a problem at
    /// `line:column` of an included file; `None` for the file that was named.
    pub fn inclusion(&self, at: Option<(usize, usize)>) -> Option<String> {
        if self.included_from.is_empty() {
            return None;
        }
        let place = match at {
            Some((line, column)) => format!("{}:{line}:{column}", self.path),
            None => self.path.clone(),
        };
        let chain: String = self
            .included_from
            .iter()
            .map(|from| format!(", included from {from}"))
            .collect();
        Some(format!("in {place}{chain}"))
    }
}

/// Where a problem is, as 1-based (line, column) of its start and end.
pub(crate) struct Position {
    pub line: usize,
    pub column: usize,
    pub end_line: usize,
    pub end_column: usize,
}

pub(crate) fn position(index: &LineIndex, problem: &Problem) -> Option<Position> {
    let span = problem.primary_span()?;
    let (line, column) = index.position(span.offset());
    let (end_line, end_column) = index.position(span.offset() + span.len());
    Some(Position {
        line,
        column,
        end_line,
        end_column,
    })
}

/// Totals over all files: (files, errors, warnings).
pub fn totals(reports: &[FileReport]) -> (usize, usize, usize) {
    reports.iter().fold((0, 0, 0), |(f, e, w), r| {
        (f + 1, e + r.errors(), w + r.warnings())
    })
}

/// Longest message or help, in characters, that the human and github formats show per problem.
const MAX_TEXT: usize = 500;

/// Shortens a message that quotes a huge value (a 70,000-character key, say) in its middle, so
/// that one problem stays a few lines in a terminal or one annotation on GitHub.
pub(crate) fn clip(text: &str) -> Cow<'_, str> {
    let count = text.chars().count();
    if count <= MAX_TEXT {
        return Cow::Borrowed(text);
    }
    let at = |n: usize| text.char_indices().nth(n).map_or(text.len(), |(i, _)| i);
    let half = MAX_TEXT / 2;
    Cow::Owned(format!(
        "{}…{}",
        &text[..at(half)],
        &text[at(count - half)..]
    ))
}
