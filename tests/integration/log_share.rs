//! Backup files of the rehearsal estate: real files in a temporary directory (the log share,
//! the copy folder, the full-backup share), whose content is a small JSON header instead of
//! pages. `RESTORE HEADERONLY`, `VERIFYONLY`, `FILELISTONLY`, `RESTORE LOG` and the
//! log-shipping jobs read them; `xp_dirtree` and `xp_fileexist` list and test the folders.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::sql_error::SqlError;

/// A log sequence number, as SQL Server shows it: a numeric(25,0).
pub type Lsn = u128;

/// What a backup file holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// A full database backup (`BackupType` 1).
    Database,
    /// A transaction-log backup (`BackupType` 2).
    Log,
}

/// The header of one backup file (what `RESTORE HEADERONLY` returns).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    pub database: String,
    #[serde(rename = "type")]
    pub kind: Kind,
    /// The log it holds: from `first_lsn` up to (not including) `last_lsn`; a full backup
    /// holds the database as of `last_lsn`.
    pub first_lsn: Lsn,
    pub last_lsn: Lsn,
    /// The server that took it (`@@SERVERNAME`).
    pub server: String,
    /// When it finished, UTC, `YYYY-MM-DDThh:mm:ss`.
    pub finished: String,
    /// The database's data file, for `RESTORE FILELISTONLY` and a restore without MOVE.
    pub data_file: String,
}

impl Header {
    /// `BackupType` of `RESTORE HEADERONLY`.
    pub fn backup_type(&self) -> i64 {
        match self.kind {
            Kind::Database => 1,
            Kind::Log => 2,
        }
    }
}

/// Writes a backup file (`WITH INIT`: whatever was there is replaced).
pub fn write(path: &str, header: &Header) -> Result<(), SqlError> {
    let text = serde_json::to_string_pretty(header).expect("a header serialises");
    std::fs::write(path, text).map_err(|e| SqlError::CannotOpenDevice {
        path: path.to_owned(),
        os: os_error(&e),
    })
}

/// Reads a backup file's header.
pub fn read(path: &str) -> Result<Header, SqlError> {
    let text = std::fs::read_to_string(path).map_err(|e| SqlError::CannotOpenDevice {
        path: path.to_owned(),
        os: os_error(&e),
    })?;
    serde_json::from_str(&text).map_err(|_| SqlError::MediaIncorrectlyFormed {
        path: path.to_owned(),
    })
}

fn os_error(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "2(The system cannot find the file specified.)".to_owned(),
        std::io::ErrorKind::PermissionDenied => "5(Access is denied.)".to_owned(),
        _ => format!("{e}"),
    }
}

/// The files of a folder, by name (what `xp_dirtree FOLDER, 1, 1` lists as files). A
/// folder that does not exist lists nothing, as xp_dirtree does.
pub fn files(folder: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(folder)
        .map(|entries| {
            entries
                .flatten()
                .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// `xp_fileexist`'s row: File Exists, File is a Directory, Parent Directory Exists.
pub fn exists(path: &str) -> (i64, i64, i64) {
    let p = Path::new(path);
    let parent = p.parent().is_some_and(|d| d.is_dir());
    (
        i64::from(p.is_file()),
        i64::from(p.is_dir()),
        i64::from(parent),
    )
}

/// `folder` + separator + `name`, with the separator the folder already uses.
pub fn join(folder: &str, name: &str) -> String {
    let sep = if folder.contains('\\') && !folder.contains('/') {
        '\\'
    } else {
        '/'
    };
    format!("{}{sep}{name}", folder.trim_end_matches(['/', '\\']))
}

/// The log-shipping name of a log backup taken at `stamp` (`YYYYMMDDhhmmss`, UTC).
pub fn log_shipping_name(database: &str, stamp: &str) -> String {
    format!("{database}_{stamp}.trn")
}

/// Whether `name` is a log-shipping log backup of `database` (`mgc_YYYYMMDDhhmmss.trn`).
pub fn is_log_shipping_name(database: &str, name: &str) -> bool {
    name.strip_prefix(database)
        .and_then(|rest| rest.strip_prefix('_'))
        .and_then(|rest| rest.strip_suffix(".trn"))
        .is_some_and(|stamp| stamp.len() == 14 && stamp.bytes().all(|b| b.is_ascii_digit()))
}
