//! One active run per runbook name per state directory. The lock file says who holds it; a
//! lock whose process is gone is taken over.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

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
    path: PathBuf,
}

impl Drop for Lock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(
        "runbook `{runbook}` is already running: run {} (pid {} on {}, started {}); wait for it to end, or stop that process first",
        holder.run_id, holder.pid, holder.host, holder.started
    )]
    Held { runbook: String, holder: Holder },
    #[error("cannot take the run lock `{path}`: {reason}")]
    Io { path: String, reason: String },
}

pub fn host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_else(|_| "unknown".to_owned())
}

/// The live holder of any lock that names `run_id`: the run is in progress. A holder on
/// another host cannot be checked from here, so it counts as live.
pub fn running(state: &Path, run_id: &str) -> Option<Holder> {
    let here = host();
    std::fs::read_dir(state.join("locks"))
        .ok()?
        .filter_map(|e| e.ok())
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
    let io = |e: std::io::Error| LockError::Io {
        path: path.display().to_string(),
        reason: e.to_string(),
    };
    std::fs::create_dir_all(&dir).map_err(io)?;
    let me = Holder {
        run_id: run_id.to_owned(),
        pid: std::process::id(),
        host: host(),
        started: started.to_owned(),
    };
    let mut taken_over = None;
    for round in 0..4 {
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
        {
            Ok(mut file) => {
                let text = serde_json::to_string(&me).unwrap_or_default();
                file.write_all(text.as_bytes())
                    .and_then(|()| file.sync_all())
                    .map_err(io)?;
                return Ok((Lock { path }, taken_over));
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                let text = std::fs::read_to_string(&path).unwrap_or_default();
                match serde_json::from_str::<Holder>(&text) {
                    // Only a lock whose process is gone is taken, even our own run's (a resume):
                    // a live holder is still doing the run's work.
                    Ok(holder) if holder.host == me.host && !alive(holder.pid) => {
                        std::fs::remove_file(&path).map_err(io)?;
                        if holder.run_id != run_id {
                            taken_over = Some(holder);
                        }
                    }
                    Ok(holder) => {
                        return Err(LockError::Held {
                            runbook: runbook.to_owned(),
                            holder,
                        });
                    }
                    // Being written right now: look again shortly. Still unreadable after
                    // that, it was left half-written by a crash: take it over.
                    Err(_) if round < 2 => std::thread::sleep(std::time::Duration::from_millis(50)),
                    Err(_) => std::fs::remove_file(&path).map_err(io)?,
                }
            }
            Err(e) => return Err(io(e)),
        }
    }
    Err(LockError::Io {
        path: path.display().to_string(),
        reason: "the lock file keeps changing".to_owned(),
    })
}
