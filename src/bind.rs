//! Binding the operator's parameters (`-p KEY=VALUE`, `--params FILE`) to the declared params,
//! and reading secrets from their sources. Every problem is collected before anything runs.

use std::path::Path;

use regex::Regex;
use serde_json::{Map, Value};
use thiserror::Error;

use crate::diagnostic::{list, suggestion};
use crate::model::{Param, ParamType, Runbook};

/// A problem with the parameters or secrets given for a run.
#[derive(Debug, Error)]
pub enum ParamError {
    #[error("`{arg}` is not KEY=VALUE")]
    Syntax { arg: String },
    #[error("cannot read params file `{path}`: {reason}")]
    File { path: String, reason: String },
    #[error("unknown param `{name}`; {help}")]
    Unknown { name: String, help: String },
    #[error("missing required param `{name}`{description}")]
    Missing { name: String, description: String },
    #[error("param `{name}`: {reason}")]
    Invalid { name: String, reason: String },
    #[error("secret `{name}`: environment variable `{variable}` is not set")]
    SecretEnv { name: String, variable: String },
    #[error("secret `{name}`: cannot read `{path}`: {reason}")]
    SecretFile {
        name: String,
        path: String,
        reason: String,
    },
}

/// The largest params file read; `--params /dev/zero` must not exhaust memory.
pub const MAX_PARAMS_FILE_BYTES: u64 = 16 * 1024 * 1024;

/// The largest secret file read: secrets are passwords and keys, not data.
pub const MAX_SECRET_FILE_BYTES: u64 = 1024 * 1024;

/// Parameter values for a run, every declared param present.
#[derive(Debug, Clone, Default)]
pub struct Bound {
    pub values: Map<String, Value>,
    /// Params that took their `example` because none was given (dry-run only).
    pub from_example: Vec<String>,
    /// Keys of the params file that are not params of this runbook.
    pub ignored: Vec<String>,
}

/// Binds parameters: the file first, then `-p` pairs over it, then defaults.
/// With `examples`, a missing required param takes its `example` (for rehearsals).
pub fn bind(
    runbook: &Runbook,
    pairs: &[String],
    file: Option<&Path>,
    examples: bool,
) -> Result<Bound, Vec<ParamError>> {
    let mut errors = Vec::new();
    let mut given: Map<String, Value> = Map::new();

    let mut bound = Bound::default();
    if let Some(path) = file {
        match read_file(path) {
            // One params file may serve several runbooks (failover and failback): keys that
            // are not params of this runbook are set aside and reported, not refused.
            Ok(values) => {
                for (key, value) in values {
                    if runbook.params.contains_key(&key) {
                        given.insert(key, value);
                    } else {
                        bound.ignored.push(key);
                    }
                }
            }
            Err(e) => errors.push(e),
        }
    }
    for arg in pairs {
        let Some((key, raw)) = arg.split_once('=') else {
            errors.push(ParamError::Syntax { arg: arg.clone() });
            continue;
        };
        let key = key.trim();
        match runbook.params.get(key) {
            Some(param) => match parse_value(param.param_type(), raw) {
                Ok(v) => {
                    given.insert(key.to_owned(), v);
                }
                Err(reason) => errors.push(ParamError::Invalid {
                    name: key.to_owned(),
                    reason,
                }),
            },
            None => given
                .insert(key.to_owned(), Value::String(raw.to_owned()))
                .map_or((), drop),
        }
    }

    for name in given.keys() {
        if !runbook.params.contains_key(name) {
            let names = runbook.params.keys().map(String::as_str);
            let help = suggestion(name, names.clone(), || {
                format!("declared params: {}", list(names))
            });
            errors.push(ParamError::Unknown {
                name: name.clone(),
                help,
            });
        }
    }
    for (name, param) in &runbook.params {
        let value = match given.get(name) {
            Some(v) => v.clone(),
            None => match (&param.default, &param.example) {
                (Some(default), _) => default.to_json(),
                (None, Some(example)) if examples => {
                    bound.from_example.push(name.clone());
                    example.to_json()
                }
                _ if !param.is_required() => Value::Null,
                _ => {
                    errors.push(ParamError::Missing {
                        name: name.clone(),
                        description: param
                            .description
                            .as_ref()
                            .map(|d| format!(" ({})", d.value))
                            .unwrap_or_default(),
                    });
                    continue;
                }
            },
        };
        if !value.is_null() {
            let pattern = param.pattern.as_ref().and_then(|p| anchored(p).ok());
            if let Some(reason) = check_value(param, pattern.as_ref(), &value) {
                errors.push(ParamError::Invalid {
                    name: name.clone(),
                    reason,
                });
            }
        }
        bound.values.insert(name.clone(), value);
    }
    if errors.is_empty() {
        Ok(bound)
    } else {
        Err(errors)
    }
}

/// Reads every secret from its source. Values are returned only to the run; they are never
/// part of an error.
pub fn read_secrets(runbook: &Runbook) -> Result<Vec<(String, String)>, Vec<ParamError>> {
    let mut values = Vec::new();
    let mut errors = Vec::new();
    for (name, secret) in &runbook.secrets {
        match secret.source() {
            Some(crate::model::SecretSource::Env(variable)) => match std::env::var(variable) {
                Ok(v) => values.push((name.clone(), v)),
                Err(_) => errors.push(ParamError::SecretEnv {
                    name: name.clone(),
                    variable: variable.to_owned(),
                }),
            },
            Some(crate::model::SecretSource::File(path)) => {
                match read_capped(Path::new(path), MAX_SECRET_FILE_BYTES, "a secret file") {
                    Ok(v) => {
                        let v = v.strip_suffix('\n').unwrap_or(&v);
                        let v = v.strip_suffix('\r').unwrap_or(v);
                        values.push((name.clone(), v.to_owned()));
                    }
                    Err(e) => errors.push(ParamError::SecretFile {
                        name: name.clone(),
                        path: path.to_owned(),
                        reason: e.to_string(),
                    }),
                }
            }
            None => {}
        }
    }
    if errors.is_empty() {
        Ok(values)
    } else {
        Err(errors)
    }
}

/// The environment variables the runbook's secrets are read from.
pub fn secret_variables(runbook: &Runbook) -> Vec<String> {
    runbook
        .secrets
        .values()
        .filter_map(|secret| match secret.source() {
            Some(crate::model::SecretSource::Env(variable)) => Some(variable.to_owned()),
            _ => None,
        })
        .collect()
}

fn read_file(path: &Path) -> Result<Map<String, Value>, ParamError> {
    let fail = |reason: String| ParamError::File {
        path: path.display().to_string(),
        reason,
    };
    let text = read_capped(path, MAX_PARAMS_FILE_BYTES, "a params file")
        .map_err(|e| fail(e.to_string()))?;
    let node = crate::load::parse_yaml(&text).map_err(|p| fail(p.to_string()))?;
    match node.to_json() {
        // `key:` and `key: ~` give no value: the param is missing (its default applies, or a
        // required one is reported), never bound to null.
        Value::Object(mut map) => {
            map.retain(|_, v| !v.is_null());
            Ok(map)
        }
        Value::Null => Ok(Map::new()),
        _ => Err(fail(
            "expected a mapping of param names to values".to_owned(),
        )),
    }
}

/// Reads a UTF-8 file of at most `cap` bytes, without reading more than that from it (a
/// device such as `/dev/zero` never ends).
pub(crate) fn read_capped(path: &Path, cap: u64, what: &str) -> std::io::Result<String> {
    use std::io::Read;
    let mut bytes = Vec::new();
    std::fs::File::open(path)?
        .take(cap + 1)
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > cap {
        return Err(std::io::Error::new(
            std::io::ErrorKind::FileTooLarge,
            format!(
                "larger than {} MiB, the limit for {what}",
                cap / (1024 * 1024)
            ),
        ));
    }
    String::from_utf8(bytes)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e.utf8_error()))
}

/// Reads a `-p` value as the declared type.
fn parse_value(ty: ParamType, raw: &str) -> Result<Value, String> {
    match ty {
        ParamType::String => Ok(Value::String(raw.to_owned())),
        ParamType::Int => raw
            .trim()
            .parse::<i64>()
            .map(Value::from)
            .map_err(|_| format!("expected int, found `{raw}`")),
        ParamType::Bool => match raw.trim() {
            "true" => Ok(Value::Bool(true)),
            "false" => Ok(Value::Bool(false)),
            _ => Err(format!("expected true or false, found `{raw}`")),
        },
        ParamType::List | ParamType::Map => crate::load::parse_yaml(raw)
            .map(|n| n.to_json())
            .map_err(|p| format!("cannot read `{raw}` as YAML: {p}")),
    }
}

/// A param's pattern, anchored so that it must match the whole value.
pub fn anchored(pattern: &str) -> Result<Regex, regex::Error> {
    Regex::new(&format!("^(?:{pattern})$"))
}

/// Why `value` is not a valid value of `param`, if it is not.
pub fn check_value(param: &Param, pattern: Option<&Regex>, value: &Value) -> Option<String> {
    if let Some(reason) = type_mismatch(param.param_type(), value) {
        return Some(reason);
    }
    if let (Some(re), Value::String(s)) = (pattern, value)
        && !re.is_match(s)
    {
        let shown = param.pattern.as_ref().map_or("", |p| p.as_str());
        return Some(format!("`{s}` does not match the pattern `{shown}`"));
    }
    if let Some(allowed) = &param.allowed
        && !allowed.iter().any(|a| a.to_json() == *value)
    {
        let choices: Vec<String> = allowed.iter().map(|a| a.to_json().to_string()).collect();
        return Some(format!("{value} is not one of {}", choices.join(", ")));
    }
    None
}

/// Why `value` is not of type `ty`, if it is not.
pub fn type_mismatch(ty: ParamType, value: &Value) -> Option<String> {
    let ok = match ty {
        ParamType::String => value.is_string(),
        ParamType::Int => value.is_i64(),
        ParamType::Bool => value.is_boolean(),
        ParamType::List => value.is_array(),
        ParamType::Map => value.is_object(),
    };
    (!ok).then(|| format!("expected {}, found {}", ty.name(), kind(value)))
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_i64() => "an integer",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}
