//! Params and secrets that no template reads: usually a typo on one side, or a leftover that
//! still makes the operator supply a value for nothing.

use std::collections::HashSet;

use super::Lint;
use crate::diagnostic::Problem;
use crate::model::Runbook;
use crate::validate::template_walk::Finding;
use crate::validate::templates::Site;

#[derive(Default)]
pub struct UnusedDeclarations {
    params: Used,
    secrets: Used,
}

/// The names read under one root (`params` or `secrets`).
#[derive(Default)]
struct Used {
    /// The root was read as a whole (`{{ params }}`): every name counts as read.
    all: bool,
    names: HashSet<String>,
}

impl Used {
    fn contains(&self, name: &str) -> bool {
        self.all || self.names.contains(name)
    }
}

impl Lint for UnusedDeclarations {
    fn finding(&mut self, finding: &Finding<'_>, _site: &Site<'_>, _problems: &mut Vec<Problem>) {
        let Finding::Reference(r) = finding else {
            return;
        };
        let used = match r.root {
            "params" => &mut self.params,
            "secrets" => &mut self.secrets,
            _ => return,
        };
        match r.segments.first() {
            Some((name, _)) => {
                used.names.insert(name.to_string());
            }
            None => used.all = true,
        }
    }

    fn finish(&mut self, runbook: &Runbook, problems: &mut Vec<Problem>) {
        for param in runbook.params.values() {
            if !self.params.contains(&param.name) {
                problems.push(Problem::UnusedParam {
                    name: param.name.value.clone(),
                    span: param.name.span.into(),
                });
            }
        }
        for secret in runbook.secrets.values() {
            if !self.secrets.contains(&secret.name) {
                problems.push(Problem::UnusedSecret {
                    name: secret.name.value.clone(),
                    span: secret.name.span.into(),
                });
            }
        }
    }
}
