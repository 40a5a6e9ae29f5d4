//! `finally` steps, `defaults.env` and `defaults.cwd`, and paths relative to the runbook
//! file: each checked through what the real binary does.

use crate::support::{Test, validate, wait_until};

/// A runbook whose run steps are `steps` and whose finally steps log `run.outcome`.
fn book(steps: &str, finally: &str) -> String {
    format!("runbook: 1\nname: t\nsteps:\n{steps}finally:\n{finally}")
}

const LOG_OUTCOME: &str = "  - id: cleanup\n    run: { shell: sh, script: 'echo \"cleanup $OUTCOME\" >> log' }\n    env: { OUTCOME: '{{ run.outcome }}' }\n";

fn run(steps: &str, finally: &str) -> (Test, crate::support::Output) {
    let t = Test::new()
        .file("r.yaml", book(steps, finally))
        .args(["run", "r.yaml"]);
    let out = t.run();
    (t, out)
}

#[test]
fn finally_runs_after_a_success_with_outcome_succeeded() {
    let (t, out) = run(
        "  - id: a\n    run: { shell: sh, script: 'echo a >> log' }\n",
        LOG_OUTCOME,
    );
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert_eq!(t.read("log"), "a\ncleanup succeeded\n");
}

#[test]
fn finally_runs_after_the_rollback_of_a_failure_and_keeps_exit_1() {
    let (t, out) = run(
        "  - id: a\n    run: { shell: sh, script: 'echo a >> log' }\n    rollback: { run: { shell: sh, script: 'echo undo-a >> log' } }\n  - id: b\n    needs: [a]\n    run: { shell: sh, script: 'exit 1' }\n",
        LOG_OUTCOME,
    );
    assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
    assert_eq!(t.read("log"), "a\nundo-a\ncleanup failed\n");
}

#[test]
fn finally_runs_after_a_failed_rollback_and_keeps_exit_3() {
    let (t, out) = run(
        "  - id: a\n    run: { shell: sh, script: 'echo a >> log' }\n    rollback: { run: { shell: sh, script: 'exit 1' } }\n  - id: b\n    needs: [a]\n    run: { shell: sh, script: 'exit 1' }\n",
        "  - id: broken\n    run: { shell: sh, script: 'exit 1' }\n  - id: cleanup\n    run: { shell: sh, script: 'echo \"cleanup $OUTCOME\" >> log' }\n    env: { OUTCOME: '{{ run.outcome }}' }\n",
    );
    // A failing finally step does not hide the more serious code.
    assert_eq!(out.code, 3, "{}{}", out.stdout, out.stderr);
    assert_eq!(t.read("log"), "a\ncleanup needs_person\n");
}

#[test]
fn a_failing_finally_step_turns_exit_0_into_1_and_the_others_still_run() {
    let (t, out) = run(
        "  - id: a\n    run: { shell: sh, script: 'echo a >> log' }\n    rollback: { run: { shell: sh, script: 'echo undo-a >> log' } }\n",
        "  - id: broken\n    run: { shell: sh, script: 'exit 7' }\n  - id: notify\n    needs: [broken]\n    run: { shell: sh, script: 'echo \"notify {{ steps.broken.status }}\" >> log' }\n",
    );
    assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
    // Never a rollback for a finally step's failure; its dependents still run after it.
    assert_eq!(t.read("log"), "a\nnotify failed\n");
    assert!(
        out.stdout.contains("finally step(s) failed: `broken`"),
        "{}",
        out.stdout
    );
}

#[test]
fn finally_steps_run_in_needs_order_and_read_steps_that_did_not_run() {
    let (t, out) = run(
        "  - id: a\n    run: { shell: sh, script: 'exit 1' }\n  - id: b\n    needs: [a]\n    run: { shell: sh, script: 'echo b >> log' }\n",
        "  - id: second\n    needs: [first]\n    run: { shell: sh, script: 'echo \"second b={{ steps.b.status }} a={{ steps.a.status }}\" >> log' }\n  - id: first\n    run: { shell: sh, script: 'echo first >> log' }\n",
    );
    assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
    assert_eq!(t.read("log"), "first\nsecond b=not_run a=failed\n");
}

#[test]
fn finally_runs_after_ctrl_c_with_outcome_interrupted_and_exit_130() {
    let t = Test::new()
        .file(
            "r.yaml",
            book(
                "  - id: long\n    run: { shell: sh, script: 'touch started; sleep 30' }\n",
                LOG_OUTCOME,
            ),
        )
        .args(["run", "r.yaml"]);
    let mut child = crate::support::spawn(&t);
    wait_until("the long step starts", || t.path().join("started").exists());
    // SAFETY: sends SIGINT to the child we spawned.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGINT);
    }
    let status = child.wait().expect("wait");
    assert_eq!(status.code(), Some(130));
    assert_eq!(t.read("log"), "cleanup interrupted\n");
}

#[test]
fn finally_steps_are_journaled_and_shown() {
    let (t, out) = run(
        "  - id: a\n    run: { shell: sh, script: 'true' }\n",
        LOG_OUTCOME,
    );
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let shown = Test::in_dir(t.path())
        .args(["show", "--last", "--format", "json"])
        .run();
    assert_eq!(shown.code, 0, "{}", shown.stderr);
    let json = shown.json();
    let text = json.to_string();
    assert!(text.contains("\"cleanup\""), "{text}");
    assert!(text.contains("finally_started"), "{text}");
}

#[test]
fn finally_validation_errors_are_located() {
    let (diags, code) = validate(
        "runbook: 1\nname: t\nsteps:\n  - id: a\n    run: { program: echo, args: ['{{ run.outcome }}'] }\nfinally:\n  - id: a\n    run: { program: 'true' }\n  - id: f\n    needs: [b]\n    run: { program: 'true' }\n    rollback: { run: { program: 'true' } }\n  - id: b\n    run: { program: 'true' }\n  - id: g\n    needs: [a2]\n    run: { program: 'true' }\n",
    );
    assert_eq!(code, 1);
    let got: Vec<(&str, u64, u64)> = diags
        .iter()
        .map(|d| (d.code.as_str(), d.line, d.column))
        .collect();
    assert_eq!(
        got,
        vec![
            ("runbook::outcome_not_available", 5, 38),
            ("runbook::duplicate_step", 7, 9),
            ("runbook::finally_rollback", 12, 15),
            ("runbook::unknown_step", 16, 13),
        ],
        "{diags:?}"
    );
}

#[test]
fn a_finally_step_cannot_need_a_step_of_the_run() {
    let (diags, code) = validate(
        "runbook: 1\nname: t\nsteps:\n  - id: deploy\n    run: { program: 'true' }\nfinally:\n  - id: cleanup\n    needs: [deploy]\n    run: { program: 'true' }\n",
    );
    assert_eq!(code, 1);
    assert_eq!(
        diags,
        vec![crate::support::diag(
            "finally_needs_step",
            8,
            13,
            "finally step `cleanup` needs `deploy`, a step of the run"
        )]
    );
}

#[test]
fn defaults_env_is_merged_per_name_and_the_step_wins() {
    let t = Test::new()
        .file(
            "r.yaml",
            "runbook: 1\nname: t\ndefaults:\n  env: { A: from-defaults, B: from-defaults }\nsteps:\n  - id: own\n    env: { B: from-step }\n    run: { shell: sh, script: 'echo \"$A $B\" >> out' }\n  - id: inherits\n    needs: [own]\n    run: { shell: sh, script: 'echo \"$A $B\" >> out' }\n",
        )
        .args(["run", "r.yaml"]);
    let out = t.run();
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert_eq!(
        t.read("out"),
        "from-defaults from-step\nfrom-defaults from-defaults\n"
    );
}

#[test]
fn relative_cwd_and_dot_slash_program_start_at_the_runbook_directory() {
    // Run from the scratch directory, the runbook one level down: relative paths must follow
    // the runbook, not the operator's shell.
    let t = Test::new()
        .file("ops/work/.keep", "")
        .file("ops/tool.sh", "#!/bin/sh\necho tool ran in \"$(pwd)\" > \"$1\"\n")
        .file(
            "ops/r.yaml",
            "runbook: 1\nname: t\ndefaults:\n  cwd: work\nsteps:\n  - id: own-cwd\n    run: { shell: sh, script: pwd > here, cwd: . }\n  - id: default-cwd\n    run: { shell: sh, script: pwd > here }\n  - id: tool\n    run: { program: ./tool.sh, args: ['{{ run.dir }}/tool.out'] }\n",
        )
        .args(["run", "ops/r.yaml"]);
    make_executable(&t.path().join("ops/tool.sh"));
    let out = t.run();
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let ops = std::fs::canonicalize(t.path().join("ops")).expect("ops dir");
    assert_eq!(t.read("ops/here").trim(), ops.display().to_string());
    assert_eq!(
        t.read("ops/work/here").trim(),
        ops.join("work").display().to_string()
    );
    assert_eq!(
        t.read("ops/tool.out").trim(),
        format!("tool ran in {}", ops.join("work").display())
    );
    assert!(
        !t.path().join("here").exists(),
        "ran in the shell's directory"
    );
}

#[test]
fn plan_shows_run_dir_and_resolved_paths() {
    let t = Test::new()
        .file(
            "ops/r.yaml",
            "runbook: 1\nname: t\nsteps:\n  - id: tool\n    run: { program: ./tool.sh, args: ['{{ run.dir }}'], cwd: work }\n",
        )
        .args(["plan", "ops/r.yaml", "--format", "json"]);
    let out = t.run();
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let ops = std::fs::canonicalize(t.path().join("ops")).expect("ops dir");
    let action = &out.json()["steps"][0]["action"];
    assert_eq!(action["program"], ops.join("tool.sh").display().to_string());
    assert_eq!(action["args"][0], ops.display().to_string());
    assert_eq!(action["cwd"], ops.join("work").display().to_string());
}

pub fn make_executable(path: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}

#[test]
fn plan_shows_finally_steps_in_a_section_of_their_own() {
    let t = Test::new().file(
        "r.yaml",
        book(
            "  - id: a\n    run: { program: 'true' }\n",
            "  - id: tell\n    needs: [tidy]\n    run: { program: echo, args: ['{{ run.outcome }}'] }\n  - id: tidy\n    run: { program: 'true' }\n",
        ),
    );
    let json = Test::in_dir(t.path())
        .args(["plan", "r.yaml", "--format", "json"])
        .run();
    assert_eq!(json.code, 0, "{}", json.stderr);
    let plan = json.json();
    let ids: Vec<&str> = plan["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .map(|s| s["id"].as_str().expect("id"))
        .collect();
    assert_eq!(ids, ["a"]);
    let finally = &plan["finally"];
    assert_eq!(finally[0]["id"], "tell");
    assert_eq!(finally[0]["wave"], 2);
    assert_eq!(finally[0]["action"]["args"][0], "<run.outcome>");
    assert_eq!(finally[1]["wave"], 1);
    let human = Test::in_dir(t.path()).args(["plan", "r.yaml"]).run();
    assert_eq!(human.code, 0, "{}", human.stderr);
    let section = human
        .stdout
        .split_once("\nFinally (")
        .map(|(_, rest)| rest)
        .unwrap_or_else(|| panic!("no finally section:\n{}", human.stdout));
    assert!(section.contains("▸ tell"), "{section}");
    assert!(section.contains("needs: tidy"), "{section}");
}

#[test]
fn env_file_values_are_read_in_templates_and_secret_ones_masked() {
    // The shortest common secret: a 4-character token, masked in the screen and the journal.
    let t = Test::new()
        .file("ops/site.env", "# site\nexport HOST=db1.example\nTOKEN='t0k3'\n")
        .file(
            "ops/r.yaml",
            "runbook: 1\nname: t\nenv_file: { path: site.env, secret: [TOKEN] }\nsteps:\n  - id: show\n    env: { HOST: '{{ env.HOST }}', TOKEN: '{{ env.TOKEN }}' }\n    run: { shell: sh, script: 'echo \"host=$HOST token=$TOKEN\" > \"$HOST.out\"; echo \"token=$TOKEN\"' }\n",
        )
        .args(["run", "ops/r.yaml", "--output", "json"]);
    let out = t.run();
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    // The command saw the real values...
    assert_eq!(t.read("db1.example.out"), "host=db1.example token=t0k3\n");
    // ...nothing shown or journaled did.
    assert!(!out.stdout.contains("t0k3"), "{}", out.stdout);
    assert!(out.stdout.contains("token=***"), "{}", out.stdout);
    let journals = walk(&t.path().join(".runbook"));
    assert!(!journals.is_empty(), "no journal under .runbook");
    for text in journals {
        assert!(!text.contains("t0k3"), "{text}");
    }
}

fn walk(dir: &std::path::Path) -> Vec<String> {
    let mut texts = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            texts.extend(walk(&path));
        } else if let Ok(text) = std::fs::read_to_string(&path) {
            texts.push(text);
        }
    }
    texts
}

#[test]
fn a_missing_env_file_is_an_error_naming_it_and_where_it_is_declared() {
    let t = Test::new()
        .file(
            "r.yaml",
            "runbook: 1\nname: t\nenv_file:\n  path: site.env\nsteps:\n  - id: a\n    run: { shell: sh, script: 'touch ran' }\n",
        )
        .args(["run", "r.yaml"]);
    let out = t.run();
    assert_eq!(out.code, 2, "{}{}", out.stdout, out.stderr);
    assert!(out.stderr.contains("r.yaml:4:9"), "{}", out.stderr);
    assert!(out.stderr.contains("site.env"), "{}", out.stderr);
    assert!(out.stderr.contains("nothing was run"), "{}", out.stderr);
    assert!(!t.path().join("ran").exists());
}

#[test]
fn a_secret_name_the_env_file_does_not_set_is_refused() {
    // A typo under `secret` would otherwise leave the real value unmasked.
    let t = Test::new()
        .file("site.env", "TOKEN=abcd\n")
        .file(
            "r.yaml",
            "runbook: 1\nname: t\nenv_file: { path: site.env, secret: [TOKNE] }\nsteps:\n  - id: a\n    run: { program: echo, args: ['{{ env.TOKEN }}'] }\n",
        )
        .args(["run", "r.yaml"]);
    let out = t.run();
    assert_eq!(out.code, 2, "{}{}", out.stdout, out.stderr);
    assert!(out.stderr.contains("`TOKNE`"), "{}", out.stderr);
    assert!(!out.stdout.contains("abcd"), "{}", out.stdout);
}

#[test]
fn a_bad_env_file_line_is_located() {
    let t = Test::new()
        .file("site.env", "A=1\nthis is not a setting\n")
        .file(
            "r.yaml",
            "runbook: 1\nname: t\nenv_file: { path: site.env }\nsteps:\n  - id: a\n    run: { program: echo, args: ['{{ env.A }}'] }\n",
        )
        .args(["run", "r.yaml"]);
    let out = t.run();
    assert_eq!(out.code, 2, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stderr.contains("site.env` line 2: expected NAME=value"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_finally_approval_without_a_terminal_is_refused_before_anything_runs() {
    let t = Test::new()
        .file(
            "r.yaml",
            book(
                "  - id: a\n    run: { shell: sh, script: 'touch ran' }\n",
                "  - id: confirm-cleanup\n    approval: { prompt: 'Clean up?' }\n",
            ),
        )
        .args(["run", "r.yaml"]);
    let out = t.run();
    assert_eq!(out.code, 2, "{}{}", out.stdout, out.stderr);
    assert!(out.stderr.contains("confirm-cleanup"), "{}", out.stderr);
    assert!(!t.path().join("ran").exists());
    let approved = Test::in_dir(t.path())
        .args(["run", "r.yaml", "--approve", "confirm-cleanup"])
        .run();
    assert_eq!(approved.code, 0, "{}{}", approved.stdout, approved.stderr);
}
