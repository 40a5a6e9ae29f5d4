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
    /// The critical path and the expected time to service restored against the RTO.
    pub estimate: Option<crate::estimate::Estimate>,
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
    /// A `for_each` step: its items, and each instance when the list is known at plan time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub for_each: Option<PlannedLoop>,
    /// Its expected start and end (zero for a finally step).
    #[serde(flatten)]
    pub expected: crate::estimate::Expected,
}

/// The items of a `for_each` step as planned.
#[derive(Debug, Serialize)]
pub struct PlannedLoop {
    /// The item variable.
    #[serde(rename = "as")]
    pub item_as: String,
    /// What the list is, when only the run will know it (`<steps.find-logs.rows>`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub items_of: Option<String>,
    pub concurrency: usize,
    pub max_failures: usize,
    /// Every instance, rendered with its item (empty when the list is not known yet).
    pub instances: Vec<PlannedInstance>,
}

/// One instance of a `for_each` step as planned.
#[derive(Debug, Serialize)]
pub struct PlannedInstance {
    pub id: String,
    pub action: Action,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rollback: Option<Action>,
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

/// Where `--fail-at` makes the rehearsed run fail: a step, or one instance of a `for_each`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FailAt {
    pub step: usize,
    /// `STEP[KEY]`: the instance that fails.
    pub instance: Option<String>,
}

impl From<usize> for FailAt {
    fn from(step: usize) -> Self {
        Self {
            step,
            instance: None,
        }
    }
}

/// Why `--fail-at STEP[KEY]` names no instance the plan can fail.
#[derive(Debug, thiserror::Error)]
pub enum FailAtError {
    #[error(
        "--fail-at: the items of `{step}` are known only at run time; name the step itself to fail it whole"
    )]
    ItemsUnknown { step: String },
    #[error("--fail-at: `{step}` has no instance `{id}`; its instances: {known}")]
    NoInstance {
        step: String,
        id: String,
        known: String,
    },
    #[error(
        "--fail-at: one failing item of `{step}` is within its max_failures ({budget}): the run would go on; name the step itself to fail it whole"
    )]
    WithinBudget { step: String, budget: usize },
}

/// What `build` can refuse.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(transparent)]
    Render(#[from] PlanError),
    #[error(transparent)]
    FailAt(#[from] FailAtError),
}

/// Builds the plan of `runbook` with the bound params; `fail_at` adds the failure scenario;
/// `history` the durations past runs measured, for the estimate.
pub fn build(
    runbook: &Runbook,
    dag: &Dag,
    params: &Bound,
    fail_at: Option<FailAt>,
    concurrency: usize,
    history: Option<&crate::history::History>,
) -> Result<Plan, BuildError> {
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
    let waves = dag.waves();

    let mut steps = plan_steps(runbook, dag, &renderer, &templates, &context)?;
    let estimate = crate::estimate::estimate(runbook, dag, &waves, &mut steps, history);
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
            plan_steps(&part, &Dag::new(&part), &renderer, &templates, &context)?
        }
    };

    let fail_at_id = fail_at.as_ref().and_then(|f| f.instance.clone());
    // The instance that fails, by its position among the step's instances.
    let failing_item = match &fail_at {
        Some(FailAt {
            step,
            instance: Some(id),
        }) => Some(failing_instance(&steps[*step], runbook, *step, id)?),
        _ => None,
    };
    let scenario = fail_at.map(|FailAt { step: failing, .. }| {
        let skipped_by_when = |i: usize| {
            steps[i]
                .when
                .as_ref()
                .is_some_and(|w| w.value == Some(false))
        };
        let id = |i: usize| runbook.steps[i].id.value.clone();
        // A `for_each` step stands for its instances: those that complete, in order, and
        // their rollbacks in reverse.
        // The failing step's items: those that surely complete, and those that may also.
        let items = match (&steps[failing].for_each, failing_item) {
            (Some(each), Some(k)) => crate::schedule::predict_items(
                each.instances.len(),
                k,
                each.concurrency,
                each.max_failures,
            ),
            _ => crate::schedule::ItemPrediction::default(),
        };
        let item_ids = |ns: &[usize]| -> Vec<String> {
            let instances = steps[failing].for_each.iter().flat_map(|e| &e.instances);
            let ids: Vec<&PlannedInstance> = instances.collect();
            ns.iter().filter_map(|&n| ids.get(n)).map(|p| p.id.clone()).collect()
        };
        let done = |i: usize| -> Vec<String> {
            match (&steps[i].for_each, i == failing) {
                (Some(_), true) => item_ids(&items.completed),
                (Some(each), false) if !each.instances.is_empty() => {
                    each.instances.iter().map(|p| p.id.clone()).collect()
                }
                _ => vec![id(i)],
            }
        };
        let undone = |i: usize| -> Vec<String> {
            let mut ids = done(i);
            ids.reverse();
            ids
        };
        let predicted =
            crate::schedule::predict(dag, failing, &id(failing), concurrency, skipped_by_when);
        let (mut completed, skipped) = (predicted.completed, predicted.skipped);
        // Items before the failing one completed: the step counts for the rollback.
        let partly = failing_item.is_some_and(|k| k > 0);
        if partly {
            completed.push(failing);
        }
        let plan = rollback::plan(runbook, dag, &completed);
        // If the steps beside it complete too, their rollbacks run as well.
        let mut most: Vec<usize> = completed
            .iter()
            .chain(&predicted.may_also_complete)
            .copied()
            .collect();
        // Its later items may complete too: then the step counts for the rollback.
        if !items.may_also_complete.is_empty() && !most.contains(&failing) {
            most.push(failing);
        }
        let most_plan = rollback::plan(runbook, dag, &most);
        let rolled_back: std::collections::HashSet<usize> = plan.actions.iter().copied().collect();
        // Later items of the failing step that complete while it runs are undone first.
        let mut may_also_roll_back: Vec<String> = item_ids(&items.may_also_complete);
        may_also_roll_back.reverse();
        if !most_plan.actions.contains(&failing) {
            may_also_roll_back.clear();
        }
        may_also_roll_back.extend(
            most_plan
                .actions
                .iter()
                .filter(|i| !rolled_back.contains(i))
                .flat_map(|&i| undone(i)),
        );
        let stop = Stop::StepFailed { step: id(failing) };
        let rollback: Vec<String> = plan.actions.iter().flat_map(|&i| undone(i)).collect();
        let undo = Undo {
            past_no_return: !plan.past_no_return.is_empty(),
            ran: rollback.len(),
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
            may_also_complete: item_ids(&items.may_also_complete)
                .into_iter()
                .chain(predicted.may_also_complete.iter().flat_map(|&i| done(i)))
                .collect(),
            may_also_roll_back,
            failed: match &fail_at_id {
                Some(instance) => instance.clone(),
                None => id(failing),
            },
            completed: completed.iter().flat_map(|&i| done(i)).collect(),
            skipped: skipped.iter().map(|&i| id(i)).collect(),
            rollback,
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
        estimate,
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
    context: &Context,
) -> Result<Vec<PlannedStep>, PlanError> {
    let value = &context.value();
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
        // A step from a group reads the group's params and siblings.
        let scoped =
            (!step.scope.is_empty()).then(|| crate::scope::for_step(step, templates, context));
        let context = scoped.as_ref().unwrap_or(context);
        let scoped_value = scoped.as_ref().map(Context::value);
        let value = scoped_value.as_ref().unwrap_or(value);
        let for_each = match step.for_each.is_some() {
            true => Some(plan_loop(runbook, step, renderer, templates, context).map_err(error)?),
            false => None,
        };
        // A `for_each` step's own action shows its item as `<item>`.
        let placeholder = step.for_each.as_ref().map(|_| {
            let name = step.item_name();
            context.with_item(name, &serde_json::Value::String(format!("<{name}>")))
        });
        let value = &placeholder.map_or_else(|| value.clone(), |c| c.value());
        let (action, rollback) = render_step(runbook, step, renderer, value).map_err(error)?;
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
            retry: Policy::resolve(step.retry.as_deref(), runbook.default_retry(step)),
            until: step.until.as_ref().map(|u| u.value.clone()),
            outputs: step.outputs.keys().cloned().collect(),
            rollback,
            irreversible: step.is_irreversible(),
            probe: step.is_probe(),
            idempotent: step.is_idempotent(),
            continue_on_failure: step.continues_on_failure(),
            for_each,
            expected: crate::estimate::Expected::default(),
        });
    }
    Ok(steps)
}

/// The position of instance `id` among the planned instances of step `i`.
fn failing_instance(
    step: &PlannedStep,
    runbook: &Runbook,
    i: usize,
    id: &str,
) -> Result<usize, FailAtError> {
    let name = || runbook.steps[i].id.value.clone();
    let Some(each) = step.for_each.as_ref().filter(|e| e.items_of.is_none()) else {
        return Err(FailAtError::ItemsUnknown { step: name() });
    };
    if each.max_failures > 0 {
        return Err(FailAtError::WithinBudget {
            step: name(),
            budget: each.max_failures,
        });
    }
    each.instances
        .iter()
        .position(|p| p.id == id)
        .ok_or_else(|| FailAtError::NoInstance {
            step: name(),
            id: id.to_owned(),
            known: crate::diagnostic::list(each.instances.iter().map(|p| p.id.as_str())),
        })
}

/// A step's action and rollback rendered with `value`.
fn render_step(
    runbook: &Runbook,
    step: &crate::model::Step,
    renderer: &Renderer,
    value: &minijinja::Value,
) -> Result<(Action, Option<Action>), crate::render::RenderError> {
    let mut action = renderer.step(step, value)?;
    let mut rollback = renderer.rollback(step, value).transpose()?;
    for action in std::iter::once(&mut action).chain(rollback.as_mut()) {
        describe_connection(runbook, renderer, value, action);
    }
    Ok((action, rollback))
}

/// The instances of a `for_each` step when its list is known at plan time (a literal list,
/// or a template over params); else what the list will be, as a placeholder.
fn plan_loop(
    runbook: &Runbook,
    step: &crate::model::Step,
    renderer: &Renderer,
    templates: &Templates,
    context: &Context,
) -> Result<PlannedLoop, crate::render::RenderError> {
    let mut planned = PlannedLoop {
        item_as: step.item_name().to_owned(),
        items_of: None,
        concurrency: step.item_concurrency(),
        max_failures: step.failure_budget(),
        instances: Vec::new(),
    };
    let reads_steps = match step.for_each.as_ref().map(|f| &f.value) {
        Some(crate::model::ForEach::Template(text)) => text.contains("steps"),
        _ => false,
    };
    let value = context.value();
    let items = match crate::items::items(step, templates, &value, &crate::mask::Masker::default())
    {
        Some(Ok(items)) if !reads_steps => items,
        _ => {
            let text = match step.for_each.as_ref().map(|f| &f.value) {
                // A placeholder renders as `<steps.x.rows>`; a filter over one cannot render.
                Some(crate::model::ForEach::Template(text)) => {
                    templates.render(text, &value).unwrap_or_else(|_| {
                        let inner = text.trim().trim_start_matches("{{").trim_end_matches("}}");
                        format!("<{}>", inner.trim())
                    })
                }
                _ => String::new(),
            };
            planned.items_of = Some(text);
            return Ok(planned);
        }
    };
    for item in items {
        let value = context.with_item(step.item_name(), &item.value).value();
        let (action, rollback) = render_step(runbook, step, renderer, &value)?;
        planned.instances.push(PlannedInstance {
            id: item.id,
            action,
            rollback,
        });
    }
    Ok(planned)
}
