//! `steps.X.outputs.v` (or its `stdout`, `rows`…) where X has a `when`: when X is skipped, it
//! has no outputs and its output is empty, so the template fails at run time or, worse,
//! renders an empty value into a command. Guarded reads are left alone: a `| default(...)`
//! on the value, or a `when` of the reading step that itself looks at X.

use super::Lint;
use crate::diagnostic::Problem;
use crate::validate::template_walk::Finding;
use crate::validate::templates::Site;

/// What a step leaves that a skipped step does not have (its `status` it does have).
const PRODUCED: &[&str] = &[
    "outputs",
    "stdout",
    "stderr",
    "exit_code",
    "rows",
    "result_sets",
    "rows_affected",
    "messages",
];

pub struct ReadsSkippedStep;

impl Lint for ReadsSkippedStep {
    fn finding(&mut self, finding: &Finding<'_>, site: &Site<'_>, problems: &mut Vec<Problem>) {
        let Finding::Reference(reference) = finding else {
            return;
        };
        if reference.root != "steps" {
            return;
        }
        let (Some((id, _)), Some((what, span))) =
            (reference.segments.first(), reference.segments.get(1))
        else {
            return;
        };
        if !PRODUCED.contains(&what.as_ref()) {
            return;
        }
        let Some(read) = site.step(id) else {
            return;
        };
        let Some(when) = &read.when else {
            return;
        };
        // The whole reference as written, with the filters applied to it.
        let last = reference.segments.last().map_or(*span, |(_, s)| *s);
        let after = site.text_after(last).trim_start();
        if let Some(filter) = after.strip_prefix('|').map(str::trim_start)
            && ["default", "d(", "d "]
                .iter()
                .any(|f| filter.starts_with(f))
        {
            return;
        }
        if let Some(owner) = site.place.owner {
            let reader = &site.runbook.steps[owner];
            if reader.id.value == *id {
                return;
            }
            if reader
                .when
                .as_ref()
                .is_some_and(|w| w.value.contains(id.as_ref()))
            {
                return;
            }
        }
        problems.push(Problem::ReadsSkippedStep {
            read: format!("steps.{id}.{what}"),
            step: id.to_string(),
            when: when.value.clone(),
            span: site.at(last).into(),
        });
    }
}
