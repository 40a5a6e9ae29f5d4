//! Steps on other machines, against real `sshd` servers on loopback ports (see `sshd`): what
//! runs there, what comes back, and what is left there when a step times out, is interrupted,
//! loses its connection or runbook dies.

use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

use super::sshd::{Estate, alive, argv, descendants};
use super::support::{Output, Test, events_of, wait_until};

/// `runbook` pointed at the estate's client config.
fn test(estate: &Estate) -> Test {
    Test::new().env("RUNBOOK_SSH_CONFIG", &estate.config().display().to_string())
}

fn book(targets: &str, steps: &str) -> String {
    format!(
        "runbook: 1\nname: remote\nparams:\n  dir: {{ default: \"\" }}\n{targets}steps:\n{steps}"
    )
}

/// `runbook run r.yaml --output json` of `yaml` against `estate`, the scratch directory as
/// `params.dir`.
fn prepared(estate: &Estate, yaml: &str) -> Test {
    let t = test(estate).file("r.yaml", yaml);
    let dir = t.path().display().to_string();
    t.args([
        "run",
        "r.yaml",
        "--output",
        "json",
        "-p",
        &format!("dir={dir}"),
    ])
}

fn run_json(estate: &Estate, yaml: &str) -> (Test, Output) {
    let t = prepared(estate, yaml);
    let out = t.run();
    (t, out)
}

/// Starts the run of `t` in the background, its JSON events piped.
fn spawn_json(t: &Test) -> Child {
    t.command()
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn runbook")
}

fn finished<'a>(events: &'a [serde_json::Value], step: &str) -> &'a serde_json::Value {
    events_of(events, "step_finished")
        .into_iter()
        .find(|e| e["step"] == step)
        .unwrap_or_else(|| panic!("no step_finished for {step}: {events:?}"))
}

fn pid_in(dir: &Path, name: &str) -> i32 {
    let path = dir.join(name);
    wait_until(&format!("{name} is written"), || {
        std::fs::read_to_string(&path).is_ok_and(|s| s.trim().parse::<i32>().is_ok())
    });
    std::fs::read_to_string(&path)
        .unwrap_or_default()
        .trim()
        .parse()
        .unwrap_or_default()
}

fn gone_within(pids: &[i32], limit: Duration) {
    let started = Instant::now();
    while pids.iter().any(|&p| alive(p)) {
        let left: Vec<_> = pids.iter().filter(|&&p| alive(p)).collect();
        assert!(
            started.elapsed() < limit,
            "still alive on the target: {left:?}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A step whose remote script writes its shell's pid and a child's pid, then waits.
const LONG: &str = r#"echo $$ > "{{ params.dir }}/shell"; sleep 300 & echo $! > "{{ params.dir }}/child"; sleep 301"#;

#[test]
fn a_remote_script_runs_on_the_target_with_its_exit_code_stdout_and_stderr() {
    let estate = Estate::new(1);
    let yaml = book(
        &estate.targets(),
        "  - id: hello\n    target: h1\n    run: { script: 'echo \"out $SSH_CONNECTION\"; echo err >&2; exit 3' }\n  - id: cmd\n    target: h1\n    run: { program: printf, args: ['%s|', 'a b', \"c'd\", '$HOME'] }\n  - id: in-bash\n    target: h1\n    run: { shell: bash, script: 'echo \"bash $BASH_VERSION\"' }\n",
    );
    let (t, out) = run_json(&estate, &yaml);
    assert_eq!(out.code, 1, "{}", out.stderr);
    let events = out.events();
    let hello = finished(&events, "hello");
    assert_eq!(hello["status"], "failed");
    assert_eq!(hello["exit_code"], 3);
    // sshd sets SSH_CONNECTION: the script ran through it, on the server's port.
    let stdout = hello["stdout"].as_str().unwrap();
    assert!(
        stdout.starts_with("out 127.0.0.1 ")
            && stdout
                .trim_end()
                .ends_with(&format!(" {}", estate.hosts[0].port)),
        "{stdout}"
    );
    assert_eq!(hello["stderr"], "err\n");
    // Arguments arrive as written, not interpreted by the remote shell.
    let cmd = finished(&events, "cmd");
    assert_eq!(cmd["status"], "succeeded", "{cmd}");
    assert_eq!(cmd["stdout"], "a b|c'd|$HOME|");
    // `shell: bash` on a `sh` target: bash runs the script.
    let bash = finished(&events, "in-bash");
    assert!(
        bash["stdout"].as_str().unwrap().starts_with("bash 5"),
        "{bash}"
    );
    // Every attempt records its target and host.
    let started = events_of(&events, "step_started");
    assert!(!started.is_empty());
    for e in started {
        assert_eq!(e["target"]["target"], "h1", "{e}");
        assert_eq!(e["target"]["ssh"], estate.hosts[0].destination(), "{e}");
    }
    // `show` says where each step ran.
    let show = Test::in_dir(t.path()).args(["show", "--last"]).run();
    assert!(
        show.stdout.contains(&format!(
            "           on h1: sh: echo \"out $SSH_CONNECTION\"; echo err >&2; exit 3\n           via ssh {}\n",
            estate.hosts[0].destination()
        )),
        "{}",
        show.stdout
    );
}

#[test]
fn steps_on_one_target_share_one_connection_per_run() {
    let estate = Estate::new(1);
    let mut steps = String::new();
    for i in 0..5 {
        steps.push_str(&format!(
            "  - id: s{i}\n    target: h1\n    run: {{ program: 'true' }}\n"
        ));
    }
    let (_t, out) = run_json(&estate, &book(&estate.targets(), &steps));
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert_eq!(
        estate.hosts[0].accepted(),
        1,
        "one connection for five steps"
    );
    // A second run opens its own.
    let (_t, out) = run_json(&estate, &book(&estate.targets(), &steps));
    assert_eq!(out.code, 0);
    assert_eq!(estate.hosts[0].accepted(), 2);
}

#[test]
fn for_each_over_three_hosts_runs_once_on_each() {
    let estate = Estate::new(3);
    let yaml = book(
        &estate.targets(),
        "  - id: each\n    for_each: [h1, h2, h3]\n    concurrency: 3\n    target: \"{{ item }}\"\n    run: { script: 'echo \"$SSH_CONNECTION\"' }\n  - id: again\n    needs: [each]\n    for_each: [h1, h2, h3]\n    target: \"{{ item }}\"\n    run: { program: 'true' }\n",
    );
    let (_t, out) = run_json(&estate, &yaml);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let events = out.events();
    for (i, host) in estate.hosts.iter().enumerate() {
        let instance = finished(&events, &format!("each[h{}]", i + 1));
        let stdout = instance["stdout"].as_str().unwrap();
        assert!(
            stdout.trim_end().ends_with(&format!(" {}", host.port)),
            "h{} ran elsewhere: {stdout}",
            i + 1
        );
        assert_eq!(
            host.accepted(),
            1,
            "h{}: one connection for two steps",
            i + 1
        );
    }
}

#[test]
fn a_secret_used_remotely_is_in_no_process_list_on_either_side_nor_in_output() {
    let estate = Estate::new(1);
    let long = "hunter2-Qx7-secret-value";
    let yaml = format!(
        "runbook: 1\nname: remote\nparams:\n  dir: {{ default: \"\" }}\nsecrets:\n  short: {{ env: SHORT }}\n  long: {{ env: LONG }}\n{}steps:\n  - id: use\n    target: h1\n    env: {{ S: \"{{{{ secrets.short }}}}\" }}\n    run: {{ script: 'test \"$S\" = a && test \"{{{{ secrets.long }}}}\" = {long} && echo matched-marker; touch \"{{{{ params.dir }}}}/ready\"; sleep 3' }}\n",
        estate.targets()
    );
    let t = prepared(&estate, &yaml).env("SHORT", "a").env("LONG", long);
    let dir = t.path().to_path_buf();
    let child = spawn_json(&t);
    let runbook_pid = child.id() as i32;
    wait_until("the remote script runs", || dir.join("ready").exists());
    // Every process of the run (runbook's side) and of the server's sessions (the remote
    // side), while the secret is in use.
    let mut seen = 0;
    for pid in descendants(runbook_pid)
        .into_iter()
        .chain(descendants(estate.hosts[0].pid()))
    {
        let words = argv(pid);
        seen += 1;
        let line = words.join(" ");
        assert!(
            !line.contains(long),
            "the long secret is in the argv of {pid}: {line}"
        );
        assert!(
            !line.contains("matched-marker"),
            "the script is in the argv of {pid}: {line}"
        );
        assert!(
            !words
                .iter()
                .any(|w| w == "a" || w.ends_with("=a") || w.contains("'a'")),
            "the one-character secret is in the argv of {pid}: {line}"
        );
    }
    assert!(seen >= 4, "too few processes seen: {seen}");
    let out = child.wait_with_output().expect("wait runbook");
    assert_eq!(out.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("matched-marker"), "{stdout}");
    assert!(!stdout.contains(long));
    let journal = std::fs::read_dir(dir.join(".runbook/runs"))
        .expect("runs")
        .flatten()
        .map(|r| std::fs::read_to_string(r.path().join("journal.jsonl")).unwrap_or_default())
        .collect::<String>();
    assert!(journal.contains("matched-marker"));
    assert!(!journal.contains(long), "{journal}");
    assert!(journal.contains(r#"["S","***"]"#), "{journal}");
}

fn spawn_long(estate: &Estate, timeout: &str) -> (Test, Child) {
    let yaml = book(
        &estate.targets(),
        &format!(
            "  - id: long\n    target: h1\n    timeout: {timeout}\n    run: {{ script: '{LONG}' }}\n"
        ),
    );
    let t = prepared(estate, &yaml);
    let child = spawn_json(&t);
    (t, child)
}

#[test]
fn a_remote_timeout_leaves_no_remote_process_behind() {
    let estate = Estate::new(1);
    let (t, child) = spawn_long(&estate, "2s");
    let pids = [pid_in(t.path(), "shell"), pid_in(t.path(), "child")];
    assert!(pids.iter().all(|&p| alive(p)));
    let out = child.wait_with_output().expect("wait");
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(r#""reason":{"kind":"timeout"}"#),
        "{stdout}"
    );
    gone_within(&pids, Duration::from_secs(10));
}

fn interrupt_ends_the_remote_tree(signal: libc::c_int) {
    let estate = Estate::new(1);
    let (t, child) = spawn_long(&estate, "5m");
    let pids = [pid_in(t.path(), "shell"), pid_in(t.path(), "child")];
    // SAFETY: kill has no memory-safety preconditions; the pid is our child's.
    unsafe {
        libc::kill(child.id() as libc::pid_t, signal);
    }
    let out = child.wait_with_output().expect("wait");
    assert_eq!(
        out.status.code(),
        Some(130),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    gone_within(&pids, Duration::from_secs(10));
    // The connection was closed with the run: no ssh of ours is left.
    wait_until("the session ends on the server", || {
        descendants(estate.hosts[0].pid()).is_empty()
    });
}

#[test]
fn sigint_ends_the_remote_process_tree() {
    interrupt_ends_the_remote_tree(libc::SIGINT);
}

#[test]
fn sigterm_ends_the_remote_process_tree() {
    interrupt_ends_the_remote_tree(libc::SIGTERM);
}

#[test]
fn an_unknown_host_key_is_refused_saying_how_to_accept_it() {
    let estate = Estate::with_known(1, 0);
    let port = estate.hosts[0].port;
    let yaml = book(
        &estate.targets(),
        "  - id: hello\n    target: h1\n    retry: { attempts: 3, on: { connect: true } }\n    run: { script: 'touch \"{{ params.dir }}/ran\"' }\n",
    );
    let (t, out) = run_json(&estate, &yaml);
    assert_eq!(out.code, 1);
    let events = out.events();
    let failed = events_of(&events, "attempt_failed");
    assert_eq!(
        failed.len(),
        1,
        "a refused host key is not retried: {failed:?}"
    );
    assert_eq!(failed[0]["reason"]["kind"], "error");
    let message = failed[0]["message"].as_str().unwrap();
    assert!(message.contains("host key"), "{message}");
    assert!(
        message.contains(&format!("ssh-keyscan -p {port} 127.0.0.1")),
        "{message}"
    );
    assert!(message.contains(&format!("ssh -p {port} ")), "{message}");
    assert!(!t.path().join("ran").exists());
    assert_eq!(estate.hosts[0].accepted(), 0);
}

#[test]
fn a_host_that_is_down_fails_with_reason_connect_after_its_retries() {
    let estate = Estate::new(1);
    // A port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let yaml = book(
        &format!("targets:\n  down: {{ ssh: \"root@127.0.0.1:{port}\" }}\n"),
        "  - id: hello\n    target: down\n    retry: { attempts: 3, delay: 100ms, on: { connect: true } }\n    run: { program: 'true' }\n",
    );
    let (_t, out) = run_json(&estate, &yaml);
    assert_eq!(out.code, 1, "{}", out.stderr);
    let events = out.events();
    let failed = events_of(&events, "attempt_failed");
    assert_eq!(failed.len(), 3, "{failed:?}");
    for f in &failed {
        assert_eq!(f["reason"]["kind"], "connect", "{f}");
        assert!(
            f["message"].as_str().unwrap().contains("cannot connect"),
            "{f}"
        );
    }
    assert_eq!(finished(&events, "hello")["status"], "failed");
}

#[test]
fn a_dropped_connection_is_reason_connect_retried_and_ends_the_remote_tree() {
    let estate = Estate::new(1);
    let yaml = book(
        &estate.targets(),
        "  - id: hello\n    target: h1\n    retry: { attempts: 2, on: { connect: true } }\n    run: { script: 'if [ -e \"{{ params.dir }}/once\" ]; then echo second; else touch \"{{ params.dir }}/once\"; echo $$ > \"{{ params.dir }}/shell\"; sleep 300; fi' }\n",
    );
    let t = prepared(&estate, &yaml);
    let child = spawn_json(&t);
    let shell = pid_in(t.path(), "shell");
    // The server side of the connection dies: every per-connection sshd process.
    let sshd = estate.hosts[0].pid();
    for pid in super::sshd::descendants(sshd) {
        if argv(pid).first().is_some_and(|w| w.starts_with("sshd")) {
            // SAFETY: kill has no memory-safety preconditions.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
        }
    }
    let out = child.wait_with_output().expect("wait");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    let events: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let failed = events_of(&events, "attempt_failed");
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0]["reason"]["kind"], "connect");
    assert_eq!(finished(&events, "hello")["stdout"], "second\n");
    gone_within(&[shell], Duration::from_secs(10));
    assert_eq!(
        estate.hosts[0].accepted(),
        2,
        "the second attempt connected again"
    );
}

#[test]
fn a_remote_exit_code_255_on_a_live_connection_is_the_script_s_own() {
    let estate = Estate::new(1);
    let yaml = book(
        &estate.targets(),
        "  - id: hello\n    target: h1\n    retry: { attempts: 2, on: { connect: true } }\n    run: { script: 'exit 255' }\n",
    );
    let (_t, out) = run_json(&estate, &yaml);
    assert_eq!(out.code, 1);
    let events = out.events();
    let failed = events_of(&events, "attempt_failed");
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0]["reason"]["kind"], "exit");
    assert_eq!(failed[0]["reason"]["code"], 255);
}

#[test]
fn a_remote_step_in_flight_when_runbook_died_is_in_doubt_on_resume() {
    let estate = Estate::new(1);
    let yaml = book(
        &estate.targets(),
        "  - id: a\n    target: h1\n    run: { script: 'echo a >> \"{{ params.dir }}/log\"' }\n  - id: b\n    needs: [a]\n    target: h1\n    run: { script: 'echo $$ > \"{{ params.dir }}/shell\"; sleep 300' }\n  - id: c\n    needs: [b]\n    target: h1\n    run: { script: 'echo c >> \"{{ params.dir }}/log\"' }\n",
    );
    let mut t = test(&estate).file("r.yaml", &yaml);
    let dir = t.path().display().to_string();
    t = t.args(["run", "r.yaml", "-p", &format!("dir={dir}")]);
    let mut child = super::support::spawn(&t);
    let shell = pid_in(t.path(), "shell");
    let _ = child.kill();
    let _ = child.wait();
    // runbook died: its side of the connection closed, and the remote tree ended with it.
    gone_within(&[shell], Duration::from_secs(10));
    // Its master connection ended with it: the server has no session left.
    wait_until("the connection ends on the server", || {
        descendants(estate.hosts[0].pid()).is_empty()
    });
    let env = ("RUNBOOK_SSH_CONFIG", estate.config().display().to_string());
    let asked = Test::in_dir(t.path())
        .env(env.0, &env.1)
        .args(["resume", "--last"])
        .run();
    crate::support::asks_about_in_doubt(&asked, "b");
    assert_eq!(t.read("log"), "a\n", "nothing ran without a decision");
    let resumed = Test::in_dir(t.path())
        .env(env.0, &env.1)
        .args(["resume", "--last", "--assume", "b=done"])
        .run();
    assert_eq!(resumed.code, 0, "{}{}", resumed.stdout, resumed.stderr);
    assert_eq!(t.read("log"), "a\nc\n");
}

#[test]
fn a_destination_that_reads_as_an_ssh_option_is_refused_before_ssh_runs() {
    let t = Test::new().file(
        "r.yaml",
        "runbook: 1\nname: hostile\nparams:\n  host: { default: files }\ntargets:\n  t: { ssh: \"{{ params.host }}\" }\nsteps:\n  - id: s\n    target: t\n    run: { program: 'true' }\n",
    );
    let marker = t.path().join("pwned");
    let hostile = format!("-oProxyCommand=touch {}", marker.display());
    let out = Test::in_dir(t.path())
        .args(["run", "r.yaml", "-p", &format!("host={hostile}")])
        .run();
    assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stdout
            .contains("starts with `-`, which ssh would read as an option"),
        "{}",
        out.stdout
    );
    assert!(!marker.exists(), "ssh ran the hostile option");
}

#[test]
fn targets_are_validated_with_their_locations() {
    let (diags, code) = super::support::validate(
        "runbook: 1\nname: t\ntargets:\n  files: { ssh: \"admin@files\" }\n  bad: { ssh: \"-oProxyCommand=x\", shell: cmd }\nsteps:\n  - id: a\n    target: fils\n    run: { program: 'true' }\n  - id: b\n    target: files\n    wait: 1s\n  - id: c\n    target: files\n    run: { shell: powershell, script: x }\n  - id: d\n    target: files\n    run: { script: 'no shell needed on a target' }\n    rollback: { target: files, sql: { connection: x, query: y } }\n",
    );
    assert_eq!(code, 1);
    let codes: Vec<(&str, u64, u64)> = diags
        .iter()
        .map(|d| (d.code.as_str(), d.line, d.column))
        .collect();
    for expected in [
        ("runbook::invalid_value", 5, 42),
        ("runbook::invalid_ssh_destination", 5, 15),
        ("runbook::unknown_target", 8, 13),
        ("runbook::target_not_run", 11, 13),
        ("runbook::target_shell", 15, 19),
        ("runbook::target_not_run", 19, 25),
    ] {
        assert!(codes.contains(&expected), "{expected:?} not in {codes:?}");
    }
    let unknown = diags
        .iter()
        .find(|d| d.code == "runbook::unknown_target")
        .unwrap();
    assert_eq!(unknown.message, "unknown target `fils`");
}

#[test]
fn the_plan_shows_what_runs_where() {
    let out = Test::new()
        .file(
            "r.yaml",
            "runbook: 1\nname: t\nparams:\n  host: { default: \"admin@files:2222\" }\ntargets:\n  files: { ssh: \"{{ params.host }}\" }\n  w1: { ssh: web1, shell: bash }\nsteps:\n  - id: a\n    target: files\n    run: { script: 'df -h /backup' }\n  - id: b\n    for_each: [w1]\n    target: \"{{ item }}\"\n    run: { program: systemctl, args: [restart, app] }\n",
        )
        .args(["plan", "r.yaml"])
        .run();
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout.contains("on target files (ssh admin@files:2222, shell sh):\n      sh script:\n        | df -h /backup"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("on target w1 (ssh web1, shell bash):\n          $ systemctl restart app"),
        "{}",
        out.stdout
    );
}

#[test]
fn the_shipped_remote_example_runs_against_a_real_sshd() {
    let estate = Estate::new(1);
    let example = super::support::repo().join("runbooks/examples/remote-disk-check.yaml");
    let out = test(&estate)
        .args([
            "run",
            &example.display().to_string(),
            "--output",
            "json",
            "-p",
            &format!("files_host={}", estate.hosts[0].destination()),
            "-p",
            "min_free_mb=1",
        ])
        .run();
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let events = out.events();
    assert_eq!(finished(&events, "free-space")["status"], "succeeded");
    assert_eq!(estate.hosts[0].accepted(), 1);
}

#[test]
fn a_secret_in_the_arguments_of_a_remote_program_is_not_in_a_process_list() {
    let yaml = |target: &str| {
        format!(
            "runbook: 1\nname: t\nsecrets:\n  pw: {{ env: PW }}\ntargets:\n  files: {{ ssh: files }}\nsteps:\n  - id: a\n{target}    run: {{ program: curl, args: ['-u', 'admin:{{{{ secrets.pw }}}}', 'https://x'] }}\n"
        )
    };
    let (here, _) = super::support::validate(&yaml(""));
    assert!(
        here.iter().any(|d| d.code == "runbook::secret_in_args"),
        "{here:?}"
    );
    let (remote, code) = super::support::validate(&yaml("    target: files\n"));
    assert_eq!(code, 0, "{remote:?}");
    assert!(
        !remote.iter().any(|d| d.code == "runbook::secret_in_args"),
        "{remote:?}"
    );
}

/// A `notify` hook with `target:` runs on that machine and reads the event on its stdin, a
/// secret in it masked; a `sh` script and a `program` alike.
#[test]
fn a_notify_hook_on_a_target_reads_the_event_on_its_stdin() {
    let estate = Estate::new(1);
    let yaml = format!(
        "runbook: 1\nname: hooked\nparams:\n  dir: {{ default: \"\" }}\nsecrets:\n  token: {{ env: HOOK_TOKEN }}\n{}notify:\n  - on: [step_failed, finished]\n    target: h1\n    run: {{ shell: sh, script: \"cat >> '{{{{ params.dir }}}}/events'; echo >> '{{{{ params.dir }}}}/events'\" }}\n  - on: [finished]\n    target: h1\n    run: {{ program: tee, args: [\"{{{{ params.dir }}}}/finished\"] }}\nsteps:\n  - id: fails\n    run: {{ shell: sh, script: \"echo {{{{ secrets.token }}}}; exit 1\" }}\n",
        estate.targets()
    );
    let t = prepared(&estate, &yaml).env("HOOK_TOKEN", "s3cr3t-token");
    let out = t.run();
    assert_eq!(out.code, 1, "{}", out.stderr);
    let events = std::fs::read_to_string(t.path().join("events")).expect("the hook ran");
    let lines: Vec<serde_json::Value> = events
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("one JSON event per line"))
        .collect();
    let names: Vec<&str> = lines.iter().filter_map(|e| e["event"].as_str()).collect();
    assert_eq!(names, ["step_failed", "finished"], "{events}");
    assert_eq!(lines[0]["step"], "fails");
    assert!(!events.contains("s3cr3t-token"), "{events}");
    let finished = std::fs::read_to_string(t.path().join("finished")).expect("tee ran");
    let finished: serde_json::Value =
        serde_json::from_str(finished.trim()).expect("the finished event as JSON");
    assert_eq!(finished["event"], "finished");
    assert!(!out.stdout.contains("notify_failed"), "{}", out.stdout);
    // The step ran here: the server's logins are the hooks'.
    assert!(
        estate.hosts[0].accepted() >= 1,
        "no hook reached the target"
    );
}

#[test]
fn a_notify_hook_naming_an_unknown_target_is_located() {
    let estate = Estate::new(1);
    let yaml = format!(
        "runbook: 1\nname: hooked\n{}notify:\n  - on: [finished]\n    target: h2\n    run: {{ program: cat }}\nsteps:\n  - id: a\n    run: {{ program: \"true\" }}\n",
        estate.targets()
    );
    let out = test(&estate)
        .file("r.yaml", yaml)
        .args(["validate", "--format", "json", "r.yaml"])
        .run();
    assert_eq!(out.code, 1, "{}", out.stdout);
    assert!(
        out.stdout.contains("runbook::unknown_target"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("\"line\": 7"), "{}", out.stdout);
}

/// A step group declares its own targets over its params (renamed `USE.NAME`, as its
/// connections are): its steps run there, and the runbook's own targets stay its own.
#[test]
fn a_group_runs_its_steps_on_its_own_target() {
    let estate = Estate::new(1);
    let group = "group: 1\nname: remote-checks\nparams:\n  dest: { type: string }\ntargets:\n  box: { ssh: \"{{ params.dest }}\" }\nsteps:\n  - id: where\n    target: box\n    run: { shell: sh, script: 'echo \"on $(hostname) via ${SSH_CONNECTION:+ssh}\"' }\n";
    let main = format!(
        "runbook: 1\nname: grouped\n{}steps:\n  - id: checks\n    use: ./groups/remote-checks.yaml\n    with: {{ dest: \"{}\" }}\n  - id: after\n    needs: [checks]\n    target: h1\n    run: {{ program: \"true\" }}\n",
        estate.targets(),
        estate.hosts[0].destination()
    );
    let t = test(&estate)
        .file("groups/remote-checks.yaml", group)
        .file("r.yaml", main)
        .args(["run", "r.yaml", "--output", "json"]);
    let out = t.run();
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    let events = out.events();
    let step = finished(&events, "checks.where");
    let stdout = step["stdout"].as_str().unwrap_or_default();
    assert!(stdout.contains("via ssh"), "{step}");
    let started: Vec<_> = events_of(&events, "step_started")
        .into_iter()
        .filter(|e| e["step"] == "checks.where")
        .collect();
    assert_eq!(started[0]["target"]["target"], "checks.box", "{started:?}");
    // One connection for the run's steps on the same server: the group's target and the
    // runbook's name the same destination through different names.
    assert!(estate.hosts[0].accepted() >= 1);
}
