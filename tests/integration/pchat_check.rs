//! `runbook check` of the shipped Persistent Chat runbooks against the strict estate: it
//! passes, every probe and rehearse action reached the SQL Servers or the Lync host (their
//! logs show each), and nothing changed: the whole estate is as it was, no statement that
//! changes a SQL Server was received, and every cmdlet that changes something ran under
//! `-WhatIf`.

use crate::check::MUTATING_SQL;
use crate::lync_scripts::{self, Action, Name};
use crate::pchat_estate::Estate;
use crate::rehearsal::fail_over;
use crate::support::Output;

/// What the estate's servers and Lync host have received so far, to tell what a check sent.
struct Mark {
    primary: usize,
    backup: usize,
    log: usize,
}

fn mark(estate: &Estate) -> Mark {
    Mark {
        primary: primary_requests(estate).len(),
        backup: estate.sql.backup_server.requests().len(),
        log: estate.lync.log().len(),
    }
}

fn primary_requests(estate: &Estate) -> Vec<String> {
    estate
        .sql
        .primary_server
        .as_ref()
        .map(|s| s.requests())
        .unwrap_or_default()
}

/// The SQL statements both servers received since `mark`.
fn statements_since(estate: &Estate, mark: &Mark) -> Vec<String> {
    let primary = primary_requests(estate);
    let backup = estate.sql.backup_server.requests();
    primary[mark.primary..]
        .iter()
        .chain(&backup[mark.backup..])
        .cloned()
        .collect()
}

/// The scripts the Lync host ran since `mark`, each as it was written (they all start with
/// `Import-Module Lync`).
fn scripts_since(estate: &Estate, mark: &Mark) -> Vec<String> {
    let log = estate.lync.log();
    let mut scripts: Vec<String> = Vec::new();
    for line in log[mark.log..].lines() {
        if line == "Import-Module Lync" || scripts.is_empty() {
            scripts.push(String::new());
        }
        let last = scripts.last_mut().expect("a script");
        last.push_str(line);
        last.push('\n');
    }
    scripts
}

/// `runbook check --format json` of `book` (a shipped runbook, or a changed copy's text when
/// `text` is given).
pub fn check(estate: &Estate, book: &str, text: Option<&str>) -> Output {
    match text {
        None => estate.runbook(&["check", "--format", "json"], book, None),
        Some(text) => {
            let path = estate.path(&format!("changed-{book}"));
            std::fs::write(&path, text).expect("write the changed copy");
            estate.runbook_file(&["check", "--format", "json"], &path, None)
        }
    }
}

/// Whether a step's action ran under check: checked or rehearsed, or not checkable only
/// because what it found predates a change check did not make.
fn ran(step: &serde_json::Value) -> bool {
    match step["status"].as_str().unwrap_or_default() {
        "checked" | "rehearsed" | "failed" => true,
        "not_checkable" => step["reason"]
            .as_str()
            .unwrap_or_default()
            .ends_with("which check does not run"),
        _ => false,
    }
}

/// The id of a step or of a loop's instance (`restore[x]` → `restore`).
fn step_of(id: &str) -> &str {
    id.split_once('[').map_or(id, |(step, _)| step)
}

/// Runs `runbook check` of `book` and asserts that it passes, that every probe and rehearse
/// action it reports as run reached the estate, and that nothing changed.
fn passes_and_changes_nothing(estate: &Estate, book: &str) {
    let before = estate.snapshot();
    let journals = files(&estate.path("state"));
    let mark = mark(estate);
    let out = check(estate, book, None);
    let context = format!("{book}:\n{}\n{}", out.stdout, out.stderr);
    assert_eq!(out.code, 0, "{context}");
    let report = out.json();
    let reported = report["steps"].as_array().expect("steps");
    let failed: Vec<&serde_json::Value> = reported
        .iter()
        .filter(|s| s["status"] == "failed")
        .collect();
    assert!(failed.is_empty(), "{context}");

    // Every step is accounted for as the runbook declares it: a probe checked, a change
    // rehearsed, never one run for real.
    let source = lync_scripts::source(book);
    let steps = lync_scripts::steps(&source);
    for step in &steps {
        let id = step["id"].as_str().expect("id");
        let statuses: Vec<&str> = reported
            .iter()
            .filter(|s| step_of(s["id"].as_str().unwrap_or_default()) == id)
            .filter_map(|s| s["status"].as_str())
            .collect();
        assert!(!statuses.is_empty(), "{id} not reported: {context}");
        let expected: &[&str] = if step.get("approval").is_some() {
            &["approval", "skipped"]
        } else if step["probe"] == true {
            &["checked", "not_checkable", "skipped"]
        } else if step.get("rehearse").is_some() {
            &["rehearsed", "not_checkable", "skipped"]
        } else {
            &["checked", "not_checkable", "skipped"]
        };
        assert!(
            statuses.iter().all(|s| expected.contains(s)),
            "{id}: {statuses:?}, expected one of {expected:?}: {context}"
        );
    }

    // The Lync host ran the probe's script or the rehearse action of each step reported as
    // run, in the order of the report, and nothing else.
    let scripts = lync_scripts::scripts(&source);
    let expected: Vec<(String, Vec<String>)> = reported
        .iter()
        .filter(|s| ran(s))
        .filter_map(|s| {
            let id = step_of(s["id"].as_str()?);
            let script = scripts.iter().find(|c| {
                c.step == id
                    && ((c.probe && c.action == Action::Run)
                        || (!c.probe && c.action == Action::Rehearse))
            })?;
            Some((id.to_owned(), cmdlets(&script.text)))
        })
        .collect();
    let logged: Vec<Vec<String>> = scripts_since(estate, &mark)
        .iter()
        .map(|s| cmdlets(s))
        .collect();
    assert_eq!(
        logged,
        expected.iter().map(|(_, c)| c.clone()).collect::<Vec<_>>(),
        "the Lync host ran other scripts than the probes and rehearse actions of {:?}: {context}",
        expected.iter().map(|(id, _)| id).collect::<Vec<_>>()
    );
    assert!(
        expected.len() >= 8,
        "{book}: the Lync steps were not checked: {context}"
    );

    // Every SQL probe and rehearse action reported as run reached a server.
    let statements = statements_since(estate, &mark);
    for s in reported.iter().filter(|s| ran(s)) {
        let id = step_of(s["id"].as_str().unwrap_or_default());
        let step = steps.iter().find(|d| d["id"] == id).expect("a step");
        let sql = if step["probe"] == true {
            &step["sql"]
        } else {
            &step["rehearse"]["sql"]
        };
        let Some(query) = sql["query"].as_str() else {
            continue;
        };
        // What the runbook sends before the first template.
        let sent = query.split("{{").next().unwrap_or_default().trim();
        assert!(
            statements.iter().any(|r| r.trim().starts_with(sent)),
            "{id}: `{sent}` never reached a SQL Server: {context}"
        );
    }

    // Nothing changed.
    for statement in &statements {
        assert!(
            !MUTATING_SQL.iter().any(|m| statement.contains(m)),
            "a statement that changes a SQL Server was sent: {statement}"
        );
    }
    let changing = lync_scripts::changing_cmdlets();
    for script in scripts_since(estate, &mark) {
        for line in script.lines() {
            let names = lync_scripts::names(line);
            let changes = names
                .iter()
                .any(|n| matches!(n, Name::Cmdlet(c) if changing.contains(c)));
            assert!(
                !changes || names.contains(&Name::Parameter("WhatIf".to_owned())),
                "a cmdlet that changes something ran without -WhatIf: {line}"
            );
        }
    }
    assert_eq!(estate.snapshot(), before, "{book}: the estate changed");
    assert_eq!(
        files(&estate.path("state")),
        journals,
        "check wrote to the state directory"
    );
}

/// Every path under `dir`, sorted (none when it does not exist).
fn files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            if e.path().is_dir() {
                todo.push(e.path());
            }
            out.push(e.path());
        }
    }
    out.sort();
    out
}

/// The cmdlets a script calls, sorted.
fn cmdlets(script: &str) -> Vec<String> {
    lync_scripts::names(script)
        .into_iter()
        .filter_map(|n| match n {
            Name::Cmdlet(c) => Some(c),
            Name::Parameter(_) => None,
        })
        .collect()
}

#[test]
fn check_of_the_shipped_failover_passes_and_changes_nothing() {
    let estate = Estate::healthy();
    passes_and_changes_nothing(&estate, "failover.yaml");
}

/// The failback is checked where it runs: after a failover.
#[test]
fn check_of_the_shipped_failback_passes_after_a_failover_and_changes_nothing() {
    let estate = Estate::healthy();
    fail_over(&estate);
    passes_and_changes_nothing(&estate, "failback.yaml");
}
