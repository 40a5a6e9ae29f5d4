//! The runbook as a whole: header, params, secrets, connections, defaults and steps.

use indexmap::IndexMap;
use schemars::JsonSchema;

use super::{Duration, Param, Retry, Secret, Shell, Spanned, Step};
use crate::yaml::Span;

/// A runbook file, format version 1.
#[derive(Clone, Debug, PartialEq, JsonSchema)]
#[schemars(deny_unknown_fields, title = "runbook")]
pub struct Runbook {
    /// The format version: always `1`.
    #[serde(rename = "runbook")]
    #[schemars(range(min = 1, max = 1))]
    pub version: Spanned<i64>,
    /// A short name: letters, digits, `_` and `-`.
    pub name: Spanned<String>,
    pub description: Option<Spanned<String>>,
    /// A limit on the whole run.
    pub timeout: Option<Spanned<Duration>>,
    /// The recovery time objective: how long the outage may last, from the start of the run
    /// to the end of the `service_restored_at` step. The plan warns when its estimate exceeds it.
    pub rto: Option<Spanned<Duration>>,
    /// The step whose end ends the outage (default: the last step in declaration order).
    pub service_restored_at: Option<Spanned<String>>,
    #[serde(default)]
    pub params: IndexMap<String, Param>,
    #[serde(default)]
    pub secrets: IndexMap<String, Secret>,
    #[serde(default)]
    pub connections: IndexMap<String, Connection>,
    /// Machines steps run on, reached through the system `ssh` client.
    #[serde(default)]
    pub targets: IndexMap<String, Target>,
    #[serde(default)]
    pub defaults: Defaults,
    pub env_file: Option<EnvFile>,
    pub steps: Vec<Step>,
    /// Steps that run after the run ended, whatever its outcome (after the rollback, if
    /// any); `needs` names only other finally steps. Their failure never rolls back.
    #[serde(default)]
    pub finally: Vec<Step>,
    /// Estate locks: keys (templates over `params` and `run`, rendered when the run starts)
    /// that no two active runs in the same state directory may hold at once, whatever their
    /// runbooks, e.g. `sql:{{ params.backup_sql }}/{{ params.database }}`.
    #[serde(default)]
    pub locks: Vec<Spanned<String>>,
    /// Hooks run on chosen events of the run, the event as JSON on their stdin.
    #[serde(default)]
    pub notify: Vec<super::Notify>,
    /// The directory of the runbook file: relative `cwd` and `./program` paths start there.
    #[schemars(skip)]
    pub dir: std::path::PathBuf,
    /// A group file (`group: 1`): its declared outputs, templates over its own steps.
    #[schemars(skip)]
    pub group: Option<IndexMap<String, Spanned<String>>>,
    /// The group files its steps came from (canonical paths, each once): part of what a
    /// resumed run checks for changes.
    #[schemars(skip)]
    pub included: Vec<std::path::PathBuf>,
}

/// A named database connection.
#[derive(Clone, Debug, PartialEq, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Connection {
    #[schemars(skip)]
    pub name: Spanned<String>,
    /// An ADO.NET connection string for SQL Server (a template: params and secrets allowed).
    pub mssql: Spanned<String>,
}

/// A machine `run` steps can run on: `target: NAME` on a step or rollback.
#[derive(Clone, Debug, PartialEq, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Target {
    #[schemars(skip)]
    pub name: Spanned<String>,
    /// `[user@]host[:port]`, or a host alias of the operator's ssh config (a template:
    /// params, secrets and env allowed).
    pub ssh: Spanned<String>,
    /// The remote shell: `sh` (the default) or `bash` on Unix, `powershell` or `pwsh` on
    /// Windows.
    #[schemars(with = "Option<TargetShell>")]
    pub shell: Option<Spanned<Shell>>,
}

/// The shells a target runs scripts in (the schema's view of [`Shell`] without `cmd`).
#[derive(JsonSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)] // never built: it only describes the schema
enum TargetShell {
    Sh,
    Bash,
    Pwsh,
    Powershell,
}

impl Target {
    /// The shells a target accepts.
    pub const SHELLS: &'static [&'static str] = &["sh", "bash", "pwsh", "powershell"];

    pub fn shell(&self) -> Shell {
        self.shell.as_ref().map_or(Shell::Sh, |s| s.value)
    }
}

/// `env_file:` a dotenv file read when the run starts; its values are `env.NAME` in templates.
#[derive(Clone, Debug, PartialEq, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct EnvFile {
    /// The file, relative to the runbook's directory: `NAME=value` lines, `#` comments.
    pub path: Spanned<String>,
    /// Names whose values are masked like secrets wherever they would be shown.
    #[serde(default)]
    pub secret: Vec<Spanned<String>>,
    /// Where `env_file` is written (`file:line:column`), for errors at run start.
    #[schemars(skip)]
    pub at: String,
    #[schemars(skip)]
    pub span: Span,
}

/// Values every step inherits unless it sets its own.
#[derive(Clone, Debug, Default, PartialEq, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Defaults {
    pub timeout: Option<Spanned<Duration>>,
    pub retry: Option<Retry>,
    /// Environment variables of every `run` step and rollback (templates); a step's own
    /// `env` wins name by name.
    #[serde(default)]
    pub env: IndexMap<String, Spanned<String>>,
    /// The working directory of `run` steps without their own `cwd` (a template); relative
    /// to the runbook file's directory.
    pub cwd: Option<Spanned<String>>,
    #[schemars(skip)]
    pub span: Span,
}

impl Runbook {
    /// The finally steps as a runbook of their own (same params, secrets, connections,
    /// defaults and directory, no run timeout): checked and scheduled like any steps.
    pub fn finally_part(&self) -> Runbook {
        Runbook {
            version: self.version.clone(),
            name: self.name.clone(),
            description: None,
            timeout: None,
            rto: None,
            service_restored_at: None,
            params: self.params.clone(),
            secrets: self.secrets.clone(),
            connections: self.connections.clone(),
            targets: self.targets.clone(),
            defaults: self.defaults.clone(),
            env_file: self.env_file.clone(),
            steps: self.finally.clone(),
            finally: Vec::new(),
            locks: Vec::new(),
            notify: Vec::new(),
            dir: self.dir.clone(),
            group: None,
            included: Vec::new(),
        }
    }

    /// The time limit of one attempt of `step`: its own `timeout`, else `defaults.timeout`.
    /// An approval waits for a person, who may take longer than a command: only the step's
    /// own timeout applies to it.
    pub fn attempt_timeout(&self, step: &Step) -> Option<std::time::Duration> {
        let own = step.timeout.as_deref();
        let limit = if step.is_approval() {
            own
        } else {
            own.or(self.defaults.timeout.as_ref())
        };
        limit.map(|t| t.value.get())
    }

    /// The retry policy `step` falls back on: `defaults.retry`, except for an approval (a
    /// person who said no, or did not answer, is not asked again and again).
    pub fn default_retry(&self, step: &Step) -> Option<&Retry> {
        self.defaults.retry.as_ref().filter(|_| !step.is_approval())
    }

    /// The time limit of one attempt of `step`'s rollback action.
    pub fn rollback_timeout(&self, rollback: &super::Rollback) -> Option<std::time::Duration> {
        rollback
            .timeout
            .as_ref()
            .or(self.defaults.timeout.as_ref())
            .map(|t| t.value.get())
    }
}
