//! The recovery objective: `service_restored_at` names a step of the run (a finally step
//! runs after the outage is over or not, so it cannot end it); with an `rto`, every `run`
//! and `sql` step of the run says how long it takes (`expect`), or the estimate counts it 0.

use crate::dag::Dag;
use crate::diagnostic::{Problem, suggestion};
use crate::model::{Runbook, StepKind};

pub fn check(runbook: &Runbook, dag: &Dag, problems: &mut Vec<Problem>) {
    if runbook.rto.is_some() {
        for step in &runbook.steps {
            let acts = matches!(step.kind, StepKind::Run(_) | StepKind::Sql(_));
            if acts && step.expect.is_none() {
                problems.push(Problem::NoEstimate {
                    id: step.id.value.clone(),
                    span: step.id.span.into(),
                });
            }
        }
    }
    let Some(named) = &runbook.service_restored_at else {
        return;
    };
    if dag.index_of(named).is_some() {
        return;
    }
    let help = suggestion(named, runbook.steps.iter().map(|s| s.id.as_str()), || {
        "name the step after which users have their service back".to_owned()
    });
    problems.push(Problem::UnknownServiceRestoredAt {
        id: named.value.clone(),
        span: named.span.into(),
        help,
    });
}
