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

/// A planned failover given every approval it asks for: it must succeed.
pub fn fail_over(estate: &Estate) -> Output {
    let out = run(
        estate,
        "failover.yaml",
        &all(FAILOVER_APPROVALS, &["confirm-clients"]),
        None,
    );
    succeeded(&out);
    out
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
    fail_over(&estate);
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
        skip: 0,
    });
    let out = fail_over(&estate);
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
    fail_over(&estate);
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
    fail_over(&estate);
    let (_, tail_lsn) = newest_on_the_share(&estate);
    failed_over(&estate, tail_lsn);
}

/// After a planned failover, the failback: disaster recovery works again.
#[test]
fn failback_returns_the_pool_to_the_primary_with_disaster_recovery_working() {
    let estate = Estate::healthy();
    fail_over(&estate);
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
