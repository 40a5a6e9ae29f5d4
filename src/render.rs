//! Renders what a step (or a rollback) will do, with every template filled in: the command
//! line or script, SQL text and arguments, wait, assertion or prompt. Plans show it; runs
//! execute it.

use minijinja::Value;
use serde::{Deserialize, Serialize};

use crate::model::{Approval, RollbackKind, Run, Runbook, Scalar, Sql, Step, StepKind};
use crate::target::{Destination, Remote};
use crate::template::{Templates, error_text, is_limit};

/// A fully rendered action.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Action {
    Command {
        program: String,
        args: Vec<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        cwd: Option<String>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        env: Vec<(String, String)>,
        /// The machine it runs on; absent: here.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        target: Option<Remote>,
    },
    Script {
        shell: String,
        script: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        cwd: Option<String>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        env: Vec<(String, String)>,
        /// The machine it runs on; absent: here.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        target: Option<Remote>,
    },
    Sql {
        connection: String,
        /// The server of the connection (plans only: never its credentials).
        #[serde(skip_serializing_if = "Option::is_none")]
        server: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        database: Option<String>,
        query: String,
        args: Vec<serde_json::Value>,
    },
    Wait {
        duration: String,
        #[serde(skip)]
        time: std::time::Duration,
    },
    Assert {
        that: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        message: Option<String>,
    },
    Approval {
        prompt: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        instructions: Option<String>,
        /// Who must vote, for a multi-party approval; absent: one person at a prompt.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        quorum: Option<crate::steps::quorum::Quorum>,
    },
}

impl Action {
    /// The machine a command or script runs on; `None`: here.
    pub fn target(&self) -> Option<&Remote> {
        match self {
            Self::Command { target, .. } | Self::Script { target, .. } => target.as_ref(),
            _ => None,
        }
    }
}

/// A template that could not be rendered.
#[derive(Clone, Debug, thiserror::Error)]
#[error("cannot render {field}: {message}")]
pub struct RenderError {
    pub field: String,
    pub message: String,
}

/// Renders templates; in a dry-run a template that needs run-time values is shown as written.
pub struct Renderer<'t> {
    pub templates: &'t Templates,
    pub dry_run: bool,
    /// Where `defaults` and the runbook's directory (for relative paths) come from.
    pub runbook: &'t Runbook,
}

impl Renderer<'_> {
    pub fn text(&self, field: &str, text: &str, context: &Value) -> Result<String, RenderError> {
        match self.templates.render(text, context) {
            Ok(s) => Ok(s),
            // A dry-run shows a template that needs run-time values as written, but not one
            // that hit a limit: the run would fail on it.
            Err(e) if self.dry_run && !is_limit(&e) => Ok(text.to_owned()),
            Err(e) => Err(RenderError {
                field: field.to_owned(),
                message: undefined_text(&e, text, context).unwrap_or_else(|| error_text(&e)),
            }),
        }
    }

    /// `defaults.env` merged name by name with the step's own `env`, which wins.
    fn env(
        &self,
        env: &indexmap::IndexMap<String, crate::model::Spanned<String>>,
        context: &Value,
    ) -> Result<Vec<(String, String)>, RenderError> {
        let inherited = self
            .runbook
            .defaults
            .env
            .iter()
            .filter(|(k, _)| !env.contains_key(*k))
            .map(|(k, v)| (k, v, "defaults.env"));
        inherited
            .chain(env.iter().map(|(k, v)| (k, v, "env")))
            .map(|(k, v, field)| Ok((k.clone(), self.text(&format!("{field}.{k}"), v, context)?)))
            .collect()
    }

    /// A path the runbook wrote relative to its own directory, made absolute; the
    /// directory of `runbook validate DIR` or of the operator's shell must not matter.
    fn in_runbook_dir(&self, path: String) -> String {
        if std::path::Path::new(&path).is_absolute() {
            return path;
        }
        let path = path.strip_prefix("./").unwrap_or(&path);
        match path {
            "" | "." => self.runbook.dir.display().to_string(),
            _ => self.runbook.dir.join(path).display().to_string(),
        }
    }

    /// What a step does.
    pub fn step(&self, step: &Step, context: &Value) -> Result<Action, RenderError> {
        let env = self.env(&step.env, context)?;
        match &step.kind {
            StepKind::Run(run) => {
                let target = self.target(step.target.as_deref(), run, context)?;
                self.run(run, env, target, context)
            }
            StepKind::Sql(sql) => self.sql(sql, context),
            StepKind::Wait(wait) => Ok(Action::Wait {
                duration: wait.value.to_string(),
                time: wait.value.get(),
            }),
            StepKind::Assert(assert) => Ok(Action::Assert {
                that: assert.that.value.clone(),
                message: match &assert.message {
                    Some(m) => Some(self.text("assert.message", m, context)?),
                    None => None,
                },
            }),
            StepKind::Approval(approval) => self.approval(approval, context),
        }
    }

    /// What a `notify` hook runs (its `env` merged with `defaults.env`, like any `run`).
    pub fn hook(
        &self,
        hook: &crate::model::Notify,
        context: &Value,
    ) -> Result<Action, RenderError> {
        let env = self.env(&hook.env, context)?;
        let target = self.target(hook.target.as_ref(), &hook.run, context)?;
        self.run(&hook.run, env, target, context)
    }

    /// What a step's rollback does, if it has one.
    pub fn rollback(&self, step: &Step, context: &Value) -> Option<Result<Action, RenderError>> {
        let action = step.rollback.as_ref()?;
        let env = match self.env(&action.env, context) {
            Ok(env) => env,
            Err(e) => return Some(Err(e)),
        };
        Some(match &action.kind {
            RollbackKind::Run(run) => self
                .target(action.target.as_ref(), run, context)
                .and_then(|target| self.run(run, env, target, context)),
            RollbackKind::Sql(sql) => self.sql(sql, context),
            RollbackKind::Approval(approval) => self.approval(approval, context),
        })
    }

    /// What `runbook check` runs instead of a step's action, if the step has a `rehearse:`.
    pub fn rehearse(&self, step: &Step, context: &Value) -> Option<Result<Action, RenderError>> {
        let rehearse = step.rehearse.as_ref()?;
        let env = match self.env(&step.env, context) {
            Ok(env) => env,
            Err(e) => return Some(Err(e)),
        };
        Some(match &rehearse.kind {
            crate::model::RehearseKind::Run(run) => self
                .target(rehearse.target.as_ref(), run, context)
                .and_then(|target| self.run(run, env, target, context)),
            crate::model::RehearseKind::Sql(sql) => self.sql(sql, context),
        })
    }

    /// Where a `run` action runs: the target its `target` names (rendered, then its `ssh`
    /// rendered and checked), or here.
    fn target(
        &self,
        target: Option<&crate::model::Spanned<String>>,
        run: &Run,
        context: &Value,
    ) -> Result<Option<Remote>, RenderError> {
        let Some(target) = target else {
            return Ok(None);
        };
        let name = self.text("target", target, context)?;
        let Some(declared) = self.runbook.targets.get(&name) else {
            // A plan shows a target named by a loop's item as written: which one is decided
            // per item, when the step runs.
            if self.dry_run {
                return Ok(Some(Remote {
                    target: name,
                    ssh: "(the item's target)".to_owned(),
                    shell: run
                        .shell
                        .as_ref()
                        .map_or("sh", |s| s.value.name())
                        .to_owned(),
                }));
            }
            let names: Vec<&str> = self.runbook.targets.keys().map(String::as_str).collect();
            return Err(RenderError {
                field: "target".to_owned(),
                message: format!(
                    "`{name}` is not a target (targets are {})",
                    crate::diagnostic::list(names)
                ),
            });
        };
        let ssh = self.text(&format!("targets.{name}.ssh"), &declared.ssh, context)?;
        if !self.dry_run || !ssh.contains("{{") {
            Destination::parse(&ssh).map_err(|e| RenderError {
                field: format!("targets.{name}.ssh"),
                message: format!("invalid ssh destination `{ssh}`: {e}"),
            })?;
        }
        let shell = run
            .shell
            .as_ref()
            .map_or(declared.shell(), |s| s.value)
            .name()
            .to_owned();
        Ok(Some(Remote {
            target: name,
            ssh,
            shell,
        }))
    }

    fn run(
        &self,
        run: &Run,
        env: Vec<(String, String)>,
        target: Option<Remote>,
        context: &Value,
    ) -> Result<Action, RenderError> {
        // A remote action's directory is a path on the target, as written: neither
        // `defaults.cwd` nor the runbook's own directory mean anything there.
        let cwd = match (&run.cwd, &self.runbook.defaults.cwd) {
            (Some(c), _) => Some(self.text("run.cwd", c, context)?),
            (None, Some(c)) if target.is_none() => Some(self.text("defaults.cwd", c, context)?),
            _ => None,
        }
        .map(|c| {
            if target.is_some() {
                c
            } else {
                self.in_runbook_dir(c)
            }
        });
        if let Some(program) = &run.program {
            let args = run
                .args
                .iter()
                .enumerate()
                .map(|(i, a)| self.text(&format!("run.args[{i}]"), a, context))
                .collect::<Result<_, _>>()?;
            let mut program = self.text("run.program", program, context)?;
            // `./tool` is the runbook's own tool; a bare name is looked up on PATH.
            if program.starts_with("./") && target.is_none() {
                program = self.in_runbook_dir(program);
            }
            return Ok(Action::Command {
                program,
                args,
                cwd,
                env,
                target,
            });
        }
        Ok(Action::Script {
            shell: match &target {
                Some(remote) => remote.shell.clone(),
                None => run
                    .shell
                    .as_ref()
                    .map_or("sh", |s| s.value.name())
                    .to_owned(),
            },
            script: self.text(
                "run.script",
                run.script.as_ref().map_or("", |s| s.as_str()),
                context,
            )?,
            cwd,
            env,
            target,
        })
    }

    fn sql(&self, sql: &Sql, context: &Value) -> Result<Action, RenderError> {
        let args = sql
            .args
            .iter()
            .enumerate()
            .map(|(i, a)| {
                Ok(match &a.value {
                    Scalar::Null => serde_json::Value::Null,
                    Scalar::Bool(b) => serde_json::Value::Bool(*b),
                    Scalar::Int(n) => serde_json::Value::from(*n),
                    Scalar::Float(f) => serde_json::Value::from(*f),
                    Scalar::String(s) => serde_json::Value::String(self.text(
                        &format!("sql.args[{i}]"),
                        s,
                        context,
                    )?),
                })
            })
            .collect::<Result<_, RenderError>>()?;
        Ok(Action::Sql {
            connection: sql.connection.value.clone(),
            server: None,
            database: match &sql.database {
                Some(d) => Some(self.text("sql.database", d, context)?),
                None => None,
            },
            query: self.text("sql.query", &sql.query, context)?,
            args,
        })
    }

    fn approval(&self, approval: &Approval, context: &Value) -> Result<Action, RenderError> {
        Ok(Action::Approval {
            prompt: self.text("approval.prompt", &approval.prompt, context)?,
            instructions: match &approval.instructions {
                Some(i) => Some(self.text("approval.instructions", i, context)?),
                None => None,
            },
            quorum: crate::steps::quorum::Quorum::of(approval),
        })
    }
}

/// What an undefined value was, as written in the template, and why: a step skipped by its
/// `when` has no outputs, and saying so beats "undefined value".
fn undefined_text(e: &minijinja::Error, text: &str, context: &Value) -> Option<String> {
    if e.kind() != minijinja::ErrorKind::UndefinedError {
        return None;
    }
    // The error points at the failing lookup (`.outputs.v`); the whole path starts earlier.
    let range = e.range()?;
    let start = text
        .get(..range.start)?
        .char_indices()
        .rev()
        .take_while(|(_, c)| {
            c.is_alphanumeric() || matches!(c, '_' | '.' | '[' | ']' | '\'' | '"' | '-')
        })
        .last()
        .map_or(range.start, |(i, _)| i);
    let written = text.get(start..range.end)?.trim();
    let step = written
        .strip_prefix("steps.")
        .map(|rest| rest.split(['.', '[', ' ', '|']).next().unwrap_or(""))
        .or_else(|| {
            written
                .strip_prefix("steps['")
                .and_then(|rest| rest.split('\'').next())
        });
    let skipped = step.filter(|id| {
        context
            .get_attr("steps")
            .and_then(|steps| steps.get_attr(id))
            .and_then(|s| s.get_attr("status"))
            .is_ok_and(|status| status.as_str() == Some("skipped"))
    });
    Some(match skipped {
        Some(id) => format!("`{written}` is undefined: `{id}` was skipped (its `when` was false)"),
        None => format!("`{written}` is undefined"),
    })
}
