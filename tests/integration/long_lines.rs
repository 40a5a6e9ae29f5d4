//! Problems on very long lines (minified JSON in a default, a long inline script) and files with
//! thousands of problems: every format reports the exact place, stays small and does not panic.

use std::time::{Duration, Instant};

use crate::support::{Output, Test};

/// A generous bound on the output for one problem, whatever the length of its line.
const PER_PROBLEM: usize = 4 * 1024;

/// An unknown param read at the end of a 70,000-character value.
fn unknown_param_after(padding: usize) -> String {
    format!(
        "runbook: 1\nname: t\nsteps:\n  - id: a\n    run: {{ shell: sh, script: echo }}\n    env: {{ A: \"{}{{{{ params.nope }}}}\" }}\n",
        "x".repeat(padding)
    )
}

/// `when: "not not … nope"` (30,000 `not`s, which overflowed the stack) on a line that starts
/// with a 70,000-character script.
fn thirty_thousand_nots_after_a_long_script() -> String {
    format!(
        "runbook: 1\nname: t\nsteps:\n  - {{ id: a, run: {{ shell: sh, script: \"{}\" }}, when: \"{}nope\" }}\n",
        "x".repeat(70_000),
        "not ".repeat(30_000)
    )
}

fn validate(yaml: &str, format: &str) -> Output {
    Test::new()
        .file("runbook.yaml", yaml)
        .args(["validate", "--format", format, "runbook.yaml"])
        .run()
}

#[track_caller]
fn assert_bounded(text: &str) {
    assert!(
        text.len() < PER_PROBLEM,
        "{} bytes for one problem:\n{}",
        text.len(),
        &text[..text.len().min(2_000)]
    );
}

#[track_caller]
fn assert_reported_at(yaml: &str, code: &str, line: u64, column: u64) {
    let json = validate(yaml, "json");
    assert_eq!(json.code, 1, "{}", json.stderr);
    let diags = json.diags();
    assert_eq!(diags.len(), 1, "{diags:?}");
    assert_eq!(
        (diags[0].code.as_str(), diags[0].line, diags[0].column),
        (code, line, column)
    );

    let human = validate(yaml, "human");
    assert_eq!(human.code, 1, "{}", human.stderr);
    assert!(
        human
            .stdout
            .contains(&format!("╭─[runbook.yaml:{line}:{column}]")),
        "no header with the exact place in:\n{}",
        human.stdout
    );
    assert!(human.stdout.contains('…'), "{}", human.stdout);
    assert!(human.stdout.ends_with("1 file: 1 error, 0 warnings\n"));
    assert_bounded(&human.stdout);

    let github = validate(yaml, "github");
    assert_eq!(github.code, 1, "{}", github.stderr);
    assert!(
        github.stdout.starts_with(&format!(
            "::error file=runbook.yaml,line={line},col={column},"
        )),
        "{}",
        github.stdout
    );
    assert_bounded(&github.stdout);
}

#[test]
fn validate_does_not_panic_past_column_65535() {
    assert_reported_at(
        &unknown_param_after(70_000),
        "runbook::unknown_variable",
        6,
        70_019,
    );
    // Refused before parsing, at the start of the expression.
    assert_reported_at(
        &thirty_thousand_nots_after_a_long_script(),
        "runbook::resource_limit",
        4,
        70_053,
    );
}

#[test]
fn validate_reports_a_problem_at_column_3000000() {
    assert_reported_at(
        &unknown_param_after(3_000_000),
        "runbook::unknown_variable",
        6,
        3_000_019,
    );
}

#[test]
fn the_window_shows_the_problem_and_its_label() {
    let out = validate(&unknown_param_after(70_000), "human");
    let snippet = out
        .stdout
        .lines()
        .find(|l| l.starts_with(" 6 │ "))
        .unwrap_or_else(|| panic!("no line 6 in:\n{}", out.stdout));
    assert!(snippet.starts_with(" 6 │ …xxx"), "{snippet}");
    assert!(snippet.ends_with("{{ params.nope }}\" }"), "{snippet}");
    assert!(out.stdout.contains("╰── not defined"), "{}", out.stdout);
}

#[test]
fn a_long_line_next_to_a_problem_is_cut_too() {
    let yaml = format!(
        "runbook: 1\nname: t\nparams:\n  blob: {{ default: '{}' }}\nsteps:\n  - id: a\n    needs: [b]\n    wait: 1s\n",
        "[1,2,3]".repeat(20_000)
    );
    let out = validate(&yaml, "human");
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stdout.contains("╭─[runbook.yaml:7:13]"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("1 file: 1 error, 1 warning"));
    assert_bounded(&out.stdout);
}

#[test]
fn a_huge_value_quoted_in_a_message_is_shortened() {
    let yaml = format!(
        "runbook: 1\nname: t\nsteps:\n  - id: a\n    wait: {}\n",
        "k".repeat(100_000)
    );
    for format in ["human", "github"] {
        let out = validate(&yaml, format);
        assert_eq!(out.code, 1, "{}", out.stderr);
        // The human format wraps the message: its first line ends after "invalid duration".
        assert!(out.stdout.contains("invalid duration"), "{}", out.stdout);
        assert!(out.stdout.contains("`kkk"), "{}", out.stdout);
        assert!(out.stdout.contains("k…"), "{}", out.stdout);
        assert_bounded(&out.stdout);
    }
}

#[test]
fn plan_and_graph_report_a_problem_past_column_65535() {
    let t = Test::new().file("runbook.yaml", unknown_param_after(70_000));
    for (command, code) in [("plan", 2), ("graph", 2)] {
        let out = Test::in_dir(t.path()).args([command, "runbook.yaml"]).run();
        assert_eq!(out.code, code, "{command}: {}", out.stderr);
        assert_eq!(out.stdout, "", "{command}");
        assert!(
            out.stderr.contains("╭─[runbook.yaml:6:70019]"),
            "{command}: {}",
            out.stderr
        );
        assert_bounded(&out.stderr);
    }
}

#[test]
fn twenty_thousand_warnings_render_in_linear_time() {
    let mut yaml = String::from("runbook: 1\nname: t\nsteps:\n");
    for i in 0..20_000 {
        yaml.push_str(&format!(
            "  - id: s{i}\n    run: {{ shell: sh, script: \"true\" }}\n    until: result.exit_code == 0\n"
        ));
    }
    let started = Instant::now();
    let out = validate(&yaml, "human");
    let elapsed = started.elapsed();
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout.ends_with("1 file: 0 errors, 20000 warnings\n"),
        "{}",
        &out.stdout[out.stdout.len().saturating_sub(500)..]
    );
    // A debug build takes a few seconds. Reading the file from its start for every snippet
    // took 12 s for 2,000 warnings, so some twenty minutes for these.
    assert!(
        elapsed < Duration::from_secs(60),
        "20,000 warnings took {elapsed:?}"
    );
}
