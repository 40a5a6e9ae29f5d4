//! The one template environment: strict undefined, no HTML escaping, and the quoting filters
//! runbooks need (`sql_ident`, `sql_literal`, `shell_quote`, `ps_quote`, `from_json`,
//! `to_json`). Expressions (`when`, `until`, `assert`) are bare minijinja expressions.
//!
//! Work is bounded whatever the runbook says: every template is size-checked before it is
//! parsed ([`crate::template_limit`]), every render or evaluation has a fuel budget (so a loop
//! of 10^10 iterations stops within a second or two), and rendered text is capped.

use std::panic::{AssertUnwindSafe, catch_unwind};

use minijinja::{Environment, Error, ErrorKind, UndefinedBehavior, Value};

use crate::template_limit::{self, TooComplex};

/// minijinja instructions one render or evaluation may execute. Real templates need a few
/// thousand; this many take about a second in a release build.
pub const FUEL: u64 = 20_000_000;

/// The most text one template may render to (a script, a query, a value).
pub const MAX_RENDERED_BYTES: usize = 16 * 1024 * 1024;

/// Renders templates and evaluates expressions against a context.
pub struct Templates {
    env: Environment<'static>,
}

impl Default for Templates {
    fn default() -> Self {
        Self::new()
    }
}

impl Templates {
    pub fn new() -> Self {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_auto_escape_callback(|_| minijinja::AutoEscape::None);
        env.set_keep_trailing_newline(true);
        env.set_fuel(Some(FUEL));
        // `true`, not Python's `True`: rendered values go into shells and SQL.
        env.set_formatter(|out, state, value| {
            if value.kind() == minijinja::value::ValueKind::Bool {
                out.write_str(if value.is_true() { "true" } else { "false" })?;
                Ok(())
            } else {
                minijinja::escape_formatter(out, state, value)
            }
        });
        env.add_filter("sql_ident", sql_ident);
        env.add_filter("sql_literal", sql_literal);
        env.add_filter("shell_quote", shell_quote);
        env.add_filter("ps_quote", ps_quote);
        env.add_filter("from_json", from_json);
        env.add_filter("to_json", to_json);
        Self { env }
    }

    /// Renders a template string. Text without template syntax is returned as it is.
    pub fn render(&self, text: &str, context: &Value) -> Result<String, Error> {
        if !(text.contains("{{") || text.contains("{%") || text.contains("{#")) {
            return Ok(text.to_owned());
        }
        template_limit::check_template(text).map_err(too_complex)?;
        guarded(|| {
            let template = self.env.template_from_str(text)?;
            let mut out = Capped::default();
            match template.render_captured_to(context, &mut out) {
                Ok(_) => Ok(String::from_utf8_lossy(&out.bytes).into_owned()),
                Err(_) if out.full => Err(Error::new(
                    ErrorKind::InvalidOperation,
                    format!(
                        "the rendered text exceeds {} MiB",
                        MAX_RENDERED_BYTES / (1024 * 1024)
                    ),
                )
                .with_source(LimitReached)),
                Err(e) => Err(e),
            }
        })
    }

    /// Whether a filter (or, with `test`, a test) of this name exists. Unknown names are
    /// only found when a template renders, so validation asks the environment directly.
    pub fn knows(&self, name: &str, test: bool) -> bool {
        let probe = if test {
            format!("{{{{ none is {name} }}}}")
        } else {
            format!("{{{{ none | {name} }}}}")
        };
        let unknown = if test {
            ErrorKind::UnknownTest
        } else {
            ErrorKind::UnknownFilter
        };
        !matches!(self.env.render_str(&probe, ()), Err(e) if e.kind() == unknown)
    }

    /// Evaluates a bare expression.
    pub fn eval(&self, expression: &str, context: &Value) -> Result<Value, Error> {
        template_limit::check_expression(expression).map_err(too_complex)?;
        guarded(|| self.env.compile_expression(expression)?.eval(context))
    }
}

fn too_complex(err: TooComplex) -> Error {
    Error::new(ErrorKind::InvalidOperation, err.to_string()).with_source(LimitReached)
}

/// Marks an error as a limit of [`Templates`], not a mistake a run-time value could fix.
#[derive(Debug, thiserror::Error)]
#[error("limit reached")]
struct LimitReached;

/// Whether rendering stopped at a limit (size, fuel or output): a dry-run cannot show such a
/// template as written, because the run would fail on it too.
pub fn is_limit(err: &Error) -> bool {
    err.kind() == ErrorKind::OutOfFuel
        || std::error::Error::source(err).is_some_and(|s| s.is::<LimitReached>())
}

/// Runs a minijinja call, turning a panic inside minijinja into an error. The size check
/// keeps known panics away; this is the last line of defence, not the first.
pub fn guarded<T>(call: impl FnOnce() -> Result<T, Error>) -> Result<T, Error> {
    catch_unwind(AssertUnwindSafe(call)).unwrap_or_else(|_| {
        Err(Error::new(
            ErrorKind::InvalidOperation,
            "the template engine failed on this template",
        )
        .with_source(LimitReached))
    })
}

/// Rendered text up to [`MAX_RENDERED_BYTES`]; a write past it fails and stops the render.
#[derive(Default)]
struct Capped {
    bytes: Vec<u8>,
    full: bool,
}

impl std::io::Write for Capped {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.bytes.len() + buf.len() > MAX_RENDERED_BYTES {
            self.full = true;
            return Err(std::io::ErrorKind::OutOfMemory.into());
        }
        self.bytes.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Filter names for "did you mean" (the environment itself decides what exists).
pub const FILTERS: &[&str] = &[
    "sql_ident",
    "sql_literal",
    "shell_quote",
    "ps_quote",
    "from_json",
    "to_json",
    "safe",
    "escape",
    "lower",
    "upper",
    "title",
    "capitalize",
    "replace",
    "length",
    "count",
    "dictsort",
    "items",
    "reverse",
    "trim",
    "join",
    "split",
    "lines",
    "default",
    "round",
    "abs",
    "int",
    "float",
    "attr",
    "first",
    "last",
    "min",
    "max",
    "sort",
    "list",
    "string",
    "bool",
    "batch",
    "slice",
    "sum",
    "indent",
    "select",
    "reject",
    "selectattr",
    "rejectattr",
    "map",
    "groupby",
    "unique",
    "chain",
    "zip",
    "pprint",
    "format",
    "tojson",
    "urlencode",
];

/// Test names for "did you mean".
pub const TESTS: &[&str] = &[
    "defined",
    "undefined",
    "none",
    "boolean",
    "odd",
    "even",
    "divisibleby",
    "number",
    "integer",
    "float",
    "string",
    "sequence",
    "iterable",
    "mapping",
    "startingwith",
    "endingwith",
    "lower",
    "upper",
    "sameas",
    "eq",
    "ne",
    "lt",
    "le",
    "gt",
    "ge",
    "in",
    "true",
    "false",
    "filter",
    "test",
];

/// A one-line description of a template error, without minijinja's source listing.
pub fn error_text(err: &Error) -> String {
    if err.kind() == ErrorKind::OutOfFuel {
        return format!(
            "the template does too much work (more than {FUEL} steps of the template engine); a loop over a huge range?"
        );
    }
    let mut text = err
        .detail()
        .map_or_else(|| err.kind().to_string(), str::to_owned);
    if err.kind() == ErrorKind::UndefinedError && err.detail().is_none() {
        text = "undefined value".to_owned();
    }
    text
}

/// `[name]` with `]` doubled: a SQL Server identifier.
pub fn sql_ident(value: String) -> String {
    format!("[{}]", value.replace(']', "]]"))
}

/// `N'text'` with `'` doubled: a SQL Server Unicode string literal.
pub fn sql_literal(value: String) -> String {
    format!("N'{}'", value.replace('\'', "''"))
}

/// A POSIX shell word: single-quoted, `'` written as `'\''`.
pub fn shell_quote(value: String) -> String {
    if !value.is_empty()
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,@%+".contains(c))
    {
        return value;
    }
    format!("'{}'", value.replace('\'', r"'\''"))
}

/// A PowerShell single-quoted string: `'` doubled (so are the typographic quotes PowerShell
/// also accepts as delimiters).
pub fn ps_quote(value: String) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('\'');
    for c in value.chars() {
        if matches!(c, '\'' | '\u{2018}' | '\u{2019}' | '\u{201A}' | '\u{201B}') {
            out.push(c);
        }
        out.push(c);
    }
    out.push('\'');
    out
}

fn from_json(value: String) -> Result<Value, Error> {
    serde_json::from_str::<serde_json::Value>(&value)
        .map(|v| Value::from_serialize(&v))
        .map_err(|e| Error::new(ErrorKind::InvalidOperation, format!("from_json: {e}")))
}

fn to_json(value: Value) -> Result<String, Error> {
    serde_json::to_string(&value)
        .map_err(|e| Error::new(ErrorKind::InvalidOperation, format!("to_json: {e}")))
}

#[cfg(test)]
mod tests {
    use super::{ps_quote, shell_quote, sql_ident, sql_literal};

    /// `quote(input) == expected` for each pair.
    fn quotes(quote: fn(String) -> String, cases: &[(&str, &str)]) {
        for (input, expected) in cases {
            assert_eq!(quote((*input).to_owned()), *expected, "input {input:?}");
        }
    }

    #[test]
    fn shell_quote_leaves_safe_words_bare() {
        quotes(
            shell_quote,
            &[("abc-1_2./=:,@%+", "abc-1_2./=:,@%+"), ("-rf", "-rf")],
        );
    }

    #[test]
    fn shell_quote_quotes_everything_else() {
        quotes(
            shell_quote,
            &[
                ("", "''"),
                ("a b", "'a b'"),
                ("it's", r"'it'\''s'"),
                ("'", r"''\'''"),
                ("$(rm -rf /)", "'$(rm -rf /)'"),
                ("`id`;x&&y|z>w", "'`id`;x&&y|z>w'"),
                ("a\nb", "'a\nb'"),
                ("a\0b", "'a\0b'"),
                ("*?[~]", "'*?[~]'"),
                ("é☃", "'é☃'"),
            ],
        );
    }

    #[test]
    fn shell_quote_round_trips_through_sh() {
        for value in ["it's", "a\nb", "$HOME `id` \"q\" \\", "'''", "é☃", " "] {
            let out = std::process::Command::new("sh")
                .args([
                    "-c",
                    &format!("printf %s {}", shell_quote(value.to_owned())),
                ])
                .output()
                .expect("run sh");
            assert_eq!(String::from_utf8_lossy(&out.stdout), value);
        }
    }

    #[test]
    fn ps_quote_doubles_every_single_quote_powershell_accepts() {
        quotes(
            ps_quote,
            &[
                ("", "''"),
                ("plain", "'plain'"),
                ("it's", "'it''s'"),
                ("''", "''''''"),
                (
                    "a\u{2018}b\u{2019}c\u{201A}d\u{201B}e",
                    "'a\u{2018}\u{2018}b\u{2019}\u{2019}c\u{201A}\u{201A}d\u{201B}\u{201B}e'",
                ),
                // Double quotes and `$` are literal inside single quotes: left alone.
                ("\"$env:x\" `n", "'\"$env:x\" `n'"),
                ("a\nb\0c", "'a\nb\0c'"),
                ("é☃", "'é☃'"),
            ],
        );
    }

    #[test]
    fn sql_ident_doubles_closing_brackets() {
        quotes(
            sql_ident,
            &[
                ("", "[]"),
                ("mgc", "[mgc]"),
                ("a]b", "[a]]b]"),
                ("]]", "[]]]]]"),
                ("x]; DROP TABLE t; --", "[x]]; DROP TABLE t; --]"),
                ("[a'b\"c\nd\0", "[[a'b\"c\nd\0]"),
                ("база", "[база]"),
            ],
        );
    }

    #[test]
    fn sql_literal_doubles_single_quotes() {
        quotes(
            sql_literal,
            &[
                ("", "N''"),
                ("it's", "N'it''s'"),
                ("'; DROP TABLE t; --", "N'''; DROP TABLE t; --'"),
                ("a\nb\0c]\"", "N'a\nb\0c]\"'"),
                ("é☃", "N'é☃'"),
            ],
        );
    }

    /// Every quoted form, read back the way its language reads it, gives the value.
    #[test]
    fn quoting_is_reversible_for_hostile_values() {
        let values = [
            "", "'", "''", "]", "a'b]c", "\n\r\t", "\0", "☃'é", "\u{2019}",
        ];
        for value in values {
            let ident = sql_ident(value.to_owned());
            let inner = &ident[1..ident.len() - 1];
            assert_eq!(inner.replace("]]", "]"), value);
            let literal = sql_literal(value.to_owned());
            let inner = &literal[2..literal.len() - 1];
            assert_eq!(inner.replace("''", "'"), value);
            assert!(!inner.replace("''", "").contains('\''), "{literal}");
        }
    }
}
