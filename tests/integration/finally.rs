//! `finally` steps, `defaults.env` and `defaults.cwd`, and paths relative to the runbook
//! file: each checked through what the real binary does.

use crate::support::Test;

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
