//! Real OpenSSH servers for the remote-step tests: each `sshd` has its own host key and
//! loopback port, logs to a file of its own (to count the connections it accepted), and lets
//! in the one client key the estate generated (shared with `benches/remote.rs`). The client side is an ssh config file
//! (`RUNBOOK_SSH_CONFIG`) with that key and a known_hosts of the servers whose keys are
//! "accepted". An estate may add lines to the servers' sshd_config (the Lync host of the
//! rehearsal sets the session's environment so). Every server is killed when its estate is
//! dropped.

use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const SSHD: &str = "/usr/sbin/sshd";

/// One running sshd.
pub struct Sshd {
    child: Child,
    pub port: u16,
    pub log: PathBuf,
    host_key_line: String,
}

impl Sshd {
    /// `user@127.0.0.1:PORT`, as a target's `ssh` says it.
    pub fn destination(&self) -> String {
        format!("{}@127.0.0.1:{}", user(), self.port)
    }

    /// How many connections it accepted (its log says so once per login).
    pub fn accepted(&self) -> usize {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .matches("Accepted publickey")
            .count()
    }

    /// The pid of the listening sshd.
    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }
}

/// Servers, the client key and the client's ssh config.
pub struct Estate {
    dir: tempfile::TempDir,
    pub hosts: Vec<Sshd>,
}

/// The user running the tests, from the user database.
fn user() -> String {
    let out = Command::new("id").arg("-un").output().expect("run id -un");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn run(command: &mut Command) {
    let out = command
        .output()
        .unwrap_or_else(|e| panic!("cannot run {command:?}: {e} (is openssh installed?)"));
    assert!(out.status.success(), "{command:?}: {:?}", out);
}

fn keygen(path: &Path) {
    run(Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "runbook-test", "-f"])
        .arg(path));
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("local addr").port()
}

impl Estate {
    /// `n` servers, every host key accepted.
    pub fn new(n: usize) -> Self {
        Self::with_known(n, n)
    }

    /// `n` servers; the host keys of the first `known` are in known_hosts.
    pub fn with_known(n: usize, known: usize) -> Self {
        Self::configured(n, known, "")
    }

    /// `n` servers, every host key accepted, whose sshd_config also has the lines `extra`
    /// (`SetEnv`, `AcceptEnv`, …).
    pub fn with_sshd_config(n: usize, extra: &str) -> Self {
        Self::configured(n, n, extra)
    }

    fn configured(n: usize, known: usize, extra: &str) -> Self {
        assert!(
            Path::new(SSHD).exists(),
            "{SSHD} is missing: install openssh-server (`.ci/run` does)"
        );
        // sshd's privilege separation directory.
        std::fs::create_dir_all("/run/sshd").expect("create /run/sshd");
        let dir = tempfile::tempdir().expect("temp dir");
        let client_key = dir.path().join("client_key");
        keygen(&client_key);
        let hosts: Vec<Sshd> = (0..n)
            .map(|i| start(dir.path(), i, &client_key, extra))
            .collect();
        let estate = Self { dir, hosts };
        let known_hosts: String = estate.hosts[..known]
            .iter()
            .map(|h| format!("[127.0.0.1]:{} {}\n", h.port, h.host_key_line))
            .collect();
        std::fs::write(estate.known_hosts(), known_hosts).expect("write known_hosts");
        std::fs::write(
            estate.config(),
            format!(
                "Host *\n  IdentityFile {}\n  IdentitiesOnly yes\n  UserKnownHostsFile {}\n  GlobalKnownHostsFile /dev/null\n  LogLevel ERROR\n",
                client_key.display(),
                estate.known_hosts().display()
            ),
        )
        .expect("write ssh config");
        estate
    }

    pub fn config(&self) -> PathBuf {
        self.dir.path().join("ssh_config")
    }

    pub fn known_hosts(&self) -> PathBuf {
        self.dir.path().join("known_hosts")
    }

    /// The private key every server lets in.
    pub fn client_key(&self) -> PathBuf {
        self.dir.path().join("client_key")
    }

    /// The `targets:` block naming each host `h1`, `h2`, …
    pub fn targets(&self) -> String {
        let mut out = String::from("targets:\n");
        for (i, h) in self.hosts.iter().enumerate() {
            out.push_str(&format!(
                "  h{}: {{ ssh: \"{}\" }}\n",
                i + 1,
                h.destination()
            ));
        }
        out
    }
}

fn start(dir: &Path, index: usize, client_key: &Path, extra: &str) -> Sshd {
    let host_key = dir.join(format!("host_key_{index}"));
    keygen(&host_key);
    let host_key_line = std::fs::read_to_string(host_key.with_extension("pub"))
        .expect("read host key")
        .split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ");
    let log = dir.join(format!("sshd_{index}.log"));
    let config = dir.join(format!("sshd_config_{index}"));
    for _ in 0..5 {
        let port = free_port();
        std::fs::write(
            &config,
            format!(
                "Port {port}\nListenAddress 127.0.0.1\nHostKey {}\nAuthorizedKeysFile {}.pub\nPermitRootLogin prohibit-password\nPasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\nPidFile none\nLogLevel VERBOSE\nMaxSessions 50\nMaxStartups 50\n{extra}",
                host_key.display(),
                client_key.display()
            ),
        )
        .expect("write sshd config");
        let mut child = Command::new(SSHD)
            .args(["-D", "-e", "-f"])
            .arg(&config)
            .arg("-E")
            .arg(&log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {SSHD}: {e}"));
        let started = Instant::now();
        loop {
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Sshd {
                    child,
                    port,
                    log,
                    host_key_line,
                };
            }
            if let Ok(Some(_)) = child.try_wait() {
                break; // the port was taken meanwhile: another one
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "sshd did not listen: {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    panic!(
        "sshd never started: {}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
}

impl Drop for Sshd {
    fn drop(&mut self) {
        // The listener and what is still in its group; sessions end with their connections.
        let pid = self.child.id() as libc::pid_t;
        // SAFETY: kill has no memory-safety preconditions; the group is the sshd's own.
        unsafe {
            libc::killpg(pid, libc::SIGKILL);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The pids of every descendant of `pid` (from /proc).
pub fn descendants(pid: i32) -> Vec<i32> {
    let mut found = vec![pid];
    let mut i = 0;
    while i < found.len() {
        let parent = found[i];
        if let Ok(entries) = std::fs::read_dir("/proc") {
            for entry in entries.flatten() {
                let Some(child) = entry
                    .file_name()
                    .to_str()
                    .and_then(|n| n.parse::<i32>().ok())
                else {
                    continue;
                };
                let stat =
                    std::fs::read_to_string(format!("/proc/{child}/stat")).unwrap_or_default();
                // The fields after the command name (which may hold spaces) start after `) `.
                let ppid = stat
                    .rsplit_once(") ")
                    .and_then(|(_, rest)| rest.split(' ').nth(1))
                    .and_then(|p| p.parse::<i32>().ok());
                if ppid == Some(parent) && !found.contains(&child) {
                    found.push(child);
                }
            }
        }
        i += 1;
    }
    found.remove(0);
    found
}

/// The argv of a process, word by word (empty once it is gone).
pub fn argv(pid: i32) -> Vec<String> {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .unwrap_or_default()
        .split(|b| *b == 0)
        .filter(|w| !w.is_empty())
        .map(|w| String::from_utf8_lossy(w).into_owned())
        .collect()
}

/// Whether a process is alive (a zombie is not).
pub fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(") ")
                .and_then(|(_, rest)| rest.split(' ').next().map(str::to_owned))
        })
        .is_some_and(|state| state != "Z" && state != "X")
}
