//! The shipped Persistent Chat runbooks failing at every step, against the strict estate:
//! before the point of no return the estate is left as it was (the whole snapshot, with the
//! documented exceptions of what only moves forward), after it nothing is undone and the run
//! stops for a person where a `fix-*` approval exists (or where the rest cannot go on). Each
//! step's scenario starts from one saved estate.

use crate::pchat_estate::{Estate, Fault, FaultKind, Side, Snapshot};
use crate::rehearsal::{FAILBACK_APPROVALS, FAILOVER_APPROVALS, all, fail_over, run, statuses};
use crate::tds::{Reply, Value};

/// How a rehearsal makes one step fail.
enum Inject {
    /// SQL error 50000 for requests containing the text, on one server.
    Sql(Side, &'static str),
    /// The same for the matching requests after the first `n`, which go through.
    SqlAfter(Side, &'static str, u32),
    /// These replies instead of the server's, for requests containing the text (a probe
    /// returning what makes the assertion after it fail).
    Rows(Side, &'static str, Vec<&'static str>, Vec<Value>),
    /// The PowerShell stand-in fails scripts containing the text.
    PowerShell(&'static str),
    /// The pool is in this state before the run.
    Pool(&'static str),
}

impl Inject {
    /// Sets the failure up on the estate; what the runbook process needs (the stand-in's
    /// `REHEARSAL_FAIL_ON`) is returned.
    fn apply(self, estate: &Estate) -> Option<&'static str> {
        match self {
            Inject::Sql(side, text) => estate.sql.inject(Fault::error(side, text)),
            Inject::SqlAfter(side, text, n) => estate.sql.inject(Fault {
                skip: n,
                ..Fault::error(side, text)
            }),
            Inject::Rows(side, text, columns, row) => estate.sql.inject(Fault {
                kind: FaultKind::Replies(vec![
                    Reply::Rows {
                        columns: columns.iter().map(|c| (*c).to_owned()).collect(),
                        rows: vec![row],
                    },
                    Reply::Done { rows_affected: 1 },
                ]),
                ..Fault::error(side, text)
            }),
            Inject::PowerShell(text) => return Some(text),
            Inject::Pool(state) => {
                let mut lync = estate.lync.state();
                lync["pools"]["pchat.contoso.com"]["state"] = state.into();
                std::fs::write(estate.path("lync/lync.json"), lync.to_string())
                    .expect("Lync state");
            }
        }
        None
    }
}

/// A step and the failures that make it fail (the first is the step's own; others make the
/// checks after it fail at once instead of polling for minutes).
type Faults = Vec<(&'static str, Vec<Inject>)>;

/// What a runbook failing at every step must show.
struct EveryStep {
    book: &'static str,
    approvals: Vec<&'static str>,
    faults: Faults,
    /// The first step past the point of no return.
    past: &'static str,
    /// Steps past it whose failure stops the run for a person (a `fix-*` approval nobody
    /// gave, or the rest needs them).
    stops: &'static [&'static str],
    /// Steps with no scenario (neither approvals nor covered), with the reason at the call.
    uncovered: &'static [&'static str],
    /// Texts no script sent to the Lync host past the point of no return may have: what would
    /// point the pool back.
    never: &'static [&'static str],
    /// The database that must be ONLINE after a failure past the point of no return.
    online: (&'static str, &'static str),
}

/// What a failure before the point of no return must leave as it was: everything but how
/// far the log has gone (a log restored cannot be unrestored, a tail once taken stays on
/// the share under a log-shipping name; both only move forward), and the files (a log
/// backup or a full backup taken stays where it was written).
fn comparable(mut s: Snapshot) -> Snapshot {
    for side in ["primary", "backup"] {
        if let Some(dbs) = s["sql"][side]["databases"].as_object_mut() {
            for db in dbs.values_mut() {
                for field in ["lsn", "backed_up_to", "redo_start", "restored"] {
                    db[field] = serde_json::Value::Null;
                }
            }
        }
        if let Some(ls) = s["sql"][side]["log_shipping_primary"].as_array_mut() {
            for p in ls {
                p["last_backup_file"] = serde_json::Value::Null;
            }
        }
    }
    for folder in ["share", "copy", "failback"] {
        s["sql"][folder] = serde_json::Value::Null;
    }
    s
}

/// Where two snapshots differ: each path, with the value before and after.
fn differences(before: &Snapshot, after: &Snapshot) -> Vec<String> {
    let mut out = Vec::new();
    let mut todo = vec![(String::new(), before, after)];
    while let Some((path, a, b)) = todo.pop() {
        match (a, b) {
            (serde_json::Value::Object(x), serde_json::Value::Object(y)) => {
                for key in x.keys().chain(y.keys().filter(|k| !x.contains_key(*k))) {
                    let null = &serde_json::Value::Null;
                    let (u, v) = (x.get(key).unwrap_or(null), y.get(key).unwrap_or(null));
                    todo.push((format!("{path}/{key}"), u, v));
                }
            }
            (serde_json::Value::Array(x), serde_json::Value::Array(y)) if x.len() == y.len() => {
                for (i, (u, v)) in x.iter().zip(y).enumerate() {
                    todo.push((format!("{path}[{i}]"), u, v));
                }
            }
            _ if a != b => out.push(format!("{path}: {a} → {b}")),
            _ => {}
        }
    }
    out
}

fn ids(plan: &serde_json::Value, key: &str) -> Vec<String> {
    plan[key]
        .as_array()
        .expect("a list")
        .iter()
        .filter_map(|s| s.as_str().or_else(|| s["id"].as_str()).map(str::to_owned))
        .collect()
}

/// Runs `e.book` once per step of `e.faults`, each from the estate as it is now, and checks
/// what each failure leaves.
fn fails_at_every_step(estate: &Estate, e: EveryStep) {
    let saved = &estate.save();
    let plan = estate
        .runbook(&["plan", "--format", "json"], e.book, None)
        .json();
    let approvals = ids(&plan, "approvals");
    let covered: Vec<&str> = e.faults.iter().map(|(s, _)| *s).collect();
    let uncovered: Vec<String> = ids(&plan, "steps")
        .into_iter()
        .filter(|id| !covered.contains(&id.as_str()) && !approvals.contains(id))
        .collect();
    assert_eq!(
        uncovered, e.uncovered,
        "steps with no rehearsal of their failure"
    );
    let past = covered
        .iter()
        .position(|s| *s == e.past)
        .expect("the point of no return");

    for (i, (step, injects)) in e.faults.into_iter().enumerate() {
        estate.restore(saved);
        let fail_on = injects
            .into_iter()
            .fold(None, |fail_on, inject| inject.apply(estate).or(fail_on));
        let before = estate.snapshot();
        let log = estate.lync.log().len();
        let out = run(estate, e.book, &e.approvals, fail_on);
        let context = format!(
            "{}, failing at `{step}`:\n{}\n{}",
            e.book, out.stdout, out.stderr
        );
        assert!(
            statuses(&out)
                .iter()
                .any(|(id, s)| id.split('[').next() == Some(step) && s == "failed"),
            "{context}"
        );
        let after = estate.snapshot();
        let events = out.events();
        if i < past {
            assert_eq!(out.code, 1, "{context}");
            let changed = differences(&comparable(before.clone()), &comparable(after.clone()));
            assert!(changed.is_empty(), "{changed:#?}\n{context}");
            // Log positions only moved forward; no file was removed.
            for folder in ["share", "copy", "failback"] {
                for file in before["sql"][folder].as_array().expect("files") {
                    assert!(
                        after["sql"][folder]
                            .as_array()
                            .expect("files")
                            .contains(file),
                        "{file} removed from {folder}: {context}"
                    );
                }
            }
        } else {
            if e.stops.contains(&step) {
                assert_eq!(out.code, 3, "{context}");
                let finished = events.last().expect("events");
                assert!(
                    finished["status"]
                        .as_str()
                        .unwrap_or_default()
                        .contains("stopped past a point of no return"),
                    "{context}"
                );
            } else {
                // A failed check goes on to the person confirming, who is told.
                assert_eq!(out.code, 0, "{context}");
            }
            assert!(
                !events
                    .iter()
                    .any(|ev| ev["event"] == "rollback_step_started"),
                "something was undone: {context}"
            );
            let sent = &estate.lync.log()[log..];
            for text in e.never {
                assert!(!sent.contains(text), "`{text}` was sent: {context}");
            }
            let (side, database) = e.online;
            assert_eq!(
                after["sql"][side]["databases"][database]["state"], "ONLINE",
                "{context}"
            );
        }
        assert_eq!(after["violations"], serde_json::json!([]), "{context}");
    }
}

/// Each failover step (planned path) and how to make it fail; approvals are left out (a
/// refused approval stops the run before anything it guards).
fn failover_faults() -> Faults {
    use Inject::*;
    use Side::{Backup, Primary};
    let one = |step, inject| (step, vec![inject]);
    vec![
        one(
            "check-backup-server",
            Sql(Backup, "SERVERPROPERTY('ProductVersion')"),
        ),
        one(
            "check-backup-database",
            Sql(Backup, "SELECT name, state_desc FROM sys.databases"),
        ),
        one(
            "read-log-shipping",
            Sql(Backup, "log_shipping_monitor_secondary AS m"),
        ),
        one(
            "assert-backup-ready",
            Rows(
                Backup,
                "SELECT name, state_desc FROM sys.databases",
                vec!["name", "state_desc"],
                vec![Value::String("mgc".into()), Value::String("ONLINE".into())],
            ),
        ),
        one("check-primary", Sql(Primary, "m.mirroring_state_desc,")),
        one(
            "assert-primary-as-declared",
            Rows(
                Primary,
                "m.mirroring_state_desc,",
                vec![
                    "state_desc",
                    "mirroring_role_desc",
                    "mirroring_state_desc",
                    "is_sysadmin",
                ],
                vec![
                    Value::String("ONLINE".into()),
                    Value::String("MIRROR".into()),
                    Value::String("SYNCHRONIZED".into()),
                    Value::Int(1),
                ],
            ),
        ),
        one("check-pool-state", PowerShell("ActiveMasterFqdn")),
        one("assert-pool-normal", Pool("FailedOver")),
        one("disable-primary-log-backups", Sql(Primary, "@enabled = 0")),
        one(
            "stop-primary-servers",
            PowerShell("-ActiveServers $null -Confirm:$false"),
        ),
        one("remove-primary-mirroring", Sql(Primary, "SET PARTNER OFF")),
        one("tail-log-backup", Sql(Primary, "BACKUP LOG")),
        one(
            "remove-log-shipping",
            Sql(Backup, "sp_delete_log_shipping_secondary_database"),
        ),
        one("list-log-backups", Sql(Backup, "xp_dirtree")),
        one("read-log-headers", Sql(Backup, "RESTORE HEADERONLY")),
        one(
            "assert-log-chain",
            Rows(
                Backup,
                "RESTORE HEADERONLY",
                vec!["BackupType", "DatabaseName", "FirstLSN", "LastLSN"],
                vec![
                    Value::Int(2),
                    Value::String("another".into()),
                    Value::Decimal("1".into()),
                    Value::Decimal("2".into()),
                ],
            ),
        ),
        one("restore-log-backups", Sql(Backup, "RESTORE LOG")),
        one("end-sessions", Sql(Backup, "FROM master.sys.sysprocesses")),
        one("check-restored", Sql(Backup, "f.redo_start_lsn")),
        one(
            "assert-everything-restored",
            Rows(
                Backup,
                "f.redo_start_lsn",
                vec!["state_desc", "redo_start_lsn"],
                vec![
                    Value::String("RESTORING".into()),
                    Value::Decimal("1".into()),
                ],
            ),
        ),
        one("bring-online", Sql(Backup, "WITH RECOVERY")),
        // Past the point of no return.
        one(
            "check-online",
            Sql(
                Backup,
                "SELECT state_desc FROM sys.databases WHERE name = @P1",
            ),
        ),
        one(
            "set-pool-failed-over",
            PowerShell("-PoolState FailedOver -Confirm:$false"),
        ),
        // With no mirror installed, check-mirror would poll for 10 minutes before the
        // person is asked: its query fails at once instead.
        (
            "install-mirror",
            vec![
                PowerShell("-DropExistingDatabasesOnMirror -Confirm:$false"),
                Sql(Backup, "m.mirroring_partner_instance"),
            ],
        ),
        one("check-mirror", Sql(Backup, "m.mirroring_partner_instance")),
        one("activate-backup-servers", PowerShell("@{Add=")),
        one("check-active-servers", PowerShell("ActiveServers -join")),
        one("test-chat", PowerShell("Test-CsPersistentChatMessage")),
    ]
}

#[test]
fn failover_fails_at_every_step_before_the_point_of_no_return_leaving_the_estate_as_it_was() {
    let estate = Estate::healthy();
    fails_at_every_step(
        &estate,
        EveryStep {
            book: "failover.yaml",
            approvals: all(FAILOVER_APPROVALS, &["confirm-clients"]),
            faults: failover_faults(),
            past: "check-online",
            stops: &[
                "check-online",
                "set-pool-failed-over",
                "activate-backup-servers",
            ],
            // check-pool-failed-over's script is a part of check-pool-state's (read before
            // the approval), so no text fails it alone.
            uncovered: &["check-pool-failed-over"],
            never: &["-PoolState Normal", "'pchat-a1.contoso.com'"],
            online: ("backup", "mgc"),
        },
    );
}

/// Each failback step (from a planned failover's end state) and how to make it fail.
fn failback_faults() -> Faults {
    use Inject::*;
    use Side::{Backup, Primary};
    let one = |step, inject| (step, vec![inject]);
    vec![
        one(
            "check-primary-server",
            Sql(Primary, "FROM (SELECT 1 AS one) AS x"),
        ),
        one(
            "check-backup-server",
            Sql(Backup, "WHERE d.name IN (@P1, @P2)"),
        ),
        one("check-pool-state", PowerShell("ActiveMasterFqdn")),
        one("assert-ready", Pool("Normal")),
        one(
            "stop-servers",
            PowerShell("-ActiveServers $null -Confirm:$false"),
        ),
        one("remove-backup-mirroring", Sql(Backup, "SET PARTNER OFF")),
        one("backup-database", Sql(Backup, "BACKUP DATABASE")),
        one("verify-backup", Sql(Primary, "RESTORE VERIFYONLY")),
        one("remove-primary-mirroring", Sql(Primary, "SET PARTNER OFF")),
        one("restore-primary", Sql(Primary, "WITH REPLACE, RECOVERY")),
        // Past the point of no return.
        one(
            "check-primary-online",
            Sql(
                Primary,
                "SELECT state_desc FROM sys.databases WHERE name = @P1",
            ),
        ),
        // With no mirror installed, check-primary-mirror would poll for 10 minutes before
        // the person is asked: its query fails at once instead.
        (
            "install-primary-mirror",
            vec![
                PowerShell("-DropExistingDatabasesOnMirror -Confirm:$false"),
                Sql(Primary, "m.mirroring_partner_instance"),
            ],
        ),
        one(
            "set-pool-normal",
            PowerShell("-PoolState Normal -Confirm:$false"),
        ),
        one("activate-primary-servers", PowerShell("@{Add=")),
        one("check-active-servers", PowerShell("ActiveServers -join")),
        one(
            "check-primary-mirror",
            Sql(Primary, "m.mirroring_partner_instance"),
        ),
        one("test-chat", PowerShell("Test-CsPersistentChatMessage")),
        one(
            "configure-log-shipping-primary",
            Sql(Primary, "sp_add_log_shipping_primary_database"),
        ),
        one("seed-backup-file", Sql(Primary, "BACKUP DATABASE")),
        one("reseed-backup", Sql(Backup, "WITH REPLACE, NORECOVERY")),
        one(
            "configure-log-shipping-secondary",
            Sql(Backup, "sp_add_log_shipping_secondary_primary"),
        ),
        one(
            "register-secondary-on-primary",
            Sql(Primary, "sp_add_log_shipping_primary_secondary"),
        ),
        one("run-log-backup-job", Sql(Primary, "sp_start_job")),
        one(
            "check-log-backup-taken",
            Sql(Primary, "FROM msdb.dbo.log_shipping_monitor_primary"),
        ),
        // The copy job is started first, then the restore job, by the same statement.
        one("run-log-copy-job", Sql(Backup, "sp_start_job")),
        one("check-log-copied", Sql(Backup, "SELECT last_copied_file")),
        one("run-log-restore-job", SqlAfter(Backup, "sp_start_job", 1)),
        one(
            "check-log-restored",
            Sql(Backup, "SELECT m.last_restored_file"),
        ),
    ]
}

#[test]
fn failback_fails_at_every_step_before_the_point_of_no_return_leaving_the_estate_as_it_was() {
    let estate = Estate::healthy();
    fail_over(&estate);
    fails_at_every_step(
        &estate,
        EveryStep {
            book: "failback.yaml",
            approvals: all(
                FAILBACK_APPROVALS,
                &["confirm-clients", "confirm-disaster-recovery"],
            ),
            faults: failback_faults(),
            past: "check-primary-online",
            stops: &[
                "check-primary-online",
                "set-pool-normal",
                "activate-primary-servers",
            ],
            // check-pool-normal's script is a part of check-pool-state's (read before the
            // approval), so no text fails it alone.
            uncovered: &["check-pool-normal"],
            never: &["-PoolState FailedOver", "'pchat-b1.contoso.com'"],
            online: ("primary", "mgc"),
        },
    );
}
