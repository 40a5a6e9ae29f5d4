//! One active run per runbook name per state directory: `<state>/locks/<name>.lock` says who
//! holds it. It is an exclusive lock file ([`crate::lock_file`]): of runs racing for it exactly
//! one wins, a lock whose process is gone on this host is taken over, one held from another
//! host never is, and a file there that holds no holder is refused, never removed.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::lock_file::{LockFile, Refused};

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Holder {
    pub run_id: String,
    pub pid: u32,
    pub host: String,
    pub started: String,
}

/// A held lock; released when dropped.
#[derive(Debug)]
pub struct Lock {
    _file: LockFile<Holder>,
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(
        "runbook `{runbook}` is already running: run {} (pid {} on {}, started {}); wait for it to end, or stop that process first",
        holder.run_id, holder.pid, holder.host, holder.started
    )]
    Held { runbook: String, holder: Holder },
    #[error(
        "the run lock `{path}` of runbook `{runbook}` holds no run ({reason}); nothing was run. A run of an older `runbook` may be writing it, or one crashed while it did: if no run of `{runbook}` is active (`runbook runs`, `ps`), remove `{path}` by hand"
    )]
    Unreadable {
        runbook: String,
        path: String,
        reason: String,
    },
    #[error("cannot take the run lock `{path}`: {reason}")]
    Io { path: String, reason: String },
}

pub fn host() -> String {
    // Read once per process: every command's journal record names it.
    static HOST: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HOST.get_or_init(|| {
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_owned())
            .or_else(|_| std::env::var("HOSTNAME"))
            .unwrap_or_else(|_| "unknown".to_owned())
    })
    .clone()
}

/// The live holder of any lock that names `run_id`: the run is in progress. A holder on
/// another host cannot be checked from here, so it counts as live.
pub fn running(state: &Path, run_id: &str) -> Option<Holder> {
    let here = host();
    std::fs::read_dir(state.join("locks"))
        .ok()?
        .filter_map(|e| e.ok())
        .filter(|e| e.path().extension().is_some_and(|x| x == "lock"))
        .filter_map(|e| std::fs::read_to_string(e.path()).ok())
        .filter_map(|text| serde_json::from_str::<Holder>(&text).ok())
        .find(|h| h.run_id == run_id && (h.host != here || alive(h.pid)))
}

/// Whether process `pid` of this host is running (a zombie is not).
pub(crate) fn alive(pid: u32) -> bool {
    // A zombie is as good as gone; /proc tells, where signal 0 would not.
    i32::try_from(pid)
        .ok()
        .and_then(crate::steps::process_group::stat)
        .is_some_and(|s| !matches!(s.state, 'Z' | 'X'))
}

/// Takes the lock of `runbook` for `run_id`.
/// Returns the lock and, when a stale lock was taken over, who had left it.
pub fn acquire(
    state: &Path,
    runbook: &str,
    run_id: &str,
    started: &str,
) -> Result<(Lock, Option<Holder>), LockError> {
    let dir = state.join("locks");
    let path = dir.join(format!("{runbook}.lock"));
    let me = Holder {
        run_id: run_id.to_owned(),
        pid: std::process::id(),
        host: host(),
        started: started.to_owned(),
    };
    match crate::lock_file::take(&dir, path.clone(), me) {
        Ok((file, stale)) => Ok((Lock { _file: file }, stale)),
        Err(Refused::Held(holder)) => Err(LockError::Held {
            runbook: runbook.to_owned(),
            holder,
        }),
        Err(Refused::Unreadable { reason }) => Err(LockError::Unreadable {
            runbook: runbook.to_owned(),
            path: path.display().to_string(),
            reason,
        }),
        Err(Refused::Io { path, reason }) => Err(LockError::Io {
            path: path.display().to_string(),
            reason: reason.to_string(),
        }),
    }
}
