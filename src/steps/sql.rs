//! `sql` steps: T-SQL on a named connection with tiberius, over tokio, TLS through rustls.
//!
//! One connection per connection name per run, opened on first use and reused, so that steps
//! such as `KILL` and `RESTORE` run on a session of their own choosing; a connection that
//! failed or timed out is closed and opened again by the next step that needs it. Queries
//! always go through `sp_executesql`, so `args` are typed parameters (`@P1`, `@P2`, …).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value};
use tiberius::{Client, ColumnData, Command, Config, FromSql};
use tokio::net::TcpStream;
use tokio_util::compat::{Compat, TokioAsyncWriteCompatExt};
use tokio_util::sync::CancellationToken;

use super::sql_messages::Messages;
use super::{Attempt, Failed};
use crate::mask::MASK;
use crate::retry::Failure;

type Connection = Client<Compat<TcpStream>>;

/// An open connection and the database its session is in.
#[derive(Default)]
struct Slot {
    client: Option<Connection>,
    database: Option<String>,
}

/// The connections of one run.
#[derive(Default)]
pub struct Pool {
    slots: std::sync::Mutex<HashMap<String, Arc<tokio::sync::Mutex<Slot>>>>,
}

/// What a query returned.
#[derive(Clone, Debug, Default)]
pub struct Results {
    pub result_sets: Vec<Vec<Map<String, Value>>>,
    pub rows_affected: u64,
}

/// The parts of a connection string that may be shown: server and database, never secrets.
pub fn describe(connection_string: &str) -> (Option<String>, Option<String>) {
    let mut server = None;
    let mut database = None;
    for part in connection_string.split(';') {
        let Some((key, value)) = part.split_once('=') else {
            continue;
        };
        let value = value.trim().to_owned();
        match key.trim().to_ascii_lowercase().as_str() {
            "server" | "data source" | "address" | "addr" | "network address" => {
                server = Some(value);
            }
            "database" | "initial catalog" => database = Some(value),
            _ => {}
        }
    }
    (server, database)
}

/// Every password-like value of a connection string, to keep out of messages.
fn passwords(connection_string: &str) -> Vec<String> {
    connection_string
        .split(';')
        .filter_map(|part| part.split_once('='))
        .filter(|(k, _)| matches!(k.trim().to_ascii_lowercase().as_str(), "password" | "pwd"))
        .map(|(_, v)| v.trim().to_owned())
        .filter(|v| !v.is_empty())
        .collect()
}

/// Keeps the connection's password out of a message: wherever the message quotes a
/// connection string, the value of its `password`/`pwd` key is masked (whatever its length),
/// and a password long enough to search for is masked where it stands alone. A short password
/// is not searched for: `pwd=a` must not turn every `a` of the message into `***`.
fn redact(text: &str, connection_string: &str) -> String {
    let values = password_values(text);
    crate::mask::Masker::new(passwords(connection_string))
        .text(&values)
        .into_owned()
}

/// `text` with the value of every `password=…`/`pwd=…` in it masked.
fn password_values(text: &str) -> String {
    let lower = text.to_ascii_lowercase();
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    while at < text.len() {
        let found = ["password", "pwd"].iter().find_map(|key| {
            let rest = lower.get(at..)?;
            let after = rest.strip_prefix(key)?.trim_start();
            let boundary = lower[..at]
                .chars()
                .next_back()
                .is_none_or(|c| !c.is_ascii_alphanumeric() && c != '_');
            let after = after.strip_prefix('=').filter(|_| boundary)?.trim_start();
            Some(text.len() - after.len())
        });
        let Some(start) = found else {
            let c = text[at..].chars().next().map_or(1, char::len_utf8);
            out.push_str(&text[at..at + c]);
            at += c;
            continue;
        };
        out.push_str(&text[at..start]);
        let rest = &text[start..];
        let len = match rest.strip_prefix('{') {
            // `{…}` quotes a value that holds `;`.
            Some(inner) => inner.find('}').map_or(rest.len(), |i| i + 2),
            None => rest.find([';', '\n', '\'', '"', '`']).unwrap_or(rest.len()),
        };
        if len > 0 {
            out.push_str(MASK);
        }
        at = start + len;
    }
    out
}

impl Pool {
    fn slot(&self, name: &str) -> Arc<tokio::sync::Mutex<Slot>> {
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        slots.entry(name.to_owned()).or_default().clone()
    }

    /// Runs one attempt of a query on connection `name`.
    #[allow(clippy::too_many_arguments)] // one attempt's whole input, kept flat on purpose
    pub async fn run(
        &self,
        name: &str,
        connection_string: &str,
        database: Option<&str>,
        query: &str,
        args: &[Value],
        timeout: Option<Duration>,
        cancel: &CancellationToken,
        messages: &Messages,
    ) -> (Attempt, Option<Results>) {
        let slot = self.slot(name);
        let work = async {
            let mut slot = slot.lock().await;
            let outcome = attempt(
                messages,
                &mut slot,
                connection_string,
                database,
                query,
                args,
            )
            .await;
            if outcome.is_err() {
                // A broken session is not reused; the next attempt opens a new one.
                if let Err(Failed {
                    reason: Failure::Sql { .. },
                    ..
                }) = &outcome
                {
                } else {
                    slot.client = None;
                }
            }
            outcome
        };
        let limit = async {
            match timeout {
                Some(t) => tokio::time::sleep(t).await,
                None => std::future::pending().await,
            }
        };
        let result = tokio::select! {
            r = work => r,
            () = limit => {
                // Dropping the work dropped the query; close the session it was running on.
                slot.lock().await.client = None;
                Err(Failed::new(Failure::Timeout, format!(
                    "timed out after {}; the query was cancelled and its connection closed",
                    humantime::format_duration(timeout.unwrap_or_default())
                )))
            }
            () = cancel.cancelled() => {
                slot.lock().await.client = None;
                Err(Failed::new(Failure::Error, "cancelled".to_owned()))
            }
        };
        match result {
            Ok(results) => (Attempt::default(), Some(results)),
            Err(Failed { reason, message }) => (
                Attempt::failed(reason, redact(&message, connection_string)),
                None,
            ),
        }
    }
}

async fn attempt(
    messages: &Messages,
    slot: &mut Slot,
    connection_string: &str,
    database: Option<&str>,
    query: &str,
    args: &[Value],
) -> Result<Results, Failed> {
    if slot.client.is_none() {
        let client = connect(connection_string).await?;
        slot.client = Some(client);
        slot.database = describe(connection_string).1;
    }
    let Some(client) = slot.client.as_mut() else {
        return Err(Failed::new(Failure::Connect, "no connection".to_owned()));
    };
    // Each step runs in the database it asks for, or the connection's own.
    let wanted = database
        .map(str::to_owned)
        .or_else(|| describe(connection_string).1);
    if let Some(db) = wanted
        && slot.database.as_deref() != Some(db.as_str())
    {
        let switch = format!("USE {}", crate::template::sql_ident(db.clone()));
        client
            .simple_query(switch)
            .await
            .map_err(query_error)?
            .into_results()
            .await
            .map_err(query_error)?;
        slot.database = Some(db);
    }
    // Only the query's own messages: not what the server says at login or on `USE`.
    let messages = messages.clone();
    super::sql_messages::CURRENT
        .scope(messages, execute(client, query, args))
        .await
        .map_err(query_error)
}

async fn connect(connection_string: &str) -> Result<Connection, Failed> {
    let mut config = Config::from_ado_string(connection_string)
        .map_err(|e| Failed::new(Failure::Error, format!("invalid connection string: {e}")))?;
    let lower = connection_string.to_ascii_lowercase();
    if !lower.contains("application name") && !lower.contains("applicationname") {
        config.application_name("runbook");
    }
    let addr = config.get_addr();
    let tcp = TcpStream::connect(&addr)
        .await
        .map_err(|e| Failed::new(Failure::Connect, format!("cannot connect to {addr}: {e}")))?;
    let _ = tcp.set_nodelay(true);
    Client::connect(config, tcp.compat_write())
        .await
        .map_err(|e| {
            let message = match &e {
                tiberius::error::Error::Server(token) => format!(
                    "SQL error {} (severity {}): {}",
                    token.code(),
                    token.class(),
                    token.message()
                ),
                other => other.to_string(),
            };
            Failed::new(
                Failure::Connect,
                format!("cannot log in to {addr}: {message}"),
            )
        })
}

fn query_error(e: tiberius::error::Error) -> Failed {
    match &e {
        tiberius::error::Error::Server(token) => Failed::new(
            Failure::Sql {
                number: i64::from(token.code()),
            },
            format!(
                "SQL error {} (severity {}, state {}, line {}): {}",
                token.code(),
                token.class(),
                token.state(),
                token.line(),
                token.message()
            ),
        ),
        tiberius::error::Error::Io { .. } => {
            Failed::new(Failure::Connect, format!("connection lost: {e}"))
        }
        other => Failed::new(Failure::Error, other.to_string()),
    }
}

/// `@P1 nvarchar(max), @P2 bigint, …` for sp_executesql.
fn declarations(args: &[Value]) -> String {
    args.iter()
        .enumerate()
        .map(|(i, a)| {
            let ty = match a {
                Value::Bool(_) => "bit",
                Value::Number(n) if n.is_i64() || n.is_u64() => "bigint",
                Value::Number(_) => "float",
                _ => "nvarchar(max)",
            };
            format!("@P{} {ty}", i + 1)
        })
        .collect::<Vec<_>>()
        .join(",")
}

async fn execute(
    client: &mut Connection,
    query: &str,
    args: &[Value],
) -> tiberius::Result<Results> {
    let mut command = Command::new("sp_executesql");
    command.bind_param("@stmt", query.to_owned());
    if !args.is_empty() {
        command.bind_param("@params", declarations(args));
    }
    for (i, arg) in args.iter().enumerate() {
        let name = format!("@P{}", i + 1);
        match arg {
            Value::Null => command.bind_param(name, Option::<String>::None),
            Value::Bool(b) => command.bind_param(name, *b),
            Value::Number(n) => match n.as_i64() {
                Some(i) => command.bind_param(name, i),
                None => command.bind_param(name, n.as_f64().unwrap_or_default()),
            },
            Value::String(s) => command.bind_param(name, s.clone()),
            other => command.bind_param(name, other.to_string()),
        }
    }
    let result = command.exec(client).await?.into_command_result().await?;
    let mut result_sets = Vec::new();
    let mut index = 0;
    while let Some(rows) = result.to_query_result(index) {
        result_sets.push(rows.iter().map(row_map).collect());
        index += 1;
    }
    Ok(Results {
        result_sets,
        rows_affected: result.rows_affected().iter().sum(),
    })
}

fn row_map(row: &tiberius::Row) -> Map<String, Value> {
    row.cells()
        .map(|(column, data)| (column.name().to_owned(), cell(data)))
        .collect()
}

/// A value as templates see it: numbers, strings, bools and null as themselves; decimals as
/// strings (no precision is lost); dates and times as ISO 8601; GUIDs as strings; binary as hex.
fn cell(data: &ColumnData<'static>) -> Value {
    use tiberius::time::chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime};
    let iso = |v: Option<String>| v.map_or(Value::Null, Value::String);
    match data {
        ColumnData::U8(v) => v.map_or(Value::Null, Value::from),
        ColumnData::I16(v) => v.map_or(Value::Null, Value::from),
        ColumnData::I32(v) => v.map_or(Value::Null, Value::from),
        ColumnData::I64(v) => v.map_or(Value::Null, Value::from),
        ColumnData::F32(v) => v.map_or(Value::Null, |f| Value::from(f64::from(f))),
        ColumnData::F64(v) => v.map_or(Value::Null, Value::from),
        ColumnData::Bit(v) => v.map_or(Value::Null, Value::Bool),
        ColumnData::String(v) => v
            .as_ref()
            .map_or(Value::Null, |s| Value::String(s.to_string())),
        ColumnData::Guid(v) => v.map_or(Value::Null, |g| Value::String(g.to_string())),
        ColumnData::Binary(v) => v.as_ref().map_or(Value::Null, |b| {
            Value::String(b.iter().map(|x| format!("{x:02x}")).collect())
        }),
        // tiberius writes a scale of 0 as `12.0`; SQL Server shows numeric(25,0) as `12`.
        ColumnData::Numeric(v) => v.map_or(Value::Null, |n| {
            Value::String(if n.scale() == 0 {
                n.value().to_string()
            } else {
                n.to_string()
            })
        }),
        ColumnData::Xml(v) => v
            .as_ref()
            .map_or(Value::Null, |x| Value::String(x.to_string())),
        ColumnData::Date(_) => iso(NaiveDate::from_sql(data)
            .ok()
            .flatten()
            .map(|d| d.to_string())),
        ColumnData::Time(_) => iso(NaiveTime::from_sql(data)
            .ok()
            .flatten()
            .map(|t| t.to_string())),
        ColumnData::DateTimeOffset(_) => iso(DateTime::<FixedOffset>::from_sql(data)
            .ok()
            .flatten()
            .map(|d| {
                format!(
                    "{}{}",
                    d.naive_local().to_string().replacen(' ', "T", 1),
                    d.offset()
                )
            })),
        ColumnData::DateTime(_) | ColumnData::SmallDateTime(_) | ColumnData::DateTime2(_) => {
            iso(NaiveDateTime::from_sql(data)
                .ok()
                .flatten()
                .map(|d| d.to_string().replacen(' ', "T", 1)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{password_values, redact};

    #[test]
    fn password_values_are_masked_where_a_message_quotes_a_connection_string() {
        assert_eq!(
            password_values("cannot use 'server=s;Password=hunter2;PWD = {a;b}' (pwd=x)"),
            // Up to the next `;`, quote or line end: a `)` may be part of a password.
            "cannot use 'server=s;Password=***;PWD = ***' (pwd=***"
        );
        // Not a key: a word that merely ends in `pwd`, or prose.
        assert_eq!(
            password_values("oldpwd=1 password is wrong"),
            "oldpwd=1 password is wrong"
        );
    }

    #[test]
    fn a_short_password_is_not_searched_for_a_long_one_is() {
        let short = "server=s;password=a";
        assert_eq!(
            redact("cannot connect as sa", short),
            "cannot connect as sa"
        );
        let long = "server=s;password=hunter22";
        assert_eq!(redact("bad secret hunter22", long), "bad secret ***");
    }
}
