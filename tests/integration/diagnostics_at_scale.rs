//! Thousands of problems in a large runbook: the report, "did you mean" included, costs time in
//! proportion to the problems, not to the problems times the steps or the file size.

use std::time::{Duration, Instant};

use crate::support::Test;

/// Step ids as long as real, descriptive ones: scoring a long name against each of thousands of ids
/// is what made "did you mean" slow.
const ID: &str = "restore_the_reporting_database_from_the_nightly_backup_on_replica_";

/// 5,000 one-line steps in a chain; every tenth needs its parent with `nightly` mistyped.
fn five_thousand_steps_five_hundred_typos() -> String {
    let mut yaml = String::from("runbook: 1\nname: t\nsteps:\n");
    yaml.push_str(&format!("  - {{ id: {ID}0, wait: 1s }}\n"));
    for i in 1..5_000 {
        let parent = if i % 10 == 1 {
            ID.replace("nightly", "nigthly")
        } else {
            ID.to_owned()
        };
        yaml.push_str(&format!(
            "  - {{ id: {ID}{i}, needs: [{parent}{}], wait: 1s }}\n",
            i - 1
        ));
    }
    yaml
}

#[test]
fn did_you_mean_among_thousands_of_long_ids_is_bounded_per_name() {
    let yaml = five_thousand_steps_five_hundred_typos();
    let started = Instant::now();
    let out = Test::new()
        .file("runbook.yaml", &yaml)
        .args(["validate", "--format", "human", "runbook.yaml"])
        .run();
    let elapsed = started.elapsed();
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stdout.ends_with("1 file: 500 errors, 0 warnings\n"),
        "{}",
        &out.stdout[out.stdout.len().saturating_sub(500)..]
    );
    // The suggestion is still the step that was meant, not just any close one.
    for meant in [0, 10, 990] {
        assert!(
            out.stdout.contains(&format!("did you mean `{ID}{meant}`?")),
            "no suggestion of step {meant}"
        );
    }
    // A debug build takes about 2 s of CPU. Scoring each of the 100 suggested typos against
    // every id took 23 s of CPU (48 s on a loaded machine).
    assert!(
        elapsed < Duration::from_secs(20),
        "500 mistyped needs among 5,000 steps took {elapsed:?}"
    );
}
