//! The end of a run with a `for_each` step: its attempts are the sum over its items, and its
//! failed items are named, in the human summary, the json events and `show`.

use crate::support::{Test, events_of};

const BOOK: &str = "runbook: 1\nname: t\nsteps:\n  - id: l\n    for_each: [a, b, c]\n    max_failures: 1\n    retry: { attempts: 2, delay: 0s }\n    run: { shell: sh, script: 'test \"{{ item }}\" != b' }\n  - id: after\n    needs: [l]\n    run: { program: \"true\" }\n";

#[test]
fn run_summary_sums_a_loops_attempts_over_items_and_lists_its_failed_items() {
    let t = Test::new()
        .file("r.yaml", BOOK)
        .args(["run", "r.yaml", "--state-dir", "state"]);
    let out = t.run();
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    // a: 1 attempt, b: 2 (both failed), c: 1.
    let line = out
        .stdout
        .lines()
        .find(|l| l.trim_start().starts_with("✓ l "))
        .unwrap_or_else(|| panic!("no summary line for l: {}", out.stdout));
    assert!(line.contains(" 4 attempts "), "{line}");
    assert!(line.ends_with("failed items: l[b]"), "{line}");
    let after = out
        .stdout
        .lines()
        .find(|l| l.trim_start().starts_with("✓ after "))
        .unwrap_or_else(|| panic!("no summary line for after: {}", out.stdout));
    assert!(!after.contains("failed items"), "{after}");

    let json = Test::new()
        .file("r.yaml", BOOK)
        .args(["run", "r.yaml", "--output", "json"]);
    let events = json.run().events();
    let finished: Vec<_> = events_of(&events, "step_finished")
        .into_iter()
        .filter(|e| e["step"] == "l")
        .collect();
    assert_eq!(finished.len(), 1, "{events:?}");
    assert_eq!(finished[0]["attempts"], 4);
    assert!(
        finished[0]["message"]
            .as_str()
            .is_some_and(|m| m.ends_with(": l[b]")),
        "{:?}",
        finished[0]
    );

    let runs = std::fs::read_dir(t.path().join("state/runs"))
        .expect("runs")
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect::<Vec<_>>();
    assert_eq!(runs.len(), 1, "{runs:?}");
    let show = Test::in_dir(t.path())
        .args(["show", "--state-dir", "state", &runs[0]])
        .run();
    assert_eq!(show.code, 0, "{}", show.stderr);
    assert!(
        show.stdout.contains("succeeded  l  (4 attempt(s)"),
        "{}",
        show.stdout
    );
    assert!(
        show.stdout.contains("failed     l[b]  (2 attempt(s)"),
        "{}",
        show.stdout
    );
}
