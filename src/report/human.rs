//! The human format: miette's graphical report for each problem, then a summary line.
//!
//! miette is not handed the whole file. Its own source reader scans from the first byte for
//! every snippet (quadratic over a file with thousands of problems), and it pads with
//! `{:width$}`, which panics past column 65,535. Each problem instead reads an [`Excerpt`]:
//! only the lines around its labels, with long lines cut down to windows around the labels.
//! miette still draws the true line numbers and, through the excerpt, the true column.

use std::fmt::Write;
use std::ops::{Range, RangeInclusive};

use miette::{
    Diagnostic, GraphicalReportHandler, GraphicalTheme, LabeledSpan, MietteError,
    MietteSpanContents, Severity, SourceCode, SourceSpan, SpanContents,
};

use super::{FileReport, clip, totals};
use crate::diagnostic::Problem;

/// Lines of context miette shows around a label.
const CONTEXT_LINES: usize = 1;
/// Lines longer than this (in bytes) are shown as windows around the labels on them.
const LONG_LINE: usize = 512;
/// Characters shown on each side of a label's start and end on a long line.
const WINDOW: usize = 100;
/// Stands for the text cut out of a long line.
const ELLIPSIS: &str = "…";
/// Cuts shorter than this are not worth an ellipsis.
const MIN_CUT: usize = 16;

/// A problem together with the excerpt its labels point into, as miette wants it.
#[derive(Debug)]
struct InFile<'a> {
    problem: &'a Problem,
    excerpt: &'a Excerpt<'a>,
}

impl std::fmt::Display for InFile<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&clip(&self.problem.to_string()))
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
        let help = self.problem.help()?.to_string();
        Some(Box::new(clip(&help).into_owned()))
    }

    fn source_code(&self) -> Option<&dyn SourceCode> {
        Some(self.excerpt)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        let labels = self.problem.labels()?;
        Some(Box::new(
            labels.map(|label| self.excerpt.shown_label(&label)),
        ))
    }
}

/// Renders every problem of every file, then "N files: E errors, W warnings".
pub fn human(reports: &[FileReport], color: bool) -> String {
    let theme = if color {
        GraphicalTheme::unicode()
    } else {
        GraphicalTheme::unicode_nocolor()
    };
    let handler = GraphicalReportHandler::new_themed(theme)
        .with_width(120)
        .with_context_lines(CONTEXT_LINES);
    let mut out = String::new();
    for report in reports.iter().flat_map(FileReport::with_included) {
        if report.problems.is_empty() {
            continue;
        }
        let file = File::new(&report.path, &report.source);
        // Only a group file's problems say where it was included from.
        let index = (!report.included_from.is_empty())
            .then(|| crate::line_index::LineIndex::new(&report.source));
        for problem in &report.problems {
            let spans: Vec<SourceSpan> = problem
                .labels()
                .into_iter()
                .flatten()
                .map(|label| *label.inner())
                .collect();
            let excerpt = Excerpt::new(&file, &spans);
            let diagnostic = InFile {
                problem,
                excerpt: &excerpt,
            };
            if handler.render_report(&mut out, &diagnostic).is_err() {
                let _ = writeln!(out, "{}: {diagnostic}", report.path);
            }
            let at = index
                .as_ref()
                .zip(spans.first())
                .map(|(index, s)| index.position(s.offset()));
            if let Some(inclusion) = report.inclusion(at) {
                let _ = writeln!(out, "  {inclusion}");
            } else if spans.is_empty() {
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

/// One file with its line starts, indexed once for all its problems.
#[derive(Debug)]
struct File<'a> {
    name: &'a str,
    text: &'a str,
    /// Byte offset of each line's start, breaking lines where miette does (`\n`, `\r\n`, `\r`)
    /// so that line numbers agree with the snippets it draws.
    starts: Vec<usize>,
}

impl<'a> File<'a> {
    fn new(name: &'a str, text: &'a str) -> Self {
        let bytes = text.as_bytes();
        let starts = std::iter::once(0)
            .chain(bytes.iter().enumerate().filter_map(|(i, &b)| {
                let breaks = b == b'\n' || (b == b'\r' && bytes.get(i + 1) != Some(&b'\n'));
                breaks.then_some(i + 1)
            }))
            .collect();
        Self { name, text, starts }
    }

    /// The 0-based line holding byte `offset`.
    fn line_of(&self, offset: usize) -> usize {
        self.starts
            .partition_point(|&s| s <= offset)
            .saturating_sub(1)
    }

    fn last_line(&self) -> usize {
        self.starts.len() - 1
    }

    /// Where the line starts.
    fn start(&self, line: usize) -> usize {
        self.starts[line]
    }

    /// Where the next line starts (after this one's line break).
    fn next_start(&self, line: usize) -> usize {
        self.starts
            .get(line + 1)
            .copied()
            .unwrap_or(self.text.len())
    }

    /// Where the line's text ends (before its line break).
    fn text_end(&self, line: usize) -> usize {
        let text = &self.text.as_bytes()[self.start(line)..self.next_start(line)];
        let text = text.strip_suffix(b"\n").unwrap_or(text);
        let text = text.strip_suffix(b"\r").unwrap_or(text);
        self.start(line) + text.len()
    }

    /// The lines miette may read for a label: its own, its context and one more either side.
    fn lines_around(&self, span: SourceSpan) -> RangeInclusive<usize> {
        let first = self.line_of(span.offset());
        let last = self.line_of(last_byte(span));
        first.saturating_sub(CONTEXT_LINES + 1)..=(last + CONTEXT_LINES + 2).min(self.last_line())
    }
}

/// The offset of a span's last byte (its start when it is empty).
fn last_byte(span: SourceSpan) -> usize {
    span.offset() + span.len().saturating_sub(1)
}

/// A file as one problem's snippets show it: long lines near its labels cut down to windows
/// around them, each cut shown as `…`. Offsets into the excerpt ("shown" offsets) are the
/// file's minus what the cuts before them took out.
#[derive(Debug)]
struct Excerpt<'a> {
    file: &'a File<'a>,
    /// The byte ranges of the file left out, in order.
    cuts: Vec<Range<usize>>,
    /// Runs of lines that hold cuts, as shown.
    blocks: Vec<Block>,
}

#[derive(Debug)]
struct Block {
    lines: RangeInclusive<usize>,
    text: String,
}

impl<'a> Excerpt<'a> {
    fn new(file: &'a File<'a>, spans: &[SourceSpan]) -> Self {
        let mut runs: Vec<RangeInclusive<usize>> =
            spans.iter().map(|&span| file.lines_around(span)).collect();
        runs.sort_by_key(|run| *run.start());
        let mut merged: Vec<RangeInclusive<usize>> = Vec::new();
        for run in runs {
            match merged.last_mut() {
                Some(last) if *run.start() <= last.end() + 1 => {
                    *last = *last.start()..=*last.end().max(run.end());
                }
                _ => merged.push(run),
            }
        }
        let points: Vec<usize> = spans
            .iter()
            .flat_map(|span| [span.offset(), span.offset() + span.len()])
            .collect();
        let mut cuts = Vec::new();
        let mut blocks = Vec::new();
        for lines in merged {
            let block_cuts: Vec<Range<usize>> = lines
                .clone()
                .flat_map(|line| line_cuts(file, line, &points))
                .collect();
            if block_cuts.is_empty() {
                continue;
            }
            let (from, to) = (file.start(*lines.start()), file.next_start(*lines.end()));
            let mut text = String::new();
            let mut at = from;
            for cut in &block_cuts {
                text.push_str(&file.text[at..cut.start]);
                text.push_str(ELLIPSIS);
                at = cut.end;
            }
            text.push_str(&file.text[at..to]);
            blocks.push(Block { lines, text });
            cuts.extend(block_cuts);
        }
        Self { file, cuts, blocks }
    }

    /// Where a file offset is shown. Labels never point inside a cut.
    fn shown(&self, offset: usize) -> usize {
        let removed: usize = self
            .cuts
            .iter()
            .take_while(|cut| cut.end <= offset)
            .map(|cut| cut.len() - ELLIPSIS.len())
            .sum();
        offset - removed
    }

    /// The file offset of a shown one (the end of a cut for a point inside its ellipsis).
    fn real(&self, shown: usize) -> usize {
        let mut removed = 0;
        for cut in &self.cuts {
            let cut_at = cut.start - removed;
            if shown <= cut_at {
                break;
            }
            removed += cut.len() - ELLIPSIS.len();
            if shown < cut_at + ELLIPSIS.len() {
                return cut.end;
            }
        }
        shown + removed
    }

    fn shown_label(&self, label: &LabeledSpan) -> LabeledSpan {
        let start = self.shown(label.offset());
        let end = self.shown(label.offset() + label.len());
        let span = SourceSpan::new(start.into(), end - start);
        let text = label.label().map(String::from);
        if label.primary() {
            LabeledSpan::new_primary_with_span(text, span)
        } else {
            LabeledSpan::new_with_span(text, span)
        }
    }

    fn has_cut_in(&self, from: usize, to: usize) -> bool {
        self.cuts.iter().any(|cut| cut.start < to && cut.end > from)
    }

    /// The shown text of whole lines `first..=last`, or `None` when cut lines in it fall in
    /// separate blocks (miette then draws the labels as separate snippets).
    fn lines_text(&self, first: usize, last: usize) -> Option<&[u8]> {
        let (from, to) = (self.file.start(first), self.file.next_start(last));
        if !self.has_cut_in(from, to) {
            return Some(&self.file.text.as_bytes()[from..to]);
        }
        let block = self
            .blocks
            .iter()
            .find(|b| b.lines.contains(&first) && b.lines.contains(&last))?;
        let base = self.shown(self.file.start(*block.lines.start()));
        block
            .text
            .as_bytes()
            .get(self.shown(from) - base..self.shown(to) - base)
    }
}

impl SourceCode for Excerpt<'_> {
    fn read_span<'b>(
        &'b self,
        span: &SourceSpan,
        context_lines_before: usize,
        context_lines_after: usize,
    ) -> Result<Box<dyn SpanContents<'b> + 'b>, MietteError> {
        let file = self.file;
        let start = self.real(span.offset());
        let end = self.real(span.offset() + span.len()).max(start);
        if end > file.text.len() {
            return Err(MietteError::OutOfBounds);
        }
        // miette's reader, run on whole lines from one more than the context before the
        // span, gives what it would on the whole file, offset by the lines skipped.
        let first = file.line_of(start).saturating_sub(context_lines_before + 1);
        let last_byte = last_byte(SourceSpan::new(start.into(), end - start));
        let last = (file.line_of(last_byte) + context_lines_after + 2).min(file.last_line());
        let data = self
            .lines_text(first, last)
            .ok_or(MietteError::OutOfBounds)?;
        let piece_at = self.shown(file.start(first));
        let inner = <[u8] as SourceCode>::read_span(
            data,
            &SourceSpan::new((span.offset() - piece_at).into(), span.len()),
            context_lines_before,
            context_lines_after,
        )?;
        let mut column = inner.column();
        let line_start = file.start(file.line_of(start));
        if context_lines_before == 0 && self.has_cut_in(line_start, start) {
            // The header's column on a cut line: characters, as the json and github formats count.
            column = file
                .text
                .get(line_start..start)
                .map_or(start - line_start, |s| s.chars().count());
        }
        let contents = MietteSpanContents::new_named(
            file.name.to_owned(),
            inner.data(),
            SourceSpan::new(
                (inner.span().offset() + piece_at).into(),
                inner.span().len(),
            ),
            inner.line() + first,
            column,
            inner.line_count() + first,
        )
        .with_language("yaml");
        Ok(Box::new(contents))
    }
}

/// The cuts that bring one line down to windows around the label points on it (or to its
/// start when none is), or none for a line that is not long.
fn line_cuts(file: &File<'_>, line: usize, points: &[usize]) -> Vec<Range<usize>> {
    let (start, end) = (file.start(line), file.text_end(line));
    if end - start <= LONG_LINE {
        return Vec::new();
    }
    let text = &file.text[start..end];
    let mut keep: Vec<Range<usize>> = points
        .iter()
        .filter(|&&p| (start..=end).contains(&p))
        .map(|&p| {
            let at = floor_char_boundary(text, p - start);
            start + chars_before(text, at, WINDOW)..start + chars_after(text, at, WINDOW)
        })
        .collect();
    if keep.is_empty() {
        keep.push(start..start + chars_after(text, 0, 2 * WINDOW));
    }
    keep.sort_by_key(|k| k.start);
    let mut cuts = Vec::new();
    let mut at = start;
    for kept in keep {
        if kept.start >= at + MIN_CUT {
            cuts.push(at..kept.start);
        }
        at = at.max(kept.end);
    }
    if end >= at + MIN_CUT {
        cuts.push(at..end);
    }
    cuts
}

fn floor_char_boundary(text: &str, mut at: usize) -> usize {
    at = at.min(text.len());
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}

/// The offset `n` characters before `at` (or 0).
fn chars_before(text: &str, at: usize, n: usize) -> usize {
    text[..at]
        .char_indices()
        .rev()
        .nth(n.saturating_sub(1))
        .map_or(0, |(i, _)| i)
}

/// The offset `n` characters after `at` (or the end).
fn chars_after(text: &str, at: usize, n: usize) -> usize {
    text[at..]
        .char_indices()
        .nth(n)
        .map_or(text.len(), |(i, _)| at + i)
}

#[cfg(test)]
mod tests {
    use miette::NamedSource;

    use super::*;

    /// The human format as it was before excerpts: miette reading the whole file.
    fn whole_file(path: &str, source: &str, problem: &Problem) -> String {
        #[derive(Debug)]
        struct Whole<'a>(&'a Problem, NamedSource<String>);
        impl std::fmt::Display for Whole<'_> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.fmt(f)
            }
        }
        impl std::error::Error for Whole<'_> {}
        impl Diagnostic for Whole<'_> {
            fn code<'b>(&'b self) -> Option<Box<dyn std::fmt::Display + 'b>> {
                self.0.code()
            }
            fn severity(&self) -> Option<Severity> {
                self.0.severity()
            }
            fn help<'b>(&'b self) -> Option<Box<dyn std::fmt::Display + 'b>> {
                self.0.help()
            }
            fn source_code(&self) -> Option<&dyn SourceCode> {
                Some(&self.1)
            }
            fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
                self.0.labels()
            }
        }
        let source = NamedSource::new(path, source.to_owned()).with_language("yaml");
        let mut out = String::new();
        GraphicalReportHandler::new_themed(GraphicalTheme::unicode_nocolor())
            .with_width(120)
            .render_report(&mut out, &Whole(problem, source))
            .unwrap();
        out
    }

    fn at(source: &str, needle: &str, nth: usize) -> SourceSpan {
        let offset = source.match_indices(needle).nth(nth).unwrap().0;
        SourceSpan::new(offset.into(), needle.len())
    }

    #[test]
    fn short_lines_render_as_miette_renders_the_whole_file() {
        let mut long = String::from("runbook: 1\nname: t\nsteps:\n");
        for i in 0..40 {
            long.push_str(&format!("  - id: s{i}\n    wait: 1s\n"));
        }
        let sources = [
            long.clone(),
            long.replace('\n', "\r\n"),
            long.replace('\n', "\r"),
            long.replace("name: t", "name: tëst — ünïcode"),
            format!("{long}  - id: s3\n    wait: 1s"),
        ];
        for source in &sources {
            let problems = [
                Problem::DuplicateStep {
                    id: "s3".into(),
                    span: at(source, "s3", 1),
                    first: at(source, "s3", 0),
                },
                Problem::DuplicateStep {
                    id: "s1".into(),
                    span: at(source, "s12", 0),
                    first: at(source, "s1", 0),
                },
                Problem::DuplicateStep {
                    id: "s3".into(),
                    span: at(source, "s6", 0),
                    first: at(source, "s3", 0),
                },
                Problem::SelfDependency {
                    id: "s0".into(),
                    span: at(source, "s0", 0),
                },
                Problem::InvalidRollback {
                    count: 0,
                    span: SourceSpan::new(at(source, "s5", 0).offset().into(), 60),
                },
                Problem::Empty {
                    span: SourceSpan::new(source.len().into(), 0),
                },
                Problem::NoStepKind {
                    id: "t".into(),
                    span: at(source, "runbook", 0),
                },
            ];
            for problem in problems {
                let report = FileReport {
                    path: "f.yaml".into(),
                    source: source.clone(),
                    problems: vec![problem.clone()],
                    included_from: Vec::new(),
                    included: Vec::new(),
                };
                let ours = human(&[report], false);
                let expected = format!(
                    "{}\n1 file: 1 error, 0 warnings\n",
                    whole_file("f.yaml", source, &problem)
                );
                assert_eq!(ours, expected, "{problem:?} in {source:?}");
            }
        }
    }
}
