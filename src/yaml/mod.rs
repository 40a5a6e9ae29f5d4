//! A YAML document as a tree of nodes that each remember where they came from.
//!
//! The model is built from this tree by hand rather than by serde derive, so that one pass can
//! report every unknown key, wrong type and missing field at once, each at its own location.

mod budget;
mod error;
mod events;
mod scalar;

pub use error::{YamlError, YamlErrorClass, YamlErrorKind};
pub use events::{parse, parse_streaming};

/// A byte range in the source file. Eight bytes, as every value of the model carries one:
/// a runbook file is at most `MAX_FILE_BYTES` (32 MiB), far below 4 GiB.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Span {
    offset: u32,
    len: u32,
}

const _: () = assert!(crate::load::MAX_FILE_BYTES <= u32::MAX as u64);

impl Span {
    /// Offsets past 4 GiB (never those of a runbook file) are held as 4 GiB.
    pub const fn new(offset: usize, len: usize) -> Self {
        Self {
            offset: narrow(offset),
            len: narrow(len),
        }
    }

    pub const fn offset(self) -> usize {
        self.offset as usize
    }

    pub const fn len(self) -> usize {
        self.len as usize
    }

    pub const fn is_empty(self) -> bool {
        self.len == 0
    }

    pub const fn end(self) -> usize {
        self.offset() + self.len()
    }
}

const fn narrow(n: usize) -> u32 {
    if n > u32::MAX as usize {
        u32::MAX
    } else {
        n as u32
    }
}

impl From<Span> for miette::SourceSpan {
    fn from(span: Span) -> Self {
        (span.offset(), span.len()).into()
    }
}

/// One YAML node with its span.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    pub value: Value,
    pub span: Span,
}

/// The value of a node. Mappings keep their key order and the span of every key.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    String(String),
    Seq(Vec<Node>),
    Map(Vec<(Key, Node)>),
}

/// A mapping key: the text and where it stands.
#[derive(Clone, Debug, PartialEq)]
pub struct Key {
    pub name: String,
    pub span: Span,
}

impl Value {
    /// What a value is called in messages ("expected a mapping, found a list").
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Int(_) => "an integer",
            Value::Float(_) => "a number",
            Value::String(_) => "a string",
            Value::Seq(_) => "a list",
            Value::Map(_) => "a mapping",
        }
    }
}

impl Node {
    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_map(&self) -> Option<&[(Key, Node)]> {
        match &self.value {
            Value::Map(entries) => Some(entries),
            _ => None,
        }
    }

    /// The node as plain JSON, for default values and parameter files.
    pub fn to_json(&self) -> serde_json::Value {
        match &self.value {
            Value::Null => serde_json::Value::Null,
            Value::Bool(b) => serde_json::Value::Bool(*b),
            Value::Int(i) => serde_json::Value::from(*i),
            Value::Float(f) => serde_json::Number::from_f64(*f)
                .map(serde_json::Value::Number)
                .unwrap_or(serde_json::Value::Null),
            Value::String(s) => serde_json::Value::String(s.clone()),
            Value::Seq(items) => items.iter().map(Node::to_json).collect(),
            Value::Map(entries) => entries
                .iter()
                .map(|(k, v)| (k.name.clone(), v.to_json()))
                .collect::<serde_json::Map<_, _>>()
                .into(),
        }
    }
}

impl schemars::JsonSchema for Node {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "AnyValue".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!(true)
    }
}

/// Where, in the file, the byte `at` of a scalar's value stands.
///
/// Exact for plain and quoted scalars on one line and for literal block scalars; for folded,
/// escaped or multi-line flow scalars it walks the source and stays within the right line.
pub fn scalar_offset(source: &str, span: Span, value: &str, at: usize) -> usize {
    let Some(raw) = source.get(span.offset()..span.end().min(source.len())) else {
        return span.offset().min(source.len());
    };
    let at = at.min(value.len());
    if raw == value {
        return span.offset() + at;
    }
    let (quote, body_start) = match raw.as_bytes().first() {
        Some(b'"') => (Some('"'), 1),
        Some(b'\'') => (Some('\''), 1),
        _ => (None, 0),
    };
    if quote.is_some() && raw.len() >= 2 && raw.get(1..raw.len() - 1) == Some(value) {
        return span.offset() + 1 + at;
    }
    // A block scalar's span starts at its first content character: its indentation is the
    // run of spaces before that on the same line.
    let line_start = source[..span.offset()].rfind('\n').map_or(0, |i| i + 1);
    let indent = span.offset() - line_start;
    // Walk value and source together, one value character at a time.
    let src = &source[span.offset() + body_start..];
    let mut s = src.char_indices().peekable();
    for (v_index, v_char) in value.char_indices() {
        if v_index >= at {
            break;
        }
        let Some(&(_, c)) = s.peek() else {
            break;
        };
        match (quote, c) {
            (Some('"'), '\\') => {
                s.next();
                // \xNN, \uNNNN, \UNNNNNNNN take their digits with them.
                let digits = match s.next().map(|(_, e)| e) {
                    Some('x') => 2,
                    Some('u') => 4,
                    Some('U') => 8,
                    _ => 0,
                };
                for _ in 0..digits {
                    s.next();
                }
            }
            (Some('\''), '\'') => {
                s.next();
                s.next();
            }
            (_, '\n' | '\r') if quote.is_some() || v_char != '\n' => {
                // A folded line break and the next line's indentation are one character.
                while s
                    .next_if(|&(_, c)| matches!(c, '\n' | '\r' | ' ' | '\t'))
                    .is_some()
                {}
            }
            (None, '\n') => {
                // Literal block scalar: skip the next line's indentation.
                s.next();
                for _ in 0..indent {
                    if s.next_if(|&(_, c)| c == ' ').is_none() {
                        break;
                    }
                }
            }
            _ => {
                s.next();
            }
        }
    }
    let inner = s.peek().map_or(src.len(), |&(i, _)| i);
    (span.offset() + body_start + inner).min(source.len())
}

#[cfg(test)]
mod tests {
    use super::{Span, scalar_offset};

    /// The byte offset of `needle` in `text`.
    fn pos(text: &str, needle: &str) -> usize {
        text.find(needle).expect("needle in text")
    }

    /// `scalar_offset` of byte `at` of `value`, the scalar being the first `raw` in `source`.
    fn offset(source: &str, raw: &str, value: &str, at: usize) -> usize {
        scalar_offset(source, Span::new(pos(source, raw), raw.len()), value, at)
    }

    /// The `{{` of `value` is placed on the `{{` of `source`.
    fn finds_template(source: &str, raw: &str, value: &str) {
        let found = offset(source, raw, value, pos(value, "{{"));
        assert_eq!(found, pos(source, "{{"), "{source:?}");
    }

    #[test]
    fn plain_scalar_maps_one_to_one() {
        finds_template("key: hello {{ x }}\n", "hello {{ x }}", "hello {{ x }}");
    }

    #[test]
    fn quoted_scalar_skips_the_opening_quote() {
        finds_template(
            "key: \"hello {{ x }}\"\n",
            "\"hello {{ x }}\"",
            "hello {{ x }}",
        );
    }

    #[test]
    fn doubled_single_quote_is_one_character() {
        finds_template("key: 'it''s {{ x }}'\n", "'it''s {{ x }}'", "it's {{ x }}");
    }

    #[test]
    fn double_quoted_escapes_take_their_digits() {
        let raw = "\"\\u00e9\\t\\x41 {{ x }}\"";
        finds_template(&format!("key: {raw}\n"), raw, "é\tA {{ x }}");
    }

    #[test]
    fn literal_block_skips_each_lines_indentation() {
        let raw = "first\n  {{ x }}\n";
        finds_template(&format!("key: |\n  {raw}"), raw, "first\n{{ x }}\n");
    }

    #[test]
    fn folded_line_break_is_one_space() {
        let raw = "first\n  {{ x }}\n";
        finds_template(&format!("key: >\n  {raw}"), raw, "first {{ x }}\n");
    }

    #[test]
    fn multibyte_characters_before_the_point() {
        let raw = "'ünïcødé ☃ {{ x }}'";
        finds_template(&format!("key: {raw}\n"), raw, "ünïcødé ☃ {{ x }}");
    }

    #[test]
    fn a_point_past_the_value_stays_in_the_source() {
        let source = "key: abc\n";
        assert_eq!(offset(source, "abc", "abc", 1_000), pos(source, "abc") + 3);
    }

    #[test]
    fn a_span_outside_the_source_does_not_panic() {
        let source = "key: abc\n";
        assert_eq!(
            scalar_offset(source, Span::new(1_000, 5), "abc", 1),
            source.len()
        );
        assert!(scalar_offset(source, Span::new(5, 1_000), "abc", 2) <= source.len());
    }

    #[test]
    fn every_point_of_a_hostile_value_lands_on_a_character_boundary() {
        let cases = [
            ("k: \"a\\\"b\\\\c\\n\\0\"\n", "a\"b\\c\n\0"),
            ("k: 'a''''b'\n", "a''b"),
            ("k: \"\"\n", ""),
            ("k: ''\n", ""),
            ("k: \"line\n  folded\"\n", "line folded"),
            ("k: |\n  ☃\n  é\n", "☃\né\n"),
        ];
        for (source, value) in cases {
            let start = 3;
            let span = Span::new(start, source.len() - start - 1);
            for at in 0..=value.len() + 2 {
                let o = scalar_offset(source, span, value, at);
                assert!(o <= source.len(), "{source:?} at {at}: {o}");
                assert!(source.is_char_boundary(o), "{source:?} at {at}: {o}");
            }
        }
    }
}

#[cfg(test)]
mod oracle;
