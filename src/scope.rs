//! What a step that came from a group file reads: the group's params (its `with:` values,
//! rendered in the including runbook's context) and its sibling steps under their ids in
//! the group. Groups are expanded at load time into one flat list of steps; this is the one
//! place where a group step's templates are told apart from the runbook's own.

use std::collections::BTreeMap;
use std::sync::Arc;

use indexmap::IndexMap;

use crate::context::Context;
use crate::model::{Param, Passed, Spanned, Step};
use crate::template::Templates;

/// One `use:` a step is inside of: the using step's id in its own file, and what it passes.
#[derive(Debug, PartialEq)]
pub struct Level {
    /// The id of the `use` step, local to the file that holds it.
    pub prefix: String,
    pub with: IndexMap<String, Spanned<Passed>>,
    /// The group's declared params, for their defaults.
    pub params: IndexMap<String, Param>,
}

/// The `use:` levels around a step, outermost first; empty for the runbook's own steps.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Scope(pub Vec<Arc<Level>>);

impl Scope {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// This scope inside one more `use:`, which becomes the outermost level.
    pub fn within(&self, level: &Arc<Level>) -> Self {
        let mut levels = Vec::with_capacity(self.0.len() + 1);
        levels.push(level.clone());
        levels.extend(self.0.iter().cloned());
        Self(levels)
    }
}

/// The context `step` renders its templates in: `context` itself for a runbook's own step,
/// else the context of each group it is inside of, from the outermost in.
pub fn for_step(step: &Step, templates: &Templates, context: &Context) -> Context {
    let mut current = context.clone();
    for level in &step.scope.0 {
        current = enter(level, templates, &current);
    }
    current
}

/// The context inside one `use:`, from the context of the file that holds it. The params are
/// rendered twice, with the secrets and with `***`, so a secret passed in stays masked.
fn enter(level: &Level, templates: &Templates, outer: &Context) -> Context {
    let real = params(level, templates, &outer.value());
    let masked = params(level, templates, &outer.masked().value());
    outer.in_group(&real, &masked, &level.prefix)
}

fn params(
    level: &Level,
    templates: &Templates,
    outer: &minijinja::Value,
) -> BTreeMap<String, serde_json::Value> {
    let mut values = BTreeMap::new();
    for (name, param) in &level.params {
        if let Some(default) = &param.default {
            values.insert(name.clone(), default.to_json());
        }
    }
    for (name, passed) in &level.with {
        let value = match &passed.value {
            Passed::Value(v) => Some(v.clone()),
            Passed::Template(text) => rendered(templates, text, outer),
        };
        // A value that cannot be rendered is left out: the step reading it then fails
        // with the param named as undefined, at run time as for any template.
        match value {
            Some(v) => values.insert(name.clone(), v),
            None => values.remove(name),
        };
    }
    values
}

/// A lone `{{ expr }}` keeps its value's type (a list stays a list); other text is a string.
fn rendered(
    templates: &Templates,
    text: &str,
    context: &minijinja::Value,
) -> Option<serde_json::Value> {
    let trimmed = text.trim();
    if let Some(inner) = trimmed
        .strip_prefix("{{")
        .and_then(|t| t.strip_suffix("}}"))
        .filter(|inner| !inner.contains("{{") && !inner.contains("}}"))
    {
        let inner = inner.trim_start_matches('-').trim_end_matches('-');
        return templates
            .eval(inner, context)
            .ok()
            .and_then(|v| serde_json::to_value(&v).ok());
    }
    templates
        .render(text, context)
        .ok()
        .map(serde_json::Value::String)
}
