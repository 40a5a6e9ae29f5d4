//! The Persistent Chat estate the rehearsals run against: two SQL Servers (the primary and
//! the backup, each a `sql_estate` model served over TDS on a loopback address of its own),
//! the file shares (`log_share`), one clock, and failures a test injects. A healthy estate:
//! `mgc` ONLINE on the primary, mirrored, log-shipped (backup job scheduled and enabled, three
//! log backups on the share) to the backup, where it is RESTORING with the copy and restore
//! jobs scheduled and enabled.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde_json::json;

use crate::log_share::{self, Header, Kind, Lsn};
use crate::lync::Lync;
use crate::sql_error::SqlError;
use crate::sql_estate::{Database, JobKind, Schedule, Session, SqlServer, State};
use crate::support::{Output, Test, repo};
use crate::tds::{Reply, Request, Server};
use crate::tsql;

pub const PASSWORD: &str = "rehearsal-Pw-7";
pub const PRIMARY_IP: &str = "127.0.0.2";
pub const BACKUP_IP: &str = "127.0.0.3";
pub const PRIMARY_MIRROR: &str = "sql-a-mirror.contoso.com";
pub const BACKUP_MIRROR: &str = "sql-b-mirror.contoso.com";
pub const DATA_FILE: &str = "D:\\MSSQL\\Data\\mgc.mdf";
/// SQL Server 2008 R2 SP3 and SQL Server 2012 SP4.
pub const SQL_2008_R2: &str = "10.50.6000.34";
pub const SQL_2012: &str = "11.0.7001.0";
/// The log backups on the share of a healthy estate; the backup database holds the first.
pub const SHIPPED: usize = 3;
const START: &str = "2026-11-26T08:00:00";
const FIRST_LSN: Lsn = 42_000_000_010_000_001;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    Primary,
    Backup,
}

/// A failure a test injects into the SQL Servers.
#[derive(Clone, Debug)]
pub struct Fault {
    pub side: Side,
    /// Hits requests whose SQL contains this text.
    pub text: String,
    pub kind: FaultKind,
    /// How many requests it hits (None: every one).
    pub times: Option<u32>,
    /// How many matching requests it lets through first.
    pub skip: u32,
}

#[derive(Clone, Debug)]
pub enum FaultKind {
    /// SQL error 50000 instead of the work.
    Error,
    /// Does the work, then drops the connection (the client never hears that it worked).
    AfterTheWork,
    /// These replies instead of the work (a server saying something unexpected).
    Replies(Vec<Reply>),
}

impl Fault {
    /// SQL error 50000 for every request on `side` containing `text`.
    pub fn error(side: Side, text: &str) -> Self {
        Self {
            side,
            text: text.to_owned(),
            kind: FaultKind::Error,
            times: None,
            skip: 0,
        }
    }
}

/// Something that happens on a server right after a request containing `after` was
/// answered: a job's schedule fires.
#[derive(Clone, Debug)]
pub struct Event {
    pub side: Side,
    pub after: String,
    pub job: String,
}

/// Called with `true` before a request is answered, `false` after.
type Reconcile = dyn Fn(Side, &mut SqlServer, bool) + Send + Sync;

#[derive(Default)]
struct Shared {
    clock: Mutex<i64>,
    faults: Mutex<Vec<Fault>>,
    events: Mutex<Vec<Event>>,
    /// Reads what the Lync side changed (mirrors installed, sessions of active servers)
    /// before each request, and tells it what the request changed after it.
    reconcile: Mutex<Option<Box<Reconcile>>>,
}

pub struct Sql {
    pub dir: tempfile::TempDir,
    pub primary: Arc<Mutex<SqlServer>>,
    pub backup: Arc<Mutex<SqlServer>>,
    /// None while the primary is down (a lost data centre).
    pub primary_server: Option<Server>,
    pub backup_server: Server,
    shared: Arc<Shared>,
}

/// The clock as `YYYY-MM-DDThh:mm:ss`, `seconds` after the start.
fn time(seconds: i64) -> String {
    let start = chrono::NaiveDateTime::parse_from_str(START, "%Y-%m-%dT%H:%M:%S")
        .expect("the start time parses");
    (start + chrono::Duration::seconds(seconds))
        .format("%Y-%m-%dT%H:%M:%S")
        .to_string()
}

fn schedule(name: &str) -> Schedule {
    Schedule {
        id: 0,
        name: name.to_owned(),
        enabled: true,
        freq_type: 4,
        freq_interval: 1,
        freq_subday_type: 4,
        freq_subday_interval: 15,
    }
}

impl Sql {
    /// A healthy estate on SQL Server `version`.
    pub fn healthy(version: &str) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        for sub in ["share", "copy", "failback"] {
            std::fs::create_dir_all(dir.path().join(sub)).expect("dir");
        }
        let share = dir.path().join("share").display().to_string();
        let copy = dir.path().join("copy").display().to_string();
        let mut primary = SqlServer::new("SQL-A", PRIMARY_IP, version);
        let mut backup = SqlServer::new("SQL-B", BACKUP_IP, version);
        // `mgc` as each side holds it; `mgccomp` online on both.
        let databases = |server: &mut SqlServer, mgc: Database| {
            server.databases.insert("mgc".into(), mgc);
            server.databases.insert(
                "mgccomp".into(),
                Database::online(6, FIRST_LSN, "D:\\MSSQL\\Data\\mgccomp.mdf"),
            );
        };
        databases(&mut primary, Database::online(5, FIRST_LSN, DATA_FILE));
        primary
            .install_mirror("mgc", PRIMARY_MIRROR)
            .expect("mirror the primary");
        databases(&mut backup, Database::restoring(5, FIRST_LSN, DATA_FILE));
        // Log shipping, as the procedures set it up, with schedules and enabled jobs.
        let (job, _) = primary
            .add_ls_primary("mgc", &share, &share, "LSBackup_mgc", 4320, false)
            .expect("log-shipping primary");
        primary
            .add_ls_primary_secondary("mgc", BACKUP_IP, "mgc", false)
            .expect("secondary registered");
        primary
            .add_schedule(&job, schedule("LSBackupSchedule"))
            .expect("schedule");
        primary.job_mut(&job).expect("job").enabled = true;
        let (copy_job, restore_job, _) = backup
            .add_ls_secondary_primary(
                PRIMARY_IP,
                "mgc",
                &share,
                &copy,
                &format!("LSCopy_{PRIMARY_IP}_mgc"),
                &format!("LSRestore_{PRIMARY_IP}_mgc"),
                4320,
                false,
            )
            .expect("secondary primary");
        backup
            .add_ls_secondary_database("mgc", PRIMARY_IP, "mgc", 0, 0, 0, false)
            .expect("secondary database");
        for (id, name) in [
            (&copy_job, "LSCopySchedule"),
            (&restore_job, "LSRestoreSchedule"),
        ] {
            backup.add_schedule(id, schedule(name)).expect("schedule");
            backup.job_mut(id).expect("job").enabled = true;
        }
        // Three log backups, 15 minutes apart, before the start; copied and restored: the
        // first; the others wait on the share (the copy job has not run since).
        let mut estate = Self::serve(dir, primary, backup);
        for i in 0..SHIPPED as i64 {
            let at = time(-45 * 60 + i * 15 * 60);
            estate.run_job(Side::Primary, "LSBackup_mgc", &at);
            if i == 0 {
                estate.run_job(Side::Backup, &format!("LSCopy_{PRIMARY_IP}_mgc"), &at);
                estate.run_job(Side::Backup, &format!("LSRestore_{PRIMARY_IP}_mgc"), &at);
            }
        }
        // The pool's servers are connected to the primary database.
        estate.primary.lock().unwrap().sessions = [53, 61]
            .iter()
            .zip(["pchat-a1.contoso.com", "pchat-a2.contoso.com"])
            .map(|(spid, host)| Session {
                spid: *spid,
                database: "mgc".into(),
                host: host.into(),
            })
            .collect();
        estate
    }

    fn serve(dir: tempfile::TempDir, primary: SqlServer, backup: SqlServer) -> Self {
        let shared = Arc::new(Shared::default());
        let primary = Arc::new(Mutex::new(primary));
        let backup = Arc::new(Mutex::new(backup));
        let primary_server = Some(serve(Side::Primary, &primary, &shared));
        let backup_server = serve(Side::Backup, &backup, &shared);
        Self {
            dir,
            primary,
            backup,
            primary_server,
            backup_server,
            shared,
        }
    }

    pub fn path(&self, sub: &str) -> PathBuf {
        self.dir.path().join(sub)
    }

    pub fn server(&self, side: Side) -> &Arc<Mutex<SqlServer>> {
        match side {
            Side::Primary => &self.primary,
            Side::Backup => &self.backup,
        }
    }

    pub fn port(&self, side: Side) -> u16 {
        match side {
            Side::Primary => self.primary_server.as_ref().map_or(1, Server::port),
            Side::Backup => self.backup_server.port(),
        }
    }

    /// Runs a job now, as its schedule would.
    pub fn run_job(&mut self, side: Side, name: &str, now: &str) {
        let mut server = self.server(side).lock().unwrap();
        let kind = server
            .job_by_name(name)
            .unwrap_or_else(|| panic!("no job {name}"))
            .kind
            .clone();
        server
            .run_job(&kind, now)
            .unwrap_or_else(|e| panic!("job {name}: {e}"));
    }

    /// The primary data centre is lost: its SQL Server answers nothing.
    pub fn lose_the_primary(&mut self) {
        self.primary_server = None;
    }

    pub fn inject(&self, fault: Fault) {
        self.shared.faults.lock().unwrap().push(fault);
    }

    pub fn on(&self, event: Event) {
        self.shared.events.lock().unwrap().push(event);
    }

    /// What the Lync side changed is read before each request (see `Shared::reconcile`).
    pub fn reconcile_with(&self, reconcile: Box<Reconcile>) {
        *self.shared.reconcile.lock().unwrap() = Some(reconcile);
    }

    /// Both servers take in what the Lync side changed since their last request (a mirror
    /// Install-CsMirrorDatabase set up is there at once on a real estate).
    fn settle(&self) {
        if let Some(reconcile) = self.shared.reconcile.lock().unwrap().as_ref() {
            for side in [Side::Primary, Side::Backup] {
                reconcile(side, &mut self.server(side).lock().unwrap(), true);
            }
        }
    }

    /// The log backups of `mgc` on the share, oldest first, with their headers.
    pub fn share(&self) -> Vec<(String, Header)> {
        let share = self.path("share").display().to_string();
        log_share::files(&share)
            .into_iter()
            .filter(|n| n.ends_with(".trn"))
            .filter_map(|n| {
                let header = log_share::read(&log_share::join(&share, &n)).ok()?;
                (header.kind == Kind::Log).then_some((n, header))
            })
            .collect()
    }

    /// Everything the SQL side holds, ids left out (a job recreated as it was is the same
    /// job), as JSON: the databases, log shipping, jobs and schedules of both servers, and
    /// the files of the shares and the copy folder.
    pub fn snapshot(&self) -> serde_json::Value {
        self.settle();
        let server = |s: &Arc<Mutex<SqlServer>>| {
            let s = s.lock().unwrap();
            let job_name = |id: &str| s.jobs.iter().find(|j| j.id == id).map(|j| j.name.clone());
            let jobs: Vec<_> = s
                .jobs
                .iter()
                .map(|j| {
                    let schedules: Vec<_> = j
                        .schedules
                        .iter()
                        .map(|s| {
                            json!([s.name, s.enabled, s.freq_type, s.freq_interval,
                                   s.freq_subday_type, s.freq_subday_interval])
                        })
                        .collect();
                    let kind = match &j.kind {
                        JobKind::Backup { database } => format!("backup {database}"),
                        JobKind::Copy { .. } => "copy".to_owned(),
                        JobKind::Restore { .. } => "restore".to_owned(),
                    };
                    json!({ "name": j.name, "enabled": j.enabled, "schedules": schedules, "kind": kind })
                })
                .collect();
            let primaries: Vec<_> = s
                .ls_primary
                .iter()
                .map(|p| {
                    json!({
                        "database": p.database, "backup_directory": p.backup_directory,
                        "backup_share": p.backup_share, "backup_job": job_name(&p.backup_job_id),
                        "retention_minutes": p.retention_minutes, "secondaries": p.secondaries,
                        "last_backup_file": p.last_backup_file,
                    })
                })
                .collect();
            let secondaries: Vec<_> = s
                .ls_secondary
                .iter()
                .map(|p| {
                    let databases: Vec<_> = s
                        .ls_secondary_databases
                        .iter()
                        .filter(|d| d.secondary_id == p.secondary_id)
                        .map(|d| {
                            json!({
                                "database": d.database, "restore_delay": d.restore_delay,
                                "restore_mode": d.restore_mode, "disconnect_users": d.disconnect_users,
                            })
                        })
                        .collect();
                    json!({
                        "primary_server": p.primary_server, "primary_database": p.primary_database,
                        "backup_source_directory": p.backup_source_directory,
                        "backup_destination_directory": p.backup_destination_directory,
                        "file_retention_period": p.file_retention_period,
                        "copy_job": job_name(&p.copy_job_id), "restore_job": job_name(&p.restore_job_id),
                        "databases": databases,
                    })
                })
                .collect();
            json!({
                "databases": s.databases, "jobs": jobs,
                "log_shipping_primary": primaries, "log_shipping_secondary": secondaries,
            })
        };
        let folder = |sub: &str| log_share::files(&self.path(sub).display().to_string());
        json!({
            "primary": server(&self.primary),
            "backup": server(&self.backup),
            "share": folder("share"),
            "copy": folder("copy"),
            "failback": folder("failback"),
        })
    }

    /// Everything the SQL side holds, to be put back by [`Sql::restore`]: both servers'
    /// models, the files of the folders and the clock.
    fn save(&self) -> SavedSql {
        let files = ["share", "copy", "failback"]
            .iter()
            .flat_map(|sub| {
                std::fs::read_dir(self.path(sub))
                    .expect("a folder of the estate")
                    .flatten()
                    .map(|e| {
                        let content = std::fs::read(e.path()).expect("a file of the estate");
                        (e.path(), content)
                    })
                    .collect::<Vec<_>>()
            })
            .collect();
        SavedSql {
            primary: self.primary.lock().unwrap().clone(),
            backup: self.backup.lock().unwrap().clone(),
            files,
            clock: *self.shared.clock.lock().unwrap(),
        }
    }

    /// The SQL side as it was saved; injected faults and events are cleared.
    fn restore(&self, saved: &SavedSql) {
        for sub in ["share", "copy", "failback"] {
            for e in std::fs::read_dir(self.path(sub))
                .expect("a folder")
                .flatten()
            {
                std::fs::remove_file(e.path()).expect("remove a file of the estate");
            }
        }
        for (path, content) in &saved.files {
            std::fs::write(path, content).expect("put a file back");
        }
        *self.primary.lock().unwrap() = saved.primary.clone();
        *self.backup.lock().unwrap() = saved.backup.clone();
        *self.shared.clock.lock().unwrap() = saved.clock;
        self.shared.faults.lock().unwrap().clear();
        self.shared.events.lock().unwrap().clear();
    }
}

struct SavedSql {
    primary: SqlServer,
    backup: SqlServer,
    files: Vec<(PathBuf, Vec<u8>)>,
    clock: i64,
}

/// An estate as it was at one moment ([`Estate::save`]), to run many scenarios from.
pub struct Saved {
    sql: SavedSql,
    lync: Vec<(PathBuf, Vec<u8>)>,
    violations: Vec<String>,
}

/// Serves one server's model over TDS, with the estate's clock, faults and events.
fn serve(side: Side, model: &Arc<Mutex<SqlServer>>, shared: &Arc<Shared>) -> Server {
    let ip = match side {
        Side::Primary => PRIMARY_IP,
        Side::Backup => BACKUP_IP,
    };
    let model = model.clone();
    let shared = shared.clone();
    Server::start_at(ip, PASSWORD, move |r: &Request| {
        answer(side, &model, &shared, r)
    })
}

fn answer(side: Side, model: &Mutex<SqlServer>, shared: &Shared, r: &Request) -> Vec<Reply> {
    let now = {
        let mut clock = shared.clock.lock().unwrap();
        *clock += 1;
        time(*clock)
    };
    let mut server = model.lock().unwrap();
    if let Some(reconcile) = shared.reconcile.lock().unwrap().as_ref() {
        reconcile(side, &mut server, true);
    }
    let fault = {
        let mut faults = shared.faults.lock().unwrap();
        let hit = faults
            .iter_mut()
            .find(|f| f.side == side && r.sql.contains(&f.text) && f.times != Some(0));
        let hit = hit.and_then(|f| {
            if f.skip > 0 {
                f.skip -= 1;
                return None;
            }
            Some(f)
        });
        hit.map(|f| {
            if let Some(times) = &mut f.times {
                *times -= 1;
            }
            f.clone()
        })
    };
    let mut replies = match fault.as_ref().map(|f| &f.kind) {
        Some(FaultKind::Error) => return SqlError::Injected.replies(),
        Some(FaultKind::Replies(replies)) => return replies.clone(),
        Some(FaultKind::AfterTheWork) | None => tsql::answer(&mut server, r, &now),
    };
    if fault.is_some() {
        replies.push(Reply::Disconnect);
    }
    let due: Vec<Event> = shared
        .events
        .lock()
        .unwrap()
        .iter()
        .filter(|e| e.side == side && r.sql.contains(&e.after))
        .cloned()
        .collect();
    for event in due {
        if let Some(kind) = server.job_by_name(&event.job).map(|j| j.kind.clone()) {
            let _ = server.run_job(&kind, &now);
        }
    }
    if let Some(reconcile) = shared.reconcile.lock().unwrap().as_ref() {
        reconcile(side, &mut server, false);
    }
    replies
}

pub const POOL: &str = "pchat.contoso.com";
pub const PRIMARY_SERVERS: [&str; 2] = ["pchat-a1.contoso.com", "pchat-a2.contoso.com"];
pub const BACKUP_SERVERS: [&str; 2] = ["pchat-b1.contoso.com", "pchat-b2.contoso.com"];
pub const MIRROR_SHARE: &str = "\\\\fs1.contoso.com\\pchat-mirror";

/// The Lync side of a healthy estate: pool Normal on the primary store, the primary data
/// centre's servers active, the topology defining a mirror for both stores, `mgc` of the
/// primary store mirrored.
fn lync_state() -> serde_json::Value {
    json!({
        "pools": {
            POOL: {
                "state": "Normal",
                "servers": [PRIMARY_SERVERS[0], PRIMARY_SERVERS[1], BACKUP_SERVERS[0], BACKUP_SERVERS[1]],
                "active_servers": PRIMARY_SERVERS,
                "stores": { "Normal": PRIMARY_IP, "FailedOver": BACKUP_IP },
                "database": "mgc"
            }
        },
        "topology": {
            "stores": {
                PRIMARY_IP: { "mirror": PRIMARY_MIRROR, "databases": ["PersistentChat", "PersistentChatCompliance"] },
                BACKUP_IP: { "mirror": BACKUP_MIRROR, "databases": ["PersistentChat", "PersistentChatCompliance"] }
            }
        },
        "mirrors": [
            { "database_type": "PersistentChat", "sql": PRIMARY_IP, "mirror": PRIMARY_MIRROR, "file_share": MIRROR_SHARE }
        ],
        "mirror_holds": { PRIMARY_MIRROR: ["PersistentChat"] },
        "cms": { "active_master": "lync-fe-a.contoso.com", "writable": true }
    })
}

fn database_type(database: &str) -> &'static str {
    if database == "mgccomp" {
        "PersistentChatCompliance"
    } else {
        "PersistentChat"
    }
}

/// Keeps the two sides of the estate in step, around each SQL request. Before: a mirror the
/// Lync side installed (Install-CsMirrorDatabase) or uninstalled is set up or removed on the
/// SQL Server, and the pool's active servers hold a session on the database the pool uses.
/// After: a mirror the request removed (`SET PARTNER OFF`) is no longer installed for the
/// Lync side either, and the database states are written where Test-CsPersistentChatMessage
/// reads them. A mirror installed on a database that is not ONLINE is a violation: the real
/// cmdlet would have failed.
fn reconcile(dir: PathBuf, violations: Arc<Mutex<Vec<String>>>) -> Box<Reconcile> {
    Box::new(move |_side, server: &mut SqlServer, before| {
        let path = dir.join("lync.json");
        let Ok(mut state) = std::fs::read_to_string(&path)
            .map_err(|_| ())
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).map_err(|_| ()))
        else {
            return;
        };
        let mine = |m: &serde_json::Value| {
            m["sql"]
                .as_str()
                .is_some_and(|s| s.eq_ignore_ascii_case(&server.fqdn))
        };
        let names: Vec<String> = server.databases.keys().cloned().collect();
        if before {
            let mirrors: Vec<serde_json::Value> = state["mirrors"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .filter(|m| mine(m))
                .collect();
            for name in &names {
                let wanted = mirrors
                    .iter()
                    .find(|m| m["database_type"] == database_type(name));
                let mirrored = server.databases[name].mirroring.is_some();
                match wanted {
                    Some(m) if !mirrored => {
                        let mirror = m["mirror"].as_str().unwrap_or_default().to_owned();
                        if let Err(e) = server.install_mirror(name, &mirror) {
                            violations.lock().unwrap().push(e);
                        }
                    }
                    None if mirrored => {
                        if let Some(db) = server.databases.get_mut(name) {
                            db.mirroring = None;
                        }
                    }
                    _ => {}
                }
            }
            // Sessions: the active servers of a pool using this server's database.
            for (_, pool) in state["pools"].as_object().cloned().unwrap_or_default() {
                let servers: Vec<String> = strings(&pool["servers"]);
                let active: Vec<String> = strings(&pool["active_servers"]);
                let database = pool["database"].as_str().unwrap_or("mgc").to_owned();
                let store = pool["stores"][pool["state"].as_str().unwrap_or_default()]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned();
                let usable = store.eq_ignore_ascii_case(&server.fqdn)
                    && server
                        .databases
                        .get(&database)
                        .is_some_and(|d| d.state == State::Online);
                server.sessions.retain(|s| {
                    !servers.contains(&s.host)
                        || (usable && active.contains(&s.host) && s.database == database)
                });
                if usable {
                    for host in active {
                        if !server.sessions.iter().any(|s| s.host == host) {
                            let spid = 53
                                + servers.iter().position(|s| *s == host).unwrap_or(0) as i64 * 2;
                            server.sessions.push(Session {
                                spid,
                                database: database.clone(),
                                host,
                            });
                        }
                    }
                }
            }
            return;
        }
        // After: mirrors removed on the SQL side are no longer installed.
        let kept: Vec<serde_json::Value> = state["mirrors"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|m| {
                !mine(m)
                    || names.iter().any(|n| {
                        m["database_type"] == database_type(n)
                            && server.databases[n].mirroring.is_some()
                    })
            })
            .collect();
        if state["mirrors"].as_array().map(Vec::len) != Some(kept.len()) {
            state["mirrors"] = json!(kept);
            let _ = std::fs::write(&path, state.to_string());
        }
        let hint_path = dir.join("sql_state_hint.json");
        let mut hint: serde_json::Value = std::fs::read_to_string(&hint_path)
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_else(|| json!({}));
        hint[server.fqdn.as_str()] = server
            .databases
            .iter()
            .map(|(n, d)| (n.clone(), json!(d.state.desc())))
            .collect();
        let _ = std::fs::write(&hint_path, hint.to_string());
    })
}

fn strings(v: &serde_json::Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// The whole estate: the SQL side and the Lync host, kept in step.
pub struct Estate {
    pub sql: Sql,
    pub lync: Lync,
    /// Mirrors the Lync side installed where the real cmdlet would have failed.
    pub violations: Arc<Mutex<Vec<String>>>,
    pub primary_reachable: bool,
    /// Lines added to the params file (params a scenario sets beyond the estate's own).
    pub extra_params: String,
}

/// What a test compares: both SQL Servers, the shares, and the Lync state.
pub type Snapshot = serde_json::Value;

impl Estate {
    pub fn healthy() -> Self {
        Self::on(crate::pchat_estate::SQL_2012)
    }

    /// A healthy estate on SQL Server `version`, the primary reachable.
    pub fn on(version: &str) -> Self {
        let sql = Sql::healthy(version);
        let dir = sql.path("lync");
        std::fs::create_dir_all(&dir).expect("lync dir");
        let lync = Lync::start(&dir, lync_state());
        let violations = Arc::new(Mutex::new(Vec::new()));
        sql.reconcile_with(reconcile(dir, violations.clone()));
        Self {
            sql,
            lync,
            violations,
            primary_reachable: true,
            extra_params: String::new(),
        }
    }

    pub fn path(&self, sub: &str) -> PathBuf {
        self.sql.path(sub)
    }

    /// Everything the estate holds now: both SQL Servers, the folders, the clock, the Lync
    /// state (and what the SQL side told it).
    pub fn save(&self) -> Saved {
        let lync = ["lync/lync.json", "lync/sql_state_hint.json"]
            .iter()
            .filter_map(|f| {
                let path = self.path(f);
                std::fs::read(&path).ok().map(|c| (path, c))
            })
            .collect();
        Saved {
            sql: self.sql.save(),
            lync,
            violations: self.violations.lock().unwrap().clone(),
        }
    }

    /// The estate as `saved` had it (the same servers and ports: params stay valid).
    pub fn restore(&self, saved: &Saved) {
        self.sql.restore(&saved.sql);
        let _ = std::fs::remove_file(self.path("lync/sql_state_hint.json"));
        for (path, content) in &saved.lync {
            std::fs::write(path, content).expect("put the Lync state back");
        }
        *self.violations.lock().unwrap() = saved.violations.clone();
    }

    pub fn snapshot(&self) -> Snapshot {
        let lync = self.lync.state();
        json!({
            "sql": self.sql.snapshot(),
            "lync": {
                "pools": lync["pools"], "mirrors": lync["mirrors"],
                "mirror_holds": lync["mirror_holds"], "cms": lync["cms"],
            },
            "violations": *self.violations.lock().unwrap(),
        })
    }

    /// The runbooks' params for this estate.
    pub fn params(&self) -> String {
        let list = |items: &[&str]| format!("[{}]", items.join(", "));
        format!(
            "pool_fqdn: {POOL}\nprimary_sql: {PRIMARY_IP}\nprimary_sql_port: {}\nbackup_sql: {BACKUP_IP}\nbackup_sql_port: {}\n\
             sql_encrypt: DANGER_PLAINTEXT\nlog_share: '{}'\ncopy_folder: '{}'\nfull_backup_file: '{}'\npath_separator: /\n\
             primary_reachable: {}\nprimary_mirror_sql: {PRIMARY_MIRROR}\nbackup_mirror_sql: {BACKUP_MIRROR}\n\
             mirror_file_share: '{MIRROR_SHARE}'\nprimary_servers: {}\nbackup_servers: {}\n{}{}",
            self.sql.port(Side::Primary),
            self.sql.port(Side::Backup),
            self.path("share").display(),
            self.path("copy").display(),
            self.path("failback/mgc.bak").display(),
            self.primary_reachable,
            list(&PRIMARY_SERVERS),
            list(&BACKUP_SERVERS),
            Lync::params(),
            self.extra_params,
        )
    }

    /// `runbook COMMAND… FILE --params …` for a shipped runbook (`failover.yaml`, …).
    pub fn runbook(&self, command: &[&str], book: &str, fail_on: Option<&str>) -> Output {
        self.runbook_file(
            command,
            &repo().join("runbooks/persistent-chat").join(book),
            fail_on,
        )
    }

    /// The same for any runbook file (a mutated copy of a shipped one).
    pub fn runbook_file(&self, command: &[&str], file: &Path, fail_on: Option<&str>) -> Output {
        std::fs::write(self.path("params.yaml"), self.params()).expect("params");
        let mut t = Test::new()
            .env(
                "RUNBOOK_SSH_CONFIG",
                &self.lync.ssh_config().display().to_string(),
            )
            .env("PCHAT_SQL_PASSWORD", PASSWORD)
            .env(
                "RUNBOOK_STATE_DIR",
                &self.path("state").display().to_string(),
            )
            .args(command.iter().copied())
            .args([
                file.to_str().expect("a UTF-8 path"),
                "--params",
                self.path("params.yaml").to_str().expect("a UTF-8 path"),
            ]);
        if let Some(text) = fail_on {
            t = t.env("REHEARSAL_FAIL_ON", text);
        }
        let out = t.run();
        assert!(
            !out.stdout.contains(PASSWORD) && !out.stderr.contains(PASSWORD),
            "the password was shown"
        );
        out
    }
}
