//! runbook's side of the run's [`supervisor`](super::supervisor): started once, on the first
//! command, and asked to start each command; its replies are read by a task of the runtime
//! that runs the commands (no thread in between to wake) and handed to the attempt waiting for
//! them.
//!
//! The supervisor is started by a thread of its own that lives as long as it does: the
//! kernel's parent-death signal follows the *thread* that started a process, so the supervisor
//! must not be started from a thread that may end first (a runtime's worker, a blocking pool's
//! thread). Each thread that runs a runtime has its own supervisor, whose replies that
//! runtime reads: a runtime that ends takes its reader with it, and the next command on that
//! thread starts a new supervisor.

use std::cell::RefCell;
use std::collections::HashMap;
use std::ffi::OsString;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::AsyncBufReadExt;
use tokio::sync::mpsc;

use super::supervisor::SUBCOMMAND;
use super::supervisor_request::{self, Request, Spawn, Streams};

/// What the supervisor says of one command.
#[derive(Debug)]
enum Reply {
    Started { pid: u32, start_time: u64 },
    Failed(String),
    Exited(i32),
}

type Waiters = Arc<Mutex<HashMap<u64, mpsc::UnboundedSender<Reply>>>>;

/// A running supervisor.
pub struct Client {
    requests: Mutex<UnixStream>,
    waiters: Waiters,
    next: AtomicU64,
    alive: Arc<AtomicBool>,
    /// Says when the supervisor has exited and been waited for.
    ended: Mutex<std::sync::mpsc::Receiver<()>>,
    /// Its replies, until a runtime reads them (see [`prepare`]).
    unread: Mutex<Option<std::io::PipeReader>>,
}

thread_local! {
    /// This thread's supervisor, started when first needed (again, should it have died or its
    /// reader have ended with its runtime).
    static CLIENT: RefCell<Option<Arc<Client>>> = const { RefCell::new(None) };
}

/// This thread's supervisor, started if there is none.
fn started() -> std::io::Result<Arc<Client>> {
    CLIENT.with_borrow_mut(|current| {
        if let Some(client) = current.as_ref().filter(|c| c.alive.load(Ordering::Acquire)) {
            return Ok(client.clone());
        }
        let client = Arc::new(start()?);
        *current = Some(client.clone());
        Ok(client)
    })
}

/// Starts this thread's supervisor ahead of the first command, so that its start overlaps the
/// run's own (the lock, the journal's first syncs) instead of delaying the first step. Its
/// replies wait in their pipe until a runtime asks it for a command.
pub fn prepare() {
    let _ = started();
}

/// The supervisor, started if there is none, its replies read by the current runtime.
fn client() -> std::io::Result<Arc<Client>> {
    let client = started()?;
    let unread = client
        .unread
        .lock()
        .map_err(|_| std::io::Error::other("the supervisor's replies are poisoned"))?
        .take();
    if let Some(replies) = unread {
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|_| std::io::Error::other("commands are started from a runtime"))?;
        runtime.spawn(read_replies(
            replies,
            client.waiters.clone(),
            client.alive.clone(),
        ));
    }
    Ok(client)
}

fn start() -> std::io::Result<Client> {
    let (requests, theirs) = UnixStream::pair()?;
    let (replies, reply_end) = std::io::pipe()?;
    let waiters: Waiters = Arc::default();
    let alive = Arc::new(AtomicBool::new(true));
    let (started_tx, started_rx) = std::sync::mpsc::channel();
    let (ended_tx, ended) = std::sync::mpsc::channel();
    let thread_alive = alive.clone();
    std::thread::Builder::new()
        .name("supervisor".into())
        .spawn(move || {
            // runbook itself, re-executed as the supervisor (the binary may have been replaced
            // on disk since the run started: /proc/self/exe is the one running). Nothing runs
            // between fork and exec, so the standard library starts it with posix_spawn. The
            // supervisor arms its own parent-death signal and checks that runbook is still its
            // parent (see `supervisor::main`).
            let spawned = std::process::Command::new("/proc/self/exe")
                .arg0("runbook")
                .arg(SUBCOMMAND)
                .arg(std::process::id().to_string())
                .stdin(Stdio::from(OwnedFd::from(theirs)))
                .stdout(Stdio::from(reply_end))
                .stderr(Stdio::null())
                // Its own group: Ctrl-C on the terminal is runbook's to handle.
                .process_group(0)
                .spawn();
            let mut child = match spawned {
                Ok(child) => {
                    let _ = started_tx.send(Ok(()));
                    child
                }
                Err(e) => {
                    let _ = started_tx.send(Err(e));
                    return;
                }
            };
            let _ = child.wait();
            thread_alive.store(false, Ordering::Release);
            let _ = ended_tx.send(());
        })?;
    started_rx
        .recv()
        .map_err(|_| std::io::Error::other("the supervisor's thread ended"))??;
    Ok(Client {
        requests: Mutex::new(requests),
        waiters,
        next: AtomicU64::new(1),
        alive,
        ended: Mutex::new(ended),
        unread: Mutex::new(Some(replies)),
    })
}

/// Ends the supervisor at the end of runbook's work: the end of its socket tells it so (it
/// then ends whatever is left, normally nothing), and it is waited for, at most `GRACE` and a
/// moment, so that no process of the run is left behind unwaited.
pub fn shutdown() {
    let Some(client) = CLIENT.with_borrow_mut(Option::take) else {
        return;
    };
    if let Ok(socket) = client.requests.lock() {
        let _ = socket.shutdown(std::net::Shutdown::Write);
    }
    if let Ok(ended) = client.ended.lock() {
        let _ = ended.recv_timeout(super::supervisor::GRACE * 5);
    }
}

/// Reads reply lines until the supervisor's end, handing each to its command's waiter.
async fn read_replies(replies: std::io::PipeReader, waiters: Waiters, alive: Arc<AtomicBool>) {
    /// Whoever waits on a command of this supervisor hears that it is gone, be it the end of
    /// the replies or of the runtime that reads them.
    struct Gone(Waiters, Arc<AtomicBool>);
    impl Drop for Gone {
        fn drop(&mut self) {
            self.1.store(false, Ordering::Release);
            if let Ok(mut w) = self.0.lock() {
                w.clear();
            }
        }
    }
    let _gone = Gone(waiters.clone(), alive);
    let Ok(replies) = tokio::net::unix::pipe::Receiver::from_owned_fd(OwnedFd::from(replies))
    else {
        return;
    };
    // The process groups of commands started and not yet over.
    let mut running: HashMap<u64, libc::pid_t> = HashMap::new();
    let mut lines = tokio::io::BufReader::new(replies).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        if !deliver(&line, &waiters, &mut running) {
            return;
        }
    }
    // A supervisor killed from outside: its commands died with it (their parent-death
    // signal), but what they started may live on in their groups. A group's id cannot be taken
    // by a new process while the group has members, and it was in use a moment ago (every reply
    // the supervisor wrote has been read): kill them.
    for pgid in running.into_values() {
        // SAFETY: killpg has no memory-safety preconditions.
        unsafe {
            libc::killpg(pgid, libc::SIGKILL);
        }
    }
}

/// Hands one reply line to its command's waiter; false when the waiters cannot be reached.
fn deliver(line: &str, waiters: &Waiters, running: &mut HashMap<u64, libc::pid_t>) -> bool {
    let mut words = line.splitn(3, ' ');
    let (kind, id, rest) = (words.next(), words.next(), words.next().unwrap_or(""));
    let Some(id) = id.and_then(|i| i.parse::<u64>().ok()) else {
        return true;
    };
    let reply = match kind {
        Some("started") => {
            let mut w = rest.split(' ');
            match (
                w.next().and_then(|p| p.parse().ok()),
                w.next().and_then(|t| t.parse().ok()),
            ) {
                (Some(pid), Some(start_time)) => Reply::Started { pid, start_time },
                _ => Reply::Failed(format!("the supervisor said {line:?}")),
            }
        }
        Some("failed") => Reply::Failed(rest.to_owned()),
        Some("exited") => Reply::Exited(rest.parse().unwrap_or(libc::SIGKILL)),
        _ => return true,
    };
    match &reply {
        Reply::Started { pid, .. } => {
            running.insert(id, *pid as libc::pid_t);
        }
        _ => {
            running.remove(&id);
        }
    }
    let Ok(mut w) = waiters.lock() else {
        return false;
    };
    let last = !matches!(reply, Reply::Started { .. });
    if let Some(tx) = w.get(&id) {
        let _ = tx.send(reply);
    }
    if last {
        w.remove(&id);
    }
    true
}

/// A command the supervisor was asked to start.
pub struct Spawned {
    id: u64,
    client: Arc<Client>,
    replies: mpsc::UnboundedReceiver<Reply>,
    over: bool,
}

/// Asks the supervisor to start a command with `streams` (the command's ends; runbook keeps
/// the others). They are closed here once sent.
pub fn spawn(spawn: Spawn, streams: Streams) -> std::io::Result<Spawned> {
    let mut last = None;
    let fds = streams.raw();
    let mut request = Request::Spawn {
        reads_input: streams.stdin.is_some(),
        spawn,
    };
    // A supervisor that died (killed from outside) is replaced once.
    for _ in 0..2 {
        let client = client()?;
        let id = client.next.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::unbounded_channel();
        if let Ok(mut w) = client.waiters.lock() {
            w.insert(id, tx);
        }
        if let Request::Spawn { spawn, .. } = &mut request {
            spawn.id = id;
        }
        let sent = match client.requests.lock() {
            Ok(socket) => supervisor_request::send(&socket, &request, &fds),
            Err(_) => Err(std::io::Error::other("the supervisor's socket is poisoned")),
        };
        match sent {
            Ok(()) => {
                return Ok(Spawned {
                    id,
                    client,
                    replies: rx,
                    over: false,
                });
            }
            Err(e) => {
                if let Ok(mut w) = client.waiters.lock() {
                    w.remove(&id);
                }
                client.alive.store(false, Ordering::Release);
                last = Some(e);
            }
        }
    }
    Err(last.unwrap_or_else(|| std::io::Error::other("the supervisor is gone")))
}

impl Spawned {
    /// The command's pid and start time, or why it did not start.
    pub async fn started(&mut self) -> Result<(u32, u64), String> {
        match self.replies.recv().await {
            Some(Reply::Started { pid, start_time }) => Ok((pid, start_time)),
            Some(Reply::Failed(message)) => {
                self.over = true;
                Err(message)
            }
            Some(Reply::Exited(_)) | None => {
                self.over = true;
                Err("the supervisor ended without starting it".to_owned())
            }
        }
    }

    /// Waits until the command and everything it started are over: the main process's exit
    /// status as the supervisor reports it, or `None` when the supervisor itself is gone (its
    /// command was killed with it).
    pub async fn exited(&mut self) -> Option<ExitStatus> {
        let status = loop {
            match self.replies.recv().await {
                Some(Reply::Exited(status)) => break Some(status),
                Some(_) => {}
                None => break None,
            }
        };
        self.over = true;
        status.map(ExitStatus::from_raw)
    }

    /// Asks the supervisor to end the command now, with everything it started.
    pub fn end(&self) {
        end(&self.client, self.id);
    }

    /// A handle that can end the command from elsewhere (a hard stop).
    pub fn ender(&self) -> Ender {
        Ender {
            client: self.client.clone(),
            id: self.id,
        }
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        // An attempt given up before its command was over (its future dropped): nothing of it
        // may run on.
        if !self.over {
            self.end();
        }
        if let Ok(mut w) = self.client.waiters.lock() {
            w.remove(&self.id);
        }
    }
}

/// Ends one command from wherever the run decides to (see [`Spawned::ender`]).
#[derive(Clone)]
pub struct Ender {
    client: Arc<Client>,
    id: u64,
}

impl std::fmt::Debug for Ender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Ender({})", self.id)
    }
}

impl Ender {
    pub fn end(&self) {
        end(&self.client, self.id);
    }
}

fn end(client: &Client, id: u64) {
    if let Ok(socket) = client.requests.lock() {
        let _ = supervisor_request::send(&socket, &Request::End { id }, &[]);
    }
}

/// The argv and environment of a command, ready to send.
pub fn request(
    argv: &[String],
    found: OsString,
    cwd: Option<&String>,
    hidden: &[String],
    env: &[(String, String)],
) -> Spawn {
    Spawn {
        id: 0,
        found,
        cwd: cwd.map(OsString::from).unwrap_or_default(),
        remove: hidden.iter().map(OsString::from).collect(),
        set: env
            .iter()
            .map(|(k, v)| (OsString::from(k), OsString::from(v)))
            .collect(),
        argv: argv.iter().map(OsString::from).collect(),
    }
}
