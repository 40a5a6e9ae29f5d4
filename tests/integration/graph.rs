//! `runbook graph`: the DAG as dot or mermaid, with irreversible and approval steps marked.

use crate::support::Test;

const BOOK: &str = "runbook: 1\nname: g\nsteps:\n  - id: a\n    title: First\n    wait: 1s\n  - id: b\n    needs: [a]\n    approval: { prompt: ok? }\n  - id: c\n    needs: [a, b]\n    irreversible: true\n    wait: 1s\n";

#[test]
fn dot() {
    let out = Test::new()
        .file("g.yaml", BOOK)
        .args(["graph", "g.yaml"])
        .run();
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        out.stdout,
        "digraph \"g\" {\n  rankdir=TB;\n  node [shape=box, style=rounded, fontname=\"Helvetica\"];\n  s0 [label=\"a\\nFirst\"];\n  s1 [label=\"b\\n[approval]\", shape=hexagon, style=\"\"];\n  s2 [label=\"c\\n[irreversible]\", color=red, penwidth=2];\n  s0 -> s1;\n  s0 -> s2;\n  s1 -> s2;\n}\n"
    );
}

#[test]
fn mermaid() {
    let out = Test::new()
        .file("g.yaml", BOOK)
        .args(["graph", "g.yaml", "--format", "mermaid"])
        .run();
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        out.stdout,
        "flowchart TD\n  s0[\"a<br/>First\"]\n  s1{{\"✋ b\"}}\n  s2[\"c<br/>⚠ irreversible\"]\n  s0 --> s1\n  s0 --> s2\n  s1 --> s2\n  classDef irreversible stroke:#d00,stroke-width:3px\n  class s2 irreversible\n"
    );
}

#[test]
fn invalid_runbook_is_not_drawn() {
    let out = Test::new()
        .file(
            "g.yaml",
            "runbook: 1\nname: g\nsteps:\n  - id: a\n    needs: [a]\n    wait: 1s\n",
        )
        .args(["graph", "g.yaml"])
        .run();
    assert_eq!(
        out.code, 2,
        "an invalid runbook is a usage error, as for plan"
    );
    assert_eq!(out.stdout, "");
    assert!(
        out.stderr.contains("step `a` needs itself"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_for_each_step_is_one_node_saying_what_it_repeats_over() {
    let yaml = "runbook: 1\nname: g\nparams:\n  hosts: { type: list, default: [a] }\nsteps:\n  - id: fixed\n    for_each: [x, y, z]\n    run: { program: echo, args: [\"{{ item }}\"] }\n  - id: hosts\n    needs: [fixed]\n    for_each: \"{{ params.hosts }}\"\n    run: { program: echo, args: [\"{{ item }}\"] }\n";
    let t = Test::new().file("g.yaml", yaml);
    let dot = Test::in_dir(t.path()).args(["graph", "g.yaml"]).run();
    assert_eq!(dot.code, 0, "{}", dot.stderr);
    assert!(
        dot.stdout
            .contains("s0 [label=\"fixed\\n[for each of 3 items]\", peripheries=2];")
            && dot.stdout.contains(
                "s1 [label=\"hosts\\n[for each of {{ params.hosts }}]\", peripheries=2];"
            ),
        "{}",
        dot.stdout
    );
    let mermaid = Test::in_dir(t.path())
        .args(["graph", "g.yaml", "--format", "mermaid"])
        .run();
    assert!(
        mermaid
            .stdout
            .contains("s0[\"fixed<br/>↻ for each of 3 items\"]"),
        "{}",
        mermaid.stdout
    );
}
