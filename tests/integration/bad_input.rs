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
