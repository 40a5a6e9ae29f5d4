//! Why a YAML text could not be read into a tree, each failure with the span it concerns.
//!
//! The parser's own syntax messages are passed through in its words; everything this crate
//! decides (duplicate keys, limits, scalar types, merge keys) is worded here, in `Display`.

use std::fmt;

use super::Span;
use super::budget::Breach;

/// A YAML text that is not a tree this crate accepts.
#[derive(Clone, Debug, PartialEq)]
pub struct YamlError {
    pub kind: YamlErrorKind,
    pub span: Span,
}

/// What went wrong.
#[derive(Clone, Debug, PartialEq)]
pub enum YamlErrorKind {
    /// A syntax error, in the parser's words.
    Syntax(String),
    /// An unknown escape in a double-quoted scalar (located at the backslash).
    UnknownEscape(String),
    /// A tab where the parser expected indentation (located at the tab).
    Tab(String),
    /// One of the parser's own limits (nesting, directive size, anchor names).
    ParserLimit(String),
    /// The same key twice in one mapping.
    DuplicateKey(Option<String>),
    /// A resource budget ran out; a second document is one too.
    Budget(Breach),
    /// Aliases replayed more nodes in total than allowed.
    AliasReplay { total: usize, max: usize },
    /// One anchor referred to by more aliases than allowed.
    AliasExpansions {
        anchor: usize,
        count: usize,
        max: usize,
    },
    /// An alias of an anchor not defined before it.
    UnknownAnchor,
    /// An alias inside the node its anchor names.
    RecursiveAlias,
    /// A `<<` merge key whose value is not a mapping or a list of mappings.
    MergeValue,
    /// A list or mapping used as a mapping key.
    KeyNotScalar,
    /// An integer beyond the 64-bit range that the model reads.
    IntegerTooLarge(u64),
    /// `.inf`, `.nan` or a literal that overflows to infinity.
    NonFiniteFloat(String),
    /// A scalar whose explicit tag (`!!int`, `!!float`…) does not fit its text.
    InvalidScalar(&'static str),
    /// `!!bool` on something other than true or false.
    InvalidBoolean,
    /// A tag (`!!timestamp`, `!!seq`…) that cannot be read as a string.
    TaggedScalarNotString,
    /// A tag on the wrong kind of node (`!!int` on a mapping).
    UnsupportedTag(String),
    /// `!include` on a list or mapping.
    IncludeForm,
    /// `!!binary` text that is not base64.
    InvalidBase64,
    /// `!!binary` data that is not UTF-8 text.
    BinaryNotUtf8,
}

/// How a failure is reported: the three kinds of problem a YAML failure becomes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum YamlErrorClass {
    Syntax,
    ResourceLimit,
    MultipleDocuments,
}

impl YamlError {
    pub const fn new(kind: YamlErrorKind, span: Span) -> Self {
        Self { kind, span }
    }

    pub fn class(&self) -> YamlErrorClass {
        use YamlErrorKind as K;
        match &self.kind {
            K::Budget(Breach::Documents { .. }) => YamlErrorClass::MultipleDocuments,
            K::Budget(_)
            | K::ParserLimit(_)
            | K::AliasReplay { .. }
            | K::AliasExpansions { .. }
            | K::UnknownAnchor => YamlErrorClass::ResourceLimit,
            _ => YamlErrorClass::Syntax,
        }
    }
}

impl fmt::Display for YamlErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Syntax(message)
            | Self::UnknownEscape(message)
            | Self::Tab(message)
            | Self::ParserLimit(message) => f.write_str(message),
            Self::DuplicateKey(Some(key)) => write!(f, "duplicate key `{}`", Escaped(key)),
            Self::DuplicateKey(None) => f.write_str("duplicate key"),
            Self::Budget(breach) => write!(f, "budget breached: {breach:?}"),
            Self::AliasReplay { total, max } => write!(
                f,
                "alias replay limit exceeded: total_replayed_events={total} > {max}"
            ),
            Self::AliasExpansions { anchor, count, max } => write!(
                f,
                "alias expansion limit exceeded for anchor id {anchor}: {count} > {max}"
            ),
            Self::UnknownAnchor => f.write_str("alias references unknown anchor"),
            Self::RecursiveAlias => {
                f.write_str("recursive references require weak recursion types")
            }
            Self::MergeValue => {
                f.write_str("YAML merge value must be mapping or sequence of mappings")
            }
            Self::KeyNotScalar => f.write_str("a mapping key must be a plain scalar"),
            Self::IntegerTooLarge(value) => write!(f, "integer {value} is too large"),
            Self::NonFiniteFloat(text) => write!(
                f,
                "non-finite float `{}` rejected by the configured policy",
                Escaped(text)
            ),
            Self::InvalidScalar(what) => write!(f, "invalid {what}"),
            Self::InvalidBoolean => f.write_str("invalid boolean (strict mode expects true/false)"),
            Self::TaggedScalarNotString => {
                f.write_str("cannot deserialize tagged scalar into string")
            }
            Self::UnsupportedTag(tag) => write!(f, "unsupported tag `{}`", Escaped(tag)),
            Self::IncludeForm => {
                f.write_str("!include currently only supports the scalar form: !include <path>")
            }
            Self::InvalidBase64 => f.write_str("invalid !!binary base64"),
            Self::BinaryNotUtf8 => f.write_str("!!binary scalar is not valid UTF-8"),
        }
    }
}

/// Text from the file inside a message, control characters escaped (`\t`, `\u{1b}`).
struct Escaped<'a>(&'a str);

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in self.0.chars() {
            if c.is_control() || matches!(c, '\u{2028}' | '\u{2029}') {
                write!(f, "{}", c.escape_debug())?;
            } else {
                write!(f, "{c}")?;
            }
        }
        Ok(())
    }
}

impl fmt::Display for YamlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.kind.fmt(f)
    }
}

impl std::error::Error for YamlError {}
