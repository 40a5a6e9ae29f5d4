//! Steps and the five step kinds (`run`, `sql`, `wait`, `assert`, `approval`), and the rollback
//! of a step with its three kinds (`run`, `sql`, `approval`).

use indexmap::IndexMap;
use schemars::JsonSchema;

use super::{Duration, Named, Retry, Spanned};
use crate::yaml::Span;

/// One step of the DAG. Exactly one of the kind fields (`run`, `sql`, `wait`, `assert`,
/// `approval`) is set in a valid runbook; see [`Step::kind`].
#[derive(Clone, Debug, PartialEq, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Step {
    /// Unique id: a letter or `_`, then letters, digits, `_` or `-`.
    pub id: Spanned<String>,
    pub title: Option<Box<Spanned<String>>>,
    /// Steps that must complete before this one starts.
    #[serde(default)]
    pub needs: Vec<Spanned<String>>,
    /// Expression; the step is skipped when it is false.
    pub when: Option<Box<Spanned<String>>>,
    pub timeout: Option<Box<Spanned<Duration>>>,
    /// How long the step normally takes (per item in a `for_each`): the plan's estimate of
    /// the time to service restored adds these up along the critical path.
    pub expect: Option<Box<Spanned<Duration>>>,
    pub retry: Option<Box<Retry>>,
    /// Expression over `result`; an attempt for which it is false has failed (a poll).
    pub until: Option<Box<Spanned<String>>>,
    /// Named values computed from `result` after the step succeeds.
    #[serde(default)]
    pub outputs: Named<Spanned<String>>,
    /// What undoes this step when a later step fails.
    pub rollback: Option<Box<Rollback>>,
    /// A point of no return: once it completes, neither it nor its ancestors are rolled back.
    pub irreversible: Option<Box<Spanned<bool>>>,
    /// Read-only: safe to run during a rehearsal.
    pub probe: Option<Box<Spanned<bool>>>,
    /// What `runbook check` runs instead of the step's action (read-only by contract).
    pub rehearse: Option<Box<super::Rehearse>>,
    /// Safe to run again if a crash leaves it in doubt.
    pub idempotent: Option<Box<Spanned<bool>>>,
    /// A failure marks the step failed but lets its dependents run.
    pub continue_on_failure: Option<Box<Spanned<bool>>>,
    /// Environment variables for commands (templates).
    #[serde(default)]
    pub env: Named<Spanned<String>>,
    /// Repeats the step once per item: a template that renders to a list, or a literal list.
    pub for_each: Option<Box<Spanned<ForEach>>>,
    /// The name of the item variable in a `for_each` step (default `item`).
    #[serde(rename = "as")]
    pub item_as: Option<Box<Spanned<String>>>,
    /// How many items of a `for_each` run at once (default 1: one after another, in order).
    pub concurrency: Option<Box<Spanned<i64>>>,
    /// How many items of a `for_each` may fail before the step fails (default 0).
    pub max_failures: Option<Box<Spanned<i64>>>,
    /// Includes a step group file (relative to this file); the step then has no kind.
    #[serde(rename = "use")]
    pub uses: Option<Box<Spanned<String>>>,
    /// The params of the group `use` includes: templates over this runbook, or values.
    #[serde(rename = "with", default)]
    pub with: Named<Spanned<Passed>>,
    /// Where a step that came from a group file reads its params and sibling steps.
    #[schemars(skip)]
    pub scope: crate::scope::Scope,
    /// The machine a `run` step runs on: a name under `targets:` (a template, e.g.
    /// `"{{ item }}"` in a `for_each` over target names). Without it, the step runs here.
    pub target: Option<Box<Spanned<String>>>,
    /// What the step does: one of the keys `run`, `sql`, `wait`, `assert`, `approval`.
    #[serde(flatten)]
    #[schemars(with = "StepKindKeys")]
    pub kind: StepKind,
    /// The whole step mapping.
    #[schemars(skip)]
    pub span: Span,
}

/// What a step does: exactly one kind per step.
#[derive(Clone, Debug, PartialEq)]
pub enum StepKind {
    Run(Run),
    Sql(Box<Sql>),
    Wait(Spanned<Duration>),
    Assert(Assert),
    Approval(Box<Approval>),
}

/// The kind keys of a step, as the schema shows them: in the format the kind is a key of the
/// step mapping, not a nested object, so each kind key is an optional property of the step.
#[derive(JsonSchema)]
#[allow(dead_code)] // never built: it only describes the schema
struct StepKindKeys {
    run: Option<Run>,
    sql: Option<Sql>,
    wait: Option<Spanned<Duration>>,
    // Optional like the other kinds: `schema_with` alone would make it required.
    #[serde(default)]
    #[schemars(schema_with = "assert_schema")]
    assert: Option<Assert>,
    approval: Option<Approval>,
}

pub const STEP_KINDS: &[&str] = &["run", "sql", "wait", "assert", "approval"];

fn flag(value: Option<&Spanned<bool>>) -> bool {
    value.is_some_and(|v| v.value)
}

impl Step {
    pub fn is_irreversible(&self) -> bool {
        flag(self.irreversible.as_deref())
    }

    pub fn is_probe(&self) -> bool {
        flag(self.probe.as_deref())
    }

    pub fn is_idempotent(&self) -> bool {
        flag(self.idempotent.as_deref())
    }

    pub fn continues_on_failure(&self) -> bool {
        flag(self.continue_on_failure.as_deref())
    }

    pub fn is_approval(&self) -> bool {
        matches!(self.kind, StepKind::Approval(_))
    }

    /// The item variable of a `for_each` step.
    pub fn item_name(&self) -> &str {
        self.item_as.as_ref().map_or("item", |a| a.as_str())
    }

    /// How many items of a `for_each` run at once.
    pub fn item_concurrency(&self) -> usize {
        self.concurrency
            .as_ref()
            .map_or(1, |c| usize::try_from(c.value).unwrap_or(1).max(1))
    }

    /// How many items of a `for_each` may fail while the step still succeeds.
    pub fn failure_budget(&self) -> usize {
        self.max_failures
            .as_ref()
            .map_or(0, |m| usize::try_from(m.value).unwrap_or(0))
    }
}

/// The list a `for_each` step repeats over.
#[derive(Clone, Debug, PartialEq, JsonSchema)]
#[serde(untagged)]
pub enum ForEach {
    /// A template rendering to a list, rendered when the step becomes ready.
    Template(String),
    /// A literal list of items.
    List(Vec<serde_json::Value>),
}

/// A value passed to a group's param under `with:`.
#[derive(Clone, Debug, PartialEq, JsonSchema)]
#[serde(untagged)]
pub enum Passed {
    /// A template over the including runbook; a lone `{{ expr }}` keeps the value's type.
    Template(String),
    /// A number, boolean, list or mapping, passed as it is.
    Value(serde_json::Value),
}

/// The shell that runs a `script`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Shell {
    Sh,
    Bash,
    Pwsh,
    Powershell,
    Cmd,
}

impl Shell {
    pub const NAMES: &'static [&'static str] = &["sh", "bash", "pwsh", "powershell", "cmd"];

    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "sh" => Some(Self::Sh),
            "bash" => Some(Self::Bash),
            "pwsh" => Some(Self::Pwsh),
            "powershell" => Some(Self::Powershell),
            "cmd" => Some(Self::Cmd),
            _ => None,
        }
    }

    pub const fn name(self) -> &'static str {
        match self {
            Self::Sh => "sh",
            Self::Bash => "bash",
            Self::Pwsh => "pwsh",
            Self::Powershell => "powershell",
            Self::Cmd => "cmd",
        }
    }
}

/// `run:` a program with arguments (no shell), or a script in a shell.
#[derive(Clone, Debug, PartialEq, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Run {
    /// The program to start, found on `PATH`.
    pub program: Option<Spanned<String>>,
    /// Arguments for `program`, each a template.
    #[serde(default)]
    pub args: Vec<Spanned<String>>,
    /// The shell for `script`.
    pub shell: Option<Spanned<Shell>>,
    /// A script run by `shell` (a template).
    pub script: Option<Spanned<String>>,
    /// Working directory (a template).
    pub cwd: Option<Box<Spanned<String>>>,
    #[schemars(skip)]
    pub span: Span,
}

/// A scalar argument of a SQL query, sent as a typed parameter.
#[derive(Clone, Debug, PartialEq, JsonSchema)]
#[serde(untagged)]
pub enum Scalar {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    /// A template, rendered to a string.
    String(String),
}

/// `sql:` T-SQL on a named connection.
#[derive(Clone, Debug, PartialEq, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Sql {
    /// A name under `connections:`.
    pub connection: Spanned<String>,
    /// The T-SQL batch (a template); values belong in `args`, read as `@P1`, `@P2`, …
    pub query: Spanned<String>,
    /// Values bound to `@P1…` in order.
    #[serde(default)]
    pub args: Vec<Spanned<Scalar>>,
    /// The database to use instead of the connection's default.
    pub database: Option<Spanned<String>>,
}

fn assert_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
    let full = generator.subschema_for::<Assert>();
    schemars::json_schema!({
        "description": "An expression that must be true, or `{ that, message }`.",
        "anyOf": [{ "type": "string" }, full]
    })
}

/// `assert:` an expression that must be true, with an optional message.
#[derive(Clone, Debug, PartialEq, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Assert {
    pub that: Spanned<String>,
    pub message: Option<Spanned<String>>,
}

/// `approval:` a person confirms before the run goes on.
#[derive(Clone, Debug, PartialEq, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Approval {
    pub prompt: Spanned<String>,
    pub instructions: Option<Spanned<String>>,
    /// Who may approve: a list of user names, or `{ group: NAME }` (the members of an OS
    /// group). Present: a multi-party approval, voted with `runbook approve`.
    pub approvers: Option<Approvers>,
    /// How many approvers must approve (default 1).
    pub min: Option<Spanned<i64>>,
    /// Whether the run's own operator may approve (default false).
    pub self_approval: Option<Spanned<bool>>,
    /// How long to wait for the votes; then the approval is refused ("timed out").
    pub timeout: Option<Spanned<Duration>>,
}

impl Approval {
    /// A multi-party approval: voted by approvers with `runbook approve`, never at a prompt.
    pub fn is_multi_party(&self) -> bool {
        self.approvers.is_some()
    }
}

/// `approvers:` who may vote on a multi-party approval.
#[derive(Clone, Debug, PartialEq, JsonSchema)]
#[serde(untagged)]
pub enum Approvers {
    /// User names, as in the passwd database.
    Users(Vec<Spanned<String>>),
    /// `{ group: NAME }`: the members of an OS group (read from the group database when the
    /// approval is asked).
    Group(ApproverGroup),
}

/// `approvers: { group: NAME }`.
#[derive(Clone, Debug, PartialEq, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct ApproverGroup {
    pub group: Spanned<String>,
}

/// `rollback:` the action that undoes a step: one of `run`, `sql`, `approval`.
#[derive(Clone, Debug, PartialEq, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Rollback {
    /// What the rollback does: one of the keys `run`, `sql`, `approval`.
    #[serde(flatten)]
    #[schemars(with = "RollbackKindKeys")]
    pub kind: RollbackKind,
    pub timeout: Option<Spanned<Duration>>,
    pub retry: Option<Retry>,
    #[serde(default)]
    pub env: IndexMap<String, Spanned<String>>,
    /// `true`: this rollback runs after a point of no return on purpose (it undoes only what
    /// its own step did). Silences `rollback_past_point_of_no_return`.
    pub past_point_of_no_return: Option<Spanned<bool>>,
    /// The machine a `run` rollback runs on: a name under `targets:` (a template).
    pub target: Option<Spanned<String>>,
    #[schemars(skip)]
    pub span: Span,
}

impl Rollback {
    /// Whether undoing the step needs a person to confirm.
    pub fn is_approval(&self) -> bool {
        matches!(self.kind, RollbackKind::Approval(_))
    }
}

/// What a rollback does: exactly one kind per rollback.
#[derive(Clone, Debug, PartialEq)]
pub enum RollbackKind {
    Run(Run),
    Sql(Sql),
    Approval(Approval),
}

/// The kind keys of a rollback, as the schema shows them (see [`StepKindKeys`]).
#[derive(JsonSchema)]
#[allow(dead_code)] // never built: it only describes the schema
struct RollbackKindKeys {
    run: Option<Run>,
    sql: Option<Sql>,
    approval: Option<Approval>,
}

#[cfg(test)]
mod size {
    /// Every step of a runbook is held at once, 100,000 of them in a large one: the rarely
    /// used parts (rollback, rehearsal, `when`, `target`, the maps) are boxed so that a step
    /// without them stays small.
    #[test]
    fn a_step_stays_small() {
        let size = std::mem::size_of::<super::Step>();
        assert!(size <= 384, "a Step is {size} bytes");
    }
}
