//! The run's supervisor: one small process (`runbook` itself, re-executed as the hidden
//! subcommand `__supervise`) that starts every command of the run and sits between runbook and
//! them, so that nothing a step started outlives it, whatever the timing.
//!
//! Why a process of its own: runbook can die by SIGKILL, and then nothing of it runs. The
//! kernel's parent-death signal reaches only the *direct* child, and once a step's shell has
//! exited and been reaped its grandchildren are orphans nobody ends. The supervisor gets the
//! parent-death signal (SIGTERM) instead, and it still runs when runbook is gone: it kills
//! every command's process group, and, being a child subreaper, every orphaned descendant too
//! (even one that left its group with `setsid`), and exits only when none is left. Each command
//! gets SIGKILL as its own parent-death signal, should the supervisor itself be killed.
//!
//! It also ends a step when the command's main process exits: descendants still running (a
//! `sleep 60 &` holding stdout) get [`GRACE`] to finish, then are killed with the group. A
//! descendant that left the group and was orphaned belongs to one of the steps running when it
//! was first seen: it is ended with the last of them (the only one, in a sequential run).
//!
//! One supervisor serves the whole run (started by posix_spawn, once): a step costs the
//! command's start (see [`vfork`]: no copy of the supervisor) and its `execve`, not a second
//! `execve` of runbook.
//!
//! Protocol: runbook starts it with its own pid as the only argument; its standard input is a
//! Unix socket carrying [`Request`]s (with the commands' standard streams as descriptors), its
//! standard output a pipe for replies, one line each: `started ID PID START_TIME` (the
//! command's pid, which is its process group, and its start time), `failed ID MESSAGE` (the
//! command could not start), `exited ID STATUS` (the step is over: its main process's wait
//! status, and nothing of it is left). The end of the socket (runbook gone, or done) ends
//! everything.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ffi::OsString;
use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use super::process_group;
use super::supervisor_request::{self, Request, Spawn, Streams};
use super::vfork;

/// The hidden subcommand.
pub const SUBCOMMAND: &str = "__supervise";

/// How long descendants may run on after the command's main process exited.
pub const GRACE: Duration = Duration::from_millis(200);

/// How often the supervisor looks again while a step is ending.
const TICK: Duration = Duration::from_millis(5);

/// How long an ending step may take to empty its group (members that are not the supervisor's
/// descendants, joined from elsewhere) before it is reported over anyway.
const GIVE_UP: Duration = Duration::from_secs(5);

/// The signals the supervisor takes synchronously. SIGTERM (runbook died, or asks for the
/// end) ends every command; SIGINT and SIGHUP are runbook's to handle, never the supervisor's.
fn signals() -> libc::sigset_t {
    // SAFETY: sigset_t is plain data, initialised by sigemptyset before use.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for sig in [libc::SIGTERM, libc::SIGCHLD, libc::SIGINT, libc::SIGHUP] {
            libc::sigaddset(&mut set, sig);
        }
        set
    }
}

/// Runs the supervisor: `args` is runbook's pid. Never returns.
pub fn main(args: &[OsString]) -> ! {
    let set = signals();
    // SAFETY: sigprocmask with a valid set: the signals are taken from a signalfd.
    unsafe {
        libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
    }
    let Some(parent) = args
        .first()
        .and_then(|a| a.to_str()?.parse::<libc::pid_t>().ok())
    else {
        std::process::exit(2);
    };
    // If runbook dies (SIGKILL, a crash), SIGTERM ends every command with its descendants: a
    // resumed run must not race a step it thinks is in doubt. Armed before the check, so that
    // runbook dying at any moment is seen by one or the other.
    // SAFETY: prctl and getppid with integer arguments.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
        if libc::getppid() != parent {
            std::process::exit(1);
        }
        libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1);
    }
    // SAFETY: standard input and output are the request socket and the reply pipe, handed over
    // by runbook for the supervisor alone; close-on-exec, so that no command holds them.
    let (requests, replies) = unsafe {
        libc::fcntl(0, libc::F_SETFD, libc::FD_CLOEXEC);
        libc::fcntl(1, libc::F_SETFD, libc::FD_CLOEXEC);
        // Replies never block the supervisor (see `Supervisor::reply`).
        libc::fcntl(
            1,
            libc::F_SETFL,
            libc::fcntl(1, libc::F_GETFL) | libc::O_NONBLOCK,
        );
        (
            UnixStream::from(OwnedFd::from_raw_fd(0)),
            std::fs::File::from_raw_fd(1),
        )
    };
    // SAFETY: signalfd with a valid set, a new descriptor.
    let sfd = unsafe { libc::signalfd(-1, &set, libc::SFD_CLOEXEC | libc::SFD_NONBLOCK) };
    if sfd < 0 {
        std::process::exit(1);
    }
    let Ok(null) = std::fs::File::open("/dev/null") else {
        std::process::exit(1);
    };
    let null = OwnedFd::from(null);
    // The environment commands inherit (runbook's), read once.
    let inherited: BTreeMap<OsString, OsString> = std::env::vars_os().collect();
    let Ok(environment) = vfork::Environment::new(inherited.clone()) else {
        std::process::exit(1);
    };
    let mut supervisor = Supervisor {
        replies,
        unsent: Vec::new(),
        steps: BTreeMap::new(),
        orphans: HashMap::new(),
        me: std::process::id() as libc::pid_t,
        null,
        stack: vfork::Stack::default(),
        environment,
        inherited,
    };
    loop {
        let busy = supervisor.steps.values().any(|s| s.ending.is_some());
        let mut fds = [
            libc::pollfd {
                fd: requests.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: sfd,
                events: libc::POLLIN,
                revents: 0,
            },
            // Watched only while replies wait for room (a negative descriptor is skipped).
            libc::pollfd {
                fd: if supervisor.unsent.is_empty() {
                    -1
                } else {
                    supervisor.replies.as_raw_fd()
                },
                events: libc::POLLOUT,
                revents: 0,
            },
        ];
        let timeout = if busy { TICK.as_millis() as i32 } else { -1 };
        // SAFETY: poll on three valid pollfds.
        unsafe {
            libc::poll(fds.as_mut_ptr(), 3, timeout);
        }
        if fds[2].revents != 0 {
            supervisor.flush();
        }
        if fds[1].revents != 0 && drain(sfd) {
            break;
        }
        supervisor.reap_all();
        if fds[0].revents != 0 {
            match supervisor_request::receive(&requests) {
                Ok(Some(received)) => supervisor.handle(received.request, received.fds),
                // runbook is gone, or done with the run.
                Ok(None) | Err(_) => break,
            }
        }
        supervisor.settle();
    }
    supervisor.end_everything();
    std::process::exit(0)
}

/// Reads what the signalfd holds; whether SIGTERM was among it.
fn drain(sfd: libc::c_int) -> bool {
    let mut term = false;
    loop {
        // SAFETY: signalfd_siginfo is plain data; read writes at most its size.
        let mut info: libc::signalfd_siginfo = unsafe { std::mem::zeroed() };
        let size = std::mem::size_of::<libc::signalfd_siginfo>();
        // SAFETY: reads into a buffer of `size` bytes.
        let n = unsafe { libc::read(sfd, (&raw mut info).cast(), size) };
        if n != size as isize {
            return term;
        }
        term |= info.ssi_signo == libc::SIGTERM as u32;
    }
}

/// One command, from its start until everything of it is gone.
struct Step {
    /// The command's pid, which is its process group.
    main: libc::pid_t,
    /// The main process's wait status, once reaped.
    status: Option<libc::c_int>,
    /// False once the group was seen empty: its id may be reused, so it is never signalled
    /// again.
    group_alive: bool,
    /// Ending: what is left of it is killed at `kill_at`; reported over once nothing is left,
    /// or at the latest by `give_up`.
    ending: Option<Ending>,
}

struct Ending {
    kill_at: Instant,
    give_up: Instant,
}

struct Supervisor {
    replies: std::fs::File,
    /// Replies the pipe had no room for yet, in order.
    unsent: Vec<u8>,
    steps: BTreeMap<u64, Step>,
    /// Descendants that left their step's group and were orphaned to the supervisor, with the
    /// steps they may belong to (those running when each was first seen).
    orphans: HashMap<libc::pid_t, BTreeSet<u64>>,
    me: libc::pid_t,
    /// The input of commands that read none.
    null: OwnedFd,
    stack: vfork::Stack,
    /// What a command inherits, and the same ready for `execve`.
    inherited: BTreeMap<OsString, OsString>,
    environment: vfork::Environment,
}

impl Supervisor {
    /// Sends a reply line, or keeps it until the pipe has room: the supervisor must never
    /// wait on runbook, which may itself be waiting to send the next request.
    fn reply(&mut self, line: &str) {
        self.unsent.extend_from_slice(line.as_bytes());
        self.flush();
    }

    /// Writes what the pipe takes of the unsent replies. runbook gone: the end of the socket
    /// says so next.
    fn flush(&mut self) {
        while !self.unsent.is_empty() {
            match self.replies.write(&self.unsent) {
                Ok(n) if n > 0 => {
                    self.unsent.drain(..n);
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
                _ => {
                    self.unsent.clear();
                    return;
                }
            }
        }
    }

    fn handle(&mut self, request: Request, fds: Vec<OwnedFd>) {
        match request {
            Request::Spawn { spawn, reads_input } => self.spawn(spawn, reads_input, fds),
            Request::End { id } => {
                if let Some(step) = self.steps.get_mut(&id) {
                    let now = Instant::now();
                    let give_up = step.ending.as_ref().map_or(now + GIVE_UP, |e| e.give_up);
                    step.ending = Some(Ending {
                        kill_at: now,
                        give_up,
                    });
                }
            }
        }
    }

    fn spawn(&mut self, spawn: Spawn, reads_input: bool, fds: Vec<OwnedFd>) {
        let id = spawn.id;
        let Some(streams) = Streams::received(fds, reads_input) else {
            self.reply(&format!("failed {id} its streams were not all passed\n"));
            return;
        };
        if spawn.argv.is_empty() {
            self.reply(&format!("failed {id} no program\n"));
            return;
        }
        let started = self.start(&spawn, &streams);
        drop(streams);
        match started {
            Ok(pid) => {
                // Read before anything reaps it: a zombie still has its stat.
                let start_time = process_group::stat(pid).map_or(0, |s| s.start_time);
                self.steps.insert(
                    id,
                    Step {
                        main: pid,
                        status: None,
                        group_alive: true,
                        ending: None,
                    },
                );
                self.reply(&format!("started {id} {pid} {start_time}\n"));
            }
            Err(e) => {
                let message = e.to_string().replace('\n', " ");
                self.reply(&format!("failed {id} {message}\n"));
            }
        }
    }

    /// Starts the command: where the run found it, else (or if that file is gone) wherever
    /// its `PATH` says now, as if the run had not looked.
    fn start(&mut self, spawn: &Spawn, streams: &Streams) -> std::io::Result<libc::pid_t> {
        let own;
        let env = if spawn.remove.is_empty() && spawn.set.is_empty() {
            &self.environment
        } else {
            let mut vars = self.inherited.clone();
            for name in &spawn.remove {
                vars.remove(name);
            }
            vars.extend(spawn.set.iter().cloned());
            own = vfork::Environment::new(vars)?;
            &own
        };
        let stdin = streams.stdin.as_ref().unwrap_or(&self.null);
        let command = vfork::Command {
            found: &spawn.found,
            argv: &spawn.argv,
            env,
            cwd: &spawn.cwd,
            streams: [
                stdin.as_raw_fd(),
                streams.stdout.as_raw_fd(),
                streams.stderr.as_raw_fd(),
            ],
            unblock: signals(),
        };
        vfork::spawn(&command, &mut self.stack)
    }

    /// Reaps every child that has exited; a step's main process starts the step's end.
    fn reap_all(&mut self) {
        loop {
            let mut status = 0;
            // SAFETY: waitpid with a valid out pointer.
            let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
            if pid <= 0 {
                return;
            }
            self.orphans.remove(&pid);
            if let Some(step) = self.steps.values_mut().find(|s| s.main == pid) {
                step.status = Some(status);
                if step.ending.is_none() {
                    let now = Instant::now();
                    step.ending = Some(Ending {
                        kill_at: now + GRACE,
                        give_up: now + GRACE + GIVE_UP,
                    });
                }
            }
        }
    }

    /// Notes the orphans not seen before, with the steps they may belong to.
    fn find_orphans(&mut self) {
        if !has_children() {
            // Nothing to look for (the common end of a step: its one process reaped).
            self.orphans.clear();
            return;
        }
        let mains: BTreeSet<libc::pid_t> = self.steps.values().map(|s| s.main).collect();
        for pid in children_of(self.me) {
            if mains.contains(&pid) || self.orphans.contains_key(&pid) {
                continue;
            }
            // Still in a step's group: it is ended with the group.
            let in_group = process_group::stat(pid).is_some_and(|s| mains.contains(&s.pgrp));
            if !in_group {
                let running: BTreeSet<u64> = self.steps.keys().copied().collect();
                self.orphans.insert(pid, running);
            }
        }
    }

    /// Ends and reports the steps that are over.
    fn settle(&mut self) {
        if !self.steps.values().any(|s| s.ending.is_some()) {
            return;
        }
        self.find_orphans();
        let now = Instant::now();
        let ids: Vec<u64> = self.steps.keys().copied().collect();
        for id in ids {
            let Some(step) = self.steps.get_mut(&id) else {
                continue;
            };
            let Some(ending) = &step.ending else {
                continue;
            };
            let (kill_at, give_up) = (ending.kill_at, ending.give_up);
            let main = step.main;
            let group_empty = group_empty(step);
            // Orphans that are this step's alone (every other step they may belong to is over).
            let own: Vec<libc::pid_t> = self
                .orphans
                .iter()
                .filter(|(_, steps)| steps.len() == 1 && steps.contains(&id))
                .map(|(&pid, _)| pid)
                .collect();
            let reaped = step.status.is_some();
            if reaped && group_empty && own.is_empty() {
                self.finish(id);
                continue;
            }
            if now >= kill_at {
                if !group_empty {
                    // SAFETY: the group is the command's and has not been seen empty.
                    unsafe {
                        libc::killpg(main, libc::SIGKILL);
                    }
                }
                for pid in own {
                    kill_tree(pid);
                }
            }
            if now >= give_up {
                self.finish(id);
            }
        }
    }

    /// Reports a step over and forgets it.
    fn finish(&mut self, id: u64) {
        let Some(step) = self.steps.remove(&id) else {
            return;
        };
        let status = step.status.unwrap_or(libc::SIGKILL);
        self.reply(&format!("exited {id} {status}\n"));
        // Orphans that may have been this step's are now someone else's, or nobody's.
        let mut nobody = Vec::new();
        for (&pid, steps) in &mut self.orphans {
            steps.remove(&id);
            if steps.is_empty() {
                nobody.push(pid);
            }
        }
        for pid in nobody {
            kill_tree(pid);
        }
    }

    /// Kills every group and every descendant, until none is left.
    fn end_everything(&mut self) {
        let deadline = Instant::now() + GIVE_UP;
        loop {
            for step in self.steps.values_mut() {
                if !group_empty(step) {
                    // SAFETY: the group is the command's and has not been seen empty.
                    unsafe {
                        libc::killpg(step.main, libc::SIGKILL);
                    }
                }
            }
            for pid in children_of(self.me) {
                kill_tree(pid);
            }
            self.reap_all();
            let left = !children_of(self.me).is_empty()
                || self.steps.values_mut().any(|s| !group_empty(s));
            if !left || Instant::now() >= deadline {
                return;
            }
            std::thread::sleep(TICK);
        }
    }
}

fn group_empty(step: &mut Step) -> bool {
    if step.group_alive {
        // SAFETY: signal 0 only checks that the group exists.
        let r = unsafe { libc::killpg(step.main, 0) };
        if r != 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH) {
            step.group_alive = false;
        }
    }
    !step.group_alive
}

/// Whether the supervisor has any child at all, running or not yet reaped (one system call,
/// where listing them reads `/proc`).
fn has_children() -> bool {
    // SAFETY: siginfo_t is plain data; waitid with WNOWAIT only looks.
    let r = unsafe {
        let mut info: libc::siginfo_t = std::mem::zeroed();
        libc::waitid(
            libc::P_ALL,
            0,
            &mut info,
            libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
        )
    };
    !(r == -1 && std::io::Error::last_os_error().raw_os_error() == Some(libc::ECHILD))
}

/// Kills `pid`, a child of the supervisor not yet reaped (so its pid is its own), after its
/// descendants, so that none is orphaned again in between.
fn kill_tree(pid: libc::pid_t) {
    for child in children_of(pid) {
        kill_tree(child);
    }
    // SAFETY: kill has no memory-safety preconditions.
    unsafe {
        libc::kill(pid, libc::SIGKILL);
    }
}

/// The children of a process (the lists of each of its threads; for the supervisor, one
/// thread: its commands and the orphans it adopted), or a scan of `/proc` where the kernel keeps
/// no such lists.
fn children_of(pid: libc::pid_t) -> Vec<libc::pid_t> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    let mut children = Vec::new();
    for task in tasks.filter_map(Result::ok) {
        match std::fs::read_to_string(task.path().join("children")) {
            Ok(text) => children.extend(
                text.split_whitespace()
                    .filter_map(|p| p.parse::<libc::pid_t>().ok()),
            ),
            Err(_) => return process_group::children(pid),
        }
    }
    children
}
