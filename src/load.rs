//! Reads a runbook file: size limit, UTF-8, YAML with a resource budget, then the typed model.
//!
//! Nothing here panics on bad input: every failure becomes a [`Problem`] with a location.

use std::io::Read;
use std::path::Path;

use crate::diagnostic::Problem;
use crate::model::{Runbook, build};
use crate::yaml::{Node, Span, Value};

/// Runbooks are small; anything larger than this is refused before it is parsed.
pub const MAX_FILE_BYTES: u64 = 32 * 1024 * 1024;

/// A file as read: its text and, when its shape could be read, the model.
#[derive(Debug)]
pub struct Loaded {
    pub path: String,
    pub source: String,
    pub runbook: Option<Runbook>,
    pub problems: Vec<Problem>,
}

/// The absolute directory of the runbook file at `path`.
pub fn dir_of(path: &Path) -> std::path::PathBuf {
    let absolute = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    match absolute.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    }
}

/// Reads and parses `path`. Problems in the file are in [`Loaded::problems`].
pub fn load(path: &Path) -> Loaded {
    let display = path.display().to_string();
    match read(path) {
        Ok(source) => {
            let (mut runbook, problems) = parse(&source);
            if let Some(runbook) = &mut runbook {
                runbook.dir = dir_of(path);
                if let Some(env_file) = &mut runbook.env_file {
                    let (line, column) = crate::line_index::LineIndex::new(&source)
                        .position(env_file.path.span.offset);
                    env_file.at = format!("{display}:{line}:{column}");
                }
            }
            Loaded {
                path: display,
                source,
                runbook,
                problems,
            }
        }
        Err(failure) => {
            let (problem, source) = *failure;
            Loaded {
                path: display,
                source,
                runbook: None,
                problems: vec![problem],
            }
        }
    }
}

/// The text of the file, or the problem and whatever text could be read for context.
pub fn read(path: &Path) -> Result<String, Box<(Problem, String)>> {
    let io = |err: std::io::Error| {
        Box::new((
            Problem::Io {
                path: path.display().to_string(),
                reason: err.to_string(),
            },
            String::new(),
        ))
    };
    let file = std::fs::File::open(path).map_err(io)?;
    let meta = file.metadata().map_err(io)?;
    if meta.is_dir() {
        return Err(Box::new((
            Problem::Io {
                path: path.display().to_string(),
                reason: "it is a directory".to_owned(),
            },
            String::new(),
        )));
    }
    if meta.len() > MAX_FILE_BYTES {
        return Err(Box::new((
            Problem::TooLarge {
                size: meta.len(),
                limit: MAX_FILE_BYTES,
            },
            String::new(),
        )));
    }
    // Read one byte past the limit, so a file that grows while read is still caught.
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(io)?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(Box::new((
            Problem::TooLarge {
                size: meta.len().max(bytes.len() as u64),
                limit: MAX_FILE_BYTES,
            },
            String::new(),
        )));
    }
    String::from_utf8(bytes).map_err(|err| {
        let at = err.utf8_error().valid_up_to();
        // Keep the valid prefix so the label can be shown in context.
        let source = String::from_utf8_lossy(err.as_bytes()).into_owned();
        let offset = source
            .char_indices()
            .nth(
                String::from_utf8_lossy(&err.as_bytes()[..at])
                    .chars()
                    .count(),
            )
            .map_or(source.len(), |(i, _)| i);
        Box::new((
            Problem::InvalidUtf8 {
                span: Span::new(offset, 1).into(),
            },
            source,
        ))
    })
}

/// Parses runbook text into the model, collecting every problem of shape.
pub fn parse(source: &str) -> (Option<Runbook>, Vec<Problem>) {
    let mut problems = Vec::new();
    let root = match parse_yaml(source) {
        Ok(root) => root,
        Err(problem) => return (None, vec![problem]),
    };
    match &root.value {
        Value::Null => {
            problems.push(Problem::Empty {
                span: Span::new(0, 0).into(),
            });
            return (None, problems);
        }
        Value::Map(_) => {}
        other => {
            problems.push(Problem::NotAMapping {
                found: other.kind(),
                span: root.span.into(),
            });
            return (None, problems);
        }
    }
    crate::validate::scalars::check(&root, source, &mut problems);
    let runbook = build::build(&root, &mut problems);
    (runbook, problems)
}

fn options() -> serde_saphyr::Options {
    // YAML 1.2 booleans only: `on`, `yes` and `no` stay strings (`retry.on` is a key).
    serde_saphyr::options! {
        strict_booleans: true,
        budget: serde_saphyr::budget! {
            max_reader_input_bytes: Some(MAX_FILE_BYTES as usize),
            max_depth: 48,
            max_nodes: 8_000_000,
            max_events: 16_000_000,
            max_aliases: 10_000,
            max_anchors: 10_000,
            max_documents: 1,
        },
        alias_limits: serde_saphyr::alias_limits! {
            max_total_replayed_events: 20_000,
            max_replay_stack_depth: 16,
            max_alias_expansions_per_anchor: 1_000,
        },
    }
}

/// Parses the YAML text into a spanned tree under the resource budget.
pub fn parse_yaml(source: &str) -> Result<Node, Problem> {
    serde_saphyr::from_str_with_options::<Node>(source, options())
        .map_err(|err| yaml_problem(source, &err))
}

fn yaml_problem(source: &str, err: &serde_saphyr::Error) -> Problem {
    let inner = err.without_snippet();
    let text = inner.to_string();
    // The message carries its own " at line …" suffix; the label shows the place instead.
    let mut message = text
        .find(" at line ")
        .map_or(text.as_str(), |i| &text[..i])
        .to_owned();
    // The parser's advice on duplicate keys is addressed to programmers, not to authors.
    if let Some(rest) = message.strip_prefix("duplicate mapping key: ") {
        let key = rest
            .split(", set DuplicateKeyPolicy")
            .next()
            .unwrap_or(rest);
        message = format!("duplicate key `{key}`");
    }
    let span = err
        .location()
        .map(|loc| {
            let offset = loc.span().byte_offset().map_or_else(
                || offset_of(source, loc.line(), loc.column()),
                |o| usize::try_from(o).unwrap_or(source.len()),
            );
            let offset = offset.min(source.len());
            let len = loc
                .span()
                .byte_len()
                .and_then(|l| usize::try_from(l).ok())
                .unwrap_or(0)
                .min(source.len() - offset);
            Span::new(offset, len)
        })
        .unwrap_or_default();
    let span = span.into();
    if matches!(inner, serde_saphyr::Error::MultipleDocuments { .. })
        || message.contains("documents")
    {
        Problem::MultipleDocuments { span }
    } else if message.contains("budget")
        || message.contains("recursion limit")
        || message.contains("alias")
        || message.contains("limit")
    {
        Problem::ResourceLimit { message, span }
    } else if message.contains("unknown escape") {
        // Located at the backslash, not at the opening quote.
        let at = span.offset();
        let backslash = source
            .get(at..)
            .and_then(|rest| rest.find('\\'))
            .map_or(at, |i| at + i);
        Problem::Syntax {
            message,
            span: Span::new(backslash, 2.min(source.len() - backslash)).into(),
            help: crate::diagnostic::QUOTE_PATHS_HELP,
        }
    } else if message.contains("found a tab") {
        // Located at the tab itself, on its own line.
        let at = span.offset();
        let tab = source
            .get(at..)
            .and_then(|rest| rest.find('\t'))
            .map_or(at, |i| at + i);
        Problem::Syntax {
            message,
            span: Span::new(tab, 1.min(source.len() - tab)).into(),
            help: crate::diagnostic::TAB_HELP,
        }
    } else {
        Problem::Syntax {
            message,
            span,
            help: crate::diagnostic::SYNTAX_HELP,
        }
    }
}

/// Byte offset of a 1-based line and character column.
fn offset_of(source: &str, line: u64, column: u64) -> usize {
    let mut offset = 0;
    for (i, l) in source.split_inclusive('\n').enumerate() {
        if i as u64 + 1 == line {
            return offset
                + l.char_indices()
                    .nth(usize::try_from(column.saturating_sub(1)).unwrap_or(0))
                    .map_or(l.len(), |(i, _)| i);
        }
        offset += l.len();
    }
    source.len()
}
