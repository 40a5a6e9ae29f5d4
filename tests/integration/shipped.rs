//! Every runbook shipped under `runbooks/` validates with no errors and no warnings, and
//! each starts with the schema line editors use (parameter files, `params.*.yaml`, are not
//! runbooks).

use crate::support::{Test, repo};

#[test]
fn shipped_runbooks_validate_cleanly() {
    let dir = repo().join("runbooks");
    let out = Test::new()
        .args(["validate", "--deny-warnings", "--format", "json"])
        .args([dir.to_string_lossy().into_owned()])
        .run();
    assert_eq!(out.code, 0, "{}", out.stdout);
    let json = out.json();
    assert!(json["summary"]["files"].as_u64().unwrap() >= 2);
    assert_eq!(json["summary"]["errors"], 0);
    assert_eq!(json["summary"]["warnings"], 0);
}

#[test]
fn shipped_runbooks_point_editors_at_the_schema() {
    let mut stack = vec![repo().join("runbooks")];
    let mut seen = 0;
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml")
                && !path
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("params."))
                && !path
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().ends_with(".test.yaml"))
            {
                let text = std::fs::read_to_string(&path).unwrap();
                let first = text.lines().next().unwrap_or_default();
                assert!(
                    first.starts_with("# yaml-language-server: $schema=")
                        && first.ends_with("schema/runbook.schema.json"),
                    "{} starts with {first:?}",
                    path.display()
                );
                seen += 1;
            }
        }
    }
    assert!(seen >= 2);
}
