//! Everything printed: validation results (one file per format), the plan, the live output of
//! a run, `runs` and `show`, the text of an action, and the terminal that asks questions.

pub mod action;
mod github;
mod human;
mod json;
mod live;
pub mod plan;
pub mod progress;
pub mod runs;
pub mod show;
pub mod terminal;

pub use github::github;
pub use human::human;
pub use json::json;
pub use live::Live;

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
