//! Nothing a run started outlives it: SIGKILL of runbook with reaped shells and escaped
//! grandchildren, background processes holding stdout, SIGHUP, pid reuse and other hosts on
//! resume, and siblings that stop polling once the run is stopping.

use std::os::unix::process::CommandExt;
use std::process::Child;
use std::time::{Duration, Instant};

use crate::support::{Output, Test, events_of, spawn_lines};

fn book(steps: &str) -> String {
    format!("runbook: 1\nname: t\nsteps:\n{steps}")
}

/// The process is alive (not gone, not a zombie) and is still the one that started at
/// `start_time`.
fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| !rest.trim_start().starts_with(['Z', 'X'])),
        Err(_) => false,
    }
}

fn start_time(pid: i32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
    let rest = stat.rsplit_once(')').expect("stat").1;
    rest.split_whitespace()
        .nth(19)
        .expect("field 22")
        .parse()
        .expect("start time")
}

fn pid_in(t: &Test, name: &str) -> i32 {
    let started = Instant::now();
    loop {
        if let Ok(pid) = t.read(name).trim().parse() {
            return pid;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "no {name}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Waits until every pid is gone; returns how long it took (panics after `limit`).
fn gone_within(pids: &[i32], limit: Duration) -> Duration {
    let started = Instant::now();
    while pids.iter().any(|&p| alive(p)) {
        let left: Vec<_> = pids.iter().filter(|&&p| alive(p)).collect();
        assert!(started.elapsed() < limit, "still alive: {left:?}");
        std::thread::sleep(Duration::from_millis(5));
    }
    started.elapsed()
}

/// Runs `steps` with `--output json`: the test, what it printed, and how long it took.
fn timed_run(steps: &str) -> (Test, Output, Duration) {
    let t = Test::new()
        .file("r.yaml", book(steps))
        .args(["run", "r.yaml", "--output", "json"]);
    let started = Instant::now();
    let out = t.run();
    (t, out, started.elapsed())
}

fn sigkill(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn sigkill_of_runbook_ends_grandchildren_whose_shell_was_already_reaped() {
    // The step's shell runs an inner shell that starts two sleeps and exits at once (reaped by
    // the step's shell: a double fork without setsid), one process that left the group with
    // setsid, and keeps running itself. Before, only the direct child got the parent-death
    // signal: the orphaned sleeps ran on for a minute.
    let script = r#"sh -c 'sleep 61 & echo $! > gc1; sleep 62 >/dev/null 2>&1 & echo $! > gc2'; setsid sleep 63 & echo $! > escaped; echo $$ > shell; touch ready; sleep 64"#;
    let yaml = book(&format!(
        "  - id: long\n    run: {{ shell: sh, script: {} }}\n",
        serde_json::to_string(script).unwrap()
    ));
    let t = Test::new()
        .file("k.yaml", yaml)
        .args(["run", "k.yaml", "--output", "json"]);
    let (mut child, _lines) = spawn_lines(&t);
    let pids: Vec<i32> = ["gc1", "gc2", "escaped", "shell"]
        .iter()
        .map(|f| pid_in(&t, f))
        .collect();
    while !t.path().join("ready").exists() {
        std::thread::sleep(Duration::from_millis(5));
    }
    for &p in &pids {
        assert!(alive(p), "{p} must run before the kill");
    }
    let killed = Instant::now();
    let _ = child.kill();
    gone_within(&pids, Duration::from_secs(2));
    eprintln!(
        "every descendant gone {} ms after SIGKILL",
        killed.elapsed().as_millis()
    );
    let _ = child.wait();
}

#[test]
fn a_background_process_holding_stdout_does_not_hold_the_step() {
    let (t, out, took) = timed_run(
        "  - id: bg\n    run: { shell: sh, script: 'sleep 60 & echo $! > bg; echo done' }\n",
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(took < Duration::from_secs(5), "took {took:?}");
    let events = out.events();
    let finished = events_of(&events, "step_finished");
    assert_eq!(finished[0]["stdout"], "done\n");
    let bg: i32 = t.read("bg").trim().parse().unwrap();
    gone_within(&[bg], Duration::from_secs(1));
}

#[test]
fn sighup_rolls_back_records_it_releases_the_lock_and_exits_130() {
    let t = Test::new()
        .file(
            "h.yaml",
            book("  - id: first\n    run: { shell: sh, script: echo first >> log }\n    rollback: { run: { shell: sh, script: echo undo-first >> log } }\n  - id: long\n    needs: [first]\n    run: { shell: sh, script: 'echo $$ > long; exec sleep 30' }\n"),
        )
        .args(["run", "h.yaml", "--output", "json"]);
    let (child, mut lines) = spawn_lines(&t);
    let long = pid_in(&t, "long");
    assert!(t.path().join(".runbook/locks/t.lock").exists(), "locked");
    // SAFETY: sends SIGHUP to the child we spawned.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGHUP);
    }
    let rest: Vec<String> = lines.by_ref().collect();
    let mut child = child;
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "{rest:?}");
    assert_eq!(t.read("log"), "first\nundo-first\n");
    assert!(!alive(long), "the running step was ended");
    assert!(
        !t.path().join(".runbook/locks/t.lock").exists(),
        "the lock is released"
    );
    let journal = std::fs::read_dir(t.path().join(".runbook/runs"))
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path().join("journal.jsonl")).unwrap())
        .next()
        .unwrap();
    assert!(
        journal.contains(r#""event":"interrupted","signal":"SIGHUP""#),
        "{journal}"
    );
    assert!(
        journal.contains(r#""event":"rollback_step_finished","step":"first","status":"succeeded""#),
        "{journal}"
    );
    assert!(journal.contains(r#""event":"run_finished""#), "{journal}");
}

#[test]
fn after_a_step_fails_for_good_a_polling_sibling_makes_no_new_attempt() {
    let (_, out, took) = timed_run(
        "  - id: fail\n    run: { shell: sh, script: 'sleep 0.3; exit 1' }\n  - id: poll\n    run: { shell: sh, script: 'echo waiting' }\n    until: result.stdout == 'ready'\n    retry: { attempts: 20, delay: 1s }\n",
    );
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(took < Duration::from_secs(4), "took {took:?}");
    let events = out.events();
    let polls = events_of(&events, "step_started")
        .iter()
        .filter(|e| e["step"] == "poll")
        .count();
    assert!(polls <= 2, "poll made {polls} attempts");
    let finished = events_of(&events, "step_finished");
    let poll = finished.iter().find(|e| e["step"] == "poll").unwrap();
    assert_eq!(poll["status"], "cancelled");
    assert!(
        poll["message"]
            .as_str()
            .unwrap()
            .ends_with("not retried: the run is stopping"),
        "{poll}"
    );
}

/// A run killed while `long` runs, its journal's `process_started` rewritten by `edit`, then
/// `resume --assume long=failed`. Returns resume's stderr.
fn resume_with_recorded_group(edit: impl Fn(&mut serde_json::Value)) -> String {
    let t = Test::new()
        .file(
            "r.yaml",
            book("  - id: long\n    run: { shell: sh, script: 'echo $$ > long; exec sleep 30' }\n"),
        )
        .args(["run", "r.yaml", "--output", "json"]);
    let (mut child, lines) = spawn_lines(&t);
    let mut lines = lines;
    assert!(lines.any(|l| l.contains(r#""event":"process_started""#)));
    let long = pid_in(&t, "long");
    sigkill(&mut child);
    gone_within(&[long], Duration::from_secs(2));
    let run = std::fs::read_dir(t.path().join(".runbook/runs"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let journal = std::fs::read_to_string(run.join("journal.jsonl")).unwrap();
    let edited: String = journal
        .lines()
        .map(|l| {
            let mut e: serde_json::Value = serde_json::from_str(l).unwrap();
            if e["event"] == "process_started" {
                edit(&mut e);
            }
            format!("{e}\n")
        })
        .collect();
    std::fs::write(run.join("journal.jsonl"), edited).unwrap();
    let out = Test::in_dir(t.path())
        .args(["resume", "--last", "--assume", "long=failed"])
        .run();
    assert_eq!(out.code, 1, "{}", out.stderr);
    out.stderr
}

/// Starts an unrelated process leading a group of its own (as one that reused a recorded pid
/// would), records its group in a crashed run's journal with its start time less `shift` and
/// `host` if given, and resumes that run. Returns the process, its pid and resume's stderr.
fn resume_recording_unrelated(shift: u64, host: Option<&str>) -> (Child, i32, String) {
    let other = std::process::Command::new("sleep")
        .arg("30")
        .process_group(0)
        .spawn()
        .expect("spawn sleep");
    let pid = other.id() as i32;
    let born = start_time(pid);
    let stderr = resume_with_recorded_group(|e| {
        e["pgid"] = pid.into();
        e["start_time"] = (born - shift).into();
        if let Some(host) = host {
            e["host"] = host.into();
        }
    });
    (other, pid, stderr)
}

#[test]
fn resume_does_not_signal_a_process_that_reused_a_recorded_process_group() {
    let (mut other, pid, stderr) = resume_recording_unrelated(1, None);
    assert!(alive(pid), "an unrelated process was killed: {stderr}");
    assert!(!stderr.contains("ended process group"), "{stderr}");
    sigkill(&mut other);
}

#[test]
fn resume_does_not_touch_a_process_group_recorded_on_another_host() {
    let (mut other, pid, stderr) = resume_recording_unrelated(0, Some("another-host"));
    assert!(
        alive(pid),
        "a process of another host's run was killed: {stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "`long` ran on host another-host (process group {pid}): not signalled from here"
        )),
        "{stderr}"
    );
    sigkill(&mut other);
}

#[test]
fn resume_ends_a_leftover_group_whose_leader_is_provably_the_recorded_one() {
    // The control for the two tests above: the same journal edit with the true start time
    // and host ends the group, so they do not pass for lack of trying.
    let (mut other, pid, stderr) = resume_recording_unrelated(0, None);
    let _ = other.wait();
    assert!(!alive(pid));
    assert!(
        stderr.contains(&format!("ended process group {pid} left running by `long`")),
        "{stderr}"
    );
}

/// One supervisor serves the whole run: every command's parent is the same process, and it is
/// not runbook.
#[test]
fn every_command_of_a_run_is_started_by_one_supervisor() {
    let mut steps = String::new();
    for i in 0..16 {
        steps.push_str(&format!(
            "  - id: s{i}\n    run: {{ shell: sh, script: 'echo $PPID > parent{i}' }}\n"
        ));
    }
    let (t, out, _) = timed_run(&steps);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let parents: std::collections::BTreeSet<String> =
        (0..16).map(|i| t.read(&format!("parent{i}"))).collect();
    assert_eq!(parents.len(), 1, "{parents:?}");
    let events = out.events();
    let runbook = events_of(&events, "run_context")[0]["pid"].to_string();
    assert_ne!(parents.iter().next().unwrap().trim(), runbook);
}

#[test]
fn a_descendant_that_left_its_group_is_gone_before_the_next_step_starts() {
    // `setsid` takes it out of the step's process group; its shell exits at once, so it is
    // orphaned to the supervisor. The next step fails if it can still signal it.
    let (t, out, took) = timed_run(
        "  - id: a\n    run: { shell: sh, script: 'setsid sleep 63 & echo $! > escaped' }\n  - id: b\n    needs: [a]\n    run: { shell: sh, script: 'if kill -0 $(cat escaped) 2>/dev/null; then echo still running; exit 1; fi' }\n",
    );
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert!(took < Duration::from_secs(5), "took {took:?}");
    let escaped: i32 = t.read("escaped").trim().parse().unwrap();
    assert!(!alive(escaped));
}

#[test]
fn a_descendant_that_left_its_group_is_ended_with_the_steps_that_ran_beside_it() {
    // Orphaned while another step runs, it may be either step's: it lives until both are over,
    // and not a moment past the run.
    let (t, out, took) = timed_run(
        "  - id: a\n    run: { shell: sh, script: 'setsid sleep 63 & echo $! > escaped' }\n  - id: b\n    run: { shell: sh, script: 'sleep 1' }\n",
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(took < Duration::from_secs(5), "took {took:?}");
    let escaped: i32 = t.read("escaped").trim().parse().unwrap();
    gone_within(&[escaped], Duration::from_secs(1));
}

#[test]
fn a_timeout_ends_the_descendants_that_left_the_group() {
    let (t, out, took) = timed_run(
        "  - id: slow\n    timeout: 1s\n    run: { shell: sh, script: 'setsid sleep 63 & echo $! > escaped; sleep 61 & echo $! > child; sleep 62' }\n  - id: next\n    needs: [slow]\n    run: { shell: sh, script: 'true' }\n",
    );
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(took < Duration::from_secs(6), "took {took:?}");
    let pids = [
        t.read("escaped").trim().parse().unwrap(),
        t.read("child").trim().parse().unwrap(),
    ];
    gone_within(&pids, Duration::from_secs(1));
    let events = out.events();
    let finished = events_of(&events, "step_finished");
    assert_eq!(finished[0]["status"], "failed", "{finished:?}");
    assert!(
        finished[0]["message"]
            .as_str()
            .unwrap()
            .contains("timed out after 1s"),
        "{finished:?}"
    );
}

#[test]
fn a_command_that_kills_the_supervisor_dies_with_it_and_the_retry_runs_under_a_new_one() {
    // The command's parent is the supervisor: killing it kills the command (its parent-death
    // signal), the attempt fails, and the next attempt gets a new supervisor.
    // What the command started in its group goes too.
    let (t, out, took) = timed_run(
        "  - id: k\n    retry: { attempts: 2, delay: 0s }\n    run: { shell: sh, script: 'if [ ! -e once ]; then echo $PPID > first; touch once; sleep 31 & echo $! > child; kill -9 $PPID; sleep 30; fi; echo $PPID > second' }\n  - id: after\n    needs: [k]\n    run: { shell: sh, script: 'echo $PPID > third' }\n",
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(took < Duration::from_secs(10), "took {took:?}");
    let first = t.read("first");
    assert_ne!(first, t.read("second"), "a new supervisor");
    assert_eq!(
        t.read("second"),
        t.read("third"),
        "which then serves the run"
    );
    let events = out.events();
    let failed = events_of(&events, "attempt_failed");
    assert_eq!(failed.len(), 1, "{events:?}");
    assert!(
        failed[0]["message"]
            .as_str()
            .unwrap()
            .contains("killed by a signal"),
        "{failed:?}"
    );
}

#[test]
fn a_command_too_long_for_execve_fails_to_start_and_the_run_goes_on() {
    // One argument over the kernel's 128 KiB limit: the supervisor gets the whole request,
    // execve refuses it, and the supervisor still serves the next step.
    let long = "x".repeat(200 * 1024);
    let fits = "y".repeat(100 * 1024);
    let steps = format!(
        "  - id: long\n    continue_on_failure: true\n    run: {{ program: echo, args: [{long}] }}\n  - id: fits\n    needs: [long]\n    run: {{ program: sh, args: ['-c', 'printf %s \"$1\" | wc -c > size', 'sh', {fits}] }}\n"
    );
    let (t, out, _) = timed_run(&steps);
    let events = out.events();
    let finished = events_of(&events, "step_finished");
    assert_eq!(finished[0]["status"], "failed", "{}", out.stderr);
    assert!(
        finished[0]["message"]
            .as_str()
            .unwrap()
            .contains("cannot start `echo`: Argument list too long"),
        "{finished:?}"
    );
    assert_eq!(finished[1]["status"], "succeeded", "{finished:?}");
    assert_eq!(t.read("size").trim(), (100 * 1024).to_string());
}

#[test]
fn a_supervisor_killed_while_a_step_ends_leaves_nothing_of_the_group_behind() {
    // The command's main process exits at once (reaped by the supervisor: the group has no
    // leader to check any more); within the grace the supervisor is killed, while a sleep of
    // the group still runs. runbook kills the group it was told of.
    let (t, out, took) = timed_run(
        "  - id: k\n    run: { shell: sh, script: 'echo $PPID > supervisor; sleep 31 & echo $! > child; (sleep 0.05; kill -9 $(cat supervisor)) & exit 0' }\n",
    );
    assert!(took < Duration::from_secs(5), "took {took:?}");
    let child: i32 = t.read("child").trim().parse().unwrap();
    gone_within(&[child], Duration::from_secs(1));
    let events = out.events();
    let finished = events_of(&events, "step_finished");
    assert_eq!(finished[0]["status"], "failed", "{finished:?}");
}

#[test]
fn a_command_gets_the_default_sigpipe_not_runbooks() {
    // runbook ignores SIGPIPE; a command must not inherit that, or `yes | head` makes `yes`
    // fail on a write error instead of ending quietly as in a shell.
    let yaml = "runbook: 1\nname: pipe\nsteps:\n  - id: a\n    timeout: 10s\n    run: { program: /bin/sh, args: [-c, 'yes | head -n 1 >/dev/null'] }\n";
    let out = Test::new()
        .file("p.yaml", yaml)
        .args(["run", "p.yaml", "--output", "json"])
        .run();
    assert_eq!(out.code, 0, "{}", out.stdout);
    let events = out.events();
    let finished = events_of(&events, "step_finished");
    assert_eq!(
        finished[0]["stderr"].as_str().unwrap_or(""),
        "",
        "{}",
        out.stdout
    );
}

#[test]
fn two_thousand_commands_started_at_once_all_finish() {
    // Regression: the supervisor's replies (two per command) fill their pipe while runbook
    // is still sending requests; a supervisor that waited for room there stopped reading
    // requests, and runbook waited for it to read: the run hung.
    let mut yaml = String::from("runbook: 1\nname: wide\nsteps:\n");
    for i in 0..2000 {
        yaml.push_str(&format!(
            "  - {{ id: s{i}, run: {{ program: /usr/bin/true }} }}\n"
        ));
    }
    let t = Test::new()
        .file("w.yaml", yaml)
        .args(["run", "w.yaml", "--concurrency", "2000"]);
    let mut child = t
        .command()
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("run runbook");
    let deadline = Instant::now() + Duration::from_secs(90);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("2,000 parallel commands did not finish in 90 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(0));
}
