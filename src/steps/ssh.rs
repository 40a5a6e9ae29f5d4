//! Remote `run` actions through the system OpenSSH client, so that the operator's
//! `~/.ssh/config`, agent, jump hosts and known_hosts apply as they do for `ssh` itself.
//!
//! One connection per destination per run: the first action on a target starts a master
//! (`ControlMaster`) whose control socket lives in a private directory of the run (mode 0700);
//! every attempt is a client on it. The master is runbook's child, in a process group of its
//! own (Ctrl-C on the terminal is runbook's to handle: rollbacks may still need the
//! connection), ended by the parent-death signal if runbook dies, and closed with
//! `ssh -O exit` when the run ends.
//!
//! Options set on every call, over the operator's config: `BatchMode=yes` (nobody answers a
//! prompt), `StrictHostKeyChecking=yes` (an unknown host key is refused, and the error says how
//! to accept it), `ConnectTimeout` and `ServerAliveInterval`/`ServerAliveCountMax` (a dead
//! connection is noticed). `RUNBOOK_SSH_CONFIG` names an ssh config file used instead of
//! `~/.ssh/config` (`ssh -F`); `RUNBOOK_SSH_MULTIPLEX=no` gives every attempt a connection of
//! its own.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::AsyncReadExt;
use tokio::process::{Child, Command};
use tokio_util::sync::CancellationToken;

use super::command::{self, Supervision};
use super::{Attempt, Failed, remote};
use crate::render::Action;
use crate::retry::Failure;
use crate::target::{Destination, Remote};

/// The environment variable naming an ssh config file (`ssh -F`).
pub const CONFIG_VAR: &str = "RUNBOOK_SSH_CONFIG";
/// The environment variable that turns connection sharing off (`no`).
pub const MULTIPLEX_VAR: &str = "RUNBOOK_SSH_MULTIPLEX";

const CONNECT_TIMEOUT_S: u32 = 10;
const ALIVE_INTERVAL_S: u32 = 10;
const ALIVE_COUNT: u32 = 3;
/// How long a master may take to exit after its client saw the connection end.
const LOST_GRACE: Duration = Duration::from_secs(2);

/// Why a target could not be reached.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SshError {
    #[error(
        "the host key of `{destination}` is unknown or has changed: ssh refused it (strict host key checking). Check the key's fingerprint with the host's owner, then accept it once with `{accept}` (answer yes), or add `ssh-keyscan {keyscan}` output to known_hosts. ssh said: {said}"
    )]
    HostKey {
        destination: String,
        accept: String,
        keyscan: String,
        said: String,
    },
    #[error("ssh could not log in to `{destination}`: {said}")]
    Login { destination: String, said: String },
    #[error("cannot connect to `{destination}`: {said}")]
    Connect { destination: String, said: String },
    #[error("the ssh connection to `{destination}` was lost: {said}")]
    Lost { destination: String, said: String },
    #[error("cannot start ssh: {0}")]
    Start(String),
    #[error("cannot run on target `{target}`: {reason}")]
    Invalid { target: String, reason: String },
}

impl SshError {
    /// What retry decides on: a host that cannot be reached may come back; a refused key or
    /// login will not.
    pub fn failure(&self) -> Failure {
        match self {
            Self::Connect { .. } | Self::Lost { .. } => Failure::Connect,
            _ => Failure::Error,
        }
    }
}

/// A master connection.
struct Master {
    child: Child,
    socket: PathBuf,
    destination: Destination,
    said: Arc<Mutex<String>>,
}

#[derive(Default)]
struct State {
    dir: Option<tempfile::TempDir>,
    masters: HashMap<String, Master>,
    opened: usize,
}

/// The run's ssh connections.
pub struct Ssh {
    config: Option<String>,
    multiplex: bool,
    state: tokio::sync::Mutex<State>,
}

impl Default for Ssh {
    fn default() -> Self {
        Self {
            config: std::env::var(CONFIG_VAR).ok().filter(|c| !c.is_empty()),
            multiplex: std::env::var(MULTIPLEX_VAR).map_or(true, |v| v != "no"),
            state: tokio::sync::Mutex::default(),
        }
    }
}

/// The last non-empty line ssh wrote, for messages.
fn last_words(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty())
        .unwrap_or("no message")
        .to_owned()
}

impl Ssh {
    /// The options of every ssh call.
    fn options(&self) -> Vec<String> {
        let mut args = Vec::new();
        if let Some(config) = &self.config {
            args.extend(["-F".to_owned(), config.clone()]);
        }
        for option in [
            "BatchMode=yes".to_owned(),
            "StrictHostKeyChecking=yes".to_owned(),
            format!("ConnectTimeout={CONNECT_TIMEOUT_S}"),
            format!("ServerAliveInterval={ALIVE_INTERVAL_S}"),
            format!("ServerAliveCountMax={ALIVE_COUNT}"),
        ] {
            args.extend(["-o".to_owned(), option]);
        }
        args
    }

    /// The argv of an attempt: a client of the master on `socket` (or a connection of its
    /// own), the destination after `--` so that it can never read as an option.
    fn client_argv(
        &self,
        socket: Option<&PathBuf>,
        destination: &Destination,
        command: &str,
    ) -> Vec<String> {
        let mut argv = vec!["ssh".to_owned()];
        argv.extend(self.options());
        match socket {
            Some(socket) => argv.extend([
                "-o".to_owned(),
                "ControlMaster=no".to_owned(),
                "-o".to_owned(),
                format!("ControlPath={}", socket.display()),
            ]),
            None => argv.extend(["-o".to_owned(), "ControlPath=none".to_owned()]),
        }
        argv.extend([
            "-T".to_owned(),
            "--".to_owned(),
            destination.argument(),
            command.to_owned(),
        ]);
        argv
    }

    /// The master's control socket for `destination`, started if there is none (or the last
    /// one ended); `None` when connections are not shared.
    async fn connect(
        &self,
        destination: &Destination,
        hidden: &[String],
        cancel: &CancellationToken,
    ) -> Result<Option<PathBuf>, SshError> {
        if !self.multiplex {
            return Ok(None);
        }
        let key = destination.argument();
        let mut state = self.state.lock().await;
        if let Some(master) = state.masters.get_mut(&key) {
            if matches!(master.child.try_wait(), Ok(None)) {
                return Ok(Some(master.socket.clone()));
            }
            state.masters.remove(&key);
        }
        if state.dir.is_none() {
            let dir = tempfile::Builder::new()
                .prefix("runbook-ssh-")
                .tempdir()
                .map_err(|e| SshError::Start(format!("cannot make the control directory: {e}")))?;
            state.dir = Some(dir);
        }
        let socket = match &state.dir {
            Some(dir) => dir.path().join(format!("c{}", state.opened)),
            None => return Err(SshError::Start("no control directory".to_owned())),
        };
        state.opened += 1;
        let mut command = Command::new("ssh");
        command
            .args(self.options())
            .args(["-o", "ControlMaster=yes", "-o", "ControlPersist=no", "-o"])
            .arg(format!("ControlPath={}", socket.display()))
            .args(["-N", "-T", "--"])
            .arg(destination.argument())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .process_group(0);
        for name in hidden {
            command.env_remove(name);
        }
        let parent = std::process::id() as libc::pid_t;
        // SAFETY: between fork and exec only async-signal-safe calls are made (prctl, getppid,
        // _exit).
        unsafe {
            command.pre_exec(move || {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                if libc::getppid() != parent {
                    libc::_exit(1);
                }
                Ok(())
            });
        }
        let mut child = command
            .spawn()
            .map_err(|e| SshError::Start(e.to_string()))?;
        let said = Arc::new(Mutex::new(String::new()));
        if let Some(mut stderr) = child.stderr.take() {
            let said = said.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                while let Ok(n) = stderr.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                    if let Ok(mut s) = said.lock()
                        && s.len() < 64 * 1024
                    {
                        s.push_str(&String::from_utf8_lossy(&buf[..n]));
                    }
                }
            });
        }
        loop {
            if socket.exists() {
                state.masters.insert(
                    key,
                    Master {
                        child,
                        socket: socket.clone(),
                        destination: destination.clone(),
                        said,
                    },
                );
                return Ok(Some(socket));
            }
            if let Ok(Some(_)) = child.try_wait() {
                // Its stderr is read to the end before the message is made.
                tokio::time::sleep(Duration::from_millis(50)).await;
                let text = said.lock().map(|s| s.clone()).unwrap_or_default();
                return Err(refused(destination, &text));
            }
            tokio::select! {
                () = tokio::time::sleep(Duration::from_millis(10)) => {}
                () = cancel.cancelled() => {
                    let _ = child.start_kill();
                    let _ = child.wait().await;
                    return Err(SshError::Connect {
                        destination: destination.argument(),
                        said: "cancelled".to_owned(),
                    });
                }
            }
        }
    }

    /// Whether the master for `destination` has ended (the connection was lost); it is
    /// forgotten, so that the next attempt connects again. A client sees the connection end
    /// a moment before its master exits: the master is given [`LOST_GRACE`] to do so.
    async fn lost(&self, destination: &Destination) -> Option<String> {
        let key = destination.argument();
        let mut state = self.state.lock().await;
        let master = state.masters.get_mut(&key)?;
        let deadline = Instant::now() + LOST_GRACE;
        while matches!(master.child.try_wait(), Ok(None)) {
            if Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let said = master.said.lock().map(|s| s.clone()).unwrap_or_default();
        state.masters.remove(&key);
        Some(last_words(&said))
    }

    /// Closes every master (`ssh -O exit`), then removes the control directory.
    pub async fn close(&self) {
        let mut state = self.state.lock().await;
        for (_, mut master) in state.masters.drain() {
            let mut exit = Command::new("ssh");
            exit.args(self.options())
                .arg("-o")
                .arg(format!("ControlPath={}", master.socket.display()))
                .args(["-O", "exit", "--"])
                .arg(master.destination.argument())
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .kill_on_drop(true);
            let _ = tokio::time::timeout(Duration::from_secs(5), exit.status()).await;
            if tokio::time::timeout(Duration::from_secs(2), master.child.wait())
                .await
                .is_err()
            {
                let _ = master.child.start_kill();
                let _ = master.child.wait().await;
            }
        }
        state.dir = None;
    }
}

/// Why a master could not start, from what ssh said.
fn refused(destination: &Destination, said: &str) -> SshError {
    let name = destination.argument();
    if said.contains("Host key verification failed")
        || said.contains("REMOTE HOST IDENTIFICATION HAS CHANGED")
    {
        let (host, port) = (
            destination
                .host
                .rsplit('@')
                .next()
                .unwrap_or(&destination.host),
            destination.port,
        );
        let accept = match port {
            Some(p) => format!("ssh -p {p} {}", destination.host),
            None => format!("ssh {}", destination.host),
        };
        let keyscan = match port {
            Some(p) => format!("-p {p} {host}"),
            None => host.to_owned(),
        };
        return SshError::HostKey {
            destination: name,
            accept,
            keyscan,
            said: last_words(said),
        };
    }
    if said.contains("Permission denied") {
        return SshError::Login {
            destination: name,
            said: last_words(said),
        };
    }
    SshError::Connect {
        destination: name,
        said: last_words(said),
    }
}

/// Runs one attempt of `action` on its target.
pub async fn run(
    ssh: &Ssh,
    target: &Remote,
    action: &Action,
    supervision: Supervision<'_>,
    on_line: std::sync::Arc<super::lines::OnLine>,
    input: Option<&str>,
) -> Attempt {
    let (hidden, timeout, cancel) = (supervision.hidden, supervision.timeout, supervision.cancel);
    let invalid = |reason: String| {
        let e = SshError::Invalid {
            target: target.target.clone(),
            reason,
        };
        Attempt::failed(e.failure(), e.to_string())
    };
    let destination = match Destination::parse(&target.ssh) {
        Ok(d) => d,
        Err(e) => return invalid(format!("invalid ssh destination `{}`: {e}", target.ssh)),
    };
    let sent = match remote::prepare(action, &target.shell, input) {
        Ok(sent) => sent,
        Err(e) => return invalid(e.to_string()),
    };
    let started = Instant::now();
    let connecting = ssh.connect(&destination, hidden, cancel);
    let socket = match timeout {
        Some(t) => match tokio::time::timeout(t, connecting).await {
            Ok(r) => r,
            Err(_) => {
                return Attempt::failed(
                    Failure::Timeout,
                    format!(
                        "timed out after {} while connecting to `{}`",
                        humantime::format_duration(t),
                        destination.argument()
                    ),
                );
            }
        },
        None => connecting.await,
    };
    let socket = match socket {
        Ok(s) => s,
        Err(e) => return Attempt::failed(e.failure(), e.to_string()),
    };
    let argv = ssh.client_argv(socket.as_ref(), &destination, &sent.command);
    let left = timeout.map(|t| t.saturating_sub(started.elapsed()));
    let mut attempt = command::run_argv(
        &argv,
        None,
        &[],
        command::Input::HeldOpen(sent.stdin),
        Supervision {
            timeout: left,
            ..supervision
        },
        on_line,
    )
    .await;
    if attempt.exit_code == Some(255) {
        // 255 is ssh's own failure, or the remote's exit code: the connection tells which.
        let failed = if socket.is_some() {
            ssh.lost(&destination).await.map(|said| SshError::Lost {
                destination: destination.argument(),
                said,
            })
        } else {
            // A connection of its own: what ssh said tells why it could not run the action.
            Some(refused(&destination, &attempt.stderr))
        };
        if let Some(e) = failed {
            attempt.failure = Some(Failed::new(e.failure(), e.to_string()));
        }
    }
    attempt
}
