//! A `{{ … }}` in a SQL query without `sql_ident` or `sql_literal` as its last filter: the
//! value is pasted into the T-SQL unquoted, an injection waiting to happen. Values belong in
//! `args` (`@P1`, `@P2`, …); names and literals that cannot be parameters go through a filter.

use super::Lint;
use crate::diagnostic::Problem;
use crate::validate::template_walk::Finding;
use crate::validate::templates::{Kind, Site};

pub struct UnfilteredSqlTemplate;

impl Lint for UnfilteredSqlTemplate {
    fn finding(&mut self, finding: &Finding<'_>, site: &Site<'_>, problems: &mut Vec<Problem>) {
        if let Finding::Emit { filter, span } = finding
            && site.place.kind == Kind::SqlQuery
            && !matches!(filter, Some("sql_ident" | "sql_literal"))
        {
            problems.push(Problem::UnfilteredSqlTemplate {
                span: site.at(*span).into(),
            });
        }
    }
}
