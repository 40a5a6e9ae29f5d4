//! Whole-process timings for the benchmarks: one run, the median of several, and one
//! `runbook validate`.

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

/// The median wall time of `runs` runs, after one that warms caches.
pub fn median(runs: usize, mut make: impl FnMut() -> Command) -> Duration {
    let _ = time(make());
    median_of((0..runs).map(|_| time(make())).collect())
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
