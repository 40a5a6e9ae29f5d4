//! `'… {{ x | sql_ident }} …'`: an identifier quoted for SQL (`[name]`) pasted inside a T-SQL
//! string literal. Brackets do not quote anything inside a literal, so a `'` in the value ends
//! the literal and the rest runs as SQL. Values inside literals need `sql_literal` (or, better,
//! an `@P` argument).

use super::Lint;
use crate::diagnostic::Problem;
use crate::validate::template_walk::Finding;
use crate::validate::templates::{Kind, Site};

pub struct SqlIdentInLiteral;

impl Lint for SqlIdentInLiteral {
    fn finding(&mut self, finding: &Finding<'_>, site: &Site<'_>, problems: &mut Vec<Problem>) {
        if let Finding::Emit {
            filter: Some("sql_ident"),
            span,
        } = finding
            && site.place.kind == Kind::SqlQuery
            && in_string_literal(site.text(), span.start_offset as usize)
        {
            problems.push(Problem::SqlIdentInLiteral {
                span: site.at(*span).into(),
            });
        }
    }
}

/// Whether byte `at` of a T-SQL template stands inside a `'…'` literal. Template tags,
/// `--` comments and `/* */` comments are not SQL text: an apostrophe there counts for nothing.
fn in_string_literal(text: &str, at: usize) -> bool {
    let before = text.get(..at).unwrap_or(text);
    let mut inside = false;
    let mut rest = before;
    while let Some(c) = rest.chars().next() {
        if inside {
            // `''` is an escaped quote: it closes and reopens, which the toggle does too.
            if c == '\'' {
                inside = false;
            }
            rest = &rest[c.len_utf8()..];
            continue;
        }
        let skip_to = |open: &str, close: &str| -> Option<usize> {
            rest.strip_prefix(open).map(|r| {
                r.find(close)
                    .map_or(rest.len(), |i| open.len() + i + close.len())
            })
        };
        let skipped = skip_to("{{", "}}")
            .or_else(|| skip_to("{%", "%}"))
            .or_else(|| skip_to("{#", "#}"))
            .or_else(|| skip_to("--", "\n"))
            .or_else(|| skip_to("/*", "*/"));
        if let Some(n) = skipped {
            rest = &rest[n.min(rest.len())..];
            continue;
        }
        if c == '\'' {
            inside = true;
        }
        rest = &rest[c.len_utf8()..];
    }
    inside
}
