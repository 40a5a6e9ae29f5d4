//! The run journal: every event of a run appended to `<state>/runs/<id>/journal.jsonl` and
//! flushed to disk (`sync_data`) before the engine goes on, so that after a crash `resume`
//! knows exactly what completed. Events arrive with their secret values already masked
//! ([`crate::exec::masked`]). Read back into the same typed events that were written.
//!
//! A `step_started` is written at once and synced at the step's [`Sink::commit`], just before
//! its process starts: steps that start together write theirs first, then one `fdatasync`
//! makes them all durable (a group commit), instead of one each.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::exec::event::{Event, EventKind, JOURNAL_VERSION, Sink, event};

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
    file: Mutex<Appender>,
    path: PathBuf,
}

/// The open file, and whether it holds a `step_started` written since its last sync.
struct Appender {
    file: File,
    unsynced_start: bool,
}

impl Journal {
    /// Opens (creating if needed) the journal of `run_id` for appending. A torn last line (a
    /// crash in the middle of a write) is cut off first: the next event must start a line of
    /// its own, or it would be glued onto the fragment and the journal corrupt for good.
    pub fn open(state: &Path, run_id: &str) -> std::io::Result<Self> {
        std::fs::create_dir_all(run_dir(state, run_id))?;
        let path = journal_path(state, run_id);
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .read(true)
            .open(&path)?;
        repair_torn_tail(&file)?;
        Ok(Self {
            file: Mutex::new(Appender {
                file,
                unsynced_start: false,
            }),
            path,
        })
    }

    fn lock(&self) -> std::io::Result<std::sync::MutexGuard<'_, Appender>> {
        self.file
            .lock()
            .map_err(|_| std::io::Error::other("journal lock poisoned"))
    }

    /// Appends one event. An event that precedes a side effect (a rollback starting) or
    /// begins or ends the run is synced, which also flushes every line written before it. A
    /// `step_started` is synced by [`Journal::commit`], which the step calls before its
    /// process starts. The others (a step finished, a process id) ride on the next sync; a
    /// crash before it leaves that step in doubt, never silently done.
    pub fn append(&self, event: &Event) -> std::io::Result<()> {
        let mut line = serde_json::to_string(event).map_err(std::io::Error::other)?;
        line.push('\n');
        use EventKind as K;
        let sync = matches!(
            event.kind,
            K::RunStarted { .. }
                | K::RunContext { .. }
                | K::RunResumed { .. }
                | K::RollbackStarted { .. }
                | K::RollbackStepStarted { .. }
                | K::RunFinished { .. }
        );
        let mut appender = self.lock()?;
        appender.file.write_all(line.as_bytes())?;
        if matches!(event.kind, K::StepStarted { .. }) {
            appender.unsynced_start = true;
        }
        if sync {
            self.sync(&mut appender)?;
        }
        Ok(())
    }

    /// Syncs the `step_started` events written since the last sync, if any: one `fdatasync`
    /// for every step that wrote its event before this one's turn came.
    pub fn commit(&self) -> std::io::Result<()> {
        let mut appender = self.lock()?;
        if appender.unsynced_start {
            self.sync(&mut appender)?;
        }
        Ok(())
    }

    fn sync(&self, appender: &mut Appender) -> std::io::Result<()> {
        appender.file.sync_data()?;
        appender.unsynced_start = false;
        // Writes to a deleted file (its directory removed) succeed, and are lost: a record no
        // one can read is no record.
        use std::os::unix::fs::MetadataExt;
        if appender.file.metadata()?.nlink() == 0 {
            return Err(std::io::Error::other(format!(
                "`{}` was deleted",
                self.path.display()
            )));
        }
        Ok(())
    }
}

/// Truncates `file` after its last newline, and syncs, when it does not end with one.
fn repair_torn_tail(file: &File) -> std::io::Result<()> {
    use std::os::unix::fs::FileExt;
    let len = file.metadata()?.len();
    if len == 0 {
        return Ok(());
    }
    // Read backwards in blocks until a newline (or the start of the file) is found.
    let mut end = len;
    let mut last = [0u8; 1];
    file.read_exact_at(&mut last, len - 1)?;
    if last[0] == b'\n' {
        return Ok(());
    }
    let mut keep = 0;
    let mut block = vec![0u8; 64 * 1024];
    while end > 0 {
        let start = end.saturating_sub(block.len() as u64);
        let chunk = &mut block[..(end - start) as usize];
        file.read_exact_at(chunk, start)?;
        if let Some(at) = chunk.iter().rposition(|&b| b == b'\n') {
            keep = start + at as u64 + 1;
            break;
        }
        end = start;
    }
    file.set_len(keep)?;
    file.sync_all()
}

/// The sink of a run: the journal first (it is the record: an event is in the file before it
/// is on the screen, and on disk before what it announces happens), then the screen. A journal that cannot be written is said on the screen,
/// and [`Sink::broken`] tells the engine to start nothing more.
pub struct Recorder {
    journal: Journal,
    screen: std::sync::Arc<dyn Sink>,
    /// The first write error: from then on the run starts nothing new.
    failed: Mutex<Option<String>>,
}

impl Recorder {
    pub fn new(journal: Journal, screen: std::sync::Arc<dyn Sink>) -> Self {
        Self {
            journal,
            screen,
            failed: Mutex::new(None),
        }
    }

    /// Remembers the first write error, and says it on the screen, once.
    fn failed(&self, error: &std::io::Error) {
        if let Ok(mut failed) = self.failed.lock()
            && failed.is_none()
        {
            let reason = error.to_string();
            *failed = Some(reason.clone());
            drop(failed);
            self.screen
                .emit(&event(EventKind::JournalFailed { reason }));
        }
    }
}

impl Sink for Recorder {
    fn emit(&self, e: &Event) {
        // Live output is for the screen: the journal keeps each step's whole output in its
        // `step_finished`, and a resume needs no line of it.
        if matches!(e.kind, EventKind::Output { .. }) {
            self.screen.emit(e);
            return;
        }
        if let Err(error) = self.journal.append(e) {
            self.failed(&error);
        }
        self.screen.emit(e);
    }

    fn broken(&self) -> Option<String> {
        match self.failed.lock() {
            Ok(failed) => failed.clone(),
            Err(_) => Some("journal state poisoned".to_owned()),
        }
    }

    fn commit(&self) -> Option<String> {
        if let Err(error) = self.journal.commit() {
            self.failed(&error);
        }
        self.broken()
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
    #[error(
        "journal `{path}` is of version {}, and this runbook reads version {expected}; use the runbook release that wrote it",
        found.map_or_else(|| "unknown (no journal_version)".to_owned(), |v| v.to_string())
    )]
    Version {
        path: String,
        found: Option<u64>,
        expected: u32,
    },
}

/// Reads every event of a journal. A torn last line (a crash in the middle of a write) is
/// dropped; any other line that is not an event is an error naming the line. The first event
/// says the journal's version; another version than this one is refused.
pub fn read(path: &Path) -> Result<Vec<Event>, JournalError> {
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
        if i == 0 {
            check_version(line, &shown)
                .or_else(|e| if last && !complete { Ok(()) } else { Err(e) })?;
        }
        match serde_json::from_str::<Event>(line) {
            Ok(event) => events.push(event),
            Err(_) if last && !complete => break,
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

fn check_version(first: &str, path: &str) -> Result<(), JournalError> {
    let value: serde_json::Value = match serde_json::from_str(first) {
        Ok(v) => v,
        // Not JSON: reported as corrupt by the caller.
        Err(_) => return Ok(()),
    };
    let found = value.get("journal_version").and_then(|v| v.as_u64());
    if found == Some(u64::from(JOURNAL_VERSION)) {
        return Ok(());
    }
    Err(JournalError::Version {
        path: path.to_owned(),
        found,
        expected: JOURNAL_VERSION,
    })
}

/// SHA-256 of the runbook file, hex.
pub fn hash(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
