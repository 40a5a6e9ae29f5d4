//! The run journal: every event of a run appended to `<state>/runs/<id>/journal.jsonl` and
//! flushed to disk (`sync_data`) before the engine goes on, so that after a crash `resume`
//! knows exactly what completed. Lines pass through the secret masker like all output.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::exec::event::{Event, Sink};
use crate::mask::Masker;

/// Where runs are kept: `--state-dir`, else `RUNBOOK_STATE_DIR`, else `.runbook`.
pub fn state_dir(flag: Option<&Path>) -> PathBuf {
    flag.map(Path::to_path_buf)
        .or_else(|| std::env::var_os("RUNBOOK_STATE_DIR").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from(".runbook"))
}

pub fn run_dir(state: &Path, run_id: &str) -> PathBuf {
    state.join("runs").join(run_id)
}

pub fn journal_path(state: &Path, run_id: &str) -> PathBuf {
    run_dir(state, run_id).join("journal.jsonl")
}

/// Appends events to a journal file.
pub struct Journal {
    file: Mutex<File>,
    masker: Masker,
    failed: std::sync::atomic::AtomicBool,
}

impl Journal {
    /// Opens (creating if needed) the journal of `run_id` for appending.
    pub fn open(state: &Path, run_id: &str, masker: Masker) -> std::io::Result<Self> {
        std::fs::create_dir_all(run_dir(state, run_id))?;
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(journal_path(state, run_id))?;
        Ok(Self {
            file: Mutex::new(file),
            masker,
            failed: std::sync::atomic::AtomicBool::new(false),
        })
    }
}

impl Sink for Journal {
    fn emit(&self, event: &Event) {
        let mut line = serde_json::to_string(event).unwrap_or_default();
        line = self.masker.mask(&line).into_owned();
        line.push('\n');
        // On disk before the next side effect: an event that precedes one (a step or a
        // rollback starting) or ends the run is synced, which also flushes every line written
        // before it. The others (a step finished, a process id) ride on the next sync; a crash
        // before it leaves that step in doubt, never silently done.
        use crate::exec::event::EventKind as K;
        let sync = matches!(
            event.kind,
            K::RunStarted { .. }
                | K::RunContext { .. }
                | K::RunResumed { .. }
                | K::StepStarted { .. }
                | K::RollbackStarted { .. }
                | K::RollbackStepStarted { .. }
                | K::RunFinished { .. }
        );
        let Ok(mut file) = self.file.lock() else {
            return;
        };
        let written = file
            .write_all(line.as_bytes())
            .and_then(|()| if sync { file.sync_data() } else { Ok(()) });
        if let Err(e) = written
            && !self.failed.swap(true, std::sync::atomic::Ordering::Relaxed)
        {
            eprintln!(
                "error: cannot write the run journal: {e}; resume will not know what happened after this point"
            );
        }
    }
}

/// A journal that cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("cannot read journal `{path}`: {reason}")]
    Io { path: String, reason: String },
    #[error("journal `{path}` is corrupt at line {line}: {reason}")]
    Corrupt {
        path: String,
        line: usize,
        reason: String,
    },
    #[error("journal `{path}` is empty")]
    Empty { path: String },
}

/// Reads every event of a journal. A torn last line (a crash in the middle of a write) is
/// dropped; any other line that is not an event is an error naming the line.
pub fn read(path: &Path) -> Result<Vec<serde_json::Value>, JournalError> {
    let shown = path.display().to_string();
    let text = std::fs::read(path).map_err(|e| JournalError::Io {
        path: shown.clone(),
        reason: e.to_string(),
    })?;
    let text = String::from_utf8_lossy(&text);
    let complete = text.ends_with('\n');
    let lines: Vec<&str> = text.lines().collect();
    let mut events = Vec::with_capacity(lines.len());
    for (i, line) in lines.iter().enumerate() {
        let last = i + 1 == lines.len();
        match serde_json::from_str::<serde_json::Value>(line) {
            Ok(v) if v.get("event").and_then(|e| e.as_str()).is_some() => events.push(v),
            _ if last && !complete => break,
            Ok(_) => {
                return Err(JournalError::Corrupt {
                    path: shown,
                    line: i + 1,
                    reason: "not an event".to_owned(),
                });
            }
            Err(e) => {
                return Err(JournalError::Corrupt {
                    path: shown,
                    line: i + 1,
                    reason: e.to_string(),
                });
            }
        }
    }
    if events.is_empty() {
        return Err(JournalError::Empty { path: shown });
    }
    Ok(events)
}

/// Sends every event to several sinks, in order (journal first: it is the record).
pub struct Tee(pub Vec<std::sync::Arc<dyn Sink>>);

impl Sink for Tee {
    fn emit(&self, event: &Event) {
        for sink in &self.0 {
            sink.emit(event);
        }
    }
}

/// SHA-256 of the runbook file, hex.
pub fn hash(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
