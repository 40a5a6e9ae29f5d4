//! Estate locks: keys a runbook declares under `locks:` (`sql:backup-sql/mgc`) that no two
//! active runs in one state directory may hold at once, whatever their runbooks, so that the
//! failover and the failback of one database never run together. `run`, `resume` and
//! `rollback` take them, after the runbook's own lock ([`crate::lock`]).
//!
//! A lock is a file under `<state>/locks/estate/` holding its holder. It is made whole in a
//! file of its own, then hard-linked to its name: `link` fails when the name exists, so of two
//! processes racing for a key exactly one wins, and no one ever reads a half-written lock
//! (the classic lock that also holds on NFS, where `O_EXCL` long did not). A lock whose process
//! is gone on this host is taken over, as the runbook's own lock is; removing it happens under
//! an `flock` and only if the file is still the dead holder's, so two processes taking over the
//! same stale lock cannot both win. A lock held from another host is never taken over.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::context::{Context, RunInfo};
use crate::lock::{Holder, alive, host};
use crate::model::Runbook;

/// Who holds an estate lock: the run, and the key and runbook for the operator who reads it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EstateHolder {
    #[serde(flatten)]
    pub holder: Holder,
    pub key: String,
    pub runbook: String,
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
    held: Vec<(PathBuf, EstateHolder)>,
}

impl Drop for EstateLocks {
    fn drop(&mut self) {
        for (path, me) in &self.held {
            // Only our own: a file that says otherwise is not ours to remove.
            if read_holder(path).is_ok_and(|h| same(&h, me)) {
                let _ = std::fs::remove_file(path);
            }
        }
    }
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
                at: at(template.span.offset),
                reason: crate::template::error_text(&e),
            })?;
        let key = key.trim().to_owned();
        if key.is_empty() {
            return Err(EstateLockError::Empty {
                template: template.value.clone(),
                at: at(template.span.offset),
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
    std::fs::create_dir_all(&dir).map_err(|e| io(&dir, &e))?;
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
        if let Some(stale) = take(&dir, &path, &me)? {
            taken_over.push(stale);
        }
        locks.held.push((path, me));
    }
    Ok((locks, taken_over))
}

/// Takes one lock; returns the stale holder it replaced, if any (not our own run's).
fn take(
    dir: &Path,
    path: &Path,
    me: &EstateHolder,
) -> Result<Option<EstateHolder>, EstateLockError> {
    let text = serde_json::to_string(me).unwrap_or_default();
    let mut taken_over = None;
    for _ in 0..8 {
        let staged = Staged::write(dir, &text)?;
        match std::fs::hard_link(&staged.0, path) {
            Ok(()) => return Ok(taken_over),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(io(path, &e)),
        }
        drop(staged);
        let found = match std::fs::read_to_string(path) {
            Ok(found) => found,
            // Released between the link and the read: try again.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(io(path, &e)),
        };
        let holder: EstateHolder =
            serde_json::from_str(&found).map_err(|e| EstateLockError::Unreadable {
                path: path.display().to_string(),
                reason: e.to_string(),
            })?;
        let here = holder.holder.host == me.holder.host;
        if !here || alive(holder.holder.pid) {
            return Err(EstateLockError::Held {
                key: me.key.clone(),
                holder: Box::new(holder),
                path: path.to_path_buf(),
            });
        }
        remove_if_still(dir, path, &found)?;
        if holder.holder.run_id != me.holder.run_id {
            taken_over = Some(holder);
        }
    }
    Err(EstateLockError::Io {
        path: path.display().to_string(),
        reason: "the lock file keeps changing".to_owned(),
    })
}

/// Removes the stale lock at `path` if it still holds `stale`. Under an `flock` shared by
/// everyone who takes a lock over, so that a process that also found it stale cannot remove
/// the lock the first one has taken since.
fn remove_if_still(dir: &Path, path: &Path, stale: &str) -> Result<(), EstateLockError> {
    let guard_path = dir.join(".takeover");
    let guard = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&guard_path)
        .map_err(|e| io(&guard_path, &e))?;
    guard.lock().map_err(|e| io(&guard_path, &e))?;
    let result = match std::fs::read_to_string(path) {
        Ok(now) if now == stale => std::fs::remove_file(path).map_err(|e| io(path, &e)),
        // Taken over by another process, or released: look again.
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io(path, &e)),
    };
    let _ = guard.unlock();
    result
}

/// A lock written whole under a name of its own, removed when dropped (once linked, the
/// lock's name keeps it).
struct Staged(PathBuf);

impl Staged {
    fn write(dir: &Path, text: &str) -> Result<Self, EstateLockError> {
        let path = dir.join(format!(
            ".staged-{}-{:08x}",
            std::process::id(),
            fastrand::u32(..)
        ));
        let staged = Self(path);
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&staged.0)
            .map_err(|e| io(&staged.0, &e))?;
        file.write_all(text.as_bytes())
            .and_then(|()| file.sync_all())
            .map_err(|e| io(&staged.0, &e))?;
        Ok(staged)
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn read_holder(path: &Path) -> Result<EstateHolder, std::io::Error> {
    let mut text = String::new();
    std::io::Read::read_to_string(&mut File::open(path)?, &mut text)?;
    serde_json::from_str(&text).map_err(std::io::Error::other)
}

fn same(a: &EstateHolder, b: &EstateHolder) -> bool {
    a.holder.run_id == b.holder.run_id
        && a.holder.pid == b.holder.pid
        && a.holder.host == b.holder.host
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

fn io(path: &Path, e: &std::io::Error) -> EstateLockError {
    EstateLockError::Io {
        path: path.display().to_string(),
        reason: e.to_string(),
    }
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
