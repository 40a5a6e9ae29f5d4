//! `steps.copy-logs.stdout`: a step id with a hyphen, read by the template language as
//! `steps.copy - logs.stdout`. It would fail at run time with a confusing error; the hint
//! names the step the author meant and how to write it.

use super::Lint;
use crate::diagnostic::Problem;
use crate::validate::template_walk::Finding;
use crate::validate::templates::Site;

pub struct HyphenatedStepReference;

impl Lint for HyphenatedStepReference {
    fn finding(&mut self, finding: &Finding<'_>, site: &Site<'_>, problems: &mut Vec<Problem>) {
        if let Finding::Hyphenated {
            first,
            id,
            written,
            span,
        } = finding
        {
            problems.push(Problem::HyphenatedStepReference {
                written: written.clone(),
                id: id.clone(),
                span: site.at(*span).into(),
                first: first.clone(),
            });
        }
    }
}
