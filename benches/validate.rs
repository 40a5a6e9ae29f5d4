//! Validation benchmark: generates runbooks of 1k, 10k and 100k steps in three shapes (a
//! chain, a wide fan-out, a random DAG with about three needs per step) and times the whole
//! `runbook validate` process on each, release build.
//!
//! Run with `cargo bench --bench validate`. Prints a table; each figure is the median of
//! several runs. Every generated step reads a parent's output in a template, so the
//! template, data-flow and graph checks are all exercised.

#[path = "support/runbooks.rs"]
mod runbooks;
#[path = "support/timing.rs"]
mod timing;

use runbooks::{Shape, generate};
use timing::{median_of, time_validate};

fn main() {
    let dir = std::env::temp_dir().join(format!("runbook-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    println!("| shape | steps | file | whole process (median) | per step |");
    println!("|---|---:|---:|---:|---:|");
    for (shape, templated) in [
        (Shape::Chain, false),
        (Shape::Chain, true),
        (Shape::FanOut, true),
        (Shape::RandomDag, false),
        (Shape::RandomDag, true),
    ] {
        let mut per_step = Vec::new();
        let label = format!(
            "{}, {}",
            shape.name(),
            if templated {
                "templated steps"
            } else {
                "one-line steps"
            }
        );
        for steps in [1_000, 10_000, 100_000] {
            let file = dir.join(format!(
                "{}-{templated}-{steps}.yaml",
                shape.name().replace(' ', "_")
            ));
            let text = generate(shape, steps, templated);
            std::fs::write(&file, &text).expect("write runbook");
            let runs = if steps >= 100_000 { 3 } else { 11 };
            let _ = time_validate(&file); // warm the page cache
            let m = median_of((0..runs).map(|_| time_validate(&file)).collect());
            let us = m.as_secs_f64() * 1e6 / steps as f64;
            per_step.push(us);
            println!(
                "| {label} | {steps} | {:.2} MB | {:.1} ms | {us:.2} µs |",
                text.len() as f64 / 1e6,
                m.as_secs_f64() * 1e3,
            );
        }
        println!(
            "| {label} | growth 1k→100k | | | {:.2}× per step |",
            per_step[2] / per_step[0]
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
