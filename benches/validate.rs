//! Validation benchmark: generates runbooks of 1k, 10k and 100k steps in three shapes (a
//! chain, a wide fan-out, a random DAG with about three needs per step) and times the whole
//! `runbook validate` process on each, release build.
//!
//! Run with `cargo bench --bench validate`. Prints a table; each figure is the median of
//! several runs. Every generated step reads a parent's output in a template, so the
//! template, data-flow and graph checks are all exercised.

#[path = "support/timing.rs"]
mod timing;

use std::fmt::Write;

use timing::{median_of, time_validate};

#[derive(Clone, Copy)]
enum Shape {
    Chain,
    FanOut,
    RandomDag,
}

impl Shape {
    fn name(self) -> &'static str {
        match self {
            Shape::Chain => "chain",
            Shape::FanOut => "fan-out",
            Shape::RandomDag => "random DAG (3 needs)",
        }
    }
}

/// A small deterministic generator, so every run validates the same files.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, bound: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((self.0 >> 33) as usize) % bound.max(1)
    }
}

/// `templated`: each step runs a program whose arguments read a param and a parent's output;
/// otherwise each step is a bare `wait` on one line (the size of a `just` recipe).
fn generate(shape: Shape, steps: usize, templated: bool) -> String {
    let mut rng = Lcg(42);
    let mut out = String::with_capacity(steps * 120);
    out.push_str("runbook: 1\nname: bench\n");
    if templated {
        out.push_str("params:\n  target: { default: x }\n");
    }
    out.push_str("steps:\n");
    for i in 0..steps {
        let needs: Vec<usize> = match shape {
            _ if i == 0 => vec![],
            Shape::Chain => vec![i - 1],
            Shape::FanOut => vec![0],
            Shape::RandomDag => {
                let mut needs = Vec::with_capacity(3);
                while needs.len() < 3.min(i) {
                    let p = rng.next(i);
                    if !needs.contains(&p) {
                        needs.push(p);
                    }
                }
                needs
            }
        };
        let list: Vec<String> = needs.iter().map(|n| format!("s{n}")).collect();
        if !templated {
            let _ = writeln!(
                out,
                "  - {{ id: s{i}, needs: [{}], wait: 1s }}",
                list.join(", ")
            );
            continue;
        }
        let _ = writeln!(out, "  - id: s{i}");
        if !needs.is_empty() {
            let _ = writeln!(out, "    needs: [{}]", list.join(", "));
        }
        match needs.first() {
            Some(parent) => {
                let _ = writeln!(
                    out,
                    "    run: {{ program: echo, args: [\"{{{{ params.target }}}}\", \"{{{{ steps.s{parent}.stdout }}}}\"] }}"
                );
            }
            None => {
                let _ = writeln!(
                    out,
                    "    run: {{ program: echo, args: [\"{{{{ params.target }}}}\"] }}"
                );
            }
        }
    }
    out
}

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
