//! Renders a dry-run plan: human (terminal), json, and markdown (for a change ticket).
//! Secrets are already `***` in a plan; the masker is applied anyway as the last line of defence.

use std::collections::HashMap;
use std::fmt::Write;

use crate::plan::{Plan, PlannedStep, Scenario};
use crate::render::Action;

pub fn json(plan: &Plan) -> String {
    let mut text = serde_json::to_string_pretty(plan).unwrap_or_default();
    text.push('\n');
    text
}

/// The steps by id: a search of the list per step was quadratic (a 40,000-step chain took
/// seconds).
fn by_id(plan: &Plan) -> HashMap<&str, &PlannedStep> {
    plan.steps.iter().map(|s| (s.id.as_str(), s)).collect()
}

/// The waves, each with its steps.
fn waves(plan: &Plan) -> impl Iterator<Item = (usize, Vec<&PlannedStep>)> {
    let by_id = by_id(plan);
    plan.waves.iter().enumerate().map(move |(w, wave)| {
        let steps = wave
            .iter()
            .filter_map(|id| by_id.get(id.as_str()).copied())
            .collect();
        (w, steps)
    })
}

fn params_line(plan: &Plan) -> String {
    plan.params
        .iter()
        .map(|(k, v)| {
            let shown = match v {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            let example = if plan.params_from_example.contains(k) {
                " (example)"
            } else {
                ""
            };
            format!("{k}={shown}{example}")
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn retry_text(step: &PlannedStep) -> Option<String> {
    let r = &step.retry;
    if r.attempts <= 1 {
        return None;
    }
    let mut text = format!(
        "{} attempts, {} {}",
        r.attempts,
        humantime::format_duration(r.delay),
        r.backoff
    );
    if let Some(max) = r.max_delay {
        let _ = write!(text, " up to {}", humantime::format_duration(max));
    }
    if r.jitter {
        text.push_str(", jitter");
    }
    if let Some(on) = &r.on {
        let mut what = Vec::new();
        if !on.exit_codes.is_empty() {
            what.push(format!("exit codes {:?}", on.exit_codes));
        }
        if !on.sql_errors.is_empty() {
            what.push(format!("SQL errors {:?}", on.sql_errors));
        }
        if on.timeout {
            what.push("timeout".to_owned());
        }
        if on.connect {
            what.push("connect".to_owned());
        }
        let _ = write!(text, ", on {}", what.join(", "));
    }
    Some(text)
}

fn flags(step: &PlannedStep) -> String {
    let mut flags = Vec::new();
    if step.irreversible {
        flags.push("IRREVERSIBLE");
    }
    if step.probe {
        flags.push("probe");
    }
    if step.idempotent {
        flags.push("idempotent");
    }
    if step.continue_on_failure {
        flags.push("continue on failure");
    }
    if flags.is_empty() {
        String::new()
    } else {
        format!(" [{}]", flags.join(", "))
    }
}

/// A `for_each` step: every instance with its action and rollback, or, when the list is only
/// known at run time, what it will be with the step's action (its item as `<item>`).
fn loop_lines(step: &PlannedStep, each: &crate::plan::PlannedLoop, out: &mut String) {
    let pace = match each.concurrency {
        1 => "one at a time, in order".to_owned(),
        n => format!("{n} at a time"),
    };
    let budget = format!("max_failures {}", each.max_failures);
    let rollback =
        |action: &Option<crate::render::Action>, indent: &str, out: &mut String| match action {
            Some(action) => {
                let _ = writeln!(out, "{indent}rollback:");
                crate::report::action::lines(action, &format!("{indent}  "), out);
            }
            None => {
                let _ = writeln!(out, "{indent}rollback: none");
            }
        };
    if let Some(of) = &each.items_of {
        let _ = writeln!(
            out,
            "      for each {} of {of} (known at run time), {pace}, {budget}",
            each.item_as
        );
        crate::report::action::lines(&step.action, "      ", out);
        rollback(&step.rollback, "      ", out);
        return;
    }
    let _ = writeln!(
        out,
        "      for each {}: {} items, {pace}, {budget}",
        each.item_as,
        each.instances.len()
    );
    for instance in &each.instances {
        let _ = writeln!(out, "      ▸ {}", instance.id);
        crate::report::action::lines(&instance.action, "          ", out);
        rollback(&instance.rollback, "          ", out);
    }
}

pub fn human(plan: &Plan) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Plan for `{}`: {} steps in {} waves (dry-run: nothing is executed)",
        plan.runbook,
        plan.steps.len(),
        plan.waves.len()
    );
    if !plan.params.is_empty() {
        let _ = writeln!(out, "params: {}", params_line(plan));
    }
    for (w, wave) in waves(plan) {
        let parallel = if wave.len() > 1 { " (in parallel)" } else { "" };
        let _ = writeln!(out, "\nWave {}{parallel}", w + 1);
        for step in wave {
            let title = step
                .title
                .as_ref()
                .map(|t| format!(" — {t}"))
                .unwrap_or_default();
            let _ = writeln!(out, "  ▸ {}{title}{}", step.id, flags(step));
            if !step.needs.is_empty() {
                let _ = writeln!(out, "      needs: {}", step.needs.join(", "));
            }
            if let Some(when) = &step.when {
                let value = match when.value {
                    Some(true) => " (true: runs)",
                    Some(false) => " (false: skipped)",
                    None => " (decided at run time)",
                };
                let _ = writeln!(out, "      when: {}{value}", when.expression);
            }
            match &step.for_each {
                Some(each) => loop_lines(step, each, &mut out),
                None => crate::report::action::lines(&step.action, "      ", &mut out),
            }
            if let Some(until) = &step.until {
                let _ = writeln!(out, "      until: {until}");
            }
            if let Some(retry) = retry_text(step) {
                let _ = writeln!(out, "      retry: {retry}");
            }
            if let Some(timeout) = &step.timeout {
                let _ = writeln!(out, "      timeout: {timeout}");
            }
            crate::report::estimate::step_line(plan, step, &mut out);
            match &step.rollback {
                // Shown with the instances.
                _ if step.for_each.is_some() => {}
                Some(action) => {
                    let _ = writeln!(out, "      rollback:");
                    crate::report::action::lines(action, "        ", &mut out);
                }
                None if step.irreversible => {
                    let _ = writeln!(out, "      rollback: none — point of no return");
                }
                None => {
                    let _ = writeln!(out, "      rollback: none");
                }
            }
        }
    }
    if !plan.finally.is_empty() {
        let _ = writeln!(
            out,
            "\nFinally (after the run and its rollback, whatever the outcome; run.outcome is succeeded, failed, needs_person or interrupted)"
        );
        for step in &plan.finally {
            let _ = writeln!(out, "  ▸ {}{}", step.id, flags(step));
            if !step.needs.is_empty() {
                let _ = writeln!(out, "      needs: {}", step.needs.join(", "));
            }
            crate::report::action::lines(&step.action, "      ", &mut out);
        }
    }
    let _ = writeln!(
        out,
        "\nApprovals: {}",
        if plan.approvals.is_empty() {
            "none".to_owned()
        } else {
            plan.approvals.join(", ")
        }
    );
    let _ = writeln!(
        out,
        "Points of no return: {}",
        if plan.points_of_no_return.is_empty() {
            "none".to_owned()
        } else {
            plan.points_of_no_return.join(", ")
        }
    );
    if let Some(estimate) = &plan.estimate {
        crate::report::estimate::section(estimate, &mut out);
    }
    if let Some(scenario) = &plan.scenario {
        scenario_human(plan, scenario, &mut out);
    }
    out
}

fn scenario_human(plan: &Plan, scenario: &Scenario, out: &mut String) {
    let _ = writeln!(
        out,
        "\nIf `{}` fails (run with --concurrency {}):",
        scenario.failed, scenario.concurrency
    );
    if scenario.completed.is_empty() {
        let _ = writeln!(out, "  1. nothing has completed before it");
    } else {
        let _ = writeln!(
            out,
            "  1. completed before it: {}",
            scenario.completed.join(", ")
        );
    }
    if !scenario.skipped.is_empty() {
        let _ = writeln!(
            out,
            "     skipped by `when`: {}",
            scenario.skipped.join(", ")
        );
    }
    if !scenario.may_also_complete.is_empty() {
        let _ = writeln!(
            out,
            "     may also complete while it runs (steps beside it): {}",
            scenario.may_also_complete.join(", ")
        );
    }
    let _ = writeln!(
        out,
        "  2. `{}` fails after its last attempt",
        scenario.failed
    );
    if scenario.rollback.is_empty() {
        let _ = writeln!(out, "  3. rollback: nothing to run");
    } else {
        let _ = writeln!(out, "  3. rollback, one at a time in this order:");
        let by_id = by_id(plan);
        for (k, id) in scenario.rollback.iter().enumerate() {
            let _ = writeln!(out, "     {}. {id}", k + 1);
            if let Some(action) = by_id.get(id.as_str()).and_then(|s| s.rollback.as_ref()) {
                crate::report::action::lines(action, "          ", out);
            }
        }
    }
    if !scenario.may_also_roll_back.is_empty() {
        let _ = writeln!(
            out,
            "     and, if the steps beside it completed, also: {}",
            scenario.may_also_roll_back.join(", ")
        );
    }
    if !scenario.not_rolled_back.is_empty() {
        let _ = writeln!(out, "  not rolled back:");
        for k in &scenario.not_rolled_back {
            let _ = writeln!(out, "     {} — {}", k.id, k.reason);
        }
    }
    let _ = writeln!(
        out,
        "  outcome: {} (exit {})",
        scenario.outcome, scenario.exit_code
    );
}

pub fn markdown(plan: &Plan) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# Plan: `{}`\n", plan.runbook);
    if let Some(d) = &plan.description {
        let _ = writeln!(out, "{}\n", d.trim());
    }
    if !plan.params.is_empty() {
        let _ = writeln!(out, "**Parameters:** {}\n", params_line(plan));
    }
    let _ = writeln!(out, "| wave | step | title | rollback | notes |");
    let _ = writeln!(out, "|---:|---|---|---|---|");
    for (w, wave) in waves(plan) {
        for step in wave {
            let rollback = if step.rollback.is_some() {
                "yes"
            } else if step.irreversible {
                "**point of no return**"
            } else {
                "—"
            };
            let mut notes = flags(step).trim().trim_matches(['[', ']']).to_owned();
            if matches!(step.action, Action::Approval { .. }) {
                notes = format!("approval {notes}").trim().to_owned();
            }
            let _ = writeln!(
                out,
                "| {} | `{}` | {} | {rollback} | {notes} |",
                w + 1,
                step.id,
                step.title.as_deref().unwrap_or("").replace('|', "\\|"),
            );
        }
    }
    for step in &plan.finally {
        let _ = writeln!(
            out,
            "| finally | `{}` | {} | — | |",
            step.id,
            step.title.as_deref().unwrap_or("").replace('|', "\\|")
        );
    }
    let _ = writeln!(out, "\n## Steps\n");
    for step in &plan.steps {
        let _ = writeln!(out, "### `{}`{}\n", step.id, flags(step));
        if let Some(t) = &step.title {
            let _ = writeln!(out, "{t}\n");
        }
        if let Some(when) = &step.when {
            let _ = writeln!(out, "- when: `{}`", when.expression);
        }
        if let Some(retry) = retry_text(step) {
            let _ = writeln!(out, "- retry: {retry}");
        }
        if let Some(timeout) = &step.timeout {
            let _ = writeln!(out, "- timeout: {timeout}");
        }
        if let Some(until) = &step.until {
            let _ = writeln!(out, "- until: `{until}`");
        }
        let mut body = String::new();
        crate::report::action::lines(&step.action, "", &mut body);
        let _ = writeln!(out, "\n```text\n{}```\n", body);
        if let Some(action) = &step.rollback {
            let mut body = String::new();
            crate::report::action::lines(action, "", &mut body);
            let _ = writeln!(out, "Rollback:\n\n```text\n{}```\n", body);
        }
    }
    if let Some(estimate) = plan.estimate.as_ref().filter(|e| e.declared) {
        let mut body = String::new();
        crate::report::estimate::section(estimate, &mut body);
        let _ = writeln!(out, "## Estimate\n\n```text\n{}```\n", body.trim_start());
    }
    if let Some(s) = &plan.scenario {
        let _ = writeln!(out, "## If `{}` fails\n", s.failed);
        let _ = writeln!(
            out,
            "1. Completed before it: {}",
            list_or_none(&s.completed)
        );
        if !s.may_also_complete.is_empty() {
            let _ = writeln!(
                out,
                "   May also complete while it runs (up to {} steps at a time): {}",
                s.concurrency,
                list_or_none(&s.may_also_complete)
            );
        }
        let _ = writeln!(out, "2. `{}` fails after its last attempt.", s.failed);
        let _ = writeln!(out, "3. Rollback, in order: {}", list_or_none(&s.rollback));
        if !s.may_also_roll_back.is_empty() {
            let _ = writeln!(
                out,
                "   If the steps beside it completed, also: {}",
                list_or_none(&s.may_also_roll_back)
            );
        }
        for k in &s.not_rolled_back {
            let _ = writeln!(out, "   - `{}` is not rolled back: {}", k.id, k.reason);
        }
        let _ = writeln!(out, "\n**Outcome:** {} (exit {}).", s.outcome, s.exit_code);
    }
    out
}

fn list_or_none(ids: &[String]) -> String {
    if ids.is_empty() {
        "none".to_owned()
    } else {
        ids.iter()
            .map(|i| format!("`{i}`"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}
