//! `runbook plan` (and `run --dry-run`): rendering, waves, placeholders, scenarios; and a
//! generated-DAG property: what `plan --fail-at` predicts is what a failing run does.

use crate::support::{Test, repo};

const BOOK: &str = "runbook: 1
name: p
params:
  db: { default: mgc }
  reachable: { type: bool, default: false }
steps:
  - id: copy
    run: { program: ls, args: ['/backups/{{ params.db }}'] }
    rollback: { run: { shell: sh, script: 'echo undo > log' } }
  - id: tail
    when: params.reachable
    run: { shell: sh, script: 'echo tail > log' }
  - id: restore
    needs: [copy, tail]
    irreversible: true
    run: { shell: bash, script: 'restore {{ steps.copy.stdout | trim }} {{ params.db | shell_quote }} > log' }
  - id: confirm
    needs: [restore]
    approval: { prompt: 'Is {{ params.db }} online?' }
";

#[test]
fn plan_renders_every_step_and_executes_nothing() {
    let t = Test::new().file("p.yaml", BOOK);
    let t = t.args(["plan", "p.yaml", "--format", "json"]);
    let out = t.run();
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(t.read("log"), "", "a plan runs nothing");
    let plan = out.json();
    assert_eq!(plan["runbook"], "p");
    assert_eq!(
        plan["waves"],
        serde_json::json!([["copy", "tail"], ["restore"], ["confirm"]])
    );
    let steps = plan["steps"].as_array().unwrap();
    assert_eq!(
        steps[0]["action"],
        serde_json::json!({ "kind": "command", "program": "ls", "args": ["/backups/mgc"] })
    );
    assert_eq!(
        steps[1]["when"],
        serde_json::json!({ "expression": "params.reachable", "value": false })
    );
    // Earlier outputs are placeholders, filters and all.
    assert_eq!(
        steps[2]["action"]["script"],
        "restore <steps.copy.stdout> mgc > log"
    );
    assert_eq!(steps[3]["action"]["prompt"], "Is mgc online?");
    assert_eq!(plan["approvals"], serde_json::json!(["confirm"]));
    assert_eq!(plan["points_of_no_return"], serde_json::json!(["restore"]));
}

#[test]
fn placeholders_for_outputs_of_earlier_steps() {
    let out = Test::new()
        .file(
            "p.yaml",
            "runbook: 1\nname: p\nsteps:\n  - id: list\n    run: { program: ls }\n    outputs: { first: '{{ result.stdout }}' }\n  - id: use\n    needs: [list]\n    run: { program: echo, args: ['{{ steps.list.stdout }}', \"{{ steps['list'].outputs.first }}\"] }\n",
        )
        .args(["plan", "p.yaml"])
        .run();
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout
            .contains("$ echo '<steps.list.stdout>' '<steps.list.outputs.first>'"),
        "{}",
        out.stdout
    );
}

#[test]
fn fail_at_shows_completions_rollbacks_and_the_point_of_no_return() {
    let out = Test::new()
        .file("p.yaml", BOOK)
        .args(["plan", "p.yaml", "--fail-at", "confirm", "--format", "json"])
        .run();
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        out.json()["scenario"],
        serde_json::json!({
            "concurrency": 4,
            "failed": "confirm",
            "completed": ["copy", "restore"],
            "skipped": ["tail"],
            "rollback": [],
            "not_rolled_back": [
                { "id": "restore", "reason": "irreversible: a point of no return" },
                { "id": "copy", "reason": "behind irreversible step `restore`" }
            ],
            "exit_code": 3,
            "outcome": "needs a person: the run stops past the point of no return (`restore`); a forward fix is needed"
        })
    );
    let out = Test::new()
        .file("p.yaml", BOOK)
        .args(["plan", "p.yaml", "--fail-at", "restore"])
        .run();
    assert!(
        out.stdout
            .contains("3. rollback, one at a time in this order:\n     1. copy\n"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("outcome: failed and rolled back (exit 1)"),
        "{}",
        out.stdout
    );
}

#[test]
fn fail_at_an_unknown_step_is_a_usage_error() {
    let out = Test::new()
        .file("p.yaml", BOOK)
        .args(["plan", "p.yaml", "--fail-at", "restor"])
        .run();
    assert_eq!(out.code, 2);
    assert!(
        out.stderr
            .contains("no step `restor`; did you mean `restore`?"),
        "{}",
        out.stderr
    );
}

#[test]
fn markdown_for_a_change_ticket() {
    let out = Test::new()
        .file("p.yaml", BOOK)
        .args([
            "plan",
            "p.yaml",
            "--format",
            "markdown",
            "--fail-at",
            "confirm",
        ])
        .run();
    assert_eq!(out.code, 0);
    for expected in [
        "# Plan: `p`",
        "| wave | step | title | rollback | notes |",
        "| 2 | `restore` |  | **point of no return** | IRREVERSIBLE |",
        "## If `confirm` fails",
        "**Outcome:** needs a person",
    ] {
        assert!(
            out.stdout.contains(expected),
            "missing {expected:?}:\n{}",
            out.stdout
        );
    }
}

#[test]
fn run_dry_run_is_the_plan() {
    let plan = Test::new()
        .file("p.yaml", BOOK)
        .args(["plan", "p.yaml"])
        .run();
    let dry = Test::new()
        .file("p.yaml", BOOK)
        .args(["run", "--dry-run", "p.yaml"])
        .run();
    assert_eq!(dry.code, 0);
    assert_eq!(plan.stdout, dry.stdout);
}

#[test]
fn plan_uses_examples_for_missing_params_and_says_so() {
    let out = Test::new()
        .file(
            "p.yaml",
            "runbook: 1\nname: p\nparams:\n  pool: { example: pchat.contoso.com }\nsteps:\n  - id: s\n    run: { program: echo, args: ['{{ params.pool }}'] }\n",
        )
        .args(["plan", "p.yaml"])
        .run();
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout
            .contains("params: pool=pchat.contoso.com (example)"),
        "{}",
        out.stdout
    );
}

#[test]
fn shipped_examples_plan_fully() {
    for name in ["hello.yaml", "format-tour.yaml", "parallel-deploy.yaml"] {
        let path = repo().join("runbooks/examples").join(name);
        let out = Test::new().args(["plan", path.to_str().unwrap()]).run();
        assert_eq!(out.code, 0, "{name}: {}", out.stderr);
        assert!(out.stdout.starts_with("Plan for `"), "{name}");
    }
}

/// A small deterministic generator, so every failure can be replayed from its seed.
pub struct Lcg(pub u64);

impl Lcg {
    pub fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n
    }
}

fn generated(seed: u64) -> (String, String) {
    let mut rng = Lcg(seed);
    let n = 3 + rng.below(6) as usize;
    let failing = rng.below(n as u64) as usize;
    let mut yaml = String::from("runbook: 1\nname: g\nsteps:\n");
    for i in 0..n {
        yaml.push_str(&format!("  - id: s{i}\n"));
        let mut needs: Vec<String> = Vec::new();
        for j in 0..i {
            if rng.below(3) == 0 {
                needs.push(format!("s{j}"));
            }
        }
        if !needs.is_empty() {
            yaml.push_str(&format!("    needs: [{}]\n", needs.join(", ")));
        }
        let irreversible = rng.below(7) == 0;
        if i == failing {
            yaml.push_str("    run: { shell: sh, script: exit 1 }\n");
        } else {
            yaml.push_str(&format!(
                "    run: {{ shell: sh, script: echo ok:s{i} >> log }}\n"
            ));
        }
        if irreversible {
            yaml.push_str("    irreversible: true\n");
        } else if rng.below(10) < 7 {
            yaml.push_str(&format!(
                "    rollback: {{ run: {{ shell: sh, script: echo rb:s{i} >> log }} }}\n"
            ));
        }
    }
    (yaml, format!("s{failing}"))
}

#[test]
fn plan_fail_at_predicts_what_a_failing_run_does() {
    for seed in 1..=30 {
        let (yaml, failing) = generated(seed);
        let plan = Test::new()
            .file("g.yaml", &yaml)
            .args(["plan", "g.yaml", "--format", "json", "--fail-at", &failing])
            .run();
        assert_eq!(plan.code, 0, "seed {seed}: {}", plan.stderr);
        let scenario = &plan.json()["scenario"];
        let t = Test::new().file("g.yaml", &yaml);
        let t = t.args(["run", "g.yaml", "--concurrency", "1"]);
        let run = t.run();
        let log = t.read("log");
        let completed: Vec<String> = log
            .lines()
            .filter_map(|l| l.strip_prefix("ok:"))
            .map(str::to_owned)
            .collect();
        let rolled_back: Vec<String> = log
            .lines()
            .filter_map(|l| l.strip_prefix("rb:"))
            .map(str::to_owned)
            .collect();
        let strings = |v: &serde_json::Value| -> Vec<String> {
            v.as_array()
                .unwrap()
                .iter()
                .map(|s| s.as_str().unwrap().to_owned())
                .collect()
        };
        assert_eq!(
            completed,
            strings(&scenario["completed"]),
            "seed {seed}:\n{yaml}"
        );
        assert_eq!(
            rolled_back,
            strings(&scenario["rollback"]),
            "seed {seed}:\n{yaml}"
        );
        assert_eq!(
            run.code,
            scenario["exit_code"].as_i64().unwrap() as i32,
            "seed {seed}:\n{yaml}\n{}",
            run.stdout
        );
    }
}

#[test]
fn quoting_filters() {
    let yaml = r#"runbook: 1
name: f
params:
  name: { default: "it's a ]name[" }
  json: { default: '{"a": [1, 2]}' }
steps:
  - id: s
    run:
      program: echo
      args:
        - "{{ params.name | sql_ident }}"
        - "{{ params.name | sql_literal }}"
        - "{{ params.name | shell_quote }}"
        - "{{ params.name | ps_quote }}"
        - "{{ (params.json | from_json).a[1] }}"
        - "{{ {'k': params.name} | to_json }}"
        - "{{ 'plain-word' | shell_quote }}"
"#;
    let out = Test::new()
        .file("f.yaml", yaml)
        .args(["plan", "f.yaml", "--format", "json"])
        .run();
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        out.json()["steps"][0]["action"]["args"],
        serde_json::json!([
            "[it's a ]]name[]",
            "N'it''s a ]name['",
            r#"'it'\''s a ]name['"#,
            "'it''s a ]name['",
            "2",
            r#"{"k":"it's a ]name["}"#,
            "plain-word"
        ])
    );
}

#[test]
fn fail_at_with_concurrency_names_steps_that_may_also_complete_and_roll_back() {
    let yaml = "runbook: 1\nname: par\nsteps:\n  - id: a\n    run: { program: \"true\" }\n    rollback: { run: { program: undo-a } }\n  - id: b\n    needs: [a]\n    run: { program: \"true\" }\n  - id: c\n    needs: [a]\n    run: { program: \"true\" }\n    rollback: { run: { program: undo-c } }\n  - id: d\n    needs: [c]\n    run: { program: \"true\" }\n    rollback: { run: { program: undo-d } }\n  - id: e\n    needs: [b]\n    run: { program: \"true\" }\n";
    let t = Test::new().file("p.yaml", yaml);
    let scenario = |args: &[&str]| {
        let out = Test::in_dir(t.path())
            .args(["plan", "p.yaml", "--fail-at", "b", "--format", "json"])
            .args(args.iter().copied())
            .run();
        assert_eq!(out.code, 0, "{}", out.stderr);
        out.json()["scenario"].clone()
    };
    // Alone, nothing runs beside `b`.
    let one = scenario(&["--concurrency", "1"]);
    assert_eq!(one["concurrency"], 1);
    assert_eq!(one["completed"], serde_json::json!(["a"]));
    assert!(one.get("may_also_complete").is_none(), "{one}");
    // By default (4, as for `run`) `c` and then `d` may complete while `b` runs, and would be
    // rolled back too; `e` needs `b` and never starts.
    let four = scenario(&[]);
    assert_eq!(four["concurrency"], 4);
    assert_eq!(four["completed"], serde_json::json!(["a"]));
    assert_eq!(four["rollback"], serde_json::json!(["a"]));
    assert_eq!(four["may_also_complete"], serde_json::json!(["c", "d"]));
    assert_eq!(four["may_also_roll_back"], serde_json::json!(["d", "c"]));
    let human = Test::in_dir(t.path())
        .args(["plan", "p.yaml", "--fail-at", "b"])
        .run();
    assert!(
        human
            .stdout
            .contains("may also complete while it runs (steps beside it): c, d")
            && human
                .stdout
                .contains("and, if the steps beside it completed, also: d, c"),
        "{}",
        human.stdout
    );
    let zero = Test::in_dir(t.path())
        .args(["plan", "p.yaml", "--concurrency", "0"])
        .run();
    assert_eq!(zero.code, 2);
}
