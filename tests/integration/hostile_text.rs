//! Text a user or a generator can write that YAML or the operating system reads differently
//! from what was meant: Windows paths in double quotes, YAML 1.1 booleans, tabs in
//! indentation, NUL characters, empty names and environment variable names with `=`.

use crate::support::{Test, diag, validate};

fn steps(body: &str) -> String {
    format!("runbook: 1\nname: t\nsteps:\n{body}")
}

/// The help of each diagnostic, from the json format.
fn helps(yaml: &str) -> Vec<String> {
    let out = Test::new()
        .file("runbook.yaml", yaml)
        .args(["validate", "--format", "json", "runbook.yaml"])
        .run();
    out.json()["diagnostics"]
        .as_array()
        .expect("diagnostics")
        .iter()
        .map(|d| d["help"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[test]
fn windows_path_in_double_quotes_is_a_warning_located_at_the_escape() {
    let yaml = steps("  - id: a\n    run: { program: dir, args: [\"C:\\new\\temp\"] }\n");
    let (diags, code) = validate(&yaml);
    assert_eq!(
        diags,
        [diag(
            "escaped_path",
            5,
            36,
            "a backslash in double quotes starts an escape: `\\n` here is a newline, not part of a path"
        )]
    );
    assert_eq!(code, 0, "a warning");
    assert!(helps(&yaml)[0].contains("single quotes"));
    // Written correctly, in either quoting, there is nothing to say.
    for ok in ["'C:\\new\\temp'", "\"C:\\\\new\\\\temp\""] {
        let (diags, _) = validate(&steps(&format!(
            "  - id: a\n    run: {{ program: dir, args: [{ok}] }}\n"
        )));
        assert_eq!(diags, [], "{ok}");
    }
}

#[test]
fn invalid_escape_is_located_at_the_backslash_with_the_same_help() {
    let yaml = steps("  - id: a\n    run: { program: dir, args: [\"C:\\qnew\"] }\n");
    let (diags, code) = validate(&yaml);
    assert_eq!(code, 1);
    assert_eq!(diags.len(), 1, "{diags:?}");
    assert_eq!(
        (diags[0].code.as_str(), diags[0].line, diags[0].column),
        ("runbook::yaml_syntax", 5, 36)
    );
    assert!(helps(&yaml)[0].contains("single quotes"));
}

#[test]
fn yes_where_a_bool_is_expected_says_yaml_1_2() {
    for word in ["yes", "no", "on", "off", "Yes"] {
        let yaml = steps(&format!(
            "  - id: a\n    wait: 1s\n    irreversible: {word}\n"
        ));
        let (diags, code) = validate(&yaml);
        assert_eq!(code, 1);
        assert_eq!(
            diags,
            [diag(
                "wrong_type",
                6,
                19,
                "`irreversible` must be true or false, found a string"
            )]
        );
        assert!(
            helps(&yaml)[0].contains("YAML 1.2: write true/false"),
            "{word}"
        );
    }
}

#[test]
fn tab_in_indentation_is_located_on_its_own_line() {
    let yaml = steps("  - id: a\n\t  wait: 1s\n");
    let (diags, code) = validate(&yaml);
    assert_eq!(code, 1);
    assert_eq!(
        (diags[0].code.as_str(), diags[0].line, diags[0].column),
        ("runbook::yaml_syntax", 5, 1)
    );
    assert!(helps(&yaml)[0].contains("indent with spaces"));
}

#[test]
fn nul_bytes_in_any_string_are_refused() {
    let yaml = steps(
        "  - id: a\n    run: { program: echo, args: [\"a\\0b\"] }\n    env: { \"K\\0\": v }\n",
    );
    let (diags, code) = validate(&yaml);
    assert_eq!(code, 1);
    let nul: Vec<_> = diags
        .iter()
        .filter(|d| d.code == "runbook::nul_byte")
        .collect();
    assert_eq!(nul.len(), 2, "{diags:?}");
    assert_eq!((nul[0].line, nul[0].column), (5, 34));
    assert_eq!((nul[1].line, nul[1].column), (6, 12));
}

#[test]
fn empty_name_program_and_env_names_are_refused() {
    let (diags, code) = validate("runbook: 1\nname: \"\"\nsteps:\n  - id: a\n    wait: 1s\n");
    assert_eq!(code, 1);
    assert_eq!(diags, [diag("invalid_id", 2, 7, "invalid runbook name ``")]);

    let (diags, code) = validate(&steps("  - id: a\n    run: { program: \"\" }\n"));
    assert_eq!(code, 1);
    assert_eq!(diags[0].code, "runbook::invalid_run", "{diags:?}");
    assert!(diags[0].message.contains("`program` is empty"), "{diags:?}");

    let (diags, code) = validate(&steps(
        "  - id: a\n    run: { program: env }\n    env: { \"\": x, \"A=B\": y, OK: z }\n",
    ));
    assert_eq!(code, 1);
    assert_eq!(
        diags,
        [
            diag(
                "invalid_env_name",
                6,
                16,
                "invalid environment variable name ``"
            ),
            diag(
                "invalid_env_name",
                6,
                26,
                "invalid environment variable name `A=B`"
            ),
        ]
    );
}

#[test]
fn rollback_past_point_of_no_return_is_a_warning_unless_acknowledged() {
    let body = "  - id: online\n    irreversible: true\n    wait: 1s\n  - id: switch\n    needs: [online]\n    wait: 1s\n    rollback: { run: { program: switch-back } }\n  - id: before\n    wait: 1s\n    rollback: { run: { program: undo } }\n";
    let (diags, code) = validate(&steps(body));
    assert_eq!(code, 0, "a warning");
    assert_eq!(
        diags,
        [diag(
            "rollback_past_point_of_no_return",
            10,
            15,
            "step `switch` has a rollback that runs after the point of no return `online`"
        )]
    );
    // Indirectly after it (through another step) counts too.
    let chained = body.replace(
        "  - id: switch\n    needs: [online]",
        "  - id: mid\n    needs: [online]\n    wait: 1s\n  - id: switch\n    needs: [mid]",
    );
    let (diags, _) = validate(&steps(&chained));
    assert_eq!(diags.len(), 1, "{diags:?}");
    let acknowledged = body.replace(
        "rollback: { run: { program: switch-back } }",
        "rollback: { run: { program: switch-back }, past_point_of_no_return: true }",
    );
    let (diags, code) = validate(&steps(&acknowledged));
    assert_eq!((diags, code), (vec![], 0));
    let out = Test::new()
        .file("r.yaml", steps(body))
        .args(["validate", "--deny-warnings", "r.yaml"])
        .run();
    assert_eq!(out.code, 1, "--deny-warnings fails on it");
}

#[test]
fn reading_a_step_that_may_be_skipped_is_a_warning_naming_it_and_its_when() {
    let body = "  - id: probe\n    when: params.deep\n    run: { program: echo, args: [hi] }\n    outputs: { v: \"{{ result.stdout }}\" }\n  - id: use\n    needs: [probe]\n    run: { program: echo, args: [\"{{ steps.probe.outputs.v }}\"] }\n";
    let yaml = format!(
        "runbook: 1\nname: t\nparams:\n  deep: {{ type: bool, default: false }}\nsteps:\n{body}"
    );
    let (diags, code) = validate(&yaml);
    assert_eq!(code, 0, "a warning");
    assert_eq!(
        diags,
        [diag(
            "reads_skipped_step",
            12,
            38,
            "`steps.probe.outputs` may not exist: step `probe` is skipped when `params.deep` is false"
        )]
    );
    // Guarded by `default`, or by a `when` of its own that looks at the step: nothing to say.
    for guarded in [
        body.replace("outputs.v }}", "outputs.v | default('none') }}"),
        body.replace(
            "needs: [probe]\n",
            "needs: [probe]\n    when: steps.probe.status == 'succeeded'\n",
        ),
    ] {
        let yaml = format!(
            "runbook: 1\nname: t\nparams:\n  deep: {{ type: bool, default: false }}\nsteps:\n{guarded}"
        );
        assert_eq!(validate(&yaml).0, [], "{guarded}");
    }
    // At run time, the error names what was read and that the step was skipped.
    let out = Test::new()
        .file("r.yaml", &yaml)
        .args(["run", "r.yaml"])
        .run();
    assert_eq!(out.code, 1, "{}", out.stdout);
    assert!(
        out.stdout.contains("steps.probe.outputs.v") && out.stdout.contains("`probe` was skipped"),
        "{}",
        out.stdout
    );
}

#[test]
fn control_characters_from_runbooks_and_output_are_escaped_before_a_terminal() {
    // A title with an escape sequence, and a step whose output clears the screen and rewrites
    // its line before failing.
    let yaml = steps(
        "  - id: a\n    title: \"harmless\\e[2J\"\n    run: { shell: sh, script: 'printf \"ok\\033[2J\\rFAKE SUCCESS\\n\"; exit 1' }\n",
    );
    let t = Test::new().file("c.yaml", &yaml);
    for args in [vec!["plan", "c.yaml"], vec!["run", "c.yaml"]] {
        let out = Test::in_dir(t.path()).args(args.clone()).run();
        assert!(
            !out.stdout.contains('\u{1b}') && !out.stdout.contains('\r'),
            "{args:?}: {:?}",
            out.stdout
        );
    }
    let run = Test::in_dir(t.path()).args(["show", "--last"]).run();
    assert!(!run.stdout.contains('\u{1b}'), "{:?}", run.stdout);
    let failed = Test::in_dir(t.path()).args(["run", "c.yaml"]).run();
    assert!(
        failed.stdout.contains("ok\\u{1b}[2J\\u{d}FAKE SUCCESS"),
        "{}",
        failed.stdout
    );
    // JSON keeps the text exact (escaped the JSON way).
    let json = Test::in_dir(t.path())
        .args(["run", "c.yaml", "--output", "json"])
        .run();
    assert!(
        json.stdout.contains("ok\\u001b[2J\\rFAKE SUCCESS"),
        "{}",
        json.stdout
    );
}
