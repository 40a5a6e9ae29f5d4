//! A secret in a program or its arguments: the command line is visible to every user of the
//! machine (`ps`, process listings, audit logs). Pass it through `env` or a script instead.

use super::Lint;
use crate::diagnostic::Problem;
use crate::validate::template_walk::Finding;
use crate::validate::templates::{Kind, Site};

pub struct SecretInArgs;

impl Lint for SecretInArgs {
    fn finding(&mut self, finding: &Finding<'_>, site: &Site<'_>, problems: &mut Vec<Problem>) {
        if let Finding::Reference(r) = finding
            && r.root == "secrets"
            && site.place.kind == Kind::Args
            && let Some((name, span)) = r.segments.first()
            // An undeclared secret is an unknown variable, reported as such.
            && site.runbook.secrets.contains_key(name.as_ref())
        {
            problems.push(Problem::SecretInArgs {
                name: name.to_string(),
                span: site.at(*span).into(),
            });
        }
    }
}
