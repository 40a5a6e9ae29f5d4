//! Hostile and broken files: each ends quickly with one clear, located error and exit 1.

use crate::support::{Test, diag};

fn one(name: &str, content: &[u8]) -> crate::support::Output {
    let out = Test::new()
        .file(name, content)
        .args(["validate", "--format", "json", name])
        .run();
    assert_eq!(out.code, 1, "{}", out.stdout);
    out
}

#[test]
fn empty_file() {
    assert_eq!(
        one("e.yaml", b"").diags(),
        [diag("empty", 1, 1, "the file is empty")]
    );
}

#[test]
fn only_comments_is_empty() {
    assert_eq!(
        one("e.yaml", b"# nothing\n").diags()[0].code,
        "runbook::empty"
    );
}

#[test]
fn top_level_list() {
    assert_eq!(
        one("l.yaml", b"- a\n- b\n").diags(),
        [diag(
            "not_a_mapping",
            1,
            1,
            "a runbook must be a mapping, found a list"
        )]
    );
}

#[test]
fn several_documents() {
    assert_eq!(
        one("m.yaml", b"runbook: 1\n---\nrunbook: 1\n").diags(),
        [diag(
            "multiple_documents",
            2,
            1,
            "the file holds more than one YAML document"
        )]
    );
}

#[test]
fn invalid_utf8_points_at_the_byte() {
    assert_eq!(
        one("u.yaml", b"runbook: 1\nname: caf\xe9\n").diags(),
        [diag("invalid_utf8", 2, 10, "the file is not valid UTF-8")]
    );
}

#[test]
fn yaml_syntax_error() {
    assert_eq!(
        one("s.yaml", b"runbook: 1\nsteps: [a, b\nname: x\n").diags()[0].code,
        "runbook::yaml_syntax"
    );
}

#[test]
fn duplicate_key() {
    assert_eq!(
        one("d.yaml", b"runbook: 1\nname: a\nname: b\nsteps: []\n").diags(),
        [diag(
            "yaml_syntax",
            3,
            1,
            "YAML syntax error: duplicate key `name`"
        )]
    );
}

#[test]
fn unreadable_path() {
    let out = Test::new()
        .args(["validate", "--format", "json", "missing.yaml"])
        .run();
    assert_eq!(out.code, 1);
    let d = &out.json()["diagnostics"][0];
    assert_eq!(d["code"], "runbook::io");
    assert!(
        d["message"]
            .as_str()
            .unwrap()
            .starts_with("cannot read `missing.yaml`")
    );
    assert!(d["line"].is_null());
}

#[test]
fn alias_bomb_is_refused() {
    let mut yaml = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..12 {
        let refs = vec![format!("*a{}", i - 1); 10].join(", ");
        yaml.push_str(&format!("a{i}: &a{i} [{refs}]\n"));
    }
    let d = &one("bomb.yaml", yaml.as_bytes()).diags()[0];
    assert_eq!(d.code, "runbook::resource_limit");
    assert!(d.message.contains("alias"), "{}", d.message);
}

#[test]
fn ten_thousand_levels_of_nesting_are_refused() {
    let yaml = format!("runbook: {}{}\n", "[".repeat(10_000), "]".repeat(10_000));
    let d = &one("deep.yaml", yaml.as_bytes()).diags()[0];
    assert_eq!(d.code, "runbook::resource_limit");
    let yaml = format!(
        "runbook: {}1{}\n",
        "{a: ".repeat(10_000),
        "}".repeat(10_000)
    );
    assert_eq!(
        one("deep2.yaml", yaml.as_bytes()).diags()[0].code,
        "runbook::resource_limit"
    );
}

#[test]
fn a_hundred_megabyte_file_is_refused_before_parsing() {
    let t = Test::new();
    let path = t.path().join("big.yaml");
    let file = std::fs::File::create(&path).unwrap();
    file.set_len(100 * 1024 * 1024).unwrap();
    let out = t.args(["validate", "--format", "json", "big.yaml"]).run();
    assert_eq!(out.code, 1);
    assert_eq!(
        out.diags(),
        [diag(
            "too_large",
            0,
            0,
            "the file is 104857600 bytes; runbooks are limited to 33554432 bytes"
        )]
    );
}

#[test]
fn usage_errors_exit_2() {
    assert_eq!(Test::new().args(["validate"]).run().code, 2);
    assert_eq!(
        Test::new()
            .args(["validate", "--format", "xml", "a.yaml"])
            .run()
            .code,
        2
    );
    assert_eq!(Test::new().args(["frobnicate"]).run().code, 2);
    let out = Test::new()
        .file("empty/.keep", "")
        .args(["validate", "empty"])
        .run();
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("no runbook files"), "{}", out.stderr);
}

/// The YAML reader's refusals keep their wording and their place, whatever builds the tree.
#[test]
fn alias_bomb_is_refused_at_the_alias_that_crosses_the_limit() {
    let mut yaml = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..12 {
        let refs = vec![format!("*a{}", i - 1); 10].join(", ");
        yaml.push_str(&format!("a{i}: &a{i} [{refs}]\n"));
    }
    assert_eq!(
        one("bomb.yaml", yaml.as_bytes()).diags(),
        [diag(
            "resource_limit",
            5,
            10,
            "the file exceeds a resource limit: alias replay limit exceeded: total_replayed_events=20001 > 20000"
        )]
    );
}

#[test]
fn deep_nesting_is_refused_where_the_limit_is_crossed() {
    let flow = format!("runbook: {}{}\n", "[".repeat(10_000), "]".repeat(10_000));
    assert_eq!(
        one("deep.yaml", flow.as_bytes()).diags(),
        [diag(
            "resource_limit",
            1,
            265,
            "the file exceeds a resource limit: recursion limit exceeded"
        )]
    );
    let maps = format!("runbook: {}1{}\n", "{a: ".repeat(100), "}".repeat(100));
    assert_eq!(
        one("deep2.yaml", maps.as_bytes()).diags(),
        [diag(
            "resource_limit",
            1,
            198,
            "the file exceeds a resource limit: budget breached: Depth { depth: 49 }"
        )]
    );
}

#[test]
fn duplicate_key_in_a_flow_mapping_is_located_at_the_second_key() {
    assert_eq!(
        one(
            "d.yaml",
            b"runbook: 1\nname: t\nsteps:\n  - { id: a, wait: 1s, id: b }\n"
        )
        .diags(),
        [diag(
            "yaml_syntax",
            4,
            24,
            "YAML syntax error: duplicate key `id`"
        )]
    );
}

#[test]
fn alias_of_an_unknown_anchor_is_refused_at_the_alias() {
    assert_eq!(
        one("a.yaml", b"runbook: 1\nname: *nope\nsteps: []\n").diags(),
        [diag(
            "resource_limit",
            2,
            7,
            "the file exceeds a resource limit: alias references unknown anchor"
        )]
    );
}

#[test]
fn second_document_is_located_at_its_marker() {
    assert_eq!(
        one("m.yaml", b"runbook: 1\nname: t\nsteps: []\n---\n").diags(),
        [diag(
            "multiple_documents",
            4,
            1,
            "the file holds more than one YAML document"
        )]
    );
}

#[test]
fn merge_keys_and_aliases_build_steps() {
    let yaml = "runbook: 1\nname: t\nsteps:\n  - &base { id: a, run: { shell: sh, script: echo shared } }\n  - <<: *base\n    id: b\n    needs: [a]\n";
    assert_eq!(crate::support::validate(yaml), (vec![], 0));
    let out = crate::support::Test::new()
        .file("r.yaml", yaml)
        .args(["plan", "r.yaml", "--format", "json"])
        .run();
    assert_eq!(out.code, 0, "{}", out.stderr);
    let steps = out.json()["steps"].clone();
    assert_eq!(steps[1]["id"], "b");
    assert_eq!(steps[1]["needs"][0], "a");
    assert_eq!(steps[1]["action"]["script"], "echo shared");
}
