//! Params: names, patterns, and defaults, examples and `enum` values that must fit the
//! declared type, pattern and `enum`.

use super::is_valid_id;
use crate::bind::{check_value, type_mismatch};
use crate::diagnostic::Problem;
use crate::model::{Param, Runbook};
use crate::yaml::Node;

pub fn check(runbook: &Runbook, problems: &mut Vec<Problem>) {
    for param in runbook.params.values() {
        check_name("param name", &param.name.value, param.name.span, problems);
        let pattern = param
            .pattern
            .as_ref()
            .and_then(|p| match crate::bind::anchored(&p.value) {
                Ok(re) => Some(re),
                Err(err) => {
                    problems.push(Problem::InvalidPattern {
                        reason: first_line(&err.to_string()),
                        span: p.span.into(),
                    });
                    None
                }
            });
        if let Some(allowed) = &param.allowed {
            for value in allowed.iter() {
                if let Some(reason) = type_mismatch(param.param_type(), &value.to_json()) {
                    push(problems, param, "an `enum` value", reason, value);
                }
            }
        }
        for (what, value) in [
            ("the default", &param.default),
            ("the example", &param.example),
        ] {
            let Some(value) = value else { continue };
            if let Some(reason) = check_value(param, pattern.as_ref(), &value.to_json()) {
                push(problems, param, what, reason, value);
            }
        }
    }
    for secret in runbook.secrets.values() {
        check_name(
            "secret name",
            &secret.name.value,
            secret.name.span,
            problems,
        );
    }
    for step in &runbook.steps {
        for name in step.outputs.keys() {
            if !is_valid_id(name, false) {
                problems.push(Problem::InvalidId {
                    what: "output name",
                    name: name.clone(),
                    span: step.outputs[name].span.into(),
                    help: "an output name starts with a letter or `_`, then letters, digits or `_`"
                        .to_owned(),
                });
            }
        }
    }
}

fn check_name(
    what: &'static str,
    name: &str,
    span: crate::yaml::Span,
    problems: &mut Vec<Problem>,
) {
    if !is_valid_id(name, false) {
        problems.push(Problem::InvalidId {
            what,
            name: name.to_owned(),
            span: span.into(),
            help: format!(
                "a {what} starts with a letter or `_`, then letters, digits or `_`, so that templates can read it"
            ),
        });
    }
}

fn push(problems: &mut Vec<Problem>, param: &Param, what: &'static str, reason: String, at: &Node) {
    problems.push(Problem::InvalidParamValue {
        param: param.name.value.clone(),
        what,
        reason,
        span: at.span.into(),
        help: match &param.allowed {
            Some(_) => {
                "the value must be of the declared `type`, match `pattern` and be one of `enum`"
                    .to_owned()
            }
            None => "the value must be of the declared `type` and match `pattern`".to_owned(),
        },
    });
}

fn first_line(text: &str) -> String {
    text.lines()
        .rfind(|l| !l.trim().is_empty())
        .unwrap_or(text)
        .trim()
        .to_owned()
}
