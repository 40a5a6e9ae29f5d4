//! `sql` steps through the real binary, over TCP with tiberius, against the TDS test server
//! (`tds.rs`) started inside this test process. SQL Server itself cannot run here;
//! `against_a_real_server` is ignored unless asked for, and needs `RUNBOOK_TEST_MSSQL`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::support::{Test, events_of};
use crate::tds::{Reply, Request, Server, Value};

const PASSWORD: &str = "Sup3r-Secret!pw";

/// A runbook whose connection `db` points at `server`, its password read from `T_SQL_PW`.
fn book(server: &Server, steps: &str) -> String {
    // The password is a template here, so the test server's own quoting is not wanted.
    let connection = format!(
        "server=tcp:127.0.0.1,{};user id=sa;password={{{{ secrets.pw }}}};encrypt=DANGER_PLAINTEXT",
        server.port()
    );
    format!(
        "runbook: 1\nname: s\nsecrets:\n  pw: {{ env: T_SQL_PW }}\nconnections:\n  db:\n    mssql: '{connection}'\nsteps:\n{steps}"
    )
}

fn run(yaml: &str, args: &[&str]) -> (Test, crate::support::Output) {
    let t = Test::new()
        .file("s.yaml", yaml)
        .env("T_SQL_PW", PASSWORD)
        .args(["run", "s.yaml"])
        .args(args.iter().copied());
    let out = t.run();
    assert!(
        !out.stdout.contains(PASSWORD),
        "password on stdout:\n{}",
        out.stdout
    );
    assert!(
        !out.stderr.contains(PASSWORD),
        "password on stderr:\n{}",
        out.stderr
    );
    (t, out)
}

/// Replies that are not under test: `USE` and anything unexpected.
fn done() -> Vec<Reply> {
    vec![Reply::Done { rows_affected: 0 }]
}

#[test]
fn login_success_and_failure_without_the_password() {
    let server = Server::start(PASSWORD, |_| {
        vec![Reply::Rows {
            columns: vec!["one".into()],
            rows: vec![vec![Value::Int(1)]],
        }]
    });
    let (_, out) = run(
        &book(
            &server,
            "  - id: q\n    sql: { connection: db, query: SELECT 1 AS one }\n",
        ),
        &[],
    );
    assert_eq!(out.code, 0, "{}", out.stdout);
    assert_eq!(server.logins(), 1);

    let wrong = book(
        &server,
        "  - id: q\n    sql: { connection: db, query: SELECT 1 }\n",
    )
    .replace("{{ secrets.pw }}", "not-the-password");
    let (_, out) = run(&wrong, &["--output", "json"]);
    assert_eq!(out.code, 1);
    let events = out.events();
    let failed = events_of(&events, "attempt_failed")[0];
    assert_eq!(failed["reason"], serde_json::json!({ "kind": "connect" }));
    let message = failed["message"].as_str().unwrap();
    assert!(message.contains("18456"), "{message}");
    assert!(!out.stdout.contains("not-the-password"), "{}", out.stdout);
}

#[test]
fn parameters_round_trip_with_their_types() {
    let seen: Arc<Mutex<Vec<Value>>> = Arc::default();
    let record = seen.clone();
    let server = Server::start(PASSWORD, move |r: &Request| {
        if r.sql.starts_with("SELECT") {
            *record.lock().unwrap() = r.params.clone();
        }
        done()
    });
    let (_, out) = run(
        &book(
            &server,
            "  - id: q\n    sql:\n      connection: db\n      query: SELECT @P1, @P2, @P3, @P4, @P5\n      args: ['{{ secrets.pw | length }} chars', 42, true, null, 1.5]\n",
        ),
        &[],
    );
    assert_eq!(out.code, 0, "{}", out.stdout);
    assert_eq!(
        *seen.lock().unwrap(),
        [
            Value::String("15 chars".into()),
            Value::Int(42),
            Value::Bool(true),
            Value::Null,
            Value::Float(1.5)
        ]
    );
}

#[test]
fn rows_of_every_type_reach_later_templates() {
    let server = Server::start(PASSWORD, |r: &Request| {
        if !r.sql.starts_with("SELECT") {
            return done();
        }
        vec![
            Reply::Rows {
                columns: ["i", "f", "d", "s", "b", "n", "day", "at", "id", "bin"]
                    .map(String::from)
                    .to_vec(),
                rows: vec![vec![
                    Value::Int(7),
                    Value::Float(2.5),
                    Value::Decimal("12.3400".into()),
                    Value::String("mgc".into()),
                    Value::Bool(true),
                    Value::Null,
                    Value::Date("2026-11-26".into()),
                    Value::DateTime("2026-11-26T09:30:15.5".into()),
                    Value::Guid("6f9619ff-8b86-d011-b42d-00c04fc964ff".into()),
                    Value::Binary(vec![0xde, 0xad, 0x01]),
                ]],
            },
            Reply::Rows {
                columns: vec!["second".into()],
                rows: vec![vec![Value::String("set two".into())]],
            },
        ]
    });
    let (t, out) = run(
        &book(
            &server,
            "  - id: q\n    sql: { connection: db, query: 'SELECT everything' }\n  - id: use\n    needs: [q]\n    run: { shell: sh, script: \"echo '{{ steps.q.rows[0] | to_json }}' > row; echo '{{ steps.q.result_sets[1][0].second }}' > second\" }\n",
        ),
        &[],
    );
    assert_eq!(out.code, 0, "{}", out.stdout);
    let row: serde_json::Value = serde_json::from_str(&t.read("row")).unwrap();
    assert_eq!(
        row,
        serde_json::json!({
            "i": 7, "f": 2.5, "d": "12.3400", "s": "mgc", "b": true, "n": null,
            "day": "2026-11-26", "at": "2026-11-26T09:30:15.500",
            "id": "6f9619ff-8b86-d011-b42d-00c04fc964ff", "bin": "dead01"
        })
    );
    assert_eq!(t.read("second"), "set two\n");
}

#[test]
fn until_polls_a_database_state() {
    let polls = Arc::new(Mutex::new(0));
    let counter = polls.clone();
    let server = Server::start(PASSWORD, move |r: &Request| {
        if !r.sql.contains("state_desc") {
            return done();
        }
        let mut n = counter.lock().unwrap();
        *n += 1;
        let state = if *n < 3 { "RESTORING" } else { "ONLINE" };
        vec![Reply::Rows {
            columns: vec!["state_desc".into()],
            rows: vec![vec![Value::String(state.into())]],
        }]
    });
    let (_, out) = run(
        &book(
            &server,
            "  - id: online\n    sql: { connection: db, query: \"SELECT state_desc FROM sys.databases WHERE name = @P1\", args: [mgc] }\n    until: result.rows[0].state_desc == 'ONLINE'\n    retry: { attempts: 5, delay: 50ms }\n",
        ),
        &["--output", "json"],
    );
    assert_eq!(out.code, 0, "{}", out.stdout);
    assert_eq!(events_of(&out.events(), "step_finished")[0]["attempts"], 3);
    assert_eq!(server.logins(), 1, "one connection, reused across attempts");
}

#[test]
fn deadlock_is_retried_and_other_errors_are_not() {
    let calls = Arc::new(Mutex::new(0));
    let counter = calls.clone();
    let server = Server::start(PASSWORD, move |r: &Request| {
        if r.sql.contains("deadlocky") {
            let mut n = counter.lock().unwrap();
            *n += 1;
            if *n < 3 {
                return vec![Reply::Error {
                    number: 1205,
                    severity: 13,
                    state: 51,
                    line: 1,
                    message: "Transaction was deadlocked on lock resources with another process and has been chosen as the deadlock victim. Rerun the transaction.".into(),
                }];
            }
            return vec![Reply::Done { rows_affected: 1 }];
        }
        if r.sql.contains("RESTORE") {
            return vec![Reply::Error {
                number: 3101,
                severity: 16,
                state: 1,
                line: 1,
                message: "Exclusive access could not be obtained because the database is in use."
                    .into(),
            }];
        }
        done()
    });
    let steps = "  - id: update\n    sql: { connection: db, query: 'UPDATE deadlocky SET x = 1' }\n    retry: { attempts: 3, on: { sql_errors: [1205] } }\n  - id: restore\n    needs: [update]\n    sql: { connection: db, query: 'RESTORE DATABASE [mgc] WITH RECOVERY' }\n    retry: { attempts: 3, on: { sql_errors: [1205] } }\n";
    let (_, out) = run(&book(&server, steps), &["--output", "json"]);
    assert_eq!(out.code, 1);
    let events = out.events();
    let finished = events_of(&events, "step_finished");
    assert_eq!(finished[0]["step"], "update");
    assert_eq!(finished[0]["status"], "succeeded");
    assert_eq!(finished[0]["attempts"], 3);
    assert_eq!(finished[1]["step"], "restore");
    assert_eq!(finished[1]["attempts"], 1, "3101 is not in retry.on");
    assert_eq!(
        finished[1]["message"],
        "SQL error 3101 (severity 16, state 1, line 1): Exclusive access could not be obtained because the database is in use."
    );
    let reasons: Vec<&serde_json::Value> = events_of(&events, "attempt_failed")
        .iter()
        .map(|e| &e["reason"])
        .collect();
    assert_eq!(
        reasons[0],
        &serde_json::json!({ "kind": "sql", "number": 1205 })
    );
}

#[test]
fn a_slow_query_is_cancelled_and_the_next_step_reconnects() {
    let server = Server::start(PASSWORD, |r: &Request| {
        if r.sql.contains("slow") {
            return vec![
                Reply::Delay(Duration::from_secs(5)),
                Reply::Done { rows_affected: 0 },
            ];
        }
        vec![Reply::Rows {
            columns: vec!["ok".into()],
            rows: vec![vec![Value::Int(1)]],
        }]
    });
    let steps = "  - id: slow\n    timeout: 300ms\n    continue_on_failure: true\n    sql: { connection: db, query: \"WAITFOR DELAY '00:00:05' -- slow\" }\n  - id: next\n    needs: [slow]\n    sql: { connection: db, query: SELECT 1 AS ok }\n";
    let started = std::time::Instant::now();
    let (_, out) = run(&book(&server, steps), &["--output", "json"]);
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "the slow query was not cancelled"
    );
    assert_eq!(out.code, 0, "{}", out.stdout);
    let events = out.events();
    assert_eq!(
        events_of(&events, "attempt_failed")[0]["reason"],
        serde_json::json!({ "kind": "timeout" })
    );
    assert_eq!(
        events_of(&events, "step_finished")[1]["status"],
        "succeeded"
    );
    assert_eq!(
        server.logins(),
        2,
        "the timed-out connection was dropped and a new one opened"
    );
}

#[test]
fn server_down_is_a_connect_failure_retried_when_declared() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let yaml = format!(
        "runbook: 1\nname: s\nconnections:\n  db: {{ mssql: 'server=tcp:127.0.0.1,{port};user id=sa;password=x;TrustServerCertificate=true;encrypt=false' }}\nsteps:\n  - id: q\n    sql: {{ connection: db, query: SELECT 1 }}\n    retry: {{ attempts: 2, delay: 10ms, on: {{ connect: true }} }}\n"
    );
    let (_, out) = run(&yaml, &["--output", "json"]);
    assert_eq!(out.code, 1);
    let events = out.events();
    let failed = events_of(&events, "attempt_failed");
    assert_eq!(failed.len(), 2);
    assert_eq!(
        failed[0]["reason"],
        serde_json::json!({ "kind": "connect" })
    );
    assert!(
        failed[0]["message"]
            .as_str()
            .unwrap()
            .starts_with(&format!("cannot connect to 127.0.0.1:{port}")),
        "{}",
        failed[0]["message"]
    );
}

#[test]
fn informational_messages_are_shown_live_and_kept() {
    let server = Server::start(PASSWORD, |r: &Request| {
        if !r.sql.contains("RESTORE") {
            return done();
        }
        vec![
            Reply::Info {
                number: 3211,
                message: "10 percent processed.".into(),
            },
            Reply::Info {
                number: 3211,
                message: "100 percent processed.".into(),
            },
            Reply::Done { rows_affected: 0 },
        ]
    });
    let steps = "  - id: restore\n    sql: { connection: db, query: 'RESTORE LOG [mgc] FROM DISK = @P1 WITH NORECOVERY', args: ['x.trn'] }\n  - id: after\n    needs: [restore]\n    run: { shell: sh, script: \"echo '{{ steps.restore.messages | join(\\\"|\\\") }}' > messages\" }\n";
    let (t, out) = run(&book(&server, steps), &[]);
    assert_eq!(out.code, 0, "{}", out.stdout);
    assert!(
        out.stdout.contains("restore │ 10 percent processed."),
        "{}",
        out.stdout
    );
    assert_eq!(
        t.read("messages"),
        "10 percent processed.|100 percent processed.\n"
    );
}

#[test]
fn rows_affected_and_the_database_of_a_step() {
    let server = Server::start(PASSWORD, |r: &Request| {
        if r.sql.starts_with("UPDATE") {
            return vec![Reply::Done { rows_affected: 3 }];
        }
        done()
    });
    let steps = "  - id: u\n    sql: { connection: db, database: mgc, query: 'UPDATE t SET x = 1' }\n  - id: check\n    needs: [u]\n    assert: steps.u.rows_affected == 3\n";
    let (_, out) = run(&book(&server, steps), &[]);
    assert_eq!(out.code, 0, "{}", out.stdout);
    let requests = server.requests();
    assert!(requests.iter().any(|r| r == "USE [mgc]"), "{requests:?}");
}

#[test]
fn plan_shows_sql_without_connecting() {
    let server = Server::start(PASSWORD, |_| done());
    let yaml = book(
        &server,
        "  - id: q\n    sql: { connection: db, query: 'SELECT * FROM t WHERE name = @P1', args: ['{{ secrets.pw }}'] }\n",
    );
    let t = Test::new()
        .file("s.yaml", &yaml)
        .env("T_SQL_PW", PASSWORD)
        .args(["plan", "s.yaml"]);
    let out = t.run();
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout.contains(&format!(
            "sql on `db` (server tcp:127.0.0.1,{}):",
            server.port()
        )),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("| SELECT * FROM t WHERE name = @P1"));
    assert!(out.stdout.contains("@P1 = N'***'"), "{}", out.stdout);
    assert!(!out.stdout.contains(PASSWORD));
    assert_eq!(server.logins(), 0, "a plan opens no connection");
}

#[test]
#[ignore = "needs a real SQL Server: RUNBOOK_TEST_MSSQL=<connection string> cargo test -- --ignored against_a_real_server"]
fn against_a_real_server() {
    let connection = std::env::var("RUNBOOK_TEST_MSSQL").unwrap_or_else(|_| {
        panic!(
            "RUNBOOK_TEST_MSSQL is not set: set it to a SQL Server connection string to run this test"
        )
    });
    let yaml = format!(
        "runbook: 1\nname: real\nconnections:\n  db: {{ mssql: {connection:?} }}\nsteps:\n  - id: version\n    sql: {{ connection: db, query: \"SELECT @P1 AS s, @P2 AS i, @P3 AS b, CAST(12.34 AS decimal(9,2)) AS d, CAST('2026-11-26' AS date) AS day, @@VERSION AS v\", args: [text, 42, true] }}\n  - id: print\n    needs: [version]\n    sql: {{ connection: db, query: \"PRINT 'hello from the server'\" }}\n  - id: check\n    needs: [print]\n    assert: steps.version.rows[0].s == 'text' and steps.version.rows[0].i == 42 and steps.version.rows[0].b and steps.version.rows[0].d == '12.34' and steps.version.rows[0].day == '2026-11-26' and 'hello from the server' in steps.print.messages\n"
    );
    let out = Test::new()
        .file("r.yaml", yaml)
        .args(["run", "r.yaml"])
        .run();
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
}
