//! Step ids and `needs`: syntax, duplicates, unknown and self references, and cycles.

use std::collections::HashMap;

use miette::LabeledSpan;
use petgraph::graph::NodeIndex;

use super::is_valid_id;
use crate::dag::Dag;
use crate::diagnostic::{Problem, list, suggestion};
use crate::model::Runbook;

pub fn check(runbook: &Runbook, problems: &mut Vec<Problem>) -> Dag {
    check_name(runbook, problems);
    check_steps(runbook, problems)
}

fn check_name(runbook: &Runbook, problems: &mut Vec<Problem>) {
    // A missing name (reported when the model was built) has no span; `name: ""` has one.
    let written = !runbook.name.span.is_empty();
    if written && !is_valid_id(&runbook.name, true) {
        problems.push(Problem::InvalidId {
            what: "runbook name",
            name: runbook.name.value.clone(),
            span: runbook.name.span.into(),
            help: "a name starts with a letter or `_`, then letters, digits, `_` or `-`".to_owned(),
        });
    }
}

/// Ids and `needs` of `runbook.steps`; the graph they make.
pub fn check_steps(runbook: &Runbook, problems: &mut Vec<Problem>) -> Dag {
    // The graph's index holds the first step of each id.
    let dag = Dag::new(runbook);
    for (i, step) in runbook.steps.iter().enumerate() {
        // Steps from a group have ids `use.step`, made here, not written.
        if step.scope.is_empty() && !is_valid_id(&step.id, true) {
            problems.push(Problem::InvalidId {
                what: "step id",
                name: step.id.value.clone(),
                span: step.id.span.into(),
                help: "a step id starts with a letter or `_`, then letters, digits, `_` or `-`"
                    .to_owned(),
            });
        }
        if let Some(j) = dag.index_of(step.id.as_str()).filter(|&j| j != i) {
            problems.push(Problem::DuplicateStep {
                id: step.id.value.clone(),
                span: step.id.span.into(),
                first: runbook.steps[j].id.span.into(),
            });
        }
    }

    // Suggestions compare against every id: bound their number so that a file with
    // thousands of broken `needs` stays linear.
    let mut suggestions_left = MAX_SUGGESTIONS;
    for step in &runbook.steps {
        for need in &step.needs {
            if need.value == step.id.value {
                problems.push(Problem::SelfDependency {
                    id: step.id.value.clone(),
                    span: need.span.into(),
                });
            } else if dag.index_of(need.as_str()).is_none() {
                let ids = runbook.steps.iter().map(|s| s.id.as_str());
                let ids = ids.take(if suggestions_left > 0 { usize::MAX } else { 0 });
                suggestions_left = suggestions_left.saturating_sub(1);
                let help = suggestion(need, ids, || {
                    if runbook.steps.len() <= 12 {
                        format!(
                            "steps are {}",
                            list(runbook.steps.iter().map(|s| s.id.as_str()))
                        )
                    } else {
                        "check the spelling against the step ids".to_owned()
                    }
                });
                problems.push(Problem::UnknownStep {
                    step: step.id.value.clone(),
                    id: need.value.clone(),
                    span: need.span.into(),
                    help,
                });
            }
        }
    }

    report_cycles(runbook, &dag, problems);
    dag
}

/// How many unknown `needs` get a "did you mean" (each compares against every step id).
pub(crate) const MAX_SUGGESTIONS: usize = 100;

/// How many steps and edges of one cycle a report shows.
const MAX_SHOWN: usize = 12;

/// One problem per strongly connected component with more than one step, showing one cycle
/// through it and a label on each `needs` entry that forms an edge of that cycle.
fn report_cycles(runbook: &Runbook, dag: &Dag, problems: &mut Vec<Problem>) {
    if petgraph::algo::toposort(dag.graph(), None).is_ok() {
        return;
    }
    // Kosaraju's walk is iterative: a 100k-step chain must not overflow the stack.
    let mut components: Vec<Vec<NodeIndex>> = petgraph::algo::kosaraju_scc(dag.graph())
        .into_iter()
        .filter(|c| c.len() > 1)
        .collect();
    for component in &mut components {
        component.sort_unstable();
    }
    components.sort_unstable_by_key(|c| c[0]);
    for component in components {
        let cycle = find_cycle(dag, &component);
        // Shown in the direction of `needs`: `a → b` reads "a needs b".
        let mut names: Vec<&str> = cycle[..1]
            .iter()
            .chain(cycle[1..].iter().rev())
            .chain(&cycle[..1])
            .map(|&i| runbook.steps[i].id.as_str())
            .collect();
        // A long cycle is shown by its ends; every step of it is still labelled up to a cap.
        if names.len() > MAX_SHOWN + 1 {
            let hidden = names.len() - MAX_SHOWN;
            let last = names.split_off(names.len() - MAX_SHOWN / 2);
            names.truncate(MAX_SHOWN / 2);
            names.push(if hidden == 1 {
                "…"
            } else {
                "… (more steps) …"
            });
            names.extend(last);
        }
        // cycle[k] is needed by cycle[k+1]: label the `needs` entry in cycle[k+1].
        let mut edges: Vec<LabeledSpan> = (0..cycle.len())
            .filter_map(|k| {
                let from = cycle[k];
                let to = cycle[(k + 1) % cycle.len()];
                let need = runbook.steps[to]
                    .needs
                    .iter()
                    .find(|n| n.value == runbook.steps[from].id.value)?;
                Some(LabeledSpan::new_with_span(
                    Some(format!(
                        "`{}` needs `{}`",
                        runbook.steps[to].id.value, runbook.steps[from].id.value
                    )),
                    need.span,
                ))
            })
            .collect();
        // The first label in the file is where the problem is reported.
        edges.sort_by_key(LabeledSpan::offset);
        edges.truncate(MAX_SHOWN);
        problems.push(Problem::Cycle {
            path: names.join(" → "),
            edges,
        });
    }
}

/// A cycle inside a strongly connected component, starting at its first step in declaration
/// order and following dependency edges (step → step that needs it).
fn find_cycle(dag: &Dag, component: &[NodeIndex]) -> Vec<usize> {
    let start = component[0].index();
    let in_component = |i: usize| component.binary_search(&NodeIndex::new(i)).is_ok();
    // Breadth-first from start gives the shortest way back to it.
    let mut previous: HashMap<usize, usize> = HashMap::new();
    let mut queue = std::collections::VecDeque::from([start]);
    while let Some(node) = queue.pop_front() {
        let mut children: Vec<usize> = dag.children(node).filter(|&c| in_component(c)).collect();
        children.sort_unstable();
        for child in children {
            if child == start {
                let mut cycle = vec![node];
                let mut at = node;
                while at != start {
                    at = previous[&at];
                    cycle.push(at);
                }
                cycle.reverse();
                return cycle;
            }
            if let std::collections::hash_map::Entry::Vacant(e) = previous.entry(child) {
                e.insert(node);
                queue.push_back(child);
            }
        }
    }
    vec![start]
}
