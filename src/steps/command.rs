//! `run` steps: a program with arguments, or a script in a shell. Each command runs under a
//! [`supervisor`] in a process group of its own, so that a timeout, an interrupt, the end of
//! its main process or the death of runbook itself ends it with every descendant.

use std::os::fd::OwnedFd;
use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::net::unix::pipe;
use tokio_util::sync::CancellationToken;

use super::lines::{OnLine, Splitter, Stream};
use super::process_group::ProcessGroup;
use super::{Attempt, Failed};
use super::{supervisor, supervisor_client, supervisor_request};
use crate::program_path::ProgramPath;
use crate::render::Action;
use crate::retry::Failure;

/// Output kept per stream; the rest is counted and dropped.
pub const OUTPUT_CAP: usize = 1024 * 1024;

/// How the note that follows cut output begins (the masker looks for it: the cut may fall
/// inside a secret).
pub const TRUNCATED: &str = "\n[… output truncated: ";

/// Running commands (their verified process group, and how to have the supervisor end them),
/// so that a hard exit can still end them.
#[derive(Clone, Debug, Default)]
pub struct Groups(Arc<Mutex<Vec<Running>>>);

#[derive(Clone, Debug)]
struct Running {
    group: ProcessGroup,
    ender: supervisor_client::Ender,
}

impl Groups {
    fn add(&self, group: &ProcessGroup, ender: supervisor_client::Ender) {
        if let Ok(mut g) = self.0.lock() {
            g.push(Running {
                group: group.clone(),
                ender,
            });
        }
    }

    fn remove(&self, group: &ProcessGroup) {
        if let Ok(mut g) = self.0.lock() {
            g.retain(|r| r.group != *group);
        }
    }

    /// Ends every running command: its group at once, and through the supervisor (which ends
    /// the descendants that left the group).
    pub fn kill_all(&self) {
        if let Ok(g) = self.0.lock() {
            for running in g.iter() {
                running.group.kill();
                running.ender.end();
            }
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

/// What a command reads, and where its output lines go as they arrive.
pub struct Streams {
    /// Written to its stdin, which is then closed; `None`: stdin is `/dev/null`.
    pub stdin: Option<Vec<u8>>,
    pub on_line: Arc<OnLine>,
}

/// Runs one attempt of a command, under its [`supervisor`]. `timeout` bounds the whole
/// attempt, output included. `hidden` are environment variables the command does not inherit
/// (those secrets are read from) unless the step's `env` sets them.
pub async fn run(action: &Action, supervision: Supervision<'_>, streams: Streams) -> Attempt {
    let Streams { stdin, on_line } = streams;
    let Some(argv) = argv(action) else {
        return Attempt::failed(Failure::Error, "not a command");
    };
    let (cwd, env) = match action {
        Action::Command { cwd, env, .. } | Action::Script { cwd, env, .. } => (cwd, env),
        _ => return Attempt::failed(Failure::Error, "not a command"),
    };
    let input = stdin.map_or(Input::Null, Input::Bytes);
    run_argv(&argv, cwd.as_ref(), env, input, supervision, on_line).await
}

/// What a command's stdin is.
pub enum Input {
    /// `/dev/null`.
    Null,
    /// These bytes, then the end of the stream (a notify hook's event).
    Bytes(Vec<u8>),
    /// These bytes, then held open until the attempt ends: a remote bootstrap reads its end as
    /// the end of the attempt.
    HeldOpen(Vec<u8>),
}

/// How an attempt is watched over: the variables it does not inherit, its time limit, the
/// run's cancellation, the registry of running groups, who is told its group, and where the
/// run's programs are.
#[derive(Clone, Copy)]
pub struct Supervision<'a> {
    pub hidden: &'a [String],
    pub timeout: Option<Duration>,
    pub cancel: &'a CancellationToken,
    pub groups: &'a Groups,
    pub spawned: &'a (dyn Fn(ProcessGroup) + Sync),
    pub programs: &'a ProgramPath,
}

/// Runs one attempt of `argv` under its [`supervisor`], with `input` on its stdin; its output
/// lines go to `on_line` as they arrive.
pub async fn run_argv(
    argv: &[String],
    cwd: Option<&String>,
    env: &[(String, String)],
    input: Input,
    supervision: Supervision<'_>,
    on_line: Arc<OnLine>,
) -> Attempt {
    let Supervision {
        hidden,
        timeout,
        cancel,
        groups,
        spawned,
        programs,
    } = supervision;
    let cannot_start = |e: &dyn std::fmt::Display| {
        Attempt::failed(Failure::Error, format!("cannot start `{}`: {e}", argv[0]))
    };
    // Where the program is, when the run has looked it up (empty: the supervisor looks it up).
    let found = programs
        .find(&argv[0], env, hidden)
        .map_or_else(std::ffi::OsString::new, std::path::PathBuf::into_os_string);
    let pipes = match Pipes::new(!matches!(input, Input::Null)) {
        Ok(pipes) => pipes,
        Err(e) => return cannot_start(&e),
    };
    let Pipes {
        ours: (stdout_pipe, stderr_pipe, stdin_pipe),
        theirs,
    } = pipes;
    let request = supervisor_client::request(argv, found, cwd, hidden, env);
    // The run's supervisor starts it (see `supervisor`); the command's ends of the pipes are
    // closed here once sent.
    let mut child = match supervisor_client::spawn(request, theirs) {
        Ok(child) => child,
        Err(e) => return cannot_start(&e),
    };
    // The input is written, then its pipe closed, or held open until the attempt ends.
    let input_done = CancellationToken::new();
    let (bytes, hold_open) = match input {
        Input::Null => (None, false),
        Input::Bytes(bytes) => (Some(bytes), false),
        Input::HeldOpen(bytes) => (Some(bytes), true),
    };
    if let (Some(mut pipe), Some(bytes)) = (stdin_pipe, bytes) {
        let done = input_done.clone();
        // A command that does not read it, or exits first, ends the write (broken pipe).
        tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            if pipe.write_all(&bytes).await.is_ok() && pipe.flush().await.is_ok() && hold_open {
                done.cancelled().await;
            }
            drop(pipe);
        });
    }
    let _close_input = input_done.drop_guard();
    let group = match child.started().await {
        Ok((pid, start_time)) => ProcessGroup::here(pid, start_time),
        Err(message) => return cannot_start(&message),
    };
    groups.add(&group, child.ender());
    // Recorded (journal) so that a resume after a crash can end what the step left running.
    spawned(group.clone());
    let stop = CancellationToken::new();
    let mut stdout = tokio::spawn(read_capped(
        stdout_pipe,
        stop.clone(),
        Stream::Stdout,
        on_line.clone(),
    ));
    let mut stderr = tokio::spawn(read_capped(
        stderr_pipe,
        stop.clone(),
        Stream::Stderr,
        on_line,
    ));

    let sleep = async {
        match timeout {
            Some(t) => tokio::time::sleep(t).await,
            None => std::future::pending().await,
        }
    };
    let result = tokio::select! {
        status = child.exited() => Ok(status),
        () = sleep => Err(Failure::Timeout),
        () = cancel.cancelled() => Err(Failure::Error),
    };
    // The group goes, unless the supervisor said it is over (the check on its leader's start
    // time keeps a reused pid safe).
    if !matches!(result, Ok(Some(_))) {
        group.kill();
    }
    if result.is_err() {
        // The supervisor ends what left the group, then says so.
        child.end();
        let _ = tokio::time::timeout(Duration::from_secs(2), child.exited()).await;
    }
    groups.remove(&group);
    // The supervisor has ended every process of the group, so the pipes are at their end; a
    // writer that escaped it still cannot hold the step.
    // No timer outlives the step: pipes at their end (the common case) cancel it at once.
    let (mut out, mut err) = (None, None);
    let read = async {
        out = Some((&mut stdout).await);
        err = Some((&mut stderr).await);
    };
    if tokio::time::timeout(supervisor::GRACE, read).await.is_err() {
        stop.cancel();
    }
    let stdout = match out {
        Some(read) => read,
        None => (&mut stdout).await,
    };
    let stderr = match err {
        Some(read) => read,
        None => (&mut stderr).await,
    };
    let (stdout, stderr) = (stdout.unwrap_or_default(), stderr.unwrap_or_default());
    stop.cancel();
    match result {
        Ok(status) => {
            // The supervisor gone: its command was killed with it.
            let status = status.unwrap_or_else(|| ExitStatus::from_raw(libc::SIGKILL));
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

/// The pipes of one command: runbook's ends (output, error, and input when it reads one) and
/// the command's, which go to the supervisor.
struct Pipes {
    ours: (pipe::Receiver, pipe::Receiver, Option<pipe::Sender>),
    theirs: supervisor_request::Streams,
}

impl Pipes {
    fn new(reads_input: bool) -> std::io::Result<Self> {
        let (stdout, stdout_end) = std::io::pipe()?;
        let (stderr, stderr_end) = std::io::pipe()?;
        let (stdin, stdin_end) = match reads_input {
            true => {
                let (end, ours) = std::io::pipe()?;
                (
                    Some(pipe::Sender::from_owned_fd(OwnedFd::from(ours))?),
                    Some(end),
                )
            }
            false => (None, None),
        };
        Ok(Self {
            ours: (
                pipe::Receiver::from_owned_fd(OwnedFd::from(stdout))?,
                pipe::Receiver::from_owned_fd(OwnedFd::from(stderr))?,
                stdin,
            ),
            theirs: supervisor_request::Streams {
                stdout: OwnedFd::from(stdout_end),
                stderr: OwnedFd::from(stderr_end),
                stdin: stdin_end.map(OwnedFd::from),
            },
        })
    }
}

/// Reads a stream to its end, or until `stop`, keeping at most [`OUTPUT_CAP`] bytes; every
/// line goes to `on_line` as it completes (the live view), cap or no cap.
async fn read_capped(
    mut stream: impl AsyncRead + Unpin,
    stop: CancellationToken,
    which: Stream,
    on_line: Arc<OnLine>,
) -> String {
    let mut kept = Vec::new();
    let mut dropped = 0usize;
    let mut buf = [0u8; 16 * 1024];
    let mut lines = Splitter::default();
    let mut emit = |line| on_line(which, line);
    loop {
        let read = tokio::select! {
            read = stream.read(&mut buf) => read,
            () = stop.cancelled() => break,
        };
        match read {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                lines.push(&buf[..n], &mut emit);
                let room = OUTPUT_CAP.saturating_sub(kept.len());
                kept.extend_from_slice(&buf[..n.min(room)]);
                dropped += n.saturating_sub(room);
            }
        }
    }
    lines.finish(&mut emit);
    let mut text = String::from_utf8_lossy(&kept).into_owned();
    if dropped > 0 {
        text.push_str(&format!("{TRUNCATED}{dropped} more bytes not kept]\n"));
    }
    text
}
