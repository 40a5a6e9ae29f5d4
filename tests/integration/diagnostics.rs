//! One fixture per diagnostic code, asserting the exact line, column and message, and that
//! all problems of a file come out of one run.

use crate::support::{diag, validate};

fn steps(body: &str) -> String {
    format!("runbook: 1\nname: t\nsteps:\n{body}")
}

#[track_caller]
fn check(yaml: &str, expected: &[crate::support::Diag]) {
    let (diags, code) = validate(yaml);
    assert_eq!(diags, expected, "for:\n{yaml}");
    let errors = expected.iter().any(|d| {
        !matches!(
            d.code.as_str(),
            "runbook::unused_param"
                | "runbook::unused_secret"
                | "runbook::until_single_attempt"
                | "runbook::irreversible_rollback"
                | "runbook::secret_in_args"
                | "runbook::unfiltered_sql_template"
        )
    });
    assert_eq!(code, i32::from(errors), "exit code");
}

#[test]
fn unknown_key_suggests_the_closest_key() {
    check(
        &steps("  - id: a\n    wait: 1s\n    retyr: 3\n"),
        &[diag("unknown_key", 6, 5, "unknown key `retyr` in step `a`")],
    );
}

#[test]
fn wrong_type() {
    check(
        &steps("  - id: a\n    wait: 1s\n    needs: { a: 1 }\n"),
        &[diag(
            "wrong_type",
            6,
            12,
            "`needs` must be a list, found a mapping",
        )],
    );
}

#[test]
fn missing_field() {
    check(
        &steps("  - wait: 1s\n"),
        &[diag("missing_field", 4, 5, "step #1 has no `id`")],
    );
}

#[test]
fn unsupported_version() {
    check(
        "runbook: 2\nname: t\nsteps: []\n",
        &[diag(
            "unsupported_version",
            1,
            10,
            "unsupported runbook format version 2",
        )],
    );
}

#[test]
fn invalid_choice() {
    check(
        &steps("  - id: a\n    wait: 1s\n    retry: { attempts: 2, backoff: linear }\n"),
        &[diag(
            "invalid_value",
            6,
            36,
            "`linear` is not a valid backoff",
        )],
    );
}

#[test]
fn invalid_duration() {
    check(
        &steps("  - id: a\n    wait: 30\n"),
        &[diag(
            "invalid_duration",
            5,
            11,
            "invalid duration `30`: `30` has no unit; write `30s` for seconds",
        )],
    );
}

#[test]
fn duplicate_step() {
    check(
        &steps("  - id: a\n    wait: 1s\n  - id: a\n    wait: 2s\n"),
        &[diag("duplicate_step", 6, 9, "duplicate step id `a`")],
    );
}

#[test]
fn invalid_id() {
    check(
        &steps("  - id: 9lives\n    wait: 1s\n"),
        &[diag("invalid_id", 4, 9, "invalid step id `9lives`")],
    );
}

#[test]
fn unknown_step_in_needs() {
    check(
        &steps("  - id: copy-logs\n    wait: 1s\n  - id: b\n    needs: [copy-log]\n    wait: 1s\n"),
        &[diag(
            "unknown_step",
            7,
            13,
            "step `b` needs unknown step `copy-log`",
        )],
    );
}

#[test]
fn self_dependency() {
    check(
        &steps("  - id: a\n    needs: [a]\n    wait: 1s\n"),
        &[diag("self_dependency", 5, 13, "step `a` needs itself")],
    );
}

#[test]
fn cycle_reports_the_whole_path_with_a_label_on_each_edge() {
    let yaml = steps(
        "  - id: a\n    needs: [c]\n    wait: 1s\n  - id: b\n    needs: [a]\n    wait: 1s\n  - id: c\n    needs: [b]\n    wait: 1s\n",
    );
    check(
        &yaml,
        &[diag("cycle", 5, 13, "dependency cycle: a → c → b → a")],
    );
    let out = crate::support::Test::new()
        .file("runbook.yaml", &yaml)
        .args(["validate", "runbook.yaml"])
        .run();
    for label in ["`a` needs `c`", "`b` needs `a`", "`c` needs `b`"] {
        assert!(
            out.stdout.contains(label),
            "missing {label}:\n{}",
            out.stdout
        );
    }
}

#[test]
fn step_without_a_kind() {
    check(
        &steps("  - id: a\n    title: nothing\n"),
        &[diag("no_step_kind", 4, 9, "step `a` has no kind")],
    );
}

#[test]
fn step_with_two_kinds() {
    check(
        &steps("  - id: a\n    wait: 1s\n    assert: 'true'\n"),
        &[diag(
            "multiple_step_kinds",
            6,
            5,
            "step `a` has more than one kind: `wait`, `assert`",
        )],
    );
}

#[test]
fn unknown_connection() {
    let yaml = "runbook: 1\nname: t\nconnections:\n  backup_sql: { mssql: 'server=tcp:h,1433' }\nsteps:\n  - id: a\n    sql: { connection: backup, query: SELECT 1 }\n";
    check(
        yaml,
        &[diag(
            "unknown_connection",
            7,
            24,
            "unknown connection `backup`",
        )],
    );
}

#[test]
fn retry_with_zero_attempts_and_max_delay_below_delay() {
    check(
        &steps(
            "  - id: a\n    wait: 1s\n    retry: { attempts: 0 }\n  - id: b\n    wait: 1s\n    retry: { attempts: 3, delay: 1m, max_delay: 10s }\n",
        ),
        &[
            diag(
                "invalid_retry",
                6,
                24,
                "invalid retry policy: `attempts` is 0",
            ),
            diag(
                "invalid_retry",
                9,
                49,
                "invalid retry policy: `max_delay` (10s) is shorter than `delay` (1m)",
            ),
        ],
    );
}

#[test]
fn run_with_program_and_script() {
    check(
        &steps("  - id: a\n    run: { program: ls, shell: sh, script: ls }\n"),
        &[diag(
            "invalid_run",
            5,
            10,
            "invalid `run`: `program` and `shell`/`script` cannot be combined",
        )],
    );
}

#[test]
fn secret_without_source() {
    let yaml = "runbook: 1\nname: t\nsecrets:\n  pw: { env: A, file: /b }\nsteps:\n  - id: a\n    run: { shell: sh, script: 'echo {{ secrets.pw | shell_quote }}' }\n";
    check(
        yaml,
        &[diag(
            "invalid_secret",
            4,
            7,
            "secret `pw` must have exactly one of `env` and `file`",
        )],
    );
}

#[test]
fn rollback_without_an_action() {
    check(
        &steps("  - id: a\n    wait: 1s\n    rollback: { timeout: 1m }\n"),
        &[diag(
            "invalid_rollback",
            6,
            15,
            "a rollback must have exactly one of `run`, `sql`, `approval`; it has 0",
        )],
    );
}

#[test]
fn template_syntax_error_points_inside_the_scalar() {
    check(
        &steps("  - id: a\n    approval: { prompt: \"ok {{ params.x }\" }\n"),
        &[diag(
            "template_syntax",
            5,
            41,
            "template syntax error: unexpected `}`, expected end of variable block",
        )],
    );
}

#[test]
fn template_syntax_error_in_a_block_scalar() {
    check(
        &steps(
            "  - id: a\n    run:\n      shell: sh\n      script: |\n        echo one\n        echo {{ 1 + }}\n",
        ),
        &[diag(
            "template_syntax",
            9,
            21,
            "template syntax error: unexpected end of variable block",
        )],
    );
}

#[test]
fn expression_syntax_error() {
    check(
        &steps("  - id: a\n    wait: 1s\n    when: \"{{ true }}\"\n"),
        &[diag(
            "expression_syntax",
            6,
            20,
            "expression syntax error: unexpected `}`, expected `:`",
        )],
    );
}

#[test]
fn unknown_variable_and_unknown_param() {
    let yaml = "runbook: 1\nname: t\nparams:\n  pool: { default: p }\nsteps:\n  - id: a\n    run: { shell: sh, script: 'echo {{ params.pool | shell_quote }} {{ params.pol | shell_quote }} {{ parms.pool | shell_quote }}' }\n";
    check(
        yaml,
        &[
            diag("unknown_variable", 7, 72, "unknown variable `params.pol`"),
            diag("unknown_variable", 7, 103, "unknown variable `parms`"),
        ],
    );
}

#[test]
fn unknown_attribute_of_a_step() {
    check(
        &steps(
            "  - id: a\n    wait: 1s\n  - id: b\n    needs: [a]\n    assert: \"steps.a.stdot == ''\"\n",
        ),
        &[diag(
            "unknown_attribute",
            8,
            14,
            "`steps.a` has no attribute `stdot`",
        )],
    );
}

#[test]
fn unknown_output_of_a_step() {
    check(
        &steps(
            "  - id: a\n    run: { program: date }\n    outputs: { day: '{{ result.stdout }}' }\n  - id: b\n    needs: [a]\n    assert: \"steps.a.outputs.dya == ''\"\n",
        ),
        &[diag(
            "unknown_attribute",
            9,
            14,
            "`steps.a.outputs` has no attribute `dya`",
        )],
    );
}

#[test]
fn template_reads_an_unknown_step() {
    check(
        &steps(
            "  - id: copy\n    wait: 1s\n  - id: b\n    needs: [copy]\n    assert: \"steps.cpy.stdout == ''\"\n",
        ),
        &[diag(
            "unknown_step_reference",
            8,
            14,
            "template reads unknown step `cpy`",
        )],
    );
}

#[test]
fn data_flow_only_from_ancestors() {
    check(
        &steps(
            "  - id: a\n    run: { program: date }\n  - id: b\n    wait: 1s\n  - id: c\n    needs: [b]\n    run: { program: echo, args: ['{{ steps.a.stdout }}'] }\n",
        ),
        &[diag(
            "not_an_ancestor",
            10,
            38,
            "step `c` reads `steps.a`, but `a` does not run before it",
        )],
    );
}

#[test]
fn data_flow_through_a_chain_is_allowed() {
    let (diags, code) = validate(&steps(
        "  - id: a\n    run: { program: date }\n  - id: b\n    needs: [a]\n    wait: 1s\n  - id: c\n    needs: [b]\n    run: { program: echo, args: ['{{ steps.a.stdout }}'] }\n",
    ));
    assert_eq!(diags, []);
    assert_eq!(code, 0);
}

#[test]
fn hyphenated_step_id_read_as_subtraction() {
    check(
        &steps(
            "  - id: copy-logs\n    run: { program: ls }\n  - id: b\n    needs: [copy-logs]\n    run: { program: echo, args: ['{{ steps.copy-logs.stdout }}', \"{{ steps['copy-logs'].stdout }}\"] }\n",
        ),
        &[diag(
            "hyphenated_step_reference",
            8,
            38,
            "`steps.copy-logs.stdout` is read as a subtraction",
        )],
    );
}

#[test]
fn result_outside_until_and_outputs() {
    check(
        &steps(
            "  - id: a\n    run: { program: ls }\n    until: result.exit_code == 0\n    retry: { attempts: 2 }\n    outputs: { code: '{{ result.exit_code }}' }\n    when: result.exit_code == 0\n",
        ),
        &[diag(
            "result_not_available",
            9,
            11,
            "`result` is only available in `until` and `outputs`",
        )],
    );
}

#[test]
fn param_default_must_fit_type_pattern_and_enum() {
    let yaml = "runbook: 1\nname: t\nparams:\n  a: { type: int, default: many }\n  b: { default: 1mgc, pattern: '[a-z]+' }\n  c: { default: blue, enum: [red, green] }\nsteps:\n  - id: s\n    run: { shell: sh, script: 'echo {{ params.a | shell_quote }}{{ params.b | shell_quote }}{{ params.c | shell_quote }}' }\n";
    check(
        yaml,
        &[
            diag(
                "invalid_param_value",
                4,
                28,
                "the default of param `a` is invalid: expected int, found a string",
            ),
            diag(
                "invalid_param_value",
                5,
                17,
                "the default of param `b` is invalid: `1mgc` does not match the pattern `[a-z]+`",
            ),
            diag(
                "invalid_param_value",
                6,
                17,
                "the default of param `c` is invalid: \"blue\" is not one of \"red\", \"green\"",
            ),
        ],
    );
}

#[test]
fn invalid_pattern() {
    let yaml = "runbook: 1\nname: t\nparams:\n  a: { pattern: '[a-z' }\nsteps:\n  - id: s\n    run: { shell: sh, script: 'echo {{ params.a | shell_quote }}' }\n";
    check(
        yaml,
        &[diag(
            "invalid_pattern",
            4,
            17,
            "invalid pattern: error: unclosed character class",
        )],
    );
}

#[test]
fn unused_param_and_secret_are_warnings() {
    let yaml = "runbook: 1\nname: t\nparams:\n  spare: { default: x }\nsecrets:\n  pw: { env: PW }\nsteps:\n  - id: s\n    wait: 1s\n";
    check(
        yaml,
        &[
            diag("unused_param", 4, 3, "param `spare` is never used"),
            diag("unused_secret", 6, 3, "secret `pw` is never used"),
        ],
    );
}

#[test]
fn until_with_one_attempt() {
    check(
        &steps("  - id: a\n    run: { program: ls }\n    until: result.exit_code == 0\n"),
        &[diag(
            "until_single_attempt",
            6,
            12,
            "step `a` polls with `until` but has a single attempt",
        )],
    );
}

#[test]
fn irreversible_with_rollback() {
    check(
        &steps(
            "  - id: a\n    run: { program: ls }\n    irreversible: true\n    rollback: { run: { program: ls } }\n",
        ),
        &[diag(
            "irreversible_rollback",
            7,
            15,
            "irreversible step `a` has a rollback that will never run",
        )],
    );
}

#[test]
fn secret_in_program_arguments() {
    let yaml = "runbook: 1\nname: t\nsecrets:\n  pw: { env: PW }\nsteps:\n  - id: a\n    run: { program: sqlcmd, args: ['-P', '{{ secrets.pw }}'] }\n";
    check(
        yaml,
        &[diag(
            "secret_in_args",
            7,
            46,
            "secret `pw` is passed as a command-line argument",
        )],
    );
}

#[test]
fn unquoted_template_in_sql() {
    let yaml = "runbook: 1\nname: t\nparams:\n  db: { default: mgc }\nconnections:\n  s: { mssql: 'server=tcp:h' }\nsteps:\n  - id: a\n    sql: { connection: s, query: 'RESTORE DATABASE {{ params.db }} WITH RECOVERY' }\n  - id: b\n    sql: { connection: s, query: 'RESTORE DATABASE {{ params.db | sql_ident }} WITH RECOVERY' }\n";
    check(
        yaml,
        &[diag(
            "unfiltered_sql_template",
            9,
            52,
            "a template is interpolated into SQL without `sql_ident` or `sql_literal`",
        )],
    );
}

#[test]
fn every_problem_of_a_file_in_one_run_in_file_order() {
    let yaml = steps(
        "  - id: a\n    needs: [zzz]\n    wait: 1s\n    retyr: 2\n  - id: a\n    wait: soon\n  - id: c\n    sql: { connection: nowhere, query: SELECT 1 }\n",
    );
    let (diags, code) = validate(&yaml);
    let codes: Vec<(&str, u64)> = diags.iter().map(|d| (d.code.as_str(), d.line)).collect();
    assert_eq!(
        codes,
        [
            ("runbook::unknown_step", 5),
            ("runbook::unknown_key", 7),
            ("runbook::duplicate_step", 8),
            ("runbook::invalid_duration", 9),
            ("runbook::unknown_connection", 11),
        ]
    );
    assert_eq!(code, 1);
}

#[test]
fn template_error_after_an_escape_in_a_double_quoted_scalar() {
    // `\t` is two characters in the file and one in the value: the column is the file's.
    let line = "    approval: { prompt: \"a\\tb {{ params.x }\" }";
    let column = line.find("}\"").unwrap() as u64 + 1;
    check(
        &steps(&format!("  - id: a\n{line}\n")),
        &[diag(
            "template_syntax",
            5,
            column,
            "template syntax error: unexpected `}`, expected end of variable block",
        )],
    );
}

#[test]
fn template_error_in_a_folded_plain_scalar_stays_on_its_line() {
    let yaml =
        steps("  - id: a\n    approval:\n      prompt: first line\n        then {{ oops }\n");
    let (diags, _) = validate(&yaml);
    assert_eq!(diags.len(), 1);
    assert_eq!((diags[0].line, diags[0].column), (7, 22));
}

#[test]
fn unknown_filter_and_test() {
    let yaml = "runbook: 1\nname: f\nparams:\n  db: { default: mgc }\nsteps:\n  - id: a\n    run: { program: echo, args: [\"{{ params.db | sql_indent }}\", \"{{ params.db | upper }}\"] }\n    when: params.db is strnig\n";
    check(
        yaml,
        &[
            diag("unknown_filter", 7, 50, "unknown filter `sql_indent`"),
            diag("unknown_filter", 8, 24, "unknown test `strnig`"),
        ],
    );
}
