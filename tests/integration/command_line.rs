//! The command line around the runbook format: shell completions, the man page,
//! `runbook init`, colour control and the version.

use std::process::{Command, Stdio};

use crate::support::{Test, repo};

const SUBCOMMANDS: [&str; 12] = [
    "validate",
    "graph",
    "plan",
    "run",
    "resume",
    "rollback",
    "runs",
    "show",
    "schema",
    "init",
    "completions",
    "man",
];

/// A runbook with two approvals among its steps; `params.yaml` is beside it to tempt the
/// completion into reading the wrong file.
const BOOK: &str = r#"runbook: 1
name: book
steps:
  - id: greet
    title: Say hello
    run: { program: echo, args: [hello] }
  - id: approve-one
    needs: [greet]
    approval: { prompt: "go?" }
  - id: approve-two
    needs: [approve-one]
    approval: { prompt: "really?" }
  - id: finish
    needs: [approve-two]
    wait: 1ms
"#;

/// Runs a shell script in the test's directory and returns its stdout (panics on failure: a
/// shell that is missing is a failure, never a skip).
fn shell(t: &Test, program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .current_dir(t.path())
        .env_remove("NO_COLOR")
        .env_remove("RUNBOOK_STATE_DIR")
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run `{program}` ({e}): .ci/run installs it"));
    assert!(
        out.status.success(),
        "{program} {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// What bash offers for the last of `words` with the script of `runbook completions bash`
/// loaded, the way bash calls it on Tab.
fn bash_complete(t: &Test, words: &[&str]) -> Vec<String> {
    let quoted: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
    let script = format!(
        "source ./runbook.bash\n\
         COMP_WORDS=({})\n\
         COMP_CWORD=$(( ${{#COMP_WORDS[@]}} - 1 ))\n\
         COMP_TYPE=9\n\
         _clap_complete_runbook runbook \"${{COMP_WORDS[COMP_CWORD]}}\" \"${{COMP_WORDS[COMP_CWORD-1]}}\"\n\
         printf '%s\\n' \"${{COMPREPLY[@]}}\"\n",
        quoted.join(" ")
    );
    shell(t, "bash", &["-c", &script])
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

fn with_bash_completion() -> Test {
    let t = Test::new().args(["completions", "bash"]);
    let out = t.run();
    assert_eq!(out.code, 0, "{}", out.stderr);
    t.file("runbook.bash", out.stdout)
}

#[test]
fn bash_completion_script_is_valid_bash_and_completes_every_subcommand() {
    let t = with_bash_completion();
    shell(&t, "bash", &["-n", "runbook.bash"]);
    let offered = bash_complete(&t, &["runbook", ""]);
    for sub in SUBCOMMANDS {
        assert!(
            offered.iter().any(|o| o == sub),
            "`{sub}` not offered: {offered:?}"
        );
    }
    // The step supervisor is not a command for people.
    assert!(
        !offered.iter().any(|o| o.contains("supervise")),
        "{offered:?}"
    );
    assert_eq!(bash_complete(&t, &["runbook", "com"]), ["completions"]);
}

#[test]
fn completion_offers_the_runbooks_step_ids_for_fail_at_and_only_approvals_for_approve() {
    let t = with_bash_completion().file("book.yaml", BOOK).file(
        "params.yaml",
        "runbook: 1\nname: decoy\nsteps:\n  - id: decoy\n    wait: 1s\n",
    );
    assert_eq!(
        bash_complete(
            &t,
            &[
                "runbook",
                "plan",
                "--params",
                "params.yaml",
                "book.yaml",
                "--fail-at",
                ""
            ]
        ),
        ["greet", "approve-one", "approve-two", "finish"]
    );
    assert_eq!(
        bash_complete(
            &t,
            &["runbook", "plan", "book.yaml", "--fail-at", "approve-"]
        ),
        ["approve-one", "approve-two"]
    );
    assert_eq!(
        bash_complete(&t, &["runbook", "run", "book.yaml", "--approve", ""]),
        ["approve-one", "approve-two"]
    );
    // No runbook, an unreadable one, or hostile text: nothing offered, and no error in the shell.
    let t = t.file("broken.yaml", "steps: [\u{1b}[2J");
    assert!(bash_complete(&t, &["runbook", "plan", "--fail-at", ""]).is_empty());
    assert!(bash_complete(&t, &["runbook", "plan", "broken.yaml", "--fail-at", ""]).is_empty());
    assert!(bash_complete(&t, &["runbook", "plan", "missing.yaml", "--fail-at", ""]).is_empty());
}

#[test]
fn completion_offers_the_runs_and_the_decisions_for_their_steps() {
    let t = with_bash_completion().file(
        "book.yaml",
        "runbook: 1\nname: short\nsteps:\n  - id: greet\n    run: { program: echo, args: [hi] }\n",
    );
    let run = Test::in_dir(t.path())
        .args(["run", "book.yaml", "--output", "json"])
        .run();
    assert_eq!(run.code, 0, "{}", run.stderr);
    let run_id = run.events()[0]["run_id"].as_str().unwrap().to_owned();
    // A run id, or a flag (clap offers the flags beside a positional).
    let values = |words: &[&str]| -> Vec<String> {
        bash_complete(&t, words)
            .into_iter()
            .filter(|o| !o.starts_with('-'))
            .collect()
    };
    assert_eq!(values(&["runbook", "show", ""]), [run_id.as_str()]);
    assert_eq!(
        bash_complete(&t, &["runbook", "resume", &run_id, "--assume", ""]),
        ["greet=done", "greet=failed", "greet=rerun"]
    );
    assert_eq!(
        bash_complete(
            &t,
            &["runbook", "rollback", "--last", "--assume", "greet=r"]
        ),
        ["greet=rerun"]
    );
    // Another state directory named on the line is the one read.
    assert!(values(&["runbook", "show", "--state-dir", "elsewhere", ""]).is_empty());
}

#[test]
fn zsh_and_fish_completion_scripts_parse() {
    let t = Test::new();
    for (shell_name, check) in [("zsh", ["-n"]), ("fish", ["--no-execute"])] {
        let out = Test::new().args(["completions", shell_name]).run();
        assert_eq!(out.code, 0, "{}", out.stderr);
        assert!(out.stdout.contains("COMPLETE"), "{}", out.stdout);
        let file = format!("runbook.{shell_name}");
        std::fs::write(t.path().join(&file), &out.stdout).unwrap();
        shell(&t, shell_name, &[check[0], &file]);
    }
    for shell_name in ["powershell", "elvish"] {
        let out = Test::new().args(["completions", shell_name]).run();
        assert_eq!(out.code, 0, "{}", out.stderr);
        assert!(
            out.stdout.contains(env!("CARGO_BIN_EXE_runbook")),
            "{}",
            out.stdout
        );
    }
    refused(&["completions", "tcsh"], "invalid value 'tcsh'");
}

/// A usage error (exit 2) whose message says `what`.
fn refused(args: &[&str], what: &str) {
    let out = Test::new().args(args.iter().copied()).run();
    assert_eq!(out.code, 2, "{args:?}: {}", out.stdout);
    assert!(out.stderr.contains(what), "{args:?}: {}", out.stderr);
}

#[test]
fn man_page_renders_without_warnings_and_covers_every_command() {
    let page = Test::new().args(["man"]).run();
    assert_eq!(page.code, 0, "{}", page.stderr);
    let mut man = Command::new("man")
        .args(["--warnings", "-l", "-"])
        .env("MANWIDTH", "80")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("`man` is missing: .ci/run installs man-db");
    std::io::Write::write_all(&mut man.stdin.take().unwrap(), page.stdout.as_bytes()).unwrap();
    let out = man.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "man failed: {stderr}");
    assert_eq!(stderr, "", "warnings rendering the man page");
    // Bold and underline come as overstrikes (`X\bX`, `_\bX`) when piped: keep the last.
    let mut text = String::new();
    for c in String::from_utf8_lossy(&out.stdout).chars() {
        if c == '\u{8}' {
            text.pop();
        } else {
            text.push(c);
        }
    }
    for sub in SUBCOMMANDS {
        let section = format!("RUNBOOK {}", sub.to_uppercase());
        assert!(text.contains(&section), "no section {section}:\n{text}");
    }
    for words in [
        "--fail-at",
        "--deny-warnings",
        "--kind",
        "NO_COLOR",
        "CLICOLOR_FORCE",
        "EXIT STATUS",
    ] {
        assert!(text.contains(words), "`{words}` not in the man page");
    }
}

fn init(t: &Test, args: &[&str]) -> crate::support::Output {
    Test::in_dir(t.path())
        .args(["init"])
        .args(args.iter().copied())
        .run()
}

#[test]
fn init_writes_a_runbook_of_every_kind_that_validates_with_deny_warnings_and_plans() {
    let t = Test::new();
    for kind in ["failover", "deploy", "minimal"] {
        let name = format!("{kind}-book");
        let out = init(&t, &[&name, "--kind", kind]);
        assert_eq!(out.code, 0, "{}", out.stderr);
        let file = format!("{name}.yaml");
        assert!(
            out.stdout.contains(&format!("wrote {file}")),
            "{}",
            out.stdout
        );
        let text = std::fs::read_to_string(t.path().join(&file)).unwrap();
        assert!(
            text.starts_with("# yaml-language-server: $schema="),
            "{text}"
        );
        assert!(text.contains(&format!("\nname: {name}\n")), "{text}");
        for part in [
            "\nparams:\n",
            "approval:",
            "rollback:",
            "run:",
            "wait:",
            "assert:",
        ] {
            assert!(text.contains(part), "{kind}: no `{part}`:\n{text}");
        }
        let check = Test::in_dir(t.path())
            .args(["validate", "--deny-warnings", "--format", "json", &file])
            .run();
        assert_eq!(check.code, 0, "{kind}: {}", check.stdout);
        assert_eq!(check.diags(), [], "{kind}");
        let plan = Test::in_dir(t.path()).args(["plan", &file]).run();
        assert_eq!(plan.code, 0, "{kind}: {}", plan.stderr);
        assert!(
            plan.stdout.contains("Approvals: approve"),
            "{}",
            plan.stdout
        );
    }
    // The default: runbook.yaml, minimal, named `runbook`.
    let out = init(&t, &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(t.read("runbook.yaml").contains("\nname: runbook\n"));
}

#[test]
fn init_never_overwrites_a_file_a_directory_or_a_symlink() {
    let t = Test::new()
        .file("runbook.yaml", "mine")
        .file("taken.yaml/inside", "a directory");
    let out = init(&t, &[]);
    assert_eq!(out.code, 2);
    assert_eq!(
        out.stderr,
        "error: runbook.yaml already exists: not overwritten (choose another name, or remove it first)\n"
    );
    assert_eq!(t.read("runbook.yaml"), "mine");
    let out = init(&t, &["taken", "--kind", "deploy"]);
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains("taken.yaml already exists"),
        "{}",
        out.stderr
    );
    // A dangling symlink would let `init` write wherever it points.
    std::os::unix::fs::symlink(t.path().join("elsewhere.yaml"), t.path().join("link.yaml"))
        .unwrap();
    let out = init(&t, &["link.yaml"]);
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains("link.yaml already exists"),
        "{}",
        out.stderr
    );
    assert!(!t.path().join("elsewhere.yaml").exists());
}

#[test]
fn init_run_twice_at_once_writes_one_file_and_refuses_the_other() {
    let t = Test::new();
    let mut children: Vec<_> = (0..4)
        .map(|_| {
            Test::in_dir(t.path())
                .args(["init", "race", "--kind", "failover"])
                .command()
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    let codes: Vec<i32> = children
        .iter_mut()
        .map(|c| c.wait().unwrap().code().unwrap_or(-1))
        .collect();
    assert_eq!(codes.iter().filter(|&&c| c == 0).count(), 1, "{codes:?}");
    assert_eq!(codes.iter().filter(|&&c| c == 2).count(), 3, "{codes:?}");
    assert!(t.read("race.yaml").contains("\nname: race\n"));
}

#[test]
fn init_refuses_names_that_are_not_runbook_names() {
    let t = Test::new();
    for name in ["2fa", "with space", "dots.in.name", "", "-x", "ünïcode"] {
        let out = init(&t, &["--", name]);
        assert_eq!(out.code, 2, "{name:?}: {}", out.stdout);
        assert!(
            out.stderr.contains("is not a valid runbook name"),
            "{name:?}: {}",
            out.stderr
        );
    }
    let written: Vec<_> = std::fs::read_dir(t.path()).unwrap().flatten().collect();
    assert!(
        written
            .iter()
            .all(|e| e.file_name().to_string_lossy().starts_with("unused"))
    );
    refused(&["init", "--kind", "rollout"], "invalid value 'rollout'");
}

#[test]
fn init_points_editors_at_the_projects_schema_or_says_how_to_write_one() {
    let t = Test::new()
        .file("schema/runbook.schema.json", "{}")
        .file("ops/deep/.keep", "");
    let out = init(&t, &["ops/deep/failover", "--kind", "failover"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        t.read("ops/deep/failover.yaml")
            .starts_with("# yaml-language-server: $schema=../../schema/runbook.schema.json\n")
    );
    assert!(!out.stdout.contains("note:"), "{}", out.stdout);

    let t = Test::new();
    let out = init(&t, &["alone"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        t.read("alone.yaml")
            .starts_with("# yaml-language-server: $schema=runbook.schema.json\n")
    );
    assert!(
        out.stdout.contains("runbook schema > runbook.schema.json"),
        "{}",
        out.stdout
    );
}

const INVALID: &str =
    "runbook: 1\nname: broken\nsteps:\n  - id: a\n    needs: [nowhere]\n    wait: 1s\n";
const ESC: &str = "\u{1b}[";

fn validate_colour(flag: Option<&str>, env: &[(&str, &str)]) -> bool {
    let mut t = Test::new()
        .file("broken.yaml", INVALID)
        .args(["validate", "broken.yaml"]);
    if let Some(flag) = flag {
        t = t.args(["--color", flag]);
    }
    for (k, v) in env {
        t = t.env(k, v);
    }
    let out = t.run();
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(out.stdout.contains("nowhere"), "{}", out.stdout);
    out.stdout.contains(ESC)
}

#[test]
fn colour_follows_the_flag_then_no_color_then_clicolor_force() {
    // Piped output: no colour unless asked for.
    assert!(!validate_colour(None, &[]));
    assert!(validate_colour(Some("always"), &[]));
    assert!(!validate_colour(Some("never"), &[]));
    assert!(validate_colour(None, &[("CLICOLOR_FORCE", "1")]));
    assert!(!validate_colour(None, &[("CLICOLOR_FORCE", "0")]));
    assert!(!validate_colour(
        None,
        &[("CLICOLOR_FORCE", "1"), ("NO_COLOR", "1")]
    ));
    assert!(!validate_colour(Some("never"), &[("CLICOLOR_FORCE", "1")]));
    assert!(validate_colour(Some("always"), &[("NO_COLOR", "1")]));
    // An empty NO_COLOR is not set (no-color.org).
    assert!(validate_colour(
        None,
        &[("CLICOLOR_FORCE", "1"), ("NO_COLOR", "")]
    ));
}

#[test]
fn colour_flag_applies_to_help_and_usage_errors_too() {
    let help = |args: &[&str], env: &[(&str, &str)]| {
        let mut t = Test::new().args(args.iter().copied());
        for (k, v) in env {
            t = t.env(k, v);
        }
        let out = t.run();
        format!("{}{}", out.stdout, out.stderr)
    };
    assert!(help(&["--color", "always", "--help"], &[]).contains(ESC));
    assert!(help(&["plan", "--help", "--color=always"], &[]).contains(ESC));
    assert!(help(&["plan", "--nope", "--color", "always"], &[]).contains(ESC));
    assert!(!help(&["--help"], &[]).contains(ESC));
    assert!(!help(&["--color", "never", "--help"], &[("CLICOLOR_FORCE", "1")]).contains(ESC));
    // A bad value is a usage error that names it, not a silent default.
    refused(
        &["--color", "sometimes", "schema"],
        "invalid value 'sometimes' for '--color <WHEN>'",
    );
}

#[test]
fn colour_applies_to_the_plan_and_the_run_output_and_never_lets_output_escape() {
    let book = "runbook: 1\nname: painted\nsteps:\n  - id: noisy\n    run: { shell: sh, script: \"printf 'x\\\\033[2Jy'; exit 3\" }\n";
    let t = Test::new().file("book.yaml", book);
    let plan = Test::in_dir(t.path())
        .args(["plan", "book.yaml", "--color", "always"])
        .run();
    assert_eq!(plan.code, 0, "{}", plan.stderr);
    assert!(
        plan.stdout.starts_with("\u{1b}[1mPlan for `painted`"),
        "{}",
        plan.stdout
    );
    let plain = Test::in_dir(t.path()).args(["plan", "book.yaml"]).run();
    assert!(!plain.stdout.contains(ESC), "{}", plain.stdout);

    let run = Test::in_dir(t.path())
        .args(["run", "book.yaml"])
        .env("CLICOLOR_FORCE", "1")
        .run();
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stdout.contains("\u{1b}[31m✗\u{1b}[0m noisy failed"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("\u{1b}[1mOutcome: "), "{}", run.stdout);
    // The command's own escape sequence is shown, not obeyed, with colour on.
    assert!(run.stdout.contains("x\\u{1b}[2Jy"), "{}", run.stdout);
    assert!(!run.stdout.contains("x\u{1b}[2J"), "{}", run.stdout);
    let json = Test::in_dir(t.path())
        .args(["run", "book.yaml", "--output", "json", "--color", "always"])
        .run();
    for event in json.events() {
        assert!(!event.to_string().contains("\\u001b[3"), "{event}");
    }
}

#[test]
fn version_names_the_commit_it_was_built_from() {
    let out = Test::new().args(["--version"]).run();
    assert_eq!(out.code, 0);
    let head = Command::new("git")
        .args(["rev-parse", "--short=9", "HEAD"])
        .current_dir(repo())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned());
    let expected = match head {
        Some(commit) => format!("runbook {} (commit {commit})\n", env!("CARGO_PKG_VERSION")),
        None => format!("runbook {}\n", env!("CARGO_PKG_VERSION")),
    };
    assert_eq!(out.stdout, expected);
}
