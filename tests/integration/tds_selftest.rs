//! Tests of the TDS test server (`tds.rs`) through the real tiberius client, so the
//! product's SQL Server tests can trust what it sends and understands.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tiberius::numeric::Decimal;
use tiberius::time::chrono::{NaiveDate, NaiveDateTime};
use tiberius::{Client, Config, Uuid};
use tokio::net::TcpStream;
use tokio_util::compat::{Compat, TokioAsyncWriteCompatExt};

use crate::tds::{Reply, Request, Server, Value};

const PASSWORD: &str = "Str0ng;pa'ss\"word";

async fn connect_with(connection_string: &str) -> tiberius::Result<Client<Compat<TcpStream>>> {
    let config = Config::from_ado_string(connection_string)?;
    let tcp = TcpStream::connect(config.get_addr()).await?;
    tcp.set_nodelay(true)?;
    Client::connect(config, tcp.compat_write()).await
}

async fn connect(server: &Server) -> Client<Compat<TcpStream>> {
    connect_with(&server.connection_string(PASSWORD))
        .await
        .expect("login to the TDS test server")
}

fn one_value(value: Value) -> Reply {
    Reply::Rows {
        columns: vec!["value".to_string()],
        rows: vec![vec![value]],
    }
}

type Log = Arc<Mutex<Vec<Request>>>;

/// Answers `SELECT n` with n (anything else with 0).
fn answer(request: &Request) -> Vec<Reply> {
    let n = request
        .sql
        .trim_start_matches("SELECT ")
        .parse()
        .unwrap_or(0);
    vec![one_value(Value::Int(n))]
}

/// `answer`, keeping every request in `log`.
fn recording(log: &Log) -> impl Fn(&Request) -> Vec<Reply> + Send + Sync + 'static {
    let log = Arc::clone(log);
    move |request| {
        log.lock().unwrap().push(request.clone());
        answer(request)
    }
}

async fn select(client: &mut Client<Compat<TcpStream>>, sql: &str) -> i64 {
    let row = client
        .simple_query(sql)
        .await
        .expect("query")
        .into_row()
        .await
        .expect("rows")
        .expect("one row");
    row.get::<i64, _>(0).expect("a value")
}

async fn eventually(what: &str, condition: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn login_needs_the_right_password() {
    let seen = Log::default();
    let server = Server::start(PASSWORD, recording(&seen));

    let mut client = connect(&server).await;
    assert_eq!(server.logins(), 1);
    assert_eq!(select(&mut client, "SELECT 1").await, 1);
    let request = seen.lock().unwrap()[0].clone();
    assert_eq!(request.user, "sa");
    assert_eq!(request.database, "master");

    let error = connect_with(&server.connection_string("hunter2"))
        .await
        .expect_err("a wrong password is refused");
    let tiberius::error::Error::Server(token) = &error else {
        panic!("expected a server error, got {error:?}");
    };
    assert_eq!(token.code(), 18456);
    assert_eq!(token.class(), 14);
    assert_eq!(token.state(), 1);
    assert_eq!(token.message(), "Login failed for user 'sa'.");
    assert!(!error.to_string().contains("hunter2"), "{error}");
    assert_eq!(server.logins(), 1);
}

#[tokio::test]
async fn a_batch_reaches_the_handler_and_its_rows_come_back() {
    let seen = Log::default();
    let server = Server::start(PASSWORD, recording(&seen));
    let mut client = connect(&server).await;

    assert_eq!(select(&mut client, "SELECT 1").await, 1);
    assert_eq!(select(&mut client, "SELECT 7").await, 7);

    assert_eq!(server.requests(), ["SELECT 1", "SELECT 7"]);
    let seen = seen.lock().unwrap();
    assert!(seen.iter().all(|r| r.params.is_empty()));
    assert_eq!(server.logins(), 1, "one connection for both queries");
}

#[tokio::test]
async fn rpc_parameters_are_decoded_in_order() {
    let seen = Log::default();
    let server = Server::start(PASSWORD, recording(&seen));
    let mut client = connect(&server).await;

    let long = "é".repeat(5000); // more than NVARCHAR(4000): sent as NVARCHAR(MAX)
    let decimal: Decimal = "-12.3400".parse().unwrap();
    let date = NaiveDate::from_ymd_opt(2026, 11, 26).unwrap();
    let at = date.and_hms_nano_opt(9, 30, 15, 123_456_700).unwrap();
    let guid = Uuid::parse_str("6f9619ff-8b86-d011-b42d-00c04fc964ff").unwrap();
    let bytes: &[u8] = &[0, 1, 254, 255];
    let sql = "SELECT @P1, @P2, @P3, @P4, @P5, @P6, @P7, @P8, @P9, @P10, @P11, @P12";
    let rows = client
        .query(
            sql,
            &[
                &"text",
                &42i64,
                &true,
                &1.5f64,
                &Option::<&str>::None,
                &-7i32,
                &long.as_str(),
                &decimal,
                &date,
                &at,
                &guid,
                &bytes,
            ],
        )
        .await
        .expect("query")
        .into_results()
        .await
        .expect("results");
    assert_eq!(rows.len(), 1);

    let request = seen.lock().unwrap()[0].clone();
    assert_eq!(request.sql, sql);
    assert_eq!(
        request.params,
        [
            Value::String("text".to_string()),
            Value::Int(42),
            Value::Bool(true),
            Value::Float(1.5),
            Value::Null,
            Value::Int(-7),
            Value::String(long),
            Value::Decimal("-12.3400".to_string()),
            Value::Date("2026-11-26".to_string()),
            Value::DateTime("2026-11-26T09:30:15.1234567".to_string()),
            Value::Guid("6f9619ff-8b86-d011-b42d-00c04fc964ff".to_string()),
            Value::Binary(bytes.to_vec()),
        ]
    );
    assert_eq!(server.requests(), [sql]);
}

#[tokio::test]
async fn every_value_type_decodes_in_tiberius() {
    let long_text = "ü".repeat(4500);
    let long_bytes = vec![7u8; 9000];
    let values = vec![
        Value::Int(-42),
        Value::Float(2.5),
        Value::Bool(true),
        Value::String("héllo".to_string()),
        Value::Decimal("12.3400".to_string()),
        Value::Date("2026-11-26".to_string()),
        Value::DateTime("2026-11-26T09:30:15.1234567".to_string()),
        Value::Guid("6f9619ff-8b86-d011-b42d-00c04fc964ff".to_string()),
        Value::Binary(vec![0, 1, 2, 255]),
        Value::Null,
        Value::String(long_text.clone()),
        Value::Binary(long_bytes.clone()),
    ];
    let columns: Vec<String> = (0..values.len()).map(|i| format!("c{i}")).collect();
    let nulls = vec![Value::Null; values.len()];
    let rows = vec![values, nulls];
    let server = Server::start(PASSWORD, move |_| {
        vec![Reply::Rows {
            columns: columns.clone(),
            rows: rows.clone(),
        }]
    });
    let mut client = connect(&server).await;

    let rows = client
        .simple_query("SELECT everything")
        .await
        .expect("query")
        .into_first_result()
        .await
        .expect("rows");
    assert_eq!(rows.len(), 2);
    let row = &rows[0];
    assert_eq!(row.columns()[4].name(), "c4");
    assert_eq!(row.get::<i64, _>(0), Some(-42));
    assert_eq!(row.get::<f64, _>(1), Some(2.5));
    assert_eq!(row.get::<bool, _>(2), Some(true));
    assert_eq!(row.get::<&str, _>(3), Some("héllo"));
    let decimal = row.get::<Decimal, _>(4).expect("decimal");
    assert_eq!(decimal.to_string(), "12.3400");
    assert_eq!(
        row.get::<NaiveDate, _>(5),
        NaiveDate::from_ymd_opt(2026, 11, 26)
    );
    let at = NaiveDateTime::parse_from_str("2026-11-26T09:30:15.1234567", "%Y-%m-%dT%H:%M:%S%.f");
    assert_eq!(row.get::<NaiveDateTime, _>(6), at.ok());
    assert_eq!(
        row.get::<Uuid, _>(7),
        Uuid::parse_str("6f9619ff-8b86-d011-b42d-00c04fc964ff").ok()
    );
    assert_eq!(row.get::<&[u8], _>(8), Some(&[0u8, 1, 2, 255][..]));
    assert_eq!(row.get::<&str, _>(9), None);
    assert_eq!(row.get::<&str, _>(10), Some(long_text.as_str()));
    assert_eq!(row.get::<&[u8], _>(11), Some(&long_bytes[..]));

    let nulls = &rows[1];
    assert_eq!(nulls.get::<i64, _>(0), None);
    assert_eq!(nulls.get::<Decimal, _>(4), None);
    assert_eq!(nulls.get::<NaiveDateTime, _>(6), None);
    assert_eq!(nulls.get::<Uuid, _>(7), None);
    assert_eq!(nulls.get::<&str, _>(10), None);
    assert_eq!(nulls.get::<&[u8], _>(11), None);
}

#[tokio::test]
async fn a_value_that_does_not_fit_its_column_is_a_server_error() {
    let server = Server::start(PASSWORD, move |request| {
        if request.sql != "SELECT n" {
            return answer(request);
        }
        vec![Reply::Rows {
            columns: vec!["n".to_string()],
            rows: vec![vec![Value::Int(1)], vec![Value::String("two".to_string())]],
        }]
    });
    let mut client = connect(&server).await;

    let error = client
        .simple_query("SELECT n")
        .await
        .expect_err("mixed column types are refused");
    assert!(error.to_string().contains("column \"n\""), "{error}");
    assert_eq!(select(&mut client, "SELECT 3").await, 3, "still usable");
}

#[tokio::test]
async fn two_result_sets_stay_apart() {
    let server = Server::start(PASSWORD, |_| {
        vec![
            Reply::Rows {
                columns: vec!["a".to_string()],
                rows: vec![vec![Value::Int(1)], vec![Value::Int(2)]],
            },
            Reply::Rows {
                columns: vec!["b".to_string()],
                rows: vec![vec![Value::String("x".to_string())]],
            },
        ]
    });
    let mut client = connect(&server).await;

    let results = client
        .query("SELECT a; SELECT b", &[])
        .await
        .expect("query")
        .into_results()
        .await
        .expect("results");
    assert_eq!(results.len(), 2);
    assert_eq!(results[0].len(), 2);
    assert_eq!(results[0][1].get::<i64, _>(0), Some(2));
    assert_eq!(results[1][0].get::<&str, _>("b"), Some("x"));
}

#[tokio::test]
async fn an_error_reply_is_a_server_error_and_the_connection_survives() {
    let server = Server::start(PASSWORD, move |request| {
        if request.sql.starts_with("RESTORE") {
            vec![Reply::Error {
                number: 3201,
                severity: 16,
                state: 2,
                line: 4,
                message: "Cannot open backup device 'x.bak'.".to_string(),
            }]
        } else {
            answer(request)
        }
    });
    let mut client = connect(&server).await;

    for attempt in 0..2 {
        let error = client
            .execute("RESTORE DATABASE d FROM DISK = @P1", &[&"x.bak"])
            .await
            .expect_err("the error reaches the client");
        let tiberius::error::Error::Server(token) = &error else {
            panic!("expected a server error, got {error:?}");
        };
        assert_eq!(token.code(), 3201);
        assert_eq!(token.class(), 16);
        assert_eq!(token.state(), 2);
        assert_eq!(token.line(), 4);
        assert_eq!(token.message(), "Cannot open backup device 'x.bak'.");
        assert_eq!(
            select(&mut client, "SELECT 5").await,
            5,
            "attempt {attempt}"
        );
    }
    assert_eq!(server.logins(), 1);
}

#[tokio::test]
async fn info_messages_do_not_get_in_the_way_of_rows() {
    let server = Server::start(PASSWORD, |_| {
        vec![
            Reply::Info {
                number: 3211,
                message: "10 percent processed.".to_string(),
            },
            Reply::Info {
                number: 0,
                message: "printed".to_string(),
            },
            one_value(Value::Int(9)),
        ]
    });
    let mut client = connect(&server).await;

    assert_eq!(select(&mut client, "PRINT 'printed'; SELECT 9").await, 9);
    let rows = client
        .query("SELECT 9", &[])
        .await
        .expect("query")
        .into_first_result()
        .await
        .expect("rows");
    assert_eq!(rows[0].get::<i64, _>(0), Some(9));
}

/// `SLOW` waits `delay` before its row; anything else answers at once.
fn slow_server(delay: Duration) -> Server {
    Server::start(PASSWORD, move |request| {
        let row = one_value(Value::Int(1));
        if request.sql == "SLOW" {
            vec![Reply::Delay(delay), row]
        } else {
            vec![row]
        }
    })
}

#[tokio::test]
async fn a_client_gone_during_a_delay_ends_only_its_own_connection() {
    let server = slow_server(Duration::from_millis(700));
    let mut client = connect(&server).await;

    let slow = client.query("SLOW", &[]);
    let timed_out = tokio::time::timeout(Duration::from_millis(100), slow)
        .await
        .is_err();
    assert!(timed_out, "the query outlasts the timeout");
    drop(client);

    let mut client = connect(&server).await;
    assert_eq!(select(&mut client, "SELECT 1").await, 1);
    eventually("the abandoned connection has ended", || {
        server.active_connections() == 1
    })
    .await;
    assert_eq!(select(&mut client, "SELECT 1").await, 1);
}

#[tokio::test]
async fn an_attention_cuts_a_delay_short() {
    let server = slow_server(Duration::from_secs(30));
    let mut client = connect(&server).await;

    let started = Instant::now();
    let slow = client.query("SLOW", &[]);
    let timed_out = tokio::time::timeout(Duration::from_millis(100), slow)
        .await
        .is_err();
    assert!(timed_out, "the query outlasts the timeout");
    client.cancel_query().await.expect("cancel acknowledged");
    assert!(started.elapsed() < Duration::from_secs(10));

    assert_eq!(select(&mut client, "SELECT 1").await, 1);
    assert_eq!(server.logins(), 1);
}

#[tokio::test]
async fn an_abandoned_query_is_drained_before_the_next_one() {
    let server = slow_server(Duration::from_millis(300));
    let mut client = connect(&server).await;

    let slow = client.query("SLOW", &[]);
    let timed_out = tokio::time::timeout(Duration::from_millis(50), slow)
        .await
        .is_err();
    assert!(timed_out, "the query outlasts the timeout");
    assert_eq!(select(&mut client, "SELECT 1").await, 1);
}

#[tokio::test]
async fn rows_affected_come_from_done() {
    let server = Server::start(PASSWORD, |request| {
        if request.sql.starts_with("UPDATE") {
            vec![Reply::Done { rows_affected: 3 }]
        } else {
            vec![
                Reply::Done { rows_affected: 1 },
                Reply::Done { rows_affected: 2 },
            ]
        }
    });
    let mut client = connect(&server).await;

    let result = client
        .execute("UPDATE t SET x = @P1", &[&1i32])
        .await
        .expect("execute");
    assert_eq!(result.total(), 3);

    let result = client
        .execute("INSERT t VALUES (1); INSERT t VALUES (2), (3)", &[])
        .await
        .expect("execute");
    assert_eq!(result.rows_affected(), [1, 2]);
}

#[tokio::test]
async fn use_switches_the_database() {
    let seen = Log::default();
    let server = Server::start(PASSWORD, recording(&seen));
    let ops = format!("{};database=ops", server.connection_string(PASSWORD));
    let mut client = connect_with(&ops).await.expect("login");

    assert_eq!(select(&mut client, "SELECT 1").await, 1);
    client
        .simple_query("USE [inventory];")
        .await
        .expect("use")
        .into_results()
        .await
        .expect("use done");
    assert_eq!(select(&mut client, "SELECT 2").await, 2);

    let databases: Vec<String> = seen
        .lock()
        .unwrap()
        .iter()
        .map(|r| r.database.clone())
        .collect();
    assert_eq!(databases, ["ops", "ops", "inventory"]);
}
