//! The rehearsal suite: the shipped Persistent Chat runbooks run for real, with the real
//! binary, against the strict estate (`pchat_estate`): two SQL Servers modelled as SQL Server
//! behaves (`sql_estate`, `tsql`), the log share and the copy folder as real folders of
//! backup files (`log_share`), and the Lync host reached over ssh, whose PowerShell accepts only
//! what Microsoft's cmdlet reference has (`lync`).

use crate::pchat_estate::{
    BACKUP_MIRROR, BACKUP_SERVERS, Estate, Event, Fault, FaultKind, PRIMARY_MIRROR,
    PRIMARY_SERVERS, SQL_2008_R2, Side, Snapshot,
};
use crate::support::{Output, Test, repo};
use crate::tds::{Reply, Value};

/// The approvals a person gives in a rehearsal: the planned ones, never a `fix-*`.
pub const FAILOVER_APPROVALS: &[&str] = &["approve-failover", "approve-point-of-no-return"];
pub const FAILBACK_APPROVALS: &[&str] = &["approve-failback", "approve-overwrite-primary"];

/// `run --output json --concurrency 1` with `approvals` given.
fn run_args(approvals: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = ["run", "--output", "json", "--concurrency", "1"]
        .map(str::to_owned)
        .to_vec();
    for a in approvals {
        args.push("--approve".to_owned());
        args.push((*a).to_owned());
    }
    args
}

pub fn run(estate: &Estate, book: &str, approvals: &[&str], fail_on: Option<&str>) -> Output {
    run_file(
        estate,
        &repo().join("runbooks/persistent-chat").join(book),
        approvals,
        fail_on,
    )
}

/// The same for any runbook file (a changed copy of a shipped one).
pub fn run_file(
    estate: &Estate,
    file: &std::path::Path,
    approvals: &[&str],
    fail_on: Option<&str>,
) -> Output {
    let args = run_args(approvals);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    estate.runbook_file(&args, file, fail_on)
}

/// Every approval of a happy run: the planned ones and the final confirmations.
pub fn all(planned: &[&str], last: &[&str]) -> Vec<&'static str> {
    planned
        .iter()
        .chain(last)
        .map(|s| -> &'static str { Box::leak(s.to_string().into_boxed_str()) })
        .collect()
}

pub fn statuses(out: &Output) -> Vec<(String, String)> {
    out.events()
        .iter()
        .filter(|e| e["event"] == "step_finished")
        .map(|e| {
            (
                e["step"].as_str().unwrap_or_default().to_owned(),
                e["status"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

#[track_caller]
pub fn succeeded(out: &Output) {
    succeeded_but(out, &[]);
}

/// Exit 0, and every step succeeded but `expected` (which failed, as they should).
#[track_caller]
pub fn succeeded_but(out: &Output, expected: &[&str]) {
    let failed: Vec<_> = statuses(out)
        .into_iter()
        .filter(|(id, s)| s != "succeeded" && !(s == "failed" && expected.contains(&id.as_str())))
        .collect();
    assert!(
        out.code == 0 && failed.is_empty(),
        "exit {}; not succeeded: {failed:?}\n{}\n{}",
        out.code,
        out.stdout,
        out.stderr
    );
}

fn db<'a>(snapshot: &'a Snapshot, side: &str, name: &str) -> &'a serde_json::Value {
    &snapshot["sql"][side]["databases"][name]
}

fn pool(snapshot: &Snapshot) -> &serde_json::Value {
    &snapshot["lync"]["pools"]["pchat.contoso.com"]
}

fn sorted(v: &serde_json::Value) -> Vec<String> {
    let mut out: Vec<String> = v
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

/// The failover's end state, whatever the path: the backup database ONLINE at `recovered`,
/// the principal of a synchronized mirror; no log shipping left on the backup; the pool
/// FailedOver with exactly the backup servers active.
#[track_caller]
pub fn failed_over(estate: &Estate, recovered: u128) {
    let s = estate.snapshot();
    let mgc = db(&s, "backup", "mgc");
    assert_eq!(mgc["state"], "ONLINE", "{s:#}");
    assert_eq!(
        mgc["lsn"],
        serde_json::json!(recovered),
        "the recovery point"
    );
    assert_eq!(mgc["mirroring"]["role"], "PRINCIPAL");
    assert_eq!(mgc["mirroring"]["state"], "SYNCHRONIZED");
    assert_eq!(
        mgc["mirroring"]["partner"],
        format!("TCP://{BACKUP_MIRROR}:5022")
    );
    assert_eq!(
        s["sql"]["backup"]["log_shipping_secondary"],
        serde_json::json!([])
    );
    assert_eq!(
        s["sql"]["backup"]["jobs"],
        serde_json::json!([]),
        "copy and restore jobs gone"
    );
    assert_eq!(pool(&s)["state"], "FailedOver");
    assert_eq!(sorted(&pool(&s)["active_servers"]), BACKUP_SERVERS);
    assert!(
        s["lync"]["mirrors"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["sql"] == "127.0.0.3" && m["mirror"] == BACKUP_MIRROR),
        "{s:#}"
    );
    assert_eq!(s["violations"], serde_json::json!([]));
}

/// The newest log backup on the share (its last LSN is what a failover must recover to).
pub fn newest_on_the_share(estate: &Estate) -> (String, u128) {
    let (name, header) = estate.sql.share().pop().expect("log backups on the share");
    (name, header.last_lsn)
}

#[test]
fn unplanned_failover_recovers_to_the_newest_log_backup_and_leaves_the_lost_primary_alone() {
    let mut estate = Estate::healthy();
    estate.primary_reachable = false;
    estate.sql.lose_the_primary();
    let primary_before = estate.snapshot()["sql"]["primary"].clone();
    let (_, newest) = newest_on_the_share(&estate);
    let out = run(
        &estate,
        "failover.yaml",
        &all(FAILOVER_APPROVALS, &["confirm-clients"]),
        None,
    );
    // The primary does not answer, as primary_reachable says.
    succeeded_but(&out, &["check-primary"]);
    failed_over(&estate, newest);
    assert_eq!(
        estate.snapshot()["sql"]["primary"],
        primary_before,
        "the lost primary was not touched"
    );
    // Every log backup not yet applied, oldest first.
    let restored = estate.sql.backup.lock().unwrap().databases["mgc"]
        .restored
        .clone();
    let shared: Vec<String> = estate.sql.share().into_iter().map(|(n, _)| n).collect();
    assert_eq!(restored, shared, "every log backup of the share, in order");
}

#[test]
fn planned_failover_backs_up_the_tail_of_a_mirrored_principal_and_loses_nothing() {
    let estate = Estate::healthy();
    let out = run(
        &estate,
        "failover.yaml",
        &all(FAILOVER_APPROVALS, &["confirm-clients"]),
        None,
    );
    succeeded(&out);
    let (tail, tail_lsn) = newest_on_the_share(&estate);
    let s = estate.snapshot();
    // The primary: mirroring removed, sessions ended, the tail backed up, left RESTORING
    // at exactly what it had committed; its backup job disabled.
    let primary = db(&s, "primary", "mgc");
    assert_eq!(primary["state"], "RESTORING");
    assert_eq!(primary["mirroring"], serde_json::Value::Null);
    assert_eq!(primary["lsn"], serde_json::json!(tail_lsn), "{s:#}");
    assert!(tail.starts_with("mgc_") && tail.ends_with(".trn"), "{tail}");
    let backup_job = &s["sql"]["primary"]["jobs"][0];
    assert_eq!(backup_job["name"], "LSBackup_mgc");
    assert_eq!(backup_job["enabled"], false);
    failed_over(&estate, tail_lsn);
}

#[test]
fn a_retry_of_the_log_restore_after_a_partial_success_skips_what_is_applied() {
    let estate = Estate::healthy();
    // The second log backup is restored, then the connection drops before the runbook
    // hears of it; the retry must see it applied.
    let second = estate.sql.share()[1].0.clone();
    estate.sql.inject(Fault {
        side: Side::Backup,
        text: "RESTORE LOG".to_owned(),
        kind: FaultKind::AfterTheWork,
        times: Some(1),
    });
    let out = run(
        &estate,
        "failover.yaml",
        &all(FAILOVER_APPROVALS, &["confirm-clients"]),
        None,
    );
    succeeded(&out);
    let events = out.events();
    let restore = events
        .iter()
        .find(|e| {
            e["event"] == "step_finished" && e["step"] == format!("restore-log-backups[{second}]")
        })
        .unwrap_or_else(|| panic!("no restore of {second}:\n{}", out.stdout));
    assert_eq!(restore["attempts"], 2, "{restore}");
    let said: Vec<&str> = events
        .iter()
        .filter(|e| {
            e["event"] == "step_message" && e["step"] == format!("restore-log-backups[{second}]")
        })
        .filter_map(|e| e["message"].as_str())
        .collect();
    assert!(
        said.iter().any(|m| m.starts_with("Already applied (LSN ")),
        "{said:?}"
    );
    let restored = estate.sql.backup.lock().unwrap().databases["mgc"]
        .restored
        .clone();
    let mut unique = restored.clone();
    unique.dedup();
    assert_eq!(restored, unique, "nothing restored twice");
    let (_, tail_lsn) = newest_on_the_share(&estate);
    failed_over(&estate, tail_lsn);
}

#[test]
fn planned_failover_works_on_sql_server_2008_r2() {
    let estate = Estate::on(SQL_2008_R2);
    let out = run(
        &estate,
        "failover.yaml",
        &all(FAILOVER_APPROVALS, &["confirm-clients"]),
        None,
    );
    succeeded(&out);
    let (_, tail_lsn) = newest_on_the_share(&estate);
    failed_over(&estate, tail_lsn);
}

#[test]
fn the_tail_is_the_newest_log_backup_even_when_log_shipping_backs_up_during_the_approval() {
    let estate = Estate::healthy();
    // The backup job's schedule fires after the pre-checks, while a person reads the approval.
    estate.sql.on(Event {
        side: Side::Primary,
        after: "m.mirroring_state_desc,".to_owned(),
        job: "LSBackup_mgc".to_owned(),
    });
    let out = run(
        &estate,
        "failover.yaml",
        &all(FAILOVER_APPROVALS, &["confirm-clients"]),
        None,
    );
    succeeded(&out);
    let (_, tail_lsn) = newest_on_the_share(&estate);
    failed_over(&estate, tail_lsn);
}

/// After a planned failover, the failback: disaster recovery works again.
#[test]
fn failback_returns_the_pool_to_the_primary_with_disaster_recovery_working() {
    let estate = Estate::healthy();
    let out = run(
        &estate,
        "failover.yaml",
        &all(FAILOVER_APPROVALS, &["confirm-clients"]),
        None,
    );
    succeeded(&out);
    let out = run(
        &estate,
        "failback.yaml",
        &all(
            FAILBACK_APPROVALS,
            &["confirm-clients", "confirm-disaster-recovery"],
        ),
        None,
    );
    succeeded(&out);
    failed_back(&estate);
}

/// The failback's end state: the primary ONLINE and mirrored, the pool Normal with exactly
/// the primary servers active, log shipping from the primary to the backup configured on
/// both sides with enabled, scheduled jobs, and run once.
#[track_caller]
fn failed_back(estate: &Estate) {
    let s = estate.snapshot();
    let primary = db(&s, "primary", "mgc");
    assert_eq!(primary["state"], "ONLINE", "{s:#}");
    assert_eq!(primary["mirroring"]["role"], "PRINCIPAL");
    assert_eq!(
        primary["mirroring"]["partner"],
        format!("TCP://{PRIMARY_MIRROR}:5022")
    );
    let backup = db(&s, "backup", "mgc");
    assert_eq!(backup["state"], "RESTORING");
    assert_eq!(backup["mirroring"], serde_json::Value::Null);
    assert_eq!(pool(&s)["state"], "Normal");
    assert_eq!(sorted(&pool(&s)["active_servers"]), PRIMARY_SERVERS);
    let enabled_and_scheduled = |side: &str, name: &str| {
        let job = s["sql"][side]["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|j| j["name"] == name)
            .unwrap_or_else(|| panic!("no job {name} on the {side}: {s:#}"));
        assert_eq!(job["enabled"], true, "{job}");
        assert_eq!(job["schedules"].as_array().map(Vec::len), Some(1), "{job}");
        assert_eq!(job["schedules"][0][1], true, "{job}");
    };
    enabled_and_scheduled("primary", "LSBackup_mgc");
    enabled_and_scheduled("backup", "LSCopy_127.0.0.2_mgc");
    enabled_and_scheduled("backup", "LSRestore_127.0.0.2_mgc");
    let ls = &s["sql"]["primary"]["log_shipping_primary"][0];
    assert_eq!(ls["secondaries"], serde_json::json!([["127.0.0.3", "mgc"]]));
    assert_eq!(
        s["sql"]["backup"]["log_shipping_secondary"][0]["databases"][0]["database"],
        "mgc"
    );
    // The log shipped once: the backup holds the primary's newest log backup.
    let (_, newest) = newest_on_the_share(estate);
    assert_eq!(backup["redo_start"], serde_json::json!(newest), "{s:#}");
    assert_eq!(s["violations"], serde_json::json!([]));
}

#[test]
fn shipped_runbooks_plan_fully_with_the_example_params() {
    for book in ["failover.yaml", "failback.yaml"] {
        let dir = repo().join("runbooks/persistent-chat");
        let out = Test::new()
            .args(["plan", dir.join(book).to_str().unwrap(), "--params"])
            .args([dir.join("params.example.yaml").to_str().unwrap()])
            .run();
        assert_eq!(out.code, 0, "{book}: {}", out.stderr);
        // What is left as a template reads what an earlier step returns at run time, or
        // the item of a loop (a rollback rendered for each item).
        for line in out.stdout.lines().filter(|l| l.contains("{{")) {
            assert!(
                line.contains("steps[") || line.contains(" db ") || line.contains("(db "),
                "{book}: a template was left unrendered: {line}"
            );
        }
        assert!(
            !out.stderr.contains("example"),
            "{book}: every param comes from the file"
        );
    }
}

#[allow(dead_code)]
fn unused(_: Reply, _: Value) {}

/// How a rehearsal makes one step fail.
enum Inject {
    /// SQL error 50000 for requests containing the text, on one server.
    Sql(Side, &'static str),
    /// These replies instead of the server's, for requests containing the text (a probe
    /// returning what makes the assertion after it fail).
    Rows(Side, &'static str, Vec<&'static str>, Vec<Value>),
    /// The PowerShell stand-in fails scripts containing the text.
    PowerShell(&'static str),
    /// The pool is not Normal before the run.
    PoolFailedOver,
}

/// Each failover step (planned path) and how to make it fail; approvals are left out (a
/// refused approval stops the run before anything it guards).
fn failover_faults() -> Vec<(&'static str, Inject)> {
    use Inject::*;
    use Side::{Backup, Primary};
    vec![
        (
            "check-backup-server",
            Sql(Backup, "SERVERPROPERTY('ProductVersion')"),
        ),
        (
            "check-backup-database",
            Sql(Backup, "SELECT name, state_desc FROM sys.databases"),
        ),
        (
            "read-log-shipping",
            Sql(Backup, "log_shipping_monitor_secondary AS m"),
        ),
        (
            "assert-backup-ready",
            Rows(
                Backup,
                "SELECT name, state_desc FROM sys.databases",
                vec!["name", "state_desc"],
                vec![Value::String("mgc".into()), Value::String("ONLINE".into())],
            ),
        ),
        ("check-primary", Sql(Primary, "m.mirroring_state_desc,")),
        (
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
        ("check-pool-state", PowerShell("ActiveMasterFqdn")),
        ("assert-pool-normal", PoolFailedOver),
        ("disable-primary-log-backups", Sql(Primary, "@enabled = 0")),
        (
            "stop-primary-servers",
            PowerShell("-ActiveServers $null -Confirm:$false"),
        ),
        ("remove-primary-mirroring", Sql(Primary, "SET PARTNER OFF")),
        ("tail-log-backup", Sql(Primary, "BACKUP LOG")),
        (
            "remove-log-shipping",
            Sql(Backup, "sp_delete_log_shipping_secondary_database"),
        ),
        ("list-log-backups", Sql(Backup, "xp_dirtree")),
        ("read-log-headers", Sql(Backup, "RESTORE HEADERONLY")),
        (
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
        ("restore-log-backups", Sql(Backup, "RESTORE LOG")),
        ("end-sessions", Sql(Backup, "FROM master.sys.sysprocesses")),
        ("check-restored", Sql(Backup, "f.redo_start_lsn")),
        (
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
        ("bring-online", Sql(Backup, "WITH RECOVERY")),
        // Past the point of no return.
        (
            "check-online",
            Sql(
                Backup,
                "SELECT state_desc FROM sys.databases WHERE name = @P1",
            ),
        ),
        (
            "set-pool-failed-over",
            PowerShell("-PoolState FailedOver -Confirm:$false"),
        ),
        ("check-mirror", Sql(Backup, "m.mirroring_partner_instance")),
        ("activate-backup-servers", PowerShell("@{Add=")),
        ("check-active-servers", PowerShell("ActiveServers -join")),
        ("test-chat", PowerShell("Test-CsPersistentChatMessage")),
    ]
}

/// What a failure before the point of no return must leave as it was: everything but how
/// far the log has gone (a log restored cannot be unrestored, a tail once taken stays on
/// the share under a log-shipping name; both only move forward), and the files.
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
    for folder in ["share", "copy"] {
        s["sql"][folder] = serde_json::Value::Null;
    }
    s
}

#[test]
fn failover_fails_at_every_step_before_the_point_of_no_return_leaving_the_estate_as_it_was() {
    let plan = Estate::healthy()
        .runbook(&["plan", "--format", "json"], "failover.yaml", None)
        .json();
    let approvals: Vec<String> = plan["approvals"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a.as_str().map(str::to_owned))
        .collect();
    let faults = failover_faults();
    let covered: Vec<&str> = faults.iter().map(|(s, _)| *s).collect();
    let uncovered: Vec<String> = plan["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["id"].as_str())
        .filter(|id| !covered.contains(id) && !approvals.iter().any(|a| a == id))
        .map(str::to_owned)
        .collect();
    // Two steps past the point of no return are left: check-pool-failed-over's script is a
    // part of the pre-check's, so no text fails it alone; after a failed install-mirror,
    // check-mirror polls the mirror for 10 minutes before the person is asked, by design,
    // which is too long for this suite (check-mirror's own failure is rehearsed).
    assert_eq!(
        uncovered,
        ["check-pool-failed-over", "install-mirror"],
        "steps with no rehearsal of their failure"
    );
    let point_of_no_return = covered.iter().position(|s| *s == "check-online").unwrap();

    for (i, (step, inject)) in faults.into_iter().enumerate() {
        let estate = Estate::healthy();
        let mut fail_on = None;
        match inject {
            Inject::Sql(side, text) => estate.sql.inject(Fault::error(side, text)),
            Inject::Rows(side, text, columns, row) => estate.sql.inject(Fault {
                side,
                text: text.to_owned(),
                kind: FaultKind::Replies(vec![
                    Reply::Rows {
                        columns: columns.iter().map(|c| (*c).to_owned()).collect(),
                        rows: vec![row],
                    },
                    Reply::Done { rows_affected: 1 },
                ]),
                times: None,
            }),
            Inject::PowerShell(text) => fail_on = Some(text),
            Inject::PoolFailedOver => {
                let path = estate.path("lync/lync.json");
                let mut state = estate.lync.state();
                state["pools"]["pchat.contoso.com"]["state"] = "FailedOver".into();
                std::fs::write(path, state.to_string()).expect("Lync state");
            }
        }
        let before = estate.snapshot();
        let out = run(
            &estate,
            "failover.yaml",
            &all(FAILOVER_APPROVALS, &["confirm-clients"]),
            fail_on,
        );
        let context = format!("failing at `{step}`:\n{}\n{}", out.stdout, out.stderr);
        let statuses = statuses(&out);
        assert!(
            statuses.iter().any(|(id, s)| id == step && s == "failed"),
            "{context}"
        );
        let after = estate.snapshot();
        let events = out.events();
        if i < point_of_no_return {
            assert_eq!(out.code, 1, "{context}");
            assert_eq!(
                comparable(after.clone()),
                comparable(before.clone()),
                "{context}"
            );
            // Log positions only moved forward; no file was removed.
            for folder in ["share", "copy"] {
                for file in before["sql"][folder].as_array().unwrap() {
                    assert!(
                        after["sql"][folder].as_array().unwrap().contains(file),
                        "{file} removed from {folder}: {context}"
                    );
                }
            }
        } else {
            // A step with a fix-* approval, or one the rest depends on, stops the run for a
            // person; a failed check goes on to the person confirming the clients, who is
            // told which checks failed.
            let stops = [
                "check-online",
                "set-pool-failed-over",
                "activate-backup-servers",
            ];
            if stops.contains(&step) {
                assert_eq!(out.code, 3, "{context}");
                let finished = events.last().unwrap();
                assert!(
                    finished["status"]
                        .as_str()
                        .unwrap_or_default()
                        .contains("stopped past a point of no return"),
                    "{context}"
                );
            } else {
                assert_eq!(out.code, 0, "{context}");
            }
            assert!(
                !events.iter().any(|e| e["event"] == "rollback_step_started"),
                "something was undone: {context}"
            );
            // Nothing pointed the pool back at the primary.
            assert!(
                !estate.lync.log().contains("-PoolState Normal"),
                "{context}"
            );
            assert_eq!(db(&after, "backup", "mgc")["state"], "ONLINE", "{context}");
        }
    }
}
