//! Crash recovery, the journal and the run commands under attack: a resume or rollback of a
//! live run, a failed rollback action, a torn journal, a full disk, two runs in one second,
//! operator decisions, outputs that fail after a command ran, and approvals.

use std::time::{Duration, Instant};

use crate::support::{Test, events_of, spawn};

fn wait_for(path: &std::path::Path) {
    let started = Instant::now();
    while !path.exists() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{} never appeared",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The exit code a run printed on its `run … (exit N)` line.
fn printed_exit(stdout: &str) -> Option<i32> {
    stdout
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("Outcome: "))
        .and_then(|l| l.rsplit_once("(exit "))
        .and_then(|(_, code)| code.trim_end_matches(')').parse().ok())
}

#[test]
fn resume_or_rollback_of_a_live_run_is_refused_naming_its_pid() {
    let yaml = "runbook: 1\nname: live\nsteps:\n  - id: long\n    run: { shell: sh, script: 'sleep 2; echo long >> log' }\n    rollback: { run: { shell: sh, script: 'echo undo >> log' } }\n";
    let t = Test::new().file("l.yaml", yaml).args(["run", "l.yaml"]);
    let mut child = spawn(&t);
    wait_for(&t.path().join(".runbook/locks/live.lock"));
    // The journal names the run once the lock is taken; give it the moment it needs.
    let started = Instant::now();
    while Test::in_dir(t.path()).args(["show", "--last"]).run().code != 0 {
        assert!(started.elapsed() < Duration::from_secs(5), "no journal");
        std::thread::sleep(Duration::from_millis(10));
    }
    for verb in ["resume", "rollback"] {
        let out = Test::in_dir(t.path()).args([verb, "--last"]).run();
        assert_eq!(out.code, 2, "{verb}: {}{}", out.stdout, out.stderr);
        assert!(
            out.stderr.contains("is still running (pid ")
                && out.stderr.contains(&format!("(pid {} on ", child.id())),
            "{verb}: {}",
            out.stderr
        );
        assert!(!out.stderr.contains("runbook resume"), "{}", out.stderr);
        assert_eq!(out.stdout, "", "{verb} ran something");
    }
    // `show` and `runs` say it is running, and do not advise a resume either.
    let show = Test::in_dir(t.path()).args(["show", "--last"]).run();
    assert!(
        show.stdout
            .contains(&format!("Outcome: running now (pid {} on ", child.id())),
        "{}",
        show.stdout
    );
    assert!(!show.stdout.contains("resume"), "{}", show.stdout);
    let runs = Test::in_dir(t.path()).args(["runs"]).run();
    assert!(
        runs.stdout
            .contains(&format!("running (pid {})", child.id())),
        "{}",
        runs.stdout
    );
    // A second run is refused too, without advising a resume of the live run.
    let second = Test::in_dir(t.path()).args(["run", "l.yaml"]).run();
    assert_eq!(second.code, 2);
    assert!(!second.stderr.contains("resume"), "{}", second.stderr);
    // The live run is unharmed: its step ran once, to the end, and nothing was undone.
    let status = child.wait().expect("wait");
    assert_eq!(status.code(), Some(0));
    assert_eq!(t.read("log"), "long\n");
}

#[test]
fn a_failed_rollback_action_is_retried_by_rollback_and_rollback_exits_with_the_code_it_prints() {
    let yaml = "runbook: 1\nname: undo\nsteps:\n  - id: a\n    run: { shell: sh, script: 'echo a >> log' }\n    rollback: { run: { shell: sh, script: 'test -f fixed && echo undo-a >> log' } }\n  - id: b\n    needs: [a]\n    run: { shell: sh, script: 'echo b >> log' }\n";
    let t = Test::new().file("u.yaml", yaml).args(["run", "u.yaml"]);
    assert_eq!(t.run().code, 0);

    let failed = Test::in_dir(t.path()).args(["rollback", "--last"]).run();
    assert_eq!(failed.code, 3, "{}", failed.stdout);
    assert_eq!(printed_exit(&failed.stdout), Some(3), "{}", failed.stdout);
    assert!(
        failed.stdout.contains(" rolling back run "),
        "{}",
        failed.stdout
    );
    assert!(!failed.stdout.contains("resum"), "{}", failed.stdout);
    let runs = Test::in_dir(t.path()).args(["runs"]).run();
    assert!(
        runs.stdout
            .contains("NEEDS A PERSON: rollback of a failed (`runbook rollback "),
        "{}",
        runs.stdout
    );

    // The operator fixes the cause; `rollback` runs the failed action again.
    std::fs::write(t.path().join("fixed"), "").unwrap();
    let again = Test::in_dir(t.path()).args(["rollback", "--last"]).run();
    assert_eq!(again.code, 0, "{}", again.stdout);
    assert_eq!(printed_exit(&again.stdout), Some(0), "{}", again.stdout);
    assert!(again.stdout.contains("↺ a rolled back"), "{}", again.stdout);
    assert_eq!(t.read("log"), "a\nb\nundo-a\n");
    let runs = Test::in_dir(t.path()).args(["runs"]).run();
    assert!(!runs.stdout.contains("NEEDS A PERSON"), "{}", runs.stdout);
    assert!(
        runs.stdout.contains("rollback requested; rolled back"),
        "{}",
        runs.stdout
    );

    // Done means done: a third rollback runs nothing.
    let third = Test::in_dir(t.path()).args(["rollback", "--last"]).run();
    assert_eq!(third.code, 0);
    assert_eq!(t.read("log"), "a\nb\nundo-a\n");
}

#[test]
fn a_torn_journal_line_is_repaired_before_a_resume_appends() {
    let yaml = "runbook: 1\nname: torn\nsteps:\n  - id: a\n    run: { shell: sh, script: 'echo a >> log' }\n  - id: b\n    needs: [a]\n    idempotent: true\n    run: { shell: sh, script: 'echo b >> log' }\n";
    let t = Test::new().file("t.yaml", yaml).args(["run", "t.yaml"]);
    assert_eq!(t.run().code, 0);
    let runs = t.path().join(".runbook/runs");
    let id = std::fs::read_dir(&runs).unwrap().next().unwrap().unwrap();
    let path = id.path().join("journal.jsonl");
    let text = std::fs::read_to_string(&path).unwrap();
    // Tear the journal in the middle of the line that says `b` finished (no newline).
    let cut = text
        .find("\"event\":\"step_finished\",\"step\":\"b\"")
        .expect("b finished");
    let line_start = text[..cut].rfind('\n').map_or(0, |i| i + 1);
    std::fs::write(&path, &text[..cut + 10]).unwrap();
    assert!(cut + 10 > line_start);

    let resumed = Test::in_dir(t.path()).args(["resume", "--last"]).run();
    assert_eq!(resumed.code, 0, "{}{}", resumed.stdout, resumed.stderr);
    assert_eq!(
        t.read("log"),
        "a\nb\nb\n",
        "b in doubt and idempotent: re-run"
    );

    // Every line of the journal is an event now, and it reads cleanly again and again.
    let repaired = std::fs::read_to_string(&path).unwrap();
    for (n, line) in repaired.lines().enumerate() {
        serde_json::from_str::<serde_json::Value>(line)
            .unwrap_or_else(|e| panic!("line {} is not an event ({e}): {line}", n + 1));
    }
    assert!(repaired.ends_with('\n'));
    for format in ["human", "json", "markdown", "junit"] {
        let show = Test::in_dir(t.path())
            .args(["show", "--last", "--format", format])
            .run();
        assert_eq!(show.code, 0, "{format}: {}", show.stderr);
    }
    let again = Test::in_dir(t.path()).args(["resume", "--last"]).run();
    assert_eq!(again.code, 2);
    assert!(
        again.stderr.contains("already finished"),
        "{}",
        again.stderr
    );
}

/// A small tmpfs, unmounted when dropped.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Result<Self, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let out = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output()
            .map_err(|e| e.to_string())?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).trim().to_owned());
        }
        Ok(Self { dir })
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg(self.dir.path())
            .status();
    }
}

#[test]
fn a_journal_that_cannot_be_written_stops_the_run_with_exit_4() {
    // A real full disk: the tests run as root on machines that can mount a tmpfs. Where one
    // cannot be mounted the test fails: a skipped guarantee must never look like a kept one.
    let tmpfs = Tmpfs::mount("64k").unwrap_or_else(|reason| {
        panic!("cannot mount a 64 KiB tmpfs for the full-disk test: {reason}")
    });
    // `a` prints far more than the 64 KiB disk holds: its `step_finished` cannot be written.
    let yaml = "runbook: 1\nname: full\nsteps:\n  - id: a\n    run: { shell: sh, script: 'head -c 300000 /dev/zero | tr \"\\0\" x; echo a >> log' }\n    rollback: { run: { shell: sh, script: 'echo undo-a >> log' } }\n  - id: b\n    needs: [a]\n    run: { shell: sh, script: 'echo b >> log' }\n";
    let state = tmpfs.dir.path().to_str().unwrap().to_owned();
    let t = Test::new().file("f.yaml", yaml).args([
        "run",
        "f.yaml",
        "--output",
        "json",
        "--state-dir",
        &state,
    ]);
    let out = t.run();
    assert_eq!(out.code, 4, "{}", out.stderr);
    assert_eq!(
        t.read("log"),
        "a\n",
        "b ran, or a was rolled back with no record"
    );
    let events = out.events();
    let failed = events_of(&events, "journal_failed");
    assert_eq!(failed.len(), 1);
    assert!(
        failed[0]["reason"]
            .as_str()
            .unwrap()
            .contains("No space left on device"),
        "{:?}",
        failed[0]
    );
    let finished = events_of(&events, "run_finished");
    assert_eq!(finished[0]["exit_code"], 4);
    assert!(
        finished[0]["status"]
            .as_str()
            .unwrap()
            .starts_with("the run journal cannot be written"),
        "{:?}",
        finished[0]
    );
    assert!(events_of(&events, "rollback_step_started").is_empty());
}

#[test]
fn a_deleted_journal_stops_the_run_with_exit_4() {
    // `a` removes the state directory's runs (an operator's cleanup gone wrong): the journal
    // file is still open, so writes would succeed and be lost.
    let yaml = "runbook: 1\nname: gone\nsteps:\n  - id: a\n    run: { shell: sh, script: 'rm -rf .runbook/runs; echo a >> log' }\n  - id: b\n    needs: [a]\n    run: { shell: sh, script: 'echo b >> log' }\n";
    let t = Test::new()
        .file("g.yaml", yaml)
        .args(["run", "g.yaml", "--output", "json"]);
    let out = t.run();
    assert_eq!(out.code, 4, "{}", out.stdout);
    assert_eq!(t.read("log"), "a\n", "b ran with no record");
    let events = out.events();
    let failed = events_of(&events, "journal_failed");
    assert!(
        failed[0]["reason"]
            .as_str()
            .unwrap()
            .ends_with("was deleted"),
        "{:?}",
        failed[0]
    );
}

#[test]
fn last_is_the_most_recently_started_run_even_within_one_second() {
    let first = "runbook: 1\nname: first\nsteps:\n  - id: a\n    run: { shell: sh, script: 'true' }\n    rollback: { run: { shell: sh, script: 'echo undo-first >> log' } }\n";
    let second = first.replace("first", "second");
    let t = Test::new().file("1.yaml", first).file("2.yaml", &second);
    let id_of = |file: &str| {
        let out = Test::in_dir(t.path())
            .args(["run", file, "--output", "json"])
            .run();
        assert_eq!(out.code, 0);
        out.events()[0]["run_id"].as_str().unwrap().to_owned()
    };
    // Until two runs share a second and the later one's random part sorts first: the case
    // where sorting ids as text picks the wrong run.
    for _ in 0..40 {
        let (a, b) = (id_of("1.yaml"), id_of("2.yaml"));
        if a[..15] != b[..15] || b > a {
            continue;
        }
        let show = Test::in_dir(t.path())
            .args(["show", "--last", "--format", "json"])
            .run();
        assert_eq!(show.json()["run_id"], b.as_str(), "{a} then {b}");
        let undone = Test::in_dir(t.path()).args(["rollback", "--last"]).run();
        assert_eq!(undone.code, 0);
        assert!(undone.stdout.contains(&b), "{}", undone.stdout);
        assert_eq!(t.read("log"), "undo-second\n");
        return;
    }
    panic!("never saw two runs in one second with the later id sorting first");
}

/// a → b → c, each with a rollback; `b` announces itself in `started-b`, then sleeps. The run
/// is killed while `b` runs: `b` is in doubt.
fn killed_in_b() -> Test {
    let mut yaml = String::from("runbook: 1\nname: doubt\nsteps:\n");
    for (id, needs, script) in [
        ("a", "", "echo a >> log"),
        ("b", "b_needs", "touch started-b; sleep 30"),
        ("c", "c_needs", "echo c >> log"),
    ] {
        yaml.push_str(&format!("  - id: {id}\n"));
        match needs {
            "b_needs" => yaml.push_str("    needs: [a]\n"),
            "c_needs" => yaml.push_str("    needs: [b]\n"),
            _ => {}
        }
        yaml.push_str(&format!(
            "    run: {{ shell: sh, script: '{script}' }}\n    rollback: {{ run: {{ shell: sh, script: 'echo undo-{id} >> log' }} }}\n"
        ));
    }
    let t = Test::new().file("d.yaml", yaml).args(["run", "d.yaml"]);
    let mut child = spawn(&t);
    wait_for(&t.path().join("started-b"));
    let _ = child.kill();
    let _ = child.wait();
    t
}

#[test]
fn a_decision_about_a_step_in_doubt_is_part_of_the_record_in_show_and_rollback() {
    let t = killed_in_b();
    let resumed = Test::in_dir(t.path())
        .args(["resume", "--last", "--assume", "b=done"])
        .run();
    assert_eq!(resumed.code, 0, "{}{}", resumed.stdout, resumed.stderr);
    assert_eq!(t.read("log"), "a\nc\n");

    let said = "done by the operator's decision (--assume, ";
    let show = |format: &str| {
        let out = Test::in_dir(t.path())
            .args(["show", "--last", "--format", format])
            .run();
        assert_eq!(out.code, 0, "{}", out.stderr);
        out.stdout
    };
    let human = show("human");
    assert!(
        human.contains("succeeded  b  (") && human.contains(said),
        "{human}"
    );
    assert!(show("markdown").contains(said));
    let junit = show("junit");
    assert!(
        !junit.contains("in doubt: started, never finished"),
        "{junit}"
    );
    // XML escapes the apostrophe in "operator's".
    let escaped = said.replace('\'', "&apos;");
    assert!(junit.contains(&format!("<system-out>{escaped}")), "{junit}");
    assert!(junit.contains("failures=\"0\""), "{junit}");
    let json: serde_json::Value = serde_json::from_str(&show("json")).unwrap();
    assert_eq!(json["decisions"][0]["step"], "b");
    assert_eq!(json["decisions"][0]["decision"], "done");

    // `rollback` needs no decision again: b is done, so it is undone, in reverse order.
    let undone = Test::in_dir(t.path()).args(["rollback", "--last"]).run();
    assert_eq!(undone.code, 0, "{}{}", undone.stdout, undone.stderr);
    assert_eq!(t.read("log"), "a\nc\nundo-c\nundo-b\nundo-a\n");
}

#[test]
fn rollback_accepts_assume_for_a_step_still_in_doubt() {
    let t = killed_in_b();
    let asked = Test::in_dir(t.path()).args(["rollback", "--last"]).run();
    crate::support::asks_about_in_doubt(&asked, "b");
    assert_eq!(t.read("log"), "a\n", "nothing ran without a decision");

    let undone = Test::in_dir(t.path())
        .args(["rollback", "--last", "--assume", "b=done"])
        .run();
    assert_eq!(undone.code, 0, "{}{}", undone.stdout, undone.stderr);
    assert_eq!(t.read("log"), "a\nundo-b\nundo-a\n");
    let human = Test::in_dir(t.path()).args(["show", "--last"]).run().stdout;
    assert!(human.contains("done by the operator's decision"), "{human}");

    // `failed` means it left nothing to undo.
    let t = killed_in_b();
    let undone = Test::in_dir(t.path())
        .args(["rollback", "--last", "--assume", "b=failed"])
        .run();
    assert_eq!(undone.code, 0, "{}{}", undone.stdout, undone.stderr);
    assert_eq!(t.read("log"), "a\nundo-a\n");
}

#[test]
fn outputs_that_fail_after_the_command_succeeded_are_not_retried_and_the_step_is_rolled_back() {
    let yaml = "runbook: 1\nname: out\nsteps:\n  - id: a\n    run: { shell: sh, script: 'echo a >> log; echo 0' }\n    retry: { attempts: 3, delay: 10ms }\n    outputs:\n      ratio: \"{{ 10 // (result.stdout | trim | int) }}\"\n    rollback: { run: { shell: sh, script: 'echo undo-a >> log' } }\n  - id: b\n    needs: [a]\n    run: { shell: sh, script: 'echo b {{ steps.a.outputs.ratio }} >> log' }\n";
    let t = Test::new()
        .file("o.yaml", yaml)
        .args(["run", "o.yaml", "--output", "json"]);
    let out = t.run();
    assert_eq!(out.code, 1, "{}", out.stdout);
    // Ran once (no retry), undone once, and `b` never ran.
    assert_eq!(t.read("log"), "a\nundo-a\n");
    let events = out.events();
    assert_eq!(events_of(&events, "step_started").len(), 1);
    assert!(events_of(&events, "attempt_failed").is_empty());
    let finished = events_of(&events, "step_finished");
    assert_eq!(finished[0]["status"], "succeeded");
    assert!(
        finished[0]["message"]
            .as_str()
            .unwrap()
            .starts_with("the action succeeded, but its outputs could not be read: "),
        "{:?}",
        finished[0]
    );
    let run = events_of(&events, "run_finished");
    assert_eq!(
        run[0]["status"],
        "step `a` ran, but its outputs could not be read; rolled back"
    );
}

const APPROVALS: &str = "runbook: 1\nname: gate\ndefaults:\n  retry: { attempts: 3, delay: 10ms }\nsteps:\n  - id: first\n    run: { shell: sh, script: 'echo first >> log' }\n    rollback: { run: { shell: sh, script: 'echo undo-first >> log' } }\n  - id: confirm\n    needs: [first]\n    approval: { prompt: Go on? }\n  - id: last\n    needs: [confirm]\n    run: { shell: sh, script: 'echo last >> log' }\n";

#[test]
fn approve_of_a_missing_or_non_approval_step_is_an_error_with_did_you_mean() {
    let t = Test::new().file("g.yaml", APPROVALS);
    let typo = Test::in_dir(t.path())
        .args(["run", "g.yaml", "--approve", "confrim"])
        .run();
    assert_eq!(typo.code, 2);
    assert_eq!(
        typo.stderr,
        "error: --approve confrim: no step `confrim`; did you mean `confirm`?; nothing was run\n"
    );
    let not_one = Test::in_dir(t.path())
        .args(["run", "g.yaml", "--approve", "confirm", "--approve", "last"])
        .run();
    assert_eq!(not_one.code, 2);
    assert_eq!(
        not_one.stderr,
        "error: --approve last: `last` is not an approval step; its approval steps are `confirm`; nothing was run\n"
    );
    assert_eq!(t.read("log"), "", "nothing may run");
}

#[test]
fn the_approver_is_the_real_user_not_user_from_the_environment() {
    let t = Test::new()
        .file("g.yaml", APPROVALS)
        .env("USER", "mallory")
        .env("LOGNAME", "mallory")
        .args(["run", "g.yaml", "--approve", "confirm", "--output", "json"]);
    let out = t.run();
    assert_eq!(out.code, 0, "{}", out.stderr);
    let user = crate::support::os_user();
    assert!(!user.is_empty() && user != "mallory");
    let events = out.events();
    assert_eq!(events_of(&events, "approved")[0]["by"], user.as_str());
    let show = Test::in_dir(t.path()).args(["show", "--last"]).run();
    assert!(
        show.stdout
            .contains(&format!("approved by {user} (--approve)")),
        "{}",
        show.stdout
    );
    assert!(!show.stdout.contains("uid 0"), "{}", show.stdout);
}

#[test]
fn a_refused_approval_is_not_retried_by_defaults_and_its_reason_is_recorded() {
    let t = Test::new().file("g.yaml", APPROVALS);
    let (code, stdout) = crate::support::on_terminal(
        &t,
        "run g.yaml --output json",
        "bob",
        b"n\nthe DBA is not on call\n",
    );
    assert_eq!(code, Some(1), "{stdout}");
    assert!(stdout.contains("Reason (recorded"), "{stdout}");
    // Asked once, and with one attempt: `defaults.retry` (three attempts) is not for approvals.
    assert_eq!(stdout.matches("Go on? [y/N]").count(), 1, "{stdout}");
    assert!(
        stdout.contains(r#""event":"step_started","step":"confirm","attempt":1,"attempts":1,"#),
        "{stdout}"
    );
    assert!(
        stdout.contains(r#""event":"step_started","step":"first","attempt":1,"attempts":3,"#),
        "{stdout}"
    );
    let plan = Test::in_dir(t.path())
        .args(["plan", "g.yaml", "--format", "json"])
        .run()
        .json();
    let steps = plan["steps"].as_array().expect("steps");
    let attempts =
        |id: &str| steps.iter().find(|s| s["id"] == id).expect("step")["retry"]["attempts"].clone();
    assert_eq!(
        (attempts("first"), attempts("confirm")),
        (3.into(), 1.into())
    );
    let said = format!(
        "refused at the prompt by {}: the DBA is not on call",
        crate::support::os_user()
    );
    assert!(stdout.contains(&said), "{stdout}");
    assert_eq!(t.read("log"), "first\nundo-first\n");
    let show = Test::in_dir(t.path()).args(["show", "--last"]).run();
    assert!(show.stdout.contains(&said), "{}", show.stdout);
}
