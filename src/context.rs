//! The values templates read: `params`, `secrets`, `env` (the env file), `steps`, `run` and,
//! in `until` and `outputs`, `result`. A dry-run fills `steps` with placeholders and `secrets` with `***`.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use minijinja::Value;
use minijinja::value::{Object, ObjectRepr};

use crate::mask::MASK;

/// What `run` holds in templates.
#[derive(Clone, Debug, serde::Serialize)]
pub struct RunInfo {
    pub id: String,
    pub dry_run: bool,
    pub started_at: String,
    /// The directory of the runbook file.
    pub dir: String,
    /// How the run ended, for finally steps: `succeeded`, `failed`, `needs_person` or
    /// `interrupted`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
}

/// The template context of a run, extended as steps complete.
#[derive(Clone, Debug)]
pub struct Context {
    params: Value,
    secrets: Value,
    /// Shared, not copied: a step's context takes a reference to what earlier steps left,
    /// so building it costs the same at the 10,000th step as at the first. A step that
    /// finishes copies the map only while another context (a running sibling) still holds it.
    steps: Arc<BTreeMap<String, Value>>,
    run: RunInfo,
    /// `run` as a template value, made once.
    run_value: Value,
    /// The env file's values, and the same with its secret ones as `***`.
    env: Value,
    env_masked: Value,
    /// In a `for_each` instance: the item, under its variable name.
    item: Option<(String, Value)>,
    /// In a group: its params with every secret passed in as `***`.
    params_masked: Option<Value>,
}

impl Context {
    pub fn new(
        params: &serde_json::Map<String, serde_json::Value>,
        secrets: &[(String, String)],
        run: &RunInfo,
    ) -> Self {
        let secrets: BTreeMap<&str, &str> = secrets
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        Self {
            params: Value::from_serialize(params),
            secrets: Value::from_serialize(&secrets),
            steps: Arc::default(),
            run: run.clone(),
            run_value: Value::from_serialize(run),
            env: Value::from(BTreeMap::<String, String>::new()),
            env_masked: Value::from(BTreeMap::<String, String>::new()),
            item: None,
            params_masked: None,
        }
    }

    /// A dry-run context: secrets are `***`, every step is a placeholder.
    pub fn dry_run(
        params: &serde_json::Map<String, serde_json::Value>,
        secret_names: impl IntoIterator<Item = String>,
        step_ids: impl IntoIterator<Item = String>,
        run: &RunInfo,
    ) -> Self {
        let secrets: Vec<(String, String)> = secret_names
            .into_iter()
            .map(|n| (n, MASK.to_owned()))
            .collect();
        let mut context = Self::new(params, &secrets, run);
        context.env = Value::from_object(Placeholder("env".to_owned()));
        context.env_masked = context.env.clone();
        for id in step_ids {
            let placeholder = Value::from_object(Placeholder(format!("steps.{id}")));
            context.set_step(&id, placeholder);
        }
        context
    }

    /// The context with every secret as `***`: rendering an action with it gives what may be
    /// shown and stored, with a secret masked wherever a template put it, however short.
    pub fn masked(&self) -> Self {
        let names: BTreeMap<String, &str> = self
            .secrets
            .try_iter()
            .into_iter()
            .flatten()
            .map(|name| (name.to_string(), MASK))
            .collect();
        Self {
            secrets: Value::from_serialize(&names),
            env: self.env_masked.clone(),
            params: self
                .params_masked
                .clone()
                .unwrap_or_else(|| self.params.clone()),
            ..self.clone()
        }
    }

    /// The values of the env file, `env.NAME` in templates.
    pub fn set_env(&mut self, env: &crate::env_file::EnvValues) {
        let values: BTreeMap<&str, &str> = env
            .values
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let masked: BTreeMap<&str, &str> = env
            .values
            .iter()
            .map(|(k, v)| match env.secret.contains(k) {
                true => (k.as_str(), MASK),
                false => (k.as_str(), v.as_str()),
            })
            .collect();
        self.env = Value::from_serialize(&values);
        self.env_masked = Value::from_serialize(&masked);
    }

    /// The run has ended this way: finally steps read it as `run.outcome`.
    pub fn set_outcome(&mut self, outcome: &str) {
        self.run.outcome = Some(outcome.to_owned());
        self.run_value = Value::from_serialize(&self.run);
    }

    /// Whether a step has left anything for later templates (it ran, or was skipped).
    pub fn has_step(&self, id: &str) -> bool {
        self.steps.contains_key(id)
    }

    /// Records what a step left for later templates.
    pub fn set_step(&mut self, id: &str, value: Value) {
        Arc::make_mut(&mut self.steps).insert(id.to_owned(), value);
    }

    /// The context of a `for_each` instance: `name` holds its item.
    pub fn with_item(&self, name: &str, item: &serde_json::Value) -> Self {
        Self {
            item: Some((name.to_owned(), Value::from_serialize(item))),
            ..self.clone()
        }
    }

    /// The context inside a group used under `prefix`: `params` are the group's, `steps` its
    /// own steps under their ids in the group (`prefix.` dropped).
    pub fn in_group(
        &self,
        params: &BTreeMap<String, serde_json::Value>,
        masked: &BTreeMap<String, serde_json::Value>,
        prefix: &str,
    ) -> Self {
        let start = format!("{prefix}.");
        let steps = self
            .steps
            .range(start.clone()..)
            .take_while(|(id, _)| id.starts_with(&start))
            .map(|(id, v)| (id[start.len()..].to_owned(), v.clone()))
            .collect::<BTreeMap<_, _>>();
        Self {
            params: Value::from_serialize(params),
            params_masked: Some(Value::from_serialize(masked)),
            steps: Arc::new(steps),
            ..self.clone()
        }
    }

    /// The context as a template value.
    pub fn value(&self) -> Value {
        self.with_result(None)
    }

    /// The context with `result` (for `until` and `outputs`). Every part is shared by
    /// reference: nothing here grows with the number of steps that ran.
    pub fn with_result(&self, result: Option<&Value>) -> Value {
        let mut map: BTreeMap<String, Value> = BTreeMap::new();
        map.insert("params".to_owned(), self.params.clone());
        map.insert("secrets".to_owned(), self.secrets.clone());
        map.insert(
            "steps".to_owned(),
            Value::from_dyn_object(self.steps.clone()),
        );
        map.insert("run".to_owned(), self.run_value.clone());
        map.insert("env".to_owned(), self.env.clone());
        if let Some(result) = result {
            map.insert("result".to_owned(), result.clone());
        }
        if let Some((name, item)) = &self.item {
            map.insert(name.clone(), item.clone());
        }
        Value::from_object(map)
    }
}

/// A value not known before the run: renders as `<steps.copy.stdout>`.
#[derive(Debug)]
pub struct Placeholder(pub String);

impl Object for Placeholder {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let key = key.as_str().map_or_else(|| key.to_string(), str::to_owned);
        Some(Value::from_object(Placeholder(format!("{}.{key}", self.0))))
    }

    fn render(self: &Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<{}>", self.0)
    }
}
