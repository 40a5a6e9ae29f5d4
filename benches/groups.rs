//! Group benchmark: a runbook that includes one step group 100, 200, 400 and 800 times, flat
//! and through a nested group (a group whose steps include another group), timed as the whole
//! `runbook validate` process. The group file is read once per run, however often it is used;
//! what grows with the uses is the expanded steps, which should cost the same per use.
//!
//! Run with `cargo bench --bench groups`. Prints a table; each figure is the median of 7 runs.

#[path = "support/timing.rs"]
mod timing;

use timing::{median_of, time_validate};

/// Three steps reading a param and a sibling, and an output: what a pre-check group holds.
const GROUP: &str = "group: 1\nname: g\nparams:\n  x: { type: string }\nsteps:\n  - id: a\n    run: { program: echo, args: ['{{ params.x }}'] }\n  - id: b\n    needs: [a]\n    run: { program: echo, args: ['{{ steps.a.stdout }}'] }\n  - id: c\n    needs: [b]\n    assert: steps.b.exit_code == 0\noutputs:\n  o: '{{ steps.b.stdout }}'\n";

/// A group that includes `g.yaml` twice, so each of its uses is two uses of `g`.
const NESTED: &str = "group: 1\nname: n\nparams:\n  x: { type: string }\nsteps:\n  - id: first\n    use: ./g.yaml\n    with: { x: '{{ params.x }}' }\n  - id: second\n    needs: [first]\n    use: ./g.yaml\n    with: { x: \"{{ steps['first'].outputs.o }}\" }\noutputs:\n  o: \"{{ steps['second'].outputs.o }}\"\n";

/// A runbook with `uses` `use:` steps of `group`, each needing the one before.
fn runbook(group: &str, uses: usize) -> String {
    let mut text = String::from("runbook: 1\nname: many\nparams:\n  x: { default: v }\nsteps:\n");
    for i in 0..uses {
        text.push_str(&format!(
            "  - id: u{i}\n    use: ./groups/{group}\n    with: {{ x: '{{{{ params.x }}}}' }}\n"
        ));
        if i > 0 {
            text.push_str(&format!("    needs: [u{}]\n", i - 1));
        }
    }
    text
}

fn main() {
    let dir = std::env::temp_dir().join(format!("runbook-bench-groups-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("groups")).expect("temp dir");
    std::fs::write(dir.join("groups/g.yaml"), GROUP).expect("write group");
    std::fs::write(dir.join("groups/n.yaml"), NESTED).expect("write group");
    println!("| group | uses | steps after expansion | whole process (median) | per use |");
    println!("|---|---:|---:|---:|---:|");
    for (group, steps_per_use) in [("g.yaml", 4), ("n.yaml", 9)] {
        for uses in [100, 200, 400, 800] {
            let file = dir.join(format!("{group}-{uses}.yaml"));
            std::fs::write(&file, runbook(group, uses)).expect("write runbook");
            let m = median_of((0..7).map(|_| time_validate(&file)).collect());
            println!(
                "| {} | {uses} | {} | {:.1} ms | {:.1} µs |",
                if group == "g.yaml" {
                    "flat (3 steps)"
                } else {
                    "nested (2 × 3 steps)"
                },
                uses * steps_per_use,
                m.as_secs_f64() * 1e3,
                m.as_secs_f64() * 1e6 / uses as f64
            );
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}
