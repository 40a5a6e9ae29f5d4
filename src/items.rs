//! The items of a `for_each` step: its list rendered (a template evaluated to a list, or the
//! literal list) and each item's instance id, `STEP[KEY]`, KEY being the item when it is a
//! string or number, else its index (also for a string that is no readable one-line key).

use minijinja::Value;
use thiserror::Error;

use crate::mask::Masker;
use crate::model::{ForEach, Step};
use crate::template::Templates;

/// One item of a `for_each` step.
#[derive(Clone, Debug, PartialEq)]
pub struct Item {
    /// `STEP[KEY]`: the id in events, the journal, `--fail-at` and `show`.
    pub id: String,
    pub value: serde_json::Value,
}

/// Why the list of a `for_each` step could not be had.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum ItemsError {
    #[error("cannot render for_each: {0}")]
    Render(String),
    #[error("for_each must give a list, got {0}")]
    NotAList(String),
    #[error("for_each gives the item `{key}` twice: instance ids must be unique")]
    Duplicate { key: String },
}

/// Longer strings are keyed by their index: an id is typed in `--assume` and `--fail-at`.
const MAX_KEY_CHARS: usize = 100;

/// The instance id of `step` for `value`, the item at `index`. A string that would not make a
/// readable one-line key (empty, too long, with control characters) or that holds one of
/// `secrets` (ids are printed and journaled as they are) is keyed by its index.
fn instance_id(step: &str, index: usize, value: &serde_json::Value, secrets: &Masker) -> String {
    match value {
        serde_json::Value::String(s)
            if !s.is_empty()
                && secrets.value(s) == s.as_str()
                && s.chars().count() <= MAX_KEY_CHARS
                && !s.chars().any(char::is_control) =>
        {
            format!("{step}[{s}]")
        }
        serde_json::Value::Number(n) => format!("{step}[{n}]"),
        _ => format!("{step}[{index}]"),
    }
}

/// The items of `step` with the template context `context`; `None` if it has no `for_each`.
/// An item holding one of `secrets` is keyed by its index.
pub fn items(
    step: &Step,
    templates: &Templates,
    context: &Value,
    secrets: &Masker,
) -> Option<Result<Vec<Item>, ItemsError>> {
    let for_each = step.for_each.as_ref()?;
    let list = match &for_each.value {
        ForEach::List(items) => Ok(items.clone()),
        ForEach::Template(text) => evaluate(text, templates, context),
    };
    Some(list.and_then(|list| keyed(&step.id.value, list, secrets)))
}

/// A template that is one `{{ expression }}` is evaluated to its value (a list stays a
/// list); any other template is rendered and its text read as a JSON list.
fn evaluate(
    text: &str,
    templates: &Templates,
    context: &Value,
) -> Result<Vec<serde_json::Value>, ItemsError> {
    let trimmed = text.trim();
    let expression = trimmed
        .strip_prefix("{{")
        .and_then(|t| t.strip_suffix("}}"))
        .filter(|inner| !inner.contains("{{") && !inner.contains("}}"));
    let value = match expression {
        Some(expression) => {
            let value = templates
                .eval(expression, context)
                .map_err(|e| ItemsError::Render(crate::template::error_text(&e)))?;
            serde_json::to_value(&value).map_err(|e| ItemsError::Render(e.to_string()))?
        }
        None => {
            let text = templates
                .render(text, context)
                .map_err(|e| ItemsError::Render(crate::template::error_text(&e)))?;
            serde_json::from_str(&text).map_err(|_| ItemsError::NotAList(describe_text(&text)))?
        }
    };
    match value {
        serde_json::Value::Array(items) => Ok(items),
        // A list kept as text (an output, a param given as JSON text) is read as one.
        serde_json::Value::String(s) => match serde_json::from_str(&s) {
            Ok(serde_json::Value::Array(items)) => Ok(items),
            _ => Err(ItemsError::NotAList(describe_text(&s))),
        },
        other => Err(ItemsError::NotAList(other.to_string())),
    }
}

fn describe_text(text: &str) -> String {
    let short: String = text.chars().take(60).collect();
    format!("the text `{short}`")
}

fn keyed(
    step: &str,
    list: Vec<serde_json::Value>,
    secrets: &Masker,
) -> Result<Vec<Item>, ItemsError> {
    let mut seen = std::collections::HashSet::new();
    list.into_iter()
        .enumerate()
        .map(|(index, value)| {
            let id = instance_id(step, index, &value, secrets);
            if !seen.insert(id.clone()) {
                let key = id[step.len() + 1..id.len() - 1].to_owned();
                return Err(ItemsError::Duplicate { key });
            }
            Ok(Item { id, value })
        })
        .collect()
}
