//! Whole-process timings for the benchmarks: one run, the median of several, and one
//! `runbook validate`. [`measure`] adds the CPU time of the run: other work on the machine
//! stretches wall time, much less the CPU time a process tree uses.

// Each benchmark uses part of this file.
#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The wall time of one run of `command`, its output discarded; it must succeed.
pub fn time(mut command: Command) -> Duration {
    let start = Instant::now();
    let status = command
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("start benchmark command");
    let elapsed = start.elapsed();
    assert!(status.success(), "benchmark command failed: {command:?}");
    elapsed
}

/// Wall time and CPU time of one run.
#[derive(Clone, Copy, Debug)]
pub struct Sample {
    pub wall: Duration,
    /// User and system time of the process and of every descendant it waited for (a step's
    /// supervisor and command included), as `wait4` reports them.
    pub cpu: Duration,
}

/// One run of `command`, which must succeed: its wall and CPU time.
pub fn measure(command: Command) -> Sample {
    let before = children_cpu();
    let wall = time(command);
    Sample {
        wall,
        cpu: children_cpu().saturating_sub(before),
    }
}

/// The CPU time of every child this process has waited for so far (and of their waited-for
/// descendants).
fn children_cpu() -> Duration {
    // SAFETY: rusage is plain data, filled by getrusage.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage);
        usage
    };
    let of = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec.unsigned_abs())
            + Duration::from_micros(t.tv_usec.unsigned_abs())
    };
    of(usage.ru_utime) + of(usage.ru_stime)
}

/// The median wall time of `runs` runs, after one that warms caches.
pub fn median(runs: usize, mut make: impl FnMut() -> Command) -> Duration {
    let _ = time(make());
    median_of((0..runs).map(|_| time(make())).collect())
}

/// The median wall time and the median CPU time of `runs` runs, after one that warms caches.
pub fn median_measure(runs: usize, mut make: impl FnMut() -> Command) -> (Duration, Duration) {
    let _ = time(make());
    let samples: Vec<Sample> = (0..runs).map(|_| measure(make())).collect();
    (
        median_of(samples.iter().map(|s| s.wall).collect()),
        median_of(samples.iter().map(|s| s.cpu).collect()),
    )
}

/// The median of `samples`.
pub fn median_of(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

/// The wall time of `runbook validate --format json FILE`, which must succeed.
pub fn time_validate(file: &Path) -> Duration {
    let mut command = Command::new(env!("CARGO_BIN_EXE_runbook"));
    command.args(["validate", "--format", "json"]).arg(file);
    time(command)
}
