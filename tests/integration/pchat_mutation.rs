//! A wrong cmdlet or parameter name in a shipped Persistent Chat runbook does not get past the
//! strict estate. Every name each step's Lync scripts use (read from the YAML files, see
//! `lync_scripts`) is changed, one per step, in a copy of the runbook, and the copy fails at
//! that step, with PowerShell's words for that name:
//! - in a probe's script or a change's action and rehearse action (changed in both):
//!   `runbook check` fails at the step;
//! - in a rollback: a rehearsal that fails just before the point of no return, so that every
//!   rollback runs, leaves that rollback failed;
//! - a change's action is its rehearse action under `-Confirm:$false` instead of `-WhatIf`
//!   (checked here too), so a name changed in the action alone is caught as well.
//!
//! A copy changes one name in each step at once: check takes the steps one at a time and a
//! failed script stops nothing else, and each failure must name the name changed in its own
//! step (a step failing that was not changed fails the test). Names inside a template branch
//! are used only where the estate renders that branch: the copies run against estates that
//! render each (a named instance, the compliance database mirrored, a primary mirrored or not).

use std::collections::BTreeMap;

use crate::lync_scripts::{self, Action, Name, changing_cmdlets, names, scripts, source};
use crate::pchat_check::check;
use crate::pchat_estate::{
    BACKUP_IP, Estate, Fault, MIRROR_SHARE, PRIMARY_IP, PRIMARY_MIRROR, Side,
};
use crate::rehearsal::{FAILBACK_APPROVALS, FAILOVER_APPROVALS, all, fail_over, run_file};

/// What a copy changes: in `step`'s `actions`, `name`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Change {
    step: String,
    actions: Vec<Action>,
    name: Name,
}

/// The changes to try, step by step: for `check`, each name of a probe's script or of a
/// change's action and rehearse action; for `rollback`, each name of a rollback.
fn changes(book: &str, rollback: bool) -> Vec<Vec<Change>> {
    let mut by_step: BTreeMap<String, (Vec<Action>, Vec<Name>)> = BTreeMap::new();
    for s in scripts(&source(book)) {
        let wanted = match s.action {
            Action::Rollback => rollback,
            Action::Run => !rollback,
            Action::Rehearse => !rollback,
        };
        if !wanted {
            continue;
        }
        let entry = by_step.entry(s.step.clone()).or_default();
        entry.0.push(s.action);
        for n in names(&s.text) {
            // `-Confirm:$false` is in a change's action only, never in what check runs: the
            // action's identity with its rehearse action covers it.
            let action_only = !rollback && !s.probe && n == Name::Parameter("Confirm".into());
            if !action_only && !entry.1.contains(&n) {
                entry.1.push(n);
            }
        }
    }
    by_step
        .into_iter()
        .map(|(step, (actions, names))| {
            names
                .into_iter()
                .map(|name| Change {
                    step: step.clone(),
                    actions: actions.clone(),
                    name,
                })
                .collect()
        })
        .collect()
}

/// Round `k`: the `k`-th change of each step that has one.
fn round(pending: &[Vec<Change>], k: usize) -> Vec<Change> {
    pending.iter().filter_map(|c| c.get(k).cloned()).collect()
}

fn rounds(pending: &[Vec<Change>]) -> usize {
    pending.iter().map(Vec::len).max().unwrap_or(0)
}

/// The runbook's text with every change made.
fn changed_text(book: &str, changes: &[Change]) -> String {
    changes.iter().fold(source(book), |text, c| {
        lync_scripts::with_changed(&text, &c.step, &c.actions, &c.name)
    })
}

/// The id of a step or of a loop's instance (`restore[x]` → `restore`).
fn step_of(id: &str) -> &str {
    id.split_once('[').map_or(id, |(step, _)| step)
}

/// The stores of both SQL Servers' named instance `PCHAT` in the published topology, as the
/// default instances' are: Install-CsMirrorDatabase `-SqlInstanceName` finds them.
fn named_instances(estate: &Estate) {
    let mut state = estate.lync.state();
    let stores = state["topology"]["stores"].clone();
    for ip in [PRIMARY_IP, BACKUP_IP] {
        state["topology"]["stores"][format!("{ip}\\PCHAT")] = stores[ip].clone();
    }
    std::fs::write(estate.path("lync/lync.json"), state.to_string()).expect("the Lync state");
}

/// Runs `runbook check` of each copy, one change per step, against `estate` (which renders
/// every branch), until every change has made check fail at its step.
fn check_fails_at_every_changed_step(estate: &Estate, book: &str) {
    let before = estate.snapshot();
    let out = check(estate, book, None);
    assert_eq!(out.code, 0, "{book} unchanged:\n{}", out.stdout);
    let pending = changes(book, false);
    let total: usize = pending.iter().map(Vec::len).sum();
    assert!(total >= 30, "{book}: {pending:#?}");
    for k in 0..rounds(&pending) {
        let changes = round(&pending, k);
        let out = check(estate, book, Some(&changed_text(book, &changes)));
        let context = format!("{book}, changed {changes:#?}:\n{}", out.stdout);
        assert_eq!(out.code, 1, "{context}");
        let report = out.json();
        let reported = report["steps"].as_array().expect("steps");
        for s in reported.iter().filter(|s| s["status"] == "failed") {
            let id = step_of(s["id"].as_str().unwrap_or_default());
            assert!(
                changes.iter().any(|c| c.step == id),
                "{id} failed but was not changed: {context}"
            );
        }
        for c in &changes {
            let refused = c.name.changed().refused();
            assert!(
                reported.iter().any(|s| {
                    step_of(s["id"].as_str().unwrap_or_default()) == c.step
                        && s["status"] == "failed"
                        && s["reason"].as_str().unwrap_or_default().contains(&refused)
                }),
                "{}: {} changed, yet check did not fail there with `{refused}`: {context}",
                c.step,
                c.name.written()
            );
        }
    }
    assert_eq!(
        estate.snapshot(),
        before,
        "{book}: a check changed the estate"
    );
}

#[test]
fn a_changed_name_in_the_failovers_lync_scripts_fails_check_at_that_step() {
    let mut estate = Estate::healthy();
    estate.extra_params = "backup_sql_instance: PCHAT\n".to_owned();
    named_instances(&estate);
    check_fails_at_every_changed_step(&estate, "failover.yaml");
}

#[test]
fn a_changed_name_in_the_failbacks_lync_scripts_fails_check_at_that_step() {
    let mut estate = Estate::healthy();
    fail_over(&estate);
    estate.extra_params =
        "primary_sql_instance: PCHAT\nmirror_compliance_database: true\n".to_owned();
    named_instances(&estate);
    check_fails_at_every_changed_step(&estate, "failback.yaml");
}

/// A change's Lync action is its rehearse action with `-Confirm:$false` where the rehearse
/// action has `-WhatIf`: what check rehearses is what the run does. A cmdlet that changes
/// something is always told not to ask (a non-interactive shell cannot answer).
#[test]
fn every_lync_change_is_rehearsed_by_its_own_script_under_whatif() {
    let changing = changing_cmdlets();
    for book in ["failover.yaml", "failback.yaml"] {
        let scripts = scripts(&source(book));
        let actions: Vec<_> = scripts
            .iter()
            .filter(|s| s.action == Action::Run && !s.probe)
            .collect();
        assert!(actions.len() >= 4, "{book}: {actions:#?}");
        for action in actions {
            let rehearse = scripts
                .iter()
                .find(|s| s.step == action.step && s.action == Action::Rehearse)
                .unwrap_or_else(|| panic!("{book}: {} has no rehearse action", action.step));
            assert_eq!(
                rehearse.text,
                action.text.replace(" -Confirm:$false", " -WhatIf"),
                "{book}: {}",
                action.step
            );
            for script in scripts.iter().filter(|s| s.step == action.step) {
                for line in script.text.lines() {
                    let names = names(line);
                    let changes = names
                        .iter()
                        .any(|n| matches!(n, Name::Cmdlet(c) if changing.contains(c)));
                    let told = match script.action {
                        Action::Rehearse => line.contains(" -WhatIf"),
                        _ => line.contains(" -Confirm:$false"),
                    };
                    assert!(
                        !changes || told,
                        "{book}: {} {:?}: {line}",
                        action.step,
                        script.action
                    );
                }
            }
        }
    }
}

/// Each rollback action that failed, with what it wrote (PowerShell's error on stderr).
fn failed_rollbacks(out: &crate::support::Output) -> Vec<(String, String)> {
    let mut said: BTreeMap<String, String> = BTreeMap::new();
    let mut rolling_back = false;
    let mut failed = Vec::new();
    for e in out.events() {
        let step = e["step"].as_str().unwrap_or_default().to_owned();
        match e["event"].as_str().unwrap_or_default() {
            "rollback_started" => rolling_back = true,
            "output" if rolling_back => {
                let text = said.entry(step).or_default();
                text.push_str(e["line"].as_str().unwrap_or_default());
                text.push('\n');
            }
            "rollback_step_finished" if e["status"] != "succeeded" => {
                let text = said.get(&step).cloned().unwrap_or_default();
                failed.push((step, text));
            }
            _ => {}
        }
    }
    failed
}

/// Runs copies of `book` whose rollbacks each have one name changed, failing each run with
/// `fault` just before the point of no return (so that every rollback runs), from each of
/// the estates `variants` make out of `estate`'s saved state; every change must leave its
/// rollback failed with PowerShell's words for the name in at least one of them.
fn rollback_fails_at_every_changed_step(
    estate: &Estate,
    book: &str,
    approvals: &[&str],
    fault: Fault,
    variants: &[&dyn Fn(&Estate)],
) {
    let saved = estate.save();
    let mut pending = changes(book, true);
    let total: usize = pending.iter().map(Vec::len).sum();
    assert!(total >= 10, "{book}: {pending:#?}");
    let path = estate.path(&format!("changed-{book}"));
    for variant in variants {
        let todo = pending.clone();
        for k in 0..rounds(&todo) {
            let changes = round(&todo, k);
            estate.restore(&saved);
            variant(estate);
            estate.sql.inject(fault.clone());
            std::fs::write(&path, changed_text(book, &changes)).expect("write the copy");
            let out = run_file(estate, &path, approvals, None);
            let context = format!(
                "{book}, changed {changes:#?}:\n{}\n{}",
                out.stdout, out.stderr
            );
            let failed = failed_rollbacks(&out);
            // Rolled back, and incomplete exactly when a rollback failed.
            let expected = if failed.is_empty() { 1 } else { 3 };
            assert_eq!(out.code, expected, "{context}");
            for (id, _) in &failed {
                assert!(
                    changes.iter().any(|c| c.step == step_of(id)),
                    "the rollback of {id} failed but was not changed: {context}"
                );
            }
            for c in &changes {
                let refused = c.name.changed().refused();
                let caught = failed
                    .iter()
                    .any(|(id, said)| step_of(id) == c.step && said.contains(&refused));
                if caught {
                    for p in pending.iter_mut() {
                        p.retain(|x| x != c);
                    }
                }
            }
        }
        pending.retain(|p| !p.is_empty());
    }
    assert!(
        pending.is_empty(),
        "{book}: changed rollbacks that no rehearsal failed: {pending:#?}"
    );
}

/// The primary's database is not mirrored (nothing installed on either side).
fn primary_not_mirrored(estate: &Estate) {
    let mut state = estate.lync.state();
    let mirrors: Vec<serde_json::Value> = state["mirrors"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|m| m["sql"] != PRIMARY_IP)
        .collect();
    state["mirrors"] = serde_json::json!(mirrors);
    std::fs::write(estate.path("lync/lync.json"), state.to_string()).expect("the Lync state");
    if let Some(db) = estate.sql.primary.lock().unwrap().databases.get_mut("mgc") {
        db.mirroring = None;
    }
}

/// The rebuilt primary's database is ONLINE and mirrored, as Topology Builder may leave it.
fn rebuilt_primary_mirrored(estate: &Estate) {
    estate
        .sql
        .primary
        .lock()
        .unwrap()
        .recover("mgc")
        .expect("recover the primary");
    let mut state = estate.lync.state();
    let mut mirrors = state["mirrors"].as_array().cloned().unwrap_or_default();
    mirrors.push(serde_json::json!({
        "database_type": "PersistentChat", "sql": PRIMARY_IP, "mirror": PRIMARY_MIRROR,
        "file_share": MIRROR_SHARE,
    }));
    state["mirrors"] = serde_json::json!(mirrors);
    std::fs::write(estate.path("lync/lync.json"), state.to_string()).expect("the Lync state");
}

fn as_it_is(_: &Estate) {}

#[test]
fn a_changed_name_in_the_failovers_lync_rollbacks_fails_that_rollback() {
    let estate = Estate::healthy();
    rollback_fails_at_every_changed_step(
        &estate,
        "failover.yaml",
        &all(FAILOVER_APPROVALS, &["confirm-clients"]),
        Fault::error(Side::Backup, "RESTORE DATABASE [mgc] WITH RECOVERY"),
        &[&as_it_is, &primary_not_mirrored],
    );
}

#[test]
fn a_changed_name_in_the_failbacks_lync_rollbacks_fails_that_rollback() {
    let estate = Estate::healthy();
    fail_over(&estate);
    rollback_fails_at_every_changed_step(
        &estate,
        "failback.yaml",
        &all(
            FAILBACK_APPROVALS,
            &["confirm-clients", "confirm-disaster-recovery"],
        ),
        Fault::error(Side::Primary, "WITH REPLACE, RECOVERY"),
        &[&rebuilt_primary_mirrored, &as_it_is],
    );
}
