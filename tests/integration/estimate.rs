//! The estimate of a plan (`expect`, `rto`, `service_restored_at`): exact expected starts and
//! ends on a DAG with parallel branches, the critical path, the RTO warning, the worst case;
//! `plan --history` with the medians of recorded runs; and the timeline and measured time to
//! service restored of `show --format markdown`.

use serde_json::{Value, json};

use crate::support::{Test, validate};

/// The plan of `yaml` as JSON.
fn plan_json(yaml: &str) -> Value {
    let out = Test::new()
        .file("r.yaml", yaml)
        .args(["plan", "r.yaml", "--format", "json"])
        .run();
    assert_eq!(out.code, 0, "{}", out.stderr);
    out.json()
}

/// The human plan of `yaml`.
fn plan_human(yaml: &str) -> String {
    let out = Test::new()
        .env("NO_COLOR", "1")
        .file("r.yaml", yaml)
        .args(["plan", "r.yaml"])
        .run();
    assert_eq!(out.code, 0, "{}", out.stderr);
    out.stdout
}

/// `(expected_start_s, expected_end_s)` of each step, in declaration order.
fn times(plan: &Value) -> Vec<(String, f64, f64)> {
    plan["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .map(|s| {
            (
                s["id"].as_str().unwrap_or_default().to_owned(),
                s["expected_start_s"].as_f64().expect("start"),
                s["expected_end_s"].as_f64().expect("end"),
            )
        })
        .collect()
}

fn diamond(b: &str, c: &str, rto: &str) -> String {
    format!(
        r#"runbook: 1
name: diamond
rto: {rto}
steps:
  - id: a
    expect: 1m
    run: {{ program: "true" }}
  - id: b
    needs: [a]
    expect: {b}
    run: {{ program: "true" }}
  - id: c
    needs: [a]
    expect: {c}
    run: {{ program: "true" }}
  - id: ok
    needs: [b, c]
    approval: {{ prompt: "go on?" }}
  - id: d
    needs: [ok]
    expect: 30s
    run: {{ program: "true" }}
"#
    )
}

#[test]
fn critical_path_of_a_diamond_follows_its_longer_branch_with_exact_times() {
    let plan = plan_json(&diamond("5m", "2m", "1h"));
    assert_eq!(
        times(&plan),
        [
            ("a".to_owned(), 0.0, 60.0),
            ("b".to_owned(), 60.0, 360.0),
            ("c".to_owned(), 60.0, 180.0),
            ("ok".to_owned(), 360.0, 360.0),
            ("d".to_owned(), 360.0, 390.0),
        ]
    );
    let estimate = &plan["estimate"];
    assert_eq!(estimate["critical_path"], json!(["a", "b", "ok", "d"]));
    assert_eq!(estimate["service_restored_at"], "d");
    assert_eq!(estimate["service_restored_s"], 390.0);
    assert_eq!(estimate["rto_s"], 3600.0);
    assert_eq!(estimate["exceeds_rto"], false);
    // The approval counts 0 and is marked as a person's time.
    assert_eq!(estimate["human_waits"], json!(["ok"]));
    assert_eq!(plan["steps"][3]["expected_from"], "human_wait");
    let critical: Vec<bool> = plan["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["critical"].as_bool().unwrap())
        .collect();
    assert_eq!(critical, [true, true, false, true, true]);

    // The other branch longer: the path and the times follow it.
    let plan = plan_json(&diamond("2m", "7m", "1h"));
    assert_eq!(
        plan["estimate"]["critical_path"],
        json!(["a", "c", "ok", "d"])
    );
    assert_eq!(plan["estimate"]["service_restored_s"], 510.0);
    assert_eq!(times(&plan)[3], ("ok".to_owned(), 480.0, 480.0));
}

#[test]
fn human_plan_shows_each_steps_expected_start_and_end_and_the_critical_path() {
    let text = plan_human(&diamond("5m", "2m", "1h"));
    assert!(
        text.contains("      expected: 5m (expect), +1m → +6m, on the critical path\n"),
        "{text}"
    );
    assert!(
        text.contains("      expected: 2m (expect), +1m → +3m\n"),
        "{text}"
    );
    assert!(
        text.contains(
            "      expected: 0s (a person's time, not counted), +6m → +6m, on the critical path\n"
        ),
        "{text}"
    );
    assert!(text.contains("  critical path: a → b → ok → d\n"), "{text}");
    assert!(
        text.contains("  service restored (end of `d`): 6m 30s, within the RTO of 1h\n"),
        "{text}"
    );
}

#[test]
fn rto_warning_when_the_estimate_exceeds_it_and_none_when_within() {
    let over = plan_human(&diamond("5m", "2m", "5m"));
    assert!(
        over.contains(
            "  service restored (end of `d`): 6m 30s\n  WARNING: the estimate exceeds the RTO of 5m by 1m 30s\n"
        ),
        "{over}"
    );
    assert_eq!(
        plan_json(&diamond("5m", "2m", "5m"))["estimate"]["exceeds_rto"],
        true
    );
    // Exactly at the RTO is within it.
    let at = plan_human(&diamond("5m", "2m", "6m 30s"));
    assert!(!at.contains("WARNING"), "{at}");
    assert!(at.contains("within the RTO of 6m 30s"), "{at}");
    assert_eq!(
        plan_json(&diamond("5m", "2m", "6m 30s"))["estimate"]["exceeds_rto"],
        false
    );
}

#[test]
fn worst_case_counts_every_attempt_timing_out_and_the_longest_retry_delays() {
    let yaml = r#"runbook: 1
name: worst
defaults: { timeout: 2m }
steps:
  - id: restore
    expect: 1m
    timeout: 10m
    retry: { attempts: 4, delay: 30s, backoff: exponential, max_delay: 1m, jitter: true }
    run: { program: "true" }
  - id: settle
    needs: [restore]
    wait: 45s
  - id: flip
    needs: [settle]
    retry: { attempts: 2, delay: 5s }
    run: { program: "true" }
  - id: approve
    needs: [flip]
    approval: { prompt: "ok?" }
"#;
    let plan = plan_json(yaml);
    // restore: 4 × 10m + 30s + 1m + 1m (the third and fourth delays capped); settle: 45s;
    // flip: 2 × 2m (the default timeout) + 5s; approve: a person's time, no timeout: 0.
    let worst = 4.0 * 600.0 + 30.0 + 60.0 + 60.0 + 45.0 + 2.0 * 120.0 + 5.0;
    assert_eq!(plan["estimate"]["worst_case_s"], worst);
    // A wait counts its length without `expect`; flip has none and is flagged.
    assert_eq!(plan["estimate"]["service_restored_s"], 105.0);
    assert_eq!(plan["estimate"]["no_estimate"], json!(["flip"]));
    assert_eq!(plan["estimate"]["rto_s"], Value::Null);
    let text = plan_human(yaml);
    assert!(
        text.contains("  worst case: 47m 20s (every attempt timing out, longest retry delays)\n"),
        "{text}"
    );
    assert!(
        text.contains("  no estimate (no `expect`, counted as 0): flip\n"),
        "{text}"
    );
    assert!(text.contains("(no `rto` declared)"), "{text}");
}

#[test]
fn worst_case_is_unbounded_when_a_step_before_service_restored_has_no_timeout() {
    let yaml = r#"runbook: 1
name: unbounded
steps:
  - id: restore
    expect: 1m
    run: { program: "true" }
  - id: later
    needs: [restore]
    expect: 1m
    timeout: 1m
    run: { program: "true" }
"#;
    let plan = plan_json(yaml);
    assert_eq!(plan["estimate"]["worst_case_s"], Value::Null);
    assert_eq!(
        plan["estimate"]["unbounded"],
        json!(["`restore` has no timeout"])
    );
    let text = plan_human(yaml);
    assert!(
        text.contains("  worst case: unbounded: `restore` has no timeout\n"),
        "{text}"
    );
    // Service restored before the unbounded step: the worst case has a bound.
    let restored_first = yaml
        .replace(
            "name: unbounded\n",
            "name: unbounded\nservice_restored_at: later\n",
        )
        .replace(
            "  - id: restore\n    expect: 1m\n",
            "  - id: restore\n    expect: 1m\n    timeout: 3m\n",
        )
        .replace(
            "    needs: [restore]\n    expect: 1m\n    timeout: 1m\n",
            "    needs: [restore]\n    expect: 1m\n",
        );
    let plan = plan_json(&restored_first);
    assert_eq!(
        plan["estimate"]["unbounded"],
        json!(["`later` has no timeout"])
    );
}

#[test]
fn service_restored_at_defaults_to_the_last_declared_step_not_a_finally_step() {
    let yaml = r#"runbook: 1
name: order
rto: 1h
steps:
  - id: long
    expect: 20m
    run: { program: "true" }
  - id: first
    expect: 1m
    run: { program: "true" }
  - id: restored
    needs: [first]
    expect: 2m
    run: { program: "true" }
finally:
  - id: tidy
    expect: 10m
    run: { program: "true" }
"#;
    let plan = plan_json(yaml);
    assert_eq!(plan["estimate"]["service_restored_at"], "restored");
    assert_eq!(plan["estimate"]["service_restored_s"], 180.0);
    assert_eq!(
        plan["estimate"]["critical_path"],
        json!(["first", "restored"])
    );
    let named = plan_json(&yaml.replace("rto: 1h\n", "rto: 1h\nservice_restored_at: long\n"));
    assert_eq!(named["estimate"]["service_restored_at"], "long");
    assert_eq!(named["estimate"]["service_restored_s"], 1200.0);
    assert_eq!(named["estimate"]["critical_path"], json!(["long"]));
}

#[test]
fn an_unknown_service_restored_at_step_is_located_with_a_suggestion() {
    let (diags, code) = validate(
        "runbook: 1\nname: t\nservice_restored_at: restord\nsteps:\n  - id: restored\n    run: { program: \"true\" }\nfinally:\n  - id: tidy\n    run: { program: \"true\" }\n",
    );
    assert_eq!(code, 1);
    assert_eq!(diags.len(), 1, "{diags:?}");
    assert_eq!(diags[0].code, "runbook::unknown_service_restored_at");
    assert_eq!((diags[0].line, diags[0].column), (3, 22));
    // A finally step does not end the outage.
    let (diags, _) = validate(
        "runbook: 1\nname: t\nservice_restored_at: tidy\nsteps:\n  - id: restored\n    run: { program: \"true\" }\nfinally:\n  - id: tidy\n    run: { program: \"true\" }\n",
    );
    assert_eq!(diags.len(), 1, "{diags:?}");
    assert_eq!(diags[0].code, "runbook::unknown_service_restored_at");
    let out = Test::new()
        .file(
            "r.yaml",
            "runbook: 1\nname: t\nservice_restored_at: restord\nsteps:\n  - id: restored\n    run: { program: \"true\" }\n",
        )
        .args(["validate", "r.yaml"])
        .env("NO_COLOR", "1")
        .run();
    assert!(
        out.stdout.contains("did you mean `restored`?"),
        "{}",
        out.stdout
    );
    // And `expect` / `rto` take durations as `timeout` does.
    let (diags, _) = validate(
        "runbook: 1\nname: t\nrto: soon\nsteps:\n  - id: a\n    expect: 5\n    run: { program: \"true\" }\n",
    );
    let codes: Vec<&str> = diags.iter().map(|d| d.code.as_str()).collect();
    assert_eq!(
        codes,
        ["runbook::invalid_duration", "runbook::invalid_duration"]
    );
}

#[test]
fn for_each_expects_each_round_of_items_and_says_when_items_are_unknown() {
    let yaml = r#"runbook: 1
name: loops
steps:
  - id: find
    expect: 10s
    run: { program: "true" }
  - id: known
    needs: [find]
    for_each: [a, b, c, d, e]
    concurrency: 2
    expect: 1m
    run: { program: echo, args: ["{{ item }}"] }
  - id: unknown
    needs: [known]
    for_each: "{{ steps.find.stdout | split }}"
    expect: 2m
    run: { program: echo, args: ["{{ item }}"] }
"#;
    let plan = plan_json(yaml);
    // 5 items, 2 at a time: 3 rounds of 1m; the unknown list counts one item.
    assert_eq!(
        times(&plan),
        [
            ("find".to_owned(), 0.0, 10.0),
            ("known".to_owned(), 10.0, 190.0),
            ("unknown".to_owned(), 190.0, 310.0),
        ]
    );
    assert_eq!(plan["estimate"]["items_unknown"], json!(["unknown"]));
    let text = plan_human(yaml);
    assert!(
        text.contains("expected: 2m (expect, one item: the items are known only at run time)"),
        "{text}"
    );
}

const TIMED: &str = r#"runbook: 1
name: timed
params:
  delay: { type: string }
  outcome: { type: string, default: ok }
steps:
  - id: work
    expect: 10m
    run: { shell: sh, script: "sleep {{ params.delay | shell_quote }}" }
  - id: rare
    needs: [work]
    when: "steps.work.exit_code == 99"
    expect: 2m
    run: { program: "true" }
  - id: verify
    needs: [rare]
    expect: 1m
    run: { shell: sh, script: "test {{ params.outcome | shell_quote }} = ok" }
"#;

/// `plan --history --format json` of `timed.yaml` in `dir`.
fn history_plan(dir: &std::path::Path) -> Value {
    let out = Test::in_dir(dir)
        .args(["plan", "timed.yaml", "-p", "delay=1", "--history"])
        .args(["--format", "json"])
        .run();
    assert_eq!(out.code, 0, "{}", out.stderr);
    out.json()
}

#[test]
fn plan_history_uses_the_median_of_succeeded_runs() {
    let t = Test::new().file("timed.yaml", TIMED);
    let run = |delay: &str, outcome: &str| {
        let out = Test::in_dir(t.path())
            .args(["run", "timed.yaml", "-p"])
            .args([
                format!("delay={delay}"),
                "-p".into(),
                format!("outcome={outcome}"),
            ])
            .run();
        out.code
    };
    // Three succeeded runs: first 0.2s, then 1s, then 3.8s; the median is 1s, the mean
    // 1.67s, the first 0.2s, the last 3.8s.
    assert_eq!(run("0.2", "ok"), 0);
    assert_eq!(run("1", "ok"), 0);
    assert_eq!(run("3.8", "ok"), 0);
    // A failed run does not count (its short `work` would pull the median down).
    assert_eq!(run("0", "broken"), 1);

    let plan = history_plan(t.path());
    assert_eq!(plan["estimate"]["history_runs"], 3);
    let work = &plan["steps"][0];
    assert_eq!(work["expected_from"], "history");
    assert_eq!(work["history_runs"], 3);
    let measured = work["expected_end_s"].as_f64().unwrap();
    assert!(
        (1.0..1.5).contains(&measured),
        "the median of 0.2s, 1s and 3.8s is 1s (plus the time to start `sleep`), not {measured}"
    );
    // Never ran in a succeeded run: keeps its `expect`.
    assert_eq!(plan["steps"][1]["expected_from"], "expect");
    assert_eq!(
        plan["steps"][1]["expected_end_s"].as_f64().unwrap() - measured,
        120.0
    );
    assert_eq!(plan["steps"][2]["expected_from"], "history");

    let human = Test::in_dir(t.path())
        .env("NO_COLOR", "1")
        .args(["plan", "timed.yaml", "-p", "delay=1", "--history"])
        .run();
    assert!(
        human
            .stdout
            .contains("  history: 3 succeeded run(s) of this runbook;"),
        "{}",
        human.stdout
    );
    assert!(
        human.stdout.contains("(median of 3 past run(s)), +0s → +1"),
        "{}",
        human.stdout
    );
    // Without --history, `expect` as declared.
    let plain = Test::in_dir(t.path())
        .args(["plan", "timed.yaml", "-p", "delay=1", "--format", "json"])
        .run()
        .json();
    assert_eq!(plain["steps"][0]["expected_end_s"], 600.0);
    assert_eq!(plain["estimate"].get("history_runs"), None);
}

/// The markdown show of a run of `yaml` (run in a scratch directory), and its exit code.
fn show_markdown(yaml: &str) -> (i32, String) {
    let t = Test::new().file("r.yaml", yaml);
    let code = Test::in_dir(t.path()).args(["run", "r.yaml"]).run().code;
    let out = Test::in_dir(t.path())
        .args(["show", "--last", "--format", "markdown"])
        .run();
    assert_eq!(out.code, 0, "{}", out.stderr);
    (code, out.stdout)
}

/// The cells of the timeline row that starts with `first`.
fn row<'a>(text: &'a str, first: &str) -> Vec<&'a str> {
    let timeline = text
        .split("## Timeline")
        .nth(1)
        .unwrap_or_else(|| panic!("no timeline:\n{text}"));
    let line = timeline
        .lines()
        .find(|l| l.starts_with(&format!("| {first} |")))
        .unwrap_or_else(|| panic!("no row {first}:\n{text}"));
    line.trim_matches('|').split('|').map(str::trim).collect()
}

fn seconds(cell: &str) -> f64 {
    cell.trim_end_matches('s')
        .parse()
        .unwrap_or_else(|_| panic!("not seconds: {cell}"))
}

#[test]
fn markdown_show_has_the_timeline_with_rollbacks_and_the_measured_time_to_service_restored() {
    let yaml = r#"runbook: 1
name: timeline
rto: 1h
service_restored_at: restored
steps:
  - id: first
    run: { shell: sh, script: "sleep 0.4" }
    rollback: { run: { program: "true" } }
  - id: restored
    needs: [first]
    run: { shell: sh, script: "sleep 0.3" }
  - id: flaky
    needs: [restored]
    retry: { attempts: 2 }
    run: { shell: sh, script: "exit 3" }
"#;
    let (code, text) = show_markdown(yaml);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("| step | start | duration | status | attempts |\n"),
        "{text}"
    );
    let first = row(&text, "`first`");
    assert_eq!(&first[3..], ["succeeded", "1"]);
    assert!(seconds(first[2]) >= 0.4, "{text}");
    let restored = row(&text, "`restored`");
    assert_eq!(&restored[3..], ["succeeded", "1"]);
    // It starts when `first` has ended.
    assert!(seconds(restored[1]) >= seconds(first[1]) + 0.4, "{text}");
    assert_eq!(&row(&text, "`flaky`")[3..], ["failed", "2"]);
    let rollback = row(&text, "rollback of `first`");
    assert_eq!(&rollback[3..], ["succeeded", "1"]);
    assert!(seconds(rollback[1]) >= seconds(restored[1]) + 0.3, "{text}");
    // From the start of the run to the end of `restored`.
    let line = text
        .lines()
        .find(|l| l.starts_with("**Time to service restored:** "))
        .unwrap_or_else(|| panic!("no RTO line:\n{text}"));
    let measured = seconds(
        line.trim_start_matches("**Time to service restored:** ")
            .split(' ')
            .next()
            .unwrap(),
    );
    let end_of_restored = seconds(restored[1]) + seconds(restored[2]);
    assert!((measured - end_of_restored).abs() <= 0.011, "{text}");
    assert!(measured >= 0.7, "{text}");
    assert!(
        line.ends_with(
            "(from the start of the run to the end of `restored`), within the RTO of 1h."
        ),
        "{line}"
    );
}

#[test]
fn markdown_show_says_when_the_rto_was_exceeded_or_service_not_restored() {
    let slow = "runbook: 1\nname: slow\nrto: 200ms\nsteps:\n  - id: restore\n    run: { shell: sh, script: \"sleep 0.5\" }\n";
    let (code, text) = show_markdown(slow);
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains(
            "(from the start of the run to the end of `restore`): **exceeds the RTO of 200ms**."
        ),
        "{text}"
    );
    let failed = "runbook: 1\nname: failed\nrto: 1h\nsteps:\n  - id: restore\n    run: { shell: sh, script: \"exit 1\" }\n";
    let (code, text) = show_markdown(failed);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("**Service not restored:** `restore` did not succeed in this run."),
        "{text}"
    );
}

#[test]
fn huge_durations_and_attempts_saturate_instead_of_panicking_or_hanging() {
    let yaml = r#"runbook: 1
name: huge
rto: 500000000000h
defaults: { timeout: 500000000000h }
steps:
  - id: a
    expect: 500000000000h
    retry: { attempts: 4000000000, delay: 500000000000h, backoff: exponential }
    run: { program: "true" }
  - id: b
    needs: [a]
    expect: 500000000000h
    for_each: [1, 2, 3]
    run: { program: "true" }
"#;
    let started = std::time::Instant::now();
    let plan = plan_json(yaml);
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
    assert_eq!(plan["estimate"]["exceeds_rto"], true);
    assert_eq!(
        plan["estimate"]["worst_case_s"].as_f64(),
        Some(std::time::Duration::MAX.as_millis() as f64 / 1000.0)
    );
    assert!(plan_human(yaml).contains("WARNING: the estimate exceeds the RTO"));
}

#[test]
fn plan_history_skips_journals_it_cannot_read_and_runs_of_other_runbooks() {
    let t = Test::new()
        .file("timed.yaml", TIMED)
        .file(
            ".runbook/runs/20261126T000000-dead/journal.jsonl",
            "not json\n{\n",
        )
        .file(
            "other.yaml",
            TIMED.replace("name: timed", "name: other").as_str(),
        );
    let out = Test::in_dir(t.path())
        .args(["run", "other.yaml", "-p", "delay=0"])
        .run();
    assert_eq!(out.code, 0, "{}", out.stderr);
    let plan = history_plan(t.path());
    assert_eq!(plan["estimate"]["history_runs"], 0);
    assert_eq!(plan["estimate"]["history_unreadable"], 1);
    assert_eq!(plan["steps"][0]["expected_from"], "expect");
    assert_eq!(plan["estimate"]["service_restored_s"], 600.0 + 120.0 + 60.0);
}

#[test]
fn with_an_rto_a_run_or_sql_step_without_expect_is_warned_about_at_its_id() {
    let yaml = "runbook: 1\nname: t\nrto: 1h\nsteps:\n  - id: restore\n    run: { program: \"true\" }\n  - id: settle\n    needs: [restore]\n    wait: 1s\n  - id: ok\n    needs: [settle]\n    approval: { prompt: ok? }\n  - id: timed\n    needs: [ok]\n    expect: 1m\n    run: { program: \"true\" }\n";
    let (diags, code) = validate(yaml);
    assert_eq!(code, 0, "a warning does not fail validate");
    assert_eq!(
        diags,
        [crate::support::diag(
            "no_estimate",
            5,
            9,
            "step `restore` has no `expect`: the RTO estimate counts it as 0"
        )]
    );
    // Without an `rto`, nothing to estimate against: no warning.
    let (diags, _) = validate(&yaml.replace("rto: 1h\n", ""));
    assert_eq!(diags, []);
}
