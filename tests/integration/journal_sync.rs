//! When the journal reaches the disk, seen from outside: the run is traced with `strace`, and
//! its `write`s of `step_started`, its `fdatasync`s and the `execve` of each step's command
//! are read back in the order they happened. A step's `step_started` is synced before its
//! process starts; steps that start together share one sync. A rollback's
//! `rollback_step_started` is synced before its process starts too, one by one, as
//! rollbacks run one at a time.

use std::path::Path;
use std::process::Command;

use crate::support::Test;

/// What the trace shows, in order.
#[derive(Debug, PartialEq)]
enum Seen {
    /// `step_started` of this step written to the journal.
    Written(String),
    /// `rollback_step_started` of this step written to the journal.
    RollbackWritten(String),
    /// An `fdatasync` returned.
    Synced,
    /// This step's command started (its command is `echo STEP`; other commands are not
    /// followed).
    Spawned(String),
}

/// Runs `runbook run FILE ARGS…` under `strace -f`; what it saw, in order. The run must
/// succeed.
fn traced(t: &Test, file: &str, args: &[&str]) -> Vec<Seen> {
    traced_exiting(t, file, args, 0)
}

/// [`traced`], for a run that exits with `code`.
fn traced_exiting(t: &Test, file: &str, args: &[&str], code: i32) -> Vec<Seen> {
    let trace = t.path().join("trace");
    let out = Command::new("strace")
        .args([
            "-f",
            "-qq",
            "-s",
            "512",
            "-e",
            "trace=write,fdatasync,execve",
            "-o",
        ])
        .arg(&trace)
        .arg(env!("CARGO_BIN_EXE_runbook"))
        .args(["run", file])
        .args(args)
        .current_dir(t.path())
        .env_remove("RUNBOOK_STATE_DIR")
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot start strace (the CI script installs it): {e}");
        });
    assert_eq!(
        out.status.code(),
        Some(code),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    parse(&trace)
}

fn parse(trace: &Path) -> Vec<Seen> {
    let text = std::fs::read_to_string(trace).expect("read the trace");
    let mut seen = Vec::new();
    for line in text.lines() {
        // `strace` escapes the quotes of the journal's JSON.
        if line.contains("write(") && line.contains(r#"\"event\":\"step_started\""#) {
            let step = between(line, r#"\"step\":\""#, r#"\""#);
            seen.push(Seen::Written(step.to_owned()));
        } else if line.contains("write(") && line.contains(r#"\"event\":\"rollback_step_started\""#)
        {
            let step = between(line, r#"\"step\":\""#, r#"\""#);
            seen.push(Seen::RollbackWritten(step.to_owned()));
        } else if (line.contains(" fdatasync(") && !line.contains("<unfinished"))
            || line.contains("<... fdatasync resumed>")
        {
            seen.push(Seen::Synced);
        } else if line.contains("execve(") && line.contains(r#"["echo", ""#) {
            let step = between(line, r#"["echo", ""#, r#"""#);
            seen.push(Seen::Spawned(step.to_owned()));
        }
    }
    seen
}

fn between<'a>(line: &'a str, start: &str, end: &str) -> &'a str {
    let from = line
        .find(start)
        .unwrap_or_else(|| panic!("no `{start}` in {line}"))
        + start.len();
    let len = line[from..].find(end).expect("end of the field");
    &line[from..from + len]
}

/// Checks that every step's `step_started` was synced before its command started, and
/// returns how many `step_started` events each sync that covered any made durable.
fn synced_before_spawned(seen: &[Seen], steps: &[String]) -> Vec<usize> {
    for step in steps {
        let written = seen
            .iter()
            .position(|s| *s == Seen::Written(step.clone()))
            .unwrap_or_else(|| panic!("no step_started written for {step}: {seen:?}"));
        let spawned = seen
            .iter()
            .position(|s| *s == Seen::Spawned(step.clone()))
            .unwrap_or_else(|| panic!("{step} never started: {seen:?}"));
        assert!(
            seen[written..spawned].contains(&Seen::Synced),
            "{step} started before its step_started was synced: {seen:?}"
        );
    }
    let mut groups = Vec::new();
    let mut pending = 0;
    for s in seen {
        match s {
            Seen::Written(_) => pending += 1,
            Seen::Synced if pending > 0 => {
                groups.push(pending);
                pending = 0;
            }
            _ => {}
        }
    }
    groups
}

/// `n` steps that each run `echo ID`; a chain of `needs` when `chained`.
fn steps(n: usize, chained: bool) -> (String, Vec<String>) {
    let ids: Vec<String> = (0..n).map(|i| format!("s{i}")).collect();
    let mut yaml = String::from("runbook: 1\nname: syncs\nsteps:\n");
    for (i, id) in ids.iter().enumerate() {
        let needs = match i.checked_sub(1) {
            Some(p) if chained => format!(", needs: [s{p}]"),
            _ => String::new(),
        };
        yaml.push_str(&format!(
            "  - {{ id: {id}{needs}, run: {{ program: echo, args: [{id}] }} }}\n"
        ));
    }
    (yaml, ids)
}

#[test]
fn steps_that_start_together_share_one_journal_sync() {
    let (yaml, ids) = steps(16, false);
    let t = Test::new().file("wide.yaml", yaml);
    let seen = traced(&t, "wide.yaml", &["--concurrency", "16"]);
    let groups = synced_before_spawned(&seen, &ids);
    assert_eq!(groups.iter().sum::<usize>(), 16, "{seen:?}");
    assert!(
        groups.len() < 16 && groups.iter().any(|&n| n > 1),
        "one sync per step: {groups:?}"
    );
}

#[test]
fn each_step_of_a_chain_is_synced_before_its_process_starts() {
    // Steps that start one after the other get a sync each: the grouping never delays a
    // step to wait for another.
    let (yaml, ids) = steps(8, true);
    let t = Test::new().file("chain.yaml", yaml);
    let seen = traced(&t, "chain.yaml", &["--concurrency", "16"]);
    let groups = synced_before_spawned(&seen, &ids);
    assert_eq!(groups, vec![1; 8], "{seen:?}");
}

#[test]
fn items_of_a_loop_that_start_together_share_one_journal_sync() {
    let yaml = "runbook: 1\nname: items\nsteps:\n  - id: each\n    for_each: [a, b, c, d, e, f, g, h]\n    concurrency: 8\n    run: { program: echo, args: ['{{ item }}'] }\n";
    let t = Test::new().file("items.yaml", yaml);
    let seen = traced(&t, "items.yaml", &[]);
    let ids: Vec<String> = "abcdefgh".chars().map(|c| c.to_string()).collect();
    // The instances are `each[a]` …; their commands echo the item.
    let seen: Vec<Seen> = seen
        .into_iter()
        .map(|s| match s {
            Seen::Written(id) => Seen::Written(
                id.trim_start_matches("each[")
                    .trim_end_matches(']')
                    .to_owned(),
            ),
            other => other,
        })
        .collect();
    let groups = synced_before_spawned(&seen, &ids);
    assert_eq!(groups.iter().sum::<usize>(), 8, "{seen:?}");
    assert!(groups.len() < 8, "one sync per item: {groups:?}");
}

#[test]
fn each_rollback_is_synced_before_its_process_starts() {
    // Rollbacks run one after the other, in reverse completion order, even when the steps
    // they undo ran together: each start is synced on its own, before its process starts,
    // and none is held back to share a sync.
    let ids: Vec<String> = (0..16).map(|i| format!("s{i}")).collect();
    let mut yaml = String::from("runbook: 1\nname: undo\nsteps:\n");
    for id in &ids {
        yaml.push_str(&format!(
            "  - {{ id: {id}, run: {{ program: echo, args: [{id}] }}, rollback: {{ run: {{ program: echo, args: [undo-{id}] }} }} }}\n"
        ));
    }
    yaml.push_str(&format!(
        "  - {{ id: last, needs: [{}], run: {{ program: 'false' }} }}\n",
        ids.join(", ")
    ));
    let t = Test::new().file("undo.yaml", yaml);
    let seen = traced_exiting(&t, "undo.yaml", &["--concurrency", "16"], 1);
    let first = seen
        .iter()
        .position(|s| matches!(s, Seen::RollbackWritten(_)))
        .unwrap_or_else(|| panic!("no rollback started: {seen:?}"));
    // The rollback phase, read as the forward steps are: a rollback's start is its `Written`,
    // its command (`echo undo-ID`) its `Spawned`.
    let phase: Vec<Seen> = seen[first..]
        .iter()
        .filter_map(|s| match s {
            Seen::RollbackWritten(id) => Some(Seen::Written(id.clone())),
            Seen::Spawned(undo) => undo
                .strip_prefix("undo-")
                .map(|id| Seen::Spawned(id.to_owned())),
            Seen::Synced => Some(Seen::Synced),
            Seen::Written(_) => None,
        })
        .collect();
    let groups = synced_before_spawned(&phase, &ids);
    assert_eq!(groups, vec![1; 16], "{phase:?}");
}
