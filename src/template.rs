//! The one template environment: strict undefined, no HTML escaping, and the quoting filters
//! runbooks need (`sql_ident`, `sql_literal`, `shell_quote`, `ps_quote`, `from_json`,
//! `to_json`). Expressions (`when`, `until`, `assert`) are bare minijinja expressions.

use minijinja::{Environment, Error, ErrorKind, UndefinedBehavior, Value};

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
        self.env.render_str(text, context)
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
        self.env.compile_expression(expression)?.eval(context)
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
