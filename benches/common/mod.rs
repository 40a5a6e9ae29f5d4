//! What the benchmarks share: timing one `runbook validate` process, and the median.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// The wall time of `runbook validate --format json FILE`, which must succeed.
pub fn time_validate(file: &Path) -> Duration {
    let start = Instant::now();
    let status = Command::new(env!("CARGO_BIN_EXE_runbook"))
        .args(["validate", "--format", "json"])
        .arg(file)
        .stdout(std::process::Stdio::null())
        .status()
        .expect("run runbook");
    let elapsed = start.elapsed();
    assert!(status.success(), "{} does not validate", file.display());
    elapsed
}

pub fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}
