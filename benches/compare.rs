//! The same work with `runbook`, `just` (PyPI package `rust-just`) and go-task (PyPI package
//! `go-task-bin`), side by side in one run:
//!
//! - 100 sequential steps that exec `/usr/bin/true` (a chain of `needs`; in just a chain of
//!   recipes, in go-task a chain of `deps`), runbook's journal on disk;
//! - the same through `sh -c true` (runbook `shell: sh`; just's own `sh -c`; go-task runs the
//!   command `sh -c true`, since its built-in shell would not start a process);
//! - 64 independent `sleep 0.5` steps at once (just `[parallel]`, go-task `deps`);
//! - checking a 1,000-step chain without running it (`runbook validate`, `just --summary`,
//!   `task --list-all`);
//! - a dry run of the 100-step chain (`runbook run --dry-run`, `just --dry-run`, `task --dry`);
//! - 10,000 sequential steps that exec `/usr/bin/true`: a chain of `needs` in runbook; in just
//!   and go-task one recipe or task that runs 10,000 others in turn (a 10,000-deep chain of
//!   recipes overflows just's stack), then each tool's cost per step against its first row.
//!
//! The floor, next to them, for the rows that start processes: what any tool must at least do
//! for that work, done by this benchmark's own binary (re-executed): per step one journal line
//! synced to disk with `fdatasync` (steps that start together share it), `posix_spawn` of the
//! command in a process group of its own with its output and error on pipes, read to their end,
//! and `waitpid`.
//!
//! Whole processes: wall time, and CPU time (user and system of the process and every
//! descendant, from `wait4`), since other work on the machine stretches wall time. The tools
//! are paired and alternated: each round runs every tool once, in an order that rotates from
//! round to round, so a burst of load on the machine falls on all of them. Each figure is a
//! median; each ratio is runbook's median over the other's. A tool missing from PATH is named
//! in its cells and not measured. Run with `cargo bench --bench compare`.

use std::fmt::Write;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

#[path = "support/timing.rs"]
mod timing;
use timing::{Sample, measure, median_of};

/// The tools compared, in table order.
#[derive(Clone, Copy, PartialEq)]
enum Tool {
    Runbook,
    Just,
    Task,
    Floor,
}

impl Tool {
    const ALL: [Tool; 4] = [Tool::Runbook, Tool::Just, Tool::Task, Tool::Floor];

    fn program(self) -> std::ffi::OsString {
        match self {
            Tool::Runbook => env!("CARGO_BIN_EXE_runbook").into(),
            Tool::Just => "just".into(),
            Tool::Task => "task".into(),
            Tool::Floor => std::env::current_exe()
                .expect("the benchmark's own path")
                .into(),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Tool::Runbook => "runbook",
            Tool::Just => "just",
            Tool::Task => "go-task",
            Tool::Floor => "floor",
        }
    }

    /// The first line of `--version`, or `None` when the tool does not start.
    fn version(self) -> Option<String> {
        if self == Tool::Floor {
            return Some("this benchmark's own loop (see above)".to_owned());
        }
        let out = Command::new(self.program())
            .arg("--version")
            .stderr(Stdio::null())
            .output()
            .ok()
            .filter(|o| o.status.success())?;
        let text = String::from_utf8_lossy(&out.stdout);
        Some(text.lines().next().unwrap_or("").trim().to_owned())
    }
}

/// One row: what each tool runs for it.
struct Row {
    work: &'static str,
    rounds: usize,
    /// A round that warms caches first (not for the rows whose one run takes minutes).
    warm: bool,
    runbook: Vec<String>,
    just: Vec<String>,
    task: Vec<String>,
    /// Empty: no floor for this row.
    floor: Vec<String>,
}

impl Row {
    fn args(&self, tool: Tool) -> &[String] {
        match tool {
            Tool::Runbook => &self.runbook,
            Tool::Just => &self.just,
            Tool::Task => &self.task,
            Tool::Floor => &self.floor,
        }
    }
}

impl Row {
    /// The row for the file set `set` (see `write_set`): runbook gets `runbook`, then its
    /// file; just and go-task get their file, then `args`.
    fn new(
        dir: &Path,
        work: &'static str,
        rounds: usize,
        set: &str,
        runbook: &[&str],
        args: &[&str],
    ) -> Row {
        let file = |ext: &str| dir.join(format!("{set}.{ext}")).display().to_string();
        let owned = |args: &[&str]| args.iter().map(|a| (*a).to_owned()).collect::<Vec<_>>();
        let with = |flag: &str, ext: &str| [vec![flag.to_owned(), file(ext)], owned(args)].concat();
        Row {
            work,
            rounds,
            warm: true,
            runbook: [owned(runbook), vec![file("yaml")]].concat(),
            just: with("--justfile", "justfile"),
            task: with("--taskfile", "Taskfile.yml"),
            floor: Vec::new(),
        }
    }

    /// The floor for this row: `steps` commands `argv`, one after the other or all at once.
    fn floor(mut self, steps: usize, together: bool, argv: &[&str]) -> Row {
        self.floor = [FLOOR.to_owned(), steps.to_string(), together.to_string()]
            .into_iter()
            .chain(argv.iter().map(|a| (*a).to_owned()))
            .collect();
        self
    }

    /// No warming round.
    fn cold(self) -> Row {
        Row {
            warm: false,
            ..self
        }
    }

    /// go-task's arguments after its file, where they differ from just's.
    fn task_args(mut self, args: &[&str]) -> Row {
        self.task.truncate(2);
        self.task.extend(args.iter().map(|a| (*a).to_owned()));
        self
    }
}

/// A chain of `n` steps: runbook's `run:`, just's recipe line and go-task's command.
fn chain(n: usize, runbook_run: &str, line: &str, task_cmd: &str) -> (String, String, String) {
    let mut rb = String::from("runbook: 1\nname: chain\nsteps:\n");
    let mut just = String::from("set shell := [\"sh\", \"-c\"]\n\n");
    let mut task = String::from("version: '3'\nsilent: true\ntasks:\n");
    for i in 0..n {
        let parent = i.checked_sub(1);
        let needs = parent.map_or(String::new(), |p| format!(", needs: [s{p}]"));
        let _ = writeln!(rb, "  - {{ id: s{i}{needs}, run: {runbook_run} }}");
        let deps = parent.map_or(String::new(), |p| format!(" s{p}"));
        let _ = write!(just, "s{i}:{deps}\n    @{line}\n\n");
        let deps = parent.map_or(String::new(), |p| format!("    deps: [s{p}]\n"));
        let _ = write!(task, "  s{i}:\n{deps}    cmds: [\"{task_cmd}\"]\n");
    }
    (rb, just, task)
}

/// A chain of `n` one-line steps for validation: the smallest step each format has.
fn validate_chain(n: usize) -> (String, String, String) {
    let mut rb = String::from("runbook: 1\nname: chain\nsteps:\n");
    let mut just = String::new();
    let mut task = String::from("version: '3'\ntasks:\n");
    for i in 0..n {
        let parent = i.checked_sub(1);
        let needs = parent.map_or(String::new(), |p| format!("s{p}"));
        let _ = writeln!(rb, "  - {{ id: s{i}, needs: [{needs}], wait: 1s }}");
        let _ = write!(just, "# step {i}\ns{i}: {needs}\n    @true\n\n");
        let _ = writeln!(
            task,
            "  s{i}: {{ desc: step {i}, deps: [{needs}], cmds: [\"true\"] }}"
        );
    }
    (rb, just, task)
}

/// `n` steps that exec `/usr/bin/true` one after the other: a chain of `needs` in runbook;
/// in just and go-task, the recipe or task `all` runs the `n` others in turn.
fn sequence(n: usize) -> (String, String, String) {
    let (rb, _, _) = chain(n, "{ program: /usr/bin/true }", "", "");
    let mut just = String::from("set shell := [\"sh\", \"-c\"]\n\n");
    let mut task = String::from("version: '3'\nsilent: true\ntasks:\n");
    let ids: Vec<String> = (0..n).map(|i| format!("s{i}")).collect();
    for id in &ids {
        let _ = write!(just, "{id}:\n    @/usr/bin/true\n\n");
        let _ = writeln!(task, "  {id}: {{ cmds: [\"/usr/bin/true\"] }}");
    }
    let _ = writeln!(just, "all: {}", ids.join(" "));
    let _ = writeln!(task, "  all:\n    cmds:");
    for id in &ids {
        let _ = writeln!(task, "      - task: {id}");
    }
    (rb, just, task)
}

/// 64 independent `sleep 0.5` steps, in the three formats.
fn wide() -> (String, String, String) {
    let mut rb = String::from("runbook: 1\nname: wide\nsteps:\n");
    let mut just = String::from("set shell := [\"sh\", \"-c\"]\n\n");
    let mut task = String::from("version: '3'\nsilent: true\ntasks:\n");
    let ids: Vec<String> = (0..64).map(|i| format!("w{i}")).collect();
    for id in &ids {
        let _ = writeln!(
            rb,
            "  - {{ id: {id}, run: {{ program: sleep, args: [\"0.5\"] }} }}"
        );
        let _ = write!(just, "{id}:\n    @sleep 0.5\n\n");
        let _ = writeln!(task, "  {id}: {{ cmds: [\"sleep 0.5\"] }}");
    }
    let _ = write!(just, "[parallel]\nwide: {}\n", ids.join(" "));
    let _ = writeln!(task, "  wide: {{ deps: [{}] }}", ids.join(", "));
    (rb, just, task)
}

fn write_set(dir: &Path, name: &str, (rb, just, task): (String, String, String)) {
    for (ext, text) in [("yaml", rb), ("justfile", just), ("Taskfile.yml", task)] {
        std::fs::write(dir.join(format!("{name}.{ext}")), text).expect("write bench file");
    }
}

/// The argument that makes this binary run the floor instead of the benchmark.
const FLOOR: &str = "__floor";

/// The floor: `steps` runs of `argv`, one after the other or all at once, each preceded by a
/// journal line synced to disk (one sync for those that start together), started by
/// `posix_spawn` (the standard library uses it when nothing runs between fork and exec) in a
/// process group of its own, output and error on pipes read to their end.
fn floor(args: &[String]) {
    use std::io::{Read, Write};
    let steps: usize = args[0].parse().expect("steps");
    let together = args[1] == "true";
    let argv = &args[2..];
    let mut journal = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open("floor-journal")
        .expect("journal");
    let start = |journal: &mut std::fs::File| {
        let mut child = Command::new(&argv[0])
            .args(&argv[1..])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()
            .expect("spawn");
        journal
            .write_all(b"{\"event\":\"process_started\"}\n")
            .expect("write");
        let (out, err) = (child.stdout.take(), child.stderr.take());
        (child, out, err)
    };
    let finish = |journal: &mut std::fs::File, (mut child, out, err): Started| {
        let mut sink = Vec::new();
        // Both pipes read to their end: output first, then error (each command here prints
        // nothing, so neither can fill while the other is read).
        for mut pipe in [
            out.map(|o| Box::new(o) as Box<dyn Read>),
            err.map(|e| Box::new(e) as _),
        ]
        .into_iter()
        .flatten()
        {
            pipe.read_to_end(&mut sink).expect("read");
        }
        assert!(child.wait().expect("wait").success());
        journal
            .write_all(b"{\"event\":\"step_finished\"}\n")
            .expect("write");
    };
    type Started = (
        std::process::Child,
        Option<std::process::ChildStdout>,
        Option<std::process::ChildStderr>,
    );
    if together {
        for _ in 0..steps {
            journal
                .write_all(b"{\"event\":\"step_started\"}\n")
                .expect("write");
        }
        journal.sync_data().expect("fdatasync");
        let started: Vec<Started> = (0..steps).map(|_| start(&mut journal)).collect();
        for s in started {
            finish(&mut journal, s);
        }
    } else {
        for _ in 0..steps {
            journal
                .write_all(b"{\"event\":\"step_started\"}\n")
                .expect("write");
            journal.sync_data().expect("fdatasync");
            let s = start(&mut journal);
            finish(&mut journal, s);
        }
    }
    journal.sync_data().expect("fdatasync");
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).is_some_and(|a| a == FLOOR) {
        floor(&args[2..]);
        return;
    }
    // Under the system temp dir, on this machine's disk: the journal's syncs are real.
    let dir: PathBuf =
        std::env::temp_dir().join(format!("runbook-compare-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    write_set(
        &dir,
        "exec",
        chain(
            100,
            "{ program: /usr/bin/true }",
            "/usr/bin/true",
            "/usr/bin/true",
        ),
    );
    write_set(
        &dir,
        "shell",
        chain(100, "{ shell: sh, script: \"true\" }", "true", "sh -c true"),
    );
    write_set(&dir, "wide", wide());
    write_set(&dir, "check", validate_chain(1_000));
    write_set(&dir, "long", sequence(10_000));

    let run = ["run", "--concurrency", "1"];
    let rows = [
        Row::new(
            &dir,
            "100 sequential steps, each execs `/usr/bin/true`, journal on",
            11,
            "exec",
            &run,
            &["s99"],
        )
        .floor(100, false, &["/usr/bin/true"]),
        Row::new(
            &dir,
            "the same through `sh -c true`",
            11,
            "shell",
            &run,
            &["s99"],
        )
        .floor(100, false, &["sh", "-c", "true"]),
        Row::new(
            &dir,
            "64 parallel `sleep 0.5`",
            5,
            "wide",
            &["run", "--concurrency", "64"],
            &["wide"],
        )
        .floor(64, true, &["sleep", "0.5"]),
        Row::new(
            &dir,
            "validate a 1,000-step chain (`just --summary`, `task --list-all`)",
            11,
            "check",
            &["validate"],
            &["--summary"],
        )
        .task_args(&["--list-all"]),
        Row::new(
            &dir,
            "dry run of 100 steps (`just --dry-run`, `task --dry`)",
            11,
            "exec",
            &["run", "--dry-run"],
            &["--dry-run", "s99"],
        )
        .task_args(&["--dry", "s99"]),
        Row::new(
            &dir,
            "10,000 sequential steps, each execs `/usr/bin/true`, journal on",
            3,
            "long",
            &run,
            &["all"],
        )
        .floor(10_000, false, &["/usr/bin/true"])
        .cold(),
    ];

    // `cargo bench --bench compare -- 1,3`: only those rows (numbered from 1).
    let only: Option<Vec<usize>> = args
        .iter()
        .skip(1)
        .find(|a| a.chars().all(|c| c.is_ascii_digit() || c == ','))
        .map(|a| a.split(',').filter_map(|n| n.parse().ok()).collect());
    let rows: Vec<Row> = rows
        .into_iter()
        .enumerate()
        .filter(|(i, _)| only.as_ref().is_none_or(|o| o.contains(&(i + 1))))
        .map(|(_, r)| r)
        .collect();
    let versions: Vec<Option<String>> = Tool::ALL.iter().map(|t| t.version()).collect();
    println!("Measured:");
    for (tool, version) in Tool::ALL.iter().zip(&versions) {
        match version {
            Some(v) => println!("- {}: {v}", tool.name()),
            None => println!("- {}: not on PATH, not measured", tool.name()),
        }
    }
    let present: Vec<Tool> = Tool::ALL
        .iter()
        .zip(&versions)
        .filter(|(_, v)| v.is_some())
        .map(|(t, _)| *t)
        .collect();
    // Per row, each tool's median wall and CPU time (`None`: not measured).
    let results: Vec<Vec<Option<(Duration, Duration)>>> = rows
        .iter()
        .map(|row| {
            eprintln!("measuring: {}", row.work);
            let tools: Vec<Tool> = present
                .iter()
                .copied()
                .filter(|t| !row.args(*t).is_empty())
                .collect();
            let medians = paired(row, &dir, &tools);
            Tool::ALL
                .iter()
                .map(|tool| {
                    let i = tools.iter().position(|t| t == tool)?;
                    Some(medians[i])
                })
                .collect()
        })
        .collect();
    for (title, pick) in [
        (
            "Wall time",
            (|m: (Duration, Duration)| m.0) as fn(_) -> Duration,
        ),
        ("CPU time (user + system, whole process tree)", |m| m.1),
    ] {
        println!();
        println!("{title}:");
        println!();
        println!(
            "| work | runbook | just | go-task | floor | runbook / just | runbook / go-task | runbook / floor |"
        );
        println!("|---|---:|---:|---:|---:|---:|---:|---:|");
        for (row, medians) in rows.iter().zip(&results) {
            let of = |tool: Tool| medians[tool as usize].map(|m| pick(m).as_secs_f64());
            let ours = of(Tool::Runbook).unwrap_or(f64::NAN);
            let cell = |tool: Tool| match of(tool) {
                Some(s) => format!("{s:.3} s"),
                None if tool == Tool::Floor => "—".to_owned(),
                None => format!("({} not on PATH)", tool.name()),
            };
            let ratio =
                |tool: Tool| of(tool).map_or(String::new(), |s| format!("{:.2}×", ours / s));
            println!(
                "| {} | {} | {} | {} | {} | {} | {} | {} |",
                row.work,
                cell(Tool::Runbook),
                cell(Tool::Just),
                cell(Tool::Task),
                cell(Tool::Floor),
                ratio(Tool::Just),
                ratio(Tool::Task),
                ratio(Tool::Floor),
            );
        }
    }
    // The first row has 100 steps, the last 10,000.
    if rows.len() != 6 {
        let _ = std::fs::remove_dir_all(&dir);
        return;
    }
    let (first, last) = (&results[0], &results[results.len() - 1]);
    println!();
    println!("Cost per step, 100 against 10,000 sequential steps (wall time; CPU time):");
    println!();
    for tool in &present {
        let i = *tool as usize;
        let (Some(short), Some(long)) = (first[i], last[i]) else {
            continue;
        };
        let per = |d: Duration, n: f64| d.as_secs_f64() * 1e3 / n;
        println!(
            "- {}: {:.3} ms and {:.3} ms ({:.2}×); {:.3} ms and {:.3} ms ({:.2}×)",
            tool.name(),
            per(short.0, 100.0),
            per(long.0, 10_000.0),
            per(long.0, 10_000.0) / per(short.0, 100.0),
            per(short.1, 100.0),
            per(long.1, 10_000.0),
            per(long.1, 10_000.0) / per(short.1, 100.0),
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// The median wall time and CPU time of each of `tools` on `row`, after one warming round
/// (unless the row is cold), in `rounds` rounds whose order rotates.
fn paired(row: &Row, dir: &Path, tools: &[Tool]) -> Vec<(Duration, Duration)> {
    let command = |tool: Tool| {
        let mut c = Command::new(tool.program());
        c.args(row.args(tool))
            .current_dir(dir)
            .env("RUNBOOK_STATE_DIR", dir.join("state"));
        c
    };
    if row.warm {
        for tool in tools {
            let _ = measure(command(*tool));
        }
    }
    let mut samples: Vec<Vec<Sample>> = vec![Vec::new(); tools.len()];
    for round in 0..row.rounds {
        for k in 0..tools.len() {
            let i = (round + k) % tools.len();
            samples[i].push(measure(command(tools[i])));
        }
    }
    samples
        .into_iter()
        .map(|s| {
            let wall = median_of(s.iter().map(|x| x.wall).collect());
            let cpu = median_of(s.iter().map(|x| x.cpu).collect());
            (wall, cpu)
        })
        .collect()
}
