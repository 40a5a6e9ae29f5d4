//! Estate locks: keys a runbook declares under `locks:` (`sql:backup-sql/mgc`) that no two
//! active runs in one state directory may hold at once, whatever their runbooks, so that the
//! failover and the failback of one database never run together. `run`, `resume` and
//! `rollback` take them, after the runbook's own lock ([`crate::lock`]).
//!
//! A lock is a file under `<state>/locks/estate/` holding its holder, an exclusive lock file
//! ([`crate::lock_file`]): of two processes racing for a key exactly one wins, a lock whose
//! process is gone on this host is taken over, as the runbook's own lock is, and one held from
//! another host never is.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::context::{Context, RunInfo};
use crate::lock::{Holder, host};
use crate::lock_file::{Held, LockFile, Refused};
use crate::model::Runbook;

/// Who holds an estate lock: the run, and the key and runbook for the operator who reads it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EstateHolder {
    #[serde(flatten)]
    pub holder: Holder,
    pub key: String,
    pub runbook: String,
}

impl Held for EstateHolder {
    fn holder(&self) -> &Holder {
        &self.holder
    }
}

/// Why the estate locks were not taken.
#[derive(Debug, thiserror::Error)]
pub enum EstateLockError {
    #[error(
        "estate lock `{key}` is held by run {} of `{}` (pid {} on {}, started {}); nothing was run. Wait for that run to end. A lock held from another host is never taken over: if that run is gone for good, remove `{}` by hand",
        holder.holder.run_id, holder.runbook, holder.holder.pid, holder.holder.host, holder.holder.started, path.display()
    )]
    Held {
        key: String,
        holder: Box<EstateHolder>,
        path: PathBuf,
    },
    #[error("lock `{template}` (at {at}) cannot be rendered: {reason}; nothing was run")]
    Render {
        template: String,
        at: String,
        reason: String,
    },
    #[error("lock `{template}` (at {at}) renders to an empty key; nothing was run")]
    Empty { template: String, at: String },
    #[error(
        "estate lock file `{path}` cannot be read as a lock ({reason}); if no run holds it, remove it by hand; nothing was run"
    )]
    Unreadable { path: String, reason: String },
    #[error("cannot take the estate lock `{path}`: {reason}; nothing was run")]
    Io { path: String, reason: String },
}

/// The held estate locks of a run; released when dropped.
#[derive(Debug, Default)]
pub struct EstateLocks {
    _held: Vec<LockFile<EstateHolder>>,
}

/// The keys of `runbook`'s `locks`, rendered with the run's params and `run` (no secrets: a
/// key is written in a file and shown to other runs), sorted and without repeats. `file` is
/// the runbook file, read again only to say where a key that cannot be rendered is written.
pub fn keys(
    runbook: &Runbook,
    params: &serde_json::Map<String, serde_json::Value>,
    run: &RunInfo,
    file: &Path,
) -> Result<Vec<String>, EstateLockError> {
    let value = Context::new(params, &[], run).value();
    let templates = crate::template::Templates::new();
    let at = |offset: usize| {
        let source = std::fs::read_to_string(file).unwrap_or_default();
        let (line, column) = crate::line_index::LineIndex::new(&source).position(offset);
        format!("{}:{line}:{column}", file.display())
    };
    let mut keys = Vec::new();
    for template in &runbook.locks {
        let key = templates
            .render(template, &value)
            .map_err(|e| EstateLockError::Render {
                template: template.value.clone(),
                at: at(template.span.offset()),
                reason: crate::template::error_text(&e),
            })?;
        let key = key.trim().to_owned();
        if key.is_empty() {
            return Err(EstateLockError::Empty {
                template: template.value.clone(),
                at: at(template.span.offset()),
            });
        }
        keys.push(key);
    }
    keys.sort();
    keys.dedup();
    Ok(keys)
}

/// Takes every lock of `keys` for the run, or none. Returns the locks and the holders of stale
/// locks that were taken over (other runs whose process is gone).
pub fn acquire(
    state: &Path,
    keys: &[String],
    runbook: &str,
    run_id: &str,
    started: &str,
) -> Result<(EstateLocks, Vec<EstateHolder>), EstateLockError> {
    let mut locks = EstateLocks::default();
    let mut taken_over = Vec::new();
    if keys.is_empty() {
        return Ok((locks, taken_over));
    }
    let dir = state.join("locks").join("estate");
    for key in keys {
        let me = EstateHolder {
            holder: Holder {
                run_id: run_id.to_owned(),
                pid: std::process::id(),
                host: host(),
                started: started.to_owned(),
            },
            key: key.clone(),
            runbook: runbook.to_owned(),
        };
        let path = dir.join(file_name(key));
        // On an error the locks taken so far are released as `locks` drops.
        let (lock, stale) =
            crate::lock_file::take(&dir, path.clone(), me).map_err(|refused| match refused {
                Refused::Held(holder) => EstateLockError::Held {
                    key: key.clone(),
                    holder: Box::new(holder),
                    path: path.clone(),
                },
                Refused::Unreadable { reason } => EstateLockError::Unreadable {
                    path: path.display().to_string(),
                    reason,
                },
                Refused::Io { path, reason } => EstateLockError::Io {
                    path: path.display().to_string(),
                    reason: reason.to_string(),
                },
            })?;
        taken_over.extend(stale);
        locks._held.push(lock);
    }
    Ok((locks, taken_over))
}

/// The lock file's name: the key with every byte outside `[A-Za-z0-9._-]` as `%XX`, so that
/// two keys never share a file and an operator can tell which key a file is; a long key is
/// named by its hash instead.
pub fn file_name(key: &str) -> String {
    let mut name = String::with_capacity(key.len() + 5);
    for b in key.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-') {
            name.push(char::from(b));
        } else {
            name.push_str(&format!("%{b:02X}"));
        }
    }
    if name.len() > 200 || name.starts_with('.') {
        name = format!("sha256-{}", crate::journal::hash(key.as_bytes()));
    }
    name.push_str(".lock");
    name
}

#[cfg(test)]
mod tests {
    use super::file_name;

    #[test]
    fn keys_get_distinct_readable_file_names() {
        assert_eq!(file_name("sql:backup/mgc"), "sql%3Abackup%2Fmgc.lock");
        assert_ne!(file_name("a/b"), file_name("a%2Fb"));
        assert!(file_name(&"x".repeat(300)).starts_with("sha256-"));
        assert!(file_name("..").starts_with("sha256-"));
    }
}
