//! The supervisor of one command: a small process (`runbook` itself, re-executed as the hidden
//! subcommand `__supervise`) that sits between runbook and the command, so that nothing a step
//! started outlives it, whatever the timing.
//!
//! Why a process of its own: runbook can die by SIGKILL, and then nothing of it runs. The
//! kernel's parent-death signal reaches only the *direct* child, and once a step's shell has
//! exited and been reaped its grandchildren are orphans nobody ends. The supervisor gets the
//! parent-death signal (SIGTERM) instead, and it still runs when runbook is gone: it kills the
//! command's process group, and, being a child subreaper, every orphaned descendant too (even
//! one that left the group with `setsid`), and exits only when none is left.
//!
//! It also ends the step when the command's main process exits: descendants still running (a
//! `sleep 60 &` holding stdout) get [`GRACE`] to finish, then are killed with the group.
//!
//! Protocol: runbook starts it with its own pid as the first argument and, as the second, the
//! descriptor of a pipe's write end: `0`, its standard input (runbook then starts it by
//! posix_spawn: nothing of runbook's runs in the child between fork and exec, so the
//! supervisor arms the parent-death signal itself, then checks that its parent is still that
//! pid: a runbook that died before that point is never missed; the command reads /dev/null),
//! or another descriptor when the command reads the supervisor's standard input (a remote
//! action's script, a hook's event). The third is where the program is, as the run found it
//! in `PATH` ([`crate::program_path`]), or empty: the supervisor looks the program up itself,
//! and does so too when the file found is gone. Then `--` and the command. The supervisor
//! writes
//! `ok PID START_TIME` (the command's pid, which is its process group, and its start time) or
//! `err MESSAGE` (the command could not start), then closes it. Its exit status is the
//! command's (exit code, or death by the same signal).

use std::ffi::OsString;
use std::io::Write;
use std::os::fd::{FromRawFd, RawFd};
use std::os::unix::process::CommandExt;
use std::process::Stdio;
use std::time::{Duration, Instant};

use super::process_group;

/// The hidden subcommand.
pub const SUBCOMMAND: &str = "__supervise";

/// How long descendants may run on after the command's main process exited.
pub const GRACE: Duration = Duration::from_millis(200);

/// The signals the supervisor takes synchronously. SIGTERM (runbook died, or asks for the
/// end) ends the command; SIGINT and SIGHUP are runbook's to handle, never the supervisor's.
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

/// Blocks [`signals`], first thing, so that the parent-death signal is taken synchronously.
fn block_signals() {
    let set = signals();
    // SAFETY: sigprocmask with a valid set; async-signal-safe.
    unsafe {
        libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
    }
}

/// Runs the supervisor: `args` are runbook's pid, the control pipe's descriptor (`0`: standard
/// input), where the program is (empty: look it up), `--`, then the command's argv. Never
/// returns.
pub fn main(args: &[OsString]) -> ! {
    block_signals();
    let parent: Option<libc::pid_t> = args.first().and_then(|a| a.to_str()?.parse().ok());
    let control: Option<RawFd> = args.get(1).and_then(|a| a.to_str()?.parse().ok());
    let found = args.get(2).filter(|a| !a.is_empty());
    let argv = args.get(4..).unwrap_or_default();
    let (Some(parent), Some(control), Some(program)) = (parent, control, argv.first()) else {
        std::process::exit(2);
    };
    // If runbook dies (SIGKILL, a crash), SIGTERM ends the command with every descendant: a
    // resumed run must not race a step it thinks is in doubt. Armed before the check, so that
    // runbook dying at any moment is seen by one or the other.
    // SAFETY: prctl and getppid with integer arguments.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
        if libc::getppid() != parent {
            std::process::exit(1);
        }
    }
    // The command reads /dev/null when standard input is the control pipe, else what runbook
    // writes to the supervisor's standard input.
    let reads_null = control == 0;
    // SAFETY: runbook hands this descriptor over as the control pipe, for the supervisor
    // alone. Close-on-exec, so that the command does not hold it open.
    let mut control = unsafe {
        libc::fcntl(control, libc::F_SETFD, libc::FD_CLOEXEC);
        std::fs::File::from_raw_fd(control)
    };
    // SAFETY: prctl with integer arguments.
    unsafe {
        libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1);
    }
    let start = |path: &OsString| {
        let input = if reads_null {
            Stdio::null()
        } else {
            Stdio::inherit()
        };
        command(path, program, &argv[1..], input).spawn()
    };
    // The program where the run found it; if that file is gone, wherever `PATH` says now, as
    // if the run had not looked.
    let started = match found {
        Some(path) => match start(path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => start(program),
            started => started,
        },
        None => start(program),
    };
    let child = match started {
        Ok(child) => child,
        Err(e) => {
            let _ = writeln!(control, "err {e}");
            std::process::exit(127);
        }
    };
    let pid = child.id() as libc::pid_t;
    // Read before anything reaps it: a zombie still has its stat.
    let start_time = process_group::stat(pid).map_or(0, |s| s.start_time);
    let _ = writeln!(control, "ok {pid} {start_time}");
    drop(control);

    let mut supervisor = Supervisor {
        main: pid,
        status: None,
        group_alive: true,
    };
    let terminated = supervisor.wait_for_main();
    if !terminated {
        supervisor.grace();
    }
    supervisor.end_all();
    exit_like(supervisor.status)
}

/// The command: `path` started with `program` as its argv[0], in a process group of its own.
fn command(
    path: &OsString,
    program: &OsString,
    args: &[OsString],
    input: Stdio,
) -> std::process::Command {
    let mut command = std::process::Command::new(path);
    command
        .arg0(program)
        .args(args)
        .stdin(input)
        .process_group(0);
    let me = std::process::id() as libc::pid_t;
    // SAFETY: only async-signal-safe calls between fork and exec (prctl, sigprocmask, getppid,
    // _exit); `signals` only fills a local sigset_t.
    unsafe {
        command.pre_exec(move || {
            // Should the supervisor itself be killed, the command goes with it.
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            let set = signals();
            libc::sigprocmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
            if libc::getppid() != me {
                libc::_exit(1);
            }
            Ok(())
        });
    }
    command
}

struct Supervisor {
    main: libc::pid_t,
    /// The main process's wait status, once reaped.
    status: Option<libc::c_int>,
    /// False once the group was seen empty: its id may be reused, so it is never signalled
    /// again.
    group_alive: bool,
}

enum Reaped {
    /// A child was reaped.
    One,
    /// Children exist, none has exited.
    None,
    /// No children at all.
    NoChildren,
}

impl Supervisor {
    fn reap(&mut self, flags: libc::c_int) -> Reaped {
        let mut status = 0;
        // SAFETY: waitpid with a valid out pointer.
        let pid = unsafe { libc::waitpid(-1, &mut status, flags) };
        if pid == self.main {
            self.status = Some(status);
        }
        match pid {
            p if p > 0 => Reaped::One,
            0 => Reaped::None,
            _ if std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) => {
                Reaped::None
            }
            _ => Reaped::NoChildren,
        }
    }

    fn reap_all(&mut self) -> bool {
        loop {
            match self.reap(libc::WNOHANG) {
                Reaped::One => {}
                Reaped::None => return false,
                Reaped::NoChildren => return true,
            }
        }
    }

    /// Waits until the main process exits (false) or a SIGTERM asks for the end (true).
    fn wait_for_main(&mut self) -> bool {
        let set = signals();
        loop {
            self.reap_all();
            if self.status.is_some() {
                return false;
            }
            // SAFETY: sigwaitinfo with a valid set and a null info pointer.
            let sig = unsafe { libc::sigwaitinfo(&set, std::ptr::null_mut()) };
            if sig == libc::SIGTERM {
                return true;
            }
        }
    }

    fn group_empty(&mut self) -> bool {
        if self.group_alive {
            // SAFETY: signal 0 only checks that the group exists.
            let r = unsafe { libc::killpg(self.main, 0) };
            if r != 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH) {
                self.group_alive = false;
            }
        }
        !self.group_alive
    }

    /// Lets what the main process left behind finish on its own, for at most [`GRACE`].
    fn grace(&mut self) {
        let set = signals();
        let deadline = Instant::now() + GRACE;
        loop {
            let no_children = self.reap_all();
            if (no_children && self.group_empty()) || Instant::now() >= deadline {
                return;
            }
            let wait = libc::timespec {
                tv_sec: 0,
                tv_nsec: 10_000_000,
            };
            // SAFETY: sigtimedwait with a valid set and timeout.
            let sig = unsafe { libc::sigtimedwait(&set, std::ptr::null_mut(), &wait) };
            if sig == libc::SIGTERM {
                return;
            }
        }
    }

    /// Kills the group and every descendant (orphans come to the supervisor: it is their
    /// subreaper), until none is left.
    fn end_all(&mut self) {
        let me = std::process::id() as libc::pid_t;
        for _ in 0..1000 {
            if !self.group_empty() {
                // SAFETY: the group is the command's and has not been seen empty.
                unsafe {
                    libc::killpg(self.main, libc::SIGKILL);
                }
            }
            match self.reap(libc::WNOHANG) {
                Reaped::One => continue,
                Reaped::NoChildren if self.group_empty() => return,
                Reaped::NoChildren => {}
                Reaped::None => {
                    for pid in process_group::children(me) {
                        // SAFETY: a live child of ours: its pid cannot be reused before we
                        // reap it.
                        unsafe {
                            libc::kill(pid, libc::SIGKILL);
                        }
                    }
                    self.reap(0);
                    continue;
                }
            }
            // Members that are not our descendants (a process that joined the group from
            // elsewhere): give the kill a moment.
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

/// Exits as the main process did: the same code, or death by the same signal.
fn exit_like(status: Option<libc::c_int>) -> ! {
    let Some(status) = status else {
        std::process::exit(128 + libc::SIGKILL);
    };
    if libc::WIFEXITED(status) {
        std::process::exit(libc::WEXITSTATUS(status));
    }
    let sig = if libc::WIFSIGNALED(status) {
        libc::WTERMSIG(status)
    } else {
        libc::SIGKILL
    };
    // SAFETY: restores the default action and raises the signal on ourselves; no core dump
    // (the command's own, if any, was already written).
    unsafe {
        let none = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        libc::setrlimit(libc::RLIMIT_CORE, &none);
        libc::signal(sig, libc::SIG_DFL);
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, sig);
        libc::sigprocmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
        libc::raise(sig);
    }
    std::process::exit(128 + sig)
}
