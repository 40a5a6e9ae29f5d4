//! The votes of a multi-party approval, as files in the run's directory: `runbook approve`
//! writes one file per vote, the waiting run reads them. Neither writes the other's files, so
//! the run stays the only writer of its journal.
//!
//! A vote is `votes/STEP~USER.json`. It is written to a private temporary name, then
//! hard-linked to its final name: the link fails when the name exists (a second vote by the
//! same user), and a reader never sees half a vote. Who voted is the file's owner (its uid in
//! the user database), never what the file says: a vote in someone else's name is seen as
//! forged.

use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The largest vote file read: a vote is a few lines, and a file written to fill the run's
/// memory must not be read whole.
pub const MAX_VOTE_BYTES: u64 = 64 * 1024;

/// What a voter decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    Approve,
    Reject,
}

impl Decision {
    pub const fn verb(self) -> &'static str {
        match self {
            Self::Approve => "approved",
            Self::Reject => "rejected",
        }
    }
}

/// The content of a vote file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vote {
    /// The run voted on: a vote file linked from another run's directory does not count here.
    pub run: String,
    pub step: String,
    pub user: String,
    pub decision: Decision,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// When it was cast (RFC 3339).
    pub at: String,
}

/// A vote file as found, with who owns it.
#[derive(Clone, Debug)]
pub struct Found {
    pub file: String,
    /// The owner's user name (or `uid N`).
    pub owner: String,
    /// `None`: the file could not be read as a vote.
    pub vote: Option<Vote>,
    /// Someone besides its owner may write it: what it says may not be what its owner cast.
    pub writable_by_others: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum BallotError {
    #[error("{user} has already voted on `{step}`; a vote cannot be changed")]
    AlreadyVoted { user: String, step: String },
    #[error(
        "a vote in the name of {user} on `{step}` already exists but belongs to {owner} (forged); ask whoever owns the state directory to remove {file}"
    )]
    Forged {
        user: String,
        step: String,
        owner: String,
        file: String,
    },
    #[error("the vote is too long ({bytes} bytes; at most {max}): shorten the reason")]
    TooLong { bytes: usize, max: u64 },
    #[error("cannot write the vote in {dir}: {reason}")]
    Io { dir: String, reason: String },
}

/// Where the votes of a run live.
pub fn dir(run_dir: &Path) -> PathBuf {
    run_dir.join("votes")
}

/// The file of `user`'s vote on `step`. Names are escaped so that a loop instance's id
/// (`restore[a/b]`) or an odd user name stays one file name.
pub fn file_name(step: &str, user: &str) -> String {
    format!("{}~{}.json", escape(step), escape(user))
}

fn escape(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'[' | b']') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Casts `vote` once. Files and the directory are created with the process's umask, so a
/// group-writable shared state directory stays usable by the whole team.
pub fn cast(run_dir: &Path, vote: &Vote) -> Result<PathBuf, BallotError> {
    let dir = dir(run_dir);
    let io = |e: std::io::Error| BallotError::Io {
        dir: dir.display().to_string(),
        reason: e.to_string(),
    };
    std::fs::create_dir_all(&dir).map_err(io)?;
    let target = dir.join(file_name(&vote.step, &vote.user));
    let temp = dir.join(format!(
        ".{}.{}.tmp",
        file_name(&vote.step, &vote.user),
        std::process::id()
    ));
    let text = serde_json::to_vec(vote).map_err(|e| BallotError::Io {
        dir: dir.display().to_string(),
        reason: e.to_string(),
    })?;
    if text.len() as u64 > MAX_VOTE_BYTES {
        return Err(BallotError::TooLong {
            bytes: text.len(),
            max: MAX_VOTE_BYTES,
        });
    }
    let written = (|| {
        // Read-only from the start (the umask applies on top): nobody, the group included,
        // can change a vote once cast.
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o444)
            .open(&temp)?;
        file.write_all(&text)?;
        file.sync_all()?;
        std::fs::hard_link(&temp, &target)
    })();
    let _ = std::fs::remove_file(&temp);
    match written {
        Ok(()) => {
            // The directory entry must survive a crash as the vote was reported cast.
            if let Ok(d) = std::fs::File::open(&dir) {
                let _ = d.sync_all();
            }
            Ok(target)
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let owner = std::fs::metadata(&target)
                .map(|m| crate::steps::approval::user_of(m.uid()))
                .unwrap_or_default();
            if owner == vote.user {
                Err(BallotError::AlreadyVoted {
                    user: vote.user.clone(),
                    step: vote.step.clone(),
                })
            } else {
                Err(BallotError::Forged {
                    user: vote.user.clone(),
                    step: vote.step.clone(),
                    owner,
                    file: target.display().to_string(),
                })
            }
        }
        Err(e) => Err(io(e)),
    }
}

/// Creates the votes directory of a waiting run, honouring the umask, with the sticky bit
/// added so that in a group-writable directory only a vote's owner can remove or replace it.
pub fn open(run_dir: &Path) -> std::io::Result<()> {
    let dir = dir(run_dir);
    std::fs::create_dir_all(&dir)?;
    let mode = std::fs::metadata(&dir)?.permissions().mode();
    if mode & 0o1000 == 0 {
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(mode | 0o1000))?;
    }
    Ok(())
}

/// Every vote file on `step` of `run`, in name order (the run decides in the order it finds
/// them).
pub fn read(run_dir: &Path, run: &str, step: &str) -> Vec<Found> {
    let prefix = format!("{}~", escape(step));
    let Ok(entries) = std::fs::read_dir(dir(run_dir)) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| n.starts_with(&prefix) && n.ends_with(".json"))
        .collect();
    names.sort();
    names
        .into_iter()
        .filter_map(|name| {
            let path = dir(run_dir).join(&name);
            // Not followed: a link to someone else's file must not pass for theirs.
            let meta = std::fs::symlink_metadata(&path).ok()?;
            let vote = meta
                .is_file()
                .then(|| read_capped(&path))
                .flatten()
                .and_then(|bytes| serde_json::from_slice::<Vote>(&bytes).ok())
                .filter(|v| v.step == step && v.run == run);
            Some(Found {
                file: name,
                owner: crate::steps::approval::user_of(meta.uid()),
                vote,
                writable_by_others: meta.mode() & 0o022 != 0,
            })
        })
        .collect()
}

/// A vote file's bytes; `None` when it is not a plain file, cannot be read or is longer than a
/// vote can be.
fn read_capped(path: &Path) -> Option<Vec<u8>> {
    use std::io::Read;
    let mut bytes = Vec::new();
    // Not followed, and never blocking: a name swapped for a link or a FIFO after it was
    // looked at must not hang the waiting run.
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .ok()
        .filter(|f| f.metadata().is_ok_and(|m| m.is_file()))?
        .take(MAX_VOTE_BYTES + 1)
        .read_to_end(&mut bytes)
        .ok()?;
    (bytes.len() as u64 <= MAX_VOTE_BYTES).then_some(bytes)
}
