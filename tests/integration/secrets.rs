//! Secrets under attack: short and structural secrets (which must not corrupt the journal),
//! every quoted form, multi-line secrets in failure tails, output cut by the capture cap,
//! argument summaries, approval prompts on a terminal, the environment secrets are read from,
//! and the lints against pasting values into scripts and SQL literals.

use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::support::{Test, diag, events_of, on_terminal, validate};

/// The fields of an event (journal line or `--output json`) that carry values.
const VALUE_FIELDS: &[&str] = &[
    "stdout", "stderr", "message", "action", "detail", "data", "params", "reason",
];

/// Every string value (not key) under `value`.
fn strings<'a>(value: &'a serde_json::Value, out: &mut Vec<&'a str>) {
    match value {
        serde_json::Value::String(s) => out.push(s),
        serde_json::Value::Array(items) => items.iter().for_each(|v| strings(v, out)),
        serde_json::Value::Object(map) => map.values().for_each(|v| strings(v, out)),
        _ => {}
    }
}

/// Asserts that no value of any event in `lines` is the secret, or (when it is long enough to
/// search for) holds it; returns the events.
#[track_caller]
fn no_secret_in_events(lines: &str, secret: &str, what: &str) -> Vec<serde_json::Value> {
    let events: Vec<serde_json::Value> = lines
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{what}: not JSON ({e}): {l}")))
        .collect();
    for event in &events {
        let mut values = Vec::new();
        for field in VALUE_FIELDS {
            if let Some(v) = event.get(field) {
                strings(v, &mut values);
            }
        }
        for v in values {
            assert!(
                v.trim() != secret && (secret.chars().count() < 4 || !v.contains(secret)),
                "{what}: secret {secret:?} in {event}"
            );
        }
    }
    events
}

/// A text field of the `n`th `step_finished` event ("" when absent).
fn finished(events: &[serde_json::Value], n: usize, field: &str) -> String {
    events_of(events, "step_finished")[n][field]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// Runs `t` (a `--output json` run), checks its exit code and that no event value holds
/// `secret`; returns what it printed and its events.
#[track_caller]
fn masked_run(
    t: &Test,
    secret: &str,
    code: i32,
) -> (crate::support::Output, Vec<serde_json::Value>) {
    let out = t.run();
    assert_eq!(out.code, code, "{}", out.stderr);
    let events = no_secret_in_events(&out.stdout, secret, "--output json");
    (out, events)
}

fn journal_text(t: &Test) -> String {
    let runs = t.path().join(".runbook/runs");
    let mut text = String::new();
    for run in std::fs::read_dir(runs).expect("runs") {
        text.push_str(
            &std::fs::read_to_string(run.expect("run").path().join("journal.jsonl"))
                .expect("journal"),
        );
    }
    text
}

/// A first step `deploy` that prints the secret (and appends it to `log`), then `wait`,
/// which sleeps so that the run can be killed in the middle.
const TWO_STEPS: &str = "runbook: 1\nname: masked\nsecrets:\n  pw: { file: pw.txt }\nsteps:\n  - id: deploy\n    run: { shell: sh, script: 'echo deploy >> log; echo {{ secrets.pw | shell_quote }}' }\n  - id: wait\n    needs: [deploy]\n    run: { shell: sh, script: 'echo wait >> log; sleep 2' }\n";

#[test]
fn short_and_structural_secrets_do_not_corrupt_the_journal_or_resume() {
    for secret in ["x", "1", "runbook", "deploy", "event", "true"] {
        let t = Test::new()
            .file("r.yaml", TWO_STEPS)
            .file("pw.txt", secret)
            .args(["run", "r.yaml", "--output", "json"]);
        let mut child = t
            .command()
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn");
        let started = Instant::now();
        while !t.read("log").contains("wait") && started.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();

        let out = Test::in_dir(t.path())
            .args(["resume", "--last", "--assume", "wait=rerun"])
            .run();
        assert_eq!(
            out.code, 0,
            "secret {secret:?}: {}\n{}",
            out.stdout, out.stderr
        );
        assert_eq!(
            t.read("log"),
            "deploy\nwait\nwait\n",
            "secret {secret:?}: the completed step ran again"
        );
        assert!(
            out.stdout.contains("✓ wait"),
            "secret {secret:?}: {}",
            out.stdout
        );

        let journal = journal_text(&t);
        let events = no_secret_in_events(&journal, secret, "journal");
        assert_eq!(finished(&events, 0, "step"), "deploy", "secret {secret:?}");
        assert_eq!(finished(&events, 0, "stdout"), "***", "secret {secret:?}");

        let show = Test::in_dir(t.path())
            .args(["show", "--last", "--format", "json"])
            .run();
        assert_eq!(show.code, 0, "secret {secret:?}: {}", show.stderr);
        let shown = show.json();
        let mut values = Vec::new();
        strings(&shown, &mut values);
        assert!(
            show.stdout.contains("\"deploy\"") && show.stdout.contains("\"wait\""),
            "secret {secret:?}: {}",
            show.stdout
        );
        for format in ["human", "markdown", "junit"] {
            let out = Test::in_dir(t.path())
                .args(["show", "--last", "--format", format])
                .run();
            assert_eq!(out.code, 0, "secret {secret:?}, {format}: {}", out.stderr);
            assert!(out.stdout.contains("deploy"), "{format}: {}", out.stdout);
            // `deploy` is the step's id and `runbook` the tool's name: both are rightly shown.
            if secret.len() >= 4 && !matches!(secret, "deploy" | "runbook") {
                assert!(!out.stdout.contains(secret), "{format}: {}", out.stdout);
            }
        }
    }
}

#[test]
fn a_short_secret_is_masked_where_a_template_puts_it_and_announced() {
    let yaml = "runbook: 1\nname: t\nsecrets:\n  pw: { file: pw.txt }\nsteps:\n  - id: a\n    run: { program: sh, args: ['-c', 'exit 0', '{{ secrets.pw }}', 'pre-{{ secrets.pw }}'] }\n";
    let t = Test::new()
        .file("r.yaml", yaml)
        .file("pw.txt", "a'b")
        .args(["run", "r.yaml", "--output", "json"]);
    let (out, events) = masked_run(&t, "a'b", 0);
    let started = events_of(&events, "step_started");
    assert_eq!(started[0]["action"], "sh -c 'exit 0' '***' 'pre-***'");
    // Nor in its shell-quoted form, which is how the summary would have shown it.
    assert!(!out.stdout.contains(r"a'\''b"), "{}", out.stdout);
    let notice = events_of(&events, "secrets_not_searched");
    assert_eq!(notice.len(), 1);
    assert_eq!(notice[0]["secrets"], serde_json::json!(["pw"]));
    assert_eq!(notice[0]["min_length"], 4);

    let human = Test::in_dir(t.path()).args(["run", "r.yaml"]).run();
    assert!(
        human.stdout.contains(
            "note: secrets shorter than 4 characters are masked only where a value is exactly the secret, not inside output: pw"
        ),
        "{}",
        human.stdout
    );
}

#[test]
fn every_quoted_form_of_a_secret_is_masked() {
    let secret = r#"s3cr'et dq\"uote"#;
    let yaml = "runbook: 1\nname: t\nsecrets:\n  pw: { file: pw.txt }\nsteps:\n  - id: forms\n    run:\n      shell: sh\n      script: |\n        cat <<'EOF'\n        shell {{ secrets.pw | shell_quote }}\n        ps {{ secrets.pw | ps_quote }}\n        sql {{ secrets.pw | sql_literal }}\n        json {{ secrets.pw | to_json }}\n        EOF\n        exit 1\n";
    let forms = [
        secret.to_owned(),
        secret.replace('\'', r"'\''"),
        secret.replace('\'', "''"),
        serde_json::to_string(secret).unwrap(),
        "s3cr".to_owned() + "'\\''et",
    ];
    let t = Test::new()
        .file("r.yaml", yaml)
        .file("pw.txt", secret)
        .args(["run", "r.yaml", "--output", "json"]);
    // The command did print every form: it is the masking that hides them.
    let (json, events) = masked_run(&t, secret, 1);
    let stdout = finished(&events, 0, "stdout");
    assert_eq!(stdout, "shell '***'\nps '***'\nsql N'***'\njson \"***\"\n");
    let human = Test::in_dir(t.path()).args(["run", "r.yaml"]).run();
    for text in [&json.stdout, &human.stdout, &journal_text(&t)] {
        for form in &forms {
            assert!(!text.contains(form.as_str()), "{form} in:\n{text}");
        }
        // The JSON-escaped form inside a JSON line.
        assert!(!text.contains(r#"dq\\\"uote"#), "{text}");
    }
}

#[test]
fn each_line_of_a_multi_line_secret_is_masked_in_a_failure_tail() {
    let yaml = "runbook: 1\nname: t\nsecrets:\n  key: { file: key.pem }\nsteps:\n  - id: leak\n    env: { KEY: '{{ secrets.key }}' }\n    run: { shell: sh, script: 'printf \"%s\\n\" \"$KEY\" | sed \"s/^/> /\"; exit 1' }\n";
    let t = Test::new()
        .file("r.yaml", yaml)
        .file(
            "key.pem",
            "-----BEGIN KEY-----\nMIIBOgIBAAJBAK\n-----END KEY-----\n",
        )
        // The tail is repeated under the failure when the lines were not shown as they came.
        .args(["run", "r.yaml", "--quiet"]);
    let out = t.run();
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(out.stdout.contains("      │ > ***"), "{}", out.stdout);
    for line in ["BEGIN KEY", "MIIBOgIBAAJBAK", "END KEY"] {
        assert!(!out.stdout.contains(line), "{line} in:\n{}", out.stdout);
        assert!(!journal_text(&t).contains(line), "{line} in the journal");
    }
}

#[test]
fn a_secret_cut_by_the_capture_cap_is_masked() {
    let secret = "Zq9-cut-secret-value";
    // One MiB less three bytes of filler, then the secret: the cap keeps `Zq9`.
    let yaml = "runbook: 1\nname: t\nsecrets:\n  pw: { env: T_CUT_PW }\nsteps:\n  - id: big\n    env: { PW: '{{ secrets.pw }}' }\n    run: { shell: sh, script: 'head -c 1048573 /dev/zero | tr \"\\0\" a; printf %s \"$PW\"; printf \"\\n%s\\n\" \"$PW\"' }\n";
    let t = Test::new()
        .file("r.yaml", yaml)
        .env("T_CUT_PW", secret)
        .args(["run", "r.yaml", "--output", "json"]);
    let (_, events) = masked_run(&t, secret, 0);
    let stdout = finished(&events, 0, "stdout");
    let (kept, note) = stdout
        .split_once("\n[… output truncated")
        .expect("the output was cut");
    assert!(kept.ends_with("aaa***"), "{}", &kept[kept.len() - 20..]);
    assert!(note.contains("more bytes not kept"), "{note}");
    assert!(
        !journal_text(&t).contains("aZq9"),
        "the cut prefix is in the journal"
    );
}

#[test]
fn approval_prompt_and_instructions_on_a_terminal_are_masked() {
    let yaml = "runbook: 1\nname: t\nsecrets:\n  pw: { file: pw.txt }\nsteps:\n  - id: ok\n    approval:\n      prompt: 'Use token {{ secrets.pw }}?'\n      instructions: 'Log in with {{ secrets.pw }} first'\n";
    let t = Test::new()
        .file("r.yaml", yaml)
        .file("pw.txt", "tok-Secret-77");
    let (code, screen) = on_terminal(&t, "run r.yaml", "alice", b"y\n");
    assert_eq!(code, Some(0), "{screen}");
    assert!(screen.contains("Use token ***?"), "{screen}");
    assert!(screen.contains("Log in with *** first"), "{screen}");
    assert!(!screen.contains("tok-Secret-77"), "{screen}");
}

#[test]
fn steps_do_not_inherit_the_environment_variables_secrets_are_read_from() {
    let yaml = "runbook: 1\nname: t\nsecrets:\n  pw: { env: T_INHERIT_PW }\nsteps:\n  - id: plain\n    run: { program: env }\n  - id: asked\n    needs: [plain]\n    env: { T_INHERIT_PW: '{{ secrets.pw }}' }\n    run: { program: env }\n    rollback: { run: { program: env } }\n  - id: fail\n    needs: [asked]\n    run: { program: 'false' }\n";
    let out = Test::new()
        .file("r.yaml", yaml)
        .env("T_INHERIT_PW", "inherit-me-not")
        .env("T_OTHER_VAR", "still-here")
        .args(["run", "r.yaml", "--output", "json"])
        .run();
    assert_eq!(out.code, 1, "{}", out.stderr);
    let events = out.events();
    let plain = finished(&events, 0, "stdout");
    assert!(!plain.contains("T_INHERIT_PW"), "{plain}");
    assert!(plain.contains("T_OTHER_VAR=still-here"), "{plain}");
    let asked = finished(&events, 1, "stdout");
    assert!(asked.contains("T_INHERIT_PW=***"), "{asked}");
    assert!(!out.stdout.contains("inherit-me-not"), "{}", out.stdout);
}

#[test]
fn connection_password_is_masked_as_a_value_not_every_occurrence() {
    // A login that fails: the message quotes no connection string, and the one-letter
    // password must not turn every `a` of it into `***`.
    let yaml = "runbook: 1\nname: t\nconnections:\n  db:\n    mssql: 'server=tcp:127.0.0.1,1;user id=sa;password=a;encrypt=DANGER_PLAINTEXT'\nsteps:\n  - id: q\n    sql: { connection: db, query: 'SELECT 1' }\n    timeout: 10s\n";
    let out = Test::new()
        .file("r.yaml", yaml)
        .args(["run", "r.yaml", "--output", "json"])
        .run();
    assert_eq!(out.code, 1, "{}", out.stderr);
    let events = out.events();
    let message = finished(&events, 0, "message");
    assert!(!message.contains("***"), "{message}");
    assert!(message.contains('a'), "{message}");
}

#[test]
fn unfiltered_shell_template() {
    let yaml = "runbook: 1\nname: t\nparams:\n  v: { default: x }\n  l: { type: list, default: [a] }\nsteps:\n  - id: a\n    run: { shell: sh, script: 'echo {{ params.v }} {{ params.v | shell_quote }} {{ params.l | map(\"shell_quote\") | join(\" \") }}' }\n  - id: b\n    run: { shell: pwsh, script: 'echo {{ params.v | shell_quote }} {{ params.v | ps_quote }}' }\n  - id: c\n    run: { shell: cmd, script: 'echo {{ params.v }}' }\n  - id: d\n    run: { shell: bash, script: 'echo {{ params.l | map(\"shell_quote\") | join(params.v) }}' }\n";
    let (diags, code) = validate(yaml);
    assert_eq!(code, 0, "warnings only");
    assert_eq!(
        diags,
        [
            diag(
                "unfiltered_shell_template",
                8,
                37,
                "a template is interpolated into a `sh` script without `shell_quote`"
            ),
            diag(
                "unfiltered_shell_template",
                10,
                39,
                "a template is interpolated into a `pwsh` script without `ps_quote`"
            ),
            diag(
                "unfiltered_shell_template",
                14,
                39,
                "a template is interpolated into a `bash` script without `shell_quote`"
            ),
        ]
    );
}

#[test]
fn sql_ident_inside_a_string_literal() {
    let yaml = "runbook: 1\nname: t\nparams:\n  db: { default: x }\nconnections:\n  c: { mssql: 'server=s' }\nsteps:\n  - id: a\n    sql:\n      connection: c\n      query: \"-- it's the name\\nSELECT DB_ID('{{ params.db | sql_ident }}'), {{ params.db | sql_ident }} /* don't */, 'a''b {{ params.db | sql_ident }}'\"\n";
    let (diags, code) = validate(yaml);
    assert_eq!(code, 0, "warnings only");
    let found: Vec<(String, String)> = diags
        .iter()
        .map(|d| (d.code.clone(), d.message.clone()))
        .collect();
    let expected = (
        "runbook::sql_ident_in_literal".to_owned(),
        "`sql_ident` is used inside a T-SQL string literal".to_owned(),
    );
    assert_eq!(found, [expected.clone(), expected], "{diags:?}");
}
