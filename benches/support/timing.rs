//! Whole-process timings for the benchmarks: one run, and the median of several.

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
    let mut samples: Vec<Duration> = (0..runs).map(|_| time(make())).collect();
    samples.sort();
    samples[runs / 2]
}
