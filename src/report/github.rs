//! The github format: workflow commands that GitHub Actions shows as annotations.

use std::fmt::Write;

use super::{FileReport, clip, position};
use crate::line_index::LineIndex;

pub fn github(reports: &[FileReport]) -> String {
    let mut out = String::new();
    for report in reports.iter().flat_map(FileReport::with_included) {
        let index = LineIndex::new(&report.source);
        for problem in &report.problems {
            let level = if problem.is_error() {
                "error"
            } else {
                "warning"
            };
            let mut properties = format!("file={}", escape_property(&report.path));
            if let Some(at) = position(&index, problem) {
                let _ = write!(
                    properties,
                    ",line={},col={},endLine={},endColumn={}",
                    at.line, at.column, at.end_line, at.end_column
                );
            }
            let _ = write!(
                properties,
                ",title={}",
                escape_property(&problem.code_str())
            );
            let at = position(&index, problem).map(|p| (p.line, p.column));
            let mut message = clip(&problem.to_string()).into_owned();
            if let Some(inclusion) = report.inclusion(at) {
                let _ = write!(message, "\n{inclusion}");
            }
            if let Some(help) = miette::Diagnostic::help(problem) {
                let _ = write!(message, "\nhelp: {}", clip(&help.to_string()));
            }
            let _ = writeln!(out, "::{level} {properties}::{}", escape_data(&message));
        }
    }
    out
}

fn escape_data(text: &str) -> String {
    text.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

fn escape_property(text: &str) -> String {
    escape_data(text).replace(':', "%3A").replace(',', "%2C")
}
