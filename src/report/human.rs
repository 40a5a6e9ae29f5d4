//! The human format: miette's graphical report for each problem, then a summary line.

use std::fmt::Write;

use miette::{
    Diagnostic, GraphicalReportHandler, GraphicalTheme, LabeledSpan, NamedSource, Severity,
    SourceCode,
};

use super::{FileReport, totals};
use crate::diagnostic::Problem;

/// A problem together with the file it points into, as miette wants it.
#[derive(Debug)]
struct InFile<'a> {
    problem: &'a Problem,
    source: &'a NamedSource<String>,
}

impl std::fmt::Display for InFile<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.problem.fmt(f)
    }
}

impl std::error::Error for InFile<'_> {}

impl Diagnostic for InFile<'_> {
    fn code<'b>(&'b self) -> Option<Box<dyn std::fmt::Display + 'b>> {
        self.problem.code()
    }

    fn severity(&self) -> Option<Severity> {
        self.problem.severity()
    }

    fn help<'b>(&'b self) -> Option<Box<dyn std::fmt::Display + 'b>> {
        self.problem.help()
    }

    fn source_code(&self) -> Option<&dyn SourceCode> {
        Some(self.source)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        self.problem.labels()
    }
}

/// Renders every problem of every file, then "N files: E errors, W warnings".
pub fn human(reports: &[FileReport], color: bool) -> String {
    let theme = if color {
        GraphicalTheme::unicode()
    } else {
        GraphicalTheme::unicode_nocolor()
    };
    let handler = GraphicalReportHandler::new_themed(theme).with_width(120);
    let mut out = String::new();
    for report in reports {
        if report.problems.is_empty() {
            continue;
        }
        let source = NamedSource::new(&report.path, report.source.clone()).with_language("yaml");
        for problem in &report.problems {
            let diagnostic = InFile {
                problem,
                source: &source,
            };
            if handler.render_report(&mut out, &diagnostic).is_err() {
                let _ = writeln!(out, "{}: {problem}", report.path);
            }
            if problem.labels().is_none_or(|mut l| l.next().is_none()) {
                let _ = writeln!(out, "  in {}", report.path);
            }
            out.push('\n');
        }
    }
    let (files, errors, warnings) = totals(reports);
    let _ = writeln!(
        out,
        "{files} {}: {errors} {}, {warnings} {}",
        plural(files, "file", "files"),
        plural(errors, "error", "errors"),
        plural(warnings, "warning", "warnings"),
    );
    out
}

fn plural<'a>(n: usize, one: &'a str, many: &'a str) -> &'a str {
    if n == 1 { one } else { many }
}
