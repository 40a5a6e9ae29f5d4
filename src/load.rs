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
                        .position(env_file.path.span.offset());
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
    // Read one byte past the limit, so a file that grows while read is still caught. The
    // buffer is the file's size (and the byte that tells its end), not grown by doubling.
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).map_or(0, |n| n + 1));
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
    // Each step is built as soon as the reader has it, and its part of the tree dropped.
    parse_with(source, build::Streamed::LISTS)
}

/// [`parse`], building the steps of `lists` as they are read and the rest from the tree.
fn parse_with(source: &str, lists: &[&'static str]) -> (Option<Runbook>, Vec<Problem>) {
    let mut problems = Vec::new();
    let mut streamed = build::Streamed::default();
    let parsed = crate::yaml::parse_streaming(source, lists, &mut |list, index, node| {
        streamed.item(list, index, node, source);
    });
    let root = match parsed {
        Ok(root) => root,
        Err(err) => return (None, vec![yaml_problem(&err)]),
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
    let runbook = build::build(root, streamed, &mut problems);
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

#[cfg(test)]
mod tests {
    use super::{parse, parse_with};

    /// Steps built one by one while the YAML is read are the steps built from the whole
    /// tree, with the same problems at the same places: for the shipped runbooks, and for
    /// steps with problems, under an alias, or merged in with `<<`.
    #[test]
    fn steps_built_while_reading_are_those_built_from_the_tree() {
        let mut texts = Vec::new();
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/runbooks");
        let mut dirs = vec![std::path::PathBuf::from(root)];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).expect("runbooks").flatten() {
                let path = entry.path();
                if path.is_dir() {
                    dirs.push(path);
                } else if path.extension().is_some_and(|e| e == "yaml") {
                    texts.push(std::fs::read_to_string(&path).expect("runbook"));
                }
            }
        }
        assert!(texts.len() > 10, "the shipped runbooks were not found");
        texts.extend(
            [
                // Problems of every kind inside steps and finally steps, and around them.
                "runbook: 1\nname: t\ncolour: x\nsteps:\n  - { id: a, wait: 1s, colour: x }\n  - { id: b, run: { program: \"C:\\new\" } }\n  - { wait: 5 }\n  - id: c\n    needs: b\n    run: { program: \"a\\0b\" }\n  - 7\nfinally:\n  - { id: f, wait: nope }\nlocks: 3\n",
                // The list under an alias, and a step replayed from an anchor.
                "runbook: 1\nname: t\nx: &list\n  - &s { id: a, wait: 1s }\n  - { id: b, wait: 1s }\nsteps: *list\nfinally:\n  - *s\n",
                // Steps merged into the top level.
                "<<: { runbook: 1, name: t, steps: [{ id: a, wait: 1s }, { id: a, wait: x }] }\n",
                // Not a list, and an empty one.
                "runbook: 1\nname: t\nsteps: { id: a }\nfinally: []\n",
                "runbook: 1\nname: t\nsteps:\n",
            ]
            .map(str::to_owned),
        );
        // In the order reports show them: by place in the file.
        let sorted = |mut problems: Vec<crate::diagnostic::Problem>| {
            problems.sort_by_key(|p| p.primary_span().map(|s| s.offset()));
            format!("{problems:?}")
        };
        for text in &texts {
            let (streamed, streamed_problems) = parse(text);
            let (whole, whole_problems) = parse_with(text, &[]);
            assert_eq!(streamed, whole, "{text}");
            assert_eq!(sorted(streamed_problems), sorted(whole_problems), "{text}");
        }
    }
}
