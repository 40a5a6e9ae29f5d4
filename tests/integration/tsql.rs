//! How a rehearsal SQL Server answers a batch: the batch is cut into statements, each
//! statement is recognised by its shape (the statements the Persistent Chat runbooks send,
//! and a few that older versions of them sent) and acted on against the server's model
//! (`sql_estate`). Variables, `IF`/`ELSE`, `EXEC (@sql)` of `KILL`s, procedures with named
//! arguments and temporary tables work as in T-SQL, for these shapes. A statement of no known
//! shape is refused, naming it, so a runbook that drifts from what the rehearsal knows fails
//! loudly instead of passing against a model that guessed.

use std::collections::HashMap;

use crate::log_share;
use crate::sql_error::SqlError;
use crate::sql_estate::{OWN_SPID, Schedule, SqlServer, State, stamp};
use crate::tds::{Reply, Request, Value};

/// A value of a T-SQL variable or expression.
#[derive(Clone, Debug, PartialEq)]
enum Val {
    Null,
    Str(String),
    Num(i128),
}

impl Val {
    fn text(&self) -> String {
        match self {
            Val::Null => String::new(),
            Val::Str(s) => s.clone(),
            Val::Num(n) => n.to_string(),
        }
    }

    fn number(&self) -> Result<Option<i128>, SqlError> {
        match self {
            Val::Null => Ok(None),
            Val::Num(n) => Ok(Some(*n)),
            // As CONVERT(numeric(25,0), …) reads text: digits, a fraction rounded away.
            Val::Str(s) => {
                let failed = || SqlError::ConvertFailed {
                    from: "nvarchar".to_owned(),
                    to: "numeric".to_owned(),
                };
                let (whole, fraction) = s.trim().split_once('.').unwrap_or((s.trim(), ""));
                let mut n: i128 = whole.parse().map_err(|_| failed())?;
                if !fraction.is_empty() {
                    if !fraction.bytes().all(|b| b.is_ascii_digit()) {
                        return Err(failed());
                    }
                    if fraction.as_bytes()[0] >= b'5' {
                        n += 1;
                    }
                }
                Ok(Some(n))
            }
        }
    }
}

/// Answers one request of a client of `server`; `now` is the estate's clock (UTC,
/// `YYYY-MM-DDThh:mm:ss`).
pub fn answer(server: &mut SqlServer, request: &Request, now: &str) -> Vec<Reply> {
    let params = request
        .params
        .iter()
        .map(|p| match p {
            Value::Null => Val::Null,
            Value::Int(i) => Val::Num(i128::from(*i)),
            Value::String(s) | Value::Decimal(s) | Value::Guid(s) => Val::Str(s.clone()),
            other => Val::Str(format!("{other:?}")),
        })
        .collect();
    let mut batch = Batch {
        server,
        params,
        vars: HashMap::new(),
        temp: HashMap::new(),
        replies: Vec::new(),
        now: now.to_owned(),
        chain: None,
    };
    match batch.run(&request.sql) {
        Ok(()) => {
            if batch.replies.is_empty() {
                batch.replies.push(Reply::Done { rows_affected: 0 });
            }
            batch.replies
        }
        Err(error) => {
            let mut replies = batch.replies;
            replies.extend(error.replies());
            replies
        }
    }
}

struct Batch<'a> {
    server: &'a mut SqlServer,
    params: Vec<Val>,
    vars: HashMap<String, Val>,
    /// Temporary tables: name → rows of (subdirectory, depth, file).
    temp: HashMap<String, Vec<(String, i64, i64)>>,
    replies: Vec<Reply>,
    now: String,
    /// In an `IF … ELSE IF … ELSE …` chain: whether a branch was taken.
    chain: Option<bool>,
}

/// Whitespace runs become one space.
fn normalize(sql: &str) -> String {
    sql.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Statements at the top level of a batch, split at `;` outside quotes, brackets and
/// parentheses.
fn statements(sql: &str) -> Vec<String> {
    split_top_level(sql, ';', true)
        .into_iter()
        .map(|s| normalize(&s))
        .filter(|s| !s.is_empty())
        .collect()
}

/// `text` split at `separator` outside quotes and parentheses (and brackets, with
/// `brackets`); every part as it is, the last one too.
fn split_top_level(text: &str, separator: char, brackets: bool) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let (mut quote, mut depth) = (false, 0i32);
    for ch in text.chars() {
        match ch {
            '\'' => quote = !quote,
            '(' if !quote => depth += 1,
            ')' if !quote => depth -= 1,
            '[' if !quote && brackets => depth += 1,
            ']' if !quote && brackets => depth -= 1,
            _ if ch == separator && !quote && depth == 0 => {
                out.push(std::mem::take(&mut current));
                continue;
            }
            _ => {}
        }
        current.push(ch);
    }
    out.push(current);
    out
}

/// The index of the `)` closing the `(` at `open`.
fn closing(text: &str, open: usize) -> Option<usize> {
    let (mut depth, mut quote) = (0, false);
    for (i, ch) in text.char_indices().skip_while(|(i, _)| *i < open) {
        match ch {
            '\'' => quote = !quote,
            '(' if !quote => depth += 1,
            ')' if !quote => {
                depth -= 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
    }
    None
}

/// Splits at top-level commas.
fn split_commas(text: &str) -> Vec<String> {
    let mut out: Vec<String> = split_top_level(text, ',', false)
        .iter()
        .map(|part| part.trim().to_owned())
        .collect();
    // A trailing comma, or nothing at all, leaves no empty last argument.
    if out.last().is_some_and(String::is_empty) {
        out.pop();
    }
    out
}

fn ident(text: &str) -> String {
    text.trim()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned()
}

fn re(pattern: &str) -> regex::Regex {
    regex::Regex::new(&format!("(?i)^{pattern}$")).expect("a valid pattern")
}

fn caps<'t>(pattern: &str, text: &'t str) -> Option<Vec<&'t str>> {
    re(pattern).captures(text).map(|c| {
        c.iter()
            .skip(1)
            .map(|m| m.map_or("", |m| m.as_str()))
            .collect()
    })
}

/// A result set.
fn rows(columns: &[&str], rows: Vec<Vec<Value>>) -> Reply {
    Reply::Rows {
        columns: columns.iter().map(|c| (*c).to_owned()).collect(),
        rows,
    }
}

fn opt(value: Option<String>) -> Value {
    value.map_or(Value::Null, Value::String)
}

fn lsn(value: Option<u128>) -> Value {
    value.map_or(Value::Null, |l| Value::Decimal(l.to_string()))
}

impl Batch<'_> {
    fn run(&mut self, sql: &str) -> Result<(), SqlError> {
        for statement in statements(sql) {
            self.statement(&statement)?;
        }
        Ok(())
    }

    fn statement(&mut self, s: &str) -> Result<(), SqlError> {
        let upper = s.to_ascii_uppercase();
        if let Some(rest) = upper.strip_prefix("ELSE ").map(|_| &s[5..]) {
            let Some(taken) = self.chain else {
                return Err(SqlError::NotModelled {
                    statement: s.to_owned(),
                });
            };
            if taken {
                return Ok(());
            }
            if rest.to_ascii_uppercase().starts_with("IF ") {
                return self.if_statement(&rest[3..]);
            }
            self.chain = None;
            return self.simple(rest);
        }
        self.chain = None;
        if upper.starts_with("IF ") {
            return self.if_statement(&s[3..]);
        }
        self.simple(s)
    }

    /// `IF cond body` (the text after `IF `).
    fn if_statement(&mut self, text: &str) -> Result<(), SqlError> {
        let upper = text.to_ascii_uppercase();
        let (holds, body) = if upper.starts_with("EXISTS (") || upper.starts_with("NOT EXISTS (") {
            let negated = upper.starts_with("NOT ");
            let open = text.find('(').unwrap_or_default();
            let close = closing(text, open).ok_or_else(|| SqlError::NotModelled {
                statement: text.to_owned(),
            })?;
            let found = self.exists(text[open + 1..close].trim())?;
            (found != negated, text[close + 1..].trim())
        } else if let Some(c) = caps(r"(@\w+) IS (NOT )?NULL (.+)", text) {
            let null = self.var(c[0])? == Val::Null;
            (null == c[1].is_empty(), c[2])
        } else if let Some(c) = caps(r"(@\w+) = (N?'(?:[^']|'')*') (.+)", text) {
            let (a, b) = (self.var(c[0])?, self.term(c[1])?);
            (a != Val::Null && a.text() == b.text(), c[2])
        } else if let Some(c) = caps(r"(@\w+) <= (@\w+) (.+)", text) {
            let (a, b) = (self.var(c[0])?.number()?, self.var(c[1])?.number()?);
            (matches!((a, b), (Some(a), Some(b)) if a <= b), c[2])
        } else {
            return Err(SqlError::NotModelled {
                statement: format!("IF {text}"),
            });
        };
        if holds {
            self.statement(body)?;
        }
        self.chain = Some(holds);
        Ok(())
    }

    fn var(&self, name: &str) -> Result<Val, SqlError> {
        if let Some(n) = name
            .strip_prefix("@P")
            .and_then(|n| n.parse::<usize>().ok())
        {
            return self
                .params
                .get(n - 1)
                .cloned()
                .ok_or_else(|| SqlError::MustDeclare {
                    name: name.to_owned(),
                });
        }
        self.vars
            .get(&name.to_ascii_lowercase())
            .cloned()
            .ok_or_else(|| SqlError::MustDeclare {
                name: name.to_owned(),
            })
    }

    fn param_text(&self, name: &str) -> Result<String, SqlError> {
        Ok(self.var(name)?.text())
    }

    /// An expression: terms joined by `+` (strings concatenate, numbers add).
    fn expr(&self, text: &str) -> Result<Val, SqlError> {
        let values = split_top_level(text, '+', false)
            .iter()
            .map(|t| self.term(t.trim()))
            .collect::<Result<Vec<_>, _>>()?;
        if values.len() == 1 {
            return Ok(values.into_iter().next().unwrap_or(Val::Null));
        }
        if values.contains(&Val::Null) {
            return Ok(Val::Null);
        }
        if values.iter().all(|v| matches!(v, Val::Num(_))) {
            return Ok(Val::Num(
                values
                    .iter()
                    .filter_map(|v| v.number().ok().flatten())
                    .sum(),
            ));
        }
        Ok(Val::Str(values.iter().map(Val::text).collect()))
    }

    fn term(&self, t: &str) -> Result<Val, SqlError> {
        if let Some(c) = caps(r"N?'((?:[^']|'')*)'", t) {
            return Ok(Val::Str(c[0].replace("''", "'")));
        }
        if let Ok(n) = t.parse::<i128>() {
            return Ok(Val::Num(n));
        }
        if t.eq_ignore_ascii_case("NULL") {
            return Ok(Val::Null);
        }
        if t.eq_ignore_ascii_case("@@SPID") {
            return Ok(Val::Num(i128::from(OWN_SPID)));
        }
        if t.starts_with('@') {
            return self.var(t);
        }
        if t.eq_ignore_ascii_case("CONVERT(char(8), GETUTCDATE(), 112)") {
            return Ok(Val::Str(stamp(&self.now)[..8].to_owned()));
        }
        if t.eq_ignore_ascii_case("REPLACE(CONVERT(char(8), GETUTCDATE(), 108), ':', '')") {
            return Ok(Val::Str(stamp(&self.now)[8..].to_owned()));
        }
        if let Some(c) = caps(r"CONVERT\((n?varchar\(\d+\)|numeric\(25, ?0\)), (.+)\)", t) {
            let value = self.expr(c[1])?;
            return Ok(if c[0].to_ascii_lowercase().starts_with("numeric") {
                value.number()?.map_or(Val::Null, Val::Num)
            } else if value == Val::Null {
                Val::Null
            } else {
                Val::Str(value.text())
            });
        }
        Err(SqlError::NotModelled {
            statement: t.to_owned(),
        })
    }

    fn simple(&mut self, s: &str) -> Result<(), SqlError> {
        if let Some(c) = caps(r"USE (\[?\w+\]?)", s) {
            let _ = c;
            return Ok(());
        }
        if let Some(c) = caps(r"DECLARE (.+)", s) {
            for declaration in split_commas(c[0]) {
                let Some(d) = caps(
                    r"(@\w+) (uniqueidentifier|int|numeric\(25, ?0\)|n?varchar\((?:\d+|max)\))(?: = (.+))?",
                    &declaration,
                ) else {
                    return Err(SqlError::NotModelled {
                        statement: s.to_owned(),
                    });
                };
                let value = if d[2].is_empty() {
                    Val::Null
                } else {
                    self.expr(d[2])?
                };
                self.vars.insert(d[0].to_ascii_lowercase(), value);
            }
            return Ok(());
        }
        if let Some(c) = caps(r"SET (@\w+) = (.+)", s) {
            self.var(c[0])?;
            let value = self.expr(c[1])?;
            self.vars.insert(c[0].to_ascii_lowercase(), value);
            return Ok(());
        }
        if let Some(c) = caps(r"PRINT (.+)", s) {
            let message = self.expr(c[0])?.text();
            self.replies.push(Reply::Info { number: 0, message });
            return Ok(());
        }
        if let Some(c) = caps(r"RAISERROR\(N?'((?:[^']|'')*)', (\d+), \d+(?:, (.+))?\)", s) {
            let mut message = c[0].replace("''", "'");
            for arg in split_commas(c[2]) {
                message = message.replacen("%s", &self.expr(&arg)?.text(), 1);
            }
            return Err(SqlError::Raised {
                message,
                severity: c[1].parse().unwrap_or(16),
            });
        }
        if let Some(c) = caps(r"KILL (\d+)", s) {
            return self.server.kill(c[0].parse().unwrap_or_default());
        }
        if let Some(c) = caps(r"EXEC(?:UTE)? \((@\w+)\)", s)
            .or_else(|| caps(r"EXEC(?:UTE)? (?:sys\.)?sp_executesql (@\w+)", s))
        {
            let dynamic = self.var(c[0])?.text();
            for statement in statements(&dynamic) {
                self.simple(&statement)?;
            }
            return Ok(());
        }
        if let Some(c) = caps(r"CREATE TABLE (#\w+) \(.*\)", s) {
            self.temp.insert(c[0].to_ascii_lowercase(), Vec::new());
            return Ok(());
        }
        if let Some(c) = caps(
            r"INSERT (?:INTO )?(#\w+) EXEC master\.sys\.xp_dirtree (@\w+), 1, 1",
            s,
        ) {
            let folder = self.param_text(c[1])?;
            let Some(table) = self.temp.get_mut(&c[0].to_ascii_lowercase()) else {
                return Err(SqlError::InvalidObject {
                    object: c[0].to_owned(),
                });
            };
            table.extend(
                log_share::files(&folder)
                    .into_iter()
                    .map(|name| (name, 1, 1)),
            );
            return Ok(());
        }
        if s.to_ascii_uppercase().starts_with("EXEC") {
            return self.procedure(s);
        }
        if re(r"SELECT @\w+ = .*").is_match(s) {
            return self.assign(s);
        }
        if let Some(c) = caps(r"SELECT (@\w+) AS \[?(\w+)\]?", s) {
            let value = self.var(c[0])?;
            let cell = match value {
                Val::Null => Value::Null,
                Val::Num(n) => Value::Decimal(n.to_string()),
                Val::Str(text) => Value::String(text),
            };
            self.replies.push(rows(&[c[1]], vec![vec![cell]]));
            return Ok(());
        }
        if s.to_ascii_uppercase().starts_with("SELECT ") {
            let reply = self.select(s)?;
            self.replies.push(reply);
            return Ok(());
        }
        if let Some(c) = caps(r"ALTER DATABASE (\[\w+\]) SET PARTNER OFF", s) {
            return self.server.partner_off(&ident(c[0]));
        }
        if s.to_ascii_uppercase().starts_with("BACKUP ")
            || s.to_ascii_uppercase().starts_with("RESTORE ")
        {
            return self.backup_or_restore(s);
        }
        Err(SqlError::NotModelled {
            statement: s.to_owned(),
        })
    }

    /// `DISK = @Pn` or `DISK = N'…'`.
    fn disk(&self, text: &str) -> Result<String, SqlError> {
        Ok(self.term(text)?.text())
    }

    fn options(s: &str, text: &str, allowed: &[&str]) -> Result<Vec<String>, SqlError> {
        let options: Vec<String> = split_commas(text)
            .into_iter()
            .map(|o| o.to_ascii_uppercase())
            .collect();
        for option in &options {
            let name = option.split(' ').next().unwrap_or_default();
            if !allowed.contains(&name) {
                return Err(SqlError::NotModelled {
                    statement: s.to_owned(),
                });
            }
        }
        Ok(options)
    }

    fn backup_or_restore(&mut self, s: &str) -> Result<(), SqlError> {
        let now = self.now.clone();
        if let Some(c) = caps(r"BACKUP LOG (\[\w+\]) TO DISK = (\S+) WITH (.+)", s) {
            let options = Self::options(s, c[2], &["NORECOVERY", "INIT", "CHECKSUM", "STATS"])?;
            let path = self.disk(c[1])?;
            let database = ident(c[0]);
            let header = self.server.backup_log(
                &database,
                &path,
                options.iter().any(|o| o == "NORECOVERY"),
                &now,
            )?;
            self.info(
                3014,
                format!(
                    "BACKUP LOG successfully processed {} pages in 0.010 seconds (1.000 MB/sec).",
                    (header.last_lsn - header.first_lsn) / 1_000_000
                ),
            );
            return Ok(());
        }
        if let Some(c) = caps(r"BACKUP DATABASE (\[\w+\]) TO DISK = (\S+) WITH (.+)", s) {
            Self::options(s, c[2], &["INIT", "CHECKSUM", "STATS"])?;
            let path = self.disk(c[1])?;
            self.server.backup_database(&ident(c[0]), &path, &now)?;
            self.info(
                3014,
                "BACKUP DATABASE successfully processed 2000 pages in 0.100 seconds (156.250 MB/sec).".to_owned(),
            );
            return Ok(());
        }
        if let Some(c) = caps(r"RESTORE LOG (\[\w+\]) FROM DISK = (\S+) WITH (.+)", s) {
            let options = Self::options(s, c[2], &["NORECOVERY", "CHECKSUM", "STATS"])?;
            if !options.iter().any(|o| o == "NORECOVERY") {
                return Err(SqlError::NotModelled {
                    statement: s.to_owned(),
                });
            }
            let path = self.disk(c[1])?;
            self.server.restore_log(&ident(c[0]), &path)?;
            self.info(
                4035,
                "RESTORE LOG successfully processed 120 pages in 0.010 seconds (93.750 MB/sec)."
                    .to_owned(),
            );
            return Ok(());
        }
        if let Some(c) = caps(r"RESTORE DATABASE (\[\w+\]) FROM DISK = (\S+) WITH (.+)", s) {
            let options = Self::options(
                s,
                c[2],
                &["REPLACE", "RECOVERY", "NORECOVERY", "CHECKSUM", "STATS"],
            )?;
            if !options.iter().any(|o| o == "REPLACE") {
                return Err(SqlError::NotModelled {
                    statement: s.to_owned(),
                });
            }
            let path = self.disk(c[1])?;
            let recovery = !options.iter().any(|o| o == "NORECOVERY");
            self.server
                .restore_database(&ident(c[0]), &path, recovery)?;
            self.info(
                3014,
                "RESTORE DATABASE successfully processed 2000 pages in 0.200 seconds (78.125 MB/sec).".to_owned(),
            );
            return Ok(());
        }
        if let Some(c) = caps(r"RESTORE DATABASE (\[\w+\]) WITH RECOVERY", s) {
            self.server.recover(&ident(c[0]))?;
            self.info(
                3014,
                "RESTORE DATABASE successfully processed 0 pages in 0.500 seconds (0.000 MB/sec)."
                    .to_owned(),
            );
            return Ok(());
        }
        if let Some(c) = caps(r"RESTORE HEADERONLY FROM DISK = (\S+)", s) {
            let h = log_share::read(&self.disk(c[0])?)?;
            self.replies.push(rows(
                &[
                    "BackupType",
                    "ServerName",
                    "DatabaseName",
                    "FirstLSN",
                    "LastLSN",
                    "BackupFinishDate",
                ],
                vec![vec![
                    Value::Int(h.backup_type()),
                    Value::String(h.server.clone()),
                    Value::String(h.database.clone()),
                    lsn(Some(h.first_lsn)),
                    lsn(Some(h.last_lsn)),
                    Value::DateTime(h.finished.clone()),
                ]],
            ));
            return Ok(());
        }
        if let Some(c) = caps(
            r"RESTORE VERIFYONLY FROM DISK = (\S+)(?: WITH CHECKSUM)?",
            s,
        ) {
            let path = self.disk(c[0])?;
            log_share::read(&path)?;
            self.info(3262, "The backup set on file 1 is valid.".to_owned());
            return Ok(());
        }
        if let Some(c) = caps(r"RESTORE FILELISTONLY FROM DISK = (\S+)", s) {
            let h = log_share::read(&self.disk(c[0])?)?;
            let log_file = h.data_file.replace(".mdf", "_log.ldf");
            self.replies.push(rows(
                &["LogicalName", "PhysicalName", "Type"],
                vec![
                    vec![
                        Value::String(h.database.clone()),
                        Value::String(h.data_file.clone()),
                        Value::String("D".to_owned()),
                    ],
                    vec![
                        Value::String(format!("{}_log", h.database)),
                        Value::String(log_file),
                        Value::String("L".to_owned()),
                    ],
                ],
            ));
            return Ok(());
        }
        Err(SqlError::NotModelled {
            statement: s.to_owned(),
        })
    }

    fn info(&mut self, number: i32, message: String) {
        self.replies.push(Reply::Info { number, message });
    }

    /// `SELECT @x = …` shapes.
    fn assign(&mut self, s: &str) -> Result<(), SqlError> {
        if let Some(c) = caps(
            r"SELECT (@\w+) = backup_job_id FROM msdb\.dbo\.log_shipping_primary_databases WHERE primary_database = (@\w+)",
            s,
        ) {
            self.var(c[0])?;
            let database = self.param_text(c[1])?;
            let job = self
                .server
                .ls_primary
                .iter()
                .find(|p| p.database == database)
                .map(|p| Val::Str(p.backup_job_id.clone()));
            // No row: the variable keeps its value.
            if let Some(job) = job {
                self.vars.insert(c[0].to_ascii_lowercase(), job);
            }
            return Ok(());
        }
        if let Some(c) = caps(
            r"SELECT (@\w+) = redo_start_lsn FROM sys\.master_files WHERE database_id = DB_ID\((@\w+)\) AND file_id = 1",
            s,
        ) {
            self.var(c[0])?;
            let database = self.param_text(c[1])?;
            if let Some(db) = self.server.databases.get(&database) {
                let value = db.redo_start.map_or(Val::Null, |l| Val::Num(l as i128));
                self.vars.insert(c[0].to_ascii_lowercase(), value);
            }
            return Ok(());
        }
        if let Some(c) = caps(
            r"SELECT (@\w+) = (@\w+) \+ N'KILL ' \+ CONVERT\(nvarchar\(10\), spid\) \+ N';' FROM master\.sys\.sysprocesses WHERE dbid = DB_ID\((@\w+)\) AND spid <> @@SPID AND spid > 50",
            s,
        ) {
            let database = self.param_text(c[2])?;
            return self.kill_list(c[0], c[1], &database);
        }
        if let Some(c) = caps(
            r"SELECT (@\w+) = (@\w+) \+ N'KILL ' \+ CONVERT\(nvarchar\(10\), session_id\) \+ N';' FROM sys\.dm_exec_sessions WHERE database_id = DB_ID\((@\w+)\) AND session_id <> @@SPID",
            s,
        ) {
            if !self.server.has_session_database_id() {
                return Err(SqlError::InvalidColumn {
                    column: "database_id".to_owned(),
                });
            }
            let database = self.param_text(c[2])?;
            return self.kill_list(c[0], c[1], &database);
        }
        Err(self.unknown(s))
    }

    fn kill_list(&mut self, target: &str, source: &str, database: &str) -> Result<(), SqlError> {
        let mut text = self.var(source)?.text();
        for spid in self.server.sessions_of(database) {
            text.push_str(&format!("KILL {spid};"));
        }
        self.var(target)?;
        self.vars
            .insert(target.to_ascii_lowercase(), Val::Str(text));
        Ok(())
    }

    /// A statement of no known shape: an unknown object, a column 2008 R2 does not have, or
    /// a statement the rehearsal does not model.
    fn unknown(&self, s: &str) -> SqlError {
        if s.contains("sys.dm_exec_sessions")
            && s.contains("database_id")
            && !self.server.has_session_database_id()
        {
            return SqlError::InvalidColumn {
                column: "database_id".to_owned(),
            };
        }
        SqlError::NotModelled {
            statement: s.to_owned(),
        }
    }

    /// The `SELECT 1 FROM …` of an `IF [NOT] EXISTS (…)`.
    fn exists(&mut self, s: &str) -> Result<bool, SqlError> {
        if let Some(c) = caps(
            r"SELECT 1 FROM sys\.database_mirroring WHERE database_id = DB_ID\((@\w+)\) AND mirroring_guid IS NOT NULL",
            s,
        ) {
            let database = self.param_text(c[0])?;
            return Ok(self
                .server
                .databases
                .get(&database)
                .is_some_and(|d| d.mirroring.is_some()));
        }
        if let Some(c) = caps(
            r"SELECT 1 FROM msdb\.dbo\.log_shipping_secondary_databases WHERE secondary_database = (@\w+)",
            s,
        ) {
            let database = self.param_text(c[0])?;
            return Ok(self
                .server
                .ls_secondary_databases
                .iter()
                .any(|d| d.database == database));
        }
        if let Some(c) = caps(
            r"SELECT 1 FROM msdb\.dbo\.sysjobschedules WHERE job_id = (@\w+)",
            s,
        ) {
            let job = self.var(c[0])?.text();
            return Ok(self
                .server
                .jobs
                .iter()
                .any(|j| j.id.eq_ignore_ascii_case(&job) && !j.schedules.is_empty()));
        }
        Err(self.unknown(s))
    }

    // ---- procedures ----

    fn procedure(&mut self, s: &str) -> Result<(), SqlError> {
        let Some(c) = caps(r"EXEC(?:UTE)? ([\w.]+)(?: (.+))?", s) else {
            return Err(self.unknown(s));
        };
        let name = c[0].to_owned();
        let args = split_commas(c[1]);
        let short = name
            .rsplit('.')
            .next()
            .unwrap_or_default()
            .to_ascii_lowercase();
        // Where each procedure lives: called by a three-part name elsewhere, it is not found.
        let home = match short.as_str() {
            "xp_fileexist" | "xp_dirtree" => "master.sys",
            "sp_update_job" | "sp_add_jobschedule" | "sp_start_job" => "msdb.dbo",
            "sp_add_log_shipping_primary_database"
            | "sp_add_log_shipping_primary_secondary"
            | "sp_add_log_shipping_secondary_primary"
            | "sp_add_log_shipping_secondary_database"
            | "sp_delete_log_shipping_secondary_database" => "master.dbo",
            _ => {
                return Err(SqlError::NoSuchProcedure { procedure: name });
            }
        };
        if !name.eq_ignore_ascii_case(&format!("{home}.{short}")) {
            return Err(SqlError::NoSuchProcedure { procedure: name });
        }
        if short == "xp_fileexist" {
            let [path] = args.as_slice() else {
                return Err(self.unknown(s));
            };
            let (file, dir, parent) = log_share::exists(&self.term(path)?.text());
            self.replies.push(rows(
                &[
                    "File Exists",
                    "File is a Directory",
                    "Parent Directory Exists",
                ],
                vec![vec![Value::Int(file), Value::Int(dir), Value::Int(parent)]],
            ));
            return Ok(());
        }
        let mut named = Named::parse(&name, &args, self)?;
        let now = self.now.clone();
        match short.as_str() {
            "sp_update_job" => {
                named.allow(&["@job_id", "@job_name", "@enabled"])?;
                let enabled = named.number("@enabled")?;
                let job = match (named.text("@job_id"), named.text("@job_name")) {
                    (Some(id), _) => self.server.job_mut(&id)?,
                    (None, Some(job_name)) => {
                        let id = self
                            .server
                            .job_by_name(&job_name)
                            .map(|j| j.id.clone())
                            .ok_or(SqlError::NoSuchJob {
                                what: "@job_name",
                                value: job_name,
                            })?;
                        self.server.job_mut(&id)?
                    }
                    (None, None) => {
                        return Err(SqlError::MissingParameter {
                            procedure: "sp_update_job".to_owned(),
                            parameter: "@job_id".to_owned(),
                        });
                    }
                };
                job.enabled = enabled != 0;
            }
            "sp_add_jobschedule" => {
                named.allow(&[
                    "@job_id",
                    "@name",
                    "@enabled",
                    "@freq_type",
                    "@freq_interval",
                    "@freq_subday_type",
                    "@freq_subday_interval",
                ])?;
                let job = named.required("@job_id")?;
                let schedule = Schedule {
                    id: 0,
                    name: named.required("@name")?,
                    enabled: named.number_or("@enabled", 1)? != 0,
                    freq_type: named.number_or("@freq_type", 1)?,
                    freq_interval: named.number_or("@freq_interval", 0)?,
                    freq_subday_type: named.number_or("@freq_subday_type", 0)?,
                    freq_subday_interval: named.number_or("@freq_subday_interval", 0)?,
                };
                self.server.add_schedule(&job, schedule)?;
            }
            "sp_start_job" => {
                named.allow(&["@job_name"])?;
                let job = named.required("@job_name")?;
                let message = self.server.start_job(&job, &now)?;
                self.info(0, message);
            }
            "sp_add_log_shipping_primary_database" => {
                named.allow(&[
                    "@database",
                    "@backup_directory",
                    "@backup_share",
                    "@backup_job_name",
                    "@backup_retention_period",
                    "@overwrite",
                    "@backup_job_id",
                    "@primary_id",
                ])?;
                let (job, primary) = self.server.add_ls_primary(
                    &named.required("@database")?,
                    &named.required("@backup_directory")?,
                    &named.required("@backup_share")?,
                    &named.required("@backup_job_name")?,
                    named.number_or("@backup_retention_period", 4320)?,
                    named.flag("@overwrite")?,
                )?;
                named.output(self, "@backup_job_id", job)?;
                named.output(self, "@primary_id", primary)?;
            }
            "sp_add_log_shipping_primary_secondary" => {
                named.allow(&[
                    "@primary_database",
                    "@secondary_server",
                    "@secondary_database",
                    "@overwrite",
                ])?;
                self.server.add_ls_primary_secondary(
                    &named.required("@primary_database")?,
                    &named.required("@secondary_server")?,
                    &named.required("@secondary_database")?,
                    named.flag("@overwrite")?,
                )?;
            }
            "sp_add_log_shipping_secondary_primary" => {
                named.allow(&[
                    "@primary_server",
                    "@primary_database",
                    "@backup_source_directory",
                    "@backup_destination_directory",
                    "@copy_job_name",
                    "@restore_job_name",
                    "@file_retention_period",
                    "@overwrite",
                    "@copy_job_id",
                    "@restore_job_id",
                    "@secondary_id",
                ])?;
                let (copy, restore, secondary) = self.server.add_ls_secondary_primary(
                    &named.required("@primary_server")?,
                    &named.required("@primary_database")?,
                    &named.required("@backup_source_directory")?,
                    &named.required("@backup_destination_directory")?,
                    &named.required("@copy_job_name")?,
                    &named.required("@restore_job_name")?,
                    named.number_or("@file_retention_period", 4320)?,
                    named.flag("@overwrite")?,
                )?;
                named.output(self, "@copy_job_id", copy)?;
                named.output(self, "@restore_job_id", restore)?;
                named.output(self, "@secondary_id", secondary)?;
            }
            "sp_add_log_shipping_secondary_database" => {
                named.allow(&[
                    "@secondary_database",
                    "@primary_server",
                    "@primary_database",
                    "@restore_delay",
                    "@restore_mode",
                    "@disconnect_users",
                    "@overwrite",
                ])?;
                self.server.add_ls_secondary_database(
                    &named.required("@secondary_database")?,
                    &named.required("@primary_server")?,
                    &named.required("@primary_database")?,
                    named.number_or("@restore_delay", 0)?,
                    named.number_or("@restore_mode", 0)?,
                    named.number_or("@disconnect_users", 0)?,
                    named.flag("@overwrite")?,
                )?;
            }
            "sp_delete_log_shipping_secondary_database" => {
                named.allow(&["@secondary_database"])?;
                self.server
                    .delete_ls_secondary_database(&named.required("@secondary_database")?)?;
            }
            _ => return Err(self.unknown(s)),
        }
        Ok(())
    }

    // ---- result sets ----

    fn select(&mut self, s: &str) -> Result<Reply, SqlError> {
        let p = |i: usize| self.params.get(i).map(Val::text).unwrap_or_default();
        let server = &*self.server;
        let text = |v: &str| Value::String(v.to_owned());
        let mirroring = |name: &str| server.databases.get(name).and_then(|d| d.mirroring.clone());
        let shape = SELECTS
            .iter()
            .find(|(sql, _)| normalize(sql).eq_ignore_ascii_case(s))
            .map(|(_, shape)| *shape);
        let Some(shape) = shape else {
            return Err(self.unknown(s));
        };
        Ok(match shape {
            Select::Server => rows(
                &["server_name", "is_sysadmin", "version"],
                vec![vec![
                    text(&server.name),
                    Value::Int(i64::from(server.sysadmin)),
                    text(&server.version),
                ]],
            ),
            Select::NameState => {
                let found = server.databases.get(&p(0));
                rows(
                    &["name", "state_desc"],
                    found
                        .map(|d| vec![text(&p(0)), text(d.state.desc())])
                        .into_iter()
                        .collect(),
                )
            }
            Select::State | Select::StateIfRestoring => {
                let found = server
                    .databases
                    .get(&p(0))
                    .filter(|d| shape == Select::State || d.state == State::Restoring);
                rows(
                    &["state_desc"],
                    found
                        .map(|d| vec![text(d.state.desc())])
                        .into_iter()
                        .collect(),
                )
            }
            Select::LogShipping => self.read_log_shipping(&p(0)),
            Select::Primary => {
                let found = server.databases.get(&p(0));
                let m = mirroring(&p(0));
                rows(
                    &[
                        "state_desc",
                        "mirroring_role_desc",
                        "mirroring_state_desc",
                        "is_sysadmin",
                    ],
                    found
                        .map(|d| {
                            vec![
                                text(d.state.desc()),
                                opt(m.as_ref().map(|m| m.role.clone())),
                                opt(m.as_ref().map(|m| m.state.clone())),
                                Value::Int(i64::from(server.sysadmin)),
                            ]
                        })
                        .into_iter()
                        .collect(),
                )
            }
            Select::BackupJobId => rows(
                &["backup_job_id"],
                server
                    .ls_primary
                    .iter()
                    .filter(|l| l.database == p(0))
                    .map(|l| vec![Value::Guid(l.backup_job_id.clone())])
                    .collect(),
            ),
            Select::MirroringRole => rows(
                &["mirroring_role_desc"],
                mirroring(&p(0))
                    .map(|m| vec![text(&m.role)])
                    .into_iter()
                    .collect(),
            ),
            Select::Mirror => rows(
                &[
                    "mirroring_role_desc",
                    "mirroring_state_desc",
                    "mirroring_partner_instance",
                ],
                mirroring(&p(0))
                    .map(|m| {
                        let host = m
                            .partner
                            .trim_start_matches("TCP://")
                            .split(':')
                            .next()
                            .unwrap_or_default()
                            .to_owned();
                        vec![text(&m.role), text(&m.state), Value::String(host)]
                    })
                    .into_iter()
                    .collect(),
            ),
            Select::SecondaryDatabase => rows(
                &["secondary_database"],
                server
                    .ls_secondary_databases
                    .iter()
                    .filter(|d| d.database == p(0))
                    .map(|d| vec![text(&d.database)])
                    .collect(),
            ),
            Select::LogBackups => self.list_log_backups()?,
            Select::Sessions => rows(
                &["spid"],
                server
                    .sessions_of(&p(0))
                    .into_iter()
                    .map(|spid| vec![Value::Int(spid)])
                    .collect(),
            ),
            Select::Restored => rows(
                &["state_desc", "redo_start_lsn"],
                server
                    .databases
                    .get(&p(0))
                    .map(|d| vec![text(d.state.desc()), lsn(d.redo_start)])
                    .into_iter()
                    .collect(),
            ),
            Select::PrimaryServer => {
                let d = server.databases.get(&p(0));
                let m = mirroring(&p(0));
                rows(
                    &[
                        "server_name",
                        "is_sysadmin",
                        "state_desc",
                        "mirroring_role_desc",
                        "physical_name",
                    ],
                    vec![vec![
                        text(&server.name),
                        Value::Int(i64::from(server.sysadmin)),
                        opt(d.map(|d| d.state.desc().to_owned())),
                        opt(m.map(|m| m.role)),
                        opt(d.map(|d| d.physical_name.clone())),
                    ]],
                )
            }
            Select::BackupServer => {
                let mut found: Vec<(&String, _)> = server
                    .databases
                    .iter()
                    .filter(|(n, _)| **n == p(0) || **n == p(1))
                    .collect();
                found.sort_by_key(|(n, _)| **n != p(0));
                rows(
                    &[
                        "name",
                        "state_desc",
                        "is_sysadmin",
                        "mirroring_role_desc",
                        "physical_name",
                    ],
                    found
                        .into_iter()
                        .map(|(n, d)| {
                            vec![
                                text(n),
                                text(d.state.desc()),
                                Value::Int(i64::from(server.sysadmin)),
                                opt(d.mirroring.as_ref().map(|m| m.role.clone())),
                                text(&d.physical_name),
                            ]
                        })
                        .collect(),
                )
            }
            Select::Job => rows(
                &["name", "enabled"],
                server
                    .jobs
                    .iter()
                    .filter(|j| j.name == p(0))
                    .map(|j| vec![text(&j.name), Value::Int(i64::from(j.enabled))])
                    .collect(),
            ),
            Select::LastBackupFile => rows(
                &["last_backup_file"],
                server
                    .ls_primary
                    .iter()
                    .filter(|l| l.database == p(0))
                    .map(|l| vec![opt(l.last_backup_file.clone())])
                    .collect(),
            ),
            Select::LastCopiedFile => rows(
                &["last_copied_file"],
                server
                    .ls_secondary_databases
                    .iter()
                    .filter(|d| d.database == p(0))
                    .map(|d| {
                        let copied = server
                            .ls_secondary
                            .iter()
                            .find(|s| s.secondary_id == d.secondary_id)
                            .and_then(|s| s.last_copied_file.clone());
                        vec![opt(copied)]
                    })
                    .collect(),
            ),
            Select::LastRestored => rows(
                &["last_restored_file", "state_desc"],
                server
                    .ls_secondary_databases
                    .iter()
                    .filter(|d| d.database == p(0))
                    .filter_map(|d| {
                        let db = server.databases.get(&d.database)?;
                        Some(vec![
                            opt(d.last_restored_file.clone()),
                            text(db.state.desc()),
                        ])
                    })
                    .collect(),
            ),
        })
    }

    /// The read-log-shipping query: secondary databases joined to their primary entry, jobs,
    /// schedules (one row per pair of schedules, as the LEFT JOINs give) and monitor.
    fn read_log_shipping(&self, database: &str) -> Reply {
        let server = &*self.server;
        let mut out = Vec::new();
        for d in server
            .ls_secondary_databases
            .iter()
            .filter(|d| d.database == database)
        {
            let Some(s) = server
                .ls_secondary
                .iter()
                .find(|s| s.secondary_id == d.secondary_id)
            else {
                continue;
            };
            let job = |id: &str| server.jobs.iter().find(|j| j.id == id);
            let every = |id: &str| -> Vec<Value> {
                let minutes: Vec<Value> = job(id)
                    .map(|j| {
                        j.schedules
                            .iter()
                            .map(|s| Value::Int(s.freq_subday_interval))
                            .collect()
                    })
                    .unwrap_or_default();
                if minutes.is_empty() {
                    vec![Value::Null]
                } else {
                    minutes
                }
            };
            for copy_every in every(&s.copy_job_id) {
                for restore_every in every(&s.restore_job_id) {
                    out.push(vec![
                        Value::String(d.database.clone()),
                        Value::String(s.primary_server.clone()),
                        Value::String(s.primary_database.clone()),
                        Value::String(s.backup_source_directory.clone()),
                        Value::String(s.backup_destination_directory.clone()),
                        Value::Int(s.file_retention_period),
                        opt(job(&s.copy_job_id).map(|j| j.name.clone())),
                        opt(job(&s.restore_job_id).map(|j| j.name.clone())),
                        copy_every.clone(),
                        restore_every,
                        opt(s.last_copied_file.clone()),
                        opt(d.last_restored_file.clone()),
                    ]);
                }
            }
        }
        rows(
            &[
                "secondary_database",
                "primary_server",
                "primary_database",
                "backup_source_directory",
                "backup_destination_directory",
                "file_retention_period",
                "copy_job",
                "restore_job",
                "copy_every_minutes",
                "restore_every_minutes",
                "last_copied_file",
                "last_restored_file",
            ],
            out,
        )
    }

    /// The list-log-backups query over `#copied` and `#shared`: the copy folder's files,
    /// then the share's not in the copy folder; named like `@P3`, after `@P4`, by name.
    fn list_log_backups(&self) -> Result<Reply, SqlError> {
        let p = |i: usize| self.params.get(i).map(Val::text).unwrap_or_default();
        let (copy_folder, share, pattern, after, sep) = (p(0), p(1), p(2), p(3), p(4));
        let table = |name: &str| {
            self.temp
                .get(name)
                .cloned()
                .ok_or_else(|| SqlError::InvalidObject {
                    object: name.to_owned(),
                })
        };
        let copied = table("#copied")?;
        let shared = table("#shared")?;
        let mut found: Vec<(String, String)> = copied
            .iter()
            .filter(|(_, _, file)| *file == 1)
            .map(|(n, _, _)| (n.clone(), copy_folder.clone()))
            .chain(
                shared
                    .iter()
                    .filter(|(n, _, file)| *file == 1 && !copied.iter().any(|(c, _, _)| c == n))
                    .map(|(n, _, _)| (n.clone(), share.clone())),
            )
            .filter(|(n, _)| like(n, &pattern) && *n > after)
            .collect();
        found.sort();
        Ok(rows(
            &["name", "path"],
            found
                .into_iter()
                .map(|(n, folder)| {
                    vec![
                        Value::String(n.clone()),
                        Value::String(format!("{folder}{sep}{n}")),
                    ]
                })
                .collect(),
        ))
    }
}

/// T-SQL `LIKE` for the patterns the runbooks use: `%`, `_` and `[_]`.
fn like(text: &str, pattern: &str) -> bool {
    let mut regex = String::from("(?s)^");
    let mut chars = pattern.chars().peekable();
    while let Some(ch) = chars.next() {
        match ch {
            '%' => regex.push_str(".*"),
            '_' => regex.push('.'),
            '[' => {
                let class: String = chars.by_ref().take_while(|c| *c != ']').collect();
                regex.push_str(&format!("[{}]", regex::escape(&class)));
            }
            other => regex.push_str(&regex::escape(&other.to_string())),
        }
    }
    regex.push('$');
    regex::RegexBuilder::new(&regex)
        .case_insensitive(true)
        .build()
        .is_ok_and(|r| r.is_match(text))
}

/// A procedure call's named arguments (`@name = value [OUTPUT]`).
struct Named {
    procedure: String,
    values: Vec<(String, Val, Option<String>)>,
}

impl Named {
    fn parse(procedure: &str, args: &[String], batch: &Batch<'_>) -> Result<Self, SqlError> {
        let mut values = Vec::new();
        for arg in args {
            let Some(c) = caps(r"(@\w+) = (.+?)( OUTPUT)?", arg) else {
                return Err(SqlError::NotModelled {
                    statement: format!("EXEC {procedure} {}", args.join(", ")),
                });
            };
            let output = (!c[2].is_empty()).then(|| c[1].to_owned());
            let value = if output.is_some() {
                Val::Null
            } else {
                batch.expr(c[1])?
            };
            values.push((c[0].to_ascii_lowercase(), value, output));
        }
        Ok(Self {
            procedure: procedure.to_owned(),
            values,
        })
    }

    /// Refuses an argument the procedure does not have (8145), as SQL Server does.
    fn allow(&mut self, names: &[&str]) -> Result<(), SqlError> {
        for (name, _, _) in &self.values {
            if !names.contains(&name.as_str()) {
                return Err(SqlError::NotAParameter {
                    parameter: name.clone(),
                    procedure: self.short(),
                });
            }
        }
        Ok(())
    }

    fn get(&self, name: &str) -> Option<&Val> {
        self.values
            .iter()
            .find(|(n, _, _)| n == name)
            .map(|(_, v, _)| v)
    }

    fn text(&self, name: &str) -> Option<String> {
        self.get(name).filter(|v| **v != Val::Null).map(Val::text)
    }

    fn required(&self, name: &str) -> Result<String, SqlError> {
        self.text(name).ok_or_else(|| SqlError::MissingParameter {
            procedure: self.short(),
            parameter: name.to_owned(),
        })
    }

    /// A `bit` argument such as `@overwrite`: 0 when not given.
    fn flag(&self, name: &str) -> Result<bool, SqlError> {
        Ok(self.number_or(name, 0)? != 0)
    }

    /// The procedure's name without its database and schema.
    fn short(&self) -> String {
        self.procedure
            .rsplit('.')
            .next()
            .unwrap_or_default()
            .to_owned()
    }

    fn number(&self, name: &str) -> Result<i64, SqlError> {
        self.required(name)?;
        self.number_or(name, 0)
    }

    fn number_or(&self, name: &str, default: i64) -> Result<i64, SqlError> {
        match self.get(name) {
            None | Some(Val::Null) => Ok(default),
            Some(v) => Ok(v.number()?.unwrap_or_default() as i64),
        }
    }

    /// Sets the variable given as `@name = @var OUTPUT`.
    fn output(&self, batch: &mut Batch<'_>, name: &str, value: String) -> Result<(), SqlError> {
        if let Some((_, _, Some(var))) = self.values.iter().find(|(n, _, _)| n == name) {
            batch.var(var)?;
            batch.vars.insert(var.to_ascii_lowercase(), Val::Str(value));
        }
        Ok(())
    }
}

/// The result sets the rehearsal knows, by their exact text (whitespace aside).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Select {
    Server,
    NameState,
    State,
    StateIfRestoring,
    LogShipping,
    Primary,
    BackupJobId,
    MirroringRole,
    Mirror,
    SecondaryDatabase,
    LogBackups,
    Sessions,
    Restored,
    PrimaryServer,
    BackupServer,
    Job,
    LastBackupFile,
    LastCopiedFile,
    LastRestored,
}

const SELECTS: &[(&str, Select)] = &[
    (
        "SELECT @@SERVERNAME AS server_name, IS_SRVROLEMEMBER('sysadmin') AS is_sysadmin, CONVERT(nvarchar(128), SERVERPROPERTY('ProductVersion')) AS version",
        Select::Server,
    ),
    (
        "SELECT name, state_desc FROM sys.databases WHERE name = @P1",
        Select::NameState,
    ),
    (
        "SELECT state_desc FROM sys.databases WHERE name = @P1",
        Select::State,
    ),
    (
        "SELECT state_desc FROM sys.databases WHERE name = @P1 AND state_desc = 'RESTORING'",
        Select::StateIfRestoring,
    ),
    (
        "SELECT s.secondary_database, p.primary_server, p.primary_database,
               p.backup_source_directory, p.backup_destination_directory, p.file_retention_period,
               cj.name AS copy_job, rj.name AS restore_job,
               cs.freq_subday_interval AS copy_every_minutes, rs.freq_subday_interval AS restore_every_minutes,
               m.last_copied_file, m.last_restored_file
        FROM msdb.dbo.log_shipping_secondary_databases AS s
        JOIN msdb.dbo.log_shipping_secondary AS p ON p.secondary_id = s.secondary_id
        LEFT JOIN msdb.dbo.sysjobs AS cj ON cj.job_id = p.copy_job_id
        LEFT JOIN msdb.dbo.sysjobs AS rj ON rj.job_id = p.restore_job_id
        LEFT JOIN msdb.dbo.sysjobschedules AS cjs ON cjs.job_id = p.copy_job_id
        LEFT JOIN msdb.dbo.sysschedules AS cs ON cs.schedule_id = cjs.schedule_id
        LEFT JOIN msdb.dbo.sysjobschedules AS rjs ON rjs.job_id = p.restore_job_id
        LEFT JOIN msdb.dbo.sysschedules AS rs ON rs.schedule_id = rjs.schedule_id
        LEFT JOIN msdb.dbo.log_shipping_monitor_secondary AS m
               ON m.secondary_id = s.secondary_id AND m.secondary_database = s.secondary_database
        WHERE s.secondary_database = @P1",
        Select::LogShipping,
    ),
    (
        "SELECT d.state_desc, m.mirroring_role_desc, m.mirroring_state_desc,
               IS_SRVROLEMEMBER('sysadmin') AS is_sysadmin
        FROM sys.databases AS d
        LEFT JOIN sys.database_mirroring AS m ON m.database_id = d.database_id AND m.mirroring_guid IS NOT NULL
        WHERE d.name = @P1",
        Select::Primary,
    ),
    (
        "SELECT backup_job_id FROM msdb.dbo.log_shipping_primary_databases WHERE primary_database = @P1",
        Select::BackupJobId,
    ),
    (
        "SELECT mirroring_role_desc FROM sys.database_mirroring WHERE database_id = DB_ID(@P1) AND mirroring_guid IS NOT NULL",
        Select::MirroringRole,
    ),
    (
        "SELECT m.mirroring_role_desc, m.mirroring_state_desc, m.mirroring_partner_instance
        FROM sys.database_mirroring AS m WHERE m.database_id = DB_ID(@P1) AND m.mirroring_guid IS NOT NULL",
        Select::Mirror,
    ),
    (
        "SELECT secondary_database FROM msdb.dbo.log_shipping_secondary_databases WHERE secondary_database = @P1",
        Select::SecondaryDatabase,
    ),
    (
        "SELECT name, folder + @P5 + name AS path FROM (
          SELECT subdirectory AS name, @P1 AS folder FROM #copied WHERE [file] = 1
          UNION ALL
          SELECT subdirectory, @P2 FROM #shared
          WHERE [file] = 1 AND subdirectory NOT IN (SELECT subdirectory FROM #copied WHERE [file] = 1)
        ) AS f
        WHERE name LIKE @P3 AND name > @P4
        ORDER BY name",
        Select::LogBackups,
    ),
    (
        "SELECT spid FROM master.sys.sysprocesses WHERE dbid = DB_ID(@P1) AND spid <> @@SPID AND spid > 50",
        Select::Sessions,
    ),
    (
        "SELECT d.state_desc, f.redo_start_lsn
        FROM sys.databases AS d JOIN sys.master_files AS f ON f.database_id = d.database_id AND f.file_id = 1
        WHERE d.name = @P1",
        Select::Restored,
    ),
    (
        "SELECT @@SERVERNAME AS server_name, IS_SRVROLEMEMBER('sysadmin') AS is_sysadmin,
               d.state_desc, m.mirroring_role_desc, f.physical_name
        FROM (SELECT 1 AS one) AS x
        LEFT JOIN sys.databases AS d ON d.name = @P1
        LEFT JOIN sys.database_mirroring AS m ON m.database_id = d.database_id AND m.mirroring_guid IS NOT NULL
        LEFT JOIN sys.master_files AS f ON f.database_id = d.database_id AND f.file_id = 1",
        Select::PrimaryServer,
    ),
    (
        "SELECT d.name, d.state_desc, IS_SRVROLEMEMBER('sysadmin') AS is_sysadmin,
               m.mirroring_role_desc, f.physical_name
        FROM sys.databases AS d
        LEFT JOIN sys.database_mirroring AS m ON m.database_id = d.database_id AND m.mirroring_guid IS NOT NULL
        LEFT JOIN sys.master_files AS f ON f.database_id = d.database_id AND f.file_id = 1
        WHERE d.name IN (@P1, @P2)
        ORDER BY CASE WHEN d.name = @P1 THEN 0 ELSE 1 END",
        Select::BackupServer,
    ),
    (
        "SELECT name, enabled FROM msdb.dbo.sysjobs WHERE name = @P1",
        Select::Job,
    ),
    (
        "SELECT last_backup_file FROM msdb.dbo.log_shipping_monitor_primary WHERE primary_database = @P1",
        Select::LastBackupFile,
    ),
    (
        "SELECT last_copied_file FROM msdb.dbo.log_shipping_monitor_secondary WHERE secondary_database = @P1",
        Select::LastCopiedFile,
    ),
    (
        "SELECT m.last_restored_file, d.state_desc
        FROM msdb.dbo.log_shipping_monitor_secondary AS m
        JOIN sys.databases AS d ON d.name = m.secondary_database
        WHERE m.secondary_database = @P1",
        Select::LastRestored,
    ),
];
