//! The committed JSON Schema is the one generated from the model, and it knows every key
//! the loader accepts.

use crate::support::{Test, repo};

#[test]
fn committed_schema_is_up_to_date() {
    let out = Test::new().args(["schema"]).run();
    assert_eq!(out.code, 0);
    let committed = std::fs::read_to_string(repo().join("schema/runbook.schema.json")).unwrap();
    assert!(
        out.stdout == committed,
        "schema/runbook.schema.json is stale: run `cargo run -- schema > schema/runbook.schema.json`"
    );
}

#[test]
fn schema_lists_the_keys_the_loader_accepts() {
    use runbook::model::build::*;
    let schema: serde_json::Value =
        serde_json::from_str(&Test::new().args(["schema"]).run().stdout).unwrap();
    let keys = |def: Option<&str>| -> Vec<String> {
        let node = match def {
            None => &schema,
            Some(name) => &schema["$defs"][name],
        };
        let mut keys: Vec<String> = node["properties"]
            .as_object()
            .unwrap_or_else(|| panic!("no properties for {def:?}"))
            .keys()
            .cloned()
            .collect();
        keys.sort();
        keys
    };
    let sorted = |list: &[&str]| {
        let mut v: Vec<String> = list.iter().map(|s| (*s).to_owned()).collect();
        v.sort();
        v
    };
    for (def, list) in [
        (None, RUNBOOK_KEYS),
        (Some("Step"), STEP_KEYS),
        (Some("Param"), PARAM_KEYS),
        (Some("Secret"), SECRET_KEYS),
        (Some("Connection"), CONNECTION_KEYS),
        (Some("Defaults"), DEFAULTS_KEYS),
        (Some("Retry"), RETRY_KEYS),
        (Some("RetryOn"), RETRY_ON_KEYS),
        (Some("Run"), RUN_KEYS),
        (Some("Sql"), SQL_KEYS),
        (Some("Assert"), ASSERT_KEYS),
        (Some("Approval"), APPROVAL_KEYS),
        (Some("Action"), ACTION_KEYS),
    ] {
        assert_eq!(keys(def), sorted(list), "keys of {def:?}");
    }
}
