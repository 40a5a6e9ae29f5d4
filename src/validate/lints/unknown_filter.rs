//! A filter or test that the template environment does not have: a typo there would only
//! show when the step renders, in the middle of a run.

use std::collections::HashMap;

use super::Lint;
use crate::diagnostic::{Problem, suggestion};
use crate::template::{FILTERS, TESTS, Templates};
use crate::validate::template_walk::Finding;
use crate::validate::templates::Site;

#[derive(Default)]
pub struct UnknownFilter {
    /// The environment that decides which filters and tests exist.
    templates: Templates,
    /// What it said about each (name, is a test).
    known: HashMap<(String, bool), bool>,
}

impl Lint for UnknownFilter {
    fn finding(&mut self, finding: &Finding<'_>, site: &Site<'_>, problems: &mut Vec<Problem>) {
        let Finding::Filter { name, test, span } = *finding else {
            return;
        };
        let known = *self
            .known
            .entry(((*name).to_owned(), test))
            .or_insert_with(|| self.templates.knows(name, test));
        if known {
            return;
        }
        let (kind, names) = if test {
            ("test", TESTS)
        } else {
            ("filter", FILTERS)
        };
        let help = suggestion(name, names.iter().copied(), || {
            format!("see the {kind}s in the README's template section")
        });
        problems.push(Problem::UnknownFilter {
            kind,
            name: (*name).to_owned(),
            span: site.at(span).into(),
            help,
        });
    }
}
