//! The three output formats of `validate`, exit codes, `--deny-warnings` and directories.

use crate::support::Test;

const BROKEN: &str = "runbook: 1\nname: t\nparams:\n  spare: { default: x }\nsteps:\n  - id: a\n    needs: [b]\n    wait: 1s\n";
const WARNING_ONLY: &str =
    "runbook: 1\nname: t\nparams:\n  spare: { default: x }\nsteps:\n  - id: a\n    wait: 1s\n";
const CLEAN: &str = "runbook: 1\nname: t\nsteps:\n  - id: a\n    wait: 1s\n";

#[test]
fn json_has_every_field_and_a_summary() {
    let out = Test::new()
        .file("broken.yaml", BROKEN)
        .args(["validate", "--format", "json", "broken.yaml"])
        .run();
    assert_eq!(out.code, 1);
    let json = out.json();
    assert_eq!(
        json["summary"],
        serde_json::json!({ "files": 1, "errors": 1, "warnings": 1 })
    );
    assert_eq!(
        json["diagnostics"][0],
        serde_json::json!({
            "file": "broken.yaml",
            "severity": "warning",
            "code": "runbook::unused_param",
            "message": "param `spare` is never used",
            "line": 4, "column": 3, "end_line": 4, "end_column": 8,
            "help": "remove it, or use it as `{{ params.spare }}`"
        })
    );
    assert_eq!(json["diagnostics"][1]["severity"], "error");
    assert_eq!(json["diagnostics"][1]["code"], "runbook::unknown_step");
    assert_eq!(json["diagnostics"][1]["help"], "steps are `a`");
}

#[test]
fn github_annotations() {
    let out = Test::new()
        .file("broken.yaml", BROKEN)
        .args(["validate", "--format", "github", "broken.yaml"])
        .run();
    assert_eq!(out.code, 1);
    assert_eq!(
        out.stdout,
        "::warning file=broken.yaml,line=4,col=3,endLine=4,endColumn=8,title=runbook%3A%3Aunused_param::param `spare` is never used%0Ahelp: remove it, or use it as `{{ params.spare }}`\n\
         ::error file=broken.yaml,line=7,col=13,endLine=7,endColumn=14,title=runbook%3A%3Aunknown_step::step `a` needs unknown step `b`%0Ahelp: steps are `a`\n"
    );
}

#[test]
fn human_report_shows_the_snippet_without_colour_when_piped() {
    let out = Test::new()
        .file("broken.yaml", BROKEN)
        .args(["validate", "broken.yaml"])
        .run();
    assert_eq!(out.code, 1);
    assert!(!out.stdout.contains('\u{1b}'), "no ANSI escapes when piped");
    for expected in [
        "× step `a` needs unknown step `b`",
        "╭─[broken.yaml:7:13]",
        " 7 │     needs: [b]",
        "╰── no step has this id",
        "help: steps are `a`",
        "⚠ param `spare` is never used",
        "1 file: 1 error, 1 warning",
    ] {
        assert!(
            out.stdout.contains(expected),
            "missing {expected:?} in:\n{}",
            out.stdout
        );
    }
}

#[test]
fn warnings_pass_unless_denied() {
    let t = Test::new().file("w.yaml", WARNING_ONLY);
    assert_eq!(t.args(["validate", "w.yaml"]).run().code, 0);
    let t = Test::new().file("w.yaml", WARNING_ONLY);
    assert_eq!(
        t.args(["validate", "--deny-warnings", "w.yaml"]).run().code,
        1
    );
}

#[test]
fn clean_file_exits_0() {
    let out = Test::new()
        .file("ok.yaml", CLEAN)
        .args(["validate", "ok.yaml"])
        .run();
    assert_eq!(out.code, 0);
    assert_eq!(out.stdout, "1 file: 0 errors, 0 warnings\n");
}

#[test]
fn directories_are_searched_for_yaml_files() {
    let out = Test::new()
        .file("books/a.yaml", CLEAN)
        .file("books/nested/b.yml", BROKEN)
        .file("books/params.example.yaml", "database: mgc\n")
        .file("books/notes.txt", "not yaml")
        .args(["validate", "--format", "json", "books"])
        .run();
    assert_eq!(out.code, 1);
    let json = out.json();
    assert_eq!(json["summary"]["files"], 2);
    assert_eq!(json["diagnostics"][0]["file"], "books/nested/b.yml");
}
