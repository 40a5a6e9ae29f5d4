//! Everything printed: validation results (one file per format), the plan, the live output of
//! a run, `runs` and `show`, the text of an action, and the terminal that asks questions.

pub mod action;
pub mod check;
pub mod control_chars;
pub mod diagram;
mod github;
mod human;
mod json;
mod live;
pub mod man;
pub mod paint;
pub mod plan;
pub mod progress;
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
}

impl FileReport {
    pub fn errors(&self) -> usize {
        self.problems.iter().filter(|p| p.is_error()).count()
    }

    pub fn warnings(&self) -> usize {
        self.problems.len() - self.errors()
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
