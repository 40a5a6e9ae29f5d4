//! Live output: a running step's lines reach the screen as they are printed (masked, on a
//! terminal above the spinners, elsewhere as timestamped lines, in JSON as `output` events),
//! `--quiet` hides them, and the journal keeps the whole output only in `step_finished`.

use std::process::Stdio;
use std::sync::mpsc;
use std::time::Duration;

use crate::support::{Test, events_of, on_terminal, os_user, spawn_lines};

/// A step that prints a line, then waits for the test to create `go` before it ends.
const WAITS_FOR_GO: &str = r#"runbook: 1
name: waits
steps:
  - id: talk
    run: { shell: sh, script: "echo first; while [ ! -f go ]; do sleep 0.05; done; echo second" }
"#;

#[test]
fn a_line_reaches_a_pipe_while_its_step_is_still_running() {
    let t = Test::new()
        .file("a.yaml", WAITS_FOR_GO)
        .args(["run", "a.yaml"]);
    let (mut child, lines) = spawn_lines(&t);
    let (tx, rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in lines {
            let _ = tx.send(line);
        }
    });
    let mut seen = Vec::new();
    let first = loop {
        let line = rx
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("no `talk │ first` line while the step runs: {seen:?}"));
        if line.ends_with("talk │ first") {
            break line;
        }
        seen.push(line);
    };
    // The step is still waiting for `go`: it has not ended and not printed its second line.
    assert!(
        seen.iter().all(|l| !l.contains("✓ talk")),
        "the step ended before its first line was shown: {seen:?}"
    );
    assert!(
        first
            .chars()
            .take(8)
            .all(|c| c.is_ascii_digit() || c == ':'),
        "a line on a pipe starts with its time: {first}"
    );
    std::fs::write(t.path().join("go"), "").expect("create go");
    let status = child.wait().expect("wait");
    reader.join().expect("reader");
    let rest: Vec<String> = rx.try_iter().collect();
    assert_eq!(status.code(), Some(0), "{rest:?}");
    let second = rest
        .iter()
        .position(|l| l.ends_with("talk │ second"))
        .unwrap_or_else(|| panic!("no second line: {rest:?}"));
    let done = rest
        .iter()
        .position(|l| l.contains("✓ talk"))
        .unwrap_or_else(|| panic!("no end of the step: {rest:?}"));
    assert!(second < done, "{rest:?}");
}

const TALKS: &str = r#"runbook: 1
name: talks
secrets:
  token: { env: TOKEN }
steps:
  - id: talk
    run: { shell: sh, script: "echo one; printf 'hun'; sleep 0.3; printf 'ter2\\n'; echo oops >&2; echo two" }
"#;

#[test]
fn json_has_an_output_event_per_line_with_its_stream_and_the_journal_has_none() {
    let t = Test::new()
        .file("a.yaml", TALKS)
        .env("TOKEN", "hunter2")
        .args(["run", "a.yaml", "--output", "json", "--state-dir", "st"]);
    let out = t.run();
    assert_eq!(out.code, 0, "{}", out.stderr);
    let events = out.events();
    let lines: Vec<(String, String)> = events_of(&events, "output")
        .iter()
        .map(|e| {
            assert_eq!(e["step"], "talk");
            assert!(e["at"].is_string(), "{e}");
            (
                e["stream"].as_str().unwrap_or_default().to_owned(),
                e["line"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    let stdout: Vec<&str> = lines
        .iter()
        .filter(|(s, _)| s == "stdout")
        .map(|(_, l)| l.as_str())
        .collect();
    assert_eq!(stdout, ["one", "***", "two"]);
    assert!(lines.contains(&("stderr".to_owned(), "oops".to_owned())));
    // The output events come before the step's end.
    let last_output = events.iter().rposition(|e| e["event"] == "output");
    let finished = events.iter().position(|e| e["event"] == "step_finished");
    assert!(last_output < finished);
    let journal = std::fs::read_dir(t.path().join("st/runs"))
        .expect("runs")
        .flatten()
        .map(|r| std::fs::read_to_string(r.path().join("journal.jsonl")).unwrap_or_default())
        .collect::<String>();
    assert!(!journal.contains(r#""event":"output""#), "{journal}");
    assert!(journal.contains("one\\n***\\n"), "{journal}");
    assert!(!out.stdout.contains("hunter2") && !journal.contains("hunter2"));
}

#[test]
fn a_secret_written_in_two_pieces_is_masked_in_its_line() {
    let out = Test::new()
        .file("a.yaml", TALKS)
        .env("TOKEN", "hunter2")
        .args(["run", "a.yaml"])
        .run();
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains("talk │ ***\n"), "{}", out.stdout);
    assert!(!out.stdout.contains("hunter2"), "{}", out.stdout);
    assert!(!out.stdout.contains("talk │ hun") && !out.stdout.contains("│ ter2"));
}

#[test]
fn a_one_character_secret_alone_on_a_line_is_masked() {
    let out = Test::new()
        .file(
            "a.yaml",
            r#"runbook: 1
name: short
secrets:
  pin: { env: PIN }
steps:
  - id: talk
    run: { shell: sh, script: "echo before; printf '1'; sleep 0.2; echo; echo after" }
"#,
        )
        .env("PIN", "1")
        .args(["run", "a.yaml", "--output", "json"])
        .run();
    assert_eq!(out.code, 0, "{}", out.stderr);
    let events = out.events();
    let lines: Vec<&str> = events_of(&events, "output")
        .iter()
        .filter_map(|e| e["line"].as_str())
        .collect();
    assert_eq!(lines, ["before", "***", "after"]);
}

#[test]
fn a_line_too_long_is_cut_and_a_secret_at_the_cut_is_masked() {
    // 4094 bytes, then a secret the cut at 4096 falls inside, then more of the same line.
    let out = Test::new()
        .file(
            "a.yaml",
            r#"runbook: 1
name: long
secrets:
  token: { env: TOKEN }
steps:
  - id: talk
    run: { shell: sh, script: "head -c 4094 /dev/zero | tr '\\0' x; printf 'hunter2 and more'; sleep 0.2; echo ' of it'; echo next" }
"#,
        )
        .env("TOKEN", "hunter2")
        .args(["run", "a.yaml", "--output", "json"])
        .run();
    assert_eq!(out.code, 0, "{}", out.stderr);
    let events = out.events();
    let outputs = events_of(&events, "output");
    assert_eq!(outputs.len(), 2, "{outputs:?}");
    let cut = outputs[0]["line"].as_str().unwrap_or_default();
    assert_eq!(outputs[0]["cut"], true);
    assert!(cut.ends_with("x***"), "{}", &cut[cut.len() - 20..]);
    assert!(!cut.contains("hu"));
    assert_eq!(outputs[1]["line"], "next");
    assert!(!out.stdout.contains("nter2"));
}

#[test]
fn quiet_hides_the_lines_and_keeps_the_rest() {
    let out = Test::new()
        .file("a.yaml", TALKS)
        .env("TOKEN", "hunter2")
        .args(["run", "a.yaml", "--quiet"])
        .run();
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(!out.stdout.contains("│"), "{}", out.stdout);
    assert!(out.stdout.contains("✓ talk"), "{}", out.stdout);
}

#[test]
fn on_a_terminal_lines_show_with_the_step_and_quiet_hides_them() {
    let t = Test::new().file(
        "a.yaml",
        TALKS.replace("secrets:\n  token: { env: TOKEN }\n", ""),
    );
    let (code, screen) = on_terminal(&t, "run a.yaml", &os_user(), b"");
    assert_eq!(code, Some(0), "{screen}");
    assert!(screen.contains("talk │ one"), "{screen}");
    assert!(screen.contains("talk │ two"), "{screen}");
    // Without a time (which `   talk │` would follow): the line is shown as it comes.
    assert!(!screen.contains("   talk │ one"), "{screen}");
    let (code, screen) = on_terminal(&t, "run a.yaml --quiet", &os_user(), b"");
    assert_eq!(code, Some(0), "{screen}");
    assert!(!screen.contains("talk │"), "{screen}");
    assert!(screen.contains("Outcome: succeeded"), "{screen}");
}

#[test]
fn on_a_terminal_a_secret_written_in_two_pieces_is_masked() {
    let t = Test::new().file("a.yaml", TALKS);
    let bin = env!("CARGO_BIN_EXE_runbook");
    let out = std::process::Command::new("script")
        .args(["-qec", &format!("{bin} run a.yaml"), "/dev/null"])
        .current_dir(t.path())
        .env("TOKEN", "hunter2")
        .stdin(Stdio::null())
        .output()
        .expect("run under script");
    let screen = String::from_utf8_lossy(&out.stdout);
    assert!(screen.contains("talk │ ***"), "{screen}");
    assert!(!screen.contains("hunter2"), "{screen}");
    assert!(
        !screen.contains("│ hun") && !screen.contains("│ ter2"),
        "{screen}"
    );
}

#[test]
fn a_poll_says_one_line_per_attempt() {
    let out = Test::new()
        .file(
            "a.yaml",
            r#"runbook: 1
name: poll
steps:
  - id: poll
    retry: { attempts: 4, delay: 10ms }
    run: { shell: sh, script: "echo $(( $(cat n 2>/dev/null || echo 0) + 1 )) > n" }
    until: "(result.attempt) >= 3"
"#,
        )
        .args(["run", "a.yaml", "--quiet"])
        .run();
    assert_eq!(out.code, 0, "{}", out.stderr);
    let poll: Vec<&str> = out
        .stdout
        .lines()
        .filter(|l| l.contains("poll") && !l.starts_with("  ") && !l.contains(" run "))
        .collect();
    assert_eq!(poll.len(), 4, "{}", out.stdout);
    assert!(poll[0].contains("▶ poll (attempt 1/4)"), "{poll:?}");
    assert!(poll[1].contains("… poll attempt 1: until"), "{poll:?}");
    assert!(poll[2].contains("… poll attempt 2: until"), "{poll:?}");
    assert!(poll[3].contains("✓ poll"), "{poll:?}");
}

#[test]
fn steps_without_a_rollback_are_said_once() {
    let out = Test::new()
        .file(
            "a.yaml",
            r#"runbook: 1
name: undo
steps:
  - id: a
    run: { program: "true" }
  - id: b
    needs: [a]
    run: { program: "true" }
    rollback: { run: { program: "true" } }
  - id: c
    needs: [b]
    run: { program: "true" }
  - id: d
    needs: [c]
    run: { program: "false" }
"#,
        )
        .args(["run", "a.yaml"])
        .run();
    assert_eq!(out.code, 1, "{}", out.stderr);
    let said: Vec<&str> = out
        .stdout
        .lines()
        .filter(|l| l.contains("not rolled back") || l.contains("Not rolled back"))
        .collect();
    assert_eq!(said.len(), 2, "{}", out.stdout);
    assert!(
        said[0].ends_with("· not rolled back (no rollback declared): c, a"),
        "{said:?}"
    );
    assert_eq!(said[1], "Not rolled back (no rollback declared): c, a");
    assert!(
        out.stdout.contains("rolling back, in order: b\n"),
        "{}",
        out.stdout
    );
}
