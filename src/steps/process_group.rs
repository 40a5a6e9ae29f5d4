//! A command's process group as the journal records it, and what Linux says about processes
//! (`/proc/PID/stat`, the boot id). The record holds enough (host, boot id, the leader's start
//! time) that `resume` signals a group left by a crashed run only when it is provably that
//! group: never a process that reused its pid after the group ended, never one on another host
//! or after a reboot.

use serde::{Deserialize, Serialize};

/// A command's process group: its id (the leader's pid) and who the leader is.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessGroup {
    pub pgid: u32,
    /// The host the command ran on (empty in journals written before it was recorded).
    #[serde(default)]
    pub host: String,
    /// `/proc/sys/kernel/random/boot_id` when it started: a pid means nothing after a reboot.
    #[serde(default)]
    pub boot_id: String,
    /// The leader's start time, in clock ticks after boot (`/proc/PID/stat` field 22).
    #[serde(default)]
    pub start_time: u64,
}

/// The fields of `/proc/PID/stat` that matter here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stat {
    /// `R`, `S`, … ; `Z` (zombie) and `X` (dead) are as good as gone.
    pub state: char,
    pub ppid: i32,
    pub pgrp: i32,
    pub start_time: u64,
}

/// Reads `/proc/PID/stat` (`None` once the process is gone).
pub fn stat(pid: i32) -> Option<Stat> {
    // One read: the file is a few hundred bytes, and std's growing reads take six.
    let mut buf = [0u8; 1024];
    let mut file = std::fs::File::open(format!("/proc/{pid}/stat")).ok()?;
    let mut len = 0;
    loop {
        match std::io::Read::read(&mut file, &mut buf[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return None,
        }
        if len == buf.len() {
            return None;
        }
    }
    let text = std::str::from_utf8(&buf[..len]).ok()?;
    // The command name may hold spaces and parentheses: fields are counted after the last `)`.
    let fields: Vec<&str> = text.rsplit_once(')')?.1.split_whitespace().collect();
    // Field N of proc(5) is at index N - 3 here (field 3, the state, is first).
    Some(Stat {
        state: fields.first()?.chars().next()?,
        ppid: fields.get(1)?.parse().ok()?,
        pgrp: fields.get(2)?.parse().ok()?,
        start_time: fields.get(19)?.parse().ok()?,
    })
}

/// This boot's id ("" where Linux does not say).
pub fn boot_id() -> String {
    // Read once per process: a boot does not change under a running process.
    static BOOT_ID: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    BOOT_ID
        .get_or_init(|| {
            std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
                .map(|s| s.trim().to_owned())
                .unwrap_or_default()
        })
        .clone()
}

/// The live children of `parent`, found by scanning `/proc`.
pub fn children(parent: i32) -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| stat(pid).is_some_and(|s| s.ppid == parent))
        .collect()
}

/// What `resume` did about a group recorded by a crashed run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Leftover {
    /// The group's leader was alive and provably the recorded one: the group was killed.
    Ended,
    /// Nothing of it is left (or its leader's pid now belongs to another process).
    Gone,
    /// Recorded on another host: not signalled (a pid here means another process).
    OtherHost,
    /// Recorded before a reboot, or without the leader's identity (an older journal): not
    /// signalled, because nothing proves it is the same group.
    Unverifiable,
}

impl ProcessGroup {
    /// The group whose leader is `pid`, started at `start_time`, on this host and boot.
    pub fn here(pid: u32, start_time: u64) -> Self {
        Self {
            pgid: pid,
            host: crate::lock::host(),
            boot_id: boot_id(),
            start_time,
        }
    }

    /// Kills the group if it is still there and provably the one recorded: same host, same
    /// boot, and its leader alive with the recorded start time. A group whose leader has gone
    /// is not signalled (its id may be reused); the step's supervisor ends such groups when the
    /// run dies.
    pub fn end_leftover(&self) -> Leftover {
        if self.start_time == 0 || self.boot_id.is_empty() || self.host.is_empty() {
            return Leftover::Unverifiable;
        }
        if self.host != crate::lock::host() {
            return Leftover::OtherHost;
        }
        if self.boot_id != boot_id() {
            return Leftover::Unverifiable;
        }
        if self.kill() {
            Leftover::Ended
        } else {
            Leftover::Gone
        }
    }

    /// Kills the group if its leader is alive and is the recorded process (same start time,
    /// still leading its group). Returns whether it did.
    pub fn kill(&self) -> bool {
        let Ok(pgid) = i32::try_from(self.pgid) else {
            return false;
        };
        match stat(pgid) {
            Some(s) if s.pgrp == pgid && s.start_time == self.start_time => {
                // SAFETY: killpg has no memory-safety preconditions.
                unsafe {
                    libc::killpg(pgid, libc::SIGKILL);
                }
                true
            }
            _ => false,
        }
    }
}
