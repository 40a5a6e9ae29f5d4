//! The run lock: one active run per runbook in a state directory, whatever happens around it. A
//! lock file that is being written (or was left holding no run) is never taken over; of runs
//! started at the same moment, or racing to take over a killed run's lock, exactly one runs;
//! `resume` and `rollback` take the same lock.

use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::Duration;

use crate::support::{Test, all_but_one_exit, finish, start, wait_until};

/// A runbook `failover` whose step appends its pid to `ran`, says it `started`, and waits for
/// the file `go`; its rollback says it is `undoing` and waits for `undo-go`.
const FAILOVER: &str = r#"runbook: 1
name: failover
steps:
  - id: work
    run: { shell: sh, script: "echo $$ >> ran; touch started; while [ ! -f go ]; do sleep 0.02; done" }
    rollback: { run: { shell: sh, script: "touch undoing; while [ ! -f undo-go ]; do sleep 0.02; done" } }
"#;

fn setup() -> Test {
    Test::new().file("failover.yaml", FAILOVER)
}

fn lock_path(t: &Test) -> PathBuf {
    t.path().join(".runbook/locks/failover.lock")
}

/// How many times the step has run in `t`'s directory.
fn ran(t: &Test) -> usize {
    std::fs::read_to_string(t.path().join("ran"))
        .unwrap_or_default()
        .lines()
        .count()
}

fn host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .expect("hostname")
        .trim()
        .to_owned()
}

fn run(t: &Test, args: &[&str]) -> crate::support::Output {
    Test::in_dir(t.path()).args(args.iter().copied()).run()
}

#[test]
fn a_lock_file_being_written_is_never_taken_over() {
    let t = setup();
    std::fs::write(t.path().join("go"), "").expect("go");
    // A run paused between creating its lock file and writing its holder into it.
    let lock = lock_path(&t);
    std::fs::create_dir_all(lock.parent().expect("dir")).expect("mkdir");
    std::fs::write(&lock, "").expect("create the lock empty");
    let writer = Command::new("sleep")
        .arg("60")
        .spawn()
        .expect("spawn sleep");

    refused(
        &t,
        "the run lock `.runbook/locks/failover.lock` of runbook `failover` holds no run",
    );
    assert_eq!(ran(&t), 0, "nothing ran");
    // Well past the 100 ms after which a half-written lock used to be deemed abandoned.
    std::thread::sleep(Duration::from_millis(400));
    assert_eq!(
        std::fs::read(&lock).expect("the lock file is still there"),
        b"",
        "the lock file was left as it was"
    );

    // The paused run now writes its holder: it holds the lock, and a run is refused naming it.
    let holder = serde_json::json!({
        "run_id": "20261126T094427-5107",
        "pid": writer.id(),
        "host": host(),
        "started": "2026-11-26T09:44:27.000Z",
    });
    std::fs::write(&lock, holder.to_string()).expect("write the holder late");
    refused(
        &t,
        &format!(
            "runbook `failover` is already running: run 20261126T094427-5107 (pid {} on {}",
            writer.id(),
            host()
        ),
    );
    assert_eq!(ran(&t), 0, "nothing ran");
    assert_eq!(
        std::fs::read_to_string(&lock).expect("lock"),
        holder.to_string()
    );

    // Once that process is gone, its lock is taken over.
    end(writer);
    let out = run(&t, &["run", "failover.yaml"]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stderr
            .contains("note: took over the lock left by run 20261126T094427-5107"),
        "{}",
        out.stderr
    );
    assert_eq!(ran(&t), 1);
    assert!(!lock.exists(), "released at the end");
}

/// Runs the runbook, which must be refused (exit 2) saying `expected`; returns its stderr.
fn refused(t: &Test, expected: &str) -> String {
    let out = run(t, &["run", "failover.yaml"]);
    assert_eq!(out.code, 2, "{}{}", out.stdout, out.stderr);
    assert!(out.stderr.contains(expected), "{}", out.stderr);
    out.stderr
}

fn end(mut child: Child) {
    child.kill().expect("kill");
    child.wait().expect("wait");
}

#[test]
fn a_lock_file_holding_no_run_is_refused_and_left_for_the_operator() {
    let t = setup();
    std::fs::write(t.path().join("go"), "").expect("go");
    let lock = lock_path(&t);
    std::fs::create_dir_all(lock.parent().expect("dir")).expect("mkdir");
    // Garbage, and a holder cut off by a crash in the middle of its write.
    for text in ["\u{0}\u{0}garbage", r#"{"run_id":"20261126T0944"#] {
        std::fs::write(&lock, text).expect("write");
        let stderr = refused(
            &t,
            "if no run of `failover` is active (`runbook runs`, `ps`), remove `.runbook/locks/failover.lock` by hand",
        );
        assert!(stderr.contains("nothing was run"), "{stderr}");
        assert_eq!(std::fs::read_to_string(&lock).expect("kept"), text);
        assert_eq!(ran(&t), 0, "nothing ran");
    }
    // Removed by hand, as the refusal says: the runbook runs.
    std::fs::remove_file(&lock).expect("remove");
    let out = run(&t, &["run", "failover.yaml"]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert_eq!(ran(&t), 1);
}

#[test]
fn of_runs_of_one_runbook_started_at_the_same_moment_exactly_one_wins() {
    race(25, |_| None);
}

#[test]
fn a_stale_lock_of_a_killed_run_is_taken_over_by_exactly_one_of_racing_runs() {
    race(8, |t| Some(killed_run(t)));
}

/// Rounds of four runs of one runbook started at once, after `before` (which may leave a
/// killed run's lock behind and return that run's id).
fn race(rounds: usize, before: impl Fn(&Test) -> Option<String>) {
    let t = setup();
    let racers = 4;
    for round in 0..rounds {
        let dead = before(&t);
        let _ = std::fs::remove_file(t.path().join("go"));
        let ran_before = ran(&t);
        let mut children: Vec<Child> = (0..racers)
            .map(|_| start(&t, &["run", "failover.yaml"]))
            .collect();
        // The losers exit at once; the winner waits for `go` (two winners would both wait,
        // and this wait would fail).
        all_but_one_exit(&mut children);
        std::fs::write(t.path().join("go"), "").expect("go");
        let mut outcomes: Vec<(i32, String, String)> = children.into_iter().map(finish).collect();
        outcomes.sort_by_key(|o| o.0);
        let codes: Vec<i32> = outcomes.iter().map(|o| o.0).collect();
        assert_eq!(codes, [0, 2, 2, 2], "round {round}: {outcomes:?}");
        assert_eq!(ran(&t), ran_before + 1, "round {round}: one run ran");
        for (_, _, stderr) in &outcomes[1..] {
            assert!(
                stderr.contains("runbook `failover` is already running: run "),
                "round {round}: {stderr}"
            );
        }
        let took_over = outcomes
            .iter()
            .filter(|o| o.2.contains("note: took over the lock left by run "))
            .count();
        match dead {
            Some(dead) => {
                assert_eq!(took_over, 1, "round {round}: {outcomes:?}");
                assert!(
                    outcomes[0]
                        .2
                        .contains(&format!("took over the lock left by run {dead}")),
                    "round {round}: {outcomes:?}"
                );
            }
            None => assert_eq!(took_over, 0, "round {round}: {outcomes:?}"),
        }
        assert!(!lock_path(&t).exists(), "round {round}: released");
        assert_eq!(staged(&t), Vec::<String>::new(), "round {round}");
    }
}

/// Holders written under a name of their own that are left in the locks directory (none
/// should outlive the run that wrote them).
fn staged(t: &Test) -> Vec<String> {
    std::fs::read_dir(t.path().join(".runbook/locks"))
        .expect("the locks directory")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with(".staged"))
        .collect()
}

/// Starts a run and kills it with SIGKILL while its step runs: its lock stays behind, held by
/// a dead process. Returns the killed run's id.
fn killed_run(t: &Test) -> String {
    let _ = std::fs::remove_file(t.path().join("go"));
    let _ = std::fs::remove_file(t.path().join("started"));
    let mut first = start(t, &["run", "failover.yaml", "--output", "json"]);
    wait_until("the run holds its lock", || {
        t.path().join("started").exists()
    });
    first.kill().expect("kill");
    let (_, stdout, _) = finish(first);
    assert!(lock_path(t).exists(), "the killed run left its lock");
    let started: serde_json::Value =
        serde_json::from_str(stdout.lines().next().expect("run_started")).expect("json");
    started["run_id"].as_str().expect("run id").to_owned()
}

#[test]
fn resume_and_rollback_take_the_run_lock() {
    let t = setup();
    let dead = killed_run(&t);
    // Another run of the runbook takes the dead run's lock over and holds it.
    let _ = std::fs::remove_file(t.path().join("started"));
    let other = start(&t, &["run", "failover.yaml"]);
    wait_until("the other run holds the lock", || {
        t.path().join("started").exists()
    });
    let held_by_other = "runbook `failover` is already running: run ";
    let by_pid = format!("(pid {} on {}", other.id(), host());
    for args in [
        ["resume", dead.as_str(), "--assume", "work=rerun"],
        ["rollback", dead.as_str(), "--assume", "work=done"],
    ] {
        let out = run(&t, &args);
        assert_eq!(out.code, 2, "{args:?}: {}{}", out.stdout, out.stderr);
        assert!(
            out.stderr.contains(held_by_other) && out.stderr.contains(&by_pid),
            "{args:?}: {}",
            out.stderr
        );
        assert!(!t.path().join("undoing").exists(), "nothing was undone");
    }
    assert_eq!(ran(&t), 2, "the resume ran nothing");
    std::fs::write(t.path().join("go"), "").expect("go");
    assert_eq!(finish(other).0, 0);

    // A resume holds the lock while it runs: a new run is refused naming it.
    std::fs::remove_file(t.path().join("go")).expect("rm go");
    std::fs::remove_file(t.path().join("started")).expect("rm started");
    holds_the_lock(
        &t,
        &dead,
        &["resume", &dead, "--assume", "work=rerun"],
        "started",
        "go",
    );
    // So does a rollback.
    holds_the_lock(&t, &dead, &["rollback", &dead], "undoing", "undo-go");
    assert!(!lock_path(&t).exists(), "released");
    assert_eq!(staged(&t), Vec::<String>::new());
}

/// Starts `args` (a resume or rollback of run `dead`), waits until its step creates `started`,
/// checks that a new run is refused naming it, then lets it end by creating `go`.
fn holds_the_lock(t: &Test, dead: &str, args: &[&str], started: &str, go: &str) {
    let holder = start(t, args);
    wait_until("it holds the lock", || t.path().join(started).exists());
    refused(
        t,
        &format!(
            "runbook `failover` is already running: run {dead} (pid {} on",
            holder.id()
        ),
    );
    std::fs::write(t.path().join(go), "").expect("go");
    let (code, stdout, stderr) = finish(holder);
    assert_eq!(code, 0, "{args:?}: {stdout}{stderr}");
}
