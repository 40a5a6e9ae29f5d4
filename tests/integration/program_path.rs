//! A bare program name is looked up through `PATH` once per run: what a step starts, and what
//! it is told, stay those of a lookup at every start.

use crate::support::Test;

/// A `PATH` of `dirs` (under the test's directory) before the system's.
fn path_with(t: &Test, dirs: &[&str]) -> String {
    let mine: Vec<String> = dirs
        .iter()
        .map(|d| t.path().join(d).display().to_string())
        .collect();
    format!("{}:/usr/local/bin:/usr/bin:/bin", mine.join(":"))
}

/// An executable script `dir/name` that prints `says`.
fn tool(t: Test, dir: &str, name: &str, says: &str) -> Test {
    let t = t.file(
        &format!("{dir}/{name}"),
        format!("#!/bin/sh\necho {says}\n"),
    );
    use std::os::unix::fs::PermissionsExt;
    let path = t.path().join(dir).join(name);
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    t
}

/// Each step's stdout, in step order, from the `step_finished` events.
fn stdouts(out: &crate::support::Output) -> Vec<String> {
    crate::support::events_of(&out.events(), "step_finished")
        .iter()
        .map(|e| e["stdout"].as_str().unwrap_or("").trim_end().to_owned())
        .collect()
}

#[test]
fn a_program_not_on_path_fails_with_the_error_of_the_lookup() {
    let yaml = "runbook: 1\nname: missing\nsteps:\n  - id: a\n    run: { program: no-such-program-here, args: [x] }\n";
    let out = Test::new()
        .file("m.yaml", yaml)
        .args(["run", "m.yaml"])
        .run();
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stdout.contains(
            "✗ a failed after 1 attempt: cannot start `no-such-program-here`: No such file or directory (os error 2)"
        ),
        "{}",
        out.stdout
    );
}

#[test]
fn a_program_found_on_path_is_started_under_its_own_name() {
    // argv[0] is the name the step gave, not the file found: `sh` says `$0` is `sh`.
    let yaml = "runbook: 1\nname: name\nsteps:\n  - id: a\n    run: { program: sh, args: [-c, 'echo \"$0\"'] }\n  - id: b\n    needs: [a]\n    run: { program: sh, args: [-c, 'echo \"$0\"'] }\n";
    let out = Test::new()
        .file("n.yaml", yaml)
        .args(["run", "n.yaml", "--output", "json"])
        .run();
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(stdouts(&out), ["sh", "sh"]);
}

#[test]
fn a_program_removed_during_the_run_is_looked_up_again() {
    let yaml = "runbook: 1\nname: gone\nsteps:\n  - id: first\n    run: { program: tool }\n  - id: remove\n    needs: [first]\n    run: { program: rm, args: [a/tool] }\n  - id: again\n    needs: [remove]\n    run: { program: tool }\n";
    let t = Test::new().file("g.yaml", yaml);
    let t = tool(tool(t, "a", "tool", "from-a"), "b", "tool", "from-b");
    let path = path_with(&t, &["a", "b"]);
    let out = t
        .env("PATH", &path)
        .args(["run", "g.yaml", "--output", "json"])
        .run();
    assert_eq!(out.code, 0, "{}", out.stdout);
    assert_eq!(stdouts(&out), ["from-a", "", "from-b"]);
}

#[test]
fn a_step_that_sets_path_finds_its_program_in_its_own_path() {
    let t = Test::new();
    let b = t.path().join("b").display().to_string();
    let yaml = format!(
        "runbook: 1\nname: own\nsteps:\n  - id: run-path\n    run: {{ program: tool }}\n  - id: own-path\n    needs: [run-path]\n    env: {{ PATH: \"{b}:/usr/bin:/bin\" }}\n    run: {{ program: tool }}\n"
    );
    let t = t.file("o.yaml", yaml);
    let t = tool(tool(t, "a", "tool", "from-a"), "b", "tool", "from-b");
    let path = path_with(&t, &["a"]);
    let out = t
        .env("PATH", &path)
        .args(["run", "o.yaml", "--output", "json"])
        .run();
    assert_eq!(out.code, 0, "{}", out.stdout);
    assert_eq!(stdouts(&out), ["from-a", "from-b"]);
}

/// A step whose `PATH` is `path`, running `program` in the directory `cwd`.
fn own_path_step(path: &str, program: &str, cwd: &str) -> String {
    format!(
        "runbook: 1\nname: own\nsteps:\n  - id: a\n    env: {{ PATH: \"{path}\" }}\n    run: {{ program: \"{program}\", cwd: \"{cwd}\" }}\n"
    )
}

#[test]
fn a_script_without_an_interpreter_line_runs_under_sh() {
    // What execvp does with a file the kernel will not start (ENOEXEC).
    let t = Test::new().file("bare", "echo \"bare ran with $1\"\n");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(
        t.path().join("bare"),
        std::fs::Permissions::from_mode(0o755),
    )
    .expect("chmod");
    let yaml =
        "runbook: 1\nname: bare\nsteps:\n  - id: a\n    run: { program: ./bare, args: [x] }\n";
    let out = t
        .file("b.yaml", yaml)
        .args(["run", "b.yaml", "--output", "json"])
        .run();
    assert_eq!(out.code, 0, "{}", out.stdout);
    assert_eq!(stdouts(&out), ["bare ran with x"]);
}

#[test]
fn a_relative_directory_of_a_steps_path_is_read_from_its_working_directory() {
    let t = tool(Test::new(), "work/bin", "tool", "from-work-bin");
    let work = t.path().join("work").display().to_string();
    let out = t
        .file("r.yaml", own_path_step("bin:/usr/bin:/bin", "tool", &work))
        .args(["run", "r.yaml", "--output", "json"])
        .run();
    assert_eq!(out.code, 0, "{}", out.stdout);
    assert_eq!(stdouts(&out), ["from-work-bin"]);
}

#[test]
fn a_file_on_path_that_may_not_run_is_passed_over_for_the_next() {
    let t = tool(Test::new(), "b", "tool", "from-b").file("a/tool", "#!/bin/sh\necho from-a\n");
    let path = path_with(&t, &["a", "b"]);
    let out = t
        .file("p.yaml", own_path_step(&path, "tool", "."))
        .args(["run", "p.yaml", "--output", "json"])
        .run();
    assert_eq!(out.code, 0, "{}", out.stdout);
    assert_eq!(stdouts(&out), ["from-b"]);
}

#[test]
fn a_program_found_only_where_it_may_not_run_fails_with_permission_denied() {
    let t = Test::new().file("a/tool", "#!/bin/sh\necho from-a\n");
    let path = path_with(&t, &["a"]);
    let out = t
        .file("p.yaml", own_path_step(&path, "tool", "."))
        .args(["run", "p.yaml"])
        .run();
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stdout
            .contains("cannot start `tool`: Permission denied (os error 13)"),
        "{}",
        out.stdout
    );
}

#[test]
fn a_working_directory_that_is_not_there_fails_the_step_and_says_so() {
    let yaml = "runbook: 1\nname: cwd\nsteps:\n  - id: a\n    run: { program: /usr/bin/true, cwd: /no/such/dir }\n";
    let out = Test::new()
        .file("c.yaml", yaml)
        .args(["run", "c.yaml"])
        .run();
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stdout
            .contains("No such file or directory (os error 2)"),
        "{}",
        out.stdout
    );
}

#[test]
fn a_nul_character_from_a_parameter_fails_the_step_and_says_so() {
    // Validation refuses a NUL written in the runbook; one from a parameter arrives at the start.
    let yaml = "runbook: 1\nname: nul\nparams:\n  x: { default: \"\" }\nsteps:\n  - id: arg\n    run: { program: /usr/bin/echo, args: [\"{{ params.x }}\"] }\n  - id: env\n    env: { V: \"{{ params.x }}\" }\n    run: { program: /usr/bin/true }\n";
    let out = Test::new()
        .file("n.yaml", yaml)
        .file("p.yaml", "x: \"a\\0b\"\n")
        .args(["run", "n.yaml", "--params", "p.yaml"])
        .run();
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    for step in ["arg", "env"] {
        let failed = format!(
            "✗ {step} failed after 1 attempt: cannot start `/usr/bin/{}`: a NUL character in its program, arguments, environment or working directory",
            if step == "arg" { "echo" } else { "true" }
        );
        assert!(out.stdout.contains(&failed), "{}", out.stdout);
    }
}
