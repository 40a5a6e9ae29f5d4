//! Remote-step benchmark: 100 sequential steps that run `true` on one target (a real `sshd`
//! on a loopback port), through the run's one shared connection, against the same runbook with
//! a connection of its own per step (`RUNBOOK_SSH_MULTIPLEX=no`), and against a plain shell
//! loop of 100 `ssh HOST true`. Whole-process wall time, median of several runs.
//!
//! Run with `cargo bench --bench remote` (as root, like the tests: sshd needs `/run/sshd`).

use std::fmt::Write;
use std::path::Path;
use std::process::Command;

#[path = "../tests/integration/sshd.rs"]
#[allow(dead_code)] // the tests use more of it
mod sshd;

const RUNS: usize = 5;

#[path = "support/timing.rs"]
mod timing;
use timing::median;

fn runbook(dir: &Path, config: &Path, multiplex: bool) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_runbook"));
    c.arg("run")
        .arg(dir.join("chain.yaml"))
        .args(["--concurrency", "1"])
        .env("RUNBOOK_STATE_DIR", dir.join("state"))
        .env("RUNBOOK_SSH_CONFIG", config);
    if !multiplex {
        c.env("RUNBOOK_SSH_MULTIPLEX", "no");
    }
    c
}

fn main() {
    let estate = sshd::Estate::new(1);
    let host = &estate.hosts[0];
    let dir = std::env::temp_dir().join(format!("runbook-remote-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let mut chain = format!(
        "runbook: 1\nname: chain\ntargets:\n  h: {{ ssh: \"{}\" }}\nsteps:\n",
        host.destination()
    );
    for i in 0..100 {
        let needs = if i == 0 {
            String::new()
        } else {
            format!("    needs: [s{}]\n", i - 1)
        };
        let _ = write!(
            chain,
            "  - id: s{i}\n{needs}    target: h\n    run: {{ program: \"true\" }}\n"
        );
    }
    std::fs::write(dir.join("chain.yaml"), chain).expect("write");
    let config = estate.config();
    let shared = median(RUNS, || runbook(&dir, &config, true));
    let own = median(RUNS, || runbook(&dir, &config, false));
    let mut plain = || {
        let mut c = Command::new("sh");
        c.arg("-c").arg(format!(
            "for i in $(seq 100); do ssh -F '{}' -o BatchMode=yes -p {} 127.0.0.1 true || exit 1; done",
            config.display(),
            host.port
        ));
        c
    };
    let loop_time = median(RUNS, &mut plain);
    println!("| 100 sequential remote `true` steps, one target | median of {RUNS} | per step |");
    println!("|---|---:|---:|");
    for (name, t) in [
        ("runbook, one shared connection (default)", shared),
        (
            "runbook, a connection per step (`RUNBOOK_SSH_MULTIPLEX=no`)",
            own,
        ),
        ("shell loop of `ssh HOST true` (no runbook)", loop_time),
    ] {
        println!(
            "| {name} | {:.2} s | {:.1} ms |",
            t.as_secs_f64(),
            t.as_secs_f64() * 10.0
        );
    }
    println!(
        "\nconnections accepted by the server over all runs: {}",
        host.accepted()
    );
    let _ = std::fs::remove_dir_all(&dir);
}
