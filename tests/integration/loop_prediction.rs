//! `plan --fail-at STEP[KEY]` on an item of a `for_each` step predicts what the failing run
//! does, also when items run side by side.

use crate::plan_loops::strings;
use crate::support::Test;

/// Items a, b, c, d, `concurrency` at once; b sleeps, then fails; each item logs `ok:` and its
/// rollback `rb:`.
fn book(concurrency: usize) -> String {
    format!(
        "runbook: 1\nname: t\nsteps:\n  - id: l\n    for_each: [a, b, c, d]\n    concurrency: {concurrency}\n    run: {{ shell: sh, script: 'if [ {{{{ item }}}} = b ]; then sleep 2; exit 1; fi; echo ok:l[{{{{ item }}}}] >> log' }}\n    rollback: {{ run: {{ shell: sh, script: 'echo rb:l[{{{{ item }}}}] >> log' }} }}\n  - id: after\n    needs: [l]\n    run: {{ shell: sh, script: 'echo ok:after >> log' }}\n"
    )
}

fn logged(log: &str, prefix: &str) -> Vec<String> {
    log.lines()
        .filter_map(|l| l.strip_prefix(prefix))
        .map(str::to_owned)
        .collect()
}

#[test]
fn plan_fail_at_an_item_of_a_concurrent_loop_names_the_later_items_the_run_completes() {
    for concurrency in [1, 2, 4] {
        let yaml = book(concurrency);
        let plan = Test::new()
            .file("r.yaml", &yaml)
            .args(["plan", "r.yaml", "--format", "json", "--fail-at", "l[b]"])
            .run();
        assert_eq!(plan.code, 0, "{}", plan.stderr);
        let scenario = &plan.json()["scenario"];
        let t = Test::new().file("r.yaml", &yaml).args(["run", "r.yaml"]);
        let run = t.run();
        let log = t.read("log");
        let (completed, rolled_back) = (logged(&log, "ok:"), logged(&log, "rb:"));
        let sure = strings(&scenario["completed"]);
        let may = strings(&scenario["may_also_complete"]);
        assert_eq!(sure, ["l[a]"], "concurrency {concurrency}: {scenario}");
        // b sleeps: with room beside it, c and d complete before it fails.
        let later: Vec<String> = match concurrency {
            1 => Vec::new(),
            _ => vec!["l[c]".to_owned(), "l[d]".to_owned()],
        };
        let mut expected = sure.clone();
        expected.extend(later.iter().cloned());
        assert_eq!(may, later, "concurrency {concurrency}: {scenario}");
        // Every rollback the run made was predicted, surely or possibly.
        let mut predicted = strings(&scenario["may_also_roll_back"]);
        predicted.extend(strings(&scenario["rollback"]));
        // Items side by side complete in any order, and are undone in reverse of it.
        let (mut completed, mut rolled_back) = (completed, rolled_back);
        if concurrency > 1 {
            for list in [
                &mut completed,
                &mut expected,
                &mut rolled_back,
                &mut predicted,
            ] {
                list.sort();
            }
        }
        assert_eq!(completed, expected, "concurrency {concurrency}: {log}");
        assert_eq!(rolled_back, predicted, "concurrency {concurrency}: {log}");
        assert_eq!(
            Some(i64::from(run.code)),
            scenario["exit_code"].as_i64(),
            "concurrency {concurrency}: {}",
            run.stdout
        );
    }
}
