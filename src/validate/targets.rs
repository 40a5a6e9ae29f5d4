//! Targets: `target:` only on `run` actions, naming a declared target (a template is checked
//! when it renders), a script shell the target can run, and destinations ssh cannot mistake
//! for options.

use crate::diagnostic::{Problem, list, suggestion};
use crate::model::{Rollback, RollbackKind, Run, Runbook, Spanned, StepKind};
use crate::target::{Destination, same_family};

pub fn check(runbook: &Runbook, problems: &mut Vec<Problem>) {
    for target in runbook.targets.values() {
        if is_template(&target.ssh) {
            continue;
        }
        if let Err(reason) = Destination::parse(&target.ssh) {
            problems.push(Problem::InvalidSshDestination {
                found: target.ssh.value.clone(),
                reason: reason.to_string(),
                span: target.ssh.span.into(),
            });
        }
    }
    for hook in &runbook.notify {
        if let Some(target) = &hook.target {
            action(
                runbook,
                target,
                Some(&hook.run),
                "run",
                "notify hook",
                problems,
            );
        }
    }
    for step in runbook.steps.iter().chain(&runbook.finally) {
        let run = match &step.kind {
            StepKind::Run(run) => Some(run),
            _ => None,
        };
        if let Some(target) = &step.target {
            action(
                runbook,
                target,
                run,
                kind_name(&step.kind),
                "step",
                problems,
            );
        }
        if let Some(rehearse) = &step.rehearse
            && let Some(target) = &rehearse.target
        {
            let run = match &rehearse.kind {
                crate::model::RehearseKind::Run(run) => Some(run),
                crate::model::RehearseKind::Sql(_) => None,
            };
            let kind = if run.is_some() { "run" } else { "sql" };
            action(runbook, target, run, kind, "rehearsal", problems);
        }
        if let Some(rollback) = &step.rollback
            && let Some(target) = &rollback.target
        {
            let run = match &rollback.kind {
                RollbackKind::Run(run) => Some(run),
                RollbackKind::Sql(_) | RollbackKind::Approval(_) => None,
            };
            action(
                runbook,
                target,
                run,
                rollback_kind_name(rollback),
                "rollback",
                problems,
            );
        }
    }
}

fn kind_name(kind: &StepKind) -> &'static str {
    match kind {
        StepKind::Run(_) => "run",
        StepKind::Sql(_) => "sql",
        StepKind::Wait(_) => "wait",
        StepKind::Assert(_) => "assert",
        StepKind::Approval(_) => "approval",
    }
}

fn rollback_kind_name(rollback: &Rollback) -> &'static str {
    match rollback.kind {
        RollbackKind::Run(_) => "run",
        RollbackKind::Sql(_) => "sql",
        RollbackKind::Approval(_) => "approval",
    }
}

fn is_template(text: &str) -> bool {
    text.contains("{{") || text.contains("{%")
}

fn action(
    runbook: &Runbook,
    target: &Spanned<String>,
    run: Option<&Run>,
    kind: &'static str,
    what: &'static str,
    problems: &mut Vec<Problem>,
) {
    let Some(run) = run else {
        problems.push(Problem::TargetNotRun {
            kind,
            what,
            span: target.span.into(),
        });
        return;
    };
    if is_template(target) {
        return;
    }
    let Some(declared) = runbook.targets.get(target.as_str()) else {
        let names = runbook.targets.keys().map(String::as_str);
        let help = suggestion(target, names, || {
            if runbook.targets.is_empty() {
                "declare it under `targets:` with its `ssh` destination".to_owned()
            } else {
                format!(
                    "targets are {}",
                    list(runbook.targets.keys().map(String::as_str))
                )
            }
        });
        problems.push(Problem::UnknownTarget {
            name: target.value.clone(),
            span: target.span.into(),
            help,
        });
        return;
    };
    if let Some(shell) = &run.shell {
        let target_shell = declared.shell().name();
        if !same_family(shell.value.name(), target_shell) {
            problems.push(Problem::TargetShell {
                shell: shell.value.name().to_owned(),
                target: target.value.clone(),
                target_shell: target_shell.to_owned(),
                span: shell.span.into(),
            });
        }
    }
}
