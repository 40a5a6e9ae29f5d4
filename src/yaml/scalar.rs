//! What a scalar means: null, a boolean, an integer, a float or a string, by the YAML 1.2 core
//! schema (`yes`, `no`, `on` and `off` stay strings; `0x`, `0o` and `0b` integers; no octal
//! `017`), and by its tag when it has one (`!!str 1` is a string, `!!int "2"` an integer).

use std::borrow::Cow;

use base64::Engine;
use granit_parser::ScalarStyle;

use super::Value;
use super::error::YamlErrorKind;

/// The meaning an explicit tag gives a node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TagKind {
    None,
    Int,
    Float,
    Bool,
    Null,
    Seq,
    Map,
    TimeStamp,
    /// `!time`, `!degrees`, `!radians`: float tags this crate does not convert.
    Angle,
    Binary,
    String,
    Merge,
    Value,
    /// `!` alone: a string.
    NonSpecific,
    Include,
    /// Any other tag, told apart by its text.
    Other,
}

const CORE: &str = "tag:yaml.org,2002:";

/// An explicit tag: its meaning, its text, and its size as the budget counts it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tag {
    pub kind: TagKind,
    pub text: Box<str>,
    pub budget_len: usize,
}

impl Tag {
    pub fn from_parser(tag: &granit_parser::Tag) -> Self {
        let (handle, suffix) = tag.parts();
        Self {
            kind: kind_of(tag),
            text: tag.to_string().into_boxed_str(),
            budget_len: handle.len().saturating_add(suffix.len()),
        }
    }

    /// The tag a replayed `<<` keeps.
    pub fn merge() -> Self {
        Self {
            kind: TagKind::Merge,
            text: format!("{CORE}merge").into_boxed_str(),
            budget_len: CORE.len() + "merge".len(),
        }
    }
}

pub fn kind_of_opt(tag: Option<&Tag>) -> TagKind {
    tag.map_or(TagKind::None, |t| t.kind)
}

fn kind_of(tag: &granit_parser::Tag) -> TagKind {
    for include in [
        "!include",
        "tag:yaml.org,2002:include",
        "tag:yaml.org,2002:!include",
    ] {
        if let Some(rest) = tag.suffix_in_namespace(include)
            && (rest.is_empty() || rest.starts_with('#'))
        {
            return TagKind::Include;
        }
    }
    if let Some(core) = tag.core_suffix().and_then(core_name) {
        return core;
    }
    if let Some(suffix) = tag.suffix_in_namespace(CORE) {
        match suffix.as_ref() {
            "merge" => return TagKind::Merge,
            "value" => return TagKind::Value,
            name => return named(name.strip_prefix('!').unwrap_or(name)),
        }
    }
    let Some(suffix) = tag.suffix_in_namespace("!") else {
        return TagKind::Other;
    };
    match suffix.as_ref() {
        "" | "!" => TagKind::NonSpecific,
        "!timestamp" => TagKind::TimeStamp,
        "!binary" => TagKind::Binary,
        name => match name.strip_prefix('!') {
            Some(name) => core_name(name).unwrap_or(TagKind::Other),
            None => named(name),
        },
    }
}

fn core_name(name: &str) -> Option<TagKind> {
    Some(match name {
        "null" => TagKind::Null,
        "bool" => TagKind::Bool,
        "int" => TagKind::Int,
        "float" => TagKind::Float,
        "map" => TagKind::Map,
        "seq" => TagKind::Seq,
        "str" => TagKind::String,
        _ => return None,
    })
}

fn named(name: &str) -> TagKind {
    match name {
        "timestamp" => TagKind::TimeStamp,
        "time" | "degrees" | "radians" => TagKind::Angle,
        "binary" => TagKind::Binary,
        "include" => TagKind::Include,
        other => core_name(other).unwrap_or(TagKind::Other),
    }
}

impl TagKind {
    pub fn can_be_string(self) -> bool {
        matches!(
            self,
            Self::None
                | Self::String
                | Self::Merge
                | Self::Value
                | Self::Other
                | Self::Include
                | Self::NonSpecific
        )
    }

    fn forces_string(self) -> bool {
        matches!(self, Self::String | Self::NonSpecific)
    }

    fn is_core(self) -> bool {
        matches!(
            self,
            Self::Int
                | Self::Float
                | Self::Bool
                | Self::Null
                | Self::Seq
                | Self::Map
                | Self::String
        )
    }
}

/// Whether a scalar is null: `!!null`, or a plain empty, `~` or `null` without a type tag.
pub fn is_null(tag: TagKind, value: &str, style: ScalarStyle) -> bool {
    tag == TagKind::Null
        || (!tag.is_core()
            && !tag.forces_string()
            && !matches!(tag, TagKind::Binary | TagKind::TimeStamp | TagKind::Angle)
            && style == ScalarStyle::Plain
            && matches!(value, "" | "~" | "null" | "Null" | "NULL"))
}

fn trim(s: &str) -> &str {
    s.trim_matches([' ', '\t', '\r', '\n'])
}

/// The value of a scalar, or why its tag and its text disagree.
pub fn resolve(
    value: Cow<'_, str>,
    tag: TagKind,
    style: ScalarStyle,
) -> Result<Value, YamlErrorKind> {
    match tag {
        TagKind::Null => return Ok(Value::Null),
        TagKind::Bool => {
            return bool_of(&value)
                .map(Value::Bool)
                .ok_or(YamlErrorKind::InvalidBoolean);
        }
        TagKind::Int if trim(&value).starts_with('-') => {
            return signed(trim(&value))
                .and_then(|v| i64::try_from(v).ok())
                .map(Value::Int)
                .ok_or(YamlErrorKind::InvalidScalar("i64"));
        }
        TagKind::Int => {
            return unsigned(trim(&value))
                .and_then(|v| u64::try_from(v).ok())
                .ok_or(YamlErrorKind::InvalidScalar("u64"))
                .and_then(int_of_u64);
        }
        TagKind::Float | TagKind::Angle => {
            let float = (tag == TagKind::Float)
                .then(|| float_of(&value, tag))
                .flatten()
                .ok_or(YamlErrorKind::InvalidScalar("floating point"))?;
            return finite(float, &value);
        }
        _ => {}
    }
    if is_null(tag, &value, style) {
        return Ok(Value::Null);
    }
    if style != ScalarStyle::Plain
        || !tag.can_be_string()
        || tag == TagKind::Binary
        || tag.forces_string()
    {
        if tag == TagKind::Binary {
            return binary(&value).map(Value::String);
        }
        if !tag.can_be_string() {
            return Err(YamlErrorKind::TaggedScalarNotString);
        }
        return Ok(Value::String(value.into_owned()));
    }
    // Most plain scalars are words. One starting with a letter is a string unless it is a
    // boolean: no integer or float starts with a letter (`nan` and `inf` stay strings). A
    // letter first is a letter first once trimmed too.
    if value
        .as_bytes()
        .first()
        .is_some_and(|b| b.is_ascii_alphabetic() && !matches!(b, b't' | b'T' | b'f' | b'F'))
    {
        return Ok(Value::String(value.into_owned()));
    }
    if let Some(b) = bool_of(&value) {
        return Ok(Value::Bool(b));
    }
    let t = trim(&value);
    let digits = t.strip_prefix(['+', '-']).unwrap_or(t);
    if matches!(digits.as_bytes(), [b'0', b'X' | b'O' | b'B', ..]) || is_signed_nan(t) {
        return Ok(Value::String(value.into_owned()));
    }
    if t.starts_with('-') {
        if !leading_zero_decimal(t)
            && let Some(v) = signed(t).and_then(|v| i64::try_from(v).ok())
        {
            return Ok(Value::Int(v));
        }
    } else if let Some(v) = unsigned(t).and_then(|v| u64::try_from(v).ok()) {
        return int_of_u64(v);
    }
    if let Some(float) = float_of(&value, tag) {
        return finite(float, &value);
    }
    Ok(Value::String(value.into_owned()))
}

fn int_of_u64(v: u64) -> Result<Value, YamlErrorKind> {
    i64::try_from(v)
        .map(Value::Int)
        .map_err(|_| YamlErrorKind::IntegerTooLarge(v))
}

fn finite(float: f64, text: &str) -> Result<Value, YamlErrorKind> {
    if float.is_finite() {
        Ok(Value::Float(float))
    } else {
        Err(YamlErrorKind::NonFiniteFloat(text.to_owned()))
    }
}

fn bool_of(s: &str) -> Option<bool> {
    match trim(s) {
        "true" | "True" | "TRUE" => Some(true),
        "false" | "False" | "FALSE" => Some(false),
        _ => None,
    }
}

fn is_signed_nan(t: &str) -> bool {
    t.strip_prefix(['+', '-'])
        .is_some_and(|rest| matches!(rest, ".nan" | ".NaN" | ".NAN"))
}

fn leading_zero_decimal(t: &str) -> bool {
    let digits = t.strip_prefix(['+', '-']).unwrap_or(t);
    digits.len() > 1 && digits.starts_with('0') && digits.bytes().all(|b| b.is_ascii_digit())
}

/// Digits in `radix`, with single `_` between digits allowed.
fn digits(text: &str, radix: u32) -> Option<u128> {
    let bytes = text.as_bytes();
    let mut value: u128 = 0;
    let mut any = false;
    for (i, &b) in bytes.iter().enumerate() {
        if b == b'_' {
            if i == 0 || bytes[i - 1] == b'_' || i + 1 == bytes.len() || bytes[i + 1] == b'_' {
                return None;
            }
            continue;
        }
        let digit = char::from(b).to_digit(16).filter(|&d| d < radix)?;
        value = value
            .checked_mul(u128::from(radix))?
            .checked_add(u128::from(digit))?;
        any = true;
    }
    any.then_some(value)
}

fn radix(rest: &str) -> (u32, &str) {
    for (prefixes, radix) in [(["0x", "0X"], 16), (["0o", "0O"], 8), (["0b", "0B"], 2)] {
        for prefix in prefixes {
            if let Some(digits) = rest.strip_prefix(prefix) {
                return (radix, digits);
            }
        }
    }
    (10, rest)
}

/// A trimmed integer with an optional `-` or `+`, as a signed 128-bit value.
pub fn signed(t: &str) -> Option<i128> {
    let (negative, rest) = match t.strip_prefix('+') {
        Some(rest) => (false, rest),
        None => t.strip_prefix('-').map_or((false, t), |rest| (true, rest)),
    };
    let (radix, text) = radix(rest);
    if radix == 10 && text.starts_with('0') && text != "0" {
        return None;
    }
    let magnitude = digits(text, radix)?;
    if negative {
        if magnitude == i128::MAX.unsigned_abs() + 1 {
            Some(i128::MIN)
        } else {
            i128::try_from(magnitude).ok()?.checked_neg()
        }
    } else {
        i128::try_from(magnitude).ok()
    }
}

/// A trimmed integer with an optional `+`, as an unsigned 128-bit value.
pub fn unsigned(t: &str) -> Option<u128> {
    if t.starts_with('-') {
        return None;
    }
    let (radix, text) = radix(t.strip_prefix('+').unwrap_or(t));
    if radix == 10 && text.starts_with('0') && text != "0" {
        return None;
    }
    digits(text, radix)
}

/// A YAML 1.2 float, or a numeral that overflows to infinity; `None` if it is neither.
fn float_of(value: &str, tag: TagKind) -> Option<f64> {
    let t = trim(value);
    if tag == TagKind::Float && is_signed_nan(t) {
        return Some(f64::NAN);
    }
    let (negative, unsigned) = match t.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    match unsigned {
        ".nan" | ".NaN" | ".NAN" => return Some(f64::NAN),
        ".inf" | ".Inf" | ".INF" if negative => return Some(f64::NEG_INFINITY),
        ".inf" | ".Inf" | ".INF" => return Some(f64::INFINITY),
        _ => {}
    }
    match t.parse::<f64>() {
        Ok(v) if v.is_finite() => Some(v),
        // Rust also reads `inf` and `nan`; only numerals that overflow count here.
        Ok(v)
            if v.is_infinite()
                && t.strip_prefix(['+', '-'])
                    .unwrap_or(t)
                    .as_bytes()
                    .first()
                    .is_some_and(u8::is_ascii_digit) =>
        {
            Some(v)
        }
        _ => None,
    }
}

/// `!!binary` text: base64, whitespace ignored, decoding to UTF-8 text.
fn binary(value: &str) -> Result<String, YamlErrorKind> {
    let compact: String = value.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(compact)
        .map_err(|_| YamlErrorKind::InvalidBase64)?;
    String::from_utf8(bytes).map_err(|_| YamlErrorKind::BinaryNotUtf8)
}
