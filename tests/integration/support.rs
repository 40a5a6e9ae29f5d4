//! A small builder to run the `runbook` binary in a scratch directory.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub struct Test {
    dir: tempfile::TempDir,
    args: Vec<String>,
    env: Vec<(String, String)>,
    cwd: Option<PathBuf>,
}

pub struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// One diagnostic as `--format json` reports it.
#[derive(Debug, PartialEq, Eq)]
pub struct Diag {
    pub code: String,
    pub line: u64,
    pub column: u64,
    pub message: String,
}

impl Test {
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("temp dir"),
            args: Vec::new(),
            env: Vec::new(),
            cwd: None,
        }
    }

    /// A test that runs in an existing directory (another test's), which it does not own.
    pub fn in_dir(dir: &Path) -> Self {
        let t = Self::new();
        Self {
            dir: tempfile::TempDir::with_prefix_in("unused", dir).expect("temp dir"),
            ..t
        }
        .chdir(dir)
    }

    fn chdir(mut self, dir: &Path) -> Self {
        self.cwd = Some(dir.to_path_buf());
        self
    }

    /// Writes a file into `dir` (for tests that share another test's directory).
    pub fn file_in(self, dir: &Path, name: &str, content: &str) -> Self {
        std::fs::write(dir.join(name), content).expect("write file");
        self
    }

    /// Writes a file (parents created) into the scratch directory.
    pub fn file(self, name: &str, content: impl AsRef<[u8]>) -> Self {
        let path = self.dir.path().join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("create dir");
        }
        std::fs::write(path, content).expect("write file");
        self
    }

    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_owned(), value.to_owned()));
        self
    }

    /// The command, ready to spawn (for tests that signal the process).
    pub fn command(&self) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_runbook"));
        command
            .args(&self.args)
            .current_dir(self.cwd.as_deref().unwrap_or(self.dir.path()))
            .env_remove("NO_COLOR")
            .env_remove("CLICOLOR_FORCE")
            .env_remove("RUNBOOK_STATE_DIR")
            .envs(self.env.iter().map(|(k, v)| (k, v)));
        command
    }

    /// Reads a file the run wrote in the scratch directory ("" when absent).
    pub fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_default()
    }

    pub fn path(&self) -> &Path {
        self.cwd.as_deref().unwrap_or(self.dir.path())
    }

    pub fn run(&self) -> Output {
        let output = self.command().output().expect("run runbook");
        Output {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// Runs it and says how much CPU time (user and system) the runbook process used: a
    /// measure of its work that other load on the machine does not inflate, as it does wall time.
    pub fn run_cpu_timed(&self) -> (Output, std::time::Duration) {
        let (output, cpu, _) = self.run_measured();
        (output, cpu)
    }

    /// Runs it and says how much CPU time it used (see [`Test::run_cpu_timed`]) and the most
    /// memory it held at once (its peak resident size, in bytes).
    // The child is reaped by wait4 (for its rusage), not by `Child::wait`.
    #[allow(clippy::zombie_processes)]
    pub fn run_measured(&self) -> (Output, std::time::Duration, u64) {
        use std::io::Read;
        let mut child = self
            .command()
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("run runbook");
        let drain = |pipe: Option<Box<dyn Read + Send>>| {
            std::thread::spawn(move || {
                let mut text = Vec::new();
                if let Some(mut pipe) = pipe {
                    let _ = pipe.read_to_end(&mut text);
                }
                String::from_utf8_lossy(&text).into_owned()
            })
        };
        let stdout = drain(
            child
                .stdout
                .take()
                .map(|p| Box::new(p) as Box<dyn Read + Send>),
        );
        let stderr = drain(
            child
                .stderr
                .take()
                .map(|p| Box::new(p) as Box<dyn Read + Send>),
        );
        let mut status = 0;
        // SAFETY: an all-zero rusage is valid; wait4 fills it and the status for our own child,
        // which nothing else waits for.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        let pid = child.id() as libc::pid_t;
        let waited = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        assert_eq!(waited, pid, "wait4: {}", std::io::Error::last_os_error());
        let cpu = |t: libc::timeval| {
            std::time::Duration::from_secs(t.tv_sec as u64)
                + std::time::Duration::from_micros(t.tv_usec as u64)
        };
        let code = if libc::WIFEXITED(status) {
            libc::WEXITSTATUS(status)
        } else {
            -1
        };
        let output = Output {
            code,
            stdout: stdout.join().expect("stdout"),
            stderr: stderr.join().expect("stderr"),
        };
        // Linux gives the peak in KiB.
        let peak = u64::try_from(usage.ru_maxrss).unwrap_or(0) * 1024;
        (output, cpu(usage.ru_utime) + cpu(usage.ru_stime), peak)
    }
}

impl Output {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", self.stdout))
    }

    /// The events of a `--output json` run.
    pub fn events(&self) -> Vec<serde_json::Value> {
        self.stdout
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
            .collect()
    }

    /// The diagnostics of a `--format json` run.
    pub fn diags(&self) -> Vec<Diag> {
        self.json()["diagnostics"]
            .as_array()
            .expect("diagnostics array")
            .iter()
            .map(|d| Diag {
                code: d["code"].as_str().unwrap_or_default().to_owned(),
                line: d["line"].as_u64().unwrap_or(0),
                column: d["column"].as_u64().unwrap_or(0),
                message: d["message"].as_str().unwrap_or_default().to_owned(),
            })
            .collect()
    }
}

/// Validates one runbook text and returns its diagnostics and the exit code.
pub fn validate(yaml: &str) -> (Vec<Diag>, i32) {
    let out = Test::new()
        .file("runbook.yaml", yaml)
        .args(["validate", "--format", "json", "runbook.yaml"])
        .run();
    (out.diags(), out.code)
}

/// Shorthand for an expected diagnostic.
pub fn diag(code: &str, line: u64, column: u64, message: &str) -> Diag {
    Diag {
        code: format!("runbook::{code}"),
        line,
        column,
        message: message.to_owned(),
    }
}

/// The repository root, for tests over shipped files.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The events of one kind in a `--output json` run.
pub fn events_of<'a>(events: &'a [serde_json::Value], kind: &str) -> Vec<&'a serde_json::Value> {
    events.iter().filter(|e| e["event"] == kind).collect()
}

/// Polls `condition` until it holds; panics saying what it waited for after 30 seconds (a
/// loaded 2-core machine running the whole suite can take seconds to start a program).
pub fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Whether the journal of a run kept in `dir` (`dir/.runbook`) records `event` for `step`.
pub fn journal_has(dir: &Path, event: &str, step: &str) -> bool {
    journal_any(dir, |e| e["event"] == event && e["step"] == step)
}

/// Whether the journal of a run kept in `dir` records an event of kind `event`.
pub fn journal_has_event(dir: &Path, event: &str) -> bool {
    journal_any(dir, |e| e["event"] == event)
}

fn journal_any(dir: &Path, found: impl Fn(&serde_json::Value) -> bool) -> bool {
    let Ok(runs) = std::fs::read_dir(dir.join(".runbook/runs")) else {
        return false;
    };
    runs.flatten().any(|run| {
        std::fs::read_to_string(run.path().join("journal.jsonl"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .any(|e| found(&e))
    })
}

/// Starts `runbook` in the background, its output discarded (for tests that kill it).
pub fn spawn(t: &Test) -> std::process::Child {
    t.command()
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn runbook")
}

/// Starts `runbook` in the background; its stdout is read line by line as it comes.
pub fn spawn_lines(t: &Test) -> (std::process::Child, impl Iterator<Item = String> + use<>) {
    use std::io::{BufRead, BufReader};
    let mut child = t
        .command()
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn runbook");
    let lines = BufReader::new(child.stdout.take().expect("stdout"))
        .lines()
        .map_while(Result::ok);
    (child, lines)
}

/// The name of the user running the tests, from the user database (as `runbook` records
/// approvers), never from `$USER`.
pub fn os_user() -> String {
    let out = std::process::Command::new("id")
        .arg("-un")
        .output()
        .expect("run id -un");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Runs `runbook ARGS` on a terminal (`script` provides one) and, once it asks a question
/// (`[y/N] `, `…? `), types `input` at it.
pub fn on_terminal(t: &Test, args: &str, user: &str, input: &[u8]) -> (Option<i32>, String) {
    use std::io::{Read, Write};
    let bin = env!("CARGO_BIN_EXE_runbook");
    let mut child = Command::new("script")
        .args(["-qec", &format!("{bin} {args}"), "/dev/null"])
        .current_dir(t.path())
        .env("USER", user)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run under script");
    let seen = Arc::new(Mutex::new(Vec::new()));
    let mut stdout = child.stdout.take().expect("stdout");
    let reader = {
        let seen = seen.clone();
        std::thread::spawn(move || {
            let mut buf = [0; 4096];
            while let Ok(n @ 1..) = stdout.read(&mut buf) {
                seen.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        })
    };
    let text = || String::from_utf8_lossy(&seen.lock().unwrap()).into_owned();
    wait_until("the program asks a question", || {
        let out = text();
        out.ends_with("] ") || out.ends_with("? ") || child.try_wait().is_ok_and(|s| s.is_some())
    });
    let mut stdin = child.stdin.take().expect("stdin");
    // The program may have ended without asking; what it printed tells.
    let _ = stdin.write_all(input);
    drop(stdin);
    let status = child.wait().expect("wait for script");
    reader.join().expect("stdout reader");
    (status.code(), text())
}

/// Starts `runbook ARGS` in `t`'s directory in the background, its output kept for [`finish`].
pub fn start(t: &Test, args: &[&str]) -> std::process::Child {
    Test::in_dir(t.path())
        .args(args.iter().copied())
        .command()
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn runbook")
}

/// Waits for a run begun with [`start`]: its exit code, stdout and stderr.
pub fn finish(child: std::process::Child) -> (i32, String, String) {
    let out = child.wait_with_output().expect("wait");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Waits until every child but one has exited (racing runs: the losers exit at once).
pub fn all_but_one_exit(children: &mut [std::process::Child]) {
    wait_until("every run but one has exited", || {
        children
            .iter_mut()
            .map(|c| c.try_wait().is_ok_and(|s| s.is_some()))
            .filter(|&ended| ended)
            .count()
            >= children.len() - 1
    });
}

/// `out` is a `resume` or `rollback` that stopped (exit 2) to ask about `step`, in doubt.
#[track_caller]
pub fn asks_about_in_doubt(out: &Output, step: &str) {
    assert_eq!(out.code, 2, "{}{}", out.stdout, out.stderr);
    let said = format!("steps in doubt (started, not known to have finished): {step};");
    assert!(out.stderr.contains(&said), "{}", out.stderr);
}
