//! `resume` of a run killed (SIGKILL) while a finally step was running: the forward steps and
//! the rollback are not repeated, the finally step in doubt is decided like any step in doubt,
//! and the finally steps that had not run do run.

use crate::support::{Test, journal_has, spawn, wait_until};

/// `a` (with a rollback), then `fail` when `failing`; finally `f1` (slow) then `f2`. Everything
/// logs what it does.
fn book(failing: bool) -> String {
    let fail = match failing {
        true => {
            "  - id: fail\n    needs: [a]\n    run: { shell: sh, script: 'echo fail >> log; exit 1' }\n"
        }
        false => "",
    };
    format!(
        "runbook: 1\nname: t\nsteps:\n  - id: a\n    run: {{ shell: sh, script: 'echo a >> log' }}\n    rollback: {{ run: {{ shell: sh, script: 'echo rb-a >> log' }} }}\n{fail}finally:\n  - id: f1\n    run: {{ shell: sh, script: 'echo f1-start >> log; sleep 30; echo f1-end >> log' }}\n  - id: f2\n    needs: [f1]\n    run: {{ shell: sh, script: 'echo f2-{{{{ run.outcome }}}} >> log' }}\n"
    )
}

/// Runs `yaml` and SIGKILLs runbook once `f1`'s start is in the journal.
fn killed_in_finally(yaml: &str) -> Test {
    let t = Test::new().file("r.yaml", yaml).args(["run", "r.yaml"]);
    let mut child = spawn(&t);
    wait_until("f1 started", || {
        journal_has(t.path(), "step_started", "f1") && t.read("log").contains("f1-start")
    });
    child.kill().expect("SIGKILL runbook");
    let _ = child.wait();
    t
}

fn resume(t: &Test, assume: &[&str]) -> crate::support::Output {
    let runs: Vec<String> = std::fs::read_dir(t.path().join(".runbook/runs"))
        .expect("runs")
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(runs.len(), 1, "{runs:?}");
    let mut args = vec!["resume", runs[0].as_str()];
    for a in assume {
        args.extend(["--assume", a]);
    }
    Test::in_dir(t.path()).args(args).run()
}

#[test]
fn resume_after_a_kill_during_a_finally_step_decides_it_and_runs_the_rest_once() {
    let t = killed_in_finally(&book(false));
    // In doubt, not idempotent, no decision: nothing runs, the step is named.
    let out = resume(&t, &[]);
    assert_eq!(out.code, 2, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stderr.contains("in doubt") && out.stderr.contains("f1"),
        "{}",
        out.stderr
    );
    assert_eq!(t.read("log"), "a\nf1-start\n");
    // Decided failed: f1 is not run again, f2 runs, and a failed finally step turns 0 into 1.
    let out = resume(&t, &["f1=failed"]);
    assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
    assert_eq!(t.read("log"), "a\nf1-start\nf2-succeeded\n");
}

#[test]
fn resume_after_a_kill_during_a_finally_step_of_a_failed_run_repeats_no_rollback() {
    let t = killed_in_finally(&book(true));
    assert_eq!(t.read("log"), "a\nfail\nrb-a\nf1-start\n");
    let out = resume(&t, &["f1=done"]);
    assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
    assert_eq!(t.read("log"), "a\nfail\nrb-a\nf1-start\nf2-failed\n");
}
