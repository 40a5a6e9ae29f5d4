//! The Lync host of the rehearsal estate: a real `sshd` (see `sshd`) whose `powershell` is the
//! stand-in `tests/rehearsal/powershell`, so a runbook's `target: lync` steps travel the way
//! they do to a Windows OpenSSH server: runbook's PowerShell bootstrap on stdin, over ssh.
//! The stand-in accepts only what Microsoft's cmdlet reference has and keeps the Lync state
//! (pools, active servers, topology, mirrors, Central Management Store) in a JSON file; its
//! shape is described in tests/rehearsal/README.md.
//!
//! Other tests use [`Lync`]: `RUNBOOK_SSH_CONFIG` = [`Lync::ssh_config`] maps
//! `lync-admin.contoso.com` to it, with [`Lync::admin`] as the login; `REHEARSAL_FAIL_ON` set on
//! the runbook process reaches the stand-in (ssh `SendEnv`), to inject failures. The tests here
//! drive the stand-in through the real binary and the real sshd.

use std::path::{Path, PathBuf};

use crate::sshd::Estate;
use crate::support::{Output, Test, events_of, os_user, repo};

/// The Lync server or admin workstation the runbooks' `lync_server` names.
pub const HOST: &str = "lync-admin.contoso.com";

/// A running Lync host: its sshd, its state file and the log of the scripts it ran.
pub struct Lync {
    dir: PathBuf,
    _sshd: Estate,
}

impl Lync {
    /// Starts the host with `state` (the Lync state file's content) in `dir`, which holds the
    /// state file, the script log and the ssh client config.
    pub fn start(dir: &Path, state: serde_json::Value) -> Self {
        let bin = dir.join("lync-bin");
        std::fs::create_dir_all(&bin).expect("create the Lync bin dir");
        let link = bin.join("powershell");
        if !link.exists() {
            std::os::unix::fs::symlink(repo().join("tests/rehearsal/powershell"), &link)
                .expect("link the PowerShell stand-in");
        }
        let lync = |name: &str| dir.join(name).display().to_string();
        std::fs::write(lync("lync.json"), state.to_string()).expect("write the Lync state");
        // What a session on the host sees: the stand-in first on PATH, where its state and log
        // are. REHEARSAL_FAIL_ON comes from the client (the runbook process's environment).
        let path = format!(
            "{}:{}",
            bin.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let sshd = Estate::with_sshd_config(
            1,
            &format!(
                "SetEnv \"PATH={path}\" \"LYNC_STATE={}\" \"REHEARSAL_LOG={}\" \"SQL_STATE_HINT={}\"\nAcceptEnv REHEARSAL_FAIL_ON\n",
                lync("lync.json"),
                lync("powershell.log"),
                lync("sql_state_hint.json"),
            ),
        );
        std::fs::write(
            lync("lync_ssh_config"),
            format!(
                "Host {HOST}\n  HostName 127.0.0.1\n  Port {}\n  IdentityFile {}\n  IdentitiesOnly yes\n  UserKnownHostsFile {}\n  GlobalKnownHostsFile /dev/null\n  SendEnv REHEARSAL_FAIL_ON\n  LogLevel ERROR\n",
                sshd.hosts[0].port,
                sshd.client_key().display(),
                sshd.known_hosts().display(),
            ),
        )
        .expect("write the ssh config");
        Self {
            dir: dir.to_path_buf(),
            _sshd: sshd,
        }
    }

    /// The ssh config for `RUNBOOK_SSH_CONFIG`: `lync-admin.contoso.com` is this host.
    pub fn ssh_config(&self) -> PathBuf {
        self.dir.join("lync_ssh_config")
    }

    /// The account to log in as (`lync_admin`): the user running the tests.
    pub fn admin() -> String {
        os_user()
    }

    /// The `lync_server` and `lync_admin` params, as lines of a params file.
    pub fn params() -> String {
        format!("lync_server: {HOST}\nlync_admin: {}\n", Self::admin())
    }

    /// The Lync state now.
    pub fn state(&self) -> serde_json::Value {
        let text =
            std::fs::read_to_string(self.dir.join("lync.json")).expect("read the Lync state");
        serde_json::from_str(&text).expect("the Lync state is JSON")
    }

    /// Every script the host ran, in order (as the step wrote it, decoded from the bootstrap).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("powershell.log")).unwrap_or_default()
    }

    /// Where the SQL side may write `{"<sql fqdn>": {"<database>": "<state_desc>"}}` for
    /// Test-CsPersistentChatMessage to read (absent: it reads only the active servers).
    pub fn sql_state_hint(&self) -> PathBuf {
        self.dir.join("sql_state_hint.json")
    }
}

/// The Lync estate of `runbooks/persistent-chat/params.example.yaml` before a failover: pool
/// Normal on its primary store, the primary data centre's servers active, the topology
/// defining a mirror for both stores, `mgc` of the primary store mirrored.
pub fn contoso() -> serde_json::Value {
    serde_json::json!({
        "pools": {
            "pchat.contoso.com": {
                "state": "Normal",
                "servers": ["pchat-a1.contoso.com", "pchat-a2.contoso.com", "pchat-b1.contoso.com", "pchat-b2.contoso.com"],
                "active_servers": ["pchat-a1.contoso.com", "pchat-a2.contoso.com"],
                "stores": { "Normal": "sql-a.contoso.com", "FailedOver": "sql-b.contoso.com" },
                "database": "mgc"
            }
        },
        "topology": {
            "stores": {
                "sql-a.contoso.com": { "mirror": "sql-a-mirror.contoso.com", "databases": ["PersistentChat", "PersistentChatCompliance"] },
                "sql-b.contoso.com": { "mirror": "sql-b-mirror.contoso.com", "databases": ["PersistentChat", "PersistentChatCompliance"] }
            }
        },
        "mirrors": [
            { "database_type": "PersistentChat", "sql": "sql-a.contoso.com", "mirror": "sql-a-mirror.contoso.com", "file_share": "\\\\fs1.contoso.com\\pchat-mirror" }
        ],
        "mirror_holds": { "sql-a-mirror.contoso.com": ["PersistentChat"] },
        "cms": { "active_master": "lync-fe-a.contoso.com", "writable": true }
    })
}

// ---- the stand-in, through the real binary and the real sshd ----

/// A step on `target: lync` running `script` (an id and its script).
fn step(id: &str, script: &str) -> (String, String) {
    (id.to_owned(), script.to_owned())
}

/// A runbook of `steps` run one after the other (each carries on when one fails), as the
/// shipped runbooks reach their Lync host.
fn book(steps: &[(String, String)]) -> String {
    let mut yaml = String::from(
        "runbook: 1\nname: lync\nparams:\n  lync_server: { type: string }\n  lync_admin: { type: string }\ntargets:\n  lync: { ssh: \"{{ params.lync_admin }}@{{ params.lync_server }}\", shell: powershell }\ndefaults:\n  timeout: 2m\nsteps:\n",
    );
    for (i, (id, script)) in steps.iter().enumerate() {
        yaml.push_str(&format!("  - id: {id}\n"));
        if i > 0 {
            yaml.push_str(&format!("    needs: [{}]\n", steps[i - 1].0));
        }
        yaml.push_str(
            "    target: lync\n    continue_on_failure: true\n    run:\n      shell: powershell\n      script: |\n",
        );
        for line in script.lines() {
            yaml.push_str(&format!("        {line}\n"));
        }
    }
    yaml
}

/// `runbook run` of `steps` against `lync`, with `env` on the runbook process.
fn run(lync: &Lync, steps: &[(String, String)], env: &[(&str, &str)]) -> Output {
    run_book(lync, book(steps), env)
}

/// `runbook run` of the runbook `yaml` against `lync`, with `env` on the runbook process.
fn run_book(lync: &Lync, yaml: String, env: &[(&str, &str)]) -> Output {
    let mut t = Test::new()
        .file("lync.yaml", yaml)
        .file("params.yaml", Lync::params())
        .env(
            "RUNBOOK_SSH_CONFIG",
            &lync.ssh_config().display().to_string(),
        )
        .args([
            "run",
            "lync.yaml",
            "--params",
            "params.yaml",
            "--output",
            "json",
        ]);
    for (k, v) in env {
        t = t.env(k, v);
    }
    t.run()
}

/// The `step_finished` event of `id`.
fn finished(out: &Output, id: &str) -> serde_json::Value {
    events_of(&out.events(), "step_finished")
        .into_iter()
        .find(|e| e["step"] == id)
        .cloned()
        .unwrap_or_else(|| panic!("no step_finished for {id}:\n{}\n{}", out.stdout, out.stderr))
}

fn text(event: &serde_json::Value, stream: &str) -> String {
    event[stream].as_str().unwrap_or_default().to_owned()
}

/// Asserts that `id` failed with exit 1 and PowerShell's error `message` on stderr, and that
/// the statement after the failing one did not run (`$ErrorActionPreference='Stop'`).
fn failed_with(out: &Output, id: &str, message: &str) -> String {
    let e = finished(out, id);
    assert_eq!(e["status"], "failed", "{e}");
    assert_eq!(e["exit_code"], 1, "{e}");
    let stderr = text(&e, "stderr");
    assert!(stderr.contains(message), "{message}\nnot in:\n{stderr}");
    assert!(!text(&e, "stdout").contains("not reached"), "{e}");
    stderr
}

fn started(state: serde_json::Value) -> (tempfile::TempDir, Lync) {
    let dir = tempfile::tempdir().expect("temp dir");
    let lync = Lync::start(dir.path(), state);
    (dir, lync)
}

/// `steps` run on a host started with `state`.
fn run_on(
    state: serde_json::Value,
    steps: &[(String, String)],
) -> (tempfile::TempDir, Lync, Output) {
    let (dir, lync) = started(state);
    let out = run(&lync, steps, &[]);
    (dir, lync, out)
}

/// Runs `steps` on a host started with `state`, asserts that each step of `failures` failed
/// with its message (see [`failed_with`]) and that the Lync state did not change; returns
/// the stderr of each failure.
fn refused(
    state: serde_json::Value,
    steps: &[(String, String)],
    failures: &[(&str, &str)],
) -> Vec<String> {
    let (_dir, lync, out) = run_on(state.clone(), steps);
    let stderrs = failures
        .iter()
        .map(|(id, message)| failed_with(&out, id, message))
        .collect();
    assert_eq!(lync.state(), state);
    stderrs
}

#[test]
fn a_cmdlet_microsoft_does_not_have_fails_with_powershells_words() {
    let stderrs = refused(
        contoso(),
        &[step(
            "post-check",
            "Import-Module Lync\nGet-CsPersistentChatActiveServer -Identity 'PersistentChatServer:pchat.contoso.com'\nWrite-Output 'not reached'",
        )],
        &[(
            "post-check",
            "Get-CsPersistentChatActiveServer : The term 'Get-CsPersistentChatActiveServer' is not recognized as the name of a cmdlet, function, script file, or operable program.",
        )],
    );
    let stderr = &stderrs[0];
    // Where, as PowerShell says it: the line of the script block and the name underlined.
    assert!(
        stderr.contains("At line:2 char:1\n+ Get-CsPersistentChatActiveServer -Identity 'PersistentChatServer:pchat.contoso.com'\n+ ~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~\n    + CategoryInfo          : ObjectNotFound: (Get-CsPersistentChatActiveServer:String) [], CommandNotFoundException\n"),
        "{stderr}"
    );
}

/// Regression: `-Command -` runs its input like a prompt; when a terminating error abandoned
/// the bootstrap line before its `exit`, PowerShell read on from the stdin runbook holds open,
/// and the step hung until its timeout instead of failing with the error.
#[test]
fn a_terminating_error_on_a_powershell_target_fails_the_step_at_once() {
    let (_dir, lync) = started(contoso());
    let started = std::time::Instant::now();
    let out = run(
        &lync,
        &[step(
            "fails",
            "Write-Output 'before'\nthrow 'stop here'\nWrite-Output 'not reached'",
        )],
        &[],
    );
    let e = finished(&out, "fails");
    assert_eq!(e["status"], "failed", "{e}");
    assert_eq!(e["exit_code"], 1, "not a timeout: {e}");
    assert_eq!(text(&e, "stdout"), "before\n");
    assert!(
        text(&e, "stderr").starts_with("stop here\nAt line:2 char:1\n"),
        "{e}"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(60));
}

#[test]
fn a_parameter_the_cmdlet_does_not_take_fails_the_step() {
    let (_dir, lync, out) = run_on(
        contoso(),
        &[step(
            "install-mirror",
            "Import-Module Lync\nInstall-CsMirrorDatabase -DatabaseType PersistentChat -SqlServerFqdn 'sql-b.contoso.com' -MirrorSqlServerFqdn 'sql-b-mirror.contoso.com' -FileShare '\\\\fs1.contoso.com\\pchat-mirror' -Confirm:$false\nWrite-Output 'not reached'",
        )],
    );
    let stderr = failed_with(
        &out,
        "install-mirror",
        "Install-CsMirrorDatabase : A parameter cannot be found that matches parameter name 'MirrorSqlServerFqdn'.",
    );
    assert!(
        stderr.contains("FullyQualifiedErrorId : NamedParameterNotFound,Install-CsMirrorDatabase"),
        "{stderr}"
    );
    assert_eq!(lync.state(), contoso(), "nothing was installed");
}

#[test]
fn a_value_outside_the_validateset_fails_the_step_with_lync_2013s_values() {
    refused(
        contoso(),
        &[
            step(
                "pool-state",
                "Set-CsPersistentChatState -Identity 'service:pchat.contoso.com' -PoolState Maintenance -Confirm:$false\nWrite-Output 'not reached'",
            ),
            // Skype for Business Server 2015 added PersistentChat to this cmdlet's set; Lync
            // Server 2013's set does not have it.
            step(
                "mirror-state",
                "Get-CsDatabaseMirrorState -PoolFqdn 'pchat.contoso.com' -DatabaseType PersistentChat\nWrite-Output 'not reached'",
            ),
        ],
        &[
            (
                "pool-state",
                "Set-CsPersistentChatState : Cannot validate argument on parameter 'PoolState'. The argument \"Maintenance\" does not belong to the set \"Normal,FailedOver\" specified by the ValidateSet attribute.",
            ),
            (
                "mirror-state",
                "Get-CsDatabaseMirrorState : Cannot validate argument on parameter 'DatabaseType'. The argument \"PersistentChat\" does not belong to the set \"App,Archiving,CMS,Monitoring,Provision,User\"",
            ),
        ],
    );
}

#[test]
fn a_missing_mandatory_parameter_fails_since_noninteractive_cannot_prompt() {
    refused(
        contoso(),
        &[step(
            "install-mirror",
            "Install-CsMirrorDatabase -DatabaseType PersistentChat -SqlServerFqdn 'sql-b.contoso.com' -Confirm:$false\nWrite-Output 'not reached'",
        )],
        &[(
            "install-mirror",
            "Install-CsMirrorDatabase : Cannot process command because of one or more missing mandatory parameters: FileShare.",
        )],
    );
}

#[test]
fn a_module_lync_server_2013_does_not_have_is_not_imported() {
    let (_dir, _lync, out) = run_on(
        contoso(),
        &[
            step(
                "later-name",
                "Import-Module SkypeForBusiness\nWrite-Output 'not reached'",
            ),
            step("lync", "Import-Module Lync\nWrite-Output 'imported'"),
        ],
    );
    failed_with(
        &out,
        "later-name",
        "Import-Module : The specified module 'SkypeForBusiness' was not loaded because no valid module file was found in any module directory.",
    );
    let lync_step = finished(&out, "lync");
    assert_eq!(lync_step["status"], "succeeded", "{lync_step}");
    assert_eq!(text(&lync_step, "stdout"), "imported\n");
}

#[test]
fn whatif_says_what_it_would_do_and_changes_nothing() {
    let (_dir, lync, out) = run_on(
        contoso(),
        &[step(
            "rehearse",
            "Import-Module Lync\nSet-CsPersistentChatState -Identity 'service:pchat.contoso.com' -PoolState FailedOver -WhatIf\nSet-CsPersistentChatActiveServer -Identity 'PersistentChatServer:pchat.contoso.com' -ActiveServers $null -WhatIf\nSet-CsPersistentChatActiveServer -Identity 'PersistentChatServer:pchat.contoso.com' -ActiveServers @{Add='pchat-b1.contoso.com','pchat-b2.contoso.com'} -WhatIf\nInstall-CsMirrorDatabase -DatabaseType PersistentChat -SqlServerFqdn 'sql-b.contoso.com' -FileShare '\\\\fs1.contoso.com\\pchat-mirror' -DropExistingDatabasesOnMirror -WhatIf",
        )],
    );
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert_eq!(
        text(&finished(&out, "rehearse"), "stdout"),
        "What if: Performing the operation \"Set-CsPersistentChatState\" on target \"service:pchat.contoso.com\".\n\
         What if: Performing the operation \"Set-CsPersistentChatActiveServer\" on target \"PersistentChatServer:pchat.contoso.com\".\n\
         What if: Performing the operation \"Set-CsPersistentChatActiveServer\" on target \"PersistentChatServer:pchat.contoso.com\".\n\
         What if: Performing the operation \"Install-CsMirrorDatabase\" on target \"PersistentChat on sql-b.contoso.com, mirrored to sql-b-mirror.contoso.com\".\n"
    );
    assert_eq!(lync.state(), contoso());
}

#[test]
fn whatif_is_refused_by_a_cmdlet_without_shouldprocess_and_still_checks_identities() {
    refused(
        contoso(),
        &[
            step(
                "get-whatif",
                "(Get-CsPersistentChatState -Identity 'service:pchat.contoso.com' -WhatIf).PoolState",
            ),
            step(
                "other-pool",
                "Set-CsPersistentChatState -Identity 'service:pchat-x.contoso.com' -PoolState FailedOver -WhatIf",
            ),
            step(
                "other-server",
                "Set-CsPersistentChatActiveServer -Identity 'PersistentChatServer:pchat.contoso.com' -ActiveServers @{Add='pchat-c1.contoso.com'} -WhatIf",
            ),
        ],
        &[
            (
                "get-whatif",
                "Get-CsPersistentChatState : A parameter cannot be found that matches parameter name 'WhatIf'.",
            ),
            (
                "other-pool",
                "Set-CsPersistentChatState : Cannot find a Persistent Chat pool with the identity \"service:pchat-x.contoso.com\"",
            ),
            (
                "other-server",
                "Set-CsPersistentChatActiveServer : \"pchat-c1.contoso.com\" is not a Persistent Chat Server of pool \"pchat.contoso.com\"",
            ),
        ],
    );
}

#[test]
fn a_failover_changes_the_lync_state_as_modelled() {
    let (_dir, lync, out) = run_on(
        contoso(),
        &[
            step(
                "before",
                "Import-Module Lync\n(Get-CsPersistentChatState -Identity 'service:pchat.contoso.com').PoolState\n(Get-CsManagementStoreReplicationStatus -CentralManagementStoreStatus).ActiveMasterFqdn\n(Get-CsService -PersistentChatServer -PoolFqdn 'pchat.contoso.com').ActiveServers -join ','",
            ),
            step(
                "set-pool-failed-over",
                "Import-Module Lync\nSet-CsPersistentChatState -Identity 'service:pchat.contoso.com' -PoolState FailedOver -Confirm:$false",
            ),
            step(
                "activate-backup-servers",
                "Import-Module Lync\nSet-CsPersistentChatActiveServer -Identity 'PersistentChatServer:pchat.contoso.com' -ActiveServers $null -Confirm:$false\nSet-CsPersistentChatActiveServer -Identity 'PersistentChatServer:pchat.contoso.com' -ActiveServers @{Add='pchat-b1.contoso.com','pchat-b2.contoso.com'} -Confirm:$false",
            ),
            step(
                "install-mirror",
                "Import-Module Lync\nInstall-CsMirrorDatabase -DatabaseType PersistentChat -SqlServerFqdn 'sql-b.contoso.com' -FileShare '\\\\fs1.contoso.com\\pchat-mirror' -DropExistingDatabasesOnMirror -Confirm:$false",
            ),
            step(
                "after",
                "Import-Module Lync\n(Get-CsPersistentChatState -Identity 'service:pchat.contoso.com').PoolState\n(Get-CsService -PersistentChatServer -PoolFqdn 'pchat.contoso.com').ActiveServers -join ','\n(Test-CsPersistentChatMessage -TargetFqdn 'pchat.contoso.com').Result",
            ),
        ],
    );
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert_eq!(
        text(&finished(&out, "before"), "stdout"),
        "Normal\nlync-fe-a.contoso.com\npchat-a1.contoso.com,pchat-a2.contoso.com\n"
    );
    assert_eq!(
        text(&finished(&out, "after"), "stdout"),
        "FailedOver\npchat-b1.contoso.com,pchat-b2.contoso.com\nSuccess\n"
    );
    let mut expected = contoso();
    expected["pools"]["pchat.contoso.com"]["state"] = "FailedOver".into();
    expected["pools"]["pchat.contoso.com"]["active_servers"] =
        serde_json::json!(["pchat-b1.contoso.com", "pchat-b2.contoso.com"]);
    // The install is written where the SQL side of the estate reads it.
    expected["mirrors"]
        .as_array_mut()
        .expect("mirrors")
        .push(serde_json::json!({ "database_type": "PersistentChat", "sql": "sql-b.contoso.com", "mirror": "sql-b-mirror.contoso.com", "file_share": "\\\\fs1.contoso.com\\pchat-mirror" }));
    expected["mirror_holds"]["sql-b-mirror.contoso.com"] = serde_json::json!(["PersistentChat"]);
    assert_eq!(lync.state(), expected);
    // Every script ran on the host, as the step wrote it.
    let log = lync.log();
    assert!(
        log.contains("Set-CsPersistentChatState -Identity 'service:pchat.contoso.com' -PoolState FailedOver -Confirm:$false\n"),
        "{log}"
    );
    assert_eq!(log.matches("Import-Module Lync\n").count(), 5, "{log}");
}

#[test]
fn a_test_message_fails_without_active_servers_or_when_the_sql_side_says_the_database_is_offline() {
    let mut state = contoso();
    state["pools"]["pchat.contoso.com"]["active_servers"] = serde_json::json!([]);
    let (_dir, lync) = started(state);
    let probe = || {
        step(
            "test-chat",
            "(Test-CsPersistentChatMessage -TargetFqdn 'pchat.contoso.com').Result",
        )
    };
    let out = run(&lync, &[probe()], &[]);
    assert_eq!(text(&finished(&out, "test-chat"), "stdout"), "Failure\n");

    let (_dir, lync) = started(contoso());
    std::fs::write(
        lync.sql_state_hint(),
        r#"{"sql-a.contoso.com": {"mgc": "RESTORING"}}"#,
    )
    .expect("hint");
    let out = run(&lync, &[probe()], &[]);
    assert_eq!(text(&finished(&out, "test-chat"), "stdout"), "Failure\n");
    std::fs::write(
        lync.sql_state_hint(),
        r#"{"sql-a.contoso.com": {"mgc": "ONLINE"}}"#,
    )
    .expect("hint");
    let out = run(&lync, &[probe()], &[]);
    assert_eq!(text(&finished(&out, "test-chat"), "stdout"), "Success\n");
}

#[test]
fn a_mirror_is_installed_only_where_the_topology_defines_one_and_the_mirror_is_free() {
    let mut state = contoso();
    state["topology"]["stores"]["sql-b.contoso.com"]
        .as_object_mut()
        .expect("store")
        .remove("mirror");
    let (_dir, lync) = started(state.clone());
    let install = |id: &str, sql: &str, drop: &str| {
        step(
            id,
            &format!(
                "Install-CsMirrorDatabase -DatabaseType PersistentChat -SqlServerFqdn '{sql}' -FileShare '\\\\fs1.contoso.com\\pchat-mirror'{drop} -Confirm:$false\nWrite-Output 'not reached'"
            ),
        )
    };
    let out = run(
        &lync,
        &[
            install(
                "no-mirror",
                "sql-b.contoso.com",
                " -DropExistingDatabasesOnMirror",
            ),
            install(
                "no-store",
                "sql-c.contoso.com",
                " -DropExistingDatabasesOnMirror",
            ),
            install("mirror-holds-it", "sql-a.contoso.com", ""),
        ],
        &[],
    );
    failed_with(
        &out,
        "no-mirror",
        "Install-CsMirrorDatabase : The published topology defines no mirror for the store \"sql-b.contoso.com\"",
    );
    failed_with(
        &out,
        "no-store",
        "Install-CsMirrorDatabase : The published topology defines no PersistentChat store on \"sql-c.contoso.com\".",
    );
    failed_with(
        &out,
        "mirror-holds-it",
        "Install-CsMirrorDatabase : The mirror \"sql-a-mirror.contoso.com\" already holds the PersistentChat database: use -DropExistingDatabasesOnMirror to replace it.",
    );
    assert_eq!(lync.state(), state);

    // Uninstalled without dropping, the mirror still holds the database; dropped, it is free.
    let out = run(
        &lync,
        &[
            step(
                "uninstall",
                "Uninstall-CsMirrorDatabase -DatabaseType PersistentChat -SqlServerFqdn 'sql-a.contoso.com' -Confirm:$false",
            ),
            install("still-held", "sql-a.contoso.com", ""),
            step(
                "drop",
                "Install-CsMirrorDatabase -DatabaseType PersistentChat -SqlServerFqdn 'sql-a.contoso.com' -FileShare '\\\\fs1.contoso.com\\pchat-mirror' -Confirm:$false -DropExistingDatabasesOnMirror\nUninstall-CsMirrorDatabase -DatabaseType PersistentChat -SqlServerFqdn 'sql-a.contoso.com' -DropExistingDatabasesOnMirror -Confirm:$false",
            ),
            install("free", "sql-a.contoso.com", ""),
        ],
        &[],
    );
    assert_eq!(finished(&out, "uninstall")["status"], "succeeded");
    failed_with(
        &out,
        "still-held",
        "already holds the PersistentChat database",
    );
    assert_eq!(finished(&out, "drop")["status"], "succeeded");
    assert_eq!(finished(&out, "free")["status"], "succeeded");
    assert_eq!(
        lync.state()["mirrors"],
        serde_json::json!([{ "database_type": "PersistentChat", "sql": "sql-a.contoso.com", "mirror": "sql-a-mirror.contoso.com", "file_share": "\\\\fs1.contoso.com\\pchat-mirror" }])
    );
}

#[test]
fn a_central_management_store_that_cannot_be_written_fails_every_change() {
    let mut state = contoso();
    state["cms"]["writable"] = false.into();
    refused(
        state,
        &[step(
            "set-pool-failed-over",
            "Set-CsPersistentChatState -Identity 'service:pchat.contoso.com' -PoolState FailedOver -Confirm:$false",
        )],
        &[(
            "set-pool-failed-over",
            "Set-CsPersistentChatState : Cannot write to the Central Management Store: its master \"lync-fe-a.contoso.com\" cannot be reached.",
        )],
    );
}

#[test]
fn a_steps_env_and_cwd_reach_the_script_through_the_bootstrap() {
    let (dir, lync) = started(contoso());
    let here = dir.path().join("here");
    std::fs::create_dir_all(&here).expect("dir");
    std::fs::write(here.join("marker"), "").expect("marker");
    let book = book(&[step(
        "with-env",
        "(Get-CsPersistentChatState -Identity \"service:$env:POOL\").PoolState\nTest-Path -Path 'marker'",
    )])
    .replace(
        "    run:\n      shell: powershell\n",
        &format!(
            "    env: {{ POOL: pchat.contoso.com }}\n    run:\n      shell: powershell\n      cwd: '{}'\n",
            here.display()
        ),
    );
    let out = run_book(&lync, book, &[]);
    let e = finished(&out, "with-env");
    assert_eq!(e["status"], "succeeded", "{e}");
    assert_eq!(text(&e, "stdout"), "Normal\nTrue\n");
}

#[test]
fn rehearsal_fail_on_fails_the_script_that_contains_the_text_before_it_runs() {
    let (_dir, lync) = started(contoso());
    let out = run(
        &lync,
        &[
            step(
                "set-pool-failed-over",
                "Set-CsPersistentChatState -Identity 'service:pchat.contoso.com' -PoolState FailedOver -Confirm:$false",
            ),
            step(
                "activate-backup-servers",
                "Set-CsPersistentChatActiveServer -Identity 'PersistentChatServer:pchat.contoso.com' -ActiveServers $null -Confirm:$false",
            ),
        ],
        &[("REHEARSAL_FAIL_ON", "-PoolState FailedOver")],
    );
    let failed = finished(&out, "set-pool-failed-over");
    assert_eq!(failed["status"], "failed", "{failed}");
    assert_eq!(failed["exit_code"], 99, "{failed}");
    assert_eq!(
        text(&failed, "stderr"),
        "stand-in: failure injected (-PoolState FailedOver)\n"
    );
    assert_eq!(
        finished(&out, "activate-backup-servers")["status"],
        "succeeded"
    );
    let mut expected = contoso();
    expected["pools"]["pchat.contoso.com"]["active_servers"] = serde_json::json!([]);
    assert_eq!(lync.state(), expected, "only the other script ran");
}

#[test]
fn a_cmdlet_the_rehearsal_does_not_model_stops_the_script_with_exit_2() {
    let (_dir, _lync, out) = run_on(
        contoso(),
        &[
            step(
                "stop",
                "Stop-Service -Name 'RTCPERSISTENTCHAT'\nWrite-Output 'not reached'",
            ),
            step(
                "stop-whatif",
                "Stop-Service -Name 'RTCPERSISTENTCHAT' -WhatIf",
            ),
        ],
    );
    let stop = finished(&out, "stop");
    assert_eq!(stop["exit_code"], 2, "{stop}");
    assert_eq!(
        text(&stop, "stderr"),
        "stand-in: Stop-Service exists in Microsoft's reference but this rehearsal does not model it\n"
    );
    assert_eq!(text(&stop, "stdout"), "");
    assert_eq!(finished(&out, "stop-whatif")["status"], "succeeded");
}

/// Everything the shipped runbooks send to `target: lync` (their actions and rollbacks as
/// `runbook plan` renders them with the example params, both failover modes) runs on the
/// stand-in as it is.
#[test]
fn every_lync_script_the_shipped_runbooks_send_runs_on_the_stand_in() {
    let example = repo().join("runbooks/persistent-chat/params.example.yaml");
    let example = std::fs::read_to_string(example).expect("example params");
    let mut scripts: Vec<String> = Vec::new();
    for (book, extra) in [
        ("failover.yaml", "primary_reachable: false\n"),
        ("failover.yaml", "primary_reachable: true\n"),
        ("failback.yaml", ""),
    ] {
        let params: String = example
            .lines()
            .filter(|l| !l.starts_with("primary_reachable"))
            .map(|l| format!("{l}\n"))
            .collect();
        let t = Test::new()
            .file("params.yaml", format!("{params}{extra}"))
            .args([
                "plan",
                repo()
                    .join("runbooks/persistent-chat")
                    .join(book)
                    .to_str()
                    .expect("path"),
                "--params",
                "params.yaml",
                "--format",
                "json",
            ]);
        let out = t.run();
        assert_eq!(out.code, 0, "{book}: {}", out.stderr);
        let plan = out.json();
        for s in plan["steps"].as_array().expect("steps") {
            for action in [&s["action"], &s["rollback"]] {
                if action["target"]["target"] == "lync" {
                    let script = action["script"].as_str().expect("script").to_owned();
                    // A rollback of a loop item is rendered per item at run time only.
                    if !script.contains("{%") && !scripts.contains(&script) {
                        scripts.push(script);
                    }
                }
            }
        }
    }
    assert!(scripts.len() >= 12, "{scripts:#?}");
    for script in &scripts {
        assert!(script.starts_with("Import-Module Lync\n"), "{script}");
    }
    let (_dir, lync) = started(contoso());
    let steps: Vec<(String, String)> = scripts
        .iter()
        .enumerate()
        .map(|(i, s)| step(&format!("s{i}"), s))
        .collect();
    let out = run(&lync, &steps, &[]);
    for (i, script) in scripts.iter().enumerate() {
        let e = finished(&out, &format!("s{i}"));
        assert_eq!(e["status"], "succeeded", "{script}\n{e}");
    }
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        lync.log().matches("Import-Module Lync\n").count(),
        scripts.len()
    );
}
