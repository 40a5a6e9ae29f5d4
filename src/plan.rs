//! The dry-run plan: every step rendered (outputs of earlier steps as placeholders, secrets
//! masked), the waves of steps that can run in parallel, approvals, points of no return, and
//! for `--fail-at STEP` the exact sequence of completions and rollbacks that would follow.
//! Nothing here has a side effect.

use serde::Serialize;

use crate::bind::Bound;
use crate::context::{Context, RunInfo};
use crate::dag::Dag;
use crate::model::Runbook;
use crate::outcome::{Stop, Undo, conclude};
use crate::render::{Action, Renderer};
use crate::retry::Policy;
use crate::rollback;
use crate::template::Templates;

#[derive(Debug, Serialize)]
pub struct Plan {
    pub runbook: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub params: serde_json::Map<String, serde_json::Value>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub params_from_example: Vec<String>,
    pub waves: Vec<Vec<String>>,
    pub steps: Vec<PlannedStep>,
    /// The `finally:` steps, run after the run whatever its outcome (`wave` is within them).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub finally: Vec<PlannedStep>,
    pub approvals: Vec<String>,
    pub points_of_no_return: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scenario: Option<Scenario>,
}

#[derive(Debug, Serialize)]
pub struct PlannedStep {
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    pub wave: usize,
    pub needs: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub when: Option<When>,
    pub action: Action,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
    pub retry: Policy,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub until: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub outputs: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rollback: Option<Action>,
    pub irreversible: bool,
    pub probe: bool,
    pub idempotent: bool,
    pub continue_on_failure: bool,
}

/// A `when` condition and, where it depends only on params, its value.
#[derive(Debug, Serialize)]
pub struct When {
    pub expression: String,
    /// `None`: decided at run time (it reads earlier steps).
    pub value: Option<bool>,
}

#[derive(Debug, Serialize)]
pub struct Scenario {
    /// Steps that may run at the same time (`--concurrency`).
    pub concurrency: usize,
    pub failed: String,
    pub completed: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<String>,
    pub rollback: Vec<String>,
    /// With room for steps beside the failing one: steps that may also complete before it
    /// fails, and the rollbacks that would then run too.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub may_also_complete: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub may_also_roll_back: Vec<String>,
    pub not_rolled_back: Vec<NotRolledBack>,
    /// The exit code the run would end with.
    pub exit_code: u8,
    pub outcome: String,
}

#[derive(Debug, Serialize)]
pub struct NotRolledBack {
    pub id: String,
    pub reason: String,
}

/// A problem building the plan (a template that cannot be rendered even in a dry-run).
#[derive(Debug, thiserror::Error)]
#[error("step `{step}`: {source}")]
pub struct PlanError {
    pub step: String,
    pub source: crate::render::RenderError,
}

/// Builds the plan of `runbook` with the bound params; `fail_at` adds the failure scenario.
pub fn build(
    runbook: &Runbook,
    dag: &Dag,
    params: &Bound,
    fail_at: Option<usize>,
    concurrency: usize,
) -> Result<Plan, PlanError> {
    let templates = Templates::new();
    let renderer = Renderer {
        templates: &templates,
        dry_run: true,
        runbook,
    };
    let run = RunInfo {
        id: "<run.id>".to_owned(),
        dry_run: true,
        started_at: "<run.started_at>".to_owned(),
        dir: runbook.dir.display().to_string(),
        outcome: None,
    };
    let context = Context::dry_run(
        &params.values,
        runbook.secrets.keys().cloned(),
        runbook.steps.iter().map(|s| s.id.value.clone()),
        &run,
    );
    let value = context.value();
    let waves = dag.waves();

    let steps = plan_steps(runbook, dag, &renderer, &templates, &value)?;
    let finally = match runbook.finally.is_empty() {
        true => Vec::new(),
        false => {
            let part = runbook.finally_part();
            let mut context = Context::dry_run(
                &params.values,
                runbook.secrets.keys().cloned(),
                runbook
                    .steps
                    .iter()
                    .chain(&runbook.finally)
                    .map(|s| s.id.value.clone()),
                &run,
            );
            context.set_outcome("<run.outcome>");
            plan_steps(
                &part,
                &Dag::new(&part),
                &renderer,
                &templates,
                &context.value(),
            )?
        }
    };

    let scenario = fail_at.map(|failing| {
        let skipped_by_when = |i: usize| {
            steps[i]
                .when
                .as_ref()
                .is_some_and(|w| w.value == Some(false))
        };
        let id = |i: usize| runbook.steps[i].id.value.clone();
        let predicted =
            crate::schedule::predict(dag, failing, &id(failing), concurrency, skipped_by_when);
        let (completed, skipped) = (predicted.completed, predicted.skipped);
        let plan = rollback::plan(runbook, dag, &completed);
        // If the steps beside it complete too, their rollbacks run as well.
        let most: Vec<usize> = completed
            .iter()
            .chain(&predicted.may_also_complete)
            .copied()
            .collect();
        let most_plan = rollback::plan(runbook, dag, &most);
        let rolled_back: std::collections::HashSet<usize> = plan.actions.iter().copied().collect();
        let may_also_roll_back = most_plan
            .actions
            .iter()
            .filter(|i| !rolled_back.contains(i))
            .map(|&i| id(i))
            .collect();
        let stop = Stop::StepFailed { step: id(failing) };
        let undo = Undo {
            past_no_return: !plan.past_no_return.is_empty(),
            ran: plan.actions.len(),
            ..Undo::default()
        };
        let exit_code = conclude(Some(&stop), 0, undo, &[]).exit_code;
        let outcome = if undo.past_no_return {
            format!(
                "needs a person: the run stops past the point of no return ({}); a forward fix is needed",
                plan.past_no_return.iter().map(|&i| format!("`{}`", id(i))).collect::<Vec<_>>().join(", ")
            )
        } else if plan.actions.is_empty() {
            "failed; nothing to roll back".to_owned()
        } else {
            "failed and rolled back".to_owned()
        };
        Scenario {
            concurrency,
            may_also_complete: predicted.may_also_complete.iter().map(|&i| id(i)).collect(),
            may_also_roll_back,
            failed: id(failing),
            completed: completed.iter().map(|&i| id(i)).collect(),
            skipped: skipped.iter().map(|&i| id(i)).collect(),
            rollback: plan.actions.iter().map(|&i| id(i)).collect(),
            not_rolled_back: plan
                .kept
                .iter()
                .map(|(i, reason)| NotRolledBack {
                    id: id(*i),
                    reason: reason.to_string(),
                })
                .collect(),
            exit_code,
            outcome,
        }
    });

    Ok(Plan {
        runbook: runbook.name.value.clone(),
        description: runbook.description.as_ref().map(|d| d.value.clone()),
        params: params.values.clone(),
        params_from_example: params.from_example.clone(),
        waves: waves
            .iter()
            .map(|w| {
                w.iter()
                    .map(|&i| runbook.steps[i].id.value.clone())
                    .collect()
            })
            .collect(),
        approvals: runbook
            .steps
            .iter()
            .filter(|s| s.is_approval())
            .map(|s| s.id.value.clone())
            .collect(),
        points_of_no_return: runbook
            .steps
            .iter()
            .filter(|s| s.is_irreversible())
            .map(|s| s.id.value.clone())
            .collect(),
        steps,
        finally,
        scenario,
    })
}

/// Shows which server and database a SQL action goes to (secrets are `***` in a plan).
fn describe_connection(
    runbook: &Runbook,
    renderer: &Renderer,
    context: &minijinja::Value,
    action: &mut Action,
) {
    let Action::Sql {
        connection,
        server,
        database,
        ..
    } = action
    else {
        return;
    };
    let Some(declared) = runbook.connections.get(connection) else {
        return;
    };
    let Ok(text) = renderer.text("connection", &declared.mssql, context) else {
        return;
    };
    let (host, default_database) = crate::steps::sql::describe(&text);
    *server = host;
    if database.is_none() {
        *database = default_database;
    }
}

/// The value of a `when` that reads only params and `run`; `None` when it needs run-time values.
fn static_value(
    templates: &Templates,
    when: &crate::model::Spanned<String>,
    context: &minijinja::Value,
) -> Option<bool> {
    let reads_steps = when.contains("steps") || when.contains("result");
    if reads_steps {
        return None;
    }
    templates.eval(when, context).ok().map(|v| v.is_true())
}

/// Each step of `runbook` as planned, with its wave in `dag`.
fn plan_steps(
    runbook: &Runbook,
    dag: &Dag,
    renderer: &Renderer,
    templates: &Templates,
    value: &minijinja::Value,
) -> Result<Vec<PlannedStep>, PlanError> {
    let mut wave_of = vec![0; runbook.steps.len()];
    for (w, wave) in dag.waves().iter().enumerate() {
        for &s in wave {
            wave_of[s] = w + 1;
        }
    }
    let mut steps = Vec::with_capacity(runbook.steps.len());
    for (i, step) in runbook.steps.iter().enumerate() {
        let error = |source| PlanError {
            step: step.id.value.clone(),
            source,
        };
        let mut action = renderer.step(step, value).map_err(error)?;
        let mut rollback = renderer.rollback(step, value).transpose().map_err(error)?;
        for action in std::iter::once(&mut action).chain(rollback.as_mut()) {
            describe_connection(runbook, renderer, value, action);
        }
        let when = step.when.as_ref().map(|w| When {
            expression: w.value.clone(),
            value: static_value(templates, w, value),
        });
        steps.push(PlannedStep {
            id: step.id.value.clone(),
            title: step.title.as_ref().map(|t| t.value.clone()),
            wave: wave_of[i],
            needs: step.needs.iter().map(|n| n.value.clone()).collect(),
            when,
            action,
            timeout: runbook
                .attempt_timeout(step)
                .map(|t| humantime::format_duration(t).to_string()),
            retry: Policy::resolve(step.retry.as_ref(), runbook.default_retry(step)),
            until: step.until.as_ref().map(|u| u.value.clone()),
            outputs: step.outputs.keys().cloned().collect(),
            rollback,
            irreversible: step.is_irreversible(),
            probe: step.is_probe(),
            idempotent: step.is_idempotent(),
            continue_on_failure: step.continues_on_failure(),
        });
    }
    Ok(steps)
}
