//! Execution benchmark at scale: a `for_each` of 1,000 `true` items against 1,000 separate
//! `true` steps, paired and alternated, and the per-step cost of 100, 1,000 and 10,000
//! sequential steps and of a 10,000-item loop (a step's cost must not grow with the steps
//! before it). The comparison with `just` and go-task is `benches/compare.rs`.
//!
//! Run with `cargo bench --bench run`. Whole-process wall time, median of several runs; the
//! per-step rows add the CPU time of the whole process tree (runbook, supervisors, commands).

use std::fmt::Write;
use std::path::Path;
use std::process::Command;

#[path = "support/timing.rs"]
mod timing;
use std::time::Duration;
use timing::{median_measure, time};

fn runbook(dir: &Path, file: &str, extra: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_runbook"));
    // The journal is on, as in every run: each event is fsynced before the next step.
    c.arg("run")
        .arg(dir.join(file))
        .args(extra)
        .env("RUNBOOK_STATE_DIR", dir.join("state"));
    c
}

fn main() {
    let dir = std::env::temp_dir().join(format!("runbook-run-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    scale(&dir);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A chain of `n` `true` steps.
fn chain_of(n: usize) -> String {
    let mut yaml = String::from("runbook: 1\nname: chain\nsteps:\n");
    for i in 0..n {
        let needs = match i {
            0 => String::new(),
            _ => format!("    needs: [s{}]\n", i - 1),
        };
        let _ = write!(
            yaml,
            "  - id: s{i}\n{needs}    run: {{ program: \"true\" }}\n"
        );
    }
    yaml
}

/// One step running `true` for each of `n` items, one at a time.
fn loop_of(n: usize) -> String {
    let items: Vec<String> = (0..n).map(|i| i.to_string()).collect();
    format!(
        "runbook: 1\nname: loop\nsteps:\n  - id: s\n    for_each: [{}]\n    run: {{ program: \"true\" }}\n",
        items.join(", ")
    )
}

/// Paired, alternated runs of two commands: the median of each.
fn paired(runs: usize, a: &dyn Fn() -> Command, b: &dyn Fn() -> Command) -> (Duration, Duration) {
    let _ = (time(a()), time(b())); // warm caches
    let (mut xs, mut ys) = (Vec::new(), Vec::new());
    for run in 0..runs {
        // Alternated, so that a burst of load on the machine falls on both sides.
        if run % 2 == 0 {
            xs.push(time(a()));
            ys.push(time(b()));
        } else {
            ys.push(time(b()));
            xs.push(time(a()));
        }
    }
    xs.sort();
    ys.sort();
    (xs[runs / 2], ys[runs / 2])
}

/// Loop items against separate steps, and the per-step cost as the run grows.
fn scale(dir: &Path) {
    for n in [100, 1_000, 10_000] {
        std::fs::write(dir.join(format!("chain-{n}.yaml")), chain_of(n)).expect("write");
        std::fs::write(dir.join(format!("loop-{n}.yaml")), loop_of(n)).expect("write");
    }
    let run = |file: String| {
        let dir = dir.to_owned();
        move || runbook(&dir, &file, &["--concurrency", "1"])
    };
    println!();
    println!("| work | `for_each` items | separate steps | ratio (items / steps) |");
    println!("|---|---:|---:|---:|");
    let (items, steps) = paired(
        7,
        &run("loop-1000.yaml".to_owned()),
        &run("chain-1000.yaml".to_owned()),
    );
    println!(
        "| 1,000 sequential `true` | {:.3} s ({:.3} ms each) | {:.3} s ({:.3} ms each) | {:.2}× |",
        items.as_secs_f64(),
        items.as_secs_f64(),
        steps.as_secs_f64(),
        steps.as_secs_f64(),
        items.as_secs_f64() / steps.as_secs_f64()
    );
    println!();
    println!("| work | wall time (median) | per step | CPU time (median) | per step |");
    println!("|---|---:|---:|---:|---:|");
    for (name, file, n, runs) in [
        ("100 sequential steps", "chain-100.yaml", 100, 9),
        ("1,000 sequential steps", "chain-1000.yaml", 1_000, 3),
        ("10,000 sequential steps", "chain-10000.yaml", 10_000, 1),
        ("`for_each` of 10,000 items", "loop-10000.yaml", 10_000, 1),
    ] {
        let (wall, cpu) = median_measure(runs, run(file.to_owned()));
        let per = |d: Duration| d.as_secs_f64() * 1e3 / n as f64;
        println!(
            "| {name} | {:.3} s | {:.3} ms | {:.3} s | {:.3} ms |",
            wall.as_secs_f64(),
            per(wall),
            cpu.as_secs_f64(),
            per(cpu)
        );
    }
}
