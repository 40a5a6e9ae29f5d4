//! Multi-party approvals with real OS users: the tests create users and a group (they run as
//! root, here and in CI), run `runbook approve` as those users through `setpriv`, and check
//! what the waiting run counts, refuses, journals and how it ends. If users cannot be
//! created the tests fail: nothing here is skipped.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::support::{Output, validate, wait_until};

/// `useradd`/`userdel` lock the user database: one at a time within this test binary.
static USERDB: Mutex<()> = Mutex::new(());
static NEXT: AtomicUsize = AtomicUsize::new(0);

/// A group and users made for one test, removed when dropped.
struct Team {
    group: String,
    users: Vec<String>,
}

impl Team {
    /// Users `ROLE` for each role letter (e.g. "abcx"), all in one new group.
    fn new(roles: &str) -> Self {
        let _lock = USERDB.lock().unwrap_or_else(|e| e.into_inner());
        let prefix = format!(
            "rba{}x{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        );
        let group = format!("{prefix}g");
        must("groupadd", &[group.as_str()]);
        let mut team = Team {
            group,
            users: Vec::new(),
        };
        for role in roles.chars() {
            let user = format!("{prefix}{role}");
            must(
                "useradd",
                &["-M", "-N", "-g", &team.group, "-s", "/bin/sh", &user],
            );
            team.users.push(user);
        }
        team
    }

    fn users<const N: usize>(&self, roles: [char; N]) -> [&str; N] {
        roles.map(|role| self.user(role))
    }

    fn user(&self, role: char) -> &str {
        self.users
            .iter()
            .find(|u| u.ends_with(role))
            .expect("a user of that role")
    }

    fn id(&self, user: &str, flag: &str) -> String {
        let out = Command::new("id").args([flag, user]).output().expect("id");
        assert!(out.status.success(), "id {flag} {user}");
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// `runbook ARGS` as `user` (real uid and gid, no other groups), with `$USER` set to
    /// `claims`: who votes must come from the uid, never from the environment.
    fn as_user(&self, user: &str, claims: &str, args: &[&str]) -> Output {
        let out = Command::new("setpriv")
            .arg(format!("--reuid={}", self.id(user, "-u")))
            .arg(format!("--regid={}", self.id(user, "-g")))
            .arg("--clear-groups")
            .arg(env!("CARGO_BIN_EXE_runbook"))
            .args(args)
            .env("USER", claims)
            .env("LOGNAME", claims)
            .env_remove("RUNBOOK_STATE_DIR")
            .current_dir("/")
            .output()
            .expect("run setpriv");
        Output {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

impl Drop for Team {
    fn drop(&mut self) {
        let _lock = USERDB.lock().unwrap_or_else(|e| e.into_inner());
        for user in &self.users {
            let _ = Command::new("userdel").arg(user).status();
        }
        let _ = Command::new("groupdel").arg(&self.group).status();
    }
}

fn must(program: &str, args: &[&str]) {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run {program} (the tests need root and Debian's passwd): {e}")
        });
    assert!(
        out.status.success(),
        "{program} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A team's shared state directory: group-owned, setgid, group-writable, as README says.
struct Shared {
    _dir: tempfile::TempDir,
    root: PathBuf,
    state: PathBuf,
}

impl Shared {
    fn new(team: &Team, runbook: &str) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path().to_path_buf();
        must("chmod", &["755", root.to_str().expect("utf-8 path")]);
        let state = root.join("state");
        std::fs::create_dir(&state).expect("state dir");
        must("chgrp", &[&team.group, state.to_str().expect("utf-8 path")]);
        must("chmod", &["3770", state.to_str().expect("utf-8 path")]);
        std::fs::write(root.join("rb.yaml"), runbook).expect("runbook");
        Self {
            _dir: dir,
            root,
            state,
        }
    }

    /// Starts `runbook run rb.yaml` as root (the operator) with `umask 002`, its output in
    /// `out.txt`.
    fn start(&self, extra: &[&str]) -> Child {
        let mut args = vec!["run", "rb.yaml"];
        args.extend_from_slice(extra);
        self.start_command(&args)
    }

    /// `runbook ARGS --state-dir STATE` as the operator, as `start` does.
    fn start_command(&self, args: &[&str]) -> Child {
        let out = std::fs::File::create(self.root.join("out.txt")).expect("out file");
        Command::new("sh")
            .arg("-c")
            .arg("umask 002; exec \"$0\" \"$@\"")
            .arg(env!("CARGO_BIN_EXE_runbook"))
            .args(args)
            .arg("--state-dir")
            .arg(&self.state)
            .current_dir(&self.root)
            .env("NO_COLOR", "1")
            .env_remove("RUNBOOK_STATE_DIR")
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("out file"))
            .stderr(out)
            .spawn()
            .expect("start the run")
    }

    fn output(&self) -> String {
        std::fs::read_to_string(self.root.join("out.txt")).unwrap_or_default()
    }

    fn run_id(&self) -> String {
        wait_until("the run has a directory", || {
            std::fs::read_dir(self.state.join("runs")).is_ok_and(|mut d| d.next().is_some())
        });
        let entry = std::fs::read_dir(self.state.join("runs"))
            .expect("runs")
            .flatten()
            .next()
            .expect("one run");
        entry.file_name().to_string_lossy().into_owned()
    }

    fn journal(&self) -> Vec<serde_json::Value> {
        let path = self
            .state
            .join("runs")
            .join(self.run_id())
            .join("journal.jsonl");
        std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    fn events(&self, kind: &str) -> Vec<serde_json::Value> {
        self.journal()
            .into_iter()
            .filter(|e| e["event"] == kind)
            .collect()
    }

    fn wait_for(&self, kind: &str, count: usize) {
        wait_until(&format!("{count} `{kind}` event(s) in the journal"), || {
            self.events(kind).len() >= count
        });
    }

    fn approve(&self, team: &Team, user: &str, extra: &[&str]) -> Output {
        let run = self.run_id();
        let state = self.state.to_str().expect("utf-8 path");
        let mut args = vec!["approve", run.as_str(), "go", "--state-dir", state];
        args.extend_from_slice(extra);
        team.as_user(user, user, &args)
    }

    fn runs(&self) -> Output {
        crate::support::Test::new()
            .args([
                "runs",
                "--state-dir",
                self.state.to_str().expect("utf-8 path"),
            ])
            .run()
    }
}

fn finish(mut child: Child) -> i32 {
    child.wait().expect("wait for the run").code().unwrap_or(-1)
}

/// A runbook whose `go` step needs `min` of `approvers`; `prepare` has a rollback that leaves
/// `undone` behind, `after` leaves `after-ran`.
fn runbook(approvers: &[&str], min: u32, extra: &str) -> String {
    format!(
        r#"runbook: 1
name: approvals
steps:
  - id: prepare
    run: {{ program: "true" }}
    rollback: {{ run: {{ shell: sh, script: "touch undone" }} }}
  - id: go
    needs: [prepare]
    approval: {{ prompt: "Fail over?", approvers: [{}], min: {min}{extra} }}
  - id: after
    needs: [go]
    run: {{ shell: sh, script: "touch after-ran" }}
"#,
        approvers.join(", ")
    )
}

#[test]
fn two_of_three_approval_completes_and_journals_who_when_why() {
    let team = Team::new("abcx");
    let [a, b, c, x] = team.users(['a', 'b', 'c', 'x']);
    let shared = Shared::new(&team, &runbook(&[a, b, c], 2, ", timeout: 5m"));
    let run = shared.start(&[]);
    shared.wait_for("approval_needed", 1);

    // Someone who is not an approver is refused, even claiming an approver's name in $USER.
    let out = team.as_user(
        x,
        a,
        &[
            "approve",
            &shared.run_id(),
            "go",
            "--state-dir",
            shared.state.to_str().expect("utf-8 path"),
        ],
    );
    assert_eq!(out.code, 2, "{}{}", out.stdout, out.stderr);
    assert_eq!(
        out.stderr,
        format!("error: {x} may not approve `go`: the approvers are {a}, {b}, {c}\n")
    );

    let out = shared.approve(&team, a, &["--reason", "standby is in sync"]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stdout
            .starts_with(&format!("{a} approved `go` of run ")),
        "{}",
        out.stdout
    );
    shared.wait_for("approval_vote", 1);

    // A second vote by the same user is refused.
    let out = shared.approve(&team, a, &[]);
    assert_eq!(out.code, 2);
    assert_eq!(
        out.stderr,
        format!("error: {a} has already voted on `go`; a vote cannot be changed\n")
    );

    // One of two: still waiting, and `runs` says whose vote it has and who may still vote.
    let runs = shared.runs();
    assert!(
        runs.stdout.contains(&format!(
            "WAITING FOR APPROVAL at go: 1 of 2 (approved by {a}); may still approve: {b}, {c}"
        )),
        "{}",
        runs.stdout
    );
    assert!(!shared.root.join("after-ran").exists());

    let out = shared.approve(&team, c, &[]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert_eq!(finish(run), 0, "{}", shared.output());
    assert!(shared.root.join("after-ran").exists());

    let votes = shared.events("approval_vote");
    assert_eq!(votes.len(), 2, "{votes:?}");
    assert_eq!(votes[0]["user"], *a);
    assert_eq!(votes[0]["decision"], "approve");
    assert_eq!(votes[0]["reason"], "standby is in sync");
    assert!(
        votes[0]["voted_at"]
            .as_str()
            .is_some_and(|t| t.starts_with("20"))
    );
    assert_eq!(votes[1]["user"], *c);
    assert!(votes[1].get("reason").is_none());
    let approved = shared.events("approved");
    assert_eq!(approved[0]["by"], format!("{a}, {c}"));
    assert_eq!(approved[0]["how"], "multi-party approval");
    assert!(shared.events("vote_ignored").is_empty());
    let output = shared.output();
    assert!(
        output.contains(&format!("✔ go approved by {a} at ")),
        "{output}"
    );
    assert!(output.contains(": standby is in sync\n"), "{output}");

    // Approving once the run no longer waits is refused.
    let out = shared.approve(&team, b, &[]);
    assert_eq!(out.code, 2);
    assert!(
        out.stderr
            .contains("is not waiting for an approval at `go`"),
        "{}",
        out.stderr
    );
}

#[test]
fn operators_own_approval_is_refused_and_not_counted_then_the_wait_times_out() {
    let team = Team::new("a");
    let a = team.user('a');
    // The operator (root) is an approver, but self_approval is false.
    let shared = Shared::new(&team, &runbook(&[a, "root"], 1, ", timeout: 3s"));
    let run = shared.start(&[]);
    shared.wait_for("approval_needed", 1);
    let needed = &shared.events("approval_needed")[0];
    assert_eq!(needed["operator"], "root");
    assert_eq!(needed["self_approval"], false);

    let run_id = shared.run_id();
    let state = shared.state.to_str().expect("utf-8 path");
    let out = crate::support::Test::new()
        .args(["approve", &run_id, "go", "--state-dir", state])
        .run();
    assert_eq!(out.code, 2);
    assert_eq!(
        out.stderr,
        format!(
            "error: root runs run {run_id} and may not approve its own run (`go` has self_approval: false); ask one of {a}\n"
        )
    );
    // Written by hand instead, the operator's vote is ignored and reported, not counted.
    let vote = serde_json::json!({
        "run": run_id, "step": "go", "user": "root", "decision": "approve",
        "at": "2026-11-26T10:00:00Z",
    });
    let file = shared
        .state
        .join(format!("runs/{run_id}/votes/go~root.json"));
    std::fs::write(&file, vote.to_string()).expect("write the vote");
    std::fs::set_permissions(&file, std::os::unix::fs::PermissionsExt::from_mode(0o444))
        .expect("chmod");
    shared.wait_for("vote_ignored", 1);
    let ignored = &shared.events("vote_ignored")[0];
    assert_eq!(ignored["owner"], "root");
    assert_eq!(
        ignored["reason"],
        "root runs this run and may not approve it (self_approval: false)"
    );

    // Nobody else votes: the timeout refuses the approval, the run rolls back.
    assert_eq!(finish(run), 1, "{}", shared.output());
    assert!(shared.root.join("undone").exists());
    assert!(!shared.root.join("after-ran").exists());
    assert!(shared.events("approval_vote").is_empty());
    let failed = shared.events("step_finished");
    let go = failed
        .iter()
        .find(|e| e["step"] == "go")
        .expect("go finished");
    assert_eq!(go["status"], "failed");
    assert_eq!(
        go["message"],
        "timed out: 0 of the 1 approvals needed were given"
    );
    let output = shared.output();
    assert!(
        output.contains("! go: vote file go~root.json (owner root) ignored: root runs this run"),
        "{output}"
    );
}

#[test]
fn one_rejection_ends_the_wait_and_rolls_back() {
    let team = Team::new("abc");
    let (a, b, c) = (team.user('a'), team.user('b'), team.user('c'));
    let shared = Shared::new(&team, &runbook(&[a, b, c], 2, ""));
    let run = shared.start(&[]);
    shared.wait_for("approval_needed", 1);
    let out = shared.approve(&team, a, &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let out = shared.approve(&team, b, &["--reject", "--reason", "standby lags 4h"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains("rejected `go`"), "{}", out.stdout);

    assert_eq!(finish(run), 1, "{}", shared.output());
    assert!(shared.root.join("undone").exists(), "prepare rolled back");
    assert!(!shared.root.join("after-ran").exists());
    let votes = shared.events("approval_vote");
    let rejected = votes.iter().find(|v| v["user"] == *b).expect("b's vote");
    assert_eq!(rejected["decision"], "reject");
    assert_eq!(rejected["reason"], "standby lags 4h");
    let finished = shared.events("step_finished");
    let go = finished.iter().find(|e| e["step"] == "go").expect("go");
    assert_eq!(go["message"], format!("rejected by {b}: standby lags 4h"));
    assert_eq!(shared.events("run_finished")[0]["exit_code"], 1);
    // `show` tells who voted how, when and why.
    let show = crate::support::Test::new()
        .args([
            "show",
            &shared.run_id(),
            "--state-dir",
            shared.state.to_str().expect("utf-8 path"),
        ])
        .run();
    let line = show
        .stdout
        .lines()
        .find(|l| l.contains("votes: "))
        .unwrap_or_else(|| panic!("no votes in show:\n{}", show.stdout));
    let (at_a, at_b) = (votes[0]["voted_at"].as_str(), rejected["voted_at"].as_str());
    assert_eq!(
        line.trim(),
        format!(
            "votes: {a} approved at {}; {b} rejected at {} (standby lags 4h)",
            at_a.unwrap_or_default(),
            at_b.unwrap_or_default()
        )
    );
    // c never had to vote; a vote now is refused: the run is over.
    assert_eq!(shared.approve(&team, c, &[]).code, 2);
}

#[test]
fn approve_all_does_not_satisfy_a_multi_party_approval() {
    let team = Team::new("ab");
    let (a, b) = (team.user('a'), team.user('b'));
    let shared = Shared::new(&team, &runbook(&[a, b], 1, ", timeout: 2s"));
    let run = shared.start(&["--approve-all"]);
    assert_eq!(finish(run), 1, "{}", shared.output());
    let output = shared.output();
    assert!(
        output.contains("note: --approve-all does not satisfy go: it is a multi-party approval, voted with `runbook approve`"),
        "{output}"
    );
    assert_eq!(
        shared.events("approval_needed")[0]["ignored"],
        "--approve-all"
    );
    assert!(shared.events("approved").is_empty());
    assert!(!shared.root.join("after-ran").exists());
}

#[test]
fn forged_vote_file_is_ignored_and_reported() {
    let team = Team::new("abcx");
    let [a, b, c, x] = team.users(['a', 'b', 'c', 'x']);
    let shared = Shared::new(&team, &runbook(&[a, b, c], 2, ""));
    let run = shared.start(&[]);
    shared.wait_for("approval_needed", 1);
    let run_id = shared.run_id();
    // x, a member of the team's group but not an approver, writes a's vote by hand.
    let forged = shared
        .state
        .join(format!("runs/{run_id}/votes/go~{a}.json"));
    let vote = serde_json::json!({
        "run": run_id, "step": "go", "user": a, "decision": "approve",
        "at": "2026-11-26T10:00:00Z",
    });
    let script = format!("umask 002; printf '%s' '{vote}' > '{}'", forged.display());
    let out = Command::new("setpriv")
        .arg(format!("--reuid={}", team.id(x, "-u")))
        .arg(format!("--regid={}", team.id(x, "-g")))
        .args(["--clear-groups", "sh", "-c", &script])
        .output()
        .expect("setpriv");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    shared.wait_for("vote_ignored", 1);
    let ignored = &shared.events("vote_ignored")[0];
    assert_eq!(ignored["owner"], *x);
    assert_eq!(ignored["file"], format!("go~{a}.json"));
    assert!(shared.events("approval_vote").is_empty());

    // a's own vote is then refused, naming who wrote the forged one.
    let out = shared.approve(&team, a, &[]);
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains(&format!("belongs to {x} (forged)")),
        "{}",
        out.stderr
    );
    // The others' votes still count.
    assert_eq!(shared.approve(&team, b, &[]).code, 0);
    assert_eq!(shared.approve(&team, c, &[]).code, 0);
    assert_eq!(finish(run), 0, "{}", shared.output());
    let approved = shared.events("approved");
    assert_eq!(approved[0]["by"], format!("{b}, {c}"));
    assert!(shared.output().contains(&format!("(owner {x}) ignored: ")));
}

#[test]
fn a_group_of_approvers_is_read_from_the_group_database() {
    let team = Team::new("ab");
    let (a, b) = (team.user('a'), team.user('b'));
    must("gpasswd", &["-M", &format!("{a},{b}"), &team.group]);
    let yaml = format!(
        "runbook: 1\nname: grouped\nsteps:\n  - id: go\n    approval: {{ prompt: ok?, approvers: {{ group: {} }}, min: 2 }}\n",
        team.group
    );
    let shared = Shared::new(&team, &yaml);
    let run = shared.start(&[]);
    shared.wait_for("approval_needed", 1);
    let needed = &shared.events("approval_needed")[0];
    assert_eq!(needed["approvers"], serde_json::json!([a, b]));
    assert_eq!(needed["group"], *team.group);
    assert_eq!(shared.approve(&team, a, &[]).code, 0);
    assert_eq!(shared.approve(&team, b, &[]).code, 0);
    assert_eq!(finish(run), 0, "{}", shared.output());
}

#[test]
fn unknown_run_or_step_is_refused() {
    let team = Team::new("a");
    let a = team.user('a');
    let shared = Shared::new(&team, &runbook(&[a], 1, ", timeout: 30s"));
    let run = shared.start(&[]);
    shared.wait_for("approval_needed", 1);
    let state = shared.state.to_str().expect("utf-8 path");
    let out = team.as_user(
        a,
        a,
        &[
            "approve",
            "20200101T000000-0000",
            "go",
            "--state-dir",
            state,
        ],
    );
    assert_eq!(out.code, 2);
    assert_eq!(
        out.stderr,
        "error: no run `20200101T000000-0000` in this state directory\n"
    );
    let run_id = shared.run_id();
    let out = team.as_user(a, a, &["approve", &run_id, "og", "--state-dir", state]);
    assert_eq!(out.code, 2);
    assert_eq!(
        out.stderr,
        format!("error: run {run_id} has no step `og`; it waits for an approval at go\n")
    );
    let out = team.as_user(a, a, &["approve", &run_id, "after", "--state-dir", state]);
    assert_eq!(out.code, 2);
    assert_eq!(
        out.stderr,
        format!(
            "error: run {run_id} is not waiting for an approval at `after`; it waits for an approval at go\n"
        )
    );
    assert_eq!(shared.approve(&team, a, &[]).code, 0);
    assert_eq!(finish(run), 0, "{}", shared.output());
}

#[test]
fn multi_party_approval_keys_are_validated_with_locations() {
    let (diags, code) = validate(
        "runbook: 1\nname: v\nsteps:\n  - id: go\n    approval: { prompt: ok?, approvers: [alice, bob], min: 3 }\n",
    );
    assert_eq!(code, 1, "{diags:?}");
    assert_eq!(
        diags,
        vec![crate::support::diag(
            "min_approvers",
            5,
            60,
            "`min: 3` asks for more approvals than the 2 approvers listed"
        )]
    );
    let (diags, _) = validate(
        "runbook: 1\nname: v\nsteps:\n  - id: go\n    approval: { prompt: ok?, approvers: [alice], min: 0 }\n",
    );
    assert_eq!(diags.len(), 1, "{diags:?}");
    assert_eq!(diags[0].code, "runbook::out_of_range");
    assert_eq!((diags[0].line, diags[0].column), (5, 55));
    let (diags, _) = validate(
        "runbook: 1\nname: v\nsteps:\n  - id: go\n    approval: { prompt: ok?, aprovers: [alice], min: 1 }\n",
    );
    let codes: Vec<&str> = diags.iter().map(|d| d.code.as_str()).collect();
    assert_eq!(
        codes,
        ["runbook::unknown_key", "runbook::no_approvers"],
        "{diags:?}"
    );
    assert_eq!((diags[0].line, diags[0].column), (5, 30));
    let (diags, _) = validate(
        "runbook: 1\nname: v\nsteps:\n  - id: go\n    run: { program: \"true\" }\n    rollback: { approval: { prompt: undo?, approvers: [alice] } }\n",
    );
    assert_eq!(diags.len(), 1, "{diags:?}");
    assert_eq!(diags[0].code, "runbook::rollback_approvers");
    // Without approvers and min, an approval is the single-person prompt, as before.
    let (diags, code) =
        validate("runbook: 1\nname: v\nsteps:\n  - id: go\n    approval: { prompt: ok? }\n");
    assert_eq!((diags.len(), code), (0, 0), "{diags:?}");
}

#[test]
fn resumed_run_counts_the_votes_it_journaled_before_it_died() {
    let team = Team::new("abc");
    let (a, b, c) = (team.user('a'), team.user('b'), team.user('c'));
    let shared = Shared::new(&team, &runbook(&[a, b, c], 2, ""));
    let mut run = shared.start(&[]);
    shared.wait_for("approval_needed", 1);
    assert_eq!(shared.approve(&team, a, &["--reason", "ok"]).code, 0);
    shared.wait_for("approval_vote", 1);
    // The worst moment: killed outright while waiting, one vote counted.
    run.kill().expect("kill the run");
    run.wait().expect("reap the run");
    let run_id = shared.run_id();
    let out = shared.approve(&team, b, &[]);
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("is not running"), "{}", out.stderr);
    // The journal, not the vote file, is what counts: remove the file.
    std::fs::remove_file(
        shared
            .state
            .join(format!("runs/{run_id}/votes/go~{a}.json")),
    )
    .expect("remove a's vote file");

    let resumed = shared.start_command(&["resume", &run_id]);
    shared.wait_for("approval_needed", 2);
    let out = shared.approve(&team, a, &[]);
    assert_eq!(out.code, 2, "a voted already: {}", out.stderr);
    let runs = shared.runs();
    assert!(
        runs.stdout.contains(&format!(
            "1 of 2 (approved by {a}); may still approve: {b}, {c}"
        )),
        "{}",
        runs.stdout
    );
    assert_eq!(shared.approve(&team, b, &[]).code, 0);
    assert_eq!(finish(resumed), 0, "{}", shared.output());
    assert_eq!(shared.events("approved")[0]["by"], format!("{a}, {b}"));
    assert!(shared.root.join("after-ran").exists());
}

#[test]
fn a_vote_others_may_rewrite_or_cast_on_another_run_is_ignored() {
    let team = Team::new("abc");
    let [a, b, c] = team.users(['a', 'b', 'c']);
    let shared = Shared::new(&team, &runbook(&[a, b, c], 2, ", timeout: 4s"));
    let run = shared.start(&[]);
    shared.wait_for("approval_needed", 1);
    let run_id = shared.run_id();
    assert_eq!(shared.approve(&team, a, &[]).code, 0);
    let votes = shared.state.join(format!("runs/{run_id}/votes"));
    // b's vote, but group-writable: anyone in the group could have changed its decision.
    // c's vote, but cast on another run (a file linked from that run's directory).
    for (user, run, mode) in [
        (b, run_id.as_str(), "666"),
        (c, "20200101T000000-0000", "444"),
    ] {
        let file = votes.join(format!("go~{user}.json"));
        let vote = serde_json::json!({
            "run": run, "step": "go", "user": user, "decision": "approve",
            "at": "2026-11-26T10:00:00Z",
        });
        std::fs::write(&file, vote.to_string()).expect("write the vote");
        let path = file.to_str().expect("utf-8 path");
        must("chown", &[user, path]);
        must("chmod", &[mode, path]);
    }
    shared.wait_for("vote_ignored", 2);
    let ignored = shared.events("vote_ignored");
    let reason = |owner: &str| {
        ignored
            .iter()
            .find(|e| e["owner"] == owner)
            .map(|e| e["reason"].as_str().unwrap_or_default().to_owned())
            .expect("ignored")
    };
    assert_eq!(
        reason(b),
        "others than its owner may write it, so it may not say what its owner cast"
    );
    assert_eq!(reason(c), "not a readable vote on this step of this run");
    // Only a's vote counted: the wait times out.
    assert_eq!(finish(run), 1, "{}", shared.output());
    assert_eq!(shared.events("approval_vote").len(), 1);
    assert!(shared.events("approved").is_empty());
}

#[test]
fn a_failure_elsewhere_ends_the_wait_for_votes() {
    // No timeout: without this the run would wait for votes forever before rolling back.
    let yaml = "runbook: 1\nname: parallel\nsteps:\n  - id: go\n    approval: { prompt: ok?, approvers: [alice, bob] }\n  - id: boom\n    run: { shell: sh, script: \"sleep 0.5; exit 7\" }\n";
    let t = crate::support::Test::new().file("rb.yaml", yaml);
    let out = crate::support::Test::in_dir(t.path())
        .args(["run", "rb.yaml", "--output", "json"])
        .run();
    assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
    let events = out.events();
    let go = crate::support::events_of(&events, "step_finished")
        .into_iter()
        .find(|e| e["step"] == "go")
        .expect("go finished");
    assert_eq!(
        go["message"],
        "the run stopped while waiting for the approvals"
    );
}

#[test]
fn a_huge_or_fifo_vote_file_is_ignored_and_the_wait_goes_on() {
    let team = Team::new("ab");
    let [a, b] = team.users(['a', 'b']);
    let shared = Shared::new(&team, &runbook(&[a, b], 1, ", timeout: 30s"));
    let run = shared.start(&[]);
    shared.wait_for("approval_needed", 1);
    let votes = shared.state.join(format!("runs/{}/votes", shared.run_id()));
    // 100 MiB claiming to be a's vote, and a FIFO that would block a reader forever.
    let huge = std::fs::File::create(votes.join(format!("go~{a}.json"))).expect("create");
    huge.set_len(100 << 20).expect("grow");
    must(
        "mkfifo",
        &[votes.join("go~zz.json").to_str().expect("utf-8 path")],
    );
    shared.wait_for("vote_ignored", 2);
    // b's vote still counts: the run neither hung nor ran out of memory.
    assert_eq!(shared.approve(&team, b, &[]).code, 0);
    assert_eq!(finish(run), 0, "{}", shared.output());
    assert_eq!(shared.events("approved")[0]["by"], *b);
}

/// The evidence report of a two-of-three approval, rendered in headless Chromium: each vote
/// with its user, decision, time and hostile reason as text.
#[test]
fn html_report_lists_every_vote_with_user_time_and_reason() {
    let team = Team::new("abc");
    let [a, b, c] = team.users(['a', 'b', 'c']);
    let shared = Shared::new(&team, &runbook(&[a, b, c], 2, ""));
    let run = shared.start(&[]);
    shared.wait_for("approval_needed", 1);
    let out = shared.approve(
        &team,
        b,
        &["--reason", "<script>x</script> standby in sync"],
    );
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    shared.wait_for("approval_vote", 1);
    let out = shared.approve(&team, c, &[]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert_eq!(finish(run), 0, "{}", shared.output());

    let show = crate::support::Test::new()
        .args(["show", "--last", "--format", "html", "--state-dir"])
        .args([shared.state.to_str().expect("utf-8 path")])
        .run();
    assert_eq!(show.code, 0, "{}", show.stderr);
    let page = shared.root.join("evidence.html");
    std::fs::write(&page, &show.stdout).expect("write page");
    let dom = crate::html_report::rendered(&page);
    let votes = shared.events("approval_vote");
    let at = |i: usize| votes[i]["voted_at"].as_str().expect("voted_at").to_owned();
    assert!(
        dom.contains(&format!(
            "<tr class=\"vote\"><td>{b}</td><td>approved</td><td>{}</td><td>&lt;script&gt;x&lt;/script&gt; standby in sync</td></tr><tr class=\"vote\"><td>{c}</td><td>approved</td><td>{}</td><td></td></tr>",
            at(0),
            at(1)
        )),
        "{dom}"
    );
    assert!(
        dom.contains(&format!(
            "<li class=\"approval\" data-step=\"go\"><code>go</code>: approved by {b}, {c} (multi-party approval)"
        )),
        "{dom}"
    );
    assert!(!dom.contains("<script"));
}
