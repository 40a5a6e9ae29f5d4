//! The rehearsal's SQL Servers refuse what SQL Server refuses, with SQL Server's error
//! numbers and wording: each statement here is one a runbook could send (some did, in earlier
//! versions of the Persistent Chat runbooks), run by the real binary against the strict
//! estate.

use crate::pchat_estate::{BACKUP_IP, PASSWORD, PRIMARY_IP, SQL_2008_R2, SQL_2012, Side, Sql};
use crate::support::{Output, Test};

/// A runbook of SQL steps (`id`, connection, query, args) that each go on after a failure.
fn book(steps: &[(&str, &str, &str, &[&str])]) -> String {
    let mut yaml = String::from(
        "runbook: 1\nname: strict\nparams:\n  primary_port: { type: int }\n  backup_port: { type: int }\nsecrets:\n  pw: { env: PCHAT_SQL_PASSWORD }\nconnections:\n",
    );
    for (name, ip, port) in [
        ("primary", PRIMARY_IP, "primary_port"),
        ("backup", BACKUP_IP, "backup_port"),
    ] {
        yaml.push_str(&format!(
            "  {name}:\n    mssql: \"server=tcp:{ip},{{{{ params.{port} }}}};user id=runbook;password={{{{ secrets.pw }}}};database=master;encrypt=DANGER_PLAINTEXT\"\n"
        ));
    }
    yaml.push_str("steps:\n");
    for (i, (id, connection, query, args)) in steps.iter().enumerate() {
        let needs = if i == 0 {
            String::new()
        } else {
            format!("    needs: [{}]\n", steps[i - 1].0)
        };
        let args: Vec<String> = args.iter().map(|a| format!("{a:?}")).collect();
        yaml.push_str(&format!(
            "  - id: {id}\n{needs}    continue_on_failure: true\n    sql:\n      connection: {connection}\n      query: {query:?}\n      args: [{}]\n",
            args.join(", ")
        ));
    }
    yaml
}

fn run(sql: &Sql, yaml: &str) -> Output {
    Test::new()
        .file("strict.yaml", yaml)
        .env("PCHAT_SQL_PASSWORD", PASSWORD)
        .args([
            "run",
            "strict.yaml",
            "--output",
            "json",
            "-p",
            &format!("primary_port={}", sql.port(Side::Primary)),
            "-p",
            &format!("backup_port={}", sql.port(Side::Backup)),
        ])
        .run()
}

/// `step → (status, message)` of a run.
fn outcome(out: &Output, step: &str) -> (String, String) {
    out.events()
        .into_iter()
        .find(|e| e["event"] == "step_finished" && e["step"] == step)
        .map(|e| {
            (
                e["status"].as_str().unwrap_or_default().to_owned(),
                e["message"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .unwrap_or_else(|| panic!("no step_finished for {step}:\n{}", out.stdout))
}

#[track_caller]
fn refused(out: &Output, step: &str, error: &str) {
    let (status, message) = outcome(out, step);
    assert_eq!(status, "failed", "{step}: {message}\n{}", out.stdout);
    assert!(
        message.contains(error),
        "{step}: expected `{error}`, got: {message}"
    );
}

#[track_caller]
fn accepted(out: &Output, step: &str) {
    let (status, message) = outcome(out, step);
    assert_eq!(status, "succeeded", "{step}: {message}");
}

#[test]
fn the_strict_estate_refuses_what_sql_server_refuses() {
    let sql = Sql::healthy(SQL_2012);
    let share = sql.path("share").display().to_string();
    let newest = sql.share().last().expect("a log backup").0.clone();
    let newest = format!("{share}/{newest}");
    let first = format!("{share}/{}", sql.share()[0].0);
    let before = sql.snapshot();
    let out = run(
        &sql,
        &book(&[
            (
                "add-secondary-database-unregistered",
                "backup",
                "EXEC master.dbo.sp_add_log_shipping_secondary_database @secondary_database = @P1, @primary_server = @P2, @primary_database = @P1",
                &["mgc", "sql-z.contoso.com"],
            ),
            (
                "delete-secondary-that-is-not",
                "backup",
                "EXEC master.dbo.sp_delete_log_shipping_secondary_database @secondary_database = @P1",
                &["mgccomp"],
            ),
            (
                "restore-over-a-principal",
                "primary",
                "RESTORE LOG [mgc] FROM DISK = @P1 WITH NORECOVERY",
                &[&newest],
            ),
            (
                "tail-of-a-principal",
                "primary",
                "BACKUP LOG [mgc] TO DISK = @P1 WITH NORECOVERY, INIT",
                &[&format!("{share}/mgc_tail.trn")],
            ),
            (
                "restore-with-a-gap",
                "backup",
                "RESTORE LOG [mgc] FROM DISK = @P1 WITH NORECOVERY",
                &[&newest],
            ),
            (
                "restore-what-is-applied",
                "backup",
                "RESTORE LOG [mgc] FROM DISK = @P1 WITH NORECOVERY",
                &[&first],
            ),
            (
                "remove-mirroring-not-configured",
                "backup",
                "ALTER DATABASE [mgc] SET PARTNER OFF",
                &[],
            ),
            (
                "restore-a-missing-file",
                "backup",
                "RESTORE HEADERONLY FROM DISK = @P1",
                &[&format!("{share}/mgc_nothing.trn")],
            ),
            (
                "start-a-job-that-does-not-exist",
                "backup",
                "EXEC msdb.dbo.sp_start_job @job_name = @P1",
                &["LSCopy_nowhere"],
            ),
            (
                "a-parameter-the-procedure-lacks",
                "backup",
                "EXEC msdb.dbo.sp_update_job @job_name = @P1, @enable = 0",
                &["LSCopy_127.0.0.2_mgc"],
            ),
            (
                "a-procedure-in-the-wrong-database",
                "backup",
                "EXEC msdb.dbo.sp_delete_log_shipping_secondary_database @secondary_database = @P1",
                &["mgc"],
            ),
            (
                "a-statement-the-estate-does-not-know",
                "backup",
                "SELECT name FROM sys.databases WHERE is_read_only = 0",
                &[],
            ),
        ]),
    );
    refused(
        &out,
        "add-secondary-database-unregistered",
        "SQL error 32023 (severity 16, state 1, line 1): An entry for primary server sql-z.contoso.com, primary database mgc does not exist on this secondary. Register the primary first.",
    );
    refused(
        &out,
        "delete-secondary-that-is-not",
        "SQL error 32014 (severity 16, state 1, line 1): Database mgccomp does not exist as log shipping secondary.",
    );
    refused(
        &out,
        "restore-over-a-principal",
        "SQL error 3104 (severity 16, state 1, line 1): RESTORE cannot operate on database 'mgc' because it is configured for database mirroring. Use ALTER DATABASE to remove mirroring if you intend to restore the database.",
    );
    refused(
        &out,
        "tail-of-a-principal",
        "SQL error 3013 (severity 16, state 1, line 1): BACKUP LOG is terminating abnormally. Database 'mgc' is a database mirroring principal",
    );
    let headers = sql.share();
    refused(
        &out,
        "restore-with-a-gap",
        &format!(
            "SQL error 4305 (severity 16, state 1, line 1): The log in this backup set begins at LSN {}, which is too recent to apply to the database. An earlier log backup that includes LSN {} can be restored.",
            headers[2].1.first_lsn, headers[0].1.last_lsn
        ),
    );
    refused(
        &out,
        "restore-what-is-applied",
        &format!(
            "SQL error 4326 (severity 16, state 1, line 1): The log in this backup set terminates at LSN {}, which is too early to apply to the database.",
            headers[0].1.last_lsn
        ),
    );
    refused(
        &out,
        "remove-mirroring-not-configured",
        "SQL error 1416 (severity 16, state 1, line 1): Database \"mgc\" is not configured for database mirroring.",
    );
    refused(
        &out,
        "restore-a-missing-file",
        "SQL error 3201 (severity 16, state 1, line 1): Cannot open backup device",
    );
    refused(
        &out,
        "start-a-job-that-does-not-exist",
        "SQL error 14262 (severity 16, state 1, line 1): The specified @job_name ('LSCopy_nowhere') does not exist.",
    );
    refused(
        &out,
        "a-parameter-the-procedure-lacks",
        "SQL error 8145 (severity 16, state 1, line 1): @enable is not a parameter for procedure sp_update_job.",
    );
    refused(
        &out,
        "a-procedure-in-the-wrong-database",
        "SQL error 2812 (severity 16, state 1, line 1): Could not find stored procedure 'msdb.dbo.sp_delete_log_shipping_secondary_database'.",
    );
    refused(
        &out,
        "a-statement-the-estate-does-not-know",
        "SQL error 102 (severity 15, state 1, line 1): Incorrect syntax near 'SELECT'. (The rehearsal estate does not know this statement, so it cannot say what SQL Server would do: SELECT name FROM sys.databases WHERE is_read_only = 0)",
    );
    assert_eq!(
        sql.snapshot(),
        before,
        "a refused statement changed nothing"
    );

    // Without mirroring, the tail of the log still needs the database to itself.
    let out = run(
        &sql,
        &book(&[
            (
                "remove-mirroring",
                "primary",
                "ALTER DATABASE [mgc] SET PARTNER OFF",
                &[],
            ),
            (
                "tail-while-in-use",
                "primary",
                "BACKUP LOG [mgc] TO DISK = @P1 WITH NORECOVERY, INIT",
                &[&format!("{share}/mgc_tail.trn")],
            ),
        ]),
    );
    accepted(&out, "remove-mirroring");
    refused(
        &out,
        "tail-while-in-use",
        "SQL error 3101 (severity 16, state 1, line 1): Exclusive access could not be obtained because the database is in use.",
    );
}

/// Sessions are ended through `sys.sysprocesses` on every version; the earlier runbooks'
/// `sys.dm_exec_sessions.database_id` exists only from SQL Server 2012 on.
#[test]
fn ending_sessions_by_dm_exec_sessions_fails_on_sql_server_2008_r2() {
    const OLD: &str = "DECLARE @kill nvarchar(max) = N''; SELECT @kill = @kill + N'KILL ' + CONVERT(nvarchar(10), session_id) + N';' FROM sys.dm_exec_sessions WHERE database_id = DB_ID(@P1) AND session_id <> @@SPID; EXEC sys.sp_executesql @kill;";
    const NEW: &str = "DECLARE @kill nvarchar(max); SET @kill = N''; SELECT @kill = @kill + N'KILL ' + CONVERT(nvarchar(10), spid) + N';' FROM master.sys.sysprocesses WHERE dbid = DB_ID(@P1) AND spid <> @@SPID AND spid > 50; EXEC (@kill);";
    for (version, old_works) in [(SQL_2008_R2, false), (SQL_2012, true)] {
        let sql = Sql::healthy(version);
        let out = run(&sql, &book(&[("old", "primary", OLD, &["mgc"])]));
        if old_works {
            accepted(&out, "old");
        } else {
            refused(
                &out,
                "old",
                "SQL error 207 (severity 16, state 1, line 1): Invalid column name 'database_id'.",
            );
        }
        let sessions = sql.primary.lock().unwrap().sessions_of("mgc");
        assert_eq!(sessions.is_empty(), old_works, "{version}");

        let sql = Sql::healthy(version);
        let out = run(&sql, &book(&[("new", "primary", NEW, &["mgc"])]));
        accepted(&out, "new");
        assert_eq!(
            sql.primary.lock().unwrap().sessions_of("mgc"),
            Vec::<i64>::new(),
            "{version}: every session on mgc was ended"
        );
    }
}
