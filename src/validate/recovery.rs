//! The recovery objective: `service_restored_at` names a step of the run (a finally step
//! runs after the outage is over or not, so it cannot end it).

use crate::dag::Dag;
use crate::diagnostic::{Problem, suggestion};
use crate::model::Runbook;

pub fn check(runbook: &Runbook, dag: &Dag, problems: &mut Vec<Problem>) {
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
