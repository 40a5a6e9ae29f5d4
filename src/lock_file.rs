//! An exclusive lock file with a holder: the one mechanism behind a runbook's run lock
//! ([`crate::lock`]) and the estate locks ([`crate::estate_lock`]).
//!
//! The holder is written whole in a file of its own, then hard-linked to the lock's name:
//! `link` fails when the name exists, so of two processes racing for a lock exactly one wins,
//! and no one ever reads a half-written lock (the classic lock that also holds on NFS, where
//! `O_EXCL` long did not). A lock whose process is gone on this host is taken over: it is
//! replaced (`rename`) under an `flock` and only if the file still holds the dead holder, so of
//! processes taking over the same stale lock exactly one wins, and the name is never free. A lock held from another host is never
//! taken over, and a file at the lock's name that holds no holder is never removed: it can
//! only be left by something other than this mechanism, and nothing here can tell whether a
//! run is behind it.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::lock::{Holder, alive};

/// What a lock file holds: a holder, and whatever else its kind of lock tells the operator.
pub trait Held: Serialize + DeserializeOwned {
    fn holder(&self) -> &Holder;
}

impl Held for Holder {
    fn holder(&self) -> &Holder {
        self
    }
}

/// A held lock file; removed when dropped, if it is still ours.
#[derive(Debug)]
pub struct LockFile<T: Held> {
    path: PathBuf,
    me: T,
}

impl<T: Held> Drop for LockFile<T> {
    fn drop(&mut self) {
        // Only our own: a file that says otherwise is not ours to remove.
        if read_holder::<T>(&self.path).is_ok_and(|h| same(h.holder(), self.me.holder())) {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Why a lock file was not taken. Each kind of lock words these in its own error.
#[derive(Debug)]
pub enum Refused<T> {
    /// Held by a live process on this host, or by a process on another host.
    Held(T),
    /// The file at the lock's name holds no holder.
    Unreadable { reason: String },
    /// The file system failed at `path`.
    Io { path: PathBuf, reason: Trouble },
}

/// A file system failure while taking a lock.
#[derive(Debug, thiserror::Error)]
pub enum Trouble {
    #[error("{0}")]
    Os(#[from] std::io::Error),
    #[error("the lock file keeps changing")]
    Changing,
}

/// Takes the lock at `path` (a file of `dir`) for `me`. Returns the lock and the holder of a
/// stale lock it replaced, unless that was `me`'s own run (a resume).
pub fn take<T: Held>(
    dir: &Path,
    path: PathBuf,
    me: T,
) -> Result<(LockFile<T>, Option<T>), Refused<T>> {
    let io = |at: &Path, e: std::io::Error| Refused::Io {
        path: at.to_path_buf(),
        reason: Trouble::Os(e),
    };
    std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
    let text = serde_json::to_string(&me).map_err(|e| io(&path, std::io::Error::other(e)))?;
    for _ in 0..8 {
        let staged = Staged::write(dir, &text).map_err(|(at, e)| io(&at, e))?;
        match std::fs::hard_link(&staged.0, &path) {
            Ok(()) => return Ok((LockFile { path, me }, None)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(io(&path, e)),
        }
        let found = match std::fs::read_to_string(&path) {
            Ok(found) => found,
            // Released between the link and the read: try again.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(io(&path, e)),
        };
        let holder: T = serde_json::from_str(&found).map_err(|e| Refused::Unreadable {
            reason: e.to_string(),
        })?;
        let stale = holder.holder().host == me.holder().host && !alive(holder.holder().pid);
        if !stale {
            return Err(Refused::Held(holder));
        }
        if replace_if_still(dir, &path, &found, &staged.0).map_err(|(at, e)| io(&at, e))? {
            let left = (holder.holder().run_id != me.holder().run_id).then_some(holder);
            return Ok((LockFile { path, me }, left));
        }
    }
    Err(Refused::Io {
        path,
        reason: Trouble::Changing,
    })
}

/// Replaces the stale lock at `path` with `staged` if it still holds `stale`; whether it did.
/// Under an `flock` shared by everyone who takes a lock of `dir` over, so that a process that
/// also found it stale cannot replace the lock the first one has taken since. The name is
/// never free meanwhile (`rename` replaces it at once), so the process that replaced the stale
/// lock is the one that holds it, and says whose it was.
fn replace_if_still(
    dir: &Path,
    path: &Path,
    stale: &str,
    staged: &Path,
) -> Result<bool, (PathBuf, std::io::Error)> {
    let guard_path = dir.join(".takeover");
    let guard = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&guard_path)
        .map_err(at(&guard_path))?;
    guard.lock().map_err(at(&guard_path))?;
    let result = match std::fs::read_to_string(path) {
        Ok(now) if now == stale => std::fs::rename(staged, path)
            .map(|()| true)
            .map_err(at(path)),
        // Taken over by another process, or released: look again.
        Ok(_) => Ok(false),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err((path.to_path_buf(), e)),
    };
    let _ = guard.unlock();
    result
}

/// Names the file an error happened at.
fn at(path: &Path) -> impl FnOnce(std::io::Error) -> (PathBuf, std::io::Error) + '_ {
    move |e| (path.to_path_buf(), e)
}

/// A lock written whole under a name of its own, removed when dropped (once linked, the
/// lock's name keeps it).
struct Staged(PathBuf);

impl Staged {
    fn write(dir: &Path, text: &str) -> Result<Self, (PathBuf, std::io::Error)> {
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
            .map_err(at(&staged.0))?;
        file.write_all(text.as_bytes())
            .and_then(|()| file.sync_all())
            .map_err(at(&staged.0))?;
        Ok(staged)
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// The holder in the lock file at `path`.
fn read_holder<T: Held>(path: &Path) -> Result<T, std::io::Error> {
    let mut text = String::new();
    std::io::Read::read_to_string(&mut File::open(path)?, &mut text)?;
    serde_json::from_str(&text).map_err(std::io::Error::other)
}

fn same(a: &Holder, b: &Holder) -> bool {
    a.run_id == b.run_id && a.pid == b.pid && a.host == b.host
}
