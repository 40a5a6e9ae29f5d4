//! `runbook run`: order, parallelism, retries, polling, timeouts, rollback, approvals,
//! secrets and exit codes, each checked through what the real binary does.

use std::time::Duration;

use crate::support::{Test, events_of, journal_has_event, on_terminal, wait_until};

fn book(steps: &str) -> String {
    format!("runbook: 1\nname: t\nsteps:\n{steps}")
}

/// The time from one event to a later one, from their whole `at` timestamps (date included,
/// so that a test running across midnight does not see a negative gap).
fn gap(from: &serde_json::Value, to: &serde_json::Value) -> Duration {
    let at = |e: &serde_json::Value| {
        let text = e["at"].as_str().expect("`at` timestamp");
        humantime::parse_rfc3339(text).unwrap_or_else(|err| panic!("`at` {text:?}: {err}"))
    };
    at(to)
        .duration_since(at(from))
        .unwrap_or_else(|_| panic!("{to} is before {from}"))
}

#[test]
fn gap_between_events_across_midnight() {
    let before = serde_json::json!({ "at": "2026-11-26T23:59:59.900Z" });
    let after = serde_json::json!({ "at": "2026-11-27T00:00:00.150Z" });
    assert_eq!(gap(&before, &after), Duration::from_millis(250));
}

#[test]
fn ready_steps_start_in_declaration_order() {
    let t = Test::new().file(
        "r.yaml",
        book(
            "  - id: e\n    run: { shell: sh, script: echo e >> log }\n  - id: b\n    run: { shell: sh, script: echo b >> log }\n  - id: d\n    needs: [e]\n    run: { shell: sh, script: echo d >> log }\n  - id: a\n    run: { shell: sh, script: echo a >> log }\n  - id: c\n    needs: [b]\n    run: { shell: sh, script: echo c >> log }\n",
        ),
    );
    let t = t.args(["run", "r.yaml", "--concurrency", "1"]);
    let out = t.run();
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    // e, b, a are ready first (declaration order); d and c become ready as e and b finish,
    // and d is declared before a but is not ready before e completes.
    assert_eq!(t.read("log"), "e\nb\nd\na\nc\n");
}

#[test]
fn independent_steps_overlap() {
    let steps: String = (0..4)
        .map(|i| format!("  - id: s{i}\n    run: {{ program: sleep, args: ['1'] }}\n"))
        .collect();
    let out = Test::new()
        .file("p.yaml", book(&steps))
        .args(["run", "p.yaml", "--output", "json"])
        .run();
    assert_eq!(out.code, 0, "{}", out.stderr);
    let events = out.events();
    let kinds: Vec<&str> = events
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .filter(|k| k.starts_with("step_"))
        .collect();
    // All four start before any finishes.
    assert_eq!(
        kinds,
        [
            "step_started",
            "step_started",
            "step_started",
            "step_started",
            "step_finished",
            "step_finished",
            "step_finished",
            "step_finished"
        ]
    );
    let run = events_of(&events, "run_finished")[0]["duration_ms"]
        .as_u64()
        .unwrap();
    assert!(run < 2_500, "four 1s sleeps in parallel took {run} ms");
}

#[test]
fn retries_with_exponential_backoff() {
    let out = Test::new()
        .file(
            "r.yaml",
            book("  - id: flaky\n    run: { shell: sh, script: exit 7 }\n    retry: { attempts: 3, delay: 200ms, backoff: exponential }\n"),
        )
        .args(["run", "r.yaml", "--output", "json"])
        .run();
    assert_eq!(out.code, 1);
    let events = out.events();
    let starts = events_of(&events, "step_started");
    assert_eq!(starts.len(), 3);
    let failed = events_of(&events, "attempt_failed");
    let delays: Vec<Option<u64>> = failed.iter().map(|e| e["retry_in_ms"].as_u64()).collect();
    assert_eq!(delays, [Some(200), Some(400), None]);
    assert_eq!(
        failed[0]["reason"],
        serde_json::json!({ "kind": "exit", "code": 7 })
    );
    let gap1 = gap(starts[0], starts[1]);
    let gap2 = gap(starts[1], starts[2]);
    assert!(
        gap1 >= Duration::from_millis(195) && gap1 < Duration::from_millis(1500),
        "{gap1:?}"
    );
    assert!(
        gap2 >= Duration::from_millis(395) && gap2 < Duration::from_millis(2000),
        "{gap2:?}"
    );
    let finished = events_of(&events, "step_finished")[0];
    assert_eq!(finished["attempts"], 3);
    assert_eq!(finished["status"], "failed");
}

#[test]
fn retry_on_exit_codes_only() {
    let out = Test::new()
        .file(
            "r.yaml",
            book("  - id: s\n    run: { shell: sh, script: exit 2 }\n    retry: { attempts: 5, on: { exit_codes: [75] } }\n"),
        )
        .args(["run", "r.yaml", "--output", "json"])
        .run();
    assert_eq!(out.code, 1);
    assert_eq!(
        events_of(&out.events(), "step_started").len(),
        1,
        "exit 2 is not retried"
    );
}

#[test]
fn until_polls_until_true() {
    let t = Test::new().file(
        "u.yaml",
        book("  - id: poll\n    run: { shell: sh, script: 'echo x >> n; wc -l < n' }\n    until: result.stdout | trim == '3'\n    retry: { attempts: 5, delay: 10ms }\n    outputs: { count: '{{ result.stdout | trim }}' }\n  - id: after\n    needs: [poll]\n    run: { shell: sh, script: 'echo {{ steps.poll.outputs.count }} > out' }\n"),
    );
    let t = t.args(["run", "u.yaml", "--output", "json"]);
    let out = t.run();
    assert_eq!(out.code, 0, "{}", out.stdout);
    let events = out.events();
    assert_eq!(events_of(&events, "step_finished")[0]["attempts"], 3);
    assert_eq!(t.read("out"), "3\n");
}

/// Whether a process is still running (a zombie waiting to be reaped is not).
fn alive(pid: &str) -> bool {
    let pid: i32 = pid.trim().parse().expect("pid");
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the parenthesised command name.
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| !rest.trim_start().starts_with(['Z', 'X'])),
        Err(_) => false,
    }
}

/// A killed process is gone within two seconds (SIGKILL is delivered asynchronously).
fn assert_gone_soon(pid: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    while alive(pid) {
        assert!(
            std::time::Instant::now() < deadline,
            "process {pid} still alive 2 s after its run ended"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn step_timeout_kills_the_whole_process_group() {
    let t = Test::new().file(
        "t.yaml",
        book("  - id: hang\n    timeout: 500ms\n    run: { shell: sh, script: 'sleep 30 & echo $! > grandchild; wait' }\n"),
    );
    let t = t.args(["run", "t.yaml", "--output", "json"]);
    let out = t.run();
    assert_eq!(out.code, 1);
    let events = out.events();
    assert_eq!(
        events_of(&events, "attempt_failed")[0]["reason"],
        serde_json::json!({ "kind": "timeout" })
    );
    wait_until("the grandchild is gone", || !alive(&t.read("grandchild")));
}

#[test]
fn timeout_is_retried_when_declared() {
    let out = Test::new()
        .file(
            "t.yaml",
            book("  - id: slow\n    timeout: 200ms\n    run: { program: sleep, args: ['5'] }\n    retry: { attempts: 2, on: { timeout: true } }\n"),
        )
        .args(["run", "t.yaml", "--output", "json"])
        .run();
    assert_eq!(out.code, 1);
    assert_eq!(events_of(&out.events(), "step_started").len(), 2);
}

#[test]
fn run_timeout_stops_the_run_and_kills_grandchildren() {
    let t = Test::new().file(
        "t.yaml",
        "runbook: 1\nname: t\ntimeout: 700ms\nsteps:\n  - id: first\n    run: { shell: sh, script: echo ok }\n    rollback: { run: { shell: sh, script: echo undone > undone } }\n  - id: hang\n    needs: [first]\n    run: { shell: sh, script: 'sleep 30 & echo $! > grandchild; wait' }\n",
    );
    let t = t.args(["run", "t.yaml"]);
    let out = t.run();
    assert_eq!(out.code, 1, "{}", out.stdout);
    assert!(
        out.stdout.contains("the run timed out after 700ms"),
        "{}",
        out.stdout
    );
    assert_eq!(t.read("undone"), "undone\n");
    wait_until("the grandchild is gone", || !alive(&t.read("grandchild")));
}

const ROLLBACKS: &str = "  - id: a\n    run: { shell: sh, script: echo a >> log }\n    rollback: { run: { shell: sh, script: echo undo-a >> log } }\n  - id: b\n    needs: [a]\n    run: { shell: sh, script: echo b >> log }\n    rollback: { run: { shell: sh, script: echo undo-b >> log } }\n  - id: c\n    needs: [a]\n    run: { shell: sh, script: echo c >> log }\n  - id: d\n    needs: [b, c]\n    run: { shell: sh, script: echo d >> log }\n    rollback: { run: { shell: sh, script: echo undo-d >> log } }\n  - id: e\n    needs: [d]\n    run: { shell: sh, script: exit 1 }\n";

#[test]
fn rollback_runs_in_reverse_completion_order() {
    let t = Test::new().file("r.yaml", book(ROLLBACKS));
    let t = t.args(["run", "r.yaml", "--concurrency", "1"]);
    let out = t.run();
    assert_eq!(out.code, 1, "{}", out.stdout);
    assert_eq!(t.read("log"), "a\nb\nc\nd\nundo-d\nundo-b\nundo-a\n");
    assert!(
        out.stdout
            .contains("Not rolled back (no rollback declared): c\n")
    );
    assert!(
        out.stdout
            .contains("Outcome: step `e` failed; rolled back (exit 1)")
    );
}

#[test]
fn no_rollback_leaves_everything_for_inspection() {
    let t = Test::new().file("r.yaml", book(ROLLBACKS));
    let t = t.args(["run", "r.yaml", "--concurrency", "1", "--no-rollback"]);
    let out = t.run();
    assert_eq!(out.code, 1);
    assert_eq!(t.read("log"), "a\nb\nc\nd\n");
}

#[test]
fn irreversible_step_stops_rollback_of_itself_and_its_ancestors() {
    let steps = ROLLBACKS.replace(
        "  - id: c\n    needs: [a]\n",
        "  - id: c\n    needs: [a]\n    irreversible: true\n",
    );
    let t = Test::new().file("r.yaml", book(&steps));
    let t = t.args(["run", "r.yaml", "--concurrency", "1"]);
    let out = t.run();
    assert_eq!(out.code, 3, "{}", out.stdout);
    // d is not behind c's ancestors... d needs c, so d is rolled back; a is c's ancestor.
    assert_eq!(t.read("log"), "a\nb\nc\nd\nundo-d\nundo-b\n");
    assert!(
        out.stdout.contains("a (behind irreversible step `c`)"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("ACTION NEEDED"));
}

#[test]
fn failing_rollback_does_not_stop_the_others_and_needs_a_person() {
    let steps = ROLLBACKS.replace("echo undo-b >> log", "echo undo-b >> log; exit 1");
    let t = Test::new().file("r.yaml", book(&steps));
    let t = t.args(["run", "r.yaml", "--concurrency", "1"]);
    let out = t.run();
    assert_eq!(out.code, 3);
    assert_eq!(t.read("log"), "a\nb\nc\nd\nundo-d\nundo-b\nundo-a\n");
    assert!(out.stdout.contains("rollback incomplete"), "{}", out.stdout);
}

#[test]
fn continue_on_failure_lets_dependents_run() {
    let t = Test::new().file(
        "c.yaml",
        book("  - id: optional\n    continue_on_failure: true\n    run: { shell: sh, script: exit 4 }\n  - id: next\n    needs: [optional]\n    run: { shell: sh, script: 'echo {{ steps.optional.status }} {{ steps.optional.exit_code }} > seen' }\n"),
    );
    let t = t.args(["run", "c.yaml"]);
    let out = t.run();
    assert_eq!(out.code, 0, "{}", out.stdout);
    assert_eq!(t.read("seen"), "failed 4\n");
    assert!(out.stdout.contains("succeeded with 1 tolerated failure(s)"));
}

#[test]
fn when_false_skips_without_failing_dependents() {
    let t = Test::new().file(
        "w.yaml",
        "runbook: 1\nname: t\nparams:\n  reachable: { type: bool, default: false }\nsteps:\n  - id: tail-log\n    when: params.reachable\n    run: { shell: sh, script: echo tail >> log }\n  - id: restore\n    needs: [tail-log]\n    run: { shell: sh, script: echo restore >> log }\n",
    );
    let t = t.args(["run", "w.yaml"]);
    let out = t.run();
    assert_eq!(out.code, 0, "{}", out.stdout);
    assert_eq!(t.read("log"), "restore\n");
    assert!(
        out.stdout
            .contains("tail-log skipped: when `params.reachable` is false")
    );
}

const APPROVAL: &str = "  - id: first\n    run: { shell: sh, script: echo ran >> log }\n  - id: confirm\n    needs: [first]\n    approval: { prompt: Go on? }\n  - id: last\n    needs: [confirm]\n    run: { shell: sh, script: echo last >> log }\n";

#[test]
fn missing_approval_fails_before_the_first_step() {
    let t = Test::new().file("a.yaml", book(APPROVAL));
    let t = t.args(["run", "a.yaml"]);
    let out = t.run();
    assert_eq!(out.code, 2);
    assert!(
        out.stderr
            .contains("approvals needed and no terminal to ask on: confirm"),
        "{}",
        out.stderr
    );
    assert_eq!(t.read("log"), "", "nothing may run");
}

/// Regression: a run with a conditional stop for a person (`fix-*` under `when`) could not
/// start without a terminal unless that stop was approved up front, which defeats it.
#[test]
fn an_approval_under_when_is_asked_only_if_reached() {
    let conditional = "  - id: first\n    continue_on_failure: true\n    run: { shell: sh, script: \"echo ran >> log; exit $FAIL\" }\n  - id: fix-first\n    needs: [first]\n    when: \"steps['first'].status == 'failed'\"\n    approval: { prompt: Fixed by hand? }\n  - id: last\n    needs: [fix-first]\n    run: { shell: sh, script: echo last >> log }\n";
    let t = Test::new().file("a.yaml", book(conditional));
    // Not reached: the run goes on.
    let out = Test::in_dir(t.path())
        .env("FAIL", "0")
        .args(["run", "a.yaml"])
        .run();
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert_eq!(t.read("log"), "ran\nlast\n");
    // Reached: the run stops there, not approved.
    let out = Test::in_dir(t.path())
        .env("FAIL", "1")
        .args(["run", "a.yaml"])
        .run();
    assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stdout
            .contains("not approved: no terminal to ask on (use --approve or --approve-all)"),
        "{}",
        out.stdout
    );
    assert_eq!(
        t.read("log"),
        "ran\nlast\nran\n",
        "nothing after the stop ran"
    );
}

#[test]
fn approval_given_up_front_is_recorded() {
    let t = Test::new().file("a.yaml", book(APPROVAL));
    let t = t
        .args(["run", "a.yaml", "--approve", "confirm", "--output", "json"])
        .env("USER", "alice");
    let out = t.run();
    assert_eq!(out.code, 0, "{}", out.stderr);
    let events = out.events();
    let approved = events_of(&events, "approved")[0];
    // `$USER` says alice; the record names the real user.
    assert_eq!(approved["by"], crate::support::os_user().as_str());
    assert_eq!(approved["how"], "--approve");
    assert_eq!(t.read("log"), "ran\nlast\n");
}

const SECRET: &str = "hunter2-Zq9";

#[test]
fn secrets_are_masked_on_every_channel() {
    let yaml = "runbook: 1\nname: t\nsecrets:\n  pw: { env: T_PW }\nsteps:\n  - id: use\n    env: { PW: '{{ secrets.pw }}' }\n    run: { shell: sh, script: 'echo \"pw is {{ secrets.pw }}\"; echo \"err $PW\" >&2; exit 1' }\n";
    for args in [
        vec!["run", "s.yaml"],
        vec!["run", "s.yaml", "--output", "json"],
        vec!["plan", "s.yaml"],
        vec!["plan", "s.yaml", "--format", "json"],
        vec!["plan", "s.yaml", "--format", "markdown"],
    ] {
        let out = Test::new()
            .file("s.yaml", yaml)
            .env("T_PW", SECRET)
            .args(args.clone())
            .run();
        assert!(
            !out.stdout.contains(SECRET),
            "{args:?} leaks on stdout:\n{}",
            out.stdout
        );
        assert!(
            !out.stderr.contains(SECRET),
            "{args:?} leaks on stderr:\n{}",
            out.stderr
        );
        assert!(out.stdout.contains("***"), "{args:?}: {}", out.stdout);
    }
}

#[test]
fn secret_in_an_error_message_is_masked() {
    // The template error quotes the value it could not use.
    let yaml = "runbook: 1\nname: t\nsecrets:\n  pw: { env: T_PW }\nsteps:\n  - id: use\n    assert:\n      that: secrets.pw == 'nope'\n      message: \"wrong password {{ secrets.pw }}\"\n";
    let out = Test::new()
        .file("s.yaml", yaml)
        .env("T_PW", SECRET)
        .args(["run", "s.yaml"])
        .run();
    assert_eq!(out.code, 1);
    assert!(out.stdout.contains("wrong password ***"), "{}", out.stdout);
    assert!(!out.stdout.contains(SECRET));
}

#[test]
fn missing_secret_fails_before_anything_runs() {
    let t = Test::new().file(
        "s.yaml",
        "runbook: 1\nname: t\nsecrets:\n  pw: { env: T_UNSET_PW }\nsteps:\n  - id: use\n    run: { shell: sh, script: 'echo {{ secrets.pw }} > log' }\n",
    );
    let t = t.args(["run", "s.yaml"]);
    let out = t.run();
    assert_eq!(out.code, 2);
    assert!(
        out.stderr
            .contains("secret `pw`: environment variable `T_UNSET_PW` is not set")
    );
    assert_eq!(t.read("log"), "");
}

#[test]
fn params_are_typed_and_all_problems_are_listed() {
    let yaml = "runbook: 1\nname: t\nparams:\n  count: { type: int }\n  flag: { type: bool, default: false }\n  names: { type: list, default: [] }\n  db: { default: mgc, pattern: '[a-z]+' }\nsteps:\n  - id: s\n    run: { shell: sh, script: 'echo {{ params.count + 1 }} {{ params.flag }} {{ params.names | join(\",\") }} {{ params.db }} > out' }\n";
    let t = Test::new()
        .file("p.yaml", yaml)
        .file("values.yaml", "db: other\nnames: [x, y]\n");
    let t = t.args([
        "run",
        "p.yaml",
        "-p",
        "count=41",
        "-p",
        "flag=true",
        "--params",
        "values.yaml",
    ]);
    let out = t.run();
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(t.read("out"), "42 true x,y other\n");

    let out = Test::new()
        .file("p.yaml", yaml)
        .args([
            "run",
            "p.yaml",
            "-p",
            "flag=maybe",
            "-p",
            "db=UPPER",
            "-p",
            "cuont=1",
        ])
        .run();
    assert_eq!(out.code, 2);
    for expected in [
        "param `flag`: expected true or false, found `maybe`",
        "unknown param `cuont`; did you mean `count`?",
        "missing required param `count`",
        "param `db`: `UPPER` does not match the pattern `[a-z]+`",
    ] {
        assert!(
            out.stderr.contains(expected),
            "missing {expected:?} in:\n{}",
            out.stderr
        );
    }
}

#[test]
fn invalid_runbook_exits_2_without_running() {
    let t = Test::new().file(
        "bad.yaml",
        book("  - id: a\n    needs: [nope]\n    run: { shell: sh, script: echo x > log }\n"),
    );
    let t = t.args(["run", "bad.yaml"]);
    let out = t.run();
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("step `a` needs unknown step `nope`"));
    assert_eq!(t.read("log"), "");
}

#[test]
fn interrupt_cancels_in_flight_steps_then_rolls_back() {
    use std::io::{BufRead, BufReader};
    let t = Test::new().file(
        "i.yaml",
        book("  - id: first\n    run: { shell: sh, script: echo first >> log }\n    rollback: { run: { shell: sh, script: echo undo-first >> log } }\n  - id: long\n    needs: [first]\n    run: { shell: sh, script: 'sleep 30 & echo $! > grandchild; wait' }\n"),
    );
    let t = t.args(["run", "i.yaml", "--output", "json"]);
    let mut child = t
        .command()
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    for line in lines.by_ref() {
        let line = line.unwrap();
        if line.contains("\"step_started\"") && line.contains("\"long\"") {
            break;
        }
    }
    wait_until("the script records its grandchild", || {
        !t.read("grandchild").is_empty()
    });
    // SAFETY: sends SIGINT to the child we spawned.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGINT);
    }
    let rest: Vec<String> = lines.map(|l| l.unwrap()).collect();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "{rest:?}");
    assert_eq!(t.read("log"), "first\nundo-first\n");
    assert_gone_soon(&t.read("grandchild"));
    assert!(rest.iter().any(|l| l.contains("\"cancelled\"")), "{rest:?}");
}

#[test]
fn output_is_capped_with_a_visible_marker() {
    let t = Test::new().file(
        "o.yaml",
        book("  - id: loud\n    run: { shell: sh, script: 'head -c 3000000 /dev/zero | tr \"\\\\0\" x' }\n  - id: size\n    needs: [loud]\n    run: { shell: sh, script: 'echo \"{{ steps.loud.stdout | length }}\" > n' }\n"),
    );
    let t = t.args(["run", "o.yaml"]);
    let out = t.run();
    assert_eq!(out.code, 0, "{}", out.stderr);
    let n: usize = t.read("n").trim().parse().unwrap();
    assert!(n > 1_048_576 && n < 1_048_700, "kept {n} characters");
}

#[test]
fn second_interrupt_exits_at_once_and_says_what_is_left() {
    use std::io::{BufRead, BufReader};
    let t = Test::new().file(
        "i.yaml",
        book("  - id: first\n    run: { shell: sh, script: echo first >> log }\n    rollback: { run: { shell: sh, script: echo undo-first >> log } }\n  - id: second\n    needs: [first]\n    run: { shell: sh, script: echo second >> log }\n    rollback: { run: { shell: sh, script: 'sleep 30 & echo $! > grandchild; wait' } }\n  - id: third\n    needs: [second]\n    run: { shell: sh, script: exit 1 }\n"),
    );
    let t = t.args(["run", "i.yaml", "--output", "json"]);
    let mut child = t
        .command()
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    for line in lines.by_ref() {
        if line.unwrap().contains("\"rollback_step_started\"") {
            break;
        }
    }
    wait_until("the script records its grandchild", || {
        !t.read("grandchild").is_empty()
    });
    let stderr = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let reader = {
        let stderr = stderr.clone();
        let pipe = BufReader::new(child.stderr.take().unwrap());
        std::thread::spawn(move || {
            for line in pipe.lines().map_while(Result::ok) {
                let mut text = stderr.lock().unwrap();
                text.push_str(&line);
                text.push('\n');
            }
        })
    };
    // SAFETY (both): sends SIGINT to the child we spawned. The second only once the first
    // was taken: signals sent together arrive as one.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGINT);
    }
    wait_until("the first interrupt is journaled", || {
        journal_has_event(t.path(), "interrupted")
    });
    unsafe {
        libc::kill(child.id() as i32, libc::SIGINT);
    }
    let status = child.wait().unwrap();
    reader.join().unwrap();
    let stderr = stderr.lock().unwrap().clone();
    assert_eq!(status.code(), Some(130), "{stderr}");
    assert!(
        stderr
            .contains("Steps killed while running: rollback of second. Rollbacks not run: first."),
        "{stderr}"
    );
    assert_eq!(
        t.read("log"),
        "first\nsecond\n",
        "undo-first must not have run"
    );
    assert_gone_soon(&t.read("grandchild"));
}

#[test]
fn approval_on_a_terminal_asks_and_records_who() {
    // `script` gives the run a terminal; "y" is typed at the prompt.
    let t = Test::new().file("a.yaml", book(APPROVAL));
    let (code, stdout) = on_terminal(&t, "run a.yaml --output json", "bob", b"y\n");
    assert_eq!(code, Some(0), "{stdout}");
    assert!(stdout.contains("Go on? [y/N]"), "{stdout}");
    assert!(
        stdout.contains(&format!(
            r#""event":"approved","step":"confirm","by":"{}","how":"terminal""#,
            crate::support::os_user()
        )),
        "{stdout}"
    );
    assert_eq!(t.read("log"), "ran\nlast\n");
}

#[test]
fn approval_refused_on_a_terminal_fails_and_rolls_back() {
    let steps = APPROVAL.replace(
        "echo ran >> log }\n",
        "echo ran >> log }\n    rollback: { run: { shell: sh, script: echo undo >> log } }\n",
    );
    let t = Test::new().file("a.yaml", book(&steps));
    let (code, stdout) = on_terminal(
        &t,
        "run a.yaml",
        "bob",
        b"n
",
    );
    assert_eq!(code, Some(1), "{stdout}");
    assert!(stdout.contains("refused at the prompt"), "{stdout}");
    assert_eq!(t.read("log"), "ran\nundo\n");
}

#[test]
fn jitter_keeps_each_delay_within_its_bound() {
    let out = Test::new()
        .file(
            "j.yaml",
            book("  - id: s\n    run: { shell: sh, script: exit 1 }\n    retry: { attempts: 4, delay: 100ms, backoff: exponential, max_delay: 150ms, jitter: true }\n"),
        )
        .args(["run", "j.yaml", "--output", "json"])
        .run();
    assert_eq!(out.code, 1);
    let delays: Vec<u64> = events_of(&out.events(), "attempt_failed")
        .iter()
        .filter_map(|e| e["retry_in_ms"].as_u64())
        .collect();
    assert_eq!(delays.len(), 3);
    // Full jitter: 0..=100, then 0..=150 (200 capped), 0..=150.
    assert!(
        delays[0] <= 100 && delays[1] <= 150 && delays[2] <= 150,
        "{delays:?}"
    );
}

#[test]
fn cwd_and_env_reach_the_command() {
    let t = Test::new()
        .file("c.yaml", book("  - id: s\n    env: { GREETING: 'hi {{ params.who }}' }\n    run: { shell: sh, script: 'pwd > ../where; echo \"$GREETING\" > ../what', cwd: sub }\n").replace("steps:", "params:\n  who: { default: there }\nsteps:"))
        .file("sub/.keep", "");
    let t = t.args(["run", "c.yaml"]);
    let out = t.run();
    assert_eq!(out.code, 0, "{}", out.stdout);
    assert!(
        t.read("where").trim_end().ends_with("/sub"),
        "{}",
        t.read("where")
    );
    assert_eq!(t.read("what"), "hi there\n");
}
