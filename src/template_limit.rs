//! The size check every template and expression passes before minijinja parses it.
//!
//! minijinja's parser, its compiler, the validator's walk and the drop of a syntax tree all
//! recurse once per operator of a chain (`a and b and …`, `- - - 1`, `x | f | f …`), so a
//! hostile expression overflows the stack long before any recursion limit is met; and its
//! lexer panics on `}}` inside a bare expression. This scan is linear and recursion-free: it
//! counts the operators of each `{{ … }}`, `{% … %}` or bare expression and refuses one with
//! more than [`MAX_OPERATORS`], and refuses a stray `}}` in a bare expression.

/// Operators (and opening brackets) allowed in one tag or expression. Real conditions have a
/// few dozen; a debug build parses, walks and evaluates chains of twice this many (2,000 `not`s)
/// on the main thread's stack, and overflowed at 20,000.
pub const MAX_OPERATORS: usize = 1_000;

/// Why a template is refused before it is parsed, with the byte range inside its text.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TooComplex {
    #[error("this {what} has more than {max} operators, too many to parse", max = MAX_OPERATORS)]
    Operators {
        what: &'static str,
        start: usize,
        end: usize,
    },
    #[error("`}}}}` ends a bare expression early; `when`, `until` and `assert` take no braces")]
    StrayClose { start: usize },
}

impl TooComplex {
    /// The byte range of the offending part inside the template text.
    pub fn range(&self) -> std::ops::Range<usize> {
        match *self {
            Self::Operators { start, end, .. } => start..end,
            Self::StrayClose { start } => start..start + 2,
        }
    }
}

/// Checks a template (text with `{{ … }}`, `{% … %}` and `{# … #}`).
pub fn check_template(text: &str) -> Result<(), TooComplex> {
    let bytes = text.as_bytes();
    let mut i = 0;
    while i + 1 < bytes.len() {
        match (bytes[i], bytes[i + 1]) {
            (b'{', b'#') => i = find(bytes, i + 2, b"#}").map_or(bytes.len(), |e| e + 2),
            (b'{', open @ (b'{' | b'%')) => {
                let close: &[u8] = if open == b'{' { b"}}" } else { b"%}" };
                let what = if open == b'{' {
                    "`{{ … }}`"
                } else {
                    "`{% … %}`"
                };
                i = scan(bytes, i, i + 2, Some(close), what)?;
            }
            _ => i += 1,
        }
    }
    Ok(())
}

/// Checks a bare expression (`when`, `until`, `assert.that`).
pub fn check_expression(text: &str) -> Result<(), TooComplex> {
    scan(text.as_bytes(), 0, 0, None, "expression").map(drop)
}

/// Counts the operators from `from` to `close` (or the end), skipping string literals, and
/// returns where the tag ends.
fn scan(
    bytes: &[u8],
    start: usize,
    from: usize,
    close: Option<&[u8]>,
    what: &'static str,
) -> Result<usize, TooComplex> {
    let mut operators = 0usize;
    // minijinja's lexer ends a tag only outside brackets, and so do we.
    let mut balance = 0usize;
    let mut i = from;
    while i < bytes.len() {
        let b = bytes[i];
        if let Some(close) = close
            && balance == 0
            && bytes[i..].starts_with(close)
        {
            return Ok(i + close.len());
        }
        if close.is_none() && balance == 0 && bytes[i..].starts_with(b"}}") {
            return Err(TooComplex::StrayClose { start: i });
        }
        match b {
            b'\'' | b'"' => {
                i = skip_string(bytes, i);
                continue;
            }
            b'(' | b'[' | b'{' => {
                balance += 1;
                operators += 1;
            }
            b')' | b']' | b'}' => balance = balance.saturating_sub(1),
            b'-' | b'+' | b'*' | b'/' | b'%' | b'~' | b'|' | b'.' | b'!' | b'<' | b'>' | b'=' => {
                operators += 1
            }
            b if b.is_ascii_alphabetic() || b == b'_' => {
                let end = bytes[i..]
                    .iter()
                    .position(|c| !(c.is_ascii_alphanumeric() || *c == b'_'))
                    .map_or(bytes.len(), |n| i + n);
                if matches!(
                    &bytes[i..end],
                    b"not" | b"and" | b"or" | b"is" | b"in" | b"if" | b"else"
                ) {
                    operators += 1;
                }
                i = end;
                continue;
            }
            _ => {}
        }
        if operators > MAX_OPERATORS {
            let end = close
                .and_then(|c| find(bytes, i, c).map(|e| e + c.len()))
                .unwrap_or(bytes.len());
            return Err(TooComplex::Operators { what, start, end });
        }
        i += 1;
    }
    Ok(bytes.len())
}

/// The index after a string literal that starts at `at` (its end, if it is not closed).
fn skip_string(bytes: &[u8], at: usize) -> usize {
    let quote = bytes[at];
    let mut i = at + 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            q if q == quote => return i + 1,
            _ => i += 1,
        }
    }
    bytes.len()
}

fn find(bytes: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    bytes
        .get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| from + p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_templates_pass() {
        assert_eq!(
            check_template("{{ a.b | upper }} and {% if x %}y{% endif %}"),
            Ok(())
        );
        assert_eq!(
            check_expression("result.exit_code == 0 and '}}' in x"),
            Ok(())
        );
        assert_eq!(check_template(&"{{ a }} ".repeat(100_000)), Ok(()));
    }

    #[test]
    fn chains_and_stray_braces_are_refused() {
        let long = format!("{}nope", "not ".repeat(30_000));
        assert!(matches!(
            check_expression(&long),
            Err(TooComplex::Operators { start: 0, .. })
        ));
        assert_eq!(
            check_expression("x }} y"),
            Err(TooComplex::StrayClose { start: 2 })
        );
        // Inside brackets `}}` closes them, as in minijinja's lexer: its parser reports it.
        assert_eq!(check_expression("{{ true }}"), Ok(()));
        let filters = format!("ab {{{{ 1{} }}}} cd", "|abs".repeat(25_000));
        let Err(err) = check_template(&filters) else {
            panic!("not refused")
        };
        assert_eq!(err.range(), 3..filters.len() - 3);
    }
}
