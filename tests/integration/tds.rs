//! A small TDS (SQL Server wire protocol) server for tests: SQL Server cannot run on the
//! test machines, so the real `tiberius` client talks to this instead over 127.0.0.1.
//!
//! It speaks just enough TDS 7.4 for tiberius without TLS: PRELOGIN, LOGIN7 with a SQL
//! login, SQL batches and `sp_executesql` RPCs (whose parameters are decoded), and
//! answers each request with whatever the test's handler returns. One std thread per
//! connection; any I/O error (a client that went away) just ends that thread.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use tiberius::Uuid;
use tiberius::time::chrono::{NaiveDate, NaiveDateTime, NaiveTime};

pub struct Server {
    addr: SocketAddr,
    shared: Arc<Shared>,
}

/// What the client sent: an SQL batch, or an RPC `sp_executesql` (its @stmt text and the
/// bound parameters @P1.. in order).
#[derive(Clone, Debug)]
pub struct Request {
    pub sql: String,
    /// Values of @P1, @P2, ... decoded from the RPC (empty for a plain batch).
    pub params: Vec<Value>,
    /// Current database of the connection: from LOGIN7 ("master" if none), or a `USE x`.
    pub database: String,
    pub user: String,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    String(String),
    /// e.g. "12.3400": sent as DECIMAL(18 or more, digits after the point).
    Decimal(String),
    /// "2026-11-26": DATE.
    Date(String),
    /// "2026-11-26T09:30:15.1234567": DATETIME2(7).
    DateTime(String),
    /// "6f9619ff-8b86-d011-b42d-00c04fc964ff": UNIQUEIDENTIFIER.
    Guid(String),
    /// VARBINARY(8000), or VARBINARY(MAX) when a value is longer.
    Binary(Vec<u8>),
}

#[derive(Clone, Debug)]
pub enum Reply {
    /// One result set. Each column's TDS type comes from its first non-null value (all
    /// null: NVARCHAR); strings longer than 4000 characters make it NVARCHAR(MAX).
    Rows {
        columns: Vec<String>,
        rows: Vec<Vec<Value>>,
    },
    /// DONE with a row count (DONE_COUNT set).
    Done { rows_affected: u64 },
    /// An INFO token (what PRINT and RESTORE progress messages are).
    Info { number: i32, message: String },
    /// An ERROR token followed by a DONE with the error bit.
    Error {
        number: i32,
        severity: u8,
        state: u8,
        line: u32,
        message: String,
    },
    /// Sleep before sending the next reply. What was replied so far is sent first. The
    /// client may drop the connection meanwhile (ends it quietly) or send an ATTENTION
    /// (the rest of the replies is dropped and the cancel acknowledged).
    Delay(Duration),
    /// Closes the connection without answering further: what the client sees when the
    /// network drops after the server did the work.
    Disconnect,
}

type Handler = dyn Fn(&Request) -> Vec<Reply> + Send + Sync;

struct Shared {
    password: String,
    handler: Box<Handler>,
    stop: AtomicBool,
    logins: AtomicUsize,
    active: AtomicUsize,
    requests: Mutex<Vec<String>>,
}

impl Server {
    /// Starts listening on 127.0.0.1:0. Any user name is accepted with `password`; a wrong
    /// password gets ERROR 18456 and the connection is closed. Every SQL batch / RPC calls
    /// `handler`, which returns the replies in order.
    pub fn start<F>(password: &str, handler: F) -> Server
    where
        F: Fn(&Request) -> Vec<Reply> + Send + Sync + 'static,
    {
        Self::start_at("127.0.0.1", password, handler)
    }

    /// As [`Server::start`], listening on another loopback address (`127.0.0.2`, …), so that
    /// servers of one estate have addresses of their own as real SQL Servers have names.
    pub fn start_at<F>(ip: &str, password: &str, handler: F) -> Server
    where
        F: Fn(&Request) -> Vec<Reply> + Send + Sync + 'static,
    {
        let listener = TcpListener::bind((ip, 0)).expect("bind the TDS test server");
        let addr = listener.local_addr().expect("TDS test server address");
        let shared = Arc::new(Shared {
            password: password.to_string(),
            handler: Box::new(handler),
            stop: AtomicBool::new(false),
            logins: AtomicUsize::new(0),
            active: AtomicUsize::new(0),
            requests: Mutex::new(Vec::new()),
        });
        let accepting = Arc::clone(&shared);
        thread::spawn(move || {
            for stream in listener.incoming() {
                if accepting.stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let shared = Arc::clone(&accepting);
                shared.active.fetch_add(1, Ordering::SeqCst);
                thread::spawn(move || {
                    let _active = ActiveGuard(&shared);
                    // Any error means the client is gone or broke the protocol: just stop.
                    let _ = serve(stream, &shared);
                });
            }
        });
        Server { addr, shared }
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// An ADO.NET connection string for this server. `encrypt=DANGER_PLAINTEXT` is the
    /// only value that makes tiberius skip TLS entirely: `encrypt=false` still wants TLS
    /// for the login when the server does not support encryption at all.
    pub fn connection_string(&self, password: &str) -> String {
        format!(
            "server=tcp:{},{};user id=sa;password={};encrypt=DANGER_PLAINTEXT",
            self.addr.ip(),
            self.port(),
            ado_quote(password)
        )
    }

    /// How many logins succeeded so far.
    pub fn logins(&self) -> usize {
        self.shared.logins.load(Ordering::SeqCst)
    }

    /// How many client connections are still open (their threads still running).
    pub fn active_connections(&self) -> usize {
        self.shared.active.load(Ordering::SeqCst)
    }

    /// Every request's SQL text received so far, in order.
    pub fn requests(&self) -> Vec<String> {
        lock(&self.shared.requests).clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop up so it sees the flag.
        let _ = TcpStream::connect(self.addr);
    }
}

struct ActiveGuard<'a>(&'a Shared);

impl Drop for ActiveGuard<'_> {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A handler that panicked must not take every later `requests()` call down with it.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn ado_quote(value: &str) -> String {
    let plain =
        !value.is_empty() && value.trim() == value && !value.contains([';', '\'', '"', '{', '}']);
    if plain {
        value.to_string()
    } else {
        format!("\"{}\"", value.replace('"', "\"\""))
    }
}

// Packet types (MS-TDS 2.2.3.1.1).
const BATCH: u8 = 0x01;
const RPC: u8 = 0x03;
const REPLY: u8 = 0x04;
const ATTENTION: u8 = 0x06;
const LOGIN7: u8 = 0x10;
const PRELOGIN: u8 = 0x12;

const PACKET_SIZE: usize = 4096;

// DONE status bits.
const DONE_MORE: u16 = 0x01;
const DONE_ERROR: u16 = 0x02;
const DONE_COUNT: u16 = 0x10;
const DONE_ATTN: u16 = 0x20;

// Token types.
const DONE: u8 = 0xFD;
const DONEPROC: u8 = 0xFE;
const DONEINPROC: u8 = 0xFF;

struct Conn {
    stream: TcpStream,
    packet_id: u8,
}

impl Conn {
    /// One whole message (packets reassembled up to end-of-message); `None` at EOF.
    fn read_message(&mut self) -> io::Result<Option<(u8, Vec<u8>)>> {
        let mut payload = Vec::new();
        loop {
            let mut header = [0u8; 8];
            match self.stream.read_exact(&mut header) {
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof && payload.is_empty() => {
                    return Ok(None);
                }
                other => other?,
            }
            let length = usize::from(u16::from_be_bytes([header[2], header[3]]));
            let mut body = vec![0u8; length.saturating_sub(8)];
            self.stream.read_exact(&mut body)?;
            payload.extend_from_slice(&body);
            if header[1] & 0x01 != 0 {
                return Ok(Some((header[0], payload)));
            }
        }
    }

    /// Sends `tokens` as reply packets; only the packet ending a message gets EOM.
    fn send(&mut self, tokens: &[u8], end_of_message: bool) -> io::Result<()> {
        if tokens.is_empty() && !end_of_message {
            return Ok(());
        }
        let chunks: Vec<&[u8]> = if tokens.is_empty() {
            vec![&[]]
        } else {
            tokens.chunks(PACKET_SIZE - 8).collect()
        };
        let mut out = Vec::with_capacity(tokens.len() + 8 * chunks.len());
        for (i, chunk) in chunks.iter().enumerate() {
            let last = end_of_message && i + 1 == chunks.len();
            self.packet_id = self.packet_id.wrapping_add(1);
            out.extend_from_slice(&[REPLY, u8::from(last)]);
            out.extend_from_slice(&((chunk.len() + 8) as u16).to_be_bytes());
            out.extend_from_slice(&[0, 1, self.packet_id, 0]);
            out.extend_from_slice(chunk);
        }
        self.stream.write_all(&out)?;
        self.stream.flush()
    }

    /// Sleeps for `delay`, unless the client sends an ATTENTION first (`Ok(true)`).
    fn wait(&mut self, delay: Duration) -> io::Result<bool> {
        let deadline = Instant::now() + delay;
        let attention = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break false;
            }
            self.stream.set_read_timeout(Some(left))?;
            match self.stream.peek(&mut [0u8; 1]) {
                Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
                Ok(_) => break true,
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) => {}
                Err(e) => return Err(e),
            }
        };
        self.stream.set_read_timeout(None)?;
        if attention {
            match self.read_message()? {
                Some((ATTENTION, _)) => {}
                _ => return Err(io::ErrorKind::InvalidData.into()),
            }
        }
        Ok(attention)
    }
}

struct Session {
    user: String,
    database: String,
}

fn serve(stream: TcpStream, shared: &Shared) -> io::Result<()> {
    stream.set_nodelay(true)?;
    let mut conn = Conn {
        stream,
        packet_id: 0,
    };
    let Some(mut session) = handshake(&mut conn, shared)? else {
        return Ok(());
    };
    while let Some((kind, payload)) = conn.read_message()? {
        let mut out = Vec::new();
        let request = match kind {
            BATCH => parse_batch(&payload),
            RPC => parse_rpc(&payload),
            // The cancelled request had already been answered in full.
            ATTENTION => {
                put_done(&mut out, DONE, DONE_ATTN, 0);
                conn.send(&out, true)?;
                continue;
            }
            other => Err(format!("unsupported packet type 0x{other:02x}")),
        };
        let (sql, params) = match request {
            Ok(request) => request,
            Err(message) => {
                put_message(&mut out, 0xAA, 50000, 1, 16, &fixture_message(&message), 1);
                put_done(&mut out, DONE, DONE_ERROR, 0);
                conn.send(&out, true)?;
                continue;
            }
        };
        lock(&shared.requests).push(sql.clone());
        let request = Request {
            sql,
            params,
            database: session.database.clone(),
            user: session.user.clone(),
        };
        let replies = (shared.handler)(&request);
        if let Some(database) = use_target(&request.sql)
            && !replies.iter().any(|r| matches!(r, Reply::Error { .. }))
        {
            put_env_change(&mut out, 1, &database, &session.database);
            session.database = database;
        }
        respond(&mut conn, out, &replies, kind == RPC)?;
    }
    Ok(())
}

/// PRELOGIN and LOGIN7. `None` when the login was refused (and the client told so).
fn handshake(conn: &mut Conn, shared: &Shared) -> io::Result<Option<Session>> {
    let Some((PRELOGIN, _)) = conn.read_message()? else {
        return Ok(None);
    };
    conn.send(&prelogin_response(), true)?;

    let Some((LOGIN7, login)) = conn.read_message()? else {
        return Ok(None);
    };
    let user = login_field(&login, 1, false);
    let password = login_field(&login, 2, true);
    let mut database = login_field(&login, 8, false);
    if database.is_empty() {
        database = "master".to_string();
    }

    let mut out = Vec::new();
    if password != shared.password {
        let message = format!("Login failed for user '{user}'.");
        put_message(&mut out, 0xAA, 18456, 1, 14, &message, 1);
        put_done(&mut out, DONE, DONE_ERROR, 0);
        conn.send(&out, true)?;
        return Ok(None);
    }
    put_env_change(&mut out, 1, &database, "master");
    put_login_ack(&mut out);
    put_env_change(
        &mut out,
        4,
        &PACKET_SIZE.to_string(),
        &PACKET_SIZE.to_string(),
    );
    put_done(&mut out, DONE, 0, 0);
    // Counted before the client hears of it: a client that has logged in must never see the
    // count without its login (a race under load).
    shared.logins.fetch_add(1, Ordering::SeqCst);
    conn.send(&out, true)?;
    Ok(Some(Session { user, database }))
}

/// ENCRYPTION = NOT_SUP, so tiberius (with `encrypt=DANGER_PLAINTEXT`) never starts TLS.
fn prelogin_response() -> Vec<u8> {
    let options: [(u8, &[u8]); 5] = [
        (0x00, &[16, 0, 0x10, 0x00, 0, 0]), // VERSION: 16.0.4096, subbuild 0
        (0x01, &[0x02]),                    // ENCRYPTION: not supported
        (0x02, &[0x00]),                    // INSTOPT: instance accepted
        (0x03, &[]),                        // THREADID: none
        (0x04, &[0x00]),                    // MARS: off
    ];
    let mut table = Vec::new();
    let mut data = Vec::new();
    let mut offset = options.len() * 5 + 1;
    for (token, value) in options {
        table.push(token);
        table.extend_from_slice(&(offset as u16).to_be_bytes());
        table.extend_from_slice(&(value.len() as u16).to_be_bytes());
        data.extend_from_slice(value);
        offset += value.len();
    }
    table.push(0xFF);
    table.extend_from_slice(&data);
    table
}

/// One of LOGIN7's offset/length fields (MS-TDS 2.2.6.4): the table starts at byte 36,
/// lengths are in UTF-16 units; the password is obfuscated byte by byte.
fn login_field(login: &[u8], index: usize, password: bool) -> String {
    let at = 36 + 4 * index;
    let Some(entry) = login.get(at..at + 4) else {
        return String::new();
    };
    let offset = usize::from(u16::from_le_bytes([entry[0], entry[1]]));
    let length = 2 * usize::from(u16::from_le_bytes([entry[2], entry[3]]));
    let Some(bytes) = login.get(offset..offset + length) else {
        return String::new();
    };
    let bytes: Vec<u8> = if password {
        bytes.iter().map(|b| (b ^ 0xA5).rotate_left(4)).collect()
    } else {
        bytes.to_vec()
    };
    utf16(&bytes)
}

fn utf16(bytes: &[u8]) -> String {
    let units: Vec<u16> = bytes
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect();
    String::from_utf16_lossy(&units)
}

/// `USE x` (alone in the request) switches the connection's database.
fn use_target(sql: &str) -> Option<String> {
    let sql = sql.trim().trim_end_matches(';').trim_end();
    let (keyword, name) = sql.split_once(char::is_whitespace)?;
    if !keyword.eq_ignore_ascii_case("use") {
        return None;
    }
    let name = name.trim();
    let name = name
        .strip_prefix('[')
        .and_then(|n| n.strip_suffix(']'))
        .unwrap_or(name);
    Some(name.to_string())
}

fn fixture_message(message: &str) -> String {
    format!("TDS test server: {message}")
}

/// Sends the replies. In an RPC the statements end with DONEINPROC, and the procedure
/// with RETURNSTATUS + DONEPROC, as SQL Server does for `sp_executesql`. Every DONE but
/// the last one has DONE_MORE; a DONE is only written once it is known whether more
/// follows.
fn respond(conn: &mut Conn, mut out: Vec<u8>, replies: &[Reply], rpc: bool) -> io::Result<()> {
    let done_token = if rpc { DONEINPROC } else { DONE };
    let mut pending: Option<(u16, u64)> = None;
    let flush_pending = |out: &mut Vec<u8>, pending: &mut Option<(u16, u64)>| {
        if let Some((status, count)) = pending.take() {
            put_done(out, done_token, status | DONE_MORE, count);
        }
    };
    for reply in replies {
        match reply {
            Reply::Rows { columns, rows } => {
                flush_pending(&mut out, &mut pending);
                let mut tokens = Vec::new();
                match put_rows(&mut tokens, columns, rows) {
                    Ok(()) => {
                        out.extend_from_slice(&tokens);
                        pending = Some((DONE_COUNT, rows.len() as u64));
                    }
                    Err(message) => {
                        put_message(&mut out, 0xAA, 50000, 1, 16, &fixture_message(&message), 1);
                        pending = Some((DONE_ERROR, 0));
                    }
                }
            }
            Reply::Done { rows_affected } => {
                flush_pending(&mut out, &mut pending);
                pending = Some((DONE_COUNT, *rows_affected));
            }
            Reply::Info { number, message } => {
                flush_pending(&mut out, &mut pending);
                put_message(&mut out, 0xAB, *number, 1, 0, message, 1);
            }
            Reply::Error {
                number,
                severity,
                state,
                line,
                message,
            } => {
                flush_pending(&mut out, &mut pending);
                put_message(&mut out, 0xAA, *number, *state, *severity, message, *line);
                pending = Some((DONE_ERROR, 0));
            }
            Reply::Disconnect => {
                conn.stream.shutdown(std::net::Shutdown::Both)?;
                return Err(io::Error::new(
                    io::ErrorKind::ConnectionAborted,
                    "disconnected",
                ));
            }
            Reply::Delay(delay) => {
                conn.send(&out, false)?;
                out.clear();
                if conn.wait(*delay)? {
                    put_done(&mut out, DONE, DONE_ATTN, 0);
                    return conn.send(&out, true);
                }
            }
        }
    }
    if rpc {
        flush_pending(&mut out, &mut pending);
        out.push(0x79); // RETURNSTATUS
        out.extend_from_slice(&0i32.to_le_bytes());
        put_done(&mut out, DONEPROC, 0, 0);
    } else {
        let (status, count) = pending.unwrap_or((0, 0));
        put_done(&mut out, DONE, status, count);
    }
    conn.send(&out, true)
}

fn put_done(out: &mut Vec<u8>, token: u8, status: u16, count: u64) {
    out.push(token);
    out.extend_from_slice(&status.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes()); // current command
    out.extend_from_slice(&count.to_le_bytes());
}

fn put_b_varchar(out: &mut Vec<u8>, text: &str) {
    let units: Vec<u16> = text.encode_utf16().take(255).collect();
    out.push(units.len() as u8);
    units
        .iter()
        .for_each(|u| out.extend_from_slice(&u.to_le_bytes()));
}

fn put_us_varchar(out: &mut Vec<u8>, text: &str) {
    let units: Vec<u16> = text.encode_utf16().take(usize::from(u16::MAX)).collect();
    out.extend_from_slice(&(units.len() as u16).to_le_bytes());
    units
        .iter()
        .for_each(|u| out.extend_from_slice(&u.to_le_bytes()));
}

/// ERROR (0xAA) or INFO (0xAB).
fn put_message(
    out: &mut Vec<u8>,
    token: u8,
    number: i32,
    state: u8,
    class: u8,
    message: &str,
    line: u32,
) {
    let mut body = Vec::new();
    body.extend_from_slice(&number.to_le_bytes());
    body.extend_from_slice(&[state, class]);
    put_us_varchar(&mut body, message);
    put_b_varchar(&mut body, "tds-test");
    put_b_varchar(&mut body, "");
    body.extend_from_slice(&line.to_le_bytes());
    out.push(token);
    out.extend_from_slice(&(body.len() as u16).to_le_bytes());
    out.extend_from_slice(&body);
}

/// ENVCHANGE with a B_VARCHAR new and old value (database = 1, packet size = 4).
fn put_env_change(out: &mut Vec<u8>, kind: u8, new: &str, old: &str) {
    let mut body = vec![kind];
    put_b_varchar(&mut body, new);
    put_b_varchar(&mut body, old);
    out.push(0xE3);
    out.extend_from_slice(&(body.len() as u16).to_le_bytes());
    out.extend_from_slice(&body);
}

fn put_login_ack(out: &mut Vec<u8>) {
    let mut body = vec![1]; // interface: T-SQL
    body.extend_from_slice(&0x7400_0004u32.to_be_bytes()); // TDS 7.4
    put_b_varchar(&mut body, "Microsoft SQL Server");
    body.extend_from_slice(&[16, 0, 0x10, 0x00]);
    out.push(0xAD);
    out.extend_from_slice(&(body.len() as u16).to_le_bytes());
    out.extend_from_slice(&body);
}

/// The TDS type a result column is sent as.
#[derive(Clone, Copy, Debug)]
enum Column {
    Int,
    Float,
    Bool,
    Text { max: bool },
    Decimal { precision: u8, scale: u8 },
    Date,
    DateTime,
    Guid,
    Bytes { max: bool },
}

// Latin1_General_CI_AS; NVARCHAR data is UTF-16 whatever the collation says.
const COLLATION: [u8; 5] = [0x09, 0x04, 0xD0, 0x00, 0x34];

fn put_rows(out: &mut Vec<u8>, names: &[String], rows: &[Vec<Value>]) -> Result<(), String> {
    if let Some(row) = rows.iter().find(|row| row.len() != names.len()) {
        return Err(format!(
            "a row has {} values for {} columns",
            row.len(),
            names.len()
        ));
    }
    let columns = (0..names.len())
        .map(|i| column_type(rows.iter().map(|row| &row[i])))
        .collect::<Result<Vec<_>, _>>()?;

    out.push(0x81); // COLMETADATA
    out.extend_from_slice(&(names.len() as u16).to_le_bytes());
    for (name, column) in names.iter().zip(&columns) {
        out.extend_from_slice(&0u32.to_le_bytes()); // user type
        out.extend_from_slice(&0x0001u16.to_le_bytes()); // nullable
        put_type_info(out, *column);
        put_b_varchar(out, name);
    }
    for row in rows {
        out.push(0xD1); // ROW
        for ((value, column), name) in row.iter().zip(&columns).zip(names) {
            put_value(out, *column, value).map_err(|e| format!("column {name:?}: {e}"))?;
        }
    }
    Ok(())
}

fn column_type<'a>(mut values: impl Iterator<Item = &'a Value> + Clone) -> Result<Column, String> {
    let all = values.clone();
    let first = values.find(|v| **v != Value::Null);
    Ok(match first {
        None | Some(Value::Null | Value::String(_)) => Column::Text {
            max: all
                .clone()
                .any(|v| matches!(v, Value::String(s) if s.encode_utf16().count() > 4000)),
        },
        Some(Value::Bool(_)) => Column::Bool,
        Some(Value::Int(_)) => Column::Int,
        Some(Value::Float(_)) => Column::Float,
        Some(Value::Decimal(_)) => {
            let decimals = all
                .filter_map(|v| match v {
                    Value::Decimal(d) => Some(parse_decimal(d)),
                    _ => None,
                })
                .collect::<Result<Vec<_>, _>>()?;
            let scale = decimals.iter().map(|d| d.2).max().unwrap_or(0);
            let digits = decimals
                .iter()
                .map(|&d| rescale(d, scale).map(|(_, m, _)| m.to_string().len() as u8))
                .collect::<Result<Vec<_>, _>>()?;
            let precision = digits.into_iter().chain([18, scale]).max().unwrap_or(18);
            if precision > 38 {
                return Err("a decimal needs more than 38 digits".to_string());
            }
            Column::Decimal { precision, scale }
        }
        Some(Value::Date(_)) => Column::Date,
        Some(Value::DateTime(_)) => Column::DateTime,
        Some(Value::Guid(_)) => Column::Guid,
        Some(Value::Binary(_)) => Column::Bytes {
            max: all
                .clone()
                .any(|v| matches!(v, Value::Binary(b) if b.len() > 8000)),
        },
    })
}

fn put_type_info(out: &mut Vec<u8>, column: Column) {
    let max_or = |max: bool, len: u16| if max { 0xFFFFu16 } else { len }.to_le_bytes();
    match column {
        Column::Int => out.extend_from_slice(&[0x26, 8]),
        Column::Float => out.extend_from_slice(&[0x6D, 8]),
        Column::Bool => out.extend_from_slice(&[0x68, 1]),
        Column::Text { max } => {
            out.push(0xE7);
            out.extend_from_slice(&max_or(max, 8000));
            out.extend_from_slice(&COLLATION);
        }
        Column::Decimal { precision, scale } => {
            out.extend_from_slice(&[0x6A, 17, precision, scale])
        }
        Column::Date => out.push(0x28),
        Column::DateTime => out.extend_from_slice(&[0x2A, 7]),
        Column::Guid => out.extend_from_slice(&[0x24, 16]),
        Column::Bytes { max } => {
            out.push(0xA5);
            out.extend_from_slice(&max_or(max, 8000));
        }
    }
}

fn put_value(out: &mut Vec<u8>, column: Column, value: &Value) -> Result<(), String> {
    match (column, value) {
        (Column::Text { max } | Column::Bytes { max }, Value::Null) => {
            if max {
                out.extend_from_slice(&u64::MAX.to_le_bytes());
            } else {
                out.extend_from_slice(&0xFFFFu16.to_le_bytes());
            }
        }
        (_, Value::Null) => out.push(0),
        (Column::Int, Value::Int(i)) => {
            out.push(8);
            out.extend_from_slice(&i.to_le_bytes());
        }
        (Column::Float, Value::Float(f)) => {
            out.push(8);
            out.extend_from_slice(&f.to_le_bytes());
        }
        (Column::Bool, Value::Bool(b)) => out.extend_from_slice(&[1, u8::from(*b)]),
        (Column::Text { max }, Value::String(s)) => {
            let bytes: Vec<u8> = s.encode_utf16().flat_map(u16::to_le_bytes).collect();
            put_var_bytes(out, max, &bytes);
        }
        (Column::Bytes { max }, Value::Binary(b)) => put_var_bytes(out, max, b),
        (Column::Decimal { scale, .. }, Value::Decimal(d)) => {
            let (negative, magnitude, _) = rescale(parse_decimal(d)?, scale)?;
            out.extend_from_slice(&[17, u8::from(!negative)]);
            out.extend_from_slice(&magnitude.to_le_bytes());
        }
        (Column::Date, Value::Date(d)) => {
            out.push(3);
            out.extend_from_slice(&days_since_year_one(parse_date(d)?)?);
        }
        (Column::DateTime, Value::DateTime(dt)) => {
            let dt = NaiveDateTime::parse_from_str(dt, "%Y-%m-%dT%H:%M:%S%.f")
                .or_else(|_| NaiveDateTime::parse_from_str(dt, "%Y-%m-%d %H:%M:%S%.f"))
                .map_err(|e| format!("bad datetime {dt:?}: {e}"))?;
            let ticks = dt
                .time()
                .signed_duration_since(NaiveTime::MIN)
                .num_nanoseconds()
                .unwrap_or(0)
                / 100;
            out.push(8);
            out.extend_from_slice(&ticks.to_le_bytes()[..5]);
            out.extend_from_slice(&days_since_year_one(dt.date())?);
        }
        (Column::Guid, Value::Guid(g)) => {
            let uuid = Uuid::parse_str(g).map_err(|e| format!("bad guid {g:?}: {e}"))?;
            out.push(16);
            out.extend_from_slice(&guid_wire_order(*uuid.as_bytes()));
        }
        (column, value) => return Err(format!("{value:?} in a column of {column:?}")),
    }
    Ok(())
}

/// A 2-byte length, or for a (MAX) column a PLP: total length, one chunk, terminator.
fn put_var_bytes(out: &mut Vec<u8>, max: bool, bytes: &[u8]) {
    if max {
        out.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
        if !bytes.is_empty() {
            out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
            out.extend_from_slice(bytes);
        }
        out.extend_from_slice(&0u32.to_le_bytes());
    } else {
        out.extend_from_slice(&(bytes.len() as u16).to_le_bytes());
        out.extend_from_slice(bytes);
    }
}

/// SQL Server stores the first three GUID groups little-endian; swapping is its own inverse.
fn guid_wire_order(mut bytes: [u8; 16]) -> [u8; 16] {
    bytes[0..4].reverse();
    bytes[4..6].reverse();
    bytes[6..8].reverse();
    bytes
}

fn year_one() -> NaiveDate {
    NaiveDate::from_ymd_opt(1, 1, 1).expect("0001-01-01 is a date")
}

fn parse_date(text: &str) -> Result<NaiveDate, String> {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|e| format!("bad date {text:?}: {e}"))
}

fn days_since_year_one(date: NaiveDate) -> Result<[u8; 3], String> {
    let days = date.signed_duration_since(year_one()).num_days();
    let days = u32::try_from(days).map_err(|_| format!("date {date} before year 1"))?;
    let [a, b, c, _] = days.to_le_bytes();
    Ok([a, b, c])
}

/// (negative, magnitude, scale): "-12.340" is (true, 12340, 3).
type Decimal = (bool, u128, u8);

fn parse_decimal(text: &str) -> Result<Decimal, String> {
    let bad = || format!("bad decimal {text:?}");
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    let all = format!("{int}{frac}");
    if all.is_empty() || !all.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let magnitude = all.parse::<u128>().map_err(|_| bad())?;
    let scale = u8::try_from(frac.len()).map_err(|_| bad())?;
    Ok((negative, magnitude, scale))
}

fn rescale((negative, magnitude, scale): Decimal, to: u8) -> Result<Decimal, String> {
    10u128
        .checked_pow(u32::from(to.saturating_sub(scale)))
        .and_then(|factor| magnitude.checked_mul(factor))
        .map(|magnitude| (negative, magnitude, to))
        .ok_or_else(|| "decimal too large".to_string())
}

fn format_decimal((negative, magnitude, scale): Decimal) -> String {
    let scale = usize::from(scale);
    let digits = format!("{magnitude:0>width$}", width = scale + 1);
    let (int, frac) = digits.split_at(digits.len() - scale);
    let sign = if negative && magnitude != 0 { "-" } else { "" };
    if frac.is_empty() {
        format!("{sign}{int}")
    } else {
        format!("{sign}{int}.{frac}")
    }
}

/// Reads a request payload; every failure is "truncated".
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let taken = self
            .bytes
            .get(self.at..self.at + n)
            .ok_or_else(|| "request truncated".to_string())?;
        self.at += n;
        Ok(taken)
    }

    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, String> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Result<u32, String> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn uint(&mut self, n: usize) -> Result<u128, String> {
        let mut wide = [0u8; 16];
        wide.get_mut(..n)
            .ok_or_else(|| format!("integer of {n} bytes"))?
            .copy_from_slice(self.take(n)?);
        Ok(u128::from_le_bytes(wide))
    }

    fn rest(&self) -> &'a [u8] {
        self.bytes.get(self.at..).unwrap_or_default()
    }

    fn skip_all_headers(&mut self) -> Result<(), String> {
        let length = self.u32()? as usize;
        self.take(length.saturating_sub(4)).map(|_| ())
    }

    /// A USHORTLEN value, or for a (MAX) type a PLP; `None` is NULL.
    fn var_bytes(&mut self, max: bool) -> Result<Option<Vec<u8>>, String> {
        if !max {
            return match self.u16()? {
                0xFFFF => Ok(None),
                length => Ok(Some(self.take(usize::from(length))?.to_vec())),
            };
        }
        if self.uint(8)? == u128::from(u64::MAX) {
            return Ok(None);
        }
        let mut bytes = Vec::new();
        loop {
            match self.u32()? {
                0 => return Ok(Some(bytes)),
                chunk => bytes.extend_from_slice(self.take(chunk as usize)?),
            }
        }
    }
}

fn parse_batch(payload: &[u8]) -> Result<(String, Vec<Value>), String> {
    let mut reader = Reader {
        bytes: payload,
        at: 0,
    };
    reader.skip_all_headers()?;
    Ok((utf16(reader.rest()), Vec::new()))
}

/// `sp_executesql` (proc id 10, or by name): @stmt is the SQL, @params (the declarations) is
/// skipped, the rest are @P1... Any other procedure becomes `EXEC name` with all params.
fn parse_rpc(payload: &[u8]) -> Result<(String, Vec<Value>), String> {
    let mut reader = Reader {
        bytes: payload,
        at: 0,
    };
    reader.skip_all_headers()?;
    let name = match reader.u16()? {
        0xFFFF => match reader.u16()? {
            10 => None,
            id => Some(format!("procedure id {id}")),
        },
        // tiberius' `Command` API names the procedure instead of using its id.
        length => Some(utf16(reader.take(2 * usize::from(length))?))
            .filter(|name| !name.eq_ignore_ascii_case("sp_executesql")),
    };
    reader.u16()?; // option flags
    let mut params = Vec::new();
    while !reader.rest().is_empty() {
        let name_length = usize::from(reader.u8()?);
        reader.take(2 * name_length)?;
        reader.u8()?; // status flags
        params.push(read_param(&mut reader)?);
    }
    match name {
        Some(name) => Ok((format!("EXEC {name}"), params)),
        None => {
            let mut params = params.into_iter();
            let Some(Value::String(sql)) = params.next() else {
                return Err("sp_executesql without a @stmt string".to_string());
            };
            Ok((sql, params.skip(1).collect()))
        }
    }
}

/// TYPE_INFO then the value, for the types tiberius binds parameters as.
fn read_param(r: &mut Reader<'_>) -> Result<Value, String> {
    let ty = r.u8()?;
    let value = match ty {
        0x1F => return Ok(Value::Null), // NULLTYPE: tiberius' `None` without a type
        // INTN, BITN, FLTN, GUID: TYPE_INFO has a max length, the value its own length.
        0x26 | 0x68 | 0x6D | 0x24 => {
            r.u8()?;
            let length = usize::from(r.u8()?);
            if length == 0 {
                return Ok(Value::Null);
            }
            let bytes = r.take(length)?;
            match (ty, length) {
                (0x26, 1) => Value::Int(i64::from(bytes[0])),
                (0x26, 2) => Value::Int(i64::from(i16::from_le_bytes([bytes[0], bytes[1]]))),
                (0x26, 4) => Value::Int(i64::from(i32::from_le_bytes([
                    bytes[0], bytes[1], bytes[2], bytes[3],
                ]))),
                (0x26, 8) => Value::Int(i64::from_le_bytes(bytes.try_into().map_err(|_| "int")?)),
                (0x68, 1) => Value::Bool(bytes[0] != 0),
                (0x6D, 4) => Value::Float(f64::from(f32::from_le_bytes(
                    bytes.try_into().map_err(|_| "real")?,
                ))),
                (0x6D, 8) => {
                    Value::Float(f64::from_le_bytes(bytes.try_into().map_err(|_| "float")?))
                }
                (0x24, 16) => {
                    let wire: [u8; 16] = bytes.try_into().map_err(|_| "guid")?;
                    Value::Guid(Uuid::from_bytes(guid_wire_order(wire)).to_string())
                }
                _ => return Err(format!("type 0x{ty:02x} with a value of {length} bytes")),
            }
        }
        // NVARCHAR: max length (0xFFFF = MAX), collation.
        0xE7 => {
            let max = r.u16()? == 0xFFFF;
            r.take(5)?;
            match r.var_bytes(max)? {
                Some(bytes) => Value::String(utf16(&bytes)),
                None => Value::Null,
            }
        }
        // VARBINARY: max length (0xFFFF = MAX).
        0xA5 => {
            let max = r.u16()? == 0xFFFF;
            r.var_bytes(max)?.map_or(Value::Null, Value::Binary)
        }
        // DECIMALN / NUMERICN: max length, precision, scale; value: length, sign, magnitude.
        0x6A | 0x6C => {
            r.u8()?;
            r.u8()?;
            let scale = r.u8()?;
            let length = usize::from(r.u8()?);
            if length == 0 {
                return Ok(Value::Null);
            }
            let negative = r.u8()? == 0;
            let magnitude = r.uint(length - 1)?;
            Value::Decimal(format_decimal((negative, magnitude, scale)))
        }
        // DATEN: 3 bytes of days since 0001-01-01.
        0x28 => match r.u8()? {
            0 => Value::Null,
            _ => Value::Date(read_date(r)?.to_string()),
        },
        // DATETIME2N: scale; value: time in 10^-scale s, then the date.
        0x2A => {
            let scale = r.u8()?;
            let length = usize::from(r.u8()?);
            if length == 0 {
                return Ok(Value::Null);
            }
            let ticks = r.uint(length.saturating_sub(3))?;
            let date = read_date(r)?;
            let ticks = ticks * 10u128.pow(7u32.saturating_sub(u32::from(scale)));
            let seconds = ticks / 10_000_000;
            Value::DateTime(format!(
                "{date}T{:02}:{:02}:{:02}.{:07}",
                seconds / 3600,
                seconds / 60 % 60,
                seconds % 60,
                ticks % 10_000_000
            ))
        }
        _ => return Err(format!("unsupported parameter type 0x{ty:02x}")),
    };
    Ok(value)
}

fn read_date(r: &mut Reader<'_>) -> Result<NaiveDate, String> {
    let days = i32::try_from(r.uint(3)?).map_err(|_| "date out of range")?;
    // Day 1 of the common era is 0001-01-01.
    NaiveDate::from_num_days_from_ce_opt(days + 1).ok_or_else(|| "date out of range".to_string())
}
