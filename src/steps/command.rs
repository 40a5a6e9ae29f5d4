//! `run` steps: a program with arguments, or a script in a shell. Each command runs under a
//! [`supervisor`] in a process group of its own, so that a timeout, an interrupt, the end of
//! its main process or the death of runbook itself ends it with every descendant.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::net::unix::pipe;
use tokio::process::Command;
use tokio_util::sync::CancellationToken;

use super::process_group::ProcessGroup;
use super::supervisor;
use super::{Attempt, Failed};
use crate::render::Action;
use crate::retry::Failure;

/// Output kept per stream; the rest is counted and dropped.
pub const OUTPUT_CAP: usize = 1024 * 1024;

/// How the note that follows cut output begins (the masker looks for it: the cut may fall
/// inside a secret).
pub const TRUNCATED: &str = "\n[… output truncated: ";

/// Running commands (their verified process group and their supervisor), so that a hard exit
/// can still end them.
#[derive(Clone, Debug, Default)]
pub struct Groups(Arc<Mutex<Vec<Running>>>);

#[derive(Clone, Debug)]
struct Running {
    group: ProcessGroup,
    supervisor: u32,
}

impl Groups {
    fn add(&self, group: &ProcessGroup, supervisor: u32) {
        if let Ok(mut g) = self.0.lock() {
            g.push(Running {
                group: group.clone(),
                supervisor,
            });
        }
    }

    fn remove(&self, group: &ProcessGroup) {
        if let Ok(mut g) = self.0.lock() {
            g.retain(|r| r.group != *group);
        }
    }

    /// Ends every running command: its group at once, and its supervisor (which ends the
    /// descendants that left the group).
    pub fn kill_all(&self) {
        if let Ok(g) = self.0.lock() {
            for running in g.iter() {
                running.group.kill();
                signal(running.supervisor, libc::SIGTERM);
            }
        }
    }
}

/// Sends `sig` to a supervisor: a child of ours not yet reaped, so its pid is still its own.
fn signal(pid: u32, sig: libc::c_int) {
    if let Ok(pid) = libc::pid_t::try_from(pid) {
        // SAFETY: kill has no memory-safety preconditions.
        unsafe {
            libc::kill(pid, sig);
        }
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

/// Runs one attempt of a command, under its [`supervisor`]. `timeout` bounds the whole
/// attempt, output included. `hidden` are environment variables the command does not inherit
/// (those secrets are read from) unless the step's `env` sets them.
pub async fn run(action: &Action, supervision: Supervision<'_>) -> Attempt {
    let Some(argv) = argv(action) else {
        return Attempt::failed(Failure::Error, "not a command");
    };
    let (cwd, env) = match action {
        Action::Command { cwd, env, .. } | Action::Script { cwd, env, .. } => (cwd, env),
        _ => return Attempt::failed(Failure::Error, "not a command"),
    };
    run_argv(&argv, cwd.as_ref(), env, None, supervision).await
}

/// How an attempt is watched over: the variables it does not inherit, its time limit, the
/// run's cancellation, the registry of running groups, and who is told its group.
#[derive(Clone, Copy)]
pub struct Supervision<'a> {
    pub hidden: &'a [String],
    pub timeout: Option<Duration>,
    pub cancel: &'a CancellationToken,
    pub groups: &'a Groups,
    pub spawned: &'a (dyn Fn(ProcessGroup) + Sync),
}

/// Runs one attempt of `argv` under its [`supervisor`], with `input` on its stdin (kept open
/// until the attempt ends: a remote bootstrap reads its end as the end of the attempt), or
/// `/dev/null`.
pub async fn run_argv(
    argv: &[String],
    cwd: Option<&String>,
    env: &[(String, String)],
    input: Option<Vec<u8>>,
    supervision: Supervision<'_>,
) -> Attempt {
    let Supervision {
        hidden,
        timeout,
        cancel,
        groups,
        spawned,
    } = supervision;
    let cannot_start = |e: &dyn std::fmt::Display| {
        Attempt::failed(Failure::Error, format!("cannot start `{}`: {e}", argv[0]))
    };
    let (control, control_end) = match control_pipe() {
        Ok(pipe) => pipe,
        Err(e) => return cannot_start(&e),
    };
    let control_fd = control_end.as_raw_fd();
    // runbook itself, re-executed as the supervisor (the binary may have been replaced on disk
    // since the run started: /proc/self/exe is the one running).
    let mut command = Command::new("/proc/self/exe");
    command
        .arg0("runbook")
        .arg(supervisor::SUBCOMMAND)
        .arg(control_fd.to_string())
        .arg("--")
        .args(argv)
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own group: Ctrl-C on the terminal is runbook's to handle, not the step's.
        .process_group(0);
    // If runbook dies (SIGKILL, a crash), the supervisor gets SIGTERM and ends the command with
    // every descendant: a resumed run must not race a step it thinks is in doubt.
    let parent = std::process::id() as libc::pid_t;
    // SAFETY: between fork and exec only async-signal-safe calls are made (prctl,
    // sigprocmask, getppid, fcntl, _exit).
    unsafe {
        command.pre_exec(move || {
            supervisor::block_signals();
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
            if libc::getppid() != parent {
                libc::_exit(1);
            }
            // The control pipe's end is the supervisor's to keep across exec.
            libc::fcntl(control_fd, libc::F_SETFD, 0);
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
        Err(e) => return cannot_start(&e),
    };
    drop(control_end);
    // The input is written, then its pipe held open until the attempt ends.
    let (input_done, held_open) = (CancellationToken::new(), child.stdin.take());
    if let (Some(mut pipe), Some(bytes)) = (held_open, input) {
        let done = input_done.clone();
        tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            if pipe.write_all(&bytes).await.is_ok() && pipe.flush().await.is_ok() {
                done.cancelled().await;
            }
            drop(pipe);
        });
    }
    let _close_input = input_done.drop_guard();
    let supervisor_pid = child.id().unwrap_or_default();
    let group = match started(control).await {
        Ok(group) => group,
        Err(message) => {
            let _ = child.wait().await;
            return cannot_start(&message);
        }
    };
    groups.add(&group, supervisor_pid);
    // Recorded (journal) so that a resume after a crash can end what the step left running.
    spawned(group.clone());
    let stop = CancellationToken::new();
    let mut stdout = tokio::spawn(read_capped(child.stdout.take(), stop.clone()));
    let mut stderr = tokio::spawn(read_capped(child.stderr.take(), stop.clone()));

    let sleep = async {
        match timeout {
            Some(t) => tokio::time::sleep(t).await,
            None => std::future::pending().await,
        }
    };
    let result = tokio::select! {
        status = child.wait() => Ok(status),
        () = sleep => Err(Failure::Timeout),
        () = cancel.cancelled() => Err(Failure::Error),
    };
    // The group goes in every case (a no-op once the supervisor has ended it: the check on its
    // leader's start time keeps a reused pid safe).
    group.kill();
    if result.is_err() {
        // The supervisor ends what left the group, then exits.
        signal(supervisor_pid, libc::SIGTERM);
        if tokio::time::timeout(Duration::from_secs(2), child.wait())
            .await
            .is_err()
        {
            let _ = child.start_kill();
        }
    }
    groups.remove(&group);
    // The supervisor has ended every process of the group, so the pipes are at their end; a
    // writer that escaped it still cannot hold the step.
    let stopper = stop.clone();
    tokio::spawn(async move {
        tokio::time::sleep(supervisor::GRACE).await;
        stopper.cancel();
    });
    let stdout = (&mut stdout).await.unwrap_or_default();
    let stderr = (&mut stderr).await.unwrap_or_default();
    stop.cancel();
    match result {
        Ok(status) => {
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

/// A pipe for the supervisor's first words (both ends close-on-exec).
fn control_pipe() -> std::io::Result<(pipe::Receiver, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 writes two fds into the array.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: both fds were just created and are owned here alone.
    let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    Ok((pipe::Receiver::from_owned_fd(read)?, write))
}

/// Why the supervisor could not start the command.
#[derive(Debug, thiserror::Error)]
enum NotStarted {
    #[error("{0}")]
    Spawn(String),
    #[error("the supervisor ended without starting it ({0:?})")]
    Protocol(String),
}

/// Reads the supervisor's first line: the command's process group, or why it did not start.
async fn started(mut control: pipe::Receiver) -> Result<ProcessGroup, NotStarted> {
    let mut line = Vec::new();
    let mut buf = [0u8; 256];
    while !line.contains(&b'\n') {
        match control.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => line.extend_from_slice(&buf[..n]),
        }
    }
    let line = String::from_utf8_lossy(&line).trim_end().to_owned();
    if let Some(message) = line.strip_prefix("err ") {
        return Err(NotStarted::Spawn(message.to_owned()));
    }
    let mut words = line.strip_prefix("ok ").unwrap_or_default().split(' ');
    match (
        words.next().and_then(|w| w.parse().ok()),
        words.next().and_then(|w| w.parse().ok()),
    ) {
        (Some(pid), Some(start_time)) => Ok(ProcessGroup::here(pid, start_time)),
        _ => Err(NotStarted::Protocol(line)),
    }
}

/// Reads a stream to its end, or until `stop`, keeping at most [`OUTPUT_CAP`] bytes.
async fn read_capped(stream: Option<impl AsyncRead + Unpin>, stop: CancellationToken) -> String {
    let Some(mut stream) = stream else {
        return String::new();
    };
    let mut kept = Vec::new();
    let mut dropped = 0usize;
    let mut buf = [0u8; 16 * 1024];
    loop {
        let read = tokio::select! {
            read = stream.read(&mut buf) => read,
            () = stop.cancelled() => break,
        };
        match read {
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
