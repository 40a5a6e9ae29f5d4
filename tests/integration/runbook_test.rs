//! `runbook test`: scenarios with mocked results run through the real engine. Each
//! expectation kind has a passing and a failing scenario; missing mocks, loops, retries and
//! polls, `--record`, JUnit output, invalid test files and the shipped examples are covered.

use std::time::{Duration, Instant};

use crate::support::{Test, repo};

/// A failover in miniature: a query, an assert on its rows, a step skipped by `when`, a
/// retried step with a rollback, a point of no return, and a step that uses a secret.
const FAILOVER: &str = r#"
runbook: 1
name: failover
params:
  database: { type: string, default: mgc }
secrets:
  sql_password: { env: TEST_SQL_PASSWORD }
connections:
  sql: { mssql: "server=tcp:sql.invalid;user id=sa;password={{ secrets.sql_password }}" }
steps:
  - id: check-backup
    sql: { connection: sql, query: "SELECT state_desc FROM sys.databases WHERE name = @P1", args: ["{{ params.database }}"] }
  - id: is-restoring
    needs: [check-backup]
    assert: "steps['check-backup'].rows[0].state_desc == 'RESTORING'"
  - id: optional
    needs: [check-backup]
    when: "params.database == 'other'"
    run: { program: echo, args: [optional] }
  - id: stop-shipping
    needs: [is-restoring]
    run: { program: ./stop-shipping, args: ["{{ params.database }}"] }
    retry: { attempts: 3, delay: 1h }
    rollback: { run: { program: ./start-shipping } }
  - id: bring-online
    needs: [stop-shipping]
    irreversible: true
    sql: { connection: sql, query: "RESTORE DATABASE [mgc] WITH RECOVERY" }
  - id: repoint
    needs: [bring-online]
    run: { program: ./repoint, args: ["--password", "{{ secrets.sql_password }}"] }
"#;

/// Mocks under which every step succeeds (the stop is retried twice).
const HAPPY_MOCKS: &str = r#"
      check-backup: { rows: [{ state_desc: RESTORING }] }
      stop-shipping: [{ exit_code: 1 }, { exit_code: 1 }, { exit_code: 0 }]
      bring-online: { rows: [] }
      repoint: { stdout: "repointed" }"#;

/// Mocks under which the restore fails with SQL error 4305, and the stop is rolled back.
const RESTORE_FAILS: &str = r#"
      check-backup: { rows: [{ state_desc: RESTORING }] }
      stop-shipping: {}
      bring-online: { fail: { reason: sql, number: 4305, message: "the log begins too late" } }
      "rollback:stop-shipping": {}"#;

/// Mocks under which the last step fails after the point of no return.
const PAST_NO_RETURN: &str = r#"
      check-backup: { rows: [{ state_desc: RESTORING }] }
      stop-shipping: {}
      bring-online: {}
      repoint: { exit_code: 2, stderr: "cannot repoint with password hunter2-secret" }"#;

/// A test file of one scenario over `FAILOVER`.
fn one(name: &str, params: &str, mocks: &str, expect: &str) -> String {
    format!(
        "test: 1\nrunbook: failover.yaml\nscenarios:\n  - name: {name}\n    params: {params}\n    mocks:{mocks}\n    expect:\n{expect}\n"
    )
}

fn run_test(test: &str) -> crate::support::Output {
    tested("failover", FAILOVER, test)
}

/// The whole stdout and exit code of a `runbook test`.
#[track_caller]
fn shows(out: crate::support::Output, code: i32, stdout: &str) {
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (code, stdout),
        "{}",
        out.stderr
    );
}

/// The exit code of a `runbook test`, and how its stdout begins.
#[track_caller]
fn begins(out: &crate::support::Output, code: i32, start: &str) {
    assert_eq!(out.code, code, "{}", out.stdout);
    assert!(out.stdout.starts_with(start), "{}", out.stdout);
}

/// `runbook test` refused the test file (exit 2), saying `message` at `at` (`FILE:LINE:COL`).
#[track_caller]
fn refused(out: &crate::support::Output, at: &str, message: &str) {
    assert_eq!(out.code, 2, "{}", out.stdout);
    assert!(
        out.stdout.contains(&format!("[{at}]")),
        "{at}\n{}",
        out.stdout
    );
    assert!(out.stdout.contains(message), "{message}\n{}", out.stdout);
}

/// Every scenario of a `runbook test` passed.
#[track_caller]
fn passes_all(out: crate::support::Output) {
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
}

/// Runs `runbook test NAME.test.yaml` beside `NAME.yaml`; in its stdout, the test's directory
/// is `[TEMP]`, clock times `[TIME]` and durations `[DURATION]`.
fn tested(name: &str, runbook: &str, test: &str) -> crate::support::Output {
    let file = format!("{name}.test.yaml");
    let t = Test::new()
        .file(&format!("{name}.yaml"), runbook)
        .file(&file, test)
        .args(["test", file.as_str()]);
    let mut out = t.run();
    let dir = t
        .path()
        .canonicalize()
        .unwrap_or_else(|_| t.path().to_path_buf());
    out.stdout = out
        .stdout
        .replace(&dir.display().to_string(), "[TEMP]")
        .replace(&t.path().display().to_string(), "[TEMP]");
    for (pattern, placeholder) in [
        (r"\b\d{2}:\d{2}:\d{2}\b", "[TIME]"),
        (r"\b\d+\.\d+s\b", "[DURATION]"),
    ] {
        out.stdout = regex::Regex::new(pattern)
            .unwrap()
            .replace_all(&out.stdout, placeholder)
            .into_owned();
    }
    out
}

/// Runs a scenario that must pass.
fn passes(mocks: &str, expect: &str) {
    let out = run_test(&one("passes", "{}", mocks, expect));
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stdout
            .starts_with("PASS failover.test.yaml › passes\n\n1 scenario: 1 passed, 0 failed"),
        "{}",
        out.stdout
    );
}

/// Runs a scenario that must fail, for exactly `reason`.
fn fails(mocks: &str, expect: &str, reason: &str) {
    let out = run_test(&one("fails", "{}", mocks, expect));
    assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
    assert_eq!(
        out.stdout,
        format!("FAIL failover.test.yaml › fails\n{reason}\n1 scenario: 0 passed, 1 failed\n")
    );
}

#[test]
fn ran_passes_when_the_same_steps_complete() {
    passes(
        HAPPY_MOCKS,
        "      ran: [check-backup, is-restoring, stop-shipping, bring-online, repoint]",
    );
}

#[test]
fn ran_fails_naming_the_steps_that_did_not_complete() {
    fails(
        RESTORE_FAILS,
        "      ran: [check-backup, is-restoring, stop-shipping, bring-online]",
        "  - ran: expected but did not complete: bring-online\n      expected: check-backup, is-restoring, stop-shipping, bring-online\n      actual:   check-backup, is-restoring, stop-shipping\n",
    );
}

#[test]
fn ran_fails_naming_steps_that_completed_unexpectedly() {
    fails(
        HAPPY_MOCKS,
        "      ran: [check-backup, is-restoring, stop-shipping, bring-online]",
        "  - ran: completed but not expected: repoint\n      expected: check-backup, is-restoring, stop-shipping, bring-online\n      actual:   check-backup, is-restoring, stop-shipping, bring-online, repoint\n",
    );
}

#[test]
fn order_passes_when_the_graph_leaves_it_free() {
    // `optional` and `is-restoring` both need only `check-backup`: either order is accepted.
    for ran in [
        "check-backup, is-restoring, optional, stop-shipping, bring-online, repoint",
        "check-backup, optional, is-restoring, stop-shipping, bring-online, repoint",
        "check-backup, optional, is-restoring, stop-shipping, bring-online, repoint",
        "check-backup, is-restoring, stop-shipping, bring-online, optional, repoint",
    ] {
        let test = one(
            "free order",
            "{ database: other }",
            &format!("{HAPPY_MOCKS}\n      optional: {{}}"),
            &format!("      ran: [{ran}]"),
        );
        let out = run_test(&test);
        assert_eq!(out.code, 0, "{test}\n{}", out.stdout);
    }
}

#[test]
fn order_fails_with_a_diff_when_the_graph_fixes_it() {
    fails(
        HAPPY_MOCKS,
        "      ran: [check-backup, stop-shipping, is-restoring, bring-online, repoint]",
        "  - ran: `stop-shipping` is listed before `is-restoring`, but `is-restoring` completes first (`stop-shipping` needs `is-restoring`)\n      expected: check-backup, stop-shipping, is-restoring, bring-online, repoint\n      actual:   check-backup, is-restoring, stop-shipping, bring-online, repoint\n",
    );
}

#[test]
fn skipped_passes_and_fails() {
    passes(HAPPY_MOCKS, "      skipped: [optional]");
    fails(
        HAPPY_MOCKS,
        "      skipped: []",
        "  - skipped: expected (none), actual optional\n",
    );
}

#[test]
fn attempts_pass_and_fail() {
    passes(
        HAPPY_MOCKS,
        "      attempts: { stop-shipping: 3, repoint: 1 }",
    );
    fails(
        HAPPY_MOCKS,
        "      attempts: { stop-shipping: 2 }",
        "  - attempts of `stop-shipping`: expected 2, actual 3\n",
    );
}

#[test]
fn rolled_back_passes_and_fails() {
    passes(RESTORE_FAILS, "      rolled_back: [stop-shipping]");
    fails(
        RESTORE_FAILS,
        "      rolled_back: []",
        "  - rolled_back (in order): expected (none), actual stop-shipping\n",
    );
}

#[test]
fn needs_person_passes_and_fails() {
    passes(
        PAST_NO_RETURN,
        "      needs_person: [stop-shipping, bring-online]\n      rolled_back: []",
    );
    fails(
        PAST_NO_RETURN,
        "      needs_person: []",
        "  - needs_person: expected (none), actual bring-online, stop-shipping\n",
    );
}

#[test]
fn exit_code_passes_and_fails() {
    passes(RESTORE_FAILS, "      exit_code: 1");
    passes(PAST_NO_RETURN, "      exit_code: 3");
    fails(
        RESTORE_FAILS,
        "      exit_code: 0",
        "  - exit_code: expected 0, actual 1\n",
    );
}

#[test]
fn output_contains_passes_and_fails() {
    // The SQL error number, the rendered query and the rollback are in the run's report.
    passes(
        RESTORE_FAILS,
        "      output_contains: [\"4305\", \"the log begins too late\", \"RESTORE DATABASE [mgc] WITH RECOVERY\", \"stop-shipping rolled back\"]",
    );
    // The output it searched is shown, once however many texts it lacks.
    fails(
        RESTORE_FAILS,
        "      output_contains: [\"4306\", \"stop-shipping: ./start-shipping\"]",
        "  - output_contains: the output has no `4306`; the output searched:
      │ [TIME] run test of `failover`: 6 steps, concurrency 4
      │ [TIME] ▶ check-backup: sql on sql: SELECT state_desc FROM sys.databases WHERE name = @P1
      │       sql on `sql`:
      │         | SELECT state_desc FROM sys.databases WHERE name = @P1
      │         @P1 = N'mgc'
      │ [TIME] ✓ check-backup ([DURATION])
      │ [TIME] – optional skipped: when `params.database == 'other'` is false
      │ [TIME] ▶ is-restoring: assert steps['check-backup'].rows[0].state_desc == 'RESTORING'
      │       assert steps['check-backup'].rows[0].state_desc == 'RESTORING'
      │ [TIME] ✓ is-restoring ([DURATION])
      │ [TIME] ▶ stop-shipping (attempt 1/3): [TEMP]/stop-shipping mgc
      │       $ [TEMP]/stop-shipping mgc
      │ [TIME] ✓ stop-shipping ([DURATION])
      │ [TIME] ▶ bring-online: sql on sql: RESTORE DATABASE [mgc] WITH RECOVERY
      │       sql on `sql`:
      │         | RESTORE DATABASE [mgc] WITH RECOVERY
      │ [TIME] ✗ bring-online attempt 1 failed: SQL error 4305: the log begins too late
      │ [TIME] ✗ bring-online failed after 1 attempt: SQL error 4305: the log begins too late
      │ [TIME] ↺ rolling back, in order: stop-shipping
      │ [TIME] ↺ stop-shipping: [TEMP]/start-shipping
      │       $ [TEMP]/start-shipping
      │ [TIME] ↺ stop-shipping rolled back
      │ [TIME] · not rolled back (no rollback declared): is-restoring, check-backup
      │ [TIME] run step `bring-online` failed; rolled back (exit 1)
      │
      │ Summary of run test ([DURATION]):
      │   ✓ check-backup   succeeded  1 attempt   [DURATION]
      │   ✓ is-restoring   succeeded  1 attempt   [DURATION]
      │   – optional       skipped
      │   ✓ stop-shipping  succeeded  1 attempt   [DURATION]
      │   ✗ bring-online   failed     1 attempt   [DURATION]
      │   · repoint        not run
      │ Rolled back: stop-shipping ✓
      │ Not rolled back (no rollback declared): is-restoring, check-backup
      │ Outcome: step `bring-online` failed; rolled back (exit 1)
  - output_contains: the output has no `stop-shipping: ./start-shipping` (the output is shown above)
",
    );
}

#[test]
fn output_lacks_passes_and_fails() {
    passes(HAPPY_MOCKS, "      output_lacks: [\"4305\"]");
    // The lines that have it are shown.
    fails(
        RESTORE_FAILS,
        "      output_lacks: [\"4305\"]",
        "  - output_lacks: the output has `4305`:
         17 │ [TIME] ✗ bring-online attempt 1 failed: SQL error 4305: the log begins too late
         18 │ [TIME] ✗ bring-online failed after 1 attempt: SQL error 4305: the log begins too late
",
    );
}

#[test]
fn secrets_given_by_a_scenario_stay_masked_in_the_output() {
    // The secret is in a rendered command and in a mocked stderr shown on failure.
    let test = one(
        "secret",
        "{ sql_password: hunter2-secret }",
        PAST_NO_RETURN,
        "      output_contains: [\"/repoint --password '***'\", \"cannot repoint with password ***\"]\n      output_lacks: [\"hunter2-secret\"]",
    );
    let out = run_test(&test);
    assert_eq!(out.code, 0, "{}", out.stdout);
    assert!(!out.stdout.contains("hunter2-secret"));
}

#[test]
fn the_shortest_secret_is_masked_in_rendered_commands() {
    // A one-character secret: masked where a template put it, however short.
    let test = one(
        "short secret",
        "{ sql_password: \"1\" }",
        HAPPY_MOCKS,
        "      output_contains: [\"/repoint --password '***'\"]\n      output_lacks: [\"--password 1\", \"--password '1'\"]",
    );
    let out = run_test(&test);
    assert_eq!(out.code, 0, "{}", out.stdout);
}

#[test]
fn a_failing_expectation_does_not_print_the_secret() {
    let test = one(
        "secret in a failure",
        "{ sql_password: hunter2-secret }",
        PAST_NO_RETURN,
        "      output_contains: [\"not in the output\"]\n      exit_code: 0",
    );
    let out = Test::new()
        .file("failover.yaml", FAILOVER)
        .file("failover.test.yaml", test)
        .args(["test", "failover.test.yaml", "--format", "junit"])
        .run();
    assert_eq!(out.code, 1, "{}", out.stdout);
    assert!(!out.stdout.contains("hunter2-secret"), "{}", out.stdout);
}

#[test]
fn an_action_without_a_mock_fails_the_test_naming_it() {
    let mocks = "\n      check-backup: { rows: [{ state_desc: RESTORING }] }";
    fails(
        mocks,
        "      exit_code: 1",
        "  - no mock for `stop-shipping`: add `mocks: { \"stop-shipping\": ... }` with a result such as `{ exit_code: 0, stdout: \"...\" }`\n",
    );
}

#[test]
fn a_query_without_a_mock_asks_for_rows() {
    fails(
        "\n      stop-shipping: {}",
        "      exit_code: 1",
        "  - no mock for `check-backup`: add `mocks: { \"check-backup\": ... }` with a query result such as `{ rows: [] }`\n",
    );
}

#[test]
fn a_rollback_without_a_mock_fails_the_test_naming_it() {
    let mocks = "\n      check-backup: { rows: [{ state_desc: RESTORING }] }\n      stop-shipping: {}\n      bring-online: { fail: { reason: sql, number: 4305 } }";
    fails(
        mocks,
        "      exit_code: 3",
        "  - no mock for `rollback:stop-shipping`: add `mocks: { \"rollback:stop-shipping\": ... }` with a result such as `{ exit_code: 0, stdout: \"...\" }`\n",
    );
}

#[test]
fn retries_take_one_mock_per_attempt_and_a_short_list_is_a_missing_mock() {
    passes(
        HAPPY_MOCKS,
        "      attempts: { stop-shipping: 3 }\n      exit_code: 0",
    );
    let mocks = "\n      check-backup: { rows: [{ state_desc: RESTORING }] }\n      stop-shipping: [{ exit_code: 1 }]";
    fails(
        mocks,
        "      attempts: { stop-shipping: 1 }",
        "  - no mock for attempt 2 of `stop-shipping`: `mocks.\"stop-shipping\"` lists 1 (one per attempt); add one for each further attempt\n",
    );
}

#[test]
fn retry_delays_and_waits_do_not_really_wait() {
    // Two retries an hour apart and a day-long wait: the test ends in seconds.
    let runbook = r#"
runbook: 1
name: slow
steps:
  - id: flaky
    run: { program: ./flaky }
    retry: { attempts: 3, delay: 1h }
  - id: pause
    needs: [flaky]
    wait: 24h
"#;
    let test = r#"
test: 1
runbook: slow.yaml
scenarios:
  - name: slow
    mocks:
      flaky: [{ exit_code: 1 }, { exit_code: 1 }, {}]
    expect:
      ran: [flaky, pause]
      attempts: { flaky: 3 }
      exit_code: 0
      output_contains: ["next attempt in 1h"]
"#;
    let started = Instant::now();
    let out = tested("slow", runbook, test);
    assert_eq!(out.code, 0, "{}", out.stdout);
    assert!(started.elapsed() < Duration::from_secs(30));
}

const POLL: &str = r#"
runbook: 1
name: poll
steps:
  - id: wait-online
    run: { program: ./state }
    until: result.stdout | trim == "ONLINE"
    retry: { attempts: 4, delay: 15s }
  - id: after
    needs: [wait-online]
    run: { program: ./after }
"#;

#[test]
fn until_polls_take_one_mock_per_attempt() {
    let test = r#"
test: 1
runbook: poll.yaml
scenarios:
  - name: online on the third poll
    mocks:
      wait-online: [{ stdout: "RESTORING\n" }, { stdout: "RECOVERING\n" }, { stdout: "ONLINE\n" }]
      after: {}
    expect:
      ran: [wait-online, after]
      attempts: { wait-online: 3 }
      exit_code: 0
  - name: never online
    mocks:
      wait-online: { stdout: "RESTORING\n" }
    expect:
      ran: []
      attempts: { wait-online: 4 }
      exit_code: 1
      output_contains: ['until `result.stdout | trim == "ONLINE"` is false']
  - name: wrongly expects one poll
    mocks:
      wait-online: [{ stdout: "RESTORING\n" }, { stdout: "ONLINE\n" }]
      after: {}
    expect:
      attempts: { wait-online: 1 }
"#;
    shows(
        tested("poll", POLL, test),
        1,
        "PASS poll.test.yaml › online on the third poll\nPASS poll.test.yaml › never online\nFAIL poll.test.yaml › wrongly expects one poll\n  - attempts of `wait-online`: expected 1, actual 2\n\n3 scenarios: 2 passed, 1 failed\n",
    );
}

const LOOP: &str = r#"
runbook: 1
name: restart
params:
  hosts: { type: list, default: [web1, web2, web3] }
steps:
  - id: restart
    for_each: "{{ params.hosts }}"
    as: host
    concurrency: 1
    run: { program: ./restart, args: ["{{ host }}"] }
    retry: { attempts: 2 }
    rollback: { run: { program: ./undo, args: ["{{ host }}"] } }
  - id: done
    needs: [restart]
    run: { program: ./done }
"#;

#[test]
fn loops_take_mocks_per_instance_and_roll_back_instances_in_reverse() {
    let test = r#"
test: 1
runbook: restart.yaml
scenarios:
  - name: web3 fails twice, web2 and web1 are undone
    mocks:
      restart: {}
      "restart[web3]": [{ exit_code: 1 }, { exit_code: 1, stderr: "web3 is down" }]
      "rollback:restart": {}
    expect:
      ran: []
      attempts: { "restart[web1]": 1, "restart[web2]": 1, "restart[web3]": 2 }
      rolled_back: ["restart[web2]", "restart[web1]"]
      exit_code: 1
      output_contains: ["/restart web3", "web3 is down", "/undo web2"]
  - name: per-instance rollback mocks, one rollback fails
    mocks:
      restart: {}
      "restart[web3]": { exit_code: 1 }
      "rollback:restart[web2]": { exit_code: 1 }
      "rollback:restart[web1]": {}
    expect:
      rolled_back: ["restart[web1]"]
      needs_person: ["restart[web2]"]
      exit_code: 3
  - name: wrongly expects web1 undone first
    mocks:
      restart: {}
      "restart[web3]": { exit_code: 1 }
      "rollback:restart": {}
    expect:
      rolled_back: ["restart[web1]", "restart[web2]"]
"#;
    shows(
        tested("restart", LOOP, test),
        1,
        "PASS restart.test.yaml › web3 fails twice, web2 and web1 are undone\nPASS restart.test.yaml › per-instance rollback mocks, one rollback fails\nFAIL restart.test.yaml › wrongly expects web1 undone first\n  - rolled_back (in order): expected restart[web1], restart[web2], actual restart[web2], restart[web1]\n\n3 scenarios: 2 passed, 1 failed\n",
    );
}

const SEQUENCE: &str = r#"
runbook: 1
name: sequence
steps:
  - id: first
    run: { program: echo, args: [one] }
    rollback: { run: { program: echo, args: [undo-one] } }
  - id: second
    needs: [first]
    run: { shell: sh, script: "echo two; test -f ok || exit 3" }
    retry: { attempts: 2 }
  - id: third
    needs: [second]
    run: { program: echo, args: [three] }
"#;

/// Runs `runbook run FILE` in `t`'s directory with its own state directory (as `env` says),
/// expecting `code`; returns the state directory and the run's id.
fn real_run(t: &Test, file: &str, env: &[(&str, &str)], code: i32) -> (String, String) {
    let state = t.path().join("state").to_string_lossy().into_owned();
    let mut run = Test::in_dir(t.path());
    for (k, v) in env {
        run = run.env(k, v);
    }
    let out = run
        .args(["run", file, "--state-dir", &state, "--output", "json"])
        .run();
    assert_eq!(out.code, code, "{}{}", out.stdout, out.stderr);
    let run_id = out.events()[0]["run_id"].as_str().unwrap().to_owned();
    (state, run_id)
}

/// `runbook test --record RUN_ID` (and more `args`) in `t`'s directory, which must succeed.
fn record(t: &Test, state: &str, run_id: &str, args: &[&str]) {
    let out = Test::in_dir(t.path())
        .args(["test", "--record", run_id, "--state-dir", state])
        .args(args.iter().copied())
        .run();
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
}

#[test]
fn record_round_trip_passes_then_fails_with_a_diff_when_the_order_changes() {
    let t = Test::new().file("sequence.yaml", SEQUENCE);
    let (state, run_id) = real_run(&t, "sequence.yaml", &[], 1);
    record(&t, &state, &run_id, &[]);
    let file = format!("sequence.{run_id}.test.yaml");
    let text = t.read(&file);
    assert!(text.contains("runbook: \"sequence.yaml\""), "{text}");
    assert!(
        text.contains(r#""second": [{"exit_code":3},{"exit_code":3,"stdout":"two\n"}]"#),
        "{text}"
    );
    assert!(text.contains(r#""rollback:first": [{}]"#), "{text}");
    let replay = Test::in_dir(t.path()).args(["test", &file]).run();
    assert_eq!(replay.code, 0, "{text}\n{}", replay.stdout);
    assert!(
        replay
            .stdout
            .starts_with(&format!("PASS {file} › recorded run {run_id}\n"))
    );

    // Recording again would overwrite the first: refused.
    let again = Test::in_dir(t.path())
        .args(["test", "--record", &run_id, "--state-dir", &state])
        .run();
    assert_eq!(again.code, 2);
    assert!(
        again
            .stderr
            .contains("exists; remove it or write elsewhere with -o FILE")
    );

    // `second` now runs first: the recorded order no longer holds.
    let reordered = r#"
runbook: 1
name: sequence
steps:
  - id: first
    needs: [second]
    run: { program: echo, args: [one] }
    rollback: { run: { program: echo, args: [undo-one] } }
  - id: second
    run: { shell: sh, script: "echo two; test -f ok || exit 3" }
    retry: { attempts: 2 }
  - id: third
    needs: [second]
    run: { program: echo, args: [three] }
"#;
    std::fs::write(t.path().join("sequence.yaml"), reordered).unwrap();
    let changed = Test::in_dir(t.path()).args(["test", &file]).run();
    assert_eq!(changed.code, 1, "{}", changed.stdout);
    assert_eq!(
        changed.stdout,
        format!(
            "FAIL {file} › recorded run {run_id}\n  - ran: expected but did not complete: first\n      expected: first\n      actual:   (none)\n  - rolled_back (in order): expected first, actual (none)\n  - attempts of `first`: expected 1, actual 0\n  warning: mocks the run never used: `first`, `rollback:first`\n\n1 scenario: 0 passed, 1 failed; 1 warning\n"
        )
    );
}

#[test]
fn record_writes_where_output_says() {
    let t = Test::new().file("sequence.yaml", SEQUENCE).file("ok", "");
    let (state, run_id) = real_run(&t, "sequence.yaml", &[], 0);
    std::fs::create_dir(t.path().join("tests")).unwrap();
    record(&t, &state, &run_id, &["-o", "tests/seq.test.yaml"]);
    let text = t.read("tests/seq.test.yaml");
    assert!(text.contains("runbook: \"../sequence.yaml\""), "{text}");
    assert!(
        text.contains("ran: [\"first\",\"second\",\"third\"]"),
        "{text}"
    );
    let replay = Test::in_dir(t.path()).args(["test", "tests"]).run();
    assert_eq!(replay.code, 0, "{}", replay.stdout);
}

#[test]
fn an_unknown_step_in_a_test_file_is_a_located_error() {
    let test = "test: 1\nrunbook: failover.yaml\nscenarios:\n  - name: typo\n    mocks:\n      stop-shiping: {}\n";
    let out = run_test(test);
    assert_eq!(out.code, 2, "{}", out.stdout);
    assert!(
        out.stdout.contains("INVALID failover.test.yaml"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("runbook::invalid_test"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("[failover.test.yaml:6:7]"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("mocks: no step `stop-shiping` in runbook `failover`")
    );
    assert!(
        out.stdout.contains("did you mean `stop-shipping`?"),
        "{}",
        out.stdout
    );
}

#[test]
fn invalid_test_files_are_located_errors() {
    for (test, code, at) in [
        (
            "test: 2\nrunbook: failover.yaml\nscenarios: [{ name: x }]\n",
            "runbook::invalid_test",
            "1:7",
        ),
        (
            "test: 1\nrunbook: failover.yaml\nscenarios:\n  - name: x\n    expect: { ran: [a, }\n",
            "runbook::yaml_syntax",
            "5:",
        ),
        (
            "test: 1\nrunbook: missing.yaml\nscenarios: [{ name: x }]\n",
            "runbook::invalid_test",
            "2:10",
        ),
        (
            "test: 1\nrunbook: failover.yaml\nscenarios:\n  - name: x\n    expct: {}\n",
            "runbook::unknown_key",
            "5:5",
        ),
        (
            "test: 1\nrunbook: failover.yaml\nscenarios:\n  - name: x\n    mocks: { repoint: { fail: { reason: crash } } }\n",
            "runbook::invalid_value",
            "5:41",
        ),
        (
            "test: 1\nrunbook: failover.yaml\nscenarios:\n  - name: x\n    mocks: { is-restoring: {} }\n",
            "runbook::invalid_test",
            "5:14",
        ),
        (
            "test: 1\nrunbook: failover.yaml\nscenarios:\n  - name: x\n    params: { databse: x }\n",
            "runbook::invalid_test",
            "5:15",
        ),
        (
            "test: 1\nrunbook: failover.yaml\nscenarios:\n  - name: x\n    expect: { output_contains: [\"\"] }\n",
            "runbook::invalid_test",
            "5:33",
        ),
        (
            "test: 1\nrunbook: failover.yaml\nscenarios:\n  - name: x\n    expect: { ran: [repoint, repoint] }\n",
            "runbook::invalid_test",
            "5:30",
        ),
        (
            "test: 1\nrunbook: failover.yaml\nscenarios:\n  - name: x\n    expect: { attempts: { repoint: -1 } }\n",
            "runbook::invalid_test",
            "5:36",
        ),
        (
            "test: 1\nrunbook: failover.yaml\nscenarios: []\n",
            "runbook::invalid_test",
            "3:12",
        ),
        ("[1, 2]\n", "runbook::invalid_test", "1:1"),
    ] {
        let out = run_test(test);
        assert_eq!(out.code, 2, "{test}\n{}", out.stdout);
        assert!(out.stdout.contains(code), "{test}\n{}", out.stdout);
        assert!(
            out.stdout.contains(&format!("[failover.test.yaml:{at}")),
            "{test}\n{}",
            out.stdout
        );
    }
}

#[test]
fn an_invalid_runbook_under_test_shows_the_runbook_s_errors() {
    let out = Test::new()
        .file(
            "failover.yaml",
            "runbook: 1\nname: bad\nsteps:\n  - id: a\n    needs: [b]\n    run: { program: x }\n",
        )
        .file(
            "failover.test.yaml",
            "test: 1\nrunbook: failover.yaml\nscenarios: [{ name: x }]\n",
        )
        .args(["test", "."])
        .run();
    assert_eq!(out.code, 2, "{}", out.stdout);
    assert!(out.stdout.contains("failover.yaml:5:13]"), "{}", out.stdout);
}

#[test]
fn a_directory_without_test_files_is_an_error() {
    let out = Test::new()
        .file("a.yaml", FAILOVER)
        .args(["test", "."])
        .run();
    assert_eq!(out.code, 2);
    assert_eq!(out.stderr, "error: no test files (*.test.yaml) under `.`\n");
}

#[test]
fn validate_of_a_directory_skips_test_files() {
    let out = Test::new()
        .file("failover.yaml", FAILOVER)
        .file(
            "failover.test.yaml",
            one("x", "{}", HAPPY_MOCKS, "      exit_code: 0"),
        )
        .args(["validate", "."])
        .run();
    assert_eq!(out.code, 0, "{}", out.stdout);
}

#[test]
fn the_shipped_runbooks_pass_their_tests() {
    let out = Test::new()
        .args(["test", &repo().join("runbooks").to_string_lossy()])
        .run();
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert!(out.stdout.contains(" passed, 0 failed\n"), "{}", out.stdout);
    assert!(!out.stdout.contains("FAIL"), "{}", out.stdout);
}

#[test]
fn a_recorded_test_holds_no_secret() {
    // The command prints the secret; the journal masks it, and so does the recorded test.
    let runbook = r#"
runbook: 1
name: leaky
secrets:
  token: { env: LEAKY_TOKEN }
steps:
  - id: leak
    env: { T: "{{ secrets.token }}" }
    run: { shell: sh, script: 'echo "token=$T"' }
    outputs: { said: "{{ result.stdout | trim }}" }
  - id: use
    needs: [leak]
    run: { program: echo, args: ["{{ secrets.token }}", "{{ steps.leak.outputs.said }}"] }
"#;
    let t = Test::new().file("leaky.yaml", runbook);
    let (state, run_id) = real_run(
        &t,
        "leaky.yaml",
        &[("LEAKY_TOKEN", "s3cr3t-token-value")],
        0,
    );
    record(&t, &state, &run_id, &[]);
    let text = t.read(&format!("leaky.{run_id}.test.yaml"));
    assert!(!text.contains("s3cr3t"), "{text}");
    assert!(text.contains("token=***"), "{text}");
    // The replay gives the secret another value: it is masked in the report all the same.
    let replay = Test::in_dir(t.path())
        .args(["test", &format!("leaky.{run_id}.test.yaml")])
        .run();
    assert_eq!(replay.code, 0, "{}", replay.stdout);
}

#[test]
fn a_mocked_output_the_step_does_not_declare_is_a_located_error() {
    let test = "test: 1\nrunbook: failover.yaml\nscenarios:\n  - name: x\n    mocks:\n      repoint: { outputs: { served: x } }\n";
    refused(
        &run_test(test),
        "failover.test.yaml:6:7",
        "mocks: `repoint` gives output `served`, which `repoint` does not declare",
    );
}

#[test]
fn mocked_outputs_are_given_as_they_are() {
    let runbook = r#"
runbook: 1
name: outputs
steps:
  - id: find
    run: { program: ./find }
    outputs: { version: "{{ result.stdout | trim }}" }
  - id: check
    needs: [find]
    assert: { that: "steps.find.outputs.version == '2.0'", message: "found {{ steps.find.outputs.version }}" }
"#;
    let test = r#"
test: 1
runbook: outputs.yaml
scenarios:
  - name: the output given wins over the one rendered
    mocks:
      find: { stdout: "1.0\n", outputs: { version: "2.0" } }
    expect: { ran: [find, check], exit_code: 0 }
  - name: rendered from stdout
    mocks:
      find: { stdout: "1.0\n" }
    expect: { ran: [find], exit_code: 1, output_contains: ["found 1.0"] }
"#;
    passes_all(tested("outputs", runbook, test));
}

#[test]
fn sql_errors_in_mocks_are_retried_as_retry_on_says() {
    let runbook = r#"
runbook: 1
name: deadlock
connections:
  sql: { mssql: "server=tcp:sql.invalid;user id=sa;password=x" }
steps:
  - id: update
    sql: { connection: sql, query: "UPDATE t SET x = 1" }
    retry: { attempts: 3, on: { sql_errors: [1205] } }
"#;
    let test = r#"
test: 1
runbook: deadlock.yaml
scenarios:
  - name: a deadlock is retried
    mocks:
      update: [{ fail: { reason: sql, number: 1205 } }, { rows: [] }]
    expect: { ran: [update], attempts: { update: 2 }, exit_code: 0 }
  - name: another error is not
    mocks:
      update: [{ fail: { reason: sql, number: 2627, message: "duplicate key" } }]
    expect: { ran: [], attempts: { update: 1 }, exit_code: 1, output_contains: ["SQL error 2627: duplicate key"] }
"#;
    passes_all(tested("deadlock", runbook, test));
}

#[test]
fn approvals_not_given_are_refused_and_the_run_rolls_back() {
    let runbook = r#"
runbook: 1
name: approve
steps:
  - id: prepare
    run: { program: ./prepare }
    rollback: { run: { program: ./unprepare } }
  - id: go
    needs: [prepare]
    approval: { prompt: "Go?" }
  - id: switch
    needs: [go]
    run: { program: ./switch }
"#;
    let test = r#"
test: 1
runbook: approve.yaml
scenarios:
  - name: approved
    approvals: [go]
    mocks: { prepare: {}, switch: {} }
    expect: { ran: [prepare, go, switch], exit_code: 0 }
  - name: approved all
    approvals: all
    mocks: { prepare: {}, switch: {} }
    expect: { ran: [prepare, go, switch], exit_code: 0 }
  - name: refused
    mocks: { prepare: {}, "rollback:prepare": {} }
    expect: { ran: [prepare], rolled_back: [prepare], exit_code: 1, output_contains: ["not approved"] }
"#;
    passes_all(tested("approve", runbook, test));
}

#[test]
fn output_contains_sees_every_line_of_a_rendered_script_and_query() {
    let runbook = r#"
runbook: 1
name: scripts
params:
  pool: { type: string, default: pchat.contoso.com }
  database: { type: string, default: mgc }
connections:
  sql: { mssql: "server=tcp:sql.invalid;user id=sa;password=x" }
steps:
  - id: state
    run:
      shell: sh
      script: |
        # set the pool state
        echo start
        echo "Set-CsPersistentChatState -Identity service:{{ params.pool }} -PoolState FailedOver"
  - id: restore
    needs: [state]
    sql:
      connection: sql
      query: |
        SELECT 1;
        RESTORE DATABASE [mgc] WITH RECOVERY
      args: ["{{ params.database }}"]
"#;
    let test = r#"
test: 1
runbook: scripts.yaml
scenarios:
  - name: later lines are in the output
    mocks: { state: {}, restore: {} }
    expect:
      exit_code: 0
      output_contains:
        - "service:pchat.contoso.com -PoolState FailedOver"
        - "RESTORE DATABASE [mgc] WITH RECOVERY"
        - "@P1 = N'mgc'"
  - name: a line that is not rendered is not found
    mocks: { state: {}, restore: {} }
    expect:
      output_contains: ["{{ params.pool }}"]
"#;
    let out = tested("scripts", runbook, test);
    assert!(
        out.stdout.starts_with(
            "PASS scripts.test.yaml › later lines are in the output\nFAIL scripts.test.yaml › a line that is not rendered is not found\n  - output_contains: the output has no `{{ params.pool }}`; the output searched:\n"
        ),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .ends_with("\n\n2 scenarios: 1 passed, 1 failed\n"),
        "{}",
        out.stdout
    );
}

#[test]
fn an_alias_bomb_in_a_test_file_is_refused_quickly() {
    let mut bomb =
        String::from("test: 1\nrunbook: failover.yaml\na0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..12 {
        let p = i - 1;
        bomb.push_str(&format!(
            "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
        ));
    }
    bomb.push_str("scenarios: [{ name: x, params: { database: *a11 } }]\n");
    let started = Instant::now();
    let out = run_test(&bomb);
    assert_eq!(out.code, 2, "{}", out.stdout);
    assert!(
        out.stdout.contains("runbook::resource_limit"),
        "{}",
        out.stdout
    );
    assert!(started.elapsed() < Duration::from_secs(20));
}

#[test]
fn junit_reports_an_invalid_test_file_as_an_error_case() {
    let out = Test::new()
        .file("failover.yaml", FAILOVER)
        .file(
            "a.test.yaml",
            one("fine", "{}", HAPPY_MOCKS, "      exit_code: 0"),
        )
        .file(
            "b.test.yaml",
            "test: 1\nrunbook: failover.yaml\nscenarios:\n  - name: x\n    mocks: { nope: {} }\n",
        )
        .args(["test", ".", "--format", "junit"])
        .run();
    assert_eq!(out.code, 2, "{}", out.stdout);
    for part in [
        r#"<testsuites name="runbook test" tests="2" skipped="0" failures="0" errors="1">"#,
        r#"<testcase name="fine" classname="./a.test.yaml""#,
        r#"<error message="invalid test file">"#,
        "mocks: no step `nope` in runbook `failover`",
    ] {
        assert!(out.stdout.contains(part), "{part}\n{}", out.stdout);
    }
}

#[test]
fn time_is_virtual_so_the_run_s_timeout_still_ends_a_long_wait() {
    // An hour-long wait in a runbook with a 10-minute limit: the test takes no time, and the
    // run times out exactly as a real one would.
    let runbook = r#"
runbook: 1
name: limited
timeout: 10m
steps:
  - id: first
    run: { program: ./first }
  - id: pause
    needs: [first]
    wait: 1h
  - id: after
    needs: [pause]
    run: { program: ./after }
"#;
    let test = r#"
test: 1
runbook: limited.yaml
scenarios:
  - name: the run's timeout ends the wait
    mocks: { first: {}, after: {} }
    expect: { ran: [first], exit_code: 1, output_contains: ["the run timed out after 10m"] }
"#;
    let started = Instant::now();
    passes_all(tested("limited", runbook, test));
    assert!(started.elapsed() < Duration::from_secs(30));
    // A wait takes no mock: it is not an action on the world.
    let mocked =
        "test: 1\nrunbook: limited.yaml\nscenarios:\n  - name: x\n    mocks: { pause: {} }\n";
    let out = tested("limited", runbook, mocked);
    assert_eq!(out.code, 2, "{}", out.stdout);
    assert!(
        out.stdout.contains(
            "mocks: `pause` takes no mock: a wait waits on the test's virtual clock, taking no time"
        ),
        "{}",
        out.stdout
    );
}

/// A step with a two-line rollback script, and a later step that fails.
const TWO_LINE_ROLLBACK: &str = r#"
runbook: 1
name: undo
secrets:
  sql_password: { env: UNDO_SQL_PASSWORD }
connections:
  sql: { mssql: "server=tcp:sql.invalid;user id=sa;password={{ secrets.sql_password }}" }
steps:
  - id: first
    run: { shell: sh, script: "echo do\necho step-second-line" }
    rollback: { run: { shell: sh, script: "echo undo\necho marker-second-line" } }
  - id: grant
    needs: [first]
    sql: { connection: sql, query: "GRANT CONNECT TO [pchat]" }
    rollback:
      sql:
        connection: sql
        query: "REVOKE CONNECT FROM [pchat];\nALTER LOGIN [pchat] WITH PASSWORD = @P1"
        args: ["{{ secrets.sql_password }}"]
  - id: boom
    needs: [grant]
    run: { program: ./boom }
"#;

#[test]
fn output_contains_sees_every_line_of_a_rendered_rollback() {
    let test = r#"
test: 1
runbook: undo.yaml
scenarios:
  - name: the rollback's later lines and arguments are in the output
    params: { sql_password: hunter2-secret }
    mocks: &mocks { first: {}, grant: {}, boom: { exit_code: 1 }, "rollback:first": {}, "rollback:grant": {} }
    expect:
      rolled_back: [grant, first]
      output_contains:
        - step-second-line
        - marker-second-line
        - "ALTER LOGIN [pchat] WITH PASSWORD = @P1"
        - "@P1 = N'***'"
      output_lacks: [hunter2-secret]
  - name: a line no rollback renders is not found
    params: { sql_password: hunter2-secret }
    mocks: *mocks
    expect:
      output_contains: [marker-third-line]
"#;
    let out = tested("undo", TWO_LINE_ROLLBACK, test);
    begins(
        &out,
        1,
        "PASS undo.test.yaml › the rollback's later lines and arguments are in the output\nFAIL undo.test.yaml › a line no rollback renders is not found\n  - output_contains: the output has no `marker-third-line`",
    );
    assert!(!out.stdout.contains("hunter2-secret"), "{}", out.stdout);
}

#[test]
fn a_rollback_s_rendered_action_is_journaled_masked_and_old_journals_still_read() {
    let runbook = r#"
runbook: 1
name: undo
secrets:
  token: { env: UNDO_TOKEN }
steps:
  - id: first
    run: { shell: sh, script: "echo do" }
    rollback: { run: { shell: sh, script: "echo undo\necho \"{{ secrets.token }}\" > /dev/null" } }
  - id: boom
    needs: [first]
    run: { shell: sh, script: "exit 1" }
"#;
    let t = Test::new().file("undo.yaml", runbook);
    let (state, run_id) = real_run(&t, "undo.yaml", &[("UNDO_TOKEN", "s3cr3t-token-value")], 1);
    let path = std::path::Path::new(&state)
        .join("runs")
        .join(&run_id)
        .join("journal.jsonl");
    let journal = std::fs::read_to_string(&path).unwrap();
    let started = journal
        .lines()
        .find(|l| l.contains("\"rollback_step_started\""))
        .unwrap();
    let event: serde_json::Value = serde_json::from_str(started).unwrap();
    assert_eq!(
        event["detail"],
        serde_json::json!({ "kind": "script", "shell": "sh", "script": "echo undo\necho \"***\" > /dev/null" })
    );
    assert!(!journal.contains("s3cr3t"), "{journal}");

    // A journal written before rollbacks kept their detail is read as before.
    let old: String = journal
        .lines()
        .map(|l| {
            let mut event: serde_json::Value = serde_json::from_str(l).unwrap();
            if event["event"] == "rollback_step_started" {
                event.as_object_mut().unwrap().remove("detail");
            }
            format!("{event}\n")
        })
        .collect();
    assert!(!old.contains("echo undo\\n"), "{old}");
    std::fs::write(&path, old).unwrap();
    let shown = Test::in_dir(t.path())
        .args(["show", &run_id, "--state-dir", &state])
        .run();
    assert_eq!(shown.code, 0, "{}{}", shown.stdout, shown.stderr);
    assert!(shown.stdout.contains("first"), "{}", shown.stdout);
    record(&t, &state, &run_id, &[]);
    let replay = Test::in_dir(t.path())
        .args(["test", &format!("undo.{run_id}.test.yaml")])
        .run();
    assert_eq!(replay.code, 0, "{}", replay.stdout);
}

/// A probe, an assert, an approval and a step with a rollback, all before a point of no
/// return; a step after it fails.
const PAST_A_PROBE: &str = r#"
runbook: 1
name: probed
steps:
  - id: look
    probe: true
    run: { shell: sh, script: "echo online" }
  - id: sure
    needs: [look]
    assert: "steps.look.stdout | trim == 'online'"
  - id: go
    needs: [sure]
    approval: { prompt: "Commit?" }
  - id: prepare
    needs: [go]
    run: { shell: sh, script: "echo prepare >> log" }
    rollback: { run: { shell: sh, script: "echo unprepare >> log" } }
  - id: commit
    needs: [prepare]
    irreversible: true
    run: { shell: sh, script: "echo commit >> log" }
  - id: after
    needs: [commit]
    run: { shell: sh, script: "exit 1" }
"#;

#[test]
fn needs_person_lists_only_the_steps_left_changed_not_probes_asserts_or_approvals() {
    let test = r#"
test: 1
runbook: probed.yaml
scenarios:
  - name: the irreversible step and the rollback withheld
    approvals: all
    mocks: &mocks { look: { stdout: "online\n" }, prepare: {}, commit: {}, after: { exit_code: 1 } }
    expect:
      needs_person: [commit, prepare]
      rolled_back: []
      exit_code: 3
      output_contains: ["Not rolled back (no rollback declared): go, sure, look"]
  - name: a probe is not left for a person
    approvals: all
    mocks: *mocks
    expect:
      needs_person: [commit, prepare, look]
"#;
    shows(
        tested("probed", PAST_A_PROBE, test),
        1,
        "PASS probed.test.yaml › the irreversible step and the rollback withheld\nFAIL probed.test.yaml › a probe is not left for a person\n  - needs_person: expected commit, prepare, look, actual commit, prepare\n\n2 scenarios: 1 passed, 1 failed\n",
    );
}

#[test]
fn needs_person_means_what_a_real_run_reports_at_its_end() {
    // The same runbook run for real: its summary keeps for a person exactly the steps the
    // test's `needs_person` lists, and says the others have no rollback.
    let t = Test::new().file("probed.yaml", PAST_A_PROBE);
    let out = Test::in_dir(t.path())
        .args(["run", "probed.yaml", "--approve", "go"])
        .run();
    assert_eq!(out.code, 3, "{}{}", out.stdout, out.stderr);
    assert_eq!(t.read("log"), "prepare\ncommit\n");
    let kept: Vec<&str> = out
        .stdout
        .lines()
        .filter(|l| l.starts_with("Not rolled back"))
        .collect();
    assert_eq!(
        kept,
        [
            "Not rolled back (no rollback declared): go, sure, look",
            "Not rolled back: commit (irreversible: a point of no return)",
            "Not rolled back: prepare (behind irreversible step `commit`)",
        ],
        "{}",
        out.stdout
    );
    let plan = Test::in_dir(t.path())
        .args([
            "plan",
            "probed.yaml",
            "--fail-at",
            "after",
            "--format",
            "json",
        ])
        .run();
    assert_eq!(
        plan.json()["scenario"]["not_rolled_back"],
        serde_json::json!([
            { "id": "commit", "reason": "irreversible: a point of no return" },
            { "id": "prepare", "reason": "behind irreversible step `commit`" },
            { "id": "go", "reason": "no rollback declared" },
            { "id": "sure", "reason": "no rollback declared" },
            { "id": "look", "reason": "no rollback declared" }
        ])
    );
}

/// A restore whose server messages and row count later steps read.
const MESSAGES: &str = r#"
runbook: 1
name: messages
connections:
  sql: { mssql: "server=tcp:sql.invalid;user id=sa;password=x" }
steps:
  - id: restore
    sql: { connection: sql, query: "RESTORE LOG [mgc] FROM DISK = @P1 WITH NORECOVERY", args: [x.trn] }
  - id: processed
    needs: [restore]
    assert:
      that: "'100 percent processed.' in steps.restore.messages"
      message: "the server said {{ steps.restore.messages | join('|') }}"
  - id: purge
    needs: [processed]
    sql: { connection: sql, query: "DELETE FROM backups WHERE old = 1" }
  - id: purged
    needs: [purge]
    assert: { that: "steps.purge.rows_affected == 3", message: "purged {{ steps.purge.rows_affected }}" }
"#;

#[test]
fn sql_mocks_give_server_messages_and_rows_affected() {
    let test = r#"
test: 1
runbook: messages.yaml
scenarios:
  - name: the messages and the row count reach templates and the report
    mocks:
      restore: { messages: ["10 percent processed.", "100 percent processed."] }
      purge: { rows_affected: 3 }
    expect:
      ran: [restore, processed, purge, purged]
      exit_code: 0
      output_contains: ["restore │ 100 percent processed."]
  - name: without them the asserts fail
    mocks:
      restore: { messages: ["RESTORE LOG was aborted."] }
    expect:
      ran: [restore]
      exit_code: 1
      output_contains: ["the server said RESTORE LOG was aborted."]
  - name: a wrong row count fails
    mocks:
      restore: { messages: ["100 percent processed."] }
      purge: { rows_affected: 2 }
    expect:
      exit_code: 0
"#;
    let out = tested("messages", MESSAGES, test);
    begins(
        &out,
        1,
        "PASS messages.test.yaml › the messages and the row count reach templates and the report\nPASS messages.test.yaml › without them the asserts fail\nFAIL messages.test.yaml › a wrong row count fails\n  - exit_code: expected 0, actual 1\n",
    );
}

#[test]
fn server_answers_in_a_command_s_mock_or_of_the_wrong_shape_are_located_errors() {
    for (mocks, at, said) in [
        (
            "{ first: { messages: [hello] } }",
            "5:14",
            "mocks: `first` gives `messages` or `rows_affected`, which only a query returns",
        ),
        (
            "{ \"rollback:first\": { rows_affected: 1 } }",
            "5:14",
            "mocks: `rollback:first` gives `messages` or `rows_affected`, which only a query returns",
        ),
        (
            "{ grant: { rows_affected: -1 } }",
            "5:38",
            "`rows_affected` counts rows: 0 or more",
        ),
        ("{ grant: { messages: hello } }", "5:33", "messages"),
        (
            "{ grant: { message: [hello] } }",
            "5:23",
            "did you mean `messages`?",
        ),
    ] {
        let test =
            format!("test: 1\nrunbook: undo.yaml\nscenarios:\n  - name: x\n    mocks: {mocks}\n");
        refused(
            &tested("undo", TWO_LINE_ROLLBACK, &test),
            &format!("undo.test.yaml:{at}"),
            said,
        );
    }
}

#[test]
fn record_keeps_a_query_s_messages_and_row_count_as_its_mock() {
    let server = crate::tds::Server::start("Sup3r-Secret!pw", |r: &crate::tds::Request| {
        use crate::tds::Reply;
        if r.sql.contains("RESTORE") {
            vec![
                Reply::Info {
                    number: 3211,
                    message: "100 percent processed.".into(),
                },
                Reply::Done { rows_affected: 0 },
            ]
        } else if r.sql.contains("DELETE") {
            vec![Reply::Done { rows_affected: 3 }]
        } else {
            vec![Reply::Done { rows_affected: 0 }]
        }
    });
    let runbook = MESSAGES.replace(
        "server=tcp:sql.invalid;user id=sa;password=x",
        &format!(
            "server=tcp:127.0.0.1,{};user id=sa;password=Sup3r-Secret!pw;encrypt=DANGER_PLAINTEXT",
            server.port()
        ),
    );
    let t = Test::new().file("messages.yaml", &runbook);
    let (state, run_id) = real_run(&t, "messages.yaml", &[], 0);
    record(&t, &state, &run_id, &[]);
    let file = format!("messages.{run_id}.test.yaml");
    let text = t.read(&file);
    assert!(
        text.contains(r#""restore": [{"messages":["100 percent processed."]}]"#),
        "{text}"
    );
    assert!(text.contains(r#""purge": [{"rows_affected":3}]"#), "{text}");
    let replay = Test::in_dir(t.path()).args(["test", &file]).run();
    assert_eq!(replay.code, 0, "{text}\n{}", replay.stdout);
}

#[test]
fn outputs_in_a_rollback_s_mock_are_a_located_error() {
    let test = "test: 1\nrunbook: undo.yaml\nscenarios:\n  - name: x\n    mocks: { \"rollback:first\": { outputs: { done: yes } } }\n";
    refused(
        &tested("undo", TWO_LINE_ROLLBACK, test),
        "undo.test.yaml:5:14",
        "mocks: `rollback:first` gives output `done`, but a rollback action has no outputs",
    );
}

#[test]
fn a_long_output_is_shown_by_the_lines_nearest_the_missing_text() {
    let runbook = r#"
runbook: 1
name: many
params:
  hosts: { type: list, default: [web1, web2, web3, web4, web5, web6, web7, web8, web9, web10, web11, web12, web13, web14, web15] }
steps:
  - id: restart
    for_each: "{{ params.hosts }}"
    as: host
    concurrency: 1
    run: { program: echo, args: ["restart {{ host }}"] }
"#;
    let test = r#"
test: 1
runbook: many.yaml
scenarios:
  - name: a host that is not in the list
    mocks: { restart: {} }
    expect:
      output_contains: ["restart web31"]
"#;
    let out = tested("many", runbook, test);
    assert_eq!(out.code, 1, "{}", out.stdout);
    // Eight lines at most, in output order: the two that share most of the text (web3's),
    // then the earliest of those that share the next most.
    assert_eq!(
        out.stdout,
        "FAIL many.test.yaml › a host that is not in the list
  - output_contains: the output has no `restart web31`; the lines of its 52 nearest it:
          2 │ [TIME] ▶ restart[web1]: echo 'restart web1'
          3 │       $ echo 'restart web1'
          5 │ [TIME] ▶ restart[web2]: echo 'restart web2'
          6 │       $ echo 'restart web2'
          8 │ [TIME] ▶ restart[web3]: echo 'restart web3'
          9 │       $ echo 'restart web3'
         11 │ [TIME] ▶ restart[web4]: echo 'restart web4'
         12 │       $ echo 'restart web4'

1 scenario: 0 passed, 1 failed
"
    );
}

#[test]
fn mocks_the_run_never_used_are_a_warning_unless_shared() {
    let test = r#"
test: 1
runbook: failover.yaml
scenarios:
  - name: the happy path defines the mocks the others share
    mocks: &happy
      check-backup: { rows: [{ state_desc: RESTORING }] }
      stop-shipping: {}
      bring-online: { rows: [] }
      repoint: {}
      "rollback:stop-shipping": {}
    expect: { exit_code: 0 }
  - name: an override the run never reaches
    mocks:
      <<: *happy
      check-backup: { rows: [{ state_desc: ONLINE }] }
      repoint: { exit_code: 2 }
      "rollback:stop-shipping": { exit_code: 1 }
    expect: { ran: [check-backup], exit_code: 1 }
  - name: more attempts mocked than made
    mocks:
      <<: *happy
      stop-shipping: [{ exit_code: 1 }, {}, {}]
    expect: { exit_code: 0 }
  - name: a failing scenario warns too
    mocks:
      <<: *happy
      optional: {}
    expect: { exit_code: 1 }
"#;
    shows(
        run_test(test),
        1,
        "PASS failover.test.yaml › the happy path defines the mocks the others share
PASS failover.test.yaml › an override the run never reaches
  warning: mocks the run never used: `repoint`, `rollback:stop-shipping`
PASS failover.test.yaml › more attempts mocked than made
  warning: `stop-shipping` lists 3 mocks, one per attempt; the run made 2 attempts
FAIL failover.test.yaml › a failing scenario warns too
  - exit_code: expected 1, actual 0
  warning: mocks the run never used: `optional`

4 scenarios: 3 passed, 1 failed; 3 warnings
",
    );
    let junit = Test::new()
        .file("failover.yaml", FAILOVER)
        .file("failover.test.yaml", test)
        .args(["test", "failover.test.yaml", "--format", "junit"])
        .run();
    assert!(
        junit.stdout.contains(
            "<system-out>warning: `stop-shipping` lists 3 mocks, one per attempt; the run made 2 attempts</system-out>"
        ),
        "{}",
        junit.stdout
    );
}
