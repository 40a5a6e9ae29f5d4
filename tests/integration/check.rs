//! `runbook check`, the live pre-flight, against the rehearsal estate: two TDS test servers
//! that record every statement they receive and keep the databases' state, and the strict
//! PowerShell stand-in built from Microsoft's cmdlet reference, which logs every script it is
//! given. Every mutating action of the runbooks here would leave a trace (a marker file, a
//! statement the servers received, a change of the modelled pool): none may appear.

use std::path::Path;

use crate::pchat_estate::{Estate, PASSWORD, Side, Snapshot};
use crate::support::{Output, Test};

/// A failover in miniature, with every kind of step check knows. Mutating `run` steps touch
/// a marker named after themselves; mutating SQL would be received by the test servers.
const FAILOVER: &str = r#"runbook: 1
name: check-failover
params:
  primary_port: { type: int }
  backup_port: { type: int }
  share: { type: string }
  markers: { type: string }
  pool: { type: string, default: pchat.contoso.com }
  database: { type: string, default: mgc }
  logs: { type: list, default: [mgc_20261126073000.trn, mgc_20261126074500.trn] }
secrets:
  sql_password: { env: PCHAT_SQL_PASSWORD }
connections:
  primary_sql:
    mssql: "server=tcp:127.0.0.2,{{ params.primary_port }};user id=runbook;password={{ secrets.sql_password }};database=master;encrypt=DANGER_PLAINTEXT"
  backup_sql:
    mssql: "server=tcp:127.0.0.3,{{ params.backup_port }};user id=runbook;password={{ secrets.sql_password }};database=master;encrypt=DANGER_PLAINTEXT"
steps:
  - id: check-backup-reachable
    probe: true
    sql: { connection: backup_sql, query: "SELECT @@SERVERNAME AS server_name, IS_SRVROLEMEMBER('sysadmin') AS is_sysadmin, CONVERT(nvarchar(128), SERVERPROPERTY('ProductVersion')) AS version" }
  - id: check-backup-database
    needs: [check-backup-reachable]
    probe: true
    sql:
      connection: backup_sql
      query: SELECT name, state_desc FROM sys.databases WHERE name = @P1
      args: ["{{ params.database }}"]
  - id: assert-backup-restoring
    needs: [check-backup-database]
    assert:
      that: "steps['check-backup-database'].rows[0].state_desc == 'RESTORING'"
      message: "{{ params.database }} must be RESTORING on the backup; found {{ steps['check-backup-database'].rows[0].state_desc }}"
  - id: reseed-if-online
    needs: [check-backup-database]
    when: "steps['check-backup-database'].rows[0].state_desc == 'ONLINE'"
    run: { program: touch, args: ["{{ params.markers }}/reseed-if-online"] }
  - id: approve-failover
    needs: [assert-backup-restoring]
    approval: { prompt: "Fail over to the backup?" }
  - id: tail-log-backup
    needs: [approve-failover]
    sql:
      connection: primary_sql
      query: BACKUP LOG [mgc] TO DISK = @P1 WITH NORECOVERY
      args: ["{{ params.share }}/mgc_tail.trn"]
    rollback: { run: { program: touch, args: ["{{ params.markers }}/rollback-tail-log-backup"] } }
  - id: remove-log-shipping
    needs: [tail-log-backup]
    sql:
      connection: backup_sql
      query: EXEC master.dbo.sp_delete_log_shipping_secondary_database @secondary_database = @P1
      args: ["{{ params.database }}"]
    rehearse:
      sql:
        connection: backup_sql
        query: SELECT name, state_desc FROM sys.databases WHERE name = @P1
        args: ["{{ params.database }}"]
  - id: copy-logs
    needs: [remove-log-shipping]
    run:
      shell: powershell
      script: |
        {% for log in params.logs %}
        Copy-Item -Path {{ (params.share ~ '/' ~ log) | ps_quote }} -Destination {{ (params.markers ~ '/' ~ log) | ps_quote }}
        {% endfor %}
    rehearse:
      run:
        shell: powershell
        script: |
          {% for log in params.logs %}
          Test-Path -Path {{ (params.share ~ '/' ~ log) | ps_quote }}
          {% endfor %}
  - id: restore-logs
    needs: [copy-logs]
    for_each: "{{ params.logs }}"
    as: log
    sql:
      connection: backup_sql
      query: RESTORE LOG [mgc] FROM DISK = @P1 WITH NORECOVERY
      args: ["{{ params.share }}/{{ log }}"]
    rehearse:
      sql:
        connection: backup_sql
        query: RESTORE HEADERONLY FROM DISK = @P1
        args: ["{{ params.share }}/{{ log }}"]
  - id: bring-online
    needs: [restore-logs]
    irreversible: true
    sql: { connection: backup_sql, query: "RESTORE DATABASE [mgc] WITH RECOVERY" }
  - id: set-pool-failed-over
    needs: [bring-online]
    run:
      shell: powershell
      script: Set-CsPersistentChatState -Identity {{ ('service:' ~ params.pool) | ps_quote }} -PoolState FailedOver -Confirm:$false
    rehearse:
      run:
        shell: powershell
        script: Set-CsPersistentChatState -Identity {{ ('service:' ~ params.pool) | ps_quote }} -PoolState FailedOver -WhatIf
  - id: check-pool-failed-over
    needs: [set-pool-failed-over]
    probe: true
    run:
      shell: powershell
      script: (Get-CsPersistentChatState -Identity {{ ('service:' ~ params.pool) | ps_quote }}).PoolState
    until: result.stdout | trim == 'FailedOver'
    retry: { attempts: 3, delay: 1s }
  - id: note-time
    needs: [set-pool-failed-over]
    run: { shell: sh, script: "touch {{ params.markers | shell_quote }}/note-time; date +%s" }
  - id: report-time
    needs: [note-time]
    probe: true
    run: { program: echo, args: ["failed over at {{ steps['note-time'].stdout }}"] }
finally:
  - id: notify
    run: { program: touch, args: ["{{ params.markers }}/notify"] }
    rehearse: { run: { program: test, args: ["-d", "{{ params.markers }}"] } }
"#;

/// The statements that change a SQL Server: none may reach the test servers under check.
pub const MUTATING_SQL: &[&str] = &[
    "BACKUP",
    "sp_delete_log_shipping",
    "sp_add_log_shipping",
    "RESTORE LOG",
    "RESTORE DATABASE",
    "KILL",
    "SET PARTNER",
    "sp_update_job",
    "sp_add_jobschedule",
    "sp_start_job",
];

/// A rehearsal estate with a place for markers, and `runbook check` on a runbook against it.
struct Checked {
    estate: Estate,
}

impl Checked {
    fn new() -> Self {
        let estate = Estate::healthy();
        std::fs::create_dir_all(estate.path("markers")).expect("markers");
        Self { estate }
    }

    /// Runs `runbook check` on `book` (written into the estate) with `args` after the file.
    fn check(&self, book: &str, args: &[&str]) -> Output {
        let e = &self.estate;
        std::fs::write(e.path("book.yaml"), book).expect("book");
        std::fs::write(
            e.path("params.yaml"),
            format!(
                "primary_port: {}\nbackup_port: {}\nshare: '{}'\nmarkers: '{}'\n",
                e.sql.port(Side::Primary),
                e.sql.port(Side::Backup),
                e.path("share").display(),
                e.path("markers").display(),
            ),
        )
        .expect("params");
        let path = format!(
            "{}:{}",
            e.path("lync/lync-bin").display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let t = Test::new()
            .env("PATH", &path)
            .env("LYNC_STATE", e.path("lync/lync.json").to_str().unwrap())
            .env("REHEARSAL_LOG", e.path("powershell.log").to_str().unwrap())
            .env("PCHAT_SQL_PASSWORD", PASSWORD)
            .env("RUNBOOK_STATE_DIR", e.path("state").to_str().unwrap())
            .args(["check", e.path("book.yaml").to_str().unwrap(), "--params"])
            .args([e.path("params.yaml").to_str().unwrap()])
            .args(args.iter().copied());
        let out = t.run();
        assert!(
            !out.stdout.contains(PASSWORD) && !out.stderr.contains(PASSWORD),
            "the password was shown:\n{}\n{}",
            out.stdout,
            out.stderr
        );
        out
    }

    /// Every script the PowerShell stand-in was given.
    fn powershell_log(&self) -> String {
        std::fs::read_to_string(self.estate.path("powershell.log")).unwrap_or_default()
    }

    fn markers(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.estate.path("markers"))
            .expect("markers")
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    /// The statements both test servers received.
    fn statements(&self) -> Vec<String> {
        let e = &self.estate;
        let primary = e.sql.primary_server.as_ref().map(|s| s.requests());
        primary
            .unwrap_or_default()
            .into_iter()
            .chain(e.sql.backup_server.requests())
            .collect()
    }

    /// Nothing that changes the estate ran: no marker, no mutating statement received, the
    /// modelled estate as it was, no journal.
    fn assert_nothing_changed(&self, before: &Snapshot) {
        assert_eq!(
            self.markers(),
            Vec::<String>::new(),
            "a mutating action ran"
        );
        for statement in self.statements() {
            assert!(
                !MUTATING_SQL.iter().any(|m| statement.contains(m))
                    || statement.starts_with("RESTORE HEADERONLY"),
                "a mutating statement reached a SQL Server: {statement}"
            );
        }
        assert_eq!(&self.estate.snapshot(), before, "the estate changed");
        assert!(
            !self.estate.path("state").exists(),
            "check wrote a journal or created the state directory"
        );
    }
}

/// `id → status` of a `--format json` report.
fn statuses(out: &Output) -> Vec<(String, String)> {
    out.json()["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .map(|s| {
            (
                s["id"].as_str().unwrap_or_default().to_owned(),
                s["status"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

/// The ids of the failed steps, in report order.
fn failed_steps(out: &Output) -> Vec<String> {
    statuses(out)
        .into_iter()
        .filter(|(_, s)| s == "failed")
        .map(|(id, _)| id)
        .collect()
}

fn status_of(out: &Output, id: &str) -> serde_json::Value {
    out.json()["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .find(|s| s["id"] == id)
        .cloned()
        .unwrap_or_else(|| panic!("no step `{id}` in the report:\n{}", out.stdout))
}

/// The line and column of the first occurrence of `needle` in `text`, 1-based.
fn position(text: &str, needle: &str) -> (usize, usize) {
    let offset = text.find(needle).expect("needle");
    let line = text[..offset].matches('\n').count() + 1;
    let column = offset - text[..offset].rfind('\n').map_or(0, |i| i + 1) + 1;
    (line, column)
}

#[test]
fn check_runs_probes_and_rehearsals_and_nothing_that_changes_the_estate() {
    let c = Checked::new();
    let before = c.estate.snapshot();
    let out = c.check(FAILOVER, &["--format", "json"]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    let expected: Vec<(String, String)> = [
        ("check-backup-reachable", "checked"),
        ("check-backup-database", "checked"),
        ("assert-backup-restoring", "checked"),
        ("reseed-if-online", "skipped"),
        ("approve-failover", "approval"),
        ("tail-log-backup", "not_rehearsed"),
        ("remove-log-shipping", "rehearsed"),
        ("copy-logs", "rehearsed"),
        ("restore-logs[mgc_20261126073000.trn]", "rehearsed"),
        ("restore-logs[mgc_20261126074500.trn]", "rehearsed"),
        ("bring-online", "not_rehearsed"),
        ("set-pool-failed-over", "rehearsed"),
        ("check-pool-failed-over", "not_checkable"),
        ("note-time", "not_rehearsed"),
        ("report-time", "not_checkable"),
        ("notify", "rehearsed"),
    ]
    .iter()
    .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
    .collect();
    assert_eq!(statuses(&out), expected, "{}", out.stdout);
    assert_eq!(out.json()["exit_code"], 0);

    // The probes and rehearse actions ran: the servers and the stand-in saw them.
    let statements = c.statements();
    for seen in [
        "@@SERVERNAME",
        "FROM sys.databases WHERE name = @P1",
        "RESTORE HEADERONLY",
    ] {
        assert!(
            statements.iter().any(|s| s.contains(seen)),
            "`{seen}` never reached a server: {statements:?}"
        );
    }
    assert_eq!(
        statements
            .iter()
            .filter(|s| s.starts_with("RESTORE HEADERONLY"))
            .count(),
        2,
        "one rehearsal per log"
    );
    let log = c.powershell_log();
    assert!(log.contains("Test-Path"), "{log}");
    assert!(log.contains("-PoolState FailedOver -WhatIf"), "{log}");
    assert!(log.contains("Get-CsPersistentChatState"), "{log}");
    assert!(
        !log.contains("Copy-Item") && !log.contains("-Confirm:$false"),
        "a mutating cmdlet reached the stand-in:\n{log}"
    );
    // Nothing that changes the estate ran, and no rollback either.
    c.assert_nothing_changed(&before);
    // The primary was never asked anything: only the tail-log backup uses it.
    assert_eq!(
        c.estate
            .sql
            .primary_server
            .as_ref()
            .map_or(0, |s| s.logins()),
        0
    );
}

#[test]
fn check_reports_why_a_step_was_not_checked() {
    let c = Checked::new();
    let out = c.check(FAILOVER, &["--format", "json"]);
    let reason = |id: &str| {
        status_of(&out, id)["reason"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };
    assert_eq!(
        reason("report-time"),
        "reads steps.note-time, which only a real run produces"
    );
    assert!(
        reason("check-pool-failed-over").contains(
            "`until: result.stdout | trim == 'FailedOver'` is false (stdout: Normal); it reads the estate before `set-pool-failed-over`"
        ),
        "{}",
        out.stdout
    );
    assert_eq!(
        reason("reseed-if-online"),
        "`when: steps['check-backup-database'].rows[0].state_desc == 'ONLINE'` is false"
    );
    assert_eq!(
        reason("tail-log-backup"),
        "no probe, no rehearse action: check cannot say whether it would work"
    );
    assert_eq!(reason("approve-failover"), "not asked: check asks no one");
}

/// A false assertion after changes check did not make names the latest change among its
/// own ancestors: not a later change on another branch, nor an earlier one on its path.
#[test]
fn check_names_the_latest_change_among_a_steps_ancestors_on_a_branching_graph() {
    let book = r#"runbook: 1
name: branches
steps:
  - id: a
    run: { program: "true" }
  - id: b
    run: { program: "true" }
  - id: c
    needs: [a]
    run: { program: "true" }
  - id: after-c
    needs: [c]
    assert: { that: "1 == 2" }
  - id: after-a
    needs: [a]
    assert: { that: "1 == 2" }
  - id: after-b-and-a
    needs: [after-a, b]
    assert: { that: "1 == 2" }
  - id: after-nothing
    assert: { that: "1 == 2" }
"#;
    let out = Test::new()
        .file("book.yaml", book)
        .args(["check", "book.yaml", "--format", "json"])
        .run();
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    let read_before = |id: &str, change: &str| {
        let step = status_of(&out, id);
        assert_eq!(step["status"], "not_checkable", "{step}");
        assert_eq!(
            step["reason"],
            format!(
                "assertion `1 == 2` is false (read before `{change}`, which check does not run)"
            )
        );
    };
    read_before("after-c", "c");
    read_before("after-a", "a");
    read_before("after-b-and-a", "b");
    let first = status_of(&out, "after-nothing");
    assert_eq!(first["status"], "failed", "{first}");
    assert_eq!(first["reason"], "assertion `1 == 2` is false");
}

/// A step's `outputs` describe its own action's result: a rehearse action's result has
/// other columns (here the tail-log backup's file name, which only the real BACKUP returns).
/// Check neither fails the rehearsed step on them nor lets a later step read them; what the
/// rehearse action says of the step's status is still read.
#[test]
fn check_does_not_read_a_rehearsed_steps_outputs_from_its_rehearse_action() {
    let c = Checked::new();
    let before = c.estate.snapshot();
    let book = FAILOVER
        .replace(
            "        query: SELECT name, state_desc FROM sys.databases WHERE name = @P1
        args: [\"{{ params.database }}\"]
  - id: copy-logs",
            "        query: SELECT name, state_desc FROM sys.databases WHERE name = @P1
        args: [\"{{ params.database }}\"]
    outputs: { removed: \"{{ result.rows[0].secondary_database }}\" }
  - id: copy-logs",
        )
        .replace(
            "finally:",
            "  - id: report-removed\n    needs: [remove-log-shipping]\n    probe: true\n    run: { program: echo, args: [\"removed {{ steps['remove-log-shipping'].outputs.removed }}\"] }\n  - id: when-removed\n    needs: [remove-log-shipping]\n    when: \"steps['remove-log-shipping'].status == 'failed'\"\n    run: { program: touch, args: [\"{{ params.markers }}/when-removed\"] }\nfinally:",
        );
    assert!(book.contains("outputs: { removed:"), "the fixture changed");
    let out = c.check(&book, &["--format", "json"]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert_eq!(
        status_of(&out, "remove-log-shipping")["status"],
        "rehearsed"
    );
    let read = status_of(&out, "report-removed");
    assert_eq!(read["status"], "not_checkable", "{read}");
    assert_eq!(
        read["reason"],
        "reads steps.remove-log-shipping.outputs, which only a real run produces"
    );
    assert_eq!(
        status_of(&out, "when-removed")["reason"],
        "`when: steps['remove-log-shipping'].status == 'failed'` is false"
    );
    c.assert_nothing_changed(&before);
}

#[test]
fn check_judges_assert_and_when_on_the_real_results_of_probes() {
    let c = Checked::new();
    // The backup database is ONLINE: the runbook's assumption is wrong.
    c.estate
        .sql
        .backup
        .lock()
        .unwrap()
        .recover("mgc")
        .expect("recover");
    let before = c.estate.snapshot();
    let out = c.check(FAILOVER, &["--format", "json"]);
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    let failed = status_of(&out, "assert-backup-restoring");
    assert_eq!(failed["status"], "failed");
    assert_eq!(
        failed["reason"],
        "mgc must be RESTORING on the backup; found ONLINE"
    );
    let (line, column) = position(FAILOVER, "that: \"steps['check-backup-database']");
    assert_eq!(failed["location"]["line"], line);
    assert_eq!(failed["location"]["column"], column + "that: ".len());
    // `when` is true on the real rows, so the step is considered (and not rehearsed: it has
    // no rehearse action, so it did not run).
    assert_eq!(
        status_of(&out, "reseed-if-online")["status"],
        "not_rehearsed"
    );
    assert_eq!(out.json()["exit_code"], 1);
    c.assert_nothing_changed(&before);
}

#[test]
fn check_fails_at_a_rehearse_action_calling_a_cmdlet_that_does_not_exist() {
    let c = Checked::new();
    let before = c.estate.snapshot();
    let book = FAILOVER.replace(
        "script: Set-CsPersistentChatState -Identity {{ ('service:' ~ params.pool) | ps_quote }} -PoolState FailedOver -WhatIf",
        "script: Set-CsPersistentChatPoolState -Identity {{ ('service:' ~ params.pool) | ps_quote }} -PoolState FailedOver -WhatIf",
    );
    let out = c.check(&book, &[]);
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    let (line, column) = position(
        &book,
        "rehearse:\n      run:\n        shell: powershell\n        script: Set-CsPersistentChatPoolState",
    );
    let located = format!(
        "  failed         set-pool-failed-over  at {}:{}:{}\n",
        c.estate.path("book.yaml").display(),
        line + 1,
        column + 2
    );
    assert!(out.stdout.contains(&located), "{located}\n{}", out.stdout);
    assert!(
        out.stdout.contains(
            "The term 'Set-CsPersistentChatPoolState' is not recognized as the name of a cmdlet"
        ),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("check failed: "), "{}", out.stdout);
    // The other steps were still checked, and nothing changed.
    assert!(
        out.stdout.contains("  rehearsed      copy-logs\n"),
        "{}",
        out.stdout
    );
    c.assert_nothing_changed(&before);
}

#[test]
fn check_fails_at_a_rehearse_action_passing_a_parameter_the_cmdlet_does_not_take() {
    let c = Checked::new();
    let before = c.estate.snapshot();
    // The parameter a review of the shipped runbooks found: Install-CsMirrorDatabase takes
    // its mirror from the topology, not from -MirrorSqlServerFqdn.
    let book = FAILOVER.replace(
        "finally:",
        "  - id: install-mirror\n    needs: [bring-online]\n    run: { shell: powershell, script: \"Install-CsMirrorDatabase -DatabaseType PersistentChat -SqlServerFqdn 'sql-b' -MirrorSqlServerFqdn 'sql-b-mirror' -FileShare 'x' -Confirm:$false\" }\n    rehearse: { run: { shell: powershell, script: \"Install-CsMirrorDatabase -DatabaseType PersistentChat -SqlServerFqdn 'sql-b' -MirrorSqlServerFqdn 'sql-b-mirror' -FileShare 'x' -WhatIf\" } }\nfinally:",
    );
    let out = c.check(&book, &["--format", "json"]);
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    let failed = status_of(&out, "install-mirror");
    assert_eq!(failed["status"], "failed");
    let reason = failed["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains(
            "Install-CsMirrorDatabase : A parameter cannot be found that matches parameter name 'MirrorSqlServerFqdn'."
        ),
        "{reason}"
    );
    let (line, column) = position(
        &book,
        "rehearse: { run: { shell: powershell, script: \"Install-CsMirrorDatabase",
    );
    assert_eq!(failed["location"]["line"], line);
    assert_eq!(failed["location"]["column"], column + "rehearse: ".len());
    // Only the failure counts: every other step is reported as before.
    assert_eq!(failed_steps(&out), ["install-mirror"]);
    c.assert_nothing_changed(&before);
}

#[test]
fn check_refuses_whatif_on_a_cmdlet_without_shouldprocess() {
    // Get-CsPersistentChatState does not support ShouldProcess: -WhatIf is not one of its
    // parameters, as PowerShell itself would say.
    let c = Checked::new();
    let book = FAILOVER.replace(
        "script: (Get-CsPersistentChatState -Identity {{ ('service:' ~ params.pool) | ps_quote }}).PoolState",
        "script: (Get-CsPersistentChatState -Identity {{ ('service:' ~ params.pool) | ps_quote }} -WhatIf).PoolState",
    );
    let out = c.check(&book, &["--format", "json"]);
    assert_eq!(out.code, 1, "{}", out.stdout);
    let failed = status_of(&out, "check-pool-failed-over");
    assert_eq!(failed["status"], "failed");
    assert!(
        failed["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("A parameter cannot be found that matches parameter name 'WhatIf'."),
        "{}",
        out.stdout
    );
}

#[test]
fn check_of_a_loop_over_a_list_only_a_run_produces_says_so() {
    let c = Checked::new();
    let book = FAILOVER
        .replace(
            "    for_each: \"{{ params.logs }}\"",
            "    for_each: \"{{ steps['note-time'].stdout | split }}\"",
        )
        .replace(
            "    needs: [copy-logs]\n    for_each",
            "    needs: [copy-logs, note-time]\n    for_each",
        )
        .replace(
            "  - id: note-time\n    needs: [set-pool-failed-over]",
            "  - id: note-time\n    needs: [approve-failover]",
        );
    let out = c.check(&book, &["--format", "json"]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    let step = status_of(&out, "restore-logs");
    assert_eq!(step["status"], "not_checkable", "{}", out.stdout);
    assert_eq!(
        step["reason"],
        "repeats over steps.note-time, a list only a real run produces: no instance checked"
    );
}

#[test]
fn check_of_an_unreachable_server_fails_the_probe_located() {
    let c = Checked::new();
    let book = FAILOVER.replace(
        "server=tcp:127.0.0.3,{{ params.backup_port }}",
        "server=tcp:127.0.0.1,1",
    );
    let out = c.check(&book, &["--format", "json"]);
    assert_eq!(out.code, 1, "{}", out.stdout);
    let failed = status_of(&out, "check-backup-reachable");
    assert_eq!(failed["status"], "failed");
    // What needs the probe's rows cannot be judged.
    assert_eq!(
        status_of(&out, "assert-backup-restoring")["status"],
        "not_checkable"
    );
    let (line, _) = position(
        &book,
        "sql: { connection: backup_sql, query: \"SELECT @@SERVERNAME",
    );
    assert_eq!(failed["location"]["line"], line);
}

#[test]
fn check_of_an_invalid_runbook_or_missing_params_exits_2_and_runs_nothing() {
    let c = Checked::new();
    let out = c.check(
        &FAILOVER.replace("needs: [copy-logs]", "needs: [copy-logz]"),
        &[],
    );
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr.contains("unknown step `copy-logz`"),
        "{}",
        out.stderr
    );
    assert!(
        c.statements().is_empty(),
        "a probe ran for an invalid runbook"
    );

    let t = Test::new()
        .file("book.yaml", FAILOVER)
        .args(["check", "book.yaml"]);
    let out = t.run();
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("primary_port"), "{}", out.stderr);
}

#[test]
fn check_asks_no_approval_and_writes_no_journal() {
    let c = Checked::new();
    let before = c.estate.snapshot();
    let out = c.check(FAILOVER, &[]);
    assert_eq!(out.code, 0, "{}", out.stdout);
    assert!(
        !out.stdout.contains("Fail over to the backup?"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("  approval       approve-failover  (not asked: check asks no one)\n"),
        "{}",
        out.stdout
    );
    c.assert_nothing_changed(&before);
    assert!(!Path::new(&c.estate.path(".runbook")).exists());
    assert!(!c.estate.path("state").exists());
}

#[test]
fn check_never_shows_a_secret_even_a_one_letter_one() {
    // A probe that prints the secret back and fails with it on stderr.
    let book = r#"runbook: 1
name: secret-check
secrets:
  token: { env: TOKEN }
steps:
  - id: echo-secret
    probe: true
    env: { TOKEN_VALUE: "{{ secrets.token }}" }
    run: { shell: sh, script: "echo \"token=$TOKEN_VALUE\"; echo \"bad token $TOKEN_VALUE\" >&2; exit 3" }
  - id: rehearse-secret
    run: { program: "true" }
    rehearse: { run: { shell: sh, script: "echo \"$TOKEN_VALUE\" >&2; exit 1" } }
    env: { TOKEN_VALUE: "{{ secrets.token }}" }
"#;
    for secret in ["hunter2-long-secret", "7"] {
        for format in ["human", "json", "markdown", "junit"] {
            let out = Test::new()
                .file("book.yaml", book)
                .env("TOKEN", secret)
                .args(["check", "book.yaml", "--format", format])
                .run();
            assert_eq!(out.code, 1, "{}", out.stdout);
            assert!(
                out.stdout.contains("bad token "),
                "{format}: {}",
                out.stdout
            );
            if secret.len() > 1 {
                assert!(
                    !out.stdout.contains(secret) && !out.stderr.contains(secret),
                    "{format}: {}",
                    out.stdout
                );
                assert!(
                    out.stdout.contains("bad token ***"),
                    "{format}: {}",
                    out.stdout
                );
            } else {
                // Too short to search for in output without masking every `7`: the operator
                // is told, by the secret's name, as a run tells them.
                assert!(
                    out.stderr.contains("not inside output: token"),
                    "{format}: {}",
                    out.stderr
                );
            }
        }
    }
}

#[test]
fn validate_strict_warns_for_mutating_steps_with_neither_probe_nor_rehearse() {
    let t = Test::new().file("book.yaml", FAILOVER);
    let out = Test::in_dir(t.path())
        .args(["validate", "book.yaml", "--format", "json"])
        .run();
    assert_eq!(out.code, 0, "{}", out.stdout);
    assert!(!out.stdout.contains("not_rehearsable"), "{}", out.stdout);

    let out = Test::in_dir(t.path())
        .args(["validate", "book.yaml", "--strict", "--format", "json"])
        .run();
    assert_eq!(out.code, 0, "warnings alone do not fail: {}", out.stdout);
    let warned: Vec<(String, u64, u64)> = out
        .diags()
        .into_iter()
        .filter(|d| d.code == "runbook::not_rehearsable")
        .map(|d| (d.message, d.line, d.column))
        .collect();
    let at = |id: &str| {
        let (line, column) = position(FAILOVER, &format!("- id: {id}\n"));
        (line as u64, (column + "- id: ".len()) as u64)
    };
    let expected: Vec<(String, u64, u64)> = [
        ("reseed-if-online", "run"),
        ("tail-log-backup", "sql"),
        ("bring-online", "sql"),
        ("note-time", "run"),
    ]
    .iter()
    .map(|(id, kind)| {
        let (line, column) = at(id);
        (
            format!(
                "step `{id}` changes something (`{kind}`) but has neither `probe` nor `rehearse`"
            ),
            line,
            column,
        )
    })
    .collect();
    assert_eq!(warned, expected);

    let out = Test::in_dir(t.path())
        .args(["validate", "book.yaml", "--strict", "--deny-warnings"])
        .run();
    assert_eq!(out.code, 1, "{}", out.stdout);
}

#[test]
fn a_rehearse_action_must_have_exactly_one_kind() {
    let book = r#"runbook: 1
name: bad-rehearse
steps:
  - id: a
    run: { program: "true" }
    rehearse: { run: { program: "true" }, sql: { connection: c, query: "SELECT 1" } }
  - id: b
    run: { program: "true" }
    rehearse: { approval: { prompt: "no" } }
  - id: c
    run: { program: "true" }
    rehearse: { sql: { connection: nowhere, query: "SELECT 1" } }
"#;
    let t = Test::new()
        .file("book.yaml", book)
        .args(["validate", "book.yaml", "--format", "json"]);
    let out = t.run();
    assert_eq!(out.code, 1, "{}", out.stdout);
    let codes: Vec<String> = out.diags().into_iter().map(|d| d.code).collect();
    assert_eq!(
        codes,
        [
            "runbook::invalid_rehearse",
            "runbook::invalid_rehearse",
            "runbook::unknown_key",
            "runbook::unknown_connection"
        ],
        "two kinds, no kind (an approval is not a rehearse kind), an unknown connection"
    );
}

/// What the PowerShell stand-in accepts and refuses comes from Microsoft's reference, as
/// PowerShell's parameter binder reads it: unambiguous prefixes and aliases bind, an ambiguous
/// prefix, a value outside a ValidateSet and parameters from two parameter sets do not, and a
/// cmdlet of the reference that the rehearsal does not model still honours `-WhatIf`.
#[test]
fn the_powershell_stand_in_binds_parameters_as_powershell_does() {
    let step = |id: &str, script: &str| {
        format!(
            "  - id: {id}\n    run: {{ program: \"false\" }}\n    rehearse: {{ run: {{ shell: powershell, script: \"{script}\" }} }}\n"
        )
    };
    let book = [
        "runbook: 1\nname: binder\nparams:\n  primary_port: { type: int }\n  backup_port: { type: int }\n  share: { type: string }\n  markers: { type: string }\nsteps:\n".to_owned(),
        step("prefix-and-alias", "Set-CsPersistentChatState -Ident 'service:pchat.contoso.com' -PoolState failedover -wi"),
        step("not-modelled", "Stop-Service -Name 'RTCPERSISTENTCHAT' -WhatIf"),
        step("ambiguous", "Set-CsPersistentChatState -I 'service:pchat.contoso.com' -PoolState FailedOver -WhatIf"),
        step("not-in-the-set", "Set-CsPersistentChatState -Identity 'service:pchat.contoso.com' -PoolState Maintenance -WhatIf"),
        step("two-sets", "Set-CsPersistentChatActiveServer -Identity 'PersistentChatServer:pchat.contoso.com' -ActiveServers $null -Swap -WhatIf"),
    ]
    .concat();
    let c = Checked::new();
    let before = c.estate.snapshot();
    let out = c.check(&book, &["--format", "json"]);
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    let reason = |id: &str| {
        status_of(&out, id)["reason"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };
    for id in ["prefix-and-alias", "not-modelled"] {
        assert_eq!(
            status_of(&out, id)["status"],
            "rehearsed",
            "{id}: {}",
            reason(id)
        );
    }
    assert!(
        reason("ambiguous").contains(
            "Parameter cannot be processed because the parameter name 'I' is ambiguous. Possible matches include: -Identity -Instance"
        ),
        "{}",
        reason("ambiguous")
    );
    assert!(
        reason("not-in-the-set").contains(
            "Cannot validate argument on parameter 'PoolState'. The argument \"Maintenance\" does not belong to the set \"Normal,FailedOver\""
        ),
        "{}",
        reason("not-in-the-set")
    );
    assert!(
        reason("two-sets")
            .contains("Parameter set cannot be resolved using the specified named parameters."),
        "{}",
        reason("two-sets")
    );
    assert_eq!(
        failed_steps(&out),
        ["ambiguous", "not-in-the-set", "two-sets"]
    );
    c.assert_nothing_changed(&before);
}
