//! The template lints, registered in one place.
//!
//! A lint looks at what the template walk finds, one finding at a time and in the order they
//! were met, knowing where the template stands; it may also report once every template has
//! been walked. Adding a lint: a file here with a `//!` line saying what it checks and why,
//! and its `mod` line and entry in [`registry`].

mod hyphenated_step_reference;
mod reads_skipped_step;
mod secret_in_args;
mod sql_ident_in_literal;
mod unfiltered_shell_template;
mod unfiltered_sql_template;
mod unknown_filter;
mod unused_declarations;

use super::template_walk::Finding;
use super::templates::Site;
use crate::diagnostic::Problem;
use crate::model::Runbook;

/// A check over the templates of one runbook, with whatever it needs to remember.
pub(super) trait Lint {
    /// Looks at one thing found in the template at `site`.
    fn finding(&mut self, finding: &Finding<'_>, site: &Site<'_>, problems: &mut Vec<Problem>);

    /// Reports what can only be known once every template has been walked.
    fn finish(&mut self, _runbook: &Runbook, _problems: &mut Vec<Problem>) {}
}

/// Every lint, fresh for one runbook.
pub(super) fn registry() -> Vec<Box<dyn Lint>> {
    vec![
        Box::new(hyphenated_step_reference::HyphenatedStepReference),
        Box::new(reads_skipped_step::ReadsSkippedStep),
        Box::new(unfiltered_sql_template::UnfilteredSqlTemplate),
        Box::new(sql_ident_in_literal::SqlIdentInLiteral),
        Box::new(unfiltered_shell_template::UnfilteredShellTemplate),
        Box::new(unknown_filter::UnknownFilter::default()),
        Box::new(secret_in_args::SecretInArgs),
        Box::new(unused_declarations::UnusedDeclarations::default()),
    ]
}
