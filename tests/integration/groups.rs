//! Step groups: a `use:` step includes a group file whose steps run as `USE.STEP`, validated
//! in their own file; checked through what the real binary does.

use std::time::Instant;

use crate::support::{Test, repo};

/// A group that logs its server and greeting, then its password through the environment, and
/// exposes the first line as an output.
const PRECHECKS: &str = r#"group: 1
name: prechecks
params:
  server: { type: string }
  password: { type: string, default: none }
  greeting: { type: string, default: hello }
steps:
  - id: check
    run: { shell: sh, script: 'test {{ params.server | shell_quote }} != bad && echo check {{ params.server | shell_quote }} {{ params.greeting | shell_quote }} | tee -a log' }
    outputs:
      line: "{{ result.stdout | trim }}"
  - id: login
    needs: [check]
    run: { shell: sh, script: 'echo "login $PW" >> log; echo "login $PW"' }
    env: { PW: "{{ params.password }}" }
    rollback: { run: { shell: sh, script: 'echo undo login {{ params.server | shell_quote }} >> log' } }
outputs:
  checked: "{{ steps.check.outputs.line }}"
"#;

/// A runbook that includes `groups/pre.yaml` as `prechecks` between `start` and `after`.
fn book(with: &str, after: &str) -> String {
    format!(
        r#"runbook: 1
name: failover
params:
  server: {{ type: string, default: sql2 }}
secrets:
  pw: {{ env: PW_SECRET }}
steps:
  - id: start
    run: {{ shell: sh, script: 'echo start >> log' }}
    rollback: {{ run: {{ shell: sh, script: 'echo undo start >> log' }} }}
  - id: prechecks
    needs: [start]
    use: ./groups/pre.yaml
    with: {with}
  - id: after
    needs: [prechecks]
    run:
      shell: sh
      script: |
        {after}
"#
    )
}

const WITH: &str = r#"{ server: "{{ params.server }}", password: "{{ secrets.pw }}" }"#;
const AFTER: &str = r#"echo after {{ steps['prechecks'].outputs.checked | shell_quote }} / {{ steps['prechecks.check'].outputs.line | shell_quote }} >> log"#;

/// `runbook validate ARGS` over `files` (path, text) written into a scratch directory.
fn validate_files(files: &[(&str, &str)], args: &[&str]) -> crate::support::Output {
    let mut t = Test::new();
    for (path, text) in files {
        t = t.file(path, *text);
    }
    t.args(["validate"]).args(args.iter().copied()).run()
}

/// Asserts that a failed `validate` printed `text`.
#[track_caller]
fn assert_refused_saying(out: &crate::support::Output, text: &str) {
    assert_eq!(out.code, 1, "{}", out.stdout);
    assert!(out.stdout.contains(text), "{}", out.stdout);
}

fn both(out: &crate::support::Output) -> String {
    format!("{}{}", out.stdout, out.stderr)
}

#[test]
fn a_group_used_by_two_runbooks_runs_under_its_use_ids_and_a_later_step_reads_its_output() {
    let second = r#"runbook: 1
name: failback
steps:
  - id: back
    use: ./groups/pre.yaml
    with: { server: primary, greeting: bye }
"#;
    let t = Test::new()
        .file("groups/pre.yaml", PRECHECKS)
        .file("failover.yaml", book(WITH, AFTER))
        .file("failback.yaml", second)
        .env("PW_SECRET", "s3cret-pw")
        .args(["run", "failover.yaml"]);
    let out = t.run();
    assert_eq!(out.code, 0, "{}", both(&out));
    assert_eq!(
        t.read("log"),
        "start\ncheck sql2 hello\nlogin s3cret-pw\nafter check sql2 hello / check sql2 hello\n"
    );
    for id in ["prechecks.check", "prechecks.login", "prechecks"] {
        assert!(
            out.stdout.contains(&format!("✓ {id} ")),
            "{id}: {}",
            out.stdout
        );
    }
    let back = Test::in_dir(t.path()).args(["run", "failback.yaml"]).run();
    assert_eq!(back.code, 0, "{}", both(&back));
    assert!(t.read("log").ends_with("check primary bye\nlogin none\n"));
    // The journal and `show` know the steps by their ids in the runbook.
    let show = Test::in_dir(t.path())
        .args(["show", "--last", "--format", "json"])
        .run();
    assert_eq!(show.code, 0, "{}", both(&show));
    for id in ["\"back.check\"", "\"back.login\"", "\"back\""] {
        assert!(show.stdout.contains(id), "{id}: {}", show.stdout);
    }
}

#[test]
fn needs_on_the_group_waits_for_every_step_of_it_and_its_first_steps_wait_for_the_use_steps_needs()
{
    let t = Test::new()
        .file("groups/pre.yaml", PRECHECKS)
        .file("failover.yaml", book(WITH, AFTER))
        .args(["plan", "--format", "json", "failover.yaml"]);
    let out = t.run();
    assert_eq!(out.code, 0, "{}", both(&out));
    let plan = out.json();
    let steps = plan["steps"].as_array().unwrap();
    let find = |id: &str| {
        steps
            .iter()
            .find(|s| s["id"] == id)
            .unwrap_or_else(|| panic!("no {id} in {plan}"))
    };
    assert_eq!(
        find("prechecks.check")["needs"],
        serde_json::json!(["start"])
    );
    assert_eq!(
        find("prechecks.login")["needs"],
        serde_json::json!(["prechecks.check"])
    );
    assert_eq!(
        find("prechecks")["needs"],
        serde_json::json!(["prechecks.check", "prechecks.login"])
    );
    assert_eq!(find("after")["needs"], serde_json::json!(["prechecks"]));
    let wave = |id: &str| find(id)["wave"].as_u64().unwrap();
    assert!(wave("start") < wave("prechecks.check"));
    assert!(wave("prechecks.login") < wave("prechecks"));
    assert!(wave("prechecks") < wave("after"));
}

#[test]
fn an_error_inside_the_group_is_located_in_the_group_file_with_the_chain_it_was_included_from() {
    let broken = PRECHECKS.replace("{{ params.greeting |", "{{ params.greting |");
    let t = Test::new()
        .file("groups/pre.yaml", broken)
        .file("failover.yaml", book(WITH, AFTER));
    let json = Test::in_dir(t.path())
        .args(["validate", "--format", "json", "failover.yaml"])
        .run();
    assert_eq!(json.code, 1, "{}", both(&json));
    let doc = json.json();
    let diag = doc["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["code"] == "runbook::unknown_variable")
        .unwrap_or_else(|| panic!("{doc}"));
    assert_eq!(diag["file"], "groups/pre.yaml");
    assert_eq!(
        (diag["line"].as_u64(), diag["column"].as_u64()),
        (Some(9), Some(129))
    );
    assert_eq!(
        diag["included_from"],
        serde_json::json!(["failover.yaml:13:10"])
    );
    assert_eq!(diag["help"], "did you mean `greeting`?");
    let human = Test::in_dir(t.path())
        .args(["validate", "failover.yaml"])
        .run();
    assert!(
        human
            .stdout
            .contains("in groups/pre.yaml:9:129, included from failover.yaml:13:10"),
        "{}",
        human.stdout
    );
    assert!(
        human.stdout.contains("╭─[groups/pre.yaml:9:129]"),
        "{}",
        human.stdout
    );
    let github = Test::in_dir(t.path())
        .args(["validate", "--format", "github", "failover.yaml"])
        .run();
    assert!(
        github
            .stdout
            .contains("file=groups/pre.yaml,line=9,col=129")
            && github
                .stdout
                .contains("%0Ain groups/pre.yaml:9:129, included from failover.yaml:13:10"),
        "{}",
        github.stdout
    );
    // The runbook does not run, and says why.
    let run = Test::in_dir(t.path()).args(["run", "failover.yaml"]).run();
    assert_eq!(run.code, 2);
    assert!(
        run.stderr
            .contains("groups/pre.yaml:9:129, included from failover.yaml:13:10")
    );
}

#[test]
fn a_nested_group_error_names_every_include_on_the_way() {
    let outer = r#"group: 1
name: outer
steps:
  - id: inner
    use: ./inner.yaml
"#;
    let inner = "group: 1\nname: inner\nsteps:\n  - id: x\n    run: { program: echo, args: ['{{ params.nope }}'] }\n";
    let main = "runbook: 1\nname: m\nsteps:\n  - id: o\n    use: groups/outer.yaml\n";
    let out = validate_files(
        &[
            ("groups/outer.yaml", outer),
            ("groups/inner.yaml", inner),
            ("m.yaml", main),
        ],
        &["m.yaml"],
    );
    assert_refused_saying(
        &out,
        "in groups/inner.yaml:5:38, included from groups/outer.yaml:5:10, included from m.yaml:5:10",
    );
}

#[test]
fn nested_groups_run_with_ids_of_every_level_and_their_own_params() {
    let outer = r#"group: 1
name: outer
params:
  who: { type: string }
steps:
  - id: inner
    use: ./inner.yaml
    with: { name: "outer-{{ params.who }}" }
  - id: done
    needs: [inner]
    run: { shell: sh, script: 'echo "done {{ steps.inner.outputs.said }}" >> log' }
outputs:
  said: "{{ steps.inner.outputs.said }}"
"#;
    let inner = r#"group: 1
name: inner
params:
  name: { type: string }
steps:
  - id: say
    run: { shell: sh, script: 'echo "say {{ params.name }}" | tee -a log' }
outputs:
  said: "{{ steps.say.stdout | trim }}"
"#;
    let main = r#"runbook: 1
name: m
steps:
  - id: a
    use: groups/outer.yaml
    with: { who: x }
  - id: b
    needs: [a]
    run: { shell: sh, script: 'echo "b {{ steps.a.outputs.said }} {{ steps[''a.inner.say''].status }}" >> log' }
"#;
    let t = Test::new()
        .file("groups/outer.yaml", outer)
        .file("groups/inner.yaml", inner)
        .file("m.yaml", main)
        .args(["run", "m.yaml"]);
    let out = t.run();
    assert_eq!(out.code, 0, "{}", both(&out));
    assert_eq!(
        t.read("log"),
        "say outer-x\ndone say outer-x\nb say outer-x succeeded\n"
    );
    assert!(out.stdout.contains("✓ a.inner.say "), "{}", out.stdout);
}

#[test]
fn include_cycles_are_errors_naming_the_chain() {
    let a = "group: 1\nname: a\nsteps:\n  - id: to-b\n    use: ./b.yaml\n";
    let b = "group: 1\nname: b\nsteps:\n  - id: to-a\n    use: ./a.yaml\n";
    let main = "runbook: 1\nname: m\nsteps:\n  - id: g\n    use: ./a.yaml\n";
    let files = [("a.yaml", a), ("b.yaml", b), ("m.yaml", main)];
    let out = validate_files(&files, &["m.yaml"]);
    assert_refused_saying(
        &out,
        "the groups include each other: a.yaml → b.yaml → a.yaml",
    );
    assert_refused_saying(
        &out,
        "in b.yaml:5:10, included from a.yaml:5:10, included from m.yaml:5:10",
    );
    let me = "group: 1\nname: me\nsteps:\n  - id: again\n    use: ./me.yaml\n";
    let main = "runbook: 1\nname: m\nsteps:\n  - id: g\n    use: ./me.yaml\n";
    let out = validate_files(&[("me.yaml", me), ("m.yaml", main)], &["m.yaml"]);
    assert_refused_saying(&out, "the groups include each other: me.yaml → me.yaml");
}

#[test]
fn unknown_with_param_has_a_did_you_mean_and_a_missing_required_param_is_named() {
    let t = Test::new()
        .file("groups/pre.yaml", PRECHECKS)
        .file(
            "failover.yaml",
            book(r#"{ sevrer: "{{ params.server }}" }"#, "true"),
        )
        .args(["validate", "--format", "json", "failover.yaml"]);
    let out = t.run();
    assert_eq!(out.code, 1, "{}", out.stdout);
    let doc = out.json();
    let diags = doc["diagnostics"].as_array().unwrap();
    let unknown = diags
        .iter()
        .find(|d| d["code"] == "runbook::unknown_group_param")
        .unwrap_or_else(|| panic!("{doc}"));
    assert_eq!(
        unknown["message"],
        "group `prechecks` has no param `sevrer`"
    );
    assert_eq!(unknown["help"], "did you mean `server`?");
    assert_eq!(
        (unknown["line"].as_u64(), unknown["column"].as_u64()),
        (Some(14), Some(21))
    );
    let missing = diags
        .iter()
        .find(|d| d["code"] == "runbook::missing_group_param")
        .unwrap_or_else(|| panic!("{doc}"));
    assert_eq!(
        missing["message"],
        "group `prechecks` needs param `server`, which `with` does not pass"
    );
    assert_eq!(missing["line"], 13);
}

#[test]
fn a_missing_group_file_and_a_path_leaving_the_runbooks_directory_are_located_errors() {
    let main = "runbook: 1\nname: m\nsteps:\n  - id: gone\n    use: ./groups/nope.yaml\n  - id: out\n    use: ../outside.yaml\n  - id: abs\n    use: /etc/hostname\n";
    let t = Test::new()
        .file("outside.yaml", "group: 1\nname: o\nsteps: []\n")
        .file("book/m.yaml", main);
    let out = Test::in_dir(t.path())
        .args(["validate", "--format", "json", "book/m.yaml"])
        .run();
    assert_eq!(out.code, 1, "{}", out.stdout);
    let doc = out.json();
    let diags: Vec<(String, u64, u64)> = doc["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["code"].as_str().unwrap().to_owned(),
                d["line"].as_u64().unwrap(),
                d["column"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        diags,
        [
            ("runbook::group_unreadable".to_owned(), 5, 10),
            ("runbook::group_outside".to_owned(), 7, 10),
            ("runbook::group_unreadable".to_owned(), 9, 10),
        ],
        "{doc}"
    );
    let messages = doc.to_string();
    assert!(
        messages.contains("cannot include `book/groups/nope.yaml`"),
        "{messages}"
    );
    assert!(
        messages.contains("`outside.yaml` is outside the runbook's directory"),
        "{messages}"
    );
    assert!(
        messages.contains("an absolute path; write it relative to this file"),
        "{messages}"
    );
    // A symlink out of the directory is refused like a path.
    std::os::unix::fs::symlink(
        t.path().join("outside.yaml"),
        t.path().join("book/link.yaml"),
    )
    .unwrap();
    let linked = Test::in_dir(t.path())
        .file_in(
            &t.path().join("book"),
            "l.yaml",
            "runbook: 1\nname: l\nsteps:\n  - id: g\n    use: ./link.yaml\n",
        )
        .args(["validate", "book/l.yaml"])
        .run();
    assert_eq!(linked.code, 1, "{}", linked.stdout);
    assert!(
        linked.stdout.contains("runbook::group_outside"),
        "{}",
        linked.stdout
    );
}

#[test]
fn a_use_step_with_an_action_a_loop_or_a_rollback_of_its_own_is_refused() {
    let main = r#"runbook: 1
name: m
steps:
  - id: g
    use: ./g.yaml
    run: { program: "true" }
    for_each: [a]
    rollback: { run: { program: "true" } }
  - id: h
    with: { x: 1 }
    run: { program: "true" }
  - id: bad.id
    use: ./g.yaml
"#;
    let out = Test::new()
        .file(
            "g.yaml",
            "group: 1\nname: g\nsteps:\n  - id: s\n    run: { program: 'true' }\n",
        )
        .file("m.yaml", main)
        .args(["validate", "--format", "json", "m.yaml"])
        .run();
    assert_eq!(out.code, 1, "{}", out.stdout);
    let doc = out.json();
    let codes: Vec<(&str, u64)> = doc["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| (d["code"].as_str().unwrap(), d["line"].as_u64().unwrap()))
        .collect();
    assert_eq!(
        codes,
        [
            ("runbook::use_with_key", 6),
            ("runbook::use_with_key", 7),
            ("runbook::use_with_key", 8),
            ("runbook::with_without_use", 10),
            ("runbook::invalid_id", 12),
        ],
        "{doc}"
    );
}

#[test]
fn validate_dir_checks_group_files_as_groups_and_not_as_incomplete_runbooks() {
    let t = Test::new()
        .file("groups/pre.yaml", PRECHECKS)
        .file("failover.yaml", book(WITH, AFTER))
        .args(["validate", "--format", "json", "--deny-warnings", "."]);
    let out = t.run();
    assert_eq!(out.code, 0, "{}", out.stdout);
    assert_eq!(out.json()["summary"]["files"], 2);
    // A group may use a group beside its own folder, inside the runbook's: checked on its
    // own, it is not refused as leaving its folder.
    let shared = Test::new()
        .file(
            "shared/b.yaml",
            "group: 1\nname: b\nsteps:\n  - id: s\n    run: { program: 'true' }\n",
        )
        .file(
            "groups/a.yaml",
            "group: 1\nname: a\nsteps:\n  - id: b\n    use: ../shared/b.yaml\n",
        )
        .file(
            "m.yaml",
            "runbook: 1\nname: m\nsteps:\n  - id: a\n    use: ./groups/a.yaml\n",
        )
        .args(["validate", "."])
        .run();
    assert_eq!(shared.code, 0, "{}", shared.stdout);
    assert!(
        shared.stdout.ends_with("3 files: 0 errors, 0 warnings\n"),
        "{}",
        shared.stdout
    );
    // A broken group file in the folder is reported in its own right.
    let broken = Test::new()
        .file(
            "groups/pre.yaml",
            PRECHECKS.replace("name: prechecks", "name: prechecks\nsecrets: {}"),
        )
        .args(["validate", "--format", "json", "."])
        .run();
    assert_eq!(broken.code, 1, "{}", broken.stdout);
    let doc = broken.json();
    let diag = &doc["diagnostics"][0];
    assert_eq!(diag["code"], "runbook::unknown_key");
    assert_eq!(diag["file"], "./groups/pre.yaml");
    assert!(diag.get("included_from").is_none(), "{doc}");
    // A group file cannot be run or planned on its own.
    let run = Test::in_dir(t.path())
        .args(["plan", "groups/pre.yaml"])
        .run();
    assert_eq!(run.code, 2, "{}", both(&run));
    assert!(
        run.stderr.contains("is a step group, not a runbook"),
        "{}",
        run.stderr
    );
}

#[test]
fn plan_fail_at_a_step_inside_a_group_predicts_the_real_run() {
    let t = Test::new()
        .file("groups/pre.yaml", PRECHECKS)
        .file(
            "failover.yaml",
            book(
                WITH,
                "echo after >> log; test -z {{ params.server | shell_quote }}",
            ),
        )
        .env("PW_SECRET", "pw-value");
    let plan = Test::in_dir(t.path())
        .args(["plan", "failover.yaml", "--fail-at", "after"])
        .run();
    assert_eq!(plan.code, 0, "{}", both(&plan));
    assert!(
        plan.stdout.contains("1. prechecks.login\n"),
        "{}",
        plan.stdout
    );
    let run = Test::in_dir(t.path())
        .env("PW_SECRET", "pw-value")
        .args(["run", "failover.yaml"])
        .run();
    assert_eq!(run.code, 1, "{}", both(&run));
    assert!(
        t.read("log")
            .ends_with("after\nundo login sql2\nundo start\n"),
        "{}",
        t.read("log")
    );
    // A failure inside the group: the group's steps that completed are rolled back like any.
    let inside = Test::in_dir(t.path())
        .args(["plan", "failover.yaml", "--fail-at", "prechecks.check"])
        .run();
    assert_eq!(inside.code, 0, "{}", both(&inside));
    assert!(
        inside.stdout.contains("completed before it: start\n"),
        "{}",
        inside.stdout
    );
    assert!(inside.stdout.contains("1. start\n"), "{}", inside.stdout);
    std::fs::write(t.path().join("log"), "").unwrap();
    let failing = Test::in_dir(t.path())
        .env("PW_SECRET", "pw-value")
        .args(["run", "failover.yaml", "-p", "server=bad"])
        .run();
    assert_eq!(failing.code, 1, "{}", both(&failing));
    assert_eq!(t.read("log"), "start\nundo start\n");
}

#[test]
fn a_secret_passed_through_with_never_appears() {
    // The shortest secret there is, and one inside longer output.
    for secret in ["a", "hunter2-secret"] {
        let t = Test::new()
            .file("groups/pre.yaml", PRECHECKS)
            .file("failover.yaml", book(WITH, AFTER))
            .env("PW_SECRET", secret);
        let run = Test::in_dir(t.path())
            .env("PW_SECRET", secret)
            .args(["run", "--output", "json", "failover.yaml"])
            .run();
        assert_eq!(run.code, 0, "{}", both(&run));
        assert!(t.read("log").contains(&format!("login {secret}\n")));
        let show = Test::in_dir(t.path()).args(["show", "--last"]).run();
        let plan = Test::in_dir(t.path())
            .env("PW_SECRET", secret)
            .args(["plan", "failover.yaml"])
            .run();
        assert!(plan.stdout.contains("PW=***"), "{}", plan.stdout);
        let mut journals = String::new();
        for entry in walk(&t.path().join(".runbook")) {
            journals.push_str(&std::fs::read_to_string(entry).unwrap_or_default());
        }
        for (what, text) in [
            ("run", both(&run)),
            ("show", both(&show)),
            ("plan", both(&plan)),
            ("journal", journals),
        ] {
            // A secret this short is masked wherever a value is exactly the secret (the env
            // var it was passed as, a param); inside output only from 4 characters on.
            let leaked = if secret.len() < 4 {
                text.contains(&format!("\"{secret}\"")) || text.contains(&format!("PW={secret}"))
            } else {
                text.contains(secret)
            };
            assert!(!leaked, "{what} shows the secret {secret:?}:\n{text}");
        }
    }
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                files.push(path);
            }
        }
    }
    assert!(!files.is_empty(), "no journal under {}", dir.display());
    files
}

#[test]
fn shipped_group_example_runs_from_both_runbooks_that_share_it() {
    let dir = repo().join("runbooks/examples/groups");
    for name in ["switch-over.yaml", "switch-back.yaml"] {
        let path = dir.join(name);
        let plan = Test::new().args(["plan", path.to_str().unwrap()]).run();
        assert_eq!(plan.code, 0, "{name}: {}", both(&plan));
        assert!(
            plan.stdout.contains("prechecks.disk"),
            "{name}: {}",
            plan.stdout
        );
        let run = Test::new().args(["run", path.to_str().unwrap()]).run();
        assert_eq!(run.code, 0, "{name}: {}", both(&run));
    }
}

/// A runbook that includes `groups/g.yaml` `n` times, one after another.
fn many_uses(n: usize) -> String {
    let mut text = String::from("runbook: 1\nname: many\nsteps:\n");
    for i in 0..n {
        text.push_str(&format!(
            "  - id: u{i}\n    use: ./groups/g.yaml\n    with: {{ x: \"{i}\" }}\n"
        ));
        if i > 0 {
            text.push_str(&format!("    needs: [u{}]\n", i - 1));
        }
    }
    text
}

const MANY_GROUP: &str = "group: 1\nname: g\nparams:\n  x: { type: string }\nsteps:\n  - id: a\n    run: { program: echo, args: ['{{ params.x }}'] }\n  - id: b\n    needs: [a]\n    run: { program: echo, args: ['{{ steps.a.stdout }}'] }\noutputs:\n  o: '{{ steps.b.stdout }}'\n";

/// The time `validate` takes over a runbook that uses a group `n` times (best of three).
fn validate_time(n: usize) -> f64 {
    let t = Test::new()
        .file("groups/g.yaml", MANY_GROUP)
        .file("many.yaml", many_uses(n));
    (0..3)
        .map(|_| {
            let started = Instant::now();
            let out = Test::in_dir(t.path()).args(["validate", "many.yaml"]).run();
            assert_eq!(out.code, 0, "{}", out.stdout);
            started.elapsed().as_secs_f64()
        })
        .fold(f64::MAX, f64::min)
}

#[test]
fn validating_a_runbook_that_includes_a_group_hundreds_of_times_stays_linear() {
    let small = validate_time(200);
    let large = validate_time(800);
    // Four times the uses; quadratic work would take sixteen times as long.
    assert!(
        large < small * 8.0 + 0.2,
        "200 uses: {small:.3}s, 800 uses: {large:.3}s"
    );
}

#[test]
fn a_secret_passed_to_a_group_param_that_lands_on_a_command_line_is_flagged_at_the_with() {
    let inner = "group: 1\nname: inner\nparams:\n  token: { type: string }\nsteps:\n  - id: call\n    run: { program: echo, args: ['{{ params.token }}'] }\n";
    let outer = "group: 1\nname: outer\nparams:\n  pw: { type: string }\nsteps:\n  - id: nested\n    use: ./inner.yaml\n    with: { token: '{{ params.pw }}' }\n";
    let main = "runbook: 1\nname: m\nsecrets:\n  pw: { env: PW }\nsteps:\n  - id: direct\n    use: ./groups/inner.yaml\n    with: { token: '{{ secrets.pw }}' }\n  - id: through\n    use: ./groups/outer.yaml\n    with: { pw: '{{ secrets.pw }}' }\n";
    let out = Test::new()
        .file("groups/inner.yaml", inner)
        .file("groups/outer.yaml", outer)
        .file("m.yaml", main)
        .args(["validate", "--format", "json", "m.yaml"])
        .run();
    let doc = out.json();
    let found: Vec<(String, u64)> = doc["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["code"] == "runbook::secret_in_args")
        .map(|d| {
            (
                d["message"].as_str().unwrap().to_owned(),
                d["line"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        found,
        [
            (
                "secret `pw` is passed as `token`, which reaches the command line of `direct.call`"
                    .to_owned(),
                8
            ),
            (
                "secret `pw` is passed as `pw`, which reaches the command line of `through.nested.call`"
                    .to_owned(),
                11
            ),
        ],
        "{doc}"
    );
}

#[test]
fn a_groups_own_connection_reaches_its_server_with_a_password_passed_in_and_never_shown() {
    use crate::tds::{Reply, Server, Value};
    const PASSWORD: &str = "Gr0up-Secret!pw";
    let server = Server::start(PASSWORD, |_| {
        vec![Reply::Rows {
            columns: vec!["state_desc".into()],
            rows: vec![vec![Value::String("RESTORING".into())]],
        }]
    });
    let group = r#"group: 1
name: sql-prechecks
params:
  port: { type: string }
  password: { type: string }
connections:
  target: { mssql: "server=tcp:127.0.0.1,{{ params.port }};user id=sa;password={{ params.password }};encrypt=DANGER_PLAINTEXT" }
steps:
  - id: check-backup
    sql: { connection: target, query: "SELECT state_desc FROM sys.databases" }
    outputs: { state: "{{ result.rows[0].state_desc }}" }
outputs:
  state: "{{ steps['check-backup'].outputs.state }}"
"#;
    let main = format!(
        "runbook: 1\nname: m\nsecrets:\n  pw: {{ env: T_SQL_PW }}\nsteps:\n  - id: prechecks\n    use: ./groups/sql.yaml\n    with: {{ port: '{}', password: '{{{{ secrets.pw }}}}' }}\n  - id: after\n    needs: [prechecks]\n    assert: steps['prechecks'].outputs.state == 'RESTORING'\n",
        server.port()
    );
    let t = Test::new()
        .file("groups/sql.yaml", group)
        .file("m.yaml", main)
        .env("T_SQL_PW", PASSWORD)
        .args(["run", "m.yaml"]);
    let out = t.run();
    assert_eq!(out.code, 0, "{}", both(&out));
    assert_eq!(server.logins(), 1);
    assert!(out.stdout.contains("✓ after "), "{}", out.stdout);
    let plan = Test::in_dir(t.path())
        .env("T_SQL_PW", PASSWORD)
        .args(["plan", "m.yaml"])
        .run();
    assert!(
        plan.stdout.contains("sql on `prechecks.target`"),
        "{}",
        plan.stdout
    );
    for text in [both(&out), both(&plan)] {
        assert!(!text.contains(PASSWORD), "{text}");
    }
}

#[test]
fn a_group_used_hundreds_of_times_is_read_and_reported_once() {
    // A group file of about 4 MB (a long comment): read once per use, 300 uses would be
    // 1.2 GB of YAML to parse.
    let group = MANY_GROUP.replace("params:\n", "params:\n  unused_too: { default: y }\n");
    let mut padded = String::with_capacity(4_200_000);
    for _ in 0..50_000 {
        padded.push_str("# ....................................................................................\n");
    }
    padded.push_str(&group);
    let t = Test::new()
        .file("groups/g.yaml", padded)
        .file("many.yaml", many_uses(300));
    let started = Instant::now();
    let out = Test::in_dir(t.path())
        .args(["validate", "--format", "json", "many.yaml"])
        .run();
    let took = started.elapsed();
    assert_eq!(out.code, 0, "{}", out.stdout);
    // The group's one warning, once, for the first use.
    let doc = out.json();
    assert_eq!(doc["summary"]["warnings"], 1, "{doc}");
    assert_eq!(
        doc["diagnostics"][0]["included_from"],
        serde_json::json!(["many.yaml:5:10"])
    );
    assert!(took.as_secs_f64() < 20.0, "took {took:?}");
}

#[test]
fn resume_after_a_kill_inside_a_group_runs_nothing_completed_and_refuses_a_changed_group() {
    use crate::support::{journal_has, spawn, wait_until};
    let group = "group: 1\nname: g\nsteps:\n  - id: first\n    run: { shell: sh, script: 'echo first >> log' }\n  - id: slow\n    needs: [first]\n    run: { shell: sh, script: 'sleep 3; echo slow >> log' }\n";
    let main = "runbook: 1\nname: m\nsteps:\n  - id: g\n    use: ./groups/g.yaml\n  - id: last\n    needs: [g]\n    run: { shell: sh, script: 'echo last >> log' }\n";
    let t = Test::new()
        .file("groups/g.yaml", group)
        .file("m.yaml", main)
        .args(["run", "m.yaml"]);
    let mut child = spawn(&t);
    wait_until("the journal shows `g.slow` started", || {
        journal_has(t.path(), "step_started", "g.slow")
    });
    let _ = child.kill();
    let _ = child.wait();
    // Only the group file changed: the run is refused as changed all the same.
    std::fs::write(
        t.path().join("groups/g.yaml"),
        group.replace("sleep 3; ", ""),
    )
    .unwrap();
    let refused = Test::in_dir(t.path())
        .args(["resume", "--last", "--assume", "g.slow=rerun"])
        .run();
    assert_eq!(refused.code, 2, "{}", both(&refused));
    assert!(
        refused.stderr.contains("the runbook changed since run"),
        "{}",
        refused.stderr
    );
    let out = Test::in_dir(t.path())
        .args([
            "resume",
            "--last",
            "--assume",
            "g.slow=rerun",
            "--allow-changed",
        ])
        .run();
    assert_eq!(out.code, 0, "{}", both(&out));
    assert_eq!(t.read("log"), "first\nslow\nlast\n");
}
