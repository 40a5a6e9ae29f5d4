//! `notify:` hooks: run on chosen events with the event as JSON on stdin (masked), bounded by a
//! timeout; a failing, hanging or missing hook is reported and never changes the outcome;
//! never run by `plan`.

use std::time::{Duration, Instant};

use crate::support::{Test, journal_has_event, on_terminal, os_user, wait_until};

/// A hook appending its stdin to `events.jsonl`, on `events`.
fn recorder(events: &str) -> String {
    format!(
        "notify:\n  - on: [{events}]\n    run: {{ shell: sh, script: \"cat >> events.jsonl\" }}\n"
    )
}

fn delivered(t: &Test) -> Vec<serde_json::Value> {
    t.read("events.jsonl")
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

const EVERY: &str = "approval_needed, step_failed, needs_person, finished, interrupted";

#[test]
fn step_failed_and_finished_arrive_as_json_with_the_run() {
    let yaml = format!(
        "runbook: 1\nname: fails\n{}steps:\n  - id: ok\n    run: {{ program: \"true\" }}\n  - id: boom\n    needs: [ok]\n    run: {{ shell: sh, script: \"exit 3\" }}\n",
        recorder(EVERY)
    );
    let t = Test::new()
        .file("a.yaml", yaml)
        .args(["run", "a.yaml", "--output", "json"]);
    let out = t.run();
    assert_eq!(out.code, 1, "{}", out.stderr);
    let run_id = out.events()[0]["run_id"]
        .as_str()
        .expect("run id")
        .to_owned();
    let events = delivered(&t);
    assert_eq!(events.len(), 2, "{events:?}\n{}", out.stdout);
    let failed = &events[0];
    assert_eq!(failed["event"], "step_failed");
    assert_eq!(failed["step"], "boom");
    assert_eq!(failed["exit_code"], 3);
    assert_eq!(failed["attempts"], 1);
    assert_eq!(failed["message"], "exit code 3");
    let finished = &events[1];
    assert_eq!(finished["event"], "finished");
    assert_eq!(finished["exit_code"], 1);
    assert!(
        finished["status"]
            .as_str()
            .is_some_and(|s| s.contains("boom"))
    );
    for e in &events {
        assert_eq!(e["run_id"], run_id.as_str());
        assert_eq!(e["runbook"], "fails");
        assert!(e["at"].as_str().is_some_and(|a| a.ends_with('Z')), "{e}");
    }
}

#[test]
fn needs_person_arrives_when_a_rollback_fails() {
    let yaml = format!(
        "runbook: 1\nname: stuck\n{}steps:\n  - id: a\n    run: {{ program: \"true\" }}\n    rollback: {{ run: {{ program: \"false\" }} }}\n  - id: b\n    needs: [a]\n    run: {{ program: \"false\" }}\n",
        recorder("needs_person")
    );
    let t = Test::new().file("a.yaml", yaml).args(["run", "a.yaml"]);
    let out = t.run();
    assert_eq!(out.code, 3, "{}", out.stdout);
    let events = delivered(&t);
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["event"], "needs_person");
    assert_eq!(events[0]["exit_code"], 3);
}

#[test]
fn a_successful_run_only_says_finished() {
    let yaml = format!(
        "runbook: 1\nname: fine\n{}steps:\n  - id: a\n    run: {{ program: \"true\" }}\n",
        recorder(EVERY)
    );
    let t = Test::new().file("a.yaml", yaml).args(["run", "a.yaml"]);
    assert_eq!(t.run().code, 0);
    let events = delivered(&t);
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["event"], "finished");
    assert_eq!(events[0]["status"], "succeeded");
    assert_eq!(events[0]["exit_code"], 0);
}

#[test]
fn interrupted_arrives_with_its_signal() {
    let yaml = format!(
        "runbook: 1\nname: long\n{}steps:\n  - id: wait\n    run: {{ shell: sh, script: \"touch started; sleep 30\" }}\n",
        recorder("interrupted, finished")
    );
    let t = Test::new().file("a.yaml", yaml).args(["run", "a.yaml"]);
    let mut child = crate::support::spawn(&t);
    wait_until("the step runs", || t.path().join("started").exists());
    // SAFETY: kill with a child's pid.
    unsafe {
        libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
    }
    let status = child.wait().expect("wait");
    assert_eq!(status.code(), Some(130));
    let events = delivered(&t);
    let names: Vec<&str> = events.iter().filter_map(|e| e["event"].as_str()).collect();
    assert_eq!(names, ["interrupted", "finished"], "{events:?}");
    assert_eq!(events[0]["signal"], "SIGTERM");
    assert_eq!(events[1]["exit_code"], 130);
}

#[test]
fn approval_needed_arrives_before_the_person_is_asked() {
    let yaml = format!(
        "runbook: 1\nname: asks\n{}steps:\n  - id: go-ahead\n    approval: {{ prompt: \"Fail over mgc?\" }}\n",
        recorder("approval_needed")
    );
    let t = Test::new().file("a.yaml", yaml);
    let (code, screen) = on_terminal(&t, "run a.yaml", &os_user(), b"y\n");
    assert_eq!(code, Some(0), "{screen}");
    let events = delivered(&t);
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["event"], "approval_needed");
    assert_eq!(events[0]["step"], "go-ahead");
    assert_eq!(events[0]["prompt"], "Fail over mgc?");
    // Approved up front: nobody is asked, nobody is told.
    let t = Test::new().file("b.yaml", t.read("a.yaml")).args([
        "run",
        "b.yaml",
        "--approve",
        "go-ahead",
    ]);
    assert_eq!(t.run().code, 0);
    assert!(delivered(&t).is_empty());
}

#[test]
fn secrets_in_an_event_are_masked_on_the_hooks_stdin() {
    let yaml = format!(
        "runbook: 1\nname: masked\nsecrets:\n  token: {{ env: TOKEN }}\n  pin: {{ env: PIN }}\n{}steps:\n  - id: check\n    continue_on_failure: true\n    assert: {{ that: \"false\", message: \"token {{{{ secrets.token }}}} refused\" }}\n  - id: short\n    assert: {{ that: \"false\", message: \"{{{{ secrets.pin }}}}\" }}\n",
        recorder("step_failed")
    );
    let t = Test::new()
        .file("a.yaml", yaml)
        .env("TOKEN", "hunter2")
        .env("PIN", "7")
        .args(["run", "a.yaml", "--concurrency", "1"]);
    let out = t.run();
    assert_eq!(out.code, 1, "{}", out.stdout);
    let text = t.read("events.jsonl");
    assert!(!text.contains("hunter2"), "{text}");
    let messages: Vec<String> = delivered(&t)
        .iter()
        .filter_map(|e| e["message"].as_str().map(str::to_owned))
        .collect();
    assert!(
        messages.contains(&"token *** refused".to_owned()),
        "{messages:?}"
    );
    assert!(messages.contains(&"***".to_owned()), "{messages:?}");
}

#[test]
fn failing_hanging_and_missing_hooks_are_reported_and_change_nothing() {
    let hooks = "notify:\n  - on: [finished]\n    run: { program: \"false\" }\n  - on: [finished, step_failed]\n    timeout: 300ms\n    run: { shell: sh, script: \"echo $$ > hung; sleep 30\" }\n  - on: [finished]\n    run: { program: ./no-such-hook }\n";
    for (body, code) in [
        ("  - id: a\n    run: { program: \"true\" }\n", 0),
        ("  - id: a\n    run: { program: \"false\" }\n", 1),
    ] {
        let plain = Test::new()
            .file("a.yaml", format!("runbook: 1\nname: h\nsteps:\n{body}"))
            .args(["run", "a.yaml"])
            .run();
        assert_eq!(plain.code, code, "{}", plain.stdout);
        let t = Test::new()
            .file(
                "a.yaml",
                format!("runbook: 1\nname: h\n{hooks}steps:\n{body}"),
            )
            .args(["run", "a.yaml"]);
        let started = Instant::now();
        let out = t.run();
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "a hook held the run"
        );
        assert_eq!(out.code, code, "{}", out.stdout);
        assert!(
            out.stdout
                .contains("warning: notify hook #1 (on finished) failed: exit code 1"),
            "{}",
            out.stdout
        );
        assert!(
            out.stdout
                .contains("warning: notify hook #2 (on finished) failed: timed out after 300ms"),
            "{}",
            out.stdout
        );
        assert!(
            out.stdout
                .contains("warning: notify hook #3 (on finished) failed: cannot start"),
            "{}",
            out.stdout
        );
        assert!(journal_has_event(t.path(), "notify_failed"));
        // The hanging hook was ended, not left behind.
        let pid: i32 = t.read("hung").trim().parse().expect("the hook's pid");
        // SAFETY: signal 0 only checks.
        wait_until(
            "the hung hook is gone",
            || unsafe { libc::kill(pid, 0) } != 0,
        );
    }
}

#[test]
fn plan_and_dry_run_run_no_hook() {
    let yaml = format!(
        "runbook: 1\nname: dry\n{}steps:\n  - id: a\n    run: {{ program: \"false\" }}\n",
        recorder(EVERY)
    );
    let t = Test::new().file("a.yaml", yaml);
    for args in [
        vec!["plan", "a.yaml"],
        vec!["plan", "a.yaml", "--fail-at", "a"],
        vec!["run", "a.yaml", "--dry-run"],
    ] {
        let out = Test::in_dir(t.path()).args(args.clone()).run();
        assert_eq!(out.code, 0, "{args:?}: {}", out.stderr);
    }
    assert!(!t.path().join("events.jsonl").exists());
}

#[test]
fn an_unknown_event_name_is_located_with_a_suggestion() {
    let out = Test::new()
        .file(
            "a.yaml",
            "runbook: 1\nname: a\nnotify:\n  - on: [finished, step_fialed]\n    run: { program: ./hook }\nsteps:\n  - id: s\n    wait: 1ms\n",
        )
        .args(["validate", "a.yaml", "--format", "json"])
        .run();
    assert_eq!(out.code, 1, "{}", out.stdout);
    let diags = out.diags();
    assert_eq!(diags.len(), 1, "{diags:?}");
    assert_eq!(diags[0].line, 4);
    assert_eq!(diags[0].column, 20);
    let json = out.json();
    let help = json["diagnostics"][0]["help"].as_str().unwrap_or_default();
    assert!(help.contains("step_failed"), "{help}");
}

#[test]
fn a_hook_without_on_or_run_is_refused() {
    let out = Test::new()
        .file(
            "a.yaml",
            "runbook: 1\nname: a\nnotify:\n  - run: { program: ./hook }\n  - on: [finished]\n  - on: [finished]\n    run: { program: ./hook }\n    bogus: x\nsteps:\n  - id: s\n    wait: 1ms\n",
        )
        .args(["validate", "a.yaml", "--format", "json"])
        .run();
    assert_eq!(out.code, 1, "{}", out.stdout);
    let codes: Vec<(String, u64)> = out.diags().into_iter().map(|d| (d.code, d.line)).collect();
    assert!(
        codes.contains(&("runbook::missing_field".to_owned(), 4)),
        "{codes:?}"
    );
    assert!(
        codes.contains(&("runbook::missing_field".to_owned(), 5)),
        "{codes:?}"
    );
    assert!(
        codes.contains(&("runbook::unknown_key".to_owned(), 8)),
        "{codes:?}"
    );
}

/// Hooks get their stdin through the supervisor; a step must still get none (never runbook's
/// own stdin, where it could wait for input forever or eat an operator's answers).
#[test]
fn a_step_still_reads_nothing_from_stdin() {
    let t = Test::new()
        .file(
            "a.yaml",
            "runbook: 1\nname: a\nsteps:\n  - id: reads\n    timeout: 10s\n    run: { shell: sh, script: \"cat; echo read-to-the-end\" }\n",
        )
        .args(["run", "a.yaml"]);
    let mut child = t
        .command()
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("spawn runbook");
    // runbook's stdin stays open and silent for the whole run.
    let _stdin = child.stdin.take();
    let started = Instant::now();
    let out = child.wait_with_output().expect("wait");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("reads │ read-to-the-end"), "{stdout}");
    assert!(started.elapsed() < Duration::from_secs(8));
}

/// A multi-party approval tells the hooks once, when its wait begins: who may vote, how many
/// votes it needs and the command an approver runs.
#[test]
fn a_multi_party_approval_tells_the_hooks_who_may_vote_and_how() {
    let yaml = format!(
        "runbook: 1\nname: votes\n{}steps:\n  - id: go-ahead\n    approval: {{ prompt: \"Fail over mgc?\", approvers: [alice, bob, carol], min: 2, timeout: 1s }}\n",
        recorder("approval_needed")
    );
    let t = Test::new().file("a.yaml", yaml).args(["run", "a.yaml"]);
    let out = t.run();
    assert_eq!(out.code, 1, "nobody voted: {}", out.stdout);
    let events = delivered(&t);
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["event"], "approval_needed");
    assert_eq!(events[0]["step"], "go-ahead");
    assert_eq!(events[0]["min"], 2);
    assert_eq!(
        events[0]["approvers"],
        serde_json::json!(["alice", "bob", "carol"])
    );
    let command = events[0]["command"].as_str().unwrap_or_default();
    assert!(command.contains("runbook approve"), "{command}");
}
