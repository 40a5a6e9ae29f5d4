//! How the supervisor starts a command: the way `posix_spawn` does, with what `posix_spawn`
//! cannot set.
//!
//! The child shares the supervisor's memory and the supervisor waits until the child has
//! called `execve` (`CLONE_VM | CLONE_VFORK`): no copy of the supervisor's page tables, none
//! to tear down again at the `execve`, no copy-on-write faults after it. Between the clone and
//! the `execve` the child runs only system calls on what was prepared before (no allocation,
//! no lock): its standard streams, a process group of its own, SIGKILL as its parent-death
//! signal (should the supervisor die), the signals the supervisor blocks unblocked, its
//! working directory, then the program — as `execvp` finds and starts it: by name through the
//! command's own `PATH` (read from its working directory), a script without `#!` through
//! `/bin/sh`. Why it could not start travels back in memory both share.

use std::ffi::{CString, OsStr, OsString};
use std::os::fd::RawFd;
use std::os::unix::ffi::OsStrExt;

/// The child's stack: what the calls between the clone and `execve` need, with room to spare.
const STACK: usize = 64 * 1024;

/// `PATH` when the command has none (what `execvp` uses then).
const DEFAULT_PATH: &[u8] = b"/bin:/usr/bin";

/// A command to start.
pub struct Command<'a> {
    /// Where the program is, as the run found it (empty: look it up by name).
    pub found: &'a OsStr,
    /// The program, then its arguments.
    pub argv: &'a [OsString],
    /// Its whole environment.
    pub env: &'a Environment,
    /// Its working directory (empty: the supervisor's).
    pub cwd: &'a OsStr,
    /// Its standard input, output and error.
    pub streams: [RawFd; 3],
    /// The signals to unblock in it.
    pub unblock: libc::sigset_t,
}

/// A command's whole environment, ready for `execve` (`NAME=value` each).
pub struct Environment(Vec<CString>);

impl Environment {
    pub fn new(vars: impl IntoIterator<Item = (OsString, OsString)>) -> std::io::Result<Self> {
        vars.into_iter()
            .map(|(k, v)| c_string(&[k.as_bytes(), b"=", v.as_bytes()].concat()))
            .collect::<Result<_, _>>()
            .map(Self)
    }

    /// Its `PATH`, if it has one.
    fn path(&self) -> Option<&[u8]> {
        self.0
            .iter()
            .find_map(|entry| entry.as_bytes().strip_prefix(b"PATH="))
    }
}

fn c_string(bytes: &[u8]) -> std::io::Result<CString> {
    CString::new(bytes).map_err(|_| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "a NUL character in its program, arguments, environment or working directory",
        )
    })
}

/// A stack for children, reused: the supervisor is one thread, and waits for each child to
/// leave it (by `execve` or `_exit`) before it starts another.
pub struct Stack(Vec<u8>);

impl Default for Stack {
    fn default() -> Self {
        Self(vec![0; STACK])
    }
}

/// What the child reads, all prepared before the clone; `errno` is what it writes back.
struct Child {
    candidates: Vec<*const libc::c_char>,
    argv: *const *const libc::c_char,
    envp: *const *const libc::c_char,
    /// `/bin/sh`, the script (filled in by the child), then the arguments.
    sh_argv: *mut *const libc::c_char,
    cwd: *const libc::c_char,
    streams: [RawFd; 3],
    unblock: libc::sigset_t,
    parent: libc::pid_t,
    errno: libc::c_int,
}

/// Starts `command`; its pid, once it has called `execve`.
pub fn spawn(command: &Command, stack: &mut Stack) -> std::io::Result<libc::pid_t> {
    let program = command
        .argv
        .first()
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, "no program"))?;
    let argv: Vec<CString> = command
        .argv
        .iter()
        .map(|a| c_string(a.as_bytes()))
        .collect::<Result<_, _>>()?;
    let candidates: Vec<CString> =
        candidates(command.found, program.as_bytes(), command.env.path())
            .into_iter()
            .map(|p| c_string(&p))
            .collect::<Result<_, _>>()?;
    let cwd = (!command.cwd.is_empty())
        .then(|| c_string(command.cwd.as_bytes()))
        .transpose()?;
    let sh = c_string(b"/bin/sh")?;
    let argv_ptrs = null_terminated(&argv);
    let env_ptrs = null_terminated(&command.env.0);
    // `/bin/sh SCRIPT ARGS…`, as execvp runs a file the kernel will not (ENOEXEC).
    let mut sh_argv: Vec<*const libc::c_char> = [sh.as_ptr(), std::ptr::null()]
        .into_iter()
        .chain(argv_ptrs[1..].iter().copied())
        .collect();
    let mut child = Child {
        candidates: candidates.iter().map(|p| p.as_ptr()).collect(),
        argv: argv_ptrs.as_ptr(),
        envp: env_ptrs.as_ptr(),
        sh_argv: sh_argv.as_mut_ptr(),
        cwd: cwd.as_ref().map_or(std::ptr::null(), |c| c.as_ptr()),
        streams: command.streams,
        unblock: command.unblock,
        // SAFETY: getpid has no preconditions.
        parent: unsafe { libc::getpid() },
        errno: 0,
    };
    // The top of the stack (it grows down), aligned as the ABI wants.
    let top = {
        let end = stack.0.as_mut_ptr_range().end as usize;
        (end & !15) as *mut libc::c_void
    };
    // SAFETY: `child_main` runs on `stack`, which nothing else uses, until the child calls
    // execve or _exit; CLONE_VFORK suspends this thread until then, so everything `child`
    // points to outlives the child's use of it, and nothing else touches it meanwhile.
    let pid = unsafe {
        libc::clone(
            child_main,
            top,
            libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD,
            (&raw mut child).cast(),
        )
    };
    if pid < 0 {
        return Err(std::io::Error::last_os_error());
    }
    if child.errno != 0 {
        let mut status = 0;
        // SAFETY: waitpid on our own child, with a valid out pointer.
        unsafe {
            libc::waitpid(pid, &mut status, 0);
        }
        return Err(std::io::Error::from_raw_os_error(child.errno));
    }
    Ok(pid)
}

/// The files to try, in order: where the run found the program, then what `execvp` would try.
fn candidates(found: &OsStr, program: &[u8], path: Option<&[u8]>) -> Vec<Vec<u8>> {
    let mut files = Vec::new();
    if !found.is_empty() {
        files.push(found.as_bytes().to_vec());
    }
    if program.contains(&b'/') {
        files.push(program.to_vec());
    } else if !program.is_empty() {
        for dir in path.unwrap_or(DEFAULT_PATH).split(|&b| b == b':') {
            // An empty entry is the working directory.
            let dir: &[u8] = if dir.is_empty() { b"." } else { dir };
            files.push([dir, b"/", program].concat());
        }
    }
    files
}

fn null_terminated(strings: &[CString]) -> Vec<*const libc::c_char> {
    strings
        .iter()
        .map(|s| s.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect()
}

/// The child, from the clone to `execve`: system calls only.
extern "C" fn child_main(arg: *mut libc::c_void) -> libc::c_int {
    // SAFETY: `arg` is the `Child` the suspended parent prepared; every pointer in it is valid
    // until this child calls execve or _exit, and only plain system calls are made here.
    unsafe {
        let child = &mut *arg.cast::<Child>();
        let fail = |child: &mut Child, errno: libc::c_int| -> ! {
            child.errno = errno;
            libc::_exit(127)
        };
        let errno = || *libc::__errno_location();
        for (target, &fd) in child.streams.iter().enumerate() {
            let target = target as libc::c_int;
            let done = if fd == target {
                libc::fcntl(fd, libc::F_SETFD, 0)
            } else {
                libc::dup2(fd, target)
            };
            if done < 0 {
                fail(child, errno());
            }
        }
        if libc::setpgid(0, 0) < 0 {
            fail(child, errno());
        }
        // runbook ignores SIGPIPE; the command gets the default, as a shell would give it.
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        // Should the supervisor itself be killed, the command goes with it; should it already
        // be gone, the command does not start.
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
        libc::sigprocmask(libc::SIG_UNBLOCK, &child.unblock, std::ptr::null_mut());
        if libc::getppid() != child.parent {
            libc::_exit(1);
        }
        if !child.cwd.is_null() && libc::chdir(child.cwd) < 0 {
            fail(child, errno());
        }
        // execvp's rules: a file that is not there (or not a directory on the way) sends it to
        // the next; one it may not run is remembered and the search goes on; any other error
        // ends it.
        let mut denied = false;
        let mut last = libc::ENOENT;
        for i in 0..child.candidates.len() {
            let file = *child.candidates.as_ptr().add(i);
            libc::execve(file, child.argv, child.envp);
            match errno() {
                libc::ENOEXEC => {
                    *child.sh_argv.add(1) = file;
                    libc::execve(*child.sh_argv, child.sh_argv, child.envp);
                    fail(child, errno());
                }
                libc::EACCES => denied = true,
                e @ (libc::ENOENT
                | libc::ENOTDIR
                | libc::ESTALE
                | libc::ENODEV
                | libc::ETIMEDOUT) => last = e,
                e => fail(child, e),
            }
        }
        fail(child, if denied { libc::EACCES } else { last })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(files: Vec<Vec<u8>>) -> Vec<String> {
        files
            .into_iter()
            .map(|f| String::from_utf8(f).unwrap())
            .collect()
    }

    #[test]
    fn a_program_by_name_is_tried_in_each_directory_of_the_commands_path() {
        let files = candidates(OsStr::new(""), b"tool", Some(b"/a::/b"));
        assert_eq!(strings(files), ["/a/tool", "./tool", "/b/tool"]);
    }

    #[test]
    fn where_the_run_found_it_comes_first_then_the_lookup() {
        let files = candidates(OsStr::new("/usr/bin/tool"), b"tool", None);
        assert_eq!(
            strings(files),
            ["/usr/bin/tool", "/bin/tool", "/usr/bin/tool"]
        );
    }

    #[test]
    fn a_program_with_a_slash_is_not_looked_up() {
        let files = candidates(OsStr::new(""), b"./run.sh", Some(b"/a"));
        assert_eq!(strings(files), ["./run.sh"]);
    }
}
