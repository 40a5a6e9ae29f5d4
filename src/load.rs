//! Reads a runbook file: size limit, UTF-8, YAML with a resource budget, then the typed model.
//!
//! Nothing here panics on bad input: every failure becomes a [`Problem`] with a location.

use std::io::Read;
use std::path::Path;

use crate::diagnostic::Problem;
use crate::model::{Runbook, build};
use crate::yaml::{Node, Span, Value, YamlError, YamlErrorClass, YamlErrorKind};

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

/// Parses the YAML text into a spanned tree under the resource budget.
pub fn parse_yaml(source: &str) -> Result<Node, Problem> {
    crate::yaml::parse(source).map_err(|err| yaml_problem(&err))
}

fn yaml_problem(err: &YamlError) -> Problem {
    let span = err.span.into();
    let message = err.kind.to_string();
    match (err.class(), &err.kind) {
        (YamlErrorClass::MultipleDocuments, _) => Problem::MultipleDocuments { span },
        (YamlErrorClass::ResourceLimit, _) => Problem::ResourceLimit { message, span },
        (YamlErrorClass::Syntax, YamlErrorKind::UnknownEscape(_)) => Problem::Syntax {
            message,
            span,
            help: crate::diagnostic::QUOTE_PATHS_HELP,
        },
        (YamlErrorClass::Syntax, YamlErrorKind::Tab(_)) => Problem::Syntax {
            message,
            span,
            help: crate::diagnostic::TAB_HELP,
        },
        (YamlErrorClass::Syntax, _) => Problem::Syntax {
            message,
            span,
            help: crate::diagnostic::SYNTAX_HELP,
        },
    }
}
