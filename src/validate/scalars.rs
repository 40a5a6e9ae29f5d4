//! Checks on the YAML scalars themselves, before the model is built: NUL characters (which no
//! command line, query or file name can carry), and Windows paths written in double quotes,
//! where `"C:\new\temp"` silently becomes `C:`, a newline, `ew`, a tab and `emp`.

use crate::diagnostic::{Problem, QUOTE_PATHS_HELP};
use crate::yaml::{Node, Span, Value};

pub fn check(root: &Node, source: &str, problems: &mut Vec<Problem>) {
    // An explicit stack: the tree may be as deep as the parser's budget allows.
    let mut stack = vec![root];
    while let Some(node) = stack.pop() {
        match &node.value {
            Value::String(text) => scalar(node.span, text, source, problems),
            Value::Seq(items) => stack.extend(items.iter().rev()),
            Value::Map(entries) => {
                for (key, value) in entries.iter().rev() {
                    if key.name.contains('\0') {
                        problems.push(Problem::NulByte {
                            span: key.span.into(),
                        });
                    }
                    stack.push(value);
                }
            }
            Value::Null | Value::Bool(_) | Value::Int(_) | Value::Float(_) => {}
        }
    }
}

fn scalar(span: Span, text: &str, source: &str, problems: &mut Vec<Problem>) {
    if text.contains('\0') {
        problems.push(Problem::NulByte { span: span.into() });
    }
    let Some(raw) = source.get(span.offset()..span.end()) else {
        return;
    };
    if !raw.starts_with('"') {
        return;
    }
    if let Some((at, escape, meaning)) = path_escape(raw) {
        problems.push(Problem::EscapedPath {
            escape: escape.to_owned(),
            meaning,
            span: Span::new(span.offset() + at, escape.len()).into(),
            help: QUOTE_PATHS_HELP,
        });
    }
}

/// In a double-quoted scalar that holds a Windows path (a drive `X:\` or a share `\\`), the
/// first escape that turns a path separator into a control character.
fn path_escape(raw: &str) -> Option<(usize, &str, &'static str)> {
    let bytes = raw.as_bytes();
    let drive = bytes
        .windows(4)
        .any(|w| w[0].is_ascii_alphabetic() && w[1] == b':' && w[2] == b'\\' && w[3] != b'\\');
    if !drive {
        return None;
    }
    let mut i = 0;
    while i + 1 < bytes.len() {
        if bytes[i] == b'\\' {
            let meaning = match bytes[i + 1] {
                b'n' => "a newline",
                b't' => "a tab",
                b'r' => "a carriage return",
                b'b' => "a backspace",
                b'f' => "a form feed",
                b'a' => "a bell",
                b'e' => "an escape character",
                b'v' => "a vertical tab",
                b'0' => "a NUL",
                _ => {
                    // `\\` is a backslash written correctly; skip both characters.
                    i += 2;
                    continue;
                }
            };
            return Some((i, &raw[i..i + 2], meaning));
        }
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::path_escape;

    #[test]
    fn a_drive_path_with_an_escape_is_found() {
        assert_eq!(
            path_escape(r#""C:\new\temp""#),
            Some((3, r"\n", "a newline"))
        );
        assert_eq!(
            path_escape(r#""-Path D:\logs\table""#),
            Some((14, r"\t", "a tab"))
        );
    }

    #[test]
    fn escaped_backslashes_and_text_are_left_alone() {
        assert_eq!(path_escape(r#""C:\\new\\temp""#), None);
        assert_eq!(path_escape(r#""line one\nline two""#), None);
        assert_eq!(path_escape(r#""C:\Program Files""#), None);
    }
}
