//! The json format: one document with every diagnostic and a summary, for CI and tools.

use serde::Serialize;

use super::{FileReport, position, totals};
use crate::line_index::LineIndex;

#[derive(Serialize)]
struct Output<'a> {
    diagnostics: Vec<Entry<'a>>,
    summary: Summary,
}

#[derive(Serialize)]
struct Entry<'a> {
    file: &'a str,
    severity: &'static str,
    code: String,
    message: String,
    line: Option<usize>,
    column: Option<usize>,
    end_line: Option<usize>,
    end_column: Option<usize>,
    help: Option<String>,
    /// For a problem in a group file: the `use:` places it was included from.
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    included_from: &'a [String],
}

#[derive(Serialize)]
struct Summary {
    files: usize,
    errors: usize,
    warnings: usize,
}

pub fn json(reports: &[FileReport]) -> String {
    let mut diagnostics = Vec::new();
    for report in reports.iter().flat_map(FileReport::with_included) {
        let index = LineIndex::new(&report.source);
        for problem in &report.problems {
            let at = position(&index, problem);
            diagnostics.push(Entry {
                file: &report.path,
                severity: if problem.is_error() {
                    "error"
                } else {
                    "warning"
                },
                code: problem.code_str(),
                message: problem.to_string(),
                line: at.as_ref().map(|p| p.line),
                column: at.as_ref().map(|p| p.column),
                end_line: at.as_ref().map(|p| p.end_line),
                end_column: at.as_ref().map(|p| p.end_column),
                help: miette::Diagnostic::help(problem).map(|h| h.to_string()),
                included_from: &report.included_from,
            });
        }
    }
    let (files, errors, warnings) = totals(reports);
    let output = Output {
        diagnostics,
        summary: Summary {
            files,
            errors,
            warnings,
        },
    };
    let mut text = serde_json::to_string_pretty(&output).unwrap_or_default();
    text.push('\n');
    text
}
