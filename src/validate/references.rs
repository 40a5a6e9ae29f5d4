//! What a template reads, checked against the runbook: declared params and secrets, the
//! attributes of `run`, `result` and `steps.<id>`, declared outputs, and the data flow
//! between steps (a step reads only its ancestors, and its rollback reads the step itself).

use indexmap::IndexMap;
use minijinja::machinery::Span as JSpan;

use super::template_walk::Reference;
use super::templates::Site;
use crate::dag::{Dag, Scratch};
use crate::diagnostic::{Problem, list, suggestion};
use crate::model::Runbook;

/// Names a template can start from.
pub(crate) const ROOTS: &[&str] = &["params", "secrets", "env", "steps", "run", "result"];
/// What one attempt of a step produced: part of both `steps.<id>` and `result`.
const OUTCOME: &[&str] = &[
    "stdout",
    "stderr",
    "exit_code",
    "rows",
    "rows_affected",
    "result_sets",
    "messages",
];
/// What `steps.<id>` holds once the step has run.
const STEP_ATTRS: &[&[&str]] = &[OUTCOME, &["outputs", "status", "attempts", "duration"]];
/// What `result` holds during `until` and `outputs`.
const RESULT_ATTRS: &[&[&str]] = &[OUTCOME, &["attempt"]];
/// What `steps.<id>` of a `for_each` step holds besides.
const LOOP_ATTRS: &[&str] = &["items", "failed_items"];
/// What `run` holds.
const RUN_ATTRS: &[&[&str]] = &[&["id", "dry_run", "started_at", "dir", "outcome"]];

/// Checks references for one runbook.
pub(super) struct References<'a> {
    runbook: &'a Runbook,
    dag: &'a Dag,
    scratch: Scratch,
    /// Step-id suggestions compare against every step: bounded, as in `needs`.
    suggestions_left: usize,
    /// For finally steps: the run's runbook and graph, whose steps they may all read
    /// (each possibly not run), and `run.outcome`.
    run: Option<(&'a Runbook, &'a Dag)>,
}

impl<'a> References<'a> {
    pub fn new(runbook: &'a Runbook, dag: &'a Dag) -> Self {
        Self {
            runbook,
            dag,
            scratch: Scratch::default(),
            suggestions_left: super::needs::MAX_SUGGESTIONS,
            run: None,
        }
    }

    /// References of finally steps, which run after the run of `runbook` (graph `dag`).
    pub fn after(self, runbook: &'a Runbook, dag: &'a Dag) -> Self {
        Self {
            run: Some((runbook, dag)),
            ..self
        }
    }

    /// Reports what is wrong with one reference made at `site`.
    pub fn check(&mut self, r: &Reference<'_>, site: &Site<'_>, problems: &mut Vec<Problem>) {
        let runbook = self.runbook;
        let first = r.segments.first();
        if site.place.item
            && let Some(owner) = site.place.owner
            && let Some(step) = runbook.steps.get(owner)
            && step.for_each.is_some()
            && r.root == step.item_name()
        {
            // The item of a `for_each`: any value, known only when the list is rendered.
            return;
        }
        match r.root {
            "params" => declared(r, &runbook.params, site, problems),
            "secrets" => declared(r, &runbook.secrets, site, problems),
            // The env file is read when the run starts: its names are not known here.
            "env" if runbook.env_file.is_some() => {}
            "run" => {
                if let Some((name, name_span)) = first
                    && attribute("run", name, RUN_ATTRS, site, *name_span, problems)
                    && name == "outcome"
                    && self.run.is_none()
                {
                    problems.push(Problem::OutcomeNotAvailable {
                        span: site.at(*name_span).into(),
                    });
                }
            }
            "result" => {
                if !site.place.result {
                    problems.push(Problem::ResultNotAvailable {
                        span: site.at(r.root_span).into(),
                    });
                } else if let Some((name, name_span)) = first {
                    attribute("result", name, RESULT_ATTRS, site, *name_span, problems);
                }
            }
            "steps" => {
                if let Some((id, _)) = first {
                    self.step_reference(r, id, site, problems);
                }
            }
            other => {
                let roots = ROOTS
                    .iter()
                    .copied()
                    .filter(|&n| n != "result" || site.place.result);
                let help = suggestion(other, roots.clone(), || {
                    format!(
                        "templates read {}; a literal text needs no braces",
                        list(roots)
                    )
                });
                problems.push(Problem::UnknownVariable {
                    name: other.to_owned(),
                    span: site.at(r.root_span).into(),
                    help,
                });
            }
        }
    }

    fn step_reference(
        &mut self,
        r: &Reference<'_>,
        id: &str,
        site: &Site<'_>,
        problems: &mut Vec<Problem>,
    ) {
        let runbook = self.runbook;
        let id_span = r.segments[0].1;
        if let Some((run, run_dag)) = self.run
            && self.dag.index_of(id).is_none()
            && let Some(target) = run_dag.index_of(id)
        {
            // A finally step reads a step of the run: it may not have run (see `status`).
            return step_attributes(r, id, &run.steps[target], site, problems);
        }
        let Some(target) = self.dag.index_of(id) else {
            let budget = if self.suggestions_left > 0 {
                usize::MAX
            } else {
                0
            };
            self.suggestions_left = self.suggestions_left.saturating_sub(1);
            let ids = runbook.steps.iter().map(|s| s.id.as_str()).take(budget);
            let help = suggestion(id, ids, || {
                "check the spelling against the step ids".to_owned()
            });
            problems.push(Problem::UnknownStepReference {
                id: id.to_owned(),
                span: site.at(id_span).into(),
                help,
            });
            return;
        };
        let place = site.place;
        if let Some(owner) = place.owner {
            let allowed = (place.own_step && target == owner)
                || self.dag.is_ancestor(target, owner, &mut self.scratch);
            if !allowed {
                problems.push(Problem::NotAnAncestor {
                    step: runbook.steps[owner].id.value.clone(),
                    id: id.to_owned(),
                    span: site.at(id_span).into(),
                });
                return;
            }
        }
        step_attributes(r, id, &runbook.steps[target], site, problems);
    }
}

/// `steps.<id>.<attr>` and `steps.<id>.outputs.<name>` against what the step declares.
fn step_attributes(
    r: &Reference<'_>,
    id: &str,
    step: &crate::model::Step,
    site: &Site<'_>,
    problems: &mut Vec<Problem>,
) {
    let outputs = &step.outputs;
    let Some((attr, attr_span)) = r.segments.get(1) else {
        return;
    };
    let name = format!("steps.{id}");
    let looped: &[&[&str]] = &[
        OUTCOME,
        &["outputs", "status", "attempts", "duration"],
        LOOP_ATTRS,
    ];
    let known = if step.for_each.is_some() {
        looped
    } else {
        STEP_ATTRS
    };
    if !attribute(&name, attr, known, site, *attr_span, problems) {
        return;
    }
    if attr == "outputs"
        && let Some((output, output_span)) = r.segments.get(2)
        && !outputs.contains_key(output.as_ref())
    {
        let names = outputs.keys().map(String::as_str);
        let help = suggestion(output, names.clone(), || {
            format!("`{id}` declares outputs: {}", list(names))
        });
        problems.push(Problem::UnknownAttribute {
            name: format!("{name}.outputs"),
            attribute: output.to_string(),
            span: site.at(*output_span).into(),
            help,
        });
    }
}

/// `params.<name>` or `secrets.<name>`: the name must be declared under the root.
fn declared<V>(
    r: &Reference<'_>,
    declared: &IndexMap<String, V>,
    site: &Site<'_>,
    problems: &mut Vec<Problem>,
) {
    let Some((name, name_span)) = r.segments.first() else {
        return;
    };
    if declared.contains_key(name.as_ref()) {
        return;
    }
    let names = declared.keys().map(String::as_str);
    let help = suggestion(name, names.clone(), || {
        format!("declared {}: {}", r.root, list(names))
    });
    problems.push(Problem::UnknownVariable {
        name: format!("{}.{name}", r.root),
        span: site.at(*name_span).into(),
        help,
    });
}

/// Checks `name.attr` (written at `attr_span`) against the known attributes; true when it
/// is one.
fn attribute(
    name: &str,
    attr: &str,
    known: &[&[&str]],
    site: &Site<'_>,
    attr_span: JSpan,
    problems: &mut Vec<Problem>,
) -> bool {
    let known = || known.iter().flat_map(|k| k.iter().copied());
    if known().any(|k| k == attr) {
        return true;
    }
    let help = suggestion(attr, known(), || format!("`{name}` has {}", list(known())));
    problems.push(Problem::UnknownAttribute {
        name: name.to_owned(),
        attribute: attr.to_owned(),
        span: site.at(attr_span).into(),
        help,
    });
    false
}
