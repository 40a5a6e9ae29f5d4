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
