//! Draws the step DAG as Graphviz dot or Mermaid, marking irreversible and approval steps.

use std::fmt::Write;

use crate::dag::Dag;
use crate::model::{ForEach, Runbook, Step};

/// A `for_each` step is one node: how many items when the list is written out, else what it
/// repeats over (known at run time).
fn repeats(step: &Step) -> Option<String> {
    Some(match &step.for_each.as_ref()?.value {
        ForEach::List(items) => format!("for each of {} items", items.len()),
        ForEach::Template(text) => format!("for each of {}", text.trim()),
    })
}

/// Graphviz: `runbook graph FILE --format dot | dot -Tsvg`.
pub fn dot(runbook: &Runbook, dag: &Dag) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "digraph {} {{", dot_string(&runbook.name));
    out.push_str("  rankdir=TB;\n  node [shape=box, style=rounded, fontname=\"Helvetica\"];\n");
    for (i, step) in runbook.steps.iter().enumerate() {
        let mut label = step.id.value.clone();
        if let Some(title) = &step.title {
            let _ = write!(label, "\n{}", title.value);
        }
        let mut attrs = String::new();
        if let Some(repeats) = repeats(step) {
            let _ = write!(label, "\n[{repeats}]");
            attrs.push_str(", peripheries=2");
        }
        if step.is_approval() {
            label.push_str("\n[approval]");
            attrs.push_str(", shape=hexagon, style=\"\"");
        }
        if step.is_irreversible() {
            label.push_str("\n[irreversible]");
            attrs.push_str(", color=red, penwidth=2");
        }
        let _ = writeln!(out, "  s{i} [label={}{attrs}];", dot_string(&label));
    }
    for i in 0..dag.len() {
        let mut children: Vec<usize> = dag.children(i).collect();
        children.sort_unstable();
        for child in children {
            let _ = writeln!(out, "  s{i} -> s{child};");
        }
    }
    out.push_str("}\n");
    out
}

/// Mermaid: paste into Markdown that renders ```mermaid blocks.
pub fn mermaid(runbook: &Runbook, dag: &Dag) -> String {
    let mut out = String::from("flowchart TD\n");
    for (i, step) in runbook.steps.iter().enumerate() {
        let mut label = mermaid_text(&step.id);
        if let Some(title) = &step.title {
            let _ = write!(label, "<br/>{}", mermaid_text(title));
        }
        if let Some(repeats) = repeats(step) {
            let _ = write!(label, "<br/>↻ {}", mermaid_text(&repeats));
        }
        if step.is_irreversible() {
            label.push_str("<br/>⚠ irreversible");
        }
        if step.is_approval() {
            let _ = writeln!(out, "  s{i}{{{{\"✋ {label}\"}}}}");
        } else {
            let _ = writeln!(out, "  s{i}[\"{label}\"]");
        }
    }
    for i in 0..dag.len() {
        let mut children: Vec<usize> = dag.children(i).collect();
        children.sort_unstable();
        for child in children {
            let _ = writeln!(out, "  s{i} --> s{child}");
        }
    }
    let irreversible: Vec<String> = runbook
        .steps
        .iter()
        .enumerate()
        .filter(|(_, s)| s.is_irreversible())
        .map(|(i, _)| format!("s{i}"))
        .collect();
    if !irreversible.is_empty() {
        out.push_str("  classDef irreversible stroke:#d00,stroke-width:3px\n");
        let _ = writeln!(out, "  class {} irreversible", irreversible.join(","));
    }
    out
}

fn dot_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn mermaid_text(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
