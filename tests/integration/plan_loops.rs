//! The generated-DAG property of `plan --fail-at`, with `for_each` steps: over literal lists
//! and param lists, their items one or several at a time, failing at a step or at one
//! instance (`--fail-at STEP[KEY]`), what the plan predicts is what the failing run does.

use std::collections::BTreeSet;

use crate::plan::Lcg;
use crate::support::Test;

/// A runbook and the `--fail-at` target. Every step and instance logs `ok:ID` when it
/// completes and `rb:ID` when it is rolled back.
fn generated(seed: u64) -> (String, String) {
    let mut rng = Lcg(seed);
    let n = 2 + rng.below(5) as usize;
    let failing = rng.below(n as u64) as usize;
    let mut target = format!("s{failing}");
    let mut yaml = String::from(
        "runbook: 1\nname: g\nparams:\n  hosts: { type: list, default: [h1, h2, h3] }\nsteps:\n",
    );
    for i in 0..n {
        yaml.push_str(&format!("  - id: s{i}\n"));
        let needs: Vec<String> = (0..i)
            .filter(|_| rng.below(3) == 0)
            .map(|j| format!("s{j}"))
            .collect();
        if !needs.is_empty() {
            yaml.push_str(&format!("    needs: [{}]\n", needs.join(", ")));
        }
        let looped = rng.below(2) == 0;
        let id = match looped {
            true => format!("s{i}[{{{{ item }}}}]"),
            false => format!("s{i}"),
        };
        let mut fails = "false".to_owned();
        if looped {
            let keys = match rng.below(2) {
                0 => {
                    yaml.push_str("    for_each: [x, y, z]\n");
                    ["x", "y", "z"]
                }
                _ => {
                    yaml.push_str("    for_each: '{{ params.hosts }}'\n");
                    ["h1", "h2", "h3"]
                }
            };
            yaml.push_str(&format!("    concurrency: {}\n", 1 + rng.below(3)));
            if i == failing {
                let key = keys[rng.below(3) as usize];
                target = format!("s{i}[{key}]");
                fails = format!("[ '{{{{ item }}}}' = {key} ]");
            }
        } else if i == failing {
            fails = "true".to_owned();
        }
        yaml.push_str(&format!(
            "    run: {{ shell: sh, script: \"if {fails}; then exit 1; fi; echo ok:{id} >> log\" }}\n"
        ));
        if rng.below(10) < 7 {
            yaml.push_str(&format!(
                "    rollback: {{ run: {{ shell: sh, script: \"echo rb:{id} >> log\" }} }}\n"
            ));
        }
    }
    (yaml, target)
}

/// A list of a plan's scenario (absent when empty).
pub fn strings(v: &serde_json::Value) -> Vec<String> {
    match v.as_array() {
        Some(list) => list
            .iter()
            .filter_map(|s| s.as_str().map(str::to_owned))
            .collect(),
        None => Vec::new(),
    }
}

fn set(v: &[String]) -> BTreeSet<String> {
    v.iter().cloned().collect()
}

#[test]
fn plan_fail_at_predicts_what_a_failing_run_with_loops_does() {
    let (mut at_instance, mut beside_it) = (0, 0);
    for seed in 1..=30 {
        let (yaml, failing) = generated(seed);
        let plan = Test::new()
            .file("g.yaml", &yaml)
            .args(["plan", "g.yaml", "--format", "json", "--fail-at", &failing])
            .run();
        assert_eq!(plan.code, 0, "seed {seed}: {}\n{yaml}", plan.stderr);
        let scenario = &plan.json()["scenario"];
        let t = Test::new()
            .file("g.yaml", &yaml)
            .args(["run", "g.yaml", "--concurrency", "1"]);
        let run = t.run();
        let log = t.read("log");
        let logged = |prefix: &str| -> Vec<String> {
            log.lines()
                .filter_map(|l| l.strip_prefix(prefix))
                .map(str::to_owned)
                .collect()
        };
        let (completed, rolled_back) = (logged("ok:"), logged("rb:"));
        let sure = strings(&scenario["completed"]);
        let may = strings(&scenario["may_also_complete"]);
        if failing.contains('[') {
            at_instance += 1;
        }
        if !may.is_empty() && completed.len() > sure.len() {
            beside_it += 1;
        }
        let context = format!("seed {seed}, --fail-at {failing}:\n{yaml}\n{log}\n{scenario}");
        // What surely completes did; nothing completed that the plan did not name.
        assert!(set(&sure).is_subset(&set(&completed)), "{context}");
        let possible: BTreeSet<String> = set(&sure).union(&set(&may)).cloned().collect();
        assert!(set(&completed).is_subset(&possible), "{context}");
        let sure_rb = strings(&scenario["rollback"]);
        let may_rb = strings(&scenario["may_also_roll_back"]);
        assert!(set(&sure_rb).is_subset(&set(&rolled_back)), "{context}");
        let possible_rb: BTreeSet<String> = set(&sure_rb).union(&set(&may_rb)).cloned().collect();
        assert!(set(&rolled_back).is_subset(&possible_rb), "{context}");
        // One item at a time everywhere: the order is known too.
        if !yaml.contains("concurrency: 2") && !yaml.contains("concurrency: 3") {
            assert_eq!(completed, sure, "{context}");
            assert_eq!(rolled_back, sure_rb, "{context}");
        }
        assert_eq!(
            Some(i64::from(run.code)),
            scenario["exit_code"].as_i64(),
            "{context}\n{}",
            run.stdout
        );
    }
    // The seeds cover what the property is about: failures at an instance, and items that
    // completed beside the failing one.
    assert!(at_instance >= 5, "{at_instance} seeds fail at an instance");
    assert!(
        beside_it >= 1,
        "{beside_it} seeds completed items beside the failing one"
    );
}
