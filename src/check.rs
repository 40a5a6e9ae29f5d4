//! `runbook check`, the live pre-flight: every `probe: true` step runs for real (read-only by
//! contract), every other `run` or `sql` step runs its `rehearse:` action instead of its own,
//! and nothing else runs: no mutating action, no rollback, no approval asked, no journal.
//!
//! Steps are taken one at a time in graph order, so that `when`, `until` and `assert` are
//! judged on the real results of the probes before them. What a step reads that only a real
//! run would produce (the outputs of a step whose action did not run) makes it
//! `not_checkable`; the data flow is the validator's (`validate::reads`). A probe placed after
//! a change that check did not make reads the estate as it is *before* that change: its action
//! must work, but a condition it finds false there is reported as not checkable, not failed.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::sync::Arc;

use minijinja::Value;
use serde::Serialize;

use crate::context::{Context, Placeholder, RunInfo};
use crate::dag::Dag;
use crate::exec::Shared;
use crate::exec::attempt::{self, Outcome, Spec};
use crate::exec::event::{Event, Sink, Status};
use crate::mask::Masker;
use crate::model::{ForEach, RehearseKind, Run, Scalar, Sql, Step, StepKind};
use crate::render::{Action, RenderError, Renderer};
use crate::retry::Policy;
use crate::session::SessionError;
use crate::yaml::Span;

/// What check found for one step (or one instance of a `for_each` step).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckStatus {
    /// Its probe ran and passed.
    Checked,
    /// Its `rehearse:` action ran and passed.
    Rehearsed,
    Failed,
    /// `when` is false on real values.
    Skipped,
    /// No probe, no rehearse action: check cannot say whether it would work.
    NotRehearsed,
    /// It needs what only a real run would produce.
    NotCheckable,
    /// An approval: not asked.
    Approval,
}

impl CheckStatus {
    pub const ALL: [Self; 7] = [
        Self::Checked,
        Self::Rehearsed,
        Self::Failed,
        Self::Skipped,
        Self::NotRehearsed,
        Self::NotCheckable,
        Self::Approval,
    ];

    pub const fn name(self) -> &'static str {
        match self {
            Self::Checked => "checked",
            Self::Rehearsed => "rehearsed",
            Self::Failed => "failed",
            Self::Skipped => "skipped",
            Self::NotRehearsed => "not_rehearsed",
            Self::NotCheckable => "not_checkable",
            Self::Approval => "approval",
        }
    }
}

/// A place in the runbook file: 1-based line and column.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Location {
    pub line: usize,
    pub column: usize,
}

/// One line of the check report.
#[derive(Clone, Debug, Serialize)]
pub struct StepCheck {
    /// The step id, or `STEP[KEY]` for an instance of a `for_each` step.
    pub id: String,
    pub status: CheckStatus,
    /// Why it failed, was skipped or could not be checked (secrets masked).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Where in the file: the action that ran, or the field that decided.
    pub location: Location,
    /// A `finally` step.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub finally: bool,
}

/// The whole check of one runbook.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub runbook: String,
    /// The file as the operator named it (for `file:line:col`).
    pub path: String,
    pub steps: Vec<StepCheck>,
    /// Keys of the params file that are not params of this runbook.
    #[serde(skip)]
    pub ignored_params: Vec<String>,
    /// Secrets too short to be searched for inside output (masked only as whole values).
    #[serde(skip)]
    pub short_secrets: Vec<String>,
}

impl Report {
    /// 1 when any step failed, else 0.
    pub fn exit_code(&self) -> u8 {
        if self.failed() {
            crate::exit::FAILED
        } else {
            crate::exit::OK
        }
    }

    pub fn failed(&self) -> bool {
        self.steps.iter().any(|s| s.status == CheckStatus::Failed)
    }

    /// How many steps ended with each status, in the order of [`CheckStatus::ALL`].
    pub fn counts(&self) -> Vec<(CheckStatus, usize)> {
        CheckStatus::ALL
            .iter()
            .map(|&status| {
                let n = self.steps.iter().filter(|s| s.status == status).count();
                (status, n)
            })
            .collect()
    }
}

/// Events of the attempts check runs are not shown or kept: the report says what happened.
struct Discard;

impl Sink for Discard {
    fn emit(&self, _event: &Event) {}

    fn broken(&self) -> Option<String> {
        None
    }
}

/// Checks the runbook `file` with the operator's params against the live estate.
pub fn check(
    file: &Path,
    pairs: &[String],
    params_file: Option<&Path>,
) -> Result<Report, SessionError> {
    let (file_report, checked) = crate::session::check(file);
    let (runbook, dag) = match checked {
        Some(checked) if file_report.errors() == 0 => checked,
        _ => return Err(SessionError::Invalid(Box::new(file_report))),
    };
    let bound =
        crate::bind::bind(&runbook, pairs, params_file, false).map_err(SessionError::Params)?;
    let secrets = crate::bind::read_secrets(&runbook).map_err(SessionError::Secrets)?;
    let env = crate::env_file::read(&runbook)?;
    let short_secrets = secrets
        .iter()
        .filter(|(_, v)| v.chars().count() < crate::mask::MIN_SEARCH_LEN)
        .map(|(name, _)| name.clone())
        .collect();
    let masker = Masker::new(
        secrets
            .iter()
            .map(|(_, v)| v.as_str())
            .chain(env.secret_values()),
    );
    let run = RunInfo {
        id: crate::session::new_run_id(),
        dry_run: false,
        started_at: crate::exec::event::now(),
        dir: runbook.dir.display().to_string(),
        outcome: None,
    };
    let mut context = Context::new(&bound.values, &secrets, &run);
    context.set_env(&env);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| SessionError::Runtime(e.to_string()))?;
    crate::steps::sql_messages::install();
    let runbook = Arc::new(runbook);
    let shared = Shared::new(
        runbook.clone(),
        Arc::new(Discard),
        crate::steps::command::Groups::default(),
        crate::steps::approval::Approvals::default(),
        masker,
        None,
    );
    let mut checker = Checker {
        shared: &shared,
        index: crate::line_index::LineIndex::new(&file_report.source),
        context,
        unknown: HashSet::new(),
        unknown_outputs: HashSet::new(),
        changes: Vec::new(),
        latest: vec![None; dag.len()],
        stale: BTreeMap::new(),
        steps: Vec::new(),
    };
    runtime.block_on(async {
        for i in order(&dag) {
            let at = checker.latest_before(&dag, i);
            let before = at.map(|at| checker.changes[at].1.clone());
            checker.step(&runbook.steps[i], before, Some(i)).await;
            checker.note_latest(i, at);
        }
        // Finally steps run after everything, so every change check did not make is before them.
        let outcome = if checker
            .steps
            .iter()
            .any(|s| s.status == CheckStatus::Failed)
        {
            "failed"
        } else {
            "succeeded"
        };
        checker.context.set_outcome(outcome);
        let finally = runbook.finally_part();
        let finally_dag = Dag::new(&finally);
        for i in order(&finally_dag) {
            let before = checker.changes.last().map(|(_, id)| id.clone());
            checker.step(&finally.steps[i], before, None).await;
        }
    });
    runtime.shutdown_background();
    Ok(Report {
        runbook: runbook.name.value.clone(),
        path: file.display().to_string(),
        steps: checker.steps,
        ignored_params: bound.ignored,
        short_secrets,
    })
}

/// The steps in graph order (waves, each in declaration order): one at a time.
fn order(dag: &Dag) -> Vec<usize> {
    let mut waves = dag.waves();
    for wave in &mut waves {
        wave.sort_unstable();
    }
    waves.into_iter().flatten().collect()
}

/// Which action of a step check runs.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// `probe: true`: its own action.
    Probe,
    /// Its `rehearse:` action.
    Rehearse,
}

struct Checker<'a> {
    shared: &'a Shared,
    index: crate::line_index::LineIndex<'a>,
    context: Context,
    /// Steps whose results are placeholders: their action did not run.
    unknown: HashSet<String>,
    /// Rehearsed steps that declare `outputs`: those describe the step's own action's result,
    /// which only a real run produces.
    unknown_outputs: HashSet<String>,
    /// Steps whose change check did not make: (index in the graph, id); finally steps have
    /// no index in the main graph.
    changes: Vec<(Option<usize>, String)>,
    /// Per step of the main graph, once checked: the latest change among the step and its
    /// ancestors, as a position in `changes`. Steps are checked in graph order, so a step's
    /// parents are known before it and the question costs one look per parent.
    latest: Vec<Option<usize>>,
    /// Steps whose results were read from the estate before a change (the change's id).
    stale: BTreeMap<String, String>,
    steps: Vec<StepCheck>,
}

impl Checker<'_> {
    fn at(&self, span: Span) -> Location {
        let (line, column) = self.index.position(span.offset());
        Location { line, column }
    }

    fn mask(&self, text: &str) -> String {
        self.shared.masker.text(text).into_owned()
    }

    fn push(
        &mut self,
        id: &str,
        status: CheckStatus,
        reason: Option<String>,
        span: Span,
        finally: bool,
    ) {
        let reason = reason.map(|r| self.mask(&r));
        self.steps.push(StepCheck {
            id: id.to_owned(),
            status,
            reason,
            location: self.at(span),
            finally,
        });
    }

    /// The latest change check did not make among the step's ancestors (the nearest one).
    /// Its position in `changes`, later changes further on: the latest over the step's
    /// parents of what each holds, every parent having been checked before it.
    fn latest_before(&self, dag: &Dag, step: usize) -> Option<usize> {
        dag.parents(step).filter_map(|p| self.latest[p]).max()
    }

    /// Records the latest change among `step` and its ancestors, once `step` is checked:
    /// its own when it changes something, else the latest before it.
    fn note_latest(&mut self, step: usize, before: Option<usize>) {
        let own = self
            .changes
            .len()
            .checked_sub(1)
            .filter(|&at| self.changes[at].0 == Some(step));
        self.latest[step] = own.or(before);
    }

    /// The first step `text` reads whose results only a real run has.
    fn reads_unknown<'t>(
        &self,
        texts: impl IntoIterator<Item = (&'t str, bool)>,
    ) -> Option<String> {
        texts
            .into_iter()
            .flat_map(|(text, expression)| crate::validate::reads::fields_read(text, expression))
            .find_map(|(id, field)| {
                if self.unknown.contains(&id) {
                    return Some(id);
                }
                let outputs = field.as_deref().is_none_or(|f| f == "outputs");
                (outputs && self.unknown_outputs.contains(&id)).then(|| format!("{id}.outputs"))
            })
    }

    fn leave_unknown(&mut self, id: &str) {
        self.unknown.insert(id.to_owned());
        let placeholder = Value::from_object(Placeholder(format!("steps.{id}")));
        self.context.set_step(id, placeholder);
    }

    /// Checks one step; `index` is its place in the main graph, `None` for a finally step.
    async fn step(&mut self, step: &Step, before: Option<String>, index: Option<usize>) {
        let id = step.id.value.as_str();
        let finally = index.is_none();
        if let Some(when) = &step.when {
            if let Some(read) = self.reads_unknown([(when.as_str(), true)]) {
                let reason = format!("`when` reads steps.{read}, which only a real run produces");
                self.push(
                    id,
                    CheckStatus::NotCheckable,
                    Some(reason),
                    when.span,
                    finally,
                );
                self.leave_unknown(id);
                self.note_change(step, index);
                return;
            }
            match self.shared.templates.eval(when, &self.context.value()) {
                Ok(v) if v.is_true() => {}
                Ok(_) => {
                    let reason = format!("`when: {}` is false", when.as_str());
                    self.push(id, CheckStatus::Skipped, Some(reason), when.span, finally);
                    self.context
                        .set_step(id, Outcome::empty(Status::Skipped).value());
                    return;
                }
                Err(e) => {
                    let reason = format!(
                        "cannot evaluate `when`: {}",
                        crate::template::error_text(&e)
                    );
                    self.push(id, CheckStatus::Failed, Some(reason), when.span, finally);
                    self.leave_unknown(id);
                    return;
                }
            }
        }
        match &step.kind {
            StepKind::Approval(_) => {
                let reason = "not asked: check asks no one".to_owned();
                self.push(
                    id,
                    CheckStatus::Approval,
                    Some(reason),
                    step.id.span,
                    finally,
                );
                self.leave_unknown(id);
            }
            StepKind::Wait(wait) => {
                let reason = format!("not waited ({})", wait.value);
                self.push(id, CheckStatus::Checked, Some(reason), wait.span, finally);
                self.context
                    .set_step(id, Outcome::empty(Status::Succeeded).value());
            }
            StepKind::Assert(assert) => {
                let mut texts = vec![(assert.that.as_str(), true)];
                if let Some(message) = &assert.message {
                    texts.push((message.as_str(), false));
                }
                if let Some(read) = self.reads_unknown(texts) {
                    let reason = format!("reads steps.{read}, which only a real run produces");
                    self.push(
                        id,
                        CheckStatus::NotCheckable,
                        Some(reason),
                        assert.that.span,
                        finally,
                    );
                    self.leave_unknown(id);
                    return;
                }
                let stale = crate::validate::reads::steps_read(&assert.that, true)
                    .into_iter()
                    .find_map(|read| self.stale.get(&read).cloned())
                    .or(before.clone());
                let value = self.context.value();
                let (status, reason) = match self.shared.templates.eval(&assert.that, &value) {
                    Ok(v) if v.is_true() => (CheckStatus::Checked, None),
                    Ok(_) => {
                        let message = assert
                            .message
                            .as_ref()
                            .and_then(|m| self.shared.templates.render(m, &value).ok())
                            .unwrap_or_else(|| {
                                format!("assertion `{}` is false", assert.that.as_str())
                            });
                        match stale {
                            Some(change) => (
                                CheckStatus::NotCheckable,
                                Some(format!(
                                    "{message} (read before `{change}`, which check does not run)"
                                )),
                            ),
                            None => (CheckStatus::Failed, Some(message)),
                        }
                    }
                    Err(e) => (
                        CheckStatus::Failed,
                        Some(format!(
                            "cannot evaluate `{}`: {}",
                            assert.that.as_str(),
                            crate::template::error_text(&e)
                        )),
                    ),
                };
                self.push(id, status, reason, assert.that.span, finally);
                if status == CheckStatus::Checked {
                    self.context
                        .set_step(id, Outcome::empty(Status::Succeeded).value());
                } else {
                    self.leave_unknown(id);
                }
            }
            StepKind::Run(_) | StepKind::Sql(_) => self.action(step, before, index, finally).await,
        }
    }

    /// A step that changes something: check ran none of it.
    fn note_change(&mut self, step: &Step, index: Option<usize>) {
        if matches!(step.kind, StepKind::Run(_) | StepKind::Sql(_)) && !step.is_probe() {
            self.changes.push((index, step.id.value.clone()));
        }
    }

    async fn action(
        &mut self,
        step: &Step,
        before: Option<String>,
        index: Option<usize>,
        finally: bool,
    ) {
        let id = step.id.value.as_str();
        let mode = if step.is_probe() {
            Mode::Probe
        } else if step.rehearse.is_some() {
            Mode::Rehearse
        } else {
            let reason =
                "no probe, no rehearse action: check cannot say whether it would work".to_owned();
            self.push(
                id,
                CheckStatus::NotRehearsed,
                Some(reason),
                step.id.span,
                finally,
            );
            self.leave_unknown(id);
            self.note_change(step, index);
            return;
        };
        self.note_change(step, index);
        let (span, mut texts) = match (mode, &step.rehearse) {
            (Mode::Rehearse, Some(rehearse)) => (
                rehearse.span,
                match &rehearse.kind {
                    RehearseKind::Run(run) => run_texts(run),
                    RehearseKind::Sql(sql) => sql_texts(sql),
                },
            ),
            _ => match &step.kind {
                StepKind::Run(run) => (run.span, run_texts(run)),
                StepKind::Sql(sql) => (sql.query.span, sql_texts(sql)),
                _ => (step.span, Vec::new()),
            },
        };
        texts.extend(step.env.values().map(|v| (v.as_str(), false)));
        if mode == Mode::Probe {
            texts.extend(step.outputs.values().map(|v| (v.as_str(), false)));
        }
        if let Some(until) = &step.until {
            texts.push((until.as_str(), true));
        }
        if let Some(read) = self.reads_unknown(texts) {
            let reason = format!("reads steps.{read}, which only a real run produces");
            self.push(id, CheckStatus::NotCheckable, Some(reason), span, finally);
            self.leave_unknown(id);
            return;
        }
        let passed = match mode {
            Mode::Probe => CheckStatus::Checked,
            Mode::Rehearse => CheckStatus::Rehearsed,
        };
        let Some(for_each) = &step.for_each else {
            let context = self.context.clone();
            match self
                .attempt(step, id, mode, &context, before.as_deref())
                .await
            {
                Verdict::Passed(value) => {
                    self.push(id, passed, None, span, finally);
                    self.context.set_step(id, value);
                    if mode == Mode::Rehearse && !step.outputs.is_empty() {
                        self.unknown_outputs.insert(id.to_owned());
                    }
                    if let Some(change) = before {
                        self.stale.insert(id.to_owned(), change);
                    }
                }
                Verdict::NotPassed(status, reason) => {
                    self.push(id, status, Some(reason), span, finally);
                    self.leave_unknown(id);
                }
            }
            return;
        };
        if let ForEach::Template(text) = &for_each.value
            && let Some(read) = self.reads_unknown([(text.as_str(), false)])
        {
            let reason = format!(
                "repeats over steps.{read}, a list only a real run produces: no instance checked"
            );
            self.push(
                id,
                CheckStatus::NotCheckable,
                Some(reason),
                for_each.span,
                finally,
            );
            self.leave_unknown(id);
            return;
        }
        let items = crate::items::items(
            step,
            &self.shared.templates,
            &self.context.value(),
            &self.shared.masker,
        );
        match items {
            Some(Ok(items)) => {
                for item in items {
                    let context = self.context.with_item(step.item_name(), &item.value);
                    match self
                        .attempt(step, &item.id, mode, &context, before.as_deref())
                        .await
                    {
                        Verdict::Passed(_) => self.push(&item.id, passed, None, span, finally),
                        Verdict::NotPassed(status, reason) => {
                            self.push(&item.id, status, Some(reason), span, finally);
                        }
                    }
                }
            }
            Some(Err(e)) => {
                self.push(
                    id,
                    CheckStatus::Failed,
                    Some(e.to_string()),
                    for_each.span,
                    finally,
                );
            }
            None => {}
        }
        // What the instances leave (`items`) is not rebuilt here: dependents reading it are
        // not checkable.
        self.leave_unknown(id);
    }

    /// Runs the probe or rehearse action once.
    async fn attempt(
        &self,
        step: &Step,
        id: &str,
        mode: Mode,
        context: &Context,
        before: Option<&str>,
    ) -> Verdict {
        let render = move |r: &Renderer, v: &Value| -> Result<Action, RenderError> {
            match mode {
                Mode::Probe => r.step(step, v),
                // Never the step's own action: without a rehearse action there is nothing to run.
                Mode::Rehearse => r.rehearse(step, v).unwrap_or_else(|| {
                    Err(RenderError {
                        field: "rehearse".to_owned(),
                        message: "the step has no rehearse action".to_owned(),
                    })
                }),
            }
        };
        let spec = Spec {
            id,
            // One attempt: check asks the estate once, and polls nothing.
            policy: Policy::resolve(None, None),
            timeout: self.shared.runbook.attempt_timeout(step),
            until: None,
            // A rehearse action's result is not the step's own: its `outputs` are not read
            // from it.
            outputs: (mode == Mode::Probe).then_some(&step.outputs),
            rollback: false,
            render: &render,
        };
        let outcome = attempt::run(self.shared, &spec, context).await;
        if outcome.status != Status::Succeeded || outcome.outputs_failed {
            return Verdict::NotPassed(CheckStatus::Failed, failure(&outcome));
        }
        let value = outcome.value();
        if mode == Mode::Probe
            && let Some(until) = &step.until
        {
            let with_result = context.with_result(Some(&value));
            match self.shared.templates.eval(until, &with_result) {
                Ok(v) if v.is_true() => {}
                Ok(_) => {
                    let found = outcome.stdout.trim();
                    let mut reason = format!("`until: {}` is false", until.as_str());
                    if !found.is_empty() {
                        reason.push_str(&format!(" (stdout: {found})"));
                    }
                    return match before {
                        Some(change) => Verdict::NotPassed(
                            CheckStatus::NotCheckable,
                            format!(
                                "{reason}; it reads the estate before `{change}`, which check does not run"
                            ),
                        ),
                        None => Verdict::NotPassed(CheckStatus::Failed, reason),
                    };
                }
                Err(e) => {
                    let reason = format!(
                        "cannot evaluate `until`: {}",
                        crate::template::error_text(&e)
                    );
                    return Verdict::NotPassed(CheckStatus::Failed, reason);
                }
            }
        }
        Verdict::Passed(value)
    }
}

/// How a probe or rehearse action ended.
enum Verdict {
    /// It passed; what `steps.<id>` holds afterwards.
    Passed(Value),
    NotPassed(CheckStatus, String),
}

/// Why an action failed: its message, then what it wrote to stderr.
fn failure(outcome: &Outcome) -> String {
    let mut reason = outcome
        .message
        .clone()
        .unwrap_or_else(|| "failed".to_owned());
    let stderr = outcome.stderr.trim();
    if !stderr.is_empty() {
        reason.push('\n');
        reason.push_str(stderr);
    }
    reason
}

fn run_texts(run: &Run) -> Vec<(&str, bool)> {
    run.program
        .iter()
        .chain(&run.args)
        .chain(&run.script)
        .chain(run.cwd.as_deref())
        .map(|t| (t.as_str(), false))
        .collect()
}

fn sql_texts(sql: &Sql) -> Vec<(&str, bool)> {
    std::iter::once((sql.query.as_str(), false))
        .chain(sql.args.iter().filter_map(|a| match &a.value {
            Scalar::String(s) => Some((s.as_str(), false)),
            _ => None,
        }))
        .chain(sql.database.iter().map(|d| (d.as_str(), false)))
        .collect()
}
