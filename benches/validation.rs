//! Validation at scale, whole process: `runbook validate` on random-DAG runbooks of 1,000,
//! 10,000 and 100,000 steps (median wall time and peak memory, against the file size), the
//! cost of reading one YAML scalar, and a 1 MB file with 2,000 errors reported in the human
//! format against json.
//!
//! Run with `cargo bench --bench validation`. `RUNBOOK_BASELINE=/path/to/runbook` adds the
//! same rows for another build side by side (e.g. the previous release), paired and alternated.
//! `RUNBOOK_BENCH_STEPS=1000,10000` chooses the sizes of the random DAGs (for a baseline too
//! slow at 100,000). Peak memory is the child's `ru_maxrss` from `wait4`.

#[path = "support/runbooks.rs"]
mod runbooks;

use std::fmt::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A runbook whose only weight is `scalars` short strings in a param's default list: its
/// time is nearly all reading YAML.
fn scalars(scalars: usize) -> String {
    let mut out =
        String::from("runbook: 1\nname: bench\nparams:\n  list:\n    type: list\n    default:\n");
    for i in 0..scalars {
        let _ = writeln!(out, "      - item{i}");
    }
    out.push_str("steps:\n  - id: a\n    when: params.list | length > 0\n    wait: 1s\n");
    out
}

/// About `bytes` of one-line steps, every twenty-fifth needing a step that does not exist and every
/// twenty-fifth (another) with an unknown key: two errors per 25 steps.
fn with_errors(bytes: usize) -> (String, usize) {
    let mut out = String::from("runbook: 1\nname: bench\nsteps:\n");
    let mut errors = 0;
    let mut i = 0;
    while out.len() < bytes {
        let extra = match i % 25 {
            3 => {
                errors += 1;
                format!(", needs: [missing{i}]")
            }
            17 => {
                errors += 1;
                ", colour: blue".to_owned()
            }
            _ => String::new(),
        };
        let _ = writeln!(out, "  - {{ id: step_number_{i}, wait: 1s{extra} }}");
        i += 1;
    }
    (out, errors)
}

/// Wall time and peak resident memory of one `validate`; its exit code must be `code`.
// The child is reaped by wait4 (for its rusage), not by `Child::wait`.
#[allow(clippy::zombie_processes)]
fn run(binary: &Path, file: &Path, format: &str, code: i32) -> (Duration, u64) {
    let start = Instant::now();
    let child = Command::new(binary)
        .args(["validate", "--format", format])
        .arg(file)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start runbook");
    let pid = libc::pid_t::try_from(child.id()).expect("pid");
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value for wait4 to fill in.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `pid` is our own child, not yet waited for; both pointers are valid.
    let waited = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let elapsed = start.elapsed();
    assert_eq!(waited, pid, "wait4");
    assert!(libc::WIFEXITED(status), "runbook did not exit");
    assert_eq!(libc::WEXITSTATUS(status), code, "exit code of {file:?}");
    // Linux reports ru_maxrss in KiB.
    (elapsed, u64::try_from(usage.ru_maxrss).unwrap_or(0) * 1024)
}

fn median<T: Ord + Copy>(mut samples: Vec<T>) -> T {
    samples.sort_unstable();
    samples[samples.len() / 2]
}

/// The medians of `runs` paired runs of each binary, alternated, after one warm-up each.
fn measure(
    binaries: &[(String, PathBuf)],
    file: &Path,
    format: &str,
    code: i32,
    runs: usize,
) -> Vec<(Duration, u64)> {
    for (_, binary) in binaries {
        run(binary, file, format, code);
    }
    let mut samples = vec![(Vec::new(), Vec::new()); binaries.len()];
    for _ in 0..runs {
        for ((_, binary), (times, peaks)) in binaries.iter().zip(&mut samples) {
            let (time, peak) = run(binary, file, format, code);
            times.push(time);
            peaks.push(peak);
        }
    }
    samples
        .into_iter()
        .map(|(times, peaks)| (median(times), median(peaks)))
        .collect()
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn main() {
    let dir = std::env::temp_dir().join(format!("runbook-validation-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let mut binaries = vec![(
        "this build".to_owned(),
        PathBuf::from(env!("CARGO_BIN_EXE_runbook")),
    )];
    if let Some(baseline) = std::env::var_os("RUNBOOK_BASELINE") {
        binaries.push(("baseline".to_owned(), PathBuf::from(baseline)));
    }

    println!("| work | build | file | whole process (median) | peak memory | memory / file |");
    println!("|---|---|---:|---:|---:|---:|");
    let sizes: Vec<usize> = std::env::var("RUNBOOK_BENCH_STEPS").map_or_else(
        |_| vec![1_000, 10_000, 100_000],
        |list| {
            list.split(',')
                .map(|n| n.trim().parse().expect("RUNBOOK_BENCH_STEPS: numbers"))
                .collect()
        },
    );
    for steps in sizes {
        // Each step needs up to three earlier ones and runs a program whose arguments read
        // a param and a parent's output.
        let text = runbooks::generate(runbooks::Shape::RandomDag, steps, true);
        let file = dir.join(format!("dag-{steps}.yaml"));
        std::fs::write(&file, &text).expect("write runbook");
        let runs = if steps >= 100_000 { 5 } else { 11 };
        for ((name, _), (time, peak)) in binaries
            .iter()
            .zip(measure(&binaries, &file, "json", 0, runs))
        {
            println!(
                "| validate, random DAG of {steps} steps | {name} | {:.2} MB | {:.1} ms | {:.1} MiB | {:.1}× |",
                text.len() as f64 / 1e6,
                time.as_secs_f64() * 1e3,
                mib(peak),
                peak as f64 / text.len() as f64,
            );
        }
    }

    // The cost of one scalar: the difference between a large and a small file of the same
    // shape, over the difference in scalars.
    let (small, large) = (1_000, 1_000_000);
    let small_file = dir.join("scalars-small.yaml");
    let large_file = dir.join("scalars-large.yaml");
    std::fs::write(&small_file, scalars(small)).expect("write runbook");
    std::fs::write(&large_file, scalars(large)).expect("write runbook");
    let small_times = measure(&binaries, &small_file, "json", 0, 11);
    let large_times = measure(&binaries, &large_file, "json", 0, 5);
    for (((name, _), (s, _)), (l, _)) in binaries.iter().zip(small_times).zip(large_times) {
        let per = (l.as_secs_f64() - s.as_secs_f64()) / (large - small) as f64;
        println!(
            "| validate, one list of {large} scalars | {name} | {:.1} MB | {:.1} ms | | {:.2} µs per scalar |",
            std::fs::metadata(&large_file).map_or(0, |m| m.len()) as f64 / 1e6,
            l.as_secs_f64() * 1e3,
            per * 1e6,
        );
    }

    // 2,000 errors in about 1 MB: the human report against json.
    let (text, errors) = with_errors(1_000_000);
    let file = dir.join("errors.yaml");
    std::fs::write(&file, &text).expect("write runbook");
    let json = measure(&binaries, &file, "json", 1, 5);
    let human = measure(&binaries, &file, "human", 1, 5);
    for (((name, _), (j, _)), (h, _)) in binaries.iter().zip(json).zip(human) {
        println!(
            "| validate, {errors} errors in {:.2} MB: human / json | {name} | | {:.0} ms / {:.0} ms | | {:.2}× |",
            text.len() as f64 / 1e6,
            h.as_secs_f64() * 1e3,
            j.as_secs_f64() * 1e3,
            h.as_secs_f64() / j.as_secs_f64(),
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
