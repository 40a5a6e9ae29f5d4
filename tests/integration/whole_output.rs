//! Whole-output snapshots (insta) of what a user reads: `validate`, `plan`, `show`, the live
//! lines of a run and `--help`. Run ids, times, durations, temp paths, pids, hosts and users
//! are replaced by placeholders, so a snapshot changes only when the output does.
//!
//! After an intended change: `INSTA_UPDATE=always cargo test --test integration whole_output`,
//! then review the diff of `tests/integration/snapshots/`. CI (`CI=true`) never writes them.

use std::path::Path;

use crate::support::{Output, Test, repo};

const SMALL: &str = r#"runbook: 1
name: small
description: A small runbook for snapshots
params:
  target: { type: string, default: blue }
steps:
  - id: prepare
    run: { shell: sh, script: "echo preparing {{ params.target }}" }
    rollback: { run: { shell: sh, script: echo unprepare } }
  - id: check
    needs: [prepare]
    assert: "steps.prepare.stdout | trim == 'preparing blue'"
  - id: switch
    needs: [check]
    run: { program: echo, args: [switched] }
"#;

/// One warning and five errors, in one pass.
const BROKEN: &str = r#"runbook: 1
name: broken
params:
  unused: { type: string, default: x }
steps:
  - id: first
    needs: [nope]
    run: { shell: sh, script: "echo {{ params.missing }}" }
  - id: second
    needs: [first]
    run: { shell: sh, script: "echo {{ steps.frist.stdout | shell_qoute }}" }
  - id: second
    run: { program: echo }
"#;

/// A pre-flight with a step of each status `runbook check` reports.
const PREFLIGHT: &str = r#"runbook: 1
name: preflight
params:
  target: { type: string, default: blue }
steps:
  - id: probe-disk
    probe: true
    run: { shell: sh, script: "echo 42" }
    outputs: { free: "{{ result.stdout | trim }}" }
  - id: enough-space
    needs: [probe-disk]
    assert: "steps['probe-disk'].outputs.free | int > 10"
  - id: only-on-green
    needs: [probe-disk]
    when: "params.target == 'green'"
    run: { program: echo, args: [green] }
  - id: approve
    needs: [enough-space]
    approval: { prompt: "Switch to {{ params.target }}?" }
  - id: switch
    needs: [approve]
    run: { program: echo, args: [switch] }
    rehearse: { run: { shell: sh, script: "echo cannot reach the switch >&2; exit 4" } }
  - id: stamp
    needs: [approve]
    run: { shell: sh, script: "date +%s" }
  - id: show-stamp
    needs: [stamp]
    probe: true
    run: { program: echo, args: ["{{ steps.stamp.stdout }}"] }
finally:
  - id: cleanup
    run: { program: "true" }
    rehearse: { run: { program: "true" } }
"#;

/// Placeholders for what changes from one run, machine or user to the next.
fn settings(dir: &Path) -> insta::Settings {
    let mut settings = insta::Settings::clone_current();
    settings.set_prepend_module_to_snapshot(false);
    settings.set_omit_expression(true);
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let canonical = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    let mut filters: Vec<(String, &str)> = vec![
        (regex::escape(&canonical.display().to_string()), "[TEMP]"),
        (regex::escape(&dir.display().to_string()), "[TEMP]"),
        (regex::escape(&repo().display().to_string()), "[REPO]"),
        (r"\d{8}T\d{6}-[0-9a-f]{4}".into(), "[RUN_ID]"),
        (
            r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z?".into(),
            "[TIMESTAMP]",
        ),
        (r"(?m)^\d{2}:\d{2}:\d{2}\b".into(), "[TIME]"),
        // A line of a run's report quoted behind a bar (`runbook test` shows what it searched).
        (r"(│ )\d{2}:\d{2}:\d{2}\b".into(), "$1[TIME]"),
        (r"\(\d+\.\d+s\)".into(), "([DURATION])"),
        (r" +\d+\.\d+s\b".into(), " [DURATION]"),
        (r#"time="\d+(\.\d+)?""#.into(), r#"time="[DURATION]""#),
        (
            r#""duration_ms": ?\d+"#.into(),
            r#""duration_ms": "[DURATION]""#,
        ),
        (r#""(pid|pgid)": ?\d+"#.into(), r#""$1": "[PID]""#),
        (r"\bpid \d+".into(), "pid [PID]"),
        (r#""host": ?"[^"]*""#.into(), r#""host": "[HOST]""#),
        (r#""user": ?"[^"]*""#.into(), r#""user": "[USER]""#),
        (r#""boot_id": ?"[^"]*""#.into(), r#""boot_id": "[BOOT_ID]""#),
        (r"\bby \S+ on \S+ \(pid".into(), "by [USER] on [HOST] (pid"),
        (
            r#""start_time": ?\d+"#.into(),
            r#""start_time": "[START_TIME]""#,
        ),
    ];
    if !hostname.trim().is_empty() {
        filters.push((format!(r"\b{}\b", regex::escape(hostname.trim())), "[HOST]"));
    }
    for (pattern, replacement) in filters {
        settings.add_filter(&pattern, replacement);
    }
    settings
}

/// The exit code, stdout and stderr of one command, as a user sees them.
fn whole(out: &Output) -> String {
    format!(
        "exit code: {}\n----- stdout -----\n{}----- stderr -----\n{}",
        out.code, out.stdout, out.stderr
    )
}

/// Snapshots `runbook ARGS` run in `t`'s directory.
fn snapshot(name: &str, t: Test) {
    let t = t.env("NO_COLOR", "1").env("USER", "operator");
    let out = t.run();
    settings(t.path()).bind(|| insta::assert_snapshot!(name, whole(&out)));
}

/// A completed run of `SMALL` in a scratch directory, for `show`.
fn small_run() -> Test {
    let t = Test::new().file("small.yaml", SMALL);
    let out = Test::in_dir(t.path())
        .env("USER", "operator")
        .args(["run", "small.yaml"])
        .run();
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    t
}

#[test]
fn validate_human_reports_every_problem() {
    snapshot(
        "validate_human",
        Test::new()
            .file("broken.yaml", BROKEN)
            .args(["validate", "broken.yaml"]),
    );
}

#[test]
fn plan_of_a_small_runbook_in_every_format() {
    for format in ["human", "markdown", "json"] {
        snapshot(
            &format!("plan_small_{format}"),
            Test::new()
                .file("small.yaml", SMALL)
                .args(["plan", "small.yaml", "--format", format]),
        );
    }
}

#[test]
fn plan_of_the_persistent_chat_failover_in_every_format() {
    let dir = repo().join("runbooks/persistent-chat");
    for format in ["human", "markdown", "json"] {
        snapshot(
            &format!("plan_failover_{format}"),
            Test::new().args([
                "plan",
                dir.join("failover.yaml").to_str().unwrap(),
                "--params",
                dir.join("params.example.yaml").to_str().unwrap(),
                "--format",
                format,
            ]),
        );
    }
}

#[test]
fn show_of_a_completed_run_in_every_format() {
    let run = small_run();
    for format in ["human", "json", "markdown", "junit"] {
        snapshot(
            &format!("show_{format}"),
            Test::in_dir(run.path()).args(["show", "--last", "--format", format]),
        );
    }
}

#[test]
fn live_lines_of_a_run_not_on_a_terminal() {
    snapshot(
        "run_live_human",
        Test::new()
            .file("small.yaml", SMALL)
            .args(["run", "small.yaml", "--output", "human"]),
    );
}

#[test]
fn help() {
    snapshot("help", Test::new().args(["--help"]));
    snapshot("run_help", Test::new().args(["run", "--help"]));
}

/// Steps' output lines, a poll (one line per attempt) and a rollback that names the steps
/// without one once.
const OUTPUT_POLL_ROLLBACK: &str = r#"runbook: 1
name: lines
steps:
  - id: say
    run: { shell: sh, script: "echo first line; echo second line" }
    rollback: { run: { program: echo, args: [undone] } }
  - id: note
    needs: [say]
    run: { program: "true" }
  - id: poll
    needs: [note]
    retry: { attempts: 3, delay: 10ms }
    run: { program: "true" }
    until: "result.attempt >= 2"
  - id: fail
    needs: [poll]
    run: { shell: sh, script: "echo giving up; exit 3" }
"#;

#[test]
fn live_output_lines_a_poll_and_a_rollback() {
    snapshot(
        "run_output_lines_human",
        Test::new()
            .file("lines.yaml", OUTPUT_POLL_ROLLBACK)
            .args(["run", "lines.yaml"]),
    );
}

#[test]
fn an_estate_lock_refusal() {
    let holder = |name: &str| {
        format!(
            "runbook: 1\nname: {name}\nparams:\n  db: {{ default: mgc }}\nlocks: [\"sql:backup-sql/{{{{ params.db }}}}\"]\nsteps:\n  - id: work\n    run: {{ shell: sh, script: \"touch started; while [ ! -f go ]; do sleep 0.02; done\" }}\n"
        )
    };
    let t = Test::new()
        .file("failover.yaml", holder("failover"))
        .file("failback.yaml", holder("failback"));
    let mut first = crate::support::spawn(&Test::in_dir(t.path()).args(["run", "failover.yaml"]));
    crate::support::wait_until("the failover holds its lock", || {
        t.path().join("started").exists()
    });
    snapshot(
        "run_estate_lock_refused",
        Test::in_dir(t.path()).args(["run", "failback.yaml"]),
    );
    std::fs::write(t.path().join("go"), "").expect("go");
    assert!(first.wait().expect("wait").success());
}

#[test]
fn check_of_a_preflight_in_every_format() {
    for format in ["human", "json", "markdown", "junit"] {
        snapshot(
            &format!("check_{format}"),
            Test::new().file("preflight.yaml", PREFLIGHT).args([
                "check",
                "preflight.yaml",
                "--format",
                format,
            ]),
        );
    }
}
/// A runbook and its tests: one scenario that passes, one that fails on several expectations.
fn tested() -> Test {
    Test::new().file("small.yaml", SMALL).file(
        "small.test.yaml",
        r#"test: 1
runbook: small.yaml
scenarios:
  - name: every step runs
    mocks:
      prepare: { stdout: "preparing blue\n" }
      switch: { stdout: "switched\n" }
    expect:
      ran: [prepare, check, switch]
      exit_code: 0
  - name: expects the wrong order and outcome
    mocks:
      prepare: { stdout: "preparing blue\n" }
      switch: { exit_code: 1 }
      "rollback:prepare": {}
    expect:
      ran: [check, prepare]
      rolled_back: []
      exit_code: 0
      output_lacks: ["preparing"]
"#,
    )
}

#[test]
fn test_results_in_every_format() {
    snapshot("test_human", tested().args(["test", "small.test.yaml"]));
    snapshot(
        "test_junit",
        tested().args(["test", "small.test.yaml", "--format", "junit"]),
    );
}

#[test]
fn a_failing_notify_hook() {
    snapshot(
        "run_notify_failed",
        Test::new()
            .file(
                "hooked.yaml",
                "runbook: 1\nname: hooked\nnotify:\n  - on: [finished]\n    run: { shell: sh, script: \"echo 'curl: (22) The requested URL returned error: 404' >&2; exit 22\" }\nsteps:\n  - id: a\n    run: { program: \"true\" }\n",
            )
            .args(["run", "hooked.yaml"]),
    );
}

#[test]
fn validate_of_a_problem_inside_an_included_group_in_every_format() {
    let group = "group: 1\nname: prechecks\nparams:\n  server: { type: string }\nsteps:\n  - id: check\n    run: { program: echo, args: ['{{ params.sever }}'] }\n";
    let main = "runbook: 1\nname: failover\nsteps:\n  - id: prechecks\n    use: ./groups/prechecks.yaml\n    with: { server: sql2, port: 1433 }\n";
    for format in ["human", "json", "github"] {
        snapshot(
            &format!("validate_group_{format}"),
            Test::new()
                .file("groups/prechecks.yaml", group)
                .file("failover.yaml", main)
                .args(["validate", "--format", format, "failover.yaml"]),
        );
    }
}

#[test]
fn plan_of_the_remote_example_in_every_format() {
    let example = repo().join("runbooks/examples/remote-disk-check.yaml");
    for format in ["human", "markdown", "json"] {
        snapshot(
            &format!("plan_remote_{format}"),
            Test::new().args(["plan", example.to_str().unwrap(), "--format", format]),
        );
    }
}

#[test]
fn a_run_lock_holding_no_run() {
    let t = Test::new().file("small.yaml", SMALL);
    let lock = t.path().join(".runbook/locks/small.lock");
    std::fs::create_dir_all(lock.parent().expect("locks dir")).expect("mkdir");
    std::fs::write(&lock, "").expect("an empty lock file");
    snapshot("run_lock_holding_no_run", t.args(["run", "small.yaml"]));
}

/// A run with an RTO, a retried step and a rollback: the markdown timeline and RTO line.
const RECOVERY: &str = r#"runbook: 1
name: recovery
rto: 1h
service_restored_at: restore
steps:
  - id: restore
    expect: 2m
    run: { program: "true" }
    rollback: { run: { program: "true" } }
  - id: verify
    needs: [restore]
    expect: 30s
    retry: { attempts: 2 }
    run: { shell: sh, script: "exit 3" }
"#;

/// A run of `RECOVERY` (it fails and rolls back) in a scratch directory, for `show`.
fn recovery_run() -> Test {
    let t = Test::new().file("recovery.yaml", RECOVERY);
    let out = Test::in_dir(t.path())
        .args(["run", "recovery.yaml"])
        .env("USER", "operator")
        .run();
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    t
}

#[test]
fn plan_with_an_estimate_and_markdown_show_with_a_timeline() {
    snapshot(
        "plan_estimate_human",
        Test::new()
            .file("recovery.yaml", RECOVERY)
            .args(["plan", "recovery.yaml"]),
    );
    let t = recovery_run();
    snapshot(
        "show_markdown_timeline",
        Test::in_dir(t.path()).args(["show", "--last", "--format", "markdown"]),
    );
}

/// A multi-party approval nobody votes on: what the run prints while it waits (who may
/// approve, the command), what `runs` shows meanwhile, and the refusal when it times out.
#[test]
fn a_run_waiting_for_a_multi_party_approval_and_runs_meanwhile() {
    let yaml = "runbook: 1\nname: two-person\nsteps:\n  - id: prepare\n    run: { program: \"true\" }\n  - id: approve-failover\n    needs: [prepare]\n    approval: { prompt: \"Fail over mgc?\", approvers: [alice, bob, carol], min: 2, timeout: 3s }\n";
    let t = Test::new().file("two.yaml", yaml);
    let run = Test::in_dir(t.path())
        .env("NO_COLOR", "1")
        .args(["run", "two.yaml"]);
    let child = run
        .command()
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start the run");
    crate::support::wait_until("the run waits for votes", || {
        crate::support::journal_has(t.path(), "approval_needed", "approve-failover")
    });
    snapshot(
        "runs_with_a_run_waiting_for_approval",
        Test::in_dir(t.path()).args(["runs"]),
    );
    let out = child.wait_with_output().expect("wait for the run");
    let out = Output {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    settings(t.path())
        .bind(|| insta::assert_snapshot!("run_waiting_for_a_multi_party_approval", whole(&out)));
}

/// The HTML evidence report of `RECOVERY` (a retried step, a rollback, an RTO), with the
/// bars' positions, the measured durations, the user and the pid as placeholders.
#[test]
fn html_show_of_a_run_with_a_retry_and_a_rollback() {
    let t = recovery_run();
    let out = Test::in_dir(t.path())
        .args(["show", "--last", "--format", "html"])
        .run();
    let mut settings = settings(t.path());
    for (pattern, replacement) in [
        (r"left:\d+\.\d+%;width:\d+\.\d+%", "left:[X]%;width:[W]%"),
        (r"left:\d+\.\d+%", "left:[X]%"),
        (r">\d+\.\d+s<", ">[DURATION]<"),
        (r"(OS user\)</th><td>)[^<]*<", "$1[USER]<"),
        (r"(Process</th><td>)\d+<", "$1[PID]<"),
    ] {
        settings.add_filter(pattern, replacement);
    }
    settings.bind(|| insta::assert_snapshot!("show_html", whole(&out)));
}
