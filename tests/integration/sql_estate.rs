//! One SQL Server of the rehearsal estate, as a model: its databases (state, log position,
//! restore point, mirroring), the sessions using them, `msdb`'s log-shipping tables and its
//! SQL Server Agent jobs with their schedules. Every operation refuses what SQL Server
//! refuses, with its error (`sql_error`); `tsql` turns the runbooks' statements into these
//! operations. Backups are files of the share (`log_share`).

use std::collections::BTreeMap;

use serde::Serialize;

use crate::log_share::{self, Header, Kind, Lsn};
use crate::sql_error::SqlError;

/// How far the log moves between two log backups of an ONLINE database (its users write).
pub const LOG_PER_BACKUP: Lsn = 1_000_000_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum State {
    #[serde(rename = "ONLINE")]
    Online,
    #[serde(rename = "RESTORING")]
    Restoring,
}

impl State {
    pub fn desc(self) -> &'static str {
        match self {
            State::Online => "ONLINE",
            State::Restoring => "RESTORING",
        }
    }
}

/// A database's mirroring session, as `sys.database_mirroring` shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Mirroring {
    /// PRINCIPAL or MIRROR.
    pub role: String,
    /// `TCP://host:5022`
    pub partner: String,
    /// SYNCHRONIZED, SUSPENDED, …
    pub state: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Database {
    pub id: i64,
    pub state: State,
    /// ONLINE: the end of its log (what is committed).
    pub lsn: Lsn,
    /// The end of the last log backup: where the next one starts (`None`: no log chain, no
    /// full backup since the database was created).
    pub backed_up_to: Option<Lsn>,
    /// RESTORING: how far it has been restored (`sys.master_files.redo_start_lsn`).
    pub redo_start: Option<Lsn>,
    /// A restore WITH RECOVERY ended the restore sequence: no log can be applied.
    pub recovered: bool,
    pub mirroring: Option<Mirroring>,
    /// `sys.master_files.physical_name` of its data file.
    pub physical_name: String,
    /// Backup files restored into it, in order (full backups and logs).
    pub restored: Vec<String>,
}

impl Database {
    pub fn online(id: i64, lsn: Lsn, physical_name: &str) -> Self {
        Self {
            id,
            state: State::Online,
            lsn,
            backed_up_to: Some(lsn),
            redo_start: None,
            recovered: true,
            mirroring: None,
            physical_name: physical_name.to_owned(),
            restored: Vec::new(),
        }
    }

    /// A log-shipping secondary restored up to `lsn`.
    pub fn restoring(id: i64, lsn: Lsn, physical_name: &str) -> Self {
        Self {
            state: State::Restoring,
            redo_start: Some(lsn),
            recovered: false,
            backed_up_to: None,
            ..Self::online(id, lsn, physical_name)
        }
    }
}

/// A session of `sys.sysprocesses`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Session {
    pub spid: i64,
    pub database: String,
    /// Who holds it (a Persistent Chat server).
    pub host: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Schedule {
    pub id: i64,
    pub name: String,
    pub enabled: bool,
    pub freq_type: i64,
    pub freq_interval: i64,
    pub freq_subday_type: i64,
    pub freq_subday_interval: i64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum JobKind {
    /// Backs up the log of a log-shipping primary database.
    Backup { database: String },
    /// Copies new log backups of a log-shipping secondary's primary to its copy folder.
    Copy { secondary_id: String },
    /// Restores the copied log backups into the secondary databases.
    Restore { secondary_id: String },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Job {
    pub id: String,
    pub name: String,
    pub enabled: bool,
    pub schedules: Vec<Schedule>,
    /// Running now (started by its schedule): `sp_start_job` is refused meanwhile.
    #[serde(skip)]
    pub running: bool,
    pub kind: JobKind,
}

/// `log_shipping_primary_databases` with its monitor row and its secondaries.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LsPrimary {
    pub primary_id: String,
    pub database: String,
    pub backup_directory: String,
    pub backup_share: String,
    pub backup_job_id: String,
    pub retention_minutes: i64,
    /// `log_shipping_monitor_primary.last_backup_file`
    pub last_backup_file: Option<String>,
    /// `log_shipping_primary_secondaries`: (server, database).
    pub secondaries: Vec<(String, String)>,
}

/// `log_shipping_secondary`: one primary database this server ships from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LsSecondary {
    pub secondary_id: String,
    pub primary_server: String,
    pub primary_database: String,
    pub backup_source_directory: String,
    pub backup_destination_directory: String,
    pub file_retention_period: i64,
    pub copy_job_id: String,
    pub restore_job_id: String,
    /// `log_shipping_monitor_secondary.last_copied_file`
    pub last_copied_file: Option<String>,
}

/// `log_shipping_secondary_databases` with its monitor row.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LsSecondaryDatabase {
    pub database: String,
    pub secondary_id: String,
    pub restore_delay: i64,
    pub restore_mode: i64,
    pub disconnect_users: i64,
    /// `log_shipping_monitor_secondary.last_restored_file`
    pub last_restored_file: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SqlServer {
    /// `@@SERVERNAME`
    pub name: String,
    /// The name clients and the Lync topology use for it.
    pub fqdn: String,
    /// `SERVERPROPERTY('ProductVersion')`: 10.50.x is SQL Server 2008 R2.
    pub version: String,
    pub sysadmin: bool,
    pub databases: BTreeMap<String, Database>,
    #[serde(skip)]
    pub sessions: Vec<Session>,
    pub jobs: Vec<Job>,
    pub ls_primary: Vec<LsPrimary>,
    pub ls_secondary: Vec<LsSecondary>,
    pub ls_secondary_databases: Vec<LsSecondaryDatabase>,
    /// Ids handed out so far (jobs, schedules, log-shipping entries).
    #[serde(skip)]
    pub next_id: u32,
}

/// The `@@SPID` of the runbook's own connection.
pub const OWN_SPID: i64 = 52;

impl SqlServer {
    pub fn new(name: &str, fqdn: &str, version: &str) -> Self {
        Self {
            name: name.to_owned(),
            fqdn: fqdn.to_owned(),
            version: version.to_owned(),
            sysadmin: true,
            databases: BTreeMap::new(),
            sessions: Vec::new(),
            jobs: Vec::new(),
            ls_primary: Vec::new(),
            ls_secondary: Vec::new(),
            ls_secondary_databases: Vec::new(),
            next_id: 0,
        }
    }

    /// SQL Server 2012 (11.x) or later: `sys.dm_exec_sessions.database_id` exists.
    pub fn has_session_database_id(&self) -> bool {
        self.version
            .split('.')
            .next()
            .and_then(|major| major.parse::<u32>().ok())
            .is_some_and(|major| major >= 11)
    }

    /// A new uniqueidentifier (deterministic, unique within the estate).
    pub fn new_guid(&mut self) -> String {
        self.next_id += 1;
        let server = self.name.bytes().fold(0u32, |h, b| h * 31 + u32::from(b)) & 0xffff;
        format!("{server:08x}-0000-4000-8000-{:012x}", self.next_id)
    }

    pub fn database(&self, name: &str) -> Result<&Database, SqlError> {
        self.databases
            .get(name)
            .ok_or_else(|| SqlError::NoSuchDatabase {
                database: name.to_owned(),
            })
    }

    fn database_mut(&mut self, name: &str) -> Result<&mut Database, SqlError> {
        self.databases
            .get_mut(name)
            .ok_or_else(|| SqlError::NoSuchDatabase {
                database: name.to_owned(),
            })
    }

    pub fn database_id(&self, name: &str) -> Option<i64> {
        self.databases.get(name).map(|d| d.id)
    }

    // ---- sessions ----

    pub fn sessions_of(&self, database: &str) -> Vec<i64> {
        self.sessions
            .iter()
            .filter(|s| s.database == database)
            .map(|s| s.spid)
            .collect()
    }

    pub fn kill(&mut self, spid: i64) -> Result<(), SqlError> {
        let before = self.sessions.len();
        self.sessions.retain(|s| s.spid != spid);
        if self.sessions.len() == before {
            return Err(SqlError::NotActiveProcess { spid });
        }
        Ok(())
    }

    fn exclusive(&self, database: &str) -> Result<(), SqlError> {
        if self.sessions_of(database).is_empty() {
            Ok(())
        } else {
            Err(SqlError::InUse)
        }
    }

    // ---- mirroring ----

    /// `ALTER DATABASE x SET PARTNER OFF`.
    pub fn partner_off(&mut self, database: &str) -> Result<(), SqlError> {
        let db = self.database_mut(database)?;
        if db.mirroring.take().is_none() {
            return Err(SqlError::NotMirrored {
                database: database.to_owned(),
            });
        }
        Ok(())
    }

    /// What Install-CsMirrorDatabase does to the principal: a full and a log backup to the
    /// mirror's file share, then a mirroring session with `mirror` (synchronized at once).
    /// It needs the database ONLINE.
    pub fn install_mirror(&mut self, database: &str, mirror: &str) -> Result<(), String> {
        let db = self
            .databases
            .get_mut(database)
            .ok_or_else(|| format!("{database} does not exist on {}", self.fqdn))?;
        if db.state != State::Online {
            return Err(format!(
                "{database} on {} is {}: a database is mirrored only when ONLINE",
                self.fqdn,
                db.state.desc()
            ));
        }
        db.mirroring = Some(Mirroring {
            role: "PRINCIPAL".to_owned(),
            partner: format!("TCP://{mirror}:5022"),
            state: "SYNCHRONIZED".to_owned(),
        });
        Ok(())
    }

    // ---- backup and restore ----

    fn header(&self, database: &str, kind: Kind, first: Lsn, last: Lsn, now: &str) -> Header {
        Header {
            database: database.to_owned(),
            kind,
            first_lsn: first,
            last_lsn: last,
            server: self.name.clone(),
            finished: now.to_owned(),
            data_file: self
                .databases
                .get(database)
                .map(|d| d.physical_name.clone())
                .unwrap_or_default(),
        }
    }

    /// `BACKUP LOG db TO DISK = path [WITH NORECOVERY]`: the log since the last log backup;
    /// what its users committed meanwhile is `LOG_PER_BACKUP`.
    pub fn backup_log(
        &mut self,
        database: &str,
        path: &str,
        norecovery: bool,
        now: &str,
    ) -> Result<Header, SqlError> {
        let db = self.database(database)?;
        if db.state != State::Online {
            return Err(SqlError::TerminatingAbnormally {
                statement: "BACKUP LOG",
            });
        }
        if norecovery && db.mirroring.as_ref().is_some_and(|m| m.role == "PRINCIPAL") {
            return Err(SqlError::NoRecoveryOnPrincipal {
                database: database.to_owned(),
            });
        }
        let Some(from) = db.backed_up_to else {
            return Err(SqlError::NoCurrentDatabaseBackup);
        };
        if norecovery {
            self.exclusive(database)?;
        }
        let to = db.lsn + LOG_PER_BACKUP;
        let header = self.header(database, Kind::Log, from, to, now);
        log_share::write(path, &header)?;
        let db = self.database_mut(database)?;
        db.lsn = to;
        db.backed_up_to = Some(to);
        if norecovery {
            db.state = State::Restoring;
            db.redo_start = Some(to);
            db.recovered = false;
        }
        Ok(header)
    }

    /// `BACKUP DATABASE db TO DISK = path WITH INIT`.
    pub fn backup_database(
        &mut self,
        database: &str,
        path: &str,
        now: &str,
    ) -> Result<(), SqlError> {
        let db = self.database(database)?;
        if db.state != State::Online {
            return Err(SqlError::TerminatingAbnormally {
                statement: "BACKUP DATABASE",
            });
        }
        let at = db.lsn;
        let header = self.header(database, Kind::Database, at, at, now);
        log_share::write(path, &header)?;
        let db = self.database_mut(database)?;
        if db.backed_up_to.is_none() {
            db.backed_up_to = Some(at);
        }
        Ok(())
    }

    /// `RESTORE DATABASE db FROM DISK = path WITH REPLACE, RECOVERY | NORECOVERY`.
    pub fn restore_database(
        &mut self,
        database: &str,
        path: &str,
        recovery: bool,
    ) -> Result<(), SqlError> {
        let header = log_share::read(path)?;
        if header.kind != Kind::Database {
            return Err(SqlError::TerminatingAbnormally {
                statement: "RESTORE DATABASE",
            });
        }
        if let Some(db) = self.databases.get(database) {
            if db.mirroring.is_some() {
                return Err(SqlError::RestoreMirrored {
                    database: database.to_owned(),
                });
            }
            self.exclusive(database)?;
        }
        let id = self
            .database_id(database)
            .unwrap_or(self.databases.len() as i64 + 5);
        let mut db = if recovery {
            Database::online(id, header.last_lsn, &header.data_file)
        } else {
            Database::restoring(id, header.last_lsn, &header.data_file)
        };
        db.restored.push(file_name(path));
        self.databases.insert(database.to_owned(), db);
        Ok(())
    }

    /// `RESTORE LOG db FROM DISK = path WITH NORECOVERY`, with SQL Server's LSN rules.
    pub fn restore_log(&mut self, database: &str, path: &str) -> Result<(), SqlError> {
        let db = self.database(database)?;
        if db.mirroring.is_some() {
            return Err(SqlError::RestoreMirrored {
                database: database.to_owned(),
            });
        }
        let header = log_share::read(path)?;
        if header.kind != Kind::Log {
            return Err(SqlError::TerminatingAbnormally {
                statement: "RESTORE LOG",
            });
        }
        if header.database != database {
            return Err(SqlError::BackupOfAnotherDatabase {
                backup: header.database,
                database: database.to_owned(),
            });
        }
        if db.state == State::Online || db.recovered {
            return Err(if db.state == State::Online {
                SqlError::NotReadyToRollForward
            } else {
                SqlError::PrecedingRestoreRecovered
            });
        }
        let redo = db.redo_start.unwrap_or_default();
        if header.first_lsn > redo {
            return Err(SqlError::LogTooRecent {
                first: header.first_lsn,
                redo,
            });
        }
        if header.last_lsn <= redo {
            return Err(SqlError::LogTooEarly {
                last: header.last_lsn,
                redo,
            });
        }
        let db = self.database_mut(database)?;
        db.redo_start = Some(header.last_lsn);
        db.lsn = header.last_lsn;
        db.restored.push(file_name(path));
        Ok(())
    }

    /// `RESTORE DATABASE db WITH RECOVERY`: the end of the restore sequence.
    pub fn recover(&mut self, database: &str) -> Result<(), SqlError> {
        let db = self.database(database)?;
        if db.mirroring.is_some() {
            return Err(SqlError::RestoreMirrored {
                database: database.to_owned(),
            });
        }
        if db.state != State::Restoring {
            return Err(SqlError::NotReadyToRollForward);
        }
        let db = self.database_mut(database)?;
        db.state = State::Online;
        db.lsn = db.redo_start.take().unwrap_or(db.lsn);
        db.recovered = true;
        // Log backups go on from the restored point.
        db.backed_up_to = Some(db.lsn);
        Ok(())
    }

    // ---- SQL Server Agent jobs ----

    pub fn job_by_name(&self, name: &str) -> Option<&Job> {
        self.jobs.iter().find(|j| j.name == name)
    }

    pub fn job_mut(&mut self, id: &str) -> Result<&mut Job, SqlError> {
        self.jobs
            .iter_mut()
            .find(|j| j.id.eq_ignore_ascii_case(id))
            .ok_or_else(|| SqlError::NoSuchJob {
                what: "@job_id",
                value: id.to_owned(),
            })
    }

    /// A log-shipping job as the log-shipping procedures create it: disabled, unscheduled.
    fn add_job(&mut self, name: &str, kind: JobKind) -> String {
        let id = self.new_guid();
        self.jobs.retain(|j| j.name != name);
        self.jobs.push(Job {
            id: id.clone(),
            name: name.to_owned(),
            enabled: false,
            schedules: Vec::new(),
            running: false,
            kind,
        });
        id
    }

    fn delete_job(&mut self, id: &str) {
        self.jobs.retain(|j| j.id != id);
    }

    pub fn add_schedule(&mut self, job_id: &str, schedule: Schedule) -> Result<(), SqlError> {
        self.next_id += 1;
        let id = i64::from(self.next_id);
        self.job_mut(job_id)?
            .schedules
            .push(Schedule { id, ..schedule });
        Ok(())
    }

    /// `sp_start_job`: the job runs now (to the end, before the call returns).
    pub fn start_job(&mut self, name: &str, now: &str) -> Result<String, SqlError> {
        let job = self
            .job_by_name(name)
            .ok_or_else(|| SqlError::NoSuchJob {
                what: "@job_name",
                value: name.to_owned(),
            })?
            .clone();
        if job.running {
            return Err(SqlError::JobAlreadyRunning { job: job.name });
        }
        // A failing job step fails the job, not the call (the job's history says why).
        let _ = self.run_job(&job.kind, now);
        Ok(format!("Job '{}' started successfully.", job.name))
    }

    /// What a log-shipping job does when it runs; `Err` is what its history would say.
    pub fn run_job(&mut self, kind: &JobKind, now: &str) -> Result<(), String> {
        match kind {
            JobKind::Backup { database } => self.run_backup_job(database, now),
            JobKind::Copy { secondary_id } => self.run_copy_job(secondary_id),
            JobKind::Restore { secondary_id } => self.run_restore_job(secondary_id),
        }
    }

    fn run_backup_job(&mut self, database: &str, now: &str) -> Result<(), String> {
        let primary = self
            .ls_primary
            .iter()
            .find(|p| p.database == database)
            .ok_or_else(|| format!("{database} is not a log-shipping primary"))?
            .clone();
        let db = self.database(database).map_err(|e| e.to_string())?;
        if db.state != State::Online {
            return Err(SqlError::NotOnlineForBackup {
                database: database.to_owned(),
            }
            .to_string());
        }
        let name = log_share::log_shipping_name(database, &stamp(now));
        let path = log_share::join(&primary.backup_directory, &name);
        self.backup_log(database, &path, false, now)
            .map_err(|e| e.to_string())?;
        if let Some(p) = self.ls_primary.iter_mut().find(|p| p.database == database) {
            p.last_backup_file = Some(path);
        }
        Ok(())
    }

    /// The log-shipping secondary a copy or restore job serves.
    fn ls_secondary_of(&self, secondary_id: &str) -> Result<LsSecondary, String> {
        self.ls_secondary
            .iter()
            .find(|s| s.secondary_id == secondary_id)
            .cloned()
            .ok_or_else(|| "no such secondary".to_owned())
    }

    fn run_copy_job(&mut self, secondary_id: &str) -> Result<(), String> {
        let secondary = self.ls_secondary_of(secondary_id)?;
        let last = secondary
            .last_copied_file
            .as_deref()
            .map(file_name)
            .unwrap_or_default();
        let mut copied = None;
        for name in log_share::files(&secondary.backup_source_directory) {
            if !log_share::is_log_shipping_name(&secondary.primary_database, &name) || name <= last
            {
                continue;
            }
            let to = log_share::join(&secondary.backup_destination_directory, &name);
            std::fs::copy(
                log_share::join(&secondary.backup_source_directory, &name),
                &to,
            )
            .map_err(|e| format!("copy {name}: {e}"))?;
            copied = Some(to);
        }
        if let Some(to) = copied
            && let Some(s) = self
                .ls_secondary
                .iter_mut()
                .find(|s| s.secondary_id == secondary_id)
        {
            s.last_copied_file = Some(to);
        }
        Ok(())
    }

    fn run_restore_job(&mut self, secondary_id: &str) -> Result<(), String> {
        let secondary = self.ls_secondary_of(secondary_id)?;
        let databases: Vec<String> = self
            .ls_secondary_databases
            .iter()
            .filter(|d| d.secondary_id == secondary_id)
            .map(|d| d.database.clone())
            .collect();
        for database in databases {
            for name in log_share::files(&secondary.backup_destination_directory) {
                if !log_share::is_log_shipping_name(&secondary.primary_database, &name) {
                    continue;
                }
                let path = log_share::join(&secondary.backup_destination_directory, &name);
                let header = log_share::read(&path).map_err(|e| e.to_string())?;
                let redo = self
                    .database(&database)
                    .map_err(|e| e.to_string())?
                    .redo_start
                    .unwrap_or_default();
                // As sqllogship does: what the database already holds is skipped.
                if header.last_lsn <= redo {
                    continue;
                }
                self.restore_log(&database, &path)
                    .map_err(|e| e.to_string())?;
                if let Some(d) = self
                    .ls_secondary_databases
                    .iter_mut()
                    .find(|d| d.database == database)
                {
                    d.last_restored_file = Some(path);
                }
            }
        }
        Ok(())
    }

    // ---- log shipping (the sp_*log_shipping* procedures) ----

    /// `sp_add_log_shipping_primary_database`; returns (backup job id, primary id).
    pub fn add_ls_primary(
        &mut self,
        database: &str,
        directory: &str,
        share: &str,
        job_name: &str,
        retention: i64,
        overwrite: bool,
    ) -> Result<(String, String), SqlError> {
        self.database(database)?;
        if let Some(existing) = self.ls_primary.iter().find(|p| p.database == database) {
            if !overwrite {
                return Err(SqlError::PrimaryExists {
                    database: database.to_owned(),
                });
            }
            let old = existing.backup_job_id.clone();
            self.delete_job(&old);
            self.ls_primary.retain(|p| p.database != database);
        }
        let job = self.add_job(
            job_name,
            JobKind::Backup {
                database: database.to_owned(),
            },
        );
        let primary_id = self.new_guid();
        self.ls_primary.push(LsPrimary {
            primary_id: primary_id.clone(),
            database: database.to_owned(),
            backup_directory: directory.to_owned(),
            backup_share: share.to_owned(),
            backup_job_id: job.clone(),
            retention_minutes: retention,
            last_backup_file: None,
            secondaries: Vec::new(),
        });
        Ok((job, primary_id))
    }

    /// `sp_add_log_shipping_primary_secondary`.
    pub fn add_ls_primary_secondary(
        &mut self,
        database: &str,
        server: &str,
        secondary_database: &str,
        overwrite: bool,
    ) -> Result<(), SqlError> {
        let primary = self
            .ls_primary
            .iter_mut()
            .find(|p| p.database == database)
            .ok_or_else(|| SqlError::NotLogShippingPrimary {
                database: database.to_owned(),
            })?;
        let entry = (server.to_owned(), secondary_database.to_owned());
        if primary.secondaries.contains(&entry) {
            if !overwrite {
                return Err(SqlError::SecondaryExists {
                    server: server.to_owned(),
                    database: secondary_database.to_owned(),
                    primary: database.to_owned(),
                });
            }
        } else {
            primary.secondaries.push(entry);
        }
        Ok(())
    }

    /// `sp_add_log_shipping_secondary_primary`; returns (copy job, restore job, secondary id).
    #[allow(clippy::too_many_arguments)]
    pub fn add_ls_secondary_primary(
        &mut self,
        primary_server: &str,
        primary_database: &str,
        source: &str,
        destination: &str,
        copy_job_name: &str,
        restore_job_name: &str,
        retention: i64,
        overwrite: bool,
    ) -> Result<(String, String, String), SqlError> {
        if let Some(existing) = self
            .ls_secondary
            .iter()
            .find(|s| s.primary_server == primary_server && s.primary_database == primary_database)
            .cloned()
        {
            if !overwrite {
                return Err(SqlError::PrimaryRegistered {
                    server: primary_server.to_owned(),
                    database: primary_database.to_owned(),
                });
            }
            self.delete_job(&existing.copy_job_id);
            self.delete_job(&existing.restore_job_id);
            self.ls_secondary
                .retain(|s| s.secondary_id != existing.secondary_id);
        }
        let secondary_id = self.new_guid();
        let copy = self.add_job(
            copy_job_name,
            JobKind::Copy {
                secondary_id: secondary_id.clone(),
            },
        );
        let restore = self.add_job(
            restore_job_name,
            JobKind::Restore {
                secondary_id: secondary_id.clone(),
            },
        );
        // Secondary databases registered under the previous entry move to this one.
        for d in &mut self.ls_secondary_databases {
            if !self
                .ls_secondary
                .iter()
                .any(|s| s.secondary_id == d.secondary_id)
            {
                d.secondary_id = secondary_id.clone();
            }
        }
        self.ls_secondary.push(LsSecondary {
            secondary_id: secondary_id.clone(),
            primary_server: primary_server.to_owned(),
            primary_database: primary_database.to_owned(),
            backup_source_directory: source.to_owned(),
            backup_destination_directory: destination.to_owned(),
            file_retention_period: retention,
            copy_job_id: copy.clone(),
            restore_job_id: restore.clone(),
            last_copied_file: None,
        });
        Ok((copy, restore, secondary_id))
    }

    /// `sp_add_log_shipping_secondary_database`, its parameters one each.
    #[allow(clippy::too_many_arguments)]
    pub fn add_ls_secondary_database(
        &mut self,
        database: &str,
        primary_server: &str,
        primary_database: &str,
        restore_delay: i64,
        restore_mode: i64,
        disconnect_users: i64,
        overwrite: bool,
    ) -> Result<(), SqlError> {
        let secondary = self
            .ls_secondary
            .iter()
            .find(|s| s.primary_server == primary_server && s.primary_database == primary_database)
            .ok_or_else(|| SqlError::PrimaryNotRegistered {
                server: primary_server.to_owned(),
                database: primary_database.to_owned(),
            })?
            .secondary_id
            .clone();
        self.database(database)?;
        if self
            .ls_secondary_databases
            .iter()
            .any(|d| d.database == database)
        {
            if !overwrite {
                return Err(SqlError::SecondaryDatabaseExists {
                    database: database.to_owned(),
                });
            }
            self.ls_secondary_databases
                .retain(|d| d.database != database);
        }
        self.ls_secondary_databases.push(LsSecondaryDatabase {
            database: database.to_owned(),
            secondary_id: secondary,
            restore_delay,
            restore_mode,
            disconnect_users,
            last_restored_file: None,
        });
        Ok(())
    }

    /// `sp_delete_log_shipping_secondary_database`: also removes the primary's entry and its
    /// copy and restore jobs when no other secondary database uses them, and the history.
    pub fn delete_ls_secondary_database(&mut self, database: &str) -> Result<(), SqlError> {
        let Some(entry) = self
            .ls_secondary_databases
            .iter()
            .find(|d| d.database == database)
            .cloned()
        else {
            return Err(SqlError::NotLogShippingSecondary {
                database: database.to_owned(),
            });
        };
        self.ls_secondary_databases
            .retain(|d| d.database != database);
        let others = self
            .ls_secondary_databases
            .iter()
            .any(|d| d.secondary_id == entry.secondary_id);
        if !others
            && let Some(secondary) = self
                .ls_secondary
                .iter()
                .find(|s| s.secondary_id == entry.secondary_id)
                .cloned()
        {
            self.delete_job(&secondary.copy_job_id);
            self.delete_job(&secondary.restore_job_id);
            self.ls_secondary
                .retain(|s| s.secondary_id != entry.secondary_id);
        }
        Ok(())
    }
}

/// The file name of a path of either separator.
pub fn file_name(path: &str) -> String {
    path.rsplit(['/', '\\']).next().unwrap_or(path).to_owned()
}

/// `2026-11-26T08:00:00` → `20261126080000`.
pub fn stamp(now: &str) -> String {
    now.chars().filter(char::is_ascii_digit).take(14).collect()
}
