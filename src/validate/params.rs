//! Params: names, patterns, and defaults, examples and `enum` values that must fit the
//! declared type, pattern and `enum`.

use regex::Regex;

use super::is_valid_id;
use crate::diagnostic::Problem;
use crate::model::{Param, ParamType, Runbook};
use crate::yaml::{Node, Value};

pub fn check(runbook: &Runbook, problems: &mut Vec<Problem>) {
    for param in runbook.params.values() {
        check_name("param name", &param.name.value, param.name.span, problems);
        let pattern =
            param
                .pattern
                .as_ref()
                .and_then(|p| match Regex::new(&format!("^(?:{})$", p.value)) {
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
                if let Some(reason) = type_mismatch(param.param_type(), value) {
                    push(problems, param, "an `enum` value", reason, value);
                }
            }
        }
        for (what, value) in [
            ("the default", &param.default),
            ("the example", &param.example),
        ] {
            let Some(value) = value else { continue };
            if let Some(reason) = fits(param, pattern.as_ref(), value) {
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

/// Why `value` is not a valid value of `param`, if it is not.
pub fn fits(param: &Param, pattern: Option<&Regex>, value: &Node) -> Option<String> {
    if let Some(reason) = type_mismatch(param.param_type(), value) {
        return Some(reason);
    }
    if let (Some(re), Value::String(s)) = (pattern, &value.value)
        && !re.is_match(s)
    {
        let shown = param.pattern.as_ref().map_or("", |p| p.as_str());
        return Some(format!("`{s}` does not match the pattern `{shown}`"));
    }
    if let Some(allowed) = &param.allowed {
        let json = value.to_json();
        if !allowed.iter().any(|a| a.to_json() == json) {
            let choices: Vec<String> = allowed.iter().map(|a| a.to_json().to_string()).collect();
            return Some(format!("{json} is not one of {}", choices.join(", ")));
        }
    }
    None
}

fn type_mismatch(ty: ParamType, value: &Node) -> Option<String> {
    let ok = matches!(
        (ty, &value.value),
        (ParamType::String, Value::String(_))
            | (ParamType::Int, Value::Int(_))
            | (ParamType::Bool, Value::Bool(_))
            | (ParamType::List, Value::Seq(_))
            | (ParamType::Map, Value::Map(_))
    );
    (!ok).then(|| format!("expected {}, found {}", ty.name(), value.value.kind()))
}

fn first_line(text: &str) -> String {
    text.lines()
        .rfind(|l| !l.trim().is_empty())
        .unwrap_or(text)
        .trim()
        .to_owned()
}
