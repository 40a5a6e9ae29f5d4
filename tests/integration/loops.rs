//! `for_each`: a step repeated over a list, each item an instance with its own id, attempts,
//! events and rollback; checked through what the real binary does.

use std::time::Instant;

use crate::support::{Test, diag, validate};

/// A runbook with a `hosts` list param (a, b, c, d unless given) and `steps`.
fn book(steps: &str) -> String {
    format!(
        "runbook: 1\nname: t\nparams:\n  hosts: {{ type: list, default: [a, b, c, d] }}\n  bad: {{ default: none }}\nsteps:\n{steps}"
    )
}

/// A loop over the hosts that logs each start and end, and fails for `params.bad`.
fn install(extra: &str) -> String {
    format!(
        "  - id: install\n    for_each: '{{{{ params.hosts }}}}'\n    as: host\n{extra}    run: {{ shell: sh, script: 'echo \"start {{{{ host }}}}\" >> log; sleep 0.2; echo \"end {{{{ host }}}}\" >> log; test \"{{{{ host }}}}\" != \"{{{{ params.bad }}}}\"' }}\n    rollback: {{ run: {{ shell: sh, script: 'echo \"undo {{{{ host }}}}\" >> log' }} }}\n"
    )
}

const REPORT: &str = "  - id: report\n    needs: [install]\n    run: { shell: sh, script: 'echo \"items {{ steps.install.items | length }} first {{ steps[\"install\"].items[0].item }} failed {{ steps.install.failed_items | join(\",\") }}\" >> log' }\n";

/// What a run printed, wherever it printed it.
fn both(out: &crate::support::Output) -> String {
    format!("{}{}", out.stdout, out.stderr)
}

/// Asserts that a `--output json` run has events of instance `id`.
fn assert_instance(out: &crate::support::Output, id: &str) {
    let field = format!("\"step\":\"{id}\"");
    assert!(out.stdout.contains(&field), "no {id}: {}", out.stdout);
}

/// Diagnostics other than unused params (the shared `book` declares two).
fn problems(yaml: &str) -> (Vec<crate::support::Diag>, i32) {
    let (diags, code) = validate(yaml);
    let diags = diags
        .into_iter()
        .filter(|d| d.code != "runbook::unused_param")
        .collect();
    (diags, code)
}

fn run(steps: &str, args: &[&str]) -> (Test, crate::support::Output) {
    let t = Test::new().file("r.yaml", book(steps)).args(
        ["run", "r.yaml"]
            .iter()
            .chain(args)
            .copied()
            .collect::<Vec<_>>(),
    );
    let out = t.run();
    (t, out)
}

#[test]
fn for_each_over_a_param_list_runs_every_item_in_list_order_one_at_a_time() {
    let (t, out) = run(&format!("{}{REPORT}", install("")), &[]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert_eq!(
        t.read("log"),
        "start a\nend a\nstart b\nend b\nstart c\nend c\nstart d\nend d\nitems 4 first a failed \n"
    );
    for id in ["install[a]", "install[b]", "install[c]", "install[d]"] {
        assert!(both(&out).contains(&format!("✓ {id}")), "{}", out.stderr);
    }
}

#[test]
fn for_each_with_concurrency_3_overlaps_its_items() {
    let steps = "  - id: install\n    for_each: [a, b, c]\n    concurrency: 3\n    run: { shell: sh, script: 'echo \"start {{ item }}\" >> log; sleep 1; echo \"end {{ item }}\" >> log' }\n";
    let started = Instant::now();
    let (t, out) = run(steps, &[]);
    let took = started.elapsed();
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let log = t.read("log");
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines.len(), 6, "{log}");
    assert!(
        lines[..3].iter().all(|l| l.starts_with("start")),
        "all three items start before any ends: {log}"
    );
    // One after another would take 3 s.
    assert!(took.as_secs_f64() < 2.5, "took {took:?}");
    eprintln!("concurrency 3 over three 1 s items: {took:?}");
}

#[test]
fn a_failing_item_with_max_failures_0_stops_the_loop_and_rolls_back_completed_items_in_reverse() {
    let (t, out) = run(&format!("{}{REPORT}", install("")), &["-p", "bad=c"]);
    assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
    assert_eq!(
        t.read("log"),
        "start a\nend a\nstart b\nend b\nstart c\nend c\nundo b\nundo a\n",
        "d never starts, report never runs, b then a are undone"
    );
    assert!(
        both(&out).contains("1 of 4 items failed (max_failures 0): install[c]"),
        "{}",
        out.stderr
    );
}

#[test]
fn max_failures_1_lets_the_loop_go_on_and_the_step_succeeds_with_the_failed_item_listed() {
    let (t, out) = run(
        &format!("{}{REPORT}", install("    max_failures: 1\n")),
        &["-p", "bad=b"],
    );
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert_eq!(
        t.read("log"),
        "start a\nend a\nstart b\nend b\nstart c\nend c\nstart d\nend d\nitems 4 first a failed install[b]\n"
    );
    assert!(
        both(&out).contains("1 of 4 items failed within max_failures 1: install[b]"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_second_failure_past_max_failures_1_stops_the_loop() {
    let steps = "  - id: install\n    for_each: [a, b, c, d]\n    max_failures: 1\n    run: { shell: sh, script: 'echo \"{{ item }}\" >> log; test \"{{ item }}\" = a' }\n    rollback: { run: { shell: sh, script: 'echo \"undo {{ item }}\" >> log' } }\n";
    let (t, out) = run(steps, &[]);
    assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
    assert_eq!(t.read("log"), "a\nb\nc\nundo a\n");
}

#[test]
fn items_from_an_earlier_steps_output() {
    let steps = "  - id: list\n    run: { shell: sh, script: 'echo \"[\\\"x.trn\\\", \\\"y.trn\\\"]\"' }\n    outputs: { names: '{{ result.stdout }}' }\n  - id: restore\n    needs: [list]\n    for_each: '{{ steps.list.outputs.names | from_json }}'\n    as: log\n    run: { shell: sh, script: 'echo \"restore {{ log }}\" >> log' }\n";
    let (t, out) = run(steps, &[]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert_eq!(t.read("log"), "restore x.trn\nrestore y.trn\n");
    assert!(both(&out).contains("✓ restore[y.trn]"), "{}", out.stderr);
}

#[test]
fn items_that_are_not_scalars_are_keyed_by_their_index() {
    let steps = "  - id: each\n    for_each: [{ host: p }, { host: q }]\n    run: { shell: sh, script: 'echo \"{{ item.host }}\" >> log' }\n";
    let (t, out) = run(steps, &["--output", "json"]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert_eq!(t.read("log"), "p\nq\n");
    assert_instance(&out, "each[1]");
}

#[test]
fn an_item_with_a_newline_or_an_escape_is_keyed_by_its_index_not_printed_raw() {
    let steps = "  - id: each\n    for_each: [\"a\\nb\", \"c\\u001b[31m\", ok]\n    run: { program: 'true' }\n";
    let (_, out) = run(steps, &["--output", "json"]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    for id in ["each[0]", "each[1]", "each[ok]"] {
        assert_instance(&out, id);
    }
}

#[test]
fn an_item_holding_a_secret_is_keyed_by_its_index_never_shown() {
    let yaml = "runbook: 1\nname: t\nsecrets:\n  tok: { env: TOK }\nsteps:\n  - id: each\n    for_each: '{{ [secrets.tok, \"plain\"] }}'\n    run: { program: 'true' }\n";
    let t = Test::new()
        .file("r.yaml", yaml)
        .env("TOK", "hunter2-loop-secret")
        .args(["run", "r.yaml", "--output", "json"]);
    let out = t.run();
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert_instance(&out, "each[0]");
    assert_instance(&out, "each[plain]");
    assert!(!both(&out).contains("hunter2"), "{}", both(&out));
    let journals = std::fs::read_dir(t.path().join(".runbook/runs")).expect("runs");
    for run in journals.flatten() {
        let journal = std::fs::read_to_string(run.path().join("journal.jsonl")).unwrap_or_default();
        assert!(journal.contains("each[0]"), "{journal}");
        assert!(!journal.contains("hunter2"), "{journal}");
    }
}

#[test]
fn a_for_each_that_gives_no_list_fails_the_step_with_a_clear_message() {
    let steps = "  - id: each\n    for_each: '{{ params.bad }}'\n    run: { program: 'true' }\n";
    let (_, out) = run(steps, &[]);
    assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
    assert!(
        both(&out).contains("for_each must give a list, got the text `none`"),
        "{}",
        out.stderr
    );
}

#[test]
fn an_item_given_twice_fails_the_step_before_anything_runs() {
    let steps =
        "  - id: each\n    for_each: [a, a]\n    run: { shell: sh, script: 'echo ran >> log' }\n";
    let (t, out) = run(steps, &[]);
    assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
    assert_eq!(t.read("log"), "");
    assert!(
        both(&out).contains("for_each gives the item `a` twice"),
        "{}",
        out.stderr
    );
}

#[test]
fn plan_shows_every_instance_when_the_list_is_known_and_a_placeholder_otherwise() {
    let steps = format!(
        "{}  - id: list\n    run: {{ program: 'true' }}\n    outputs: {{ names: '{{{{ result.stdout }}}}' }}\n  - id: restore\n    needs: [list]\n    for_each: '{{{{ steps.list.outputs.names | from_json }}}}'\n    run: {{ program: echo, args: ['{{{{ item }}}}'] }}\n",
        install("")
    );
    let out = Test::new()
        .file("r.yaml", book(&steps))
        .args(["plan", "r.yaml", "-p", "hosts=[\"a\",\"b\"]"])
        .run();
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stdout
            .contains("for each host: 2 items, one at a time, in order, max_failures 0\n      ▸ install[a]\n          sh script:\n            | echo \"start a\" >> log;"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("▸ install[b]"), "{}", out.stdout);
    assert!(
        out.stdout.contains("echo \"undo b\" >> log"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains(
            "for each item of <steps.list.outputs.names | from_json> (known at run time), one at a time, in order, max_failures 0"
        ),
        "{}",
        out.stdout
    );
}

#[test]
fn plan_fail_at_an_instance_predicts_the_real_run() {
    let steps = install("");
    let plan = Test::new()
        .file("r.yaml", book(&steps))
        .args(["plan", "r.yaml", "--fail-at", "install[c]"])
        .run();
    assert_eq!(plan.code, 0, "{}{}", plan.stdout, plan.stderr);
    assert!(
        plan.stdout
            .contains("completed before it: install[a], install[b]"),
        "{}",
        plan.stdout
    );
    assert!(
        plan.stdout.contains(
            "1. install[b]\n     2. install[a]\n  outcome: failed and rolled back (exit 1)"
        ),
        "{}",
        plan.stdout
    );
    let (t, out) = run(&steps, &["-p", "bad=c"]);
    assert_eq!(out.code, 1);
    assert!(t.read("log").ends_with("undo b\nundo a\n"));
    let unknown = Test::new()
        .file("r.yaml", book(&steps))
        .args(["plan", "r.yaml", "--fail-at", "install[z]"])
        .run();
    assert_eq!(unknown.code, 2, "{}", unknown.stderr);
    assert!(
        unknown
            .stderr
            .contains("`install` has no instance `install[z]`; its instances: `install[a]`"),
        "{}",
        unknown.stderr
    );
}

#[test]
fn the_item_variable_is_unknown_outside_its_for_each_and_in_the_list_itself() {
    let yaml = book(
        "  - id: a\n    run: { program: echo, args: ['{{ item }}'] }\n  - id: b\n    for_each: '{{ item }}'\n    run: { program: 'true' }\n  - id: c\n    for_each: [x]\n    when: 'item == \"x\"'\n    run: { program: echo, args: ['{{ item }}'] }\n",
    );
    let (diags, code) = problems(&yaml);
    assert_eq!(code, 1, "{diags:?}");
    let codes: Vec<&str> = diags.iter().map(|d| d.code.as_str()).collect();
    assert_eq!(
        codes,
        [
            "runbook::unknown_variable",
            "runbook::unknown_variable",
            "runbook::unknown_variable"
        ],
        "{diags:?}"
    );
}

#[test]
fn loop_keys_without_for_each_and_bad_values_are_refused_with_their_location() {
    let yaml = book(
        "  - id: a\n    concurrency: 2\n    run: { program: 'true' }\n  - id: b\n    for_each: [x]\n    concurrency: 0\n    max_failures: -1\n    as: steps\n    run: { program: 'true' }\n",
    );
    let (diags, code) = problems(&yaml);
    assert_eq!(code, 1, "{diags:?}");
    assert_eq!(
        diags,
        vec![
            diag(
                "loop_key_without_for_each",
                8,
                18,
                "step `a` has `concurrency` but no `for_each`"
            ),
            diag("out_of_range", 12, 18, "`concurrency` must be at least 1"),
            diag("out_of_range", 13, 19, "`max_failures` must be at least 0"),
            diag(
                "bad_item_name",
                14,
                9,
                "`steps` cannot name the item of a `for_each`"
            ),
        ]
    );
}

#[test]
fn a_for_each_reading_a_step_it_does_not_need_is_refused() {
    let yaml = book(
        "  - id: list\n    run: { program: 'true' }\n  - id: each\n    for_each: '{{ steps.list.stdout }}'\n    run: { program: 'true' }\n",
    );
    let (diags, code) = problems(&yaml);
    assert_eq!(code, 1, "{diags:?}");
    assert_eq!(diags[0].code, "runbook::not_an_ancestor", "{diags:?}");
}

/// A loop over a, b, c, d then `after`; item c announces itself in `started-c` and sleeps the
/// first time. The run is killed while c runs: `install[c]` is in doubt, a and b completed.
fn killed_in_item_c() -> Test {
    let steps = "  - id: install\n    for_each: [a, b, c, d]\n    run: { shell: sh, script: 'echo \"{{ item }}\" >> log; if [ \"{{ item }}\" = c ] && [ ! -e started-c ]; then touch started-c; sleep 30; fi' }\n    rollback: { run: { shell: sh, script: 'echo \"undo {{ item }}\" >> log' } }\n  - id: after\n    needs: [install]\n    run: { shell: sh, script: 'echo \"after {{ steps.install.items | length }} {{ steps.install.items[0].status }}\" >> log' }\n";
    let t = Test::new()
        .file("r.yaml", book(steps))
        .args(["run", "r.yaml"]);
    let mut child = crate::support::spawn(&t);
    crate::support::wait_until("item c runs", || t.path().join("started-c").exists());
    let _ = child.kill();
    let _ = child.wait();
    t
}

#[test]
fn resume_after_sigkill_mid_loop_reruns_nothing_completed_and_asks_only_about_the_item_in_doubt() {
    let t = killed_in_item_c();
    assert_eq!(t.read("log"), "a\nb\nc\n");
    let asked = Test::in_dir(t.path()).args(["resume", "--last"]).run();
    assert_eq!(asked.code, 2, "{}{}", asked.stdout, asked.stderr);
    assert!(
        both(&asked).contains("steps in doubt (started, not known to have finished): install[c];"),
        "{}",
        both(&asked)
    );
    assert_eq!(t.read("log"), "a\nb\nc\n", "nothing ran without a decision");

    let resumed = Test::in_dir(t.path())
        .args(["resume", "--last", "--assume", "install[c]=done"])
        .run();
    assert_eq!(resumed.code, 0, "{}{}", resumed.stdout, resumed.stderr);
    assert_eq!(
        t.read("log"),
        "a\nb\nc\nd\nafter 4 succeeded\n",
        "a, b and c are not run again; d and the step after the loop run"
    );

    // Rerunning the item in doubt runs that item alone again.
    let t = killed_in_item_c();
    let resumed = Test::in_dir(t.path())
        .args(["resume", "--last", "--assume", "install[c]=rerun"])
        .run();
    assert_eq!(resumed.code, 0, "{}{}", resumed.stdout, resumed.stderr);
    assert_eq!(t.read("log"), "a\nb\nc\nc\nd\nafter 4 succeeded\n");
}

#[test]
fn rollback_of_a_run_killed_mid_loop_undoes_its_items_in_reverse_with_their_own_item() {
    let t = killed_in_item_c();
    let undone = Test::in_dir(t.path())
        .args(["rollback", "--last", "--assume", "install[c]=done"])
        .run();
    assert_eq!(undone.code, 0, "{}{}", undone.stdout, undone.stderr);
    assert_eq!(t.read("log"), "a\nb\nc\nundo c\nundo b\nundo a\n");

    // `failed`: c left nothing to undo.
    let t = killed_in_item_c();
    let undone = Test::in_dir(t.path())
        .args(["rollback", "--last", "--assume", "install[c]=failed"])
        .run();
    assert_eq!(undone.code, 0, "{}{}", undone.stdout, undone.stderr);
    assert_eq!(t.read("log"), "a\nb\nc\nundo b\nundo a\n");
}

#[test]
fn rollback_of_a_finished_loop_undoes_every_item_in_reverse() {
    let (t, out) = run(&install(""), &["-p", "hosts=[\"p\",\"q\"]"]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let undone = Test::in_dir(t.path()).args(["rollback", "--last"]).run();
    assert_eq!(undone.code, 0, "{}{}", undone.stdout, undone.stderr);
    assert!(
        t.read("log").ends_with("end q\nundo q\nundo p\n"),
        "{}",
        t.read("log")
    );
}
