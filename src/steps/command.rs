//! `run` steps: a program with arguments, or a script in a shell. Each command starts in its
//! own process group, so a timeout or an interrupt kills it with every grandchild.

use std::collections::HashSet;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::Command;
use tokio_util::sync::CancellationToken;

use super::{Attempt, Failed};
use crate::render::Action;
use crate::retry::Failure;

/// Output kept per stream; the rest is counted and dropped.
pub const OUTPUT_CAP: usize = 1024 * 1024;

/// How the note that follows cut output begins (the masker looks for it: the cut may fall
/// inside a secret).
pub const TRUNCATED: &str = "\n[… output truncated: ";

/// Process groups of running commands, so that a hard exit can still kill them.
#[derive(Clone, Debug, Default)]
pub struct Groups(Arc<Mutex<HashSet<i32>>>);

impl Groups {
    fn add(&self, pgid: i32) {
        if let Ok(mut g) = self.0.lock() {
            g.insert(pgid);
        }
    }

    fn remove(&self, pgid: i32) {
        if let Ok(mut g) = self.0.lock() {
            g.remove(&pgid);
        }
    }

    /// Kills every running command's process group.
    pub fn kill_all(&self) {
        if let Ok(g) = self.0.lock() {
            for &pgid in g.iter() {
                kill_group(pgid);
            }
        }
    }
}

/// Kills a process group left by a crashed run, if it still exists as a group of its own.
pub fn kill_leftover(pgid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pgid}/stat")) else {
        return false;
    };
    // Fields after the command name: state, ppid, pgrp.
    let pgrp = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().nth(2))
        .and_then(|g| g.parse::<u32>().ok());
    if pgrp != Some(pgid) {
        return false;
    }
    kill_group(pgid as i32);
    true
}

fn kill_group(pgid: i32) {
    // SAFETY: killpg has no memory-safety preconditions; a stale group id fails with ESRCH.
    unsafe {
        libc::killpg(pgid, libc::SIGKILL);
    }
}

/// The argv for an action.
pub fn argv(action: &Action) -> Option<Vec<String>> {
    match action {
        Action::Command { program, args, .. } => {
            let mut argv = vec![program.clone()];
            argv.extend(args.iter().cloned());
            Some(argv)
        }
        Action::Script { shell, script, .. } => {
            let mut argv: Vec<String> = match shell.as_str() {
                "bash" => vec!["bash".into(), "-c".into()],
                "pwsh" => vec![
                    "pwsh".into(),
                    "-NoProfile".into(),
                    "-NonInteractive".into(),
                    "-Command".into(),
                ],
                "powershell" => vec![
                    "powershell".into(),
                    "-NoProfile".into(),
                    "-NonInteractive".into(),
                    "-ExecutionPolicy".into(),
                    "Bypass".into(),
                    "-Command".into(),
                ],
                "cmd" => vec!["cmd".into(), "/C".into()],
                _ => vec!["sh".into(), "-c".into()],
            };
            argv.push(script.clone());
            Some(argv)
        }
        _ => None,
    }
}

/// Runs one attempt of a command. `timeout` bounds the whole attempt, output included.
/// `hidden` are environment variables the command does not inherit (those secrets are read
/// from) unless the step's `env` sets them.
pub async fn run(
    action: &Action,
    hidden: &[String],
    timeout: Option<Duration>,
    cancel: &CancellationToken,
    groups: &Groups,
    spawned: &(dyn Fn(u32) + Sync),
) -> Attempt {
    let Some(argv) = argv(action) else {
        return Attempt::failed(Failure::Error, "not a command");
    };
    let (cwd, env) = match action {
        Action::Command { cwd, env, .. } | Action::Script { cwd, env, .. } => (cwd, env),
        _ => return Attempt::failed(Failure::Error, "not a command"),
    };
    let mut command = Command::new(&argv[0]);
    command
        .args(&argv[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    // If runbook itself dies (SIGKILL, a crash), the command dies with it rather than going
    // on unobserved: a resumed run must not race a step it thinks is in doubt.
    let parent = std::process::id() as libc::pid_t;
    // SAFETY: between fork and exec only async-signal-safe calls are made (prctl, getppid, _exit).
    unsafe {
        command.pre_exec(move || {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            if libc::getppid() != parent {
                libc::_exit(1);
            }
            Ok(())
        });
    }
    if let Some(cwd) = cwd {
        command.current_dir(cwd);
    }
    for name in hidden {
        command.env_remove(name);
    }
    for (k, v) in env {
        command.env(k, v);
    }
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(e) => {
            return Attempt::failed(Failure::Error, format!("cannot start `{}`: {e}", argv[0]));
        }
    };
    let pgid = child.id().map_or(0, |id| id as i32);
    groups.add(pgid);
    // Recorded (journal) so that a resume after a crash can end what the step left running.
    spawned(pgid as u32);
    let stdout = tokio::spawn(read_capped(child.stdout.take()));
    let stderr = tokio::spawn(read_capped(child.stderr.take()));

    let finished = async {
        let status = child.wait().await;
        let out = stdout.await.unwrap_or_default();
        let err = stderr.await.unwrap_or_default();
        (status, out, err)
    };
    let sleep = async {
        match timeout {
            Some(t) => tokio::time::sleep(t).await,
            None => std::future::pending().await,
        }
    };
    let result = tokio::select! {
        done = finished => Ok(done),
        () = sleep => Err(Failure::Timeout),
        () = cancel.cancelled() => Err(Failure::Error),
    };
    // The group goes in every case: nothing the step started outlives it.
    kill_group(pgid);
    groups.remove(pgid);
    match result {
        Ok((status, stdout, stderr)) => {
            let status = match status {
                Ok(s) => s,
                Err(e) => {
                    return Attempt::failed(
                        Failure::Error,
                        format!("cannot wait for the command: {e}"),
                    );
                }
            };
            let code = status.code();
            let failure = if status.success() {
                None
            } else {
                Some(match code {
                    Some(c) => {
                        Failed::new(Failure::Exit { code: Some(c) }, format!("exit code {c}"))
                    }
                    None => Failed::new(Failure::Exit { code: None }, "killed by a signal"),
                })
            };
            Attempt {
                stdout,
                stderr,
                exit_code: code,
                failure,
                ..Attempt::default()
            }
        }
        Err(Failure::Timeout) => Attempt::failed(
            Failure::Timeout,
            format!(
                "timed out after {}",
                humantime::format_duration(timeout.unwrap_or_default())
            ),
        ),
        Err(_) => Attempt::failed(Failure::Error, "cancelled"),
    }
}

async fn read_capped(stream: Option<impl AsyncRead + Unpin>) -> String {
    let Some(mut stream) = stream else {
        return String::new();
    };
    let mut kept = Vec::new();
    let mut dropped = 0usize;
    let mut buf = [0u8; 16 * 1024];
    loop {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let room = OUTPUT_CAP.saturating_sub(kept.len());
                kept.extend_from_slice(&buf[..n.min(room)]);
                dropped += n.saturating_sub(room);
            }
        }
    }
    let mut text = String::from_utf8_lossy(&kept).into_owned();
    if dropped > 0 {
        text.push_str(&format!("{TRUNCATED}{dropped} more bytes not kept]\n"));
    }
    text
}
