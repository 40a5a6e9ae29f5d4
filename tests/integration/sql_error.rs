//! The errors the rehearsal's SQL Servers raise: SQL Server's own numbers, severities and
//! wording (the Database Engine's message catalogue, errors 1000–41399), so that a runbook
//! meets in rehearsal what it would meet on a real server. The wording lives only here.

use crate::tds::Reply;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SqlError {
    /// 102: a statement the rehearsal does not know (a real server would either run it or
    /// refuse it; the rehearsal cannot say which, so it refuses it, naming it).
    NotModelled { statement: String },
    /// 207
    InvalidColumn { column: String },
    /// 208
    InvalidObject { object: String },
    /// 2812
    NoSuchProcedure { procedure: String },
    /// 8145
    NotAParameter {
        parameter: String,
        procedure: String,
    },
    /// 137
    MustDeclare { name: String },
    /// 8114
    ConvertFailed { from: String, to: String },
    /// 201
    MissingParameter {
        procedure: String,
        parameter: String,
    },
    /// 911
    NoSuchDatabase { database: String },
    /// 1416
    NotMirrored { database: String },
    /// 3101
    InUse,
    /// 3104
    RestoreMirrored { database: String },
    /// 3117
    NotReadyToRollForward,
    /// 3201
    CannotOpenDevice { path: String, os: String },
    /// 3241
    MediaIncorrectlyFormed { path: String },
    /// 3013: what every failed BACKUP or RESTORE ends with (`BACKUP LOG`, `RESTORE DATABASE`…).
    TerminatingAbnormally { statement: &'static str },
    /// BACKUP LOG WITH NORECOVERY on a mirroring principal: refused (error 3013, after the
    /// documented rule: "Backup of the principal database is allowed, but BACKUP LOG WITH
    /// NORECOVERY is not allowed").
    NoRecoveryOnPrincipal { database: String },
    /// 3154
    BackupOfAnotherDatabase { backup: String, database: String },
    /// 4214
    NoCurrentDatabaseBackup,
    /// 4305
    LogTooRecent { first: u128, redo: u128 },
    /// 4306
    PrecedingRestoreRecovered,
    /// 4326
    LogTooEarly { last: u128, redo: u128 },
    /// 6106
    NotActiveProcess { spid: i64 },
    /// 14262
    NoSuchJob { what: &'static str, value: String },
    /// 22022
    JobAlreadyRunning { job: String },
    /// 32008
    NotOnlineForBackup { database: String },
    /// 32009
    PrimaryExists { database: String },
    /// 32010
    NotLogShippingPrimary { database: String },
    /// 32012
    SecondaryExists {
        server: String,
        database: String,
        primary: String,
    },
    /// 32013
    SecondaryDatabaseExists { database: String },
    /// 32014
    NotLogShippingSecondary { database: String },
    /// 32023
    PrimaryNotRegistered { server: String, database: String },
    /// 32024
    PrimaryRegistered { server: String, database: String },
    /// RAISERROR(message, 16, …): error 50000.
    Raised { message: String, severity: u8 },
    /// A failure injected by a test.
    Injected,
}

impl SqlError {
    pub fn number(&self) -> i32 {
        use SqlError::*;
        match self {
            NotModelled { .. } => 102,
            InvalidColumn { .. } => 207,
            InvalidObject { .. } => 208,
            NoSuchProcedure { .. } => 2812,
            NotAParameter { .. } => 8145,
            MissingParameter { .. } => 201,
            MustDeclare { .. } => 137,
            ConvertFailed { .. } => 8114,
            NoSuchDatabase { .. } => 911,
            NotMirrored { .. } => 1416,
            InUse => 3101,
            RestoreMirrored { .. } => 3104,
            NotReadyToRollForward => 3117,
            CannotOpenDevice { .. } => 3201,
            MediaIncorrectlyFormed { .. } => 3241,
            TerminatingAbnormally { .. } | NoRecoveryOnPrincipal { .. } => 3013,
            BackupOfAnotherDatabase { .. } => 3154,
            NoCurrentDatabaseBackup => 4214,
            LogTooRecent { .. } => 4305,
            PrecedingRestoreRecovered => 4306,
            LogTooEarly { .. } => 4326,
            NotActiveProcess { .. } => 6106,
            NoSuchJob { .. } => 14262,
            JobAlreadyRunning { .. } => 22022,
            NotOnlineForBackup { .. } => 32008,
            PrimaryExists { .. } => 32009,
            NotLogShippingPrimary { .. } => 32010,
            SecondaryExists { .. } => 32012,
            SecondaryDatabaseExists { .. } => 32013,
            NotLogShippingSecondary { .. } => 32014,
            PrimaryNotRegistered { .. } => 32023,
            PrimaryRegistered { .. } => 32024,
            Raised { .. } | Injected => 50000,
        }
    }

    pub fn severity(&self) -> u8 {
        match self {
            SqlError::NotModelled { .. } => 15,
            SqlError::NoSuchDatabase { .. } => 16,
            SqlError::Raised { severity, .. } => *severity,
            _ => 16,
        }
    }

    /// The error as the server sends it; a failed BACKUP or RESTORE is followed by 3013, as
    /// SQL Server does.
    pub fn replies(&self) -> Vec<Reply> {
        let mut replies = vec![reply(self)];
        let follow = match self {
            SqlError::RestoreMirrored { .. }
            | SqlError::LogTooRecent { .. }
            | SqlError::LogTooEarly { .. }
            | SqlError::NotReadyToRollForward
            | SqlError::PrecedingRestoreRecovered
            | SqlError::BackupOfAnotherDatabase { .. }
            | SqlError::InUse => Some("RESTORE"),
            _ => None,
        };
        if let Some(what) = follow {
            replies.push(reply(&SqlError::TerminatingAbnormally { statement: what }));
        }
        replies
    }
}

fn reply(error: &SqlError) -> Reply {
    Reply::Error {
        number: error.number(),
        severity: error.severity(),
        state: 1,
        line: 1,
        message: error.to_string(),
    }
}

impl std::fmt::Display for SqlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use SqlError::*;
        match self {
            NotModelled { statement } => write!(
                f,
                "Incorrect syntax near '{}'. (The rehearsal estate does not know this statement, so it cannot say what SQL Server would do: {statement})",
                statement.split_whitespace().next().unwrap_or_default()
            ),
            InvalidColumn { column } => write!(f, "Invalid column name '{column}'."),
            InvalidObject { object } => write!(f, "Invalid object name '{object}'."),
            NoSuchProcedure { procedure } => {
                write!(f, "Could not find stored procedure '{procedure}'.")
            }
            NotAParameter {
                parameter,
                procedure,
            } => write!(
                f,
                "{parameter} is not a parameter for procedure {procedure}."
            ),
            MissingParameter {
                procedure,
                parameter,
            } => write!(
                f,
                "Procedure or function '{procedure}' expects parameter '{parameter}', which was not supplied."
            ),
            MustDeclare { name } => write!(f, "Must declare the scalar variable \"{name}\"."),
            ConvertFailed { from, to } => {
                write!(f, "Error converting data type {from} to {to}.")
            }
            NoSuchDatabase { database } => write!(
                f,
                "Database '{database}' does not exist. Make sure that the name is entered correctly."
            ),
            NotMirrored { database } => {
                write!(
                    f,
                    "Database \"{database}\" is not configured for database mirroring."
                )
            }
            InUse => write!(
                f,
                "Exclusive access could not be obtained because the database is in use."
            ),
            RestoreMirrored { database } => write!(
                f,
                "RESTORE cannot operate on database '{database}' because it is configured for database mirroring. Use ALTER DATABASE to remove mirroring if you intend to restore the database."
            ),
            NotReadyToRollForward => write!(
                f,
                "The log or differential backup cannot be restored because no files are ready to rollforward."
            ),
            CannotOpenDevice { path, os } => {
                write!(
                    f,
                    "Cannot open backup device '{path}'. Operating system error {os}."
                )
            }
            MediaIncorrectlyFormed { path } => write!(
                f,
                "The media family on device '{path}' is incorrectly formed. SQL Server cannot process this media family."
            ),
            TerminatingAbnormally { statement } => {
                write!(f, "{statement} is terminating abnormally.")
            }
            NoRecoveryOnPrincipal { database } => write!(
                f,
                "BACKUP LOG is terminating abnormally. Database '{database}' is a database mirroring principal: backup of the principal database is allowed, but BACKUP LOG WITH NORECOVERY is not allowed."
            ),
            BackupOfAnotherDatabase { backup, database } => write!(
                f,
                "The backup set holds a backup of a database other than the existing '{database}' database (it holds '{backup}')."
            ),
            NoCurrentDatabaseBackup => write!(
                f,
                "BACKUP LOG cannot be performed because there is no current database backup."
            ),
            LogTooRecent { first, redo } => write!(
                f,
                "The log in this backup set begins at LSN {first}, which is too recent to apply to the database. An earlier log backup that includes LSN {redo} can be restored."
            ),
            PrecedingRestoreRecovered => write!(
                f,
                "The preceding restore operation did not specify WITH NORECOVERY or WITH STANDBY. Restart the restore sequence, specifying WITH NORECOVERY or WITH STANDBY for all but the final step."
            ),
            LogTooEarly { last, redo } => write!(
                f,
                "The log in this backup set terminates at LSN {last}, which is too early to apply to the database. A more recent log backup that includes LSN {redo} can be restored."
            ),
            NotActiveProcess { spid } => {
                write!(f, "Process ID {spid} is not an active process ID.")
            }
            NoSuchJob { what, value } => {
                write!(f, "The specified {what} ('{value}') does not exist.")
            }
            JobAlreadyRunning { job } => write!(
                f,
                "SQLServerAgent Error: Request to run job {job} (from User runbook) refused because the job is already running from a request by Schedule 1 (Schedule)."
            ),
            NotOnlineForBackup { database } => write!(
                f,
                "Database {database} is not ONLINE. The backup job will not be performed until this database is brought online."
            ),
            PrimaryExists { database } => {
                write!(
                    f,
                    "A log shipping primary entry already exists for database {database}."
                )
            }
            NotLogShippingPrimary { database } => {
                write!(
                    f,
                    "Database {database} does not exist as log shipping primary."
                )
            }
            SecondaryExists {
                server,
                database,
                primary,
            } => write!(
                f,
                "Secondary {server}.{database} already exists for primary {primary}."
            ),
            SecondaryDatabaseExists { database } => write!(
                f,
                "A log shipping entry already exists for secondary database {database}."
            ),
            NotLogShippingSecondary { database } => {
                write!(
                    f,
                    "Database {database} does not exist as log shipping secondary."
                )
            }
            PrimaryNotRegistered { server, database } => write!(
                f,
                "An entry for primary server {server}, primary database {database} does not exist on this secondary. Register the primary first."
            ),
            PrimaryRegistered { server, database } => write!(
                f,
                "An entry for primary server {server}, primary database {database} already exists."
            ),
            Raised { message, .. } => write!(f, "{message}"),
            Injected => write!(f, "rehearsal: failure injected by the test"),
        }
    }
}
