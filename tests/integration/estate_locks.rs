//! Estate locks: two runs holding a common `locks:` key, from any runbooks, are never active at
//! once in one state directory; the refusal (exit 2) names the key and the holder's run id, pid
//! and host; a lock left by a dead process on this host is taken over, one held from another
//! host never is; `resume` takes the same locks.

use std::path::{Path, PathBuf};
use std::process::Child;

use crate::support::{Test, all_but_one_exit, finish, start, wait_until};

/// A runbook holding `sql:{{ params.server }}/{{ params.db }}` whose step waits for the file
/// `go-NAME`.
fn holder(name: &str) -> String {
    format!(
        r#"runbook: 1
name: {name}
params:
  server: {{ default: backup-sql }}
  db: {{ default: mgc }}
locks: ["sql:{{{{ params.server }}}}/{{{{ params.db }}}}", "site:{{{{ params.server }}}}"]
steps:
  - id: work
    run: {{ shell: sh, script: "touch started-{name}; while [ ! -f go-{name} ]; do sleep 0.02; done" }}
"#
    )
}

fn setup() -> Test {
    Test::new()
        .file("failover.yaml", holder("failover"))
        .file("failback.yaml", holder("failback"))
}

fn lock_files(t: &Test) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(t.path().join(".runbook/locks/estate"))
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    files.retain(|p| p.extension().is_some_and(|e| e == "lock"));
    files.sort();
    files
}

fn run_id_of(stdout: &str) -> String {
    stdout
        .split_whitespace()
        .skip_while(|w| *w != "run")
        .nth(1)
        .unwrap_or_default()
        .to_owned()
}

#[test]
fn a_second_runbook_with_a_common_key_is_refused_naming_the_holder() {
    let t = setup();
    let first = start(&t, &["run", "failover.yaml"]);
    wait_until("the failover holds its locks", || {
        t.path().join("started-failover").exists()
    });
    let pid = first.id();
    let second = Test::in_dir(t.path()).args(["run", "failback.yaml"]).run();
    assert_eq!(second.code, 2, "{}{}", second.stdout, second.stderr);
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").expect("hostname");
    let message = &second.stderr;
    assert!(
        message.contains("estate lock `site:backup-sql` is held by run"),
        "{message}"
    );
    assert!(
        message.contains(&format!("pid {pid} on {}", host.trim())),
        "{message}"
    );
    assert!(message.contains("of `failover`"), "{message}");
    assert!(!t.path().join("started-failback").exists(), "nothing ran");
    std::fs::write(t.path().join("go-failover"), "").expect("go");
    let (code, stdout, _) = finish(first);
    assert_eq!(code, 0, "{stdout}");
    assert!(message.contains(&run_id_of(&stdout)), "{message}\n{stdout}");
    // Released: the failback now runs.
    std::fs::write(t.path().join("go-failback"), "").expect("go");
    let again = Test::in_dir(t.path()).args(["run", "failback.yaml"]).run();
    assert_eq!(again.code, 0, "{}{}", again.stdout, again.stderr);
    assert!(lock_files(&t).is_empty(), "{:?}", lock_files(&t));
}

#[test]
fn runs_with_different_keys_run_at_once() {
    let t = setup();
    let first = start(&t, &["run", "failover.yaml"]);
    wait_until("the failover holds its locks", || {
        t.path().join("started-failover").exists()
    });
    std::fs::write(t.path().join("go-failback"), "").expect("go");
    let other = Test::in_dir(t.path())
        .args(["run", "failback.yaml", "-p", "server=other-sql"])
        .run();
    assert_eq!(other.code, 0, "{}{}", other.stdout, other.stderr);
    std::fs::write(t.path().join("go-failover"), "").expect("go");
    assert_eq!(finish(first).0, 0);
}

#[test]
fn of_runs_started_at_the_same_moment_exactly_one_wins() {
    race(25, |_| {});
}

#[test]
fn of_runs_taking_over_a_stale_lock_at_the_same_moment_exactly_one_wins() {
    race(8, |t| {
        let _ = std::fs::remove_file(t.path().join("started-failover"));
        killed_holder(t);
    });
}

/// Rounds of four runbooks with the same keys started at once, after `before` (which may
/// leave stale locks behind).
fn race(rounds: usize, before: impl Fn(&Test)) {
    let t = Test::new().file("failover.yaml", holder("failover"));
    let names = ["one", "two", "three", "four"];
    for name in names {
        std::fs::write(t.path().join(format!("{name}.yaml")), holder(name)).expect("write");
    }
    for round in 0..rounds {
        before(&t);
        for name in names {
            let _ = std::fs::remove_file(t.path().join(format!("go-{name}")));
            let _ = std::fs::remove_file(t.path().join(format!("started-{name}")));
        }
        let mut children: Vec<Child> = names
            .iter()
            .map(|name| start(&t, &["run", &format!("{name}.yaml"), "--quiet"]))
            .collect();
        // The losers exit at once; the winner waits for its `go` (two winners would both
        // wait, and this wait would fail).
        all_but_one_exit(&mut children);
        for name in names {
            std::fs::write(t.path().join(format!("go-{name}")), "").expect("go");
        }
        let codes: Vec<i32> = children.into_iter().map(|c| finish(c).0).collect();
        let started = names
            .iter()
            .filter(|n| t.path().join(format!("started-{n}")).exists())
            .count();
        assert_eq!(started, 1, "round {round}: {codes:?}");
        let mut sorted = codes.clone();
        sorted.sort();
        assert_eq!(sorted, [0, 2, 2, 2], "round {round}");
        assert!(lock_files(&t).is_empty(), "round {round}");
    }
}

/// Starts the failover and kills it with SIGKILL while it holds its locks: they stay behind,
/// held by a dead process.
fn killed_holder(t: &Test) -> String {
    let mut first = start(t, &["run", "failover.yaml", "--output", "json"]);
    wait_until("the failover holds its locks", || {
        t.path().join("started-failover").exists()
    });
    first.kill().expect("kill");
    let (_, stdout, _) = finish(first);
    assert_eq!(lock_files(t).len(), 2, "the killed run left its locks");
    let started: serde_json::Value =
        serde_json::from_str(stdout.lines().next().expect("run_started")).expect("json");
    started["run_id"].as_str().expect("run id").to_owned()
}

#[test]
fn a_lock_left_by_a_dead_process_on_this_host_is_taken_over() {
    let t = setup();
    let dead = killed_holder(&t);
    std::fs::write(t.path().join("go-failback"), "").expect("go");
    let out = Test::in_dir(t.path()).args(["run", "failback.yaml"]).run();
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stderr.contains(&format!(
            "took over estate lock `site:backup-sql` left by run {dead} of `failover`"
        )),
        "{}",
        out.stderr
    );
}

#[test]
fn a_lock_held_from_another_host_is_never_taken_over() {
    let t = setup();
    killed_holder(&t);
    for file in lock_files(&t) {
        let text = std::fs::read_to_string(&file).expect("read lock");
        let mut holder: serde_json::Value = serde_json::from_str(&text).expect("lock is json");
        holder["host"] = "elsewhere".into();
        std::fs::write(&file, holder.to_string()).expect("write lock");
    }
    let out = Test::in_dir(t.path()).args(["run", "failback.yaml"]).run();
    assert_eq!(out.code, 2, "{}{}", out.stdout, out.stderr);
    assert!(out.stderr.contains("on elsewhere"), "{}", out.stderr);
    let file = lock_files(&t)
        .into_iter()
        .find(|f| f.to_string_lossy().contains("site"))
        .expect("site lock");
    assert!(
        out.stderr.contains(&format!(
            "remove `.runbook/locks/estate/{}` by hand",
            file.file_name().expect("name").to_string_lossy()
        )),
        "{}",
        out.stderr
    );
}

#[test]
fn resume_takes_the_same_estate_locks() {
    let t = setup();
    let dead = killed_holder(&t);
    // The failback takes the dead run's locks over and holds them.
    let failback = start(&t, &["run", "failback.yaml"]);
    wait_until("the failback holds the locks", || {
        t.path().join("started-failback").exists()
    });
    let resumed = Test::in_dir(t.path())
        .args(["resume", &dead, "--assume", "work=rerun"])
        .run();
    assert_eq!(resumed.code, 2, "{}{}", resumed.stdout, resumed.stderr);
    assert!(
        resumed.stderr.contains("is held by run") && resumed.stderr.contains("of `failback`"),
        "{}",
        resumed.stderr
    );
    let rollback = Test::in_dir(t.path())
        .args(["rollback", &dead, "--assume", "work=failed"])
        .run();
    assert_eq!(rollback.code, 2, "{}{}", rollback.stdout, rollback.stderr);
    assert!(
        rollback.stderr.contains("of `failback`"),
        "{}",
        rollback.stderr
    );
    std::fs::write(t.path().join("go-failback"), "").expect("go");
    assert_eq!(finish(failback).0, 0);
}

#[test]
fn a_lock_key_reading_an_undeclared_param_is_reported_where_it_is_written() {
    let out = Test::new()
        .file(
            "a.yaml",
            "runbook: 1\nname: a\nlocks: [\"sql:{{ params.sever }}\"]\nsteps:\n  - id: s\n    wait: 1ms\n",
        )
        .args(["validate", "a.yaml", "--format", "json"])
        .run();
    assert_eq!(out.code, 1, "{}", out.stdout);
    let diags = out.diags();
    assert!(
        diags
            .iter()
            .any(|d| d.line == 3 && d.code == "runbook::unknown_variable"),
        "{diags:?}"
    );
}

#[test]
fn a_lock_key_reading_a_secret_is_refused_before_anything_runs() {
    let t = Test::new()
        .file(
            "a.yaml",
            "runbook: 1\nname: a\nsecrets:\n  pw: { env: PW }\nlocks: [\"db:{{ secrets.pw }}\"]\nsteps:\n  - id: s\n    run: { shell: sh, script: touch ran }\n",
        )
        .env("PW", "hunter2")
        .args(["run", "a.yaml"]);
    let out = t.run();
    assert_eq!(out.code, 2, "{}{}", out.stdout, out.stderr);
    assert!(out.stderr.contains("a.yaml:5:"), "{}", out.stderr);
    assert!(!out.stderr.contains("hunter2"));
    assert!(!Path::new(&t.path().join("ran")).exists());
}
