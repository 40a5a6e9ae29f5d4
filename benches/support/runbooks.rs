//! Runbooks generated for the validation benchmarks: a chain, a wide fan-out or a random DAG
//! of any number of steps, the same text on every run.

// Each benchmark uses part of this file.
#![allow(dead_code)]

use std::fmt::Write;

#[derive(Clone, Copy)]
pub enum Shape {
    Chain,
    FanOut,
    RandomDag,
}

impl Shape {
    pub fn name(self) -> &'static str {
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
pub fn generate(shape: Shape, steps: usize, templated: bool) -> String {
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
