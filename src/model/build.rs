//! Builds the typed [`Runbook`] from the YAML tree, reporting every unknown key, wrong type,
//! missing field and invalid value it meets rather than stopping at the first.
//!
//! A field that cannot be read is left out of the model (its problem is reported), so that
//! validation can still run over the rest of the file and report its problems in the same pass.
//! A kind is the exception: a step or rollback always has one, so when none can be read (the
//! problem is reported) it gets a stand-in that does nothing and reads no template, a zero
//! `wait` or an empty `approval`. Keeping the step keeps the checks of its other fields and of
//! the steps that need it; a runbook with errors is never planned or run.

use std::borrow::Cow;

use indexmap::IndexMap;

use super::*;
use crate::diagnostic::{Problem, list, suggestion};
use crate::yaml::{Key, Node, Span, Value};

/// Keys of each mapping in the format. The schema test checks these against the schema.
pub const RUNBOOK_KEYS: &[&str] = &[
    "runbook",
    "name",
    "description",
    "timeout",
    "params",
    "secrets",
    "connections",
    "targets",
    "defaults",
    "env_file",
    "steps",
    "finally",
    "locks",
    "notify",
    "rto",
    "service_restored_at",
];
pub const NOTIFY_KEYS: &[&str] = &["on", "run", "env", "timeout", "target"];
pub const STEP_KEYS: &[&str] = &[
    "id",
    "title",
    "needs",
    "when",
    "timeout",
    "expect",
    "retry",
    "until",
    "outputs",
    "rollback",
    "irreversible",
    "probe",
    "rehearse",
    "idempotent",
    "continue_on_failure",
    "env",
    "for_each",
    "as",
    "concurrency",
    "max_failures",
    "use",
    "with",
    "target",
    "run",
    "sql",
    "wait",
    "assert",
    "approval",
];
/// Keys of a group file (`group: 1`).
pub const GROUP_KEYS: &[&str] = &[
    "group",
    "name",
    "description",
    "params",
    "connections",
    "targets",
    "steps",
    "outputs",
];
pub const PARAM_KEYS: &[&str] = &[
    "type",
    "default",
    "description",
    "example",
    "enum",
    "pattern",
    "required",
];
pub const SECRET_KEYS: &[&str] = &["env", "file"];
pub const CONNECTION_KEYS: &[&str] = &["mssql"];
pub const ENV_FILE_KEYS: &[&str] = &["path", "secret"];
pub const DEFAULTS_KEYS: &[&str] = &["timeout", "retry", "env", "cwd"];
pub const RETRY_KEYS: &[&str] = &["attempts", "delay", "backoff", "max_delay", "jitter", "on"];
pub const RETRY_ON_KEYS: &[&str] = &["exit_codes", "sql_errors", "timeout", "connect"];
pub const RUN_KEYS: &[&str] = &["program", "args", "shell", "script", "cwd"];
pub const SQL_KEYS: &[&str] = &["connection", "query", "args", "database"];
pub const ASSERT_KEYS: &[&str] = &["that", "message"];
pub const APPROVAL_KEYS: &[&str] = &[
    "prompt",
    "instructions",
    "approvers",
    "min",
    "self_approval",
    "timeout",
];
pub const APPROVER_GROUP_KEYS: &[&str] = &["group"];
pub const REHEARSE_KEYS: &[&str] = &["run", "sql", "target"];
pub const ROLLBACK_KEYS: &[&str] = &[
    "run",
    "sql",
    "approval",
    "timeout",
    "retry",
    "env",
    "past_point_of_no_return",
    "target",
];
pub const TARGET_KEYS: &[&str] = &["ssh", "shell"];

/// Reads the whole document. Returns `None` only when there is no runbook to speak of
/// (the top level is not a mapping, or it has no usable `steps`).
///
/// `streamed` holds the steps already built while the YAML was read; the lists of steps
/// still in the tree are taken out of it, and each step's part dropped once the step is
/// built: the tree and the model are never held whole at the same time.
pub fn build(mut root: Node, streamed: Streamed, problems: &mut Vec<Problem>) -> Option<Runbook> {
    let mut b = Builder {
        problems,
        steps: take_list(&mut root, "steps"),
        finally: take_list(&mut root, "finally"),
        streamed,
    };
    b.runbook(&root)
}

/// The steps built one by one as the YAML reader completes each (see
/// [`crate::yaml::parse_streaming`]), with the problems found in them.
#[derive(Default)]
pub struct Streamed {
    steps: Built,
    finally: Built,
}

#[derive(Default)]
struct Built {
    steps: Vec<Step>,
    problems: Vec<Problem>,
}

impl Streamed {
    /// The top-level lists whose items are steps.
    pub const LISTS: &[&str] = &["steps", "finally"];

    /// Item `index` of the top-level list `list`, checked as the whole tree would have
    /// been (its scalars, then its shape), then dropped.
    pub fn item(&mut self, list: &str, index: usize, node: Node, source: &str) {
        let built = if list == "finally" {
            &mut self.finally
        } else {
            &mut self.steps
        };
        crate::validate::scalars::check(&node, source, &mut built.problems);
        let mut b = Builder {
            problems: &mut built.problems,
            steps: Vec::new(),
            finally: Vec::new(),
            streamed: Streamed::default(),
        };
        let step = b.step(index, node);
        built.steps.extend(step);
    }
}

/// The items of the list under `key` of the top-level mapping, left there empty.
fn take_list(root: &mut Node, key: &str) -> Vec<Node> {
    let Value::Map(entries) = &mut root.value else {
        return Vec::new();
    };
    // The first entry, as `Fields::get` reads it.
    match entries.iter_mut().find(|(k, _)| k.name == key) {
        Some((
            _,
            Node {
                value: Value::Seq(items),
                ..
            },
        )) => std::mem::take(items),
        _ => Vec::new(),
    }
}

struct Builder<'p> {
    problems: &'p mut Vec<Problem>,
    /// The items of `steps` and `finally`, taken out of the tree.
    steps: Vec<Node>,
    finally: Vec<Node>,
    streamed: Streamed,
}

/// The entries of one mapping, checked against its known keys. Owned when the mapping is
/// (a step's), so that its strings move into the model instead of being copied.
struct Fields<'a> {
    entries: Cow<'a, [(Key, Node)]>,
    span: Span,
    context: Context<'a>,
}

/// What a mapping is called in messages, spelled out only when a problem needs it: most
/// mappings (a step's, its `run`'s) have none.
pub(crate) enum Context<'a> {
    Text(&'static str),
    Owned(String),
    Step(&'a str),
    StepNumber(usize),
}

impl Context<'_> {
    fn text(&self) -> String {
        match self {
            Context::Text(text) => (*text).to_owned(),
            Context::Owned(text) => text.clone(),
            Context::Step(id) => format!("step `{id}`"),
            Context::StepNumber(index) => format!("step #{}", index + 1),
        }
    }
}

impl From<&'static str> for Context<'_> {
    fn from(text: &'static str) -> Self {
        Context::Text(text)
    }
}

impl From<String> for Context<'_> {
    fn from(text: String) -> Self {
        Context::Owned(text)
    }
}

impl Fields<'_> {
    fn get(&self, key: &str) -> Option<&Node> {
        self.entries
            .iter()
            .find(|(k, _)| k.name == key)
            .map(|(_, v)| v)
    }

    fn key_span(&self, key: &str) -> Option<Span> {
        self.entries
            .iter()
            .find(|(k, _)| k.name == key)
            .map(|(k, _)| k.span)
    }

    /// The value of `key`, taken out of owned entries (null is left in its place, the key
    /// stays) or copied from borrowed ones.
    fn take(&mut self, key: &str) -> Option<Node> {
        match &mut self.entries {
            Cow::Borrowed(entries) => entries
                .iter()
                .find(|(k, _)| k.name == key)
                .map(|(_, v)| v.clone()),
            Cow::Owned(entries) => entries
                .iter_mut()
                .find(|(k, _)| k.name == key)
                .map(|(_, v)| {
                    let span = v.span;
                    std::mem::replace(
                        v,
                        Node {
                            value: Value::Null,
                            span,
                        },
                    )
                }),
        }
    }
}

fn coerce_string(node: &Node) -> Option<String> {
    match &node.value {
        Value::String(s) => Some(s.clone()),
        Value::Int(i) => Some(i.to_string()),
        Value::Float(f) => Some(f.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Null | Value::Seq(_) | Value::Map(_) => None,
    }
}

impl Builder<'_> {
    fn push(&mut self, problem: Problem) {
        self.problems.push(problem);
    }

    fn wrong_type(&mut self, field: &str, expected: &'static str, node: &Node) {
        self.push(Problem::WrongType {
            field: field.to_owned(),
            expected,
            found: node.value.kind(),
            span: node.span.into(),
            help: None,
        });
    }

    /// Opens a mapping and reports its unknown keys.
    fn fields<'a>(
        &mut self,
        node: &'a Node,
        field: &str,
        context: impl Into<Context<'a>>,
        known: &[&str],
    ) -> Option<Fields<'a>> {
        self.fields_of(Cow::Borrowed(node), field, context, known)
    }

    /// [`Self::fields`] of a mapping borrowed or owned.
    fn fields_of<'a>(
        &mut self,
        node: Cow<'a, Node>,
        field: &str,
        context: impl Into<Context<'a>>,
        known: &[&str],
    ) -> Option<Fields<'a>> {
        let context = context.into();
        let span = node.span;
        let entries = match node {
            Cow::Borrowed(Node {
                value: Value::Map(entries),
                ..
            }) => Cow::Borrowed(entries.as_slice()),
            Cow::Owned(Node {
                value: Value::Map(entries),
                ..
            }) => Cow::Owned(entries),
            other => {
                self.wrong_type(field, "a mapping", &other);
                return None;
            }
        };
        for (key, _) in entries.iter() {
            if !known.contains(&key.name.as_str()) {
                let help = suggestion(&key.name, known.iter().copied(), || {
                    format!("allowed keys: {}", list(known.iter().copied()))
                });
                self.push(Problem::UnknownKey {
                    key: key.name.clone(),
                    context: context.text(),
                    span: key.span.into(),
                    help,
                });
            }
        }
        Some(Fields {
            entries,
            span,
            context,
        })
    }

    fn missing(&mut self, fields: &Fields, field: &'static str, help: String) {
        self.push(Problem::MissingField {
            field,
            context: fields.context.text(),
            span: Span::new(fields.span.offset(), 0).into(),
            help,
        });
    }

    fn string(&mut self, fields: &Fields, key: &str) -> Option<Spanned<String>> {
        let node = fields.get(key)?;
        self.string_node(key, node)
    }

    fn string_node(&mut self, field: &str, node: &Node) -> Option<Spanned<String>> {
        match coerce_string(node) {
            Some(s) => Some(Spanned::new(s, node.span)),
            None => {
                self.wrong_type(field, "a string", node);
                None
            }
        }
    }

    fn bool(&mut self, fields: &Fields, key: &str) -> Option<Spanned<bool>> {
        let node = fields.get(key)?;
        match &node.value {
            Value::Bool(b) => Some(Spanned::new(*b, node.span)),
            Value::String(s)
                if matches!(
                    s.to_ascii_lowercase().as_str(),
                    "yes" | "no" | "on" | "off" | "y" | "n"
                ) =>
            {
                self.push(Problem::WrongType {
                    field: key.to_owned(),
                    expected: "true or false",
                    found: node.value.kind(),
                    span: node.span.into(),
                    help: Some(crate::diagnostic::YAML12_BOOL_HELP.to_owned()),
                });
                None
            }
            _ => {
                self.wrong_type(key, "true or false", node);
                None
            }
        }
    }

    fn int(&mut self, field: &str, node: &Node) -> Option<Spanned<i64>> {
        match node.value {
            Value::Int(i) => Some(Spanned::new(i, node.span)),
            _ => {
                self.wrong_type(field, "an integer", node);
                None
            }
        }
    }

    fn duration(&mut self, fields: &Fields, key: &str) -> Option<Spanned<Duration>> {
        let node = fields.get(key)?;
        self.duration_node(key, node)
    }

    fn duration_node(&mut self, field: &str, node: &Node) -> Option<Spanned<Duration>> {
        let text = match &node.value {
            Value::String(s) => s.clone(),
            Value::Int(_) | Value::Float(_) => coerce_string(node).unwrap_or_default(),
            _ => {
                self.wrong_type(field, "a duration such as `30s`", node);
                return None;
            }
        };
        match Duration::parse(&text) {
            Ok(d) => Some(Spanned::new(d, node.span)),
            Err(reason) => {
                self.push(Problem::InvalidDuration {
                    text,
                    reason,
                    span: node.span.into(),
                });
                None
            }
        }
    }

    fn choice<T>(
        &mut self,
        fields: &Fields,
        key: &'static str,
        names: &[&str],
        parse: impl Fn(&str) -> Option<T>,
    ) -> Option<Spanned<T>> {
        let node = fields.get(key)?;
        let text = self.string_node(key, node)?;
        match parse(&text) {
            Some(v) => Some(Spanned::new(v, node.span)),
            None => {
                let help = suggestion(&text, names.iter().copied(), || {
                    format!("expected one of {}", list(names.iter().copied()))
                });
                self.push(Problem::InvalidChoice {
                    field: key,
                    found: text.value,
                    span: node.span.into(),
                    help,
                });
                None
            }
        }
    }

    fn seq<'a>(&mut self, field: &str, node: &'a Node) -> &'a [Node] {
        match &node.value {
            Value::Seq(items) => items,
            Value::Null => &[],
            _ => {
                self.wrong_type(field, "a list", node);
                &[]
            }
        }
    }

    fn string_list(&mut self, fields: &Fields, key: &str) -> Vec<Spanned<String>> {
        let Some(node) = fields.get(key) else {
            return Vec::new();
        };
        let items = self.seq(key, node);
        // Exactly as many as given: `collect` would start at four.
        let mut out = Vec::with_capacity(items.len());
        out.extend(items.iter().filter_map(|item| self.string_node(key, item)));
        out
    }

    /// [`Self::string`], the text moved out of owned fields.
    fn take_string(&mut self, fields: &mut Fields, key: &str) -> Option<Spanned<String>> {
        let node = fields.take(key)?;
        self.string_value(key, node)
    }

    /// [`Self::string_node`] of a node given away: a string moves as it is.
    fn string_value(&mut self, field: &str, node: Node) -> Option<Spanned<String>> {
        match node.value {
            Value::String(s) => Some(Spanned::new(s, node.span)),
            _ => self.string_node(field, &node),
        }
    }

    /// [`Self::string_list`], the texts moved out of owned fields.
    fn take_string_list(&mut self, fields: &mut Fields, key: &str) -> Vec<Spanned<String>> {
        let Some(node) = fields.take(key) else {
            return Vec::new();
        };
        let Value::Seq(items) = node.value else {
            self.seq(key, &node);
            return Vec::new();
        };
        let mut out = Vec::with_capacity(items.len());
        out.extend(
            items
                .into_iter()
                .filter_map(|item| self.string_value(key, item)),
        );
        out
    }

    fn int_list(&mut self, fields: &Fields, key: &str) -> Vec<Spanned<i64>> {
        let Some(node) = fields.get(key) else {
            return Vec::new();
        };
        let items = self.seq(key, node);
        let mut out = Vec::with_capacity(items.len());
        out.extend(items.iter().filter_map(|item| self.int(key, item)));
        out
    }

    fn string_map(&mut self, fields: &Fields, key: &str) -> IndexMap<String, Spanned<String>> {
        let mut out = IndexMap::new();
        let Some(node) = fields.get(key) else {
            return out;
        };
        if matches!(node.value, Value::Null) {
            return out;
        }
        let Some(entries) = node.as_map() else {
            self.wrong_type(key, "a mapping of names to strings", node);
            return out;
        };
        for (k, v) in entries {
            if let Some(s) = self.string_node(&format!("{key}.{}", k.name), v) {
                out.insert(k.name.clone(), s);
            }
        }
        out
    }

    /// A mapping of named entries (`params`, `secrets`, `connections`).
    fn named<'a>(&mut self, fields: &'a Fields<'_>, key: &str) -> &'a [(Key, Node)] {
        let Some(node) = fields.get(key) else {
            return &[];
        };
        match &node.value {
            Value::Map(entries) => entries,
            Value::Null => &[],
            _ => {
                self.wrong_type(key, "a mapping of names", node);
                &[]
            }
        }
    }

    fn runbook(&mut self, root: &Node) -> Option<Runbook> {
        // A group file says so by its first key, `group: 1`, instead of `runbook: 1`.
        let is_group = root
            .as_map()
            .is_some_and(|m| m.iter().any(|(k, _)| k.name == "group"))
            && !root
                .as_map()
                .is_some_and(|m| m.iter().any(|(k, _)| k.name == "runbook"));
        let (header, context, keys) = if is_group {
            ("group", "the group", GROUP_KEYS)
        } else {
            ("runbook", "the runbook", RUNBOOK_KEYS)
        };
        let fields = self.fields(root, header, context.to_owned(), keys)?;

        let version = match fields.get(header) {
            Some(node) => match node.value {
                Value::Int(1) => Some(Spanned::new(1, node.span)),
                _ => {
                    self.push(Problem::UnsupportedVersion {
                        found: coerce_string(node).unwrap_or_else(|| node.value.kind().to_owned()),
                        span: node.span.into(),
                    });
                    None
                }
            },
            None => {
                self.missing(
                    &fields,
                    "runbook",
                    "start the file with `runbook: 1` (the format version), or `group: 1` for a step group".to_owned(),
                );
                None
            }
        };
        let name = self.string(&fields, "name");
        if name.is_none() && fields.get("name").is_none() {
            self.missing(
                &fields,
                "name",
                "add `name: my-runbook` (letters, digits, `_` and `-`)".to_owned(),
            );
        }
        let description = self.string(&fields, "description");
        let timeout = self.duration(&fields, "timeout");
        let rto = self.duration(&fields, "rto");
        let service_restored_at = self.string(&fields, "service_restored_at");

        let mut params = IndexMap::new();
        for (key, node) in self.named(&fields, "params") {
            if let Some(param) = self.param(key, node) {
                params.insert(key.name.clone(), param);
            }
        }
        let mut secrets = IndexMap::new();
        for (key, node) in self.named(&fields, "secrets") {
            if let Some(secret) = self.secret(key, node) {
                secrets.insert(key.name.clone(), secret);
            }
        }
        let mut connections = IndexMap::new();
        for (key, node) in self.named(&fields, "connections") {
            if let Some(connection) = self.connection(key, node) {
                connections.insert(key.name.clone(), connection);
            }
        }
        let mut targets = IndexMap::new();
        for (key, node) in self.named(&fields, "targets") {
            if let Some(target) = self.target(key, node) {
                targets.insert(key.name.clone(), target);
            }
        }
        let defaults = match fields.get("defaults") {
            Some(node) => self.defaults(node).unwrap_or_default(),
            None => Defaults::default(),
        };

        let env_file = fields.get("env_file").and_then(|n| self.env_file(n));

        let steps = match fields.get("steps") {
            Some(node) => {
                let items = std::mem::take(&mut self.steps);
                let streamed = std::mem::take(&mut self.streamed.steps);
                self.steps("steps", node, items, streamed)
            }
            None => {
                self.missing(
                    &fields,
                    "steps",
                    "add `steps:`, a list of steps each with an `id` and a kind".to_owned(),
                );
                Vec::new()
            }
        };

        let finally = match fields.get("finally") {
            Some(node) => {
                let items = std::mem::take(&mut self.finally);
                let streamed = std::mem::take(&mut self.streamed.finally);
                self.steps("finally", node, items, streamed)
            }
            None => Vec::new(),
        };

        Some(Runbook {
            version: version.unwrap_or(Spanned::new(1, Span::default())),
            name: name.unwrap_or_else(|| Spanned::new(String::new(), Span::default())),
            description,
            timeout,
            rto,
            service_restored_at,
            params,
            secrets,
            connections,
            targets,
            defaults,
            env_file,
            steps,
            finally,
            locks: self.string_list(&fields, "locks"),
            notify: match fields.get("notify") {
                Some(node) => self.notify(node),
                None => Vec::new(),
            },
            dir: std::path::PathBuf::new(),
            group: is_group.then(|| self.string_map(&fields, "outputs")),
            included: Vec::new(),
        })
    }

    /// `notify:` a list of hooks.
    fn notify(&mut self, node: &Node) -> Vec<Notify> {
        let items = self.seq("notify", node);
        items.iter().filter_map(|item| self.hook(item)).collect()
    }

    fn hook(&mut self, node: &Node) -> Option<Notify> {
        let fields = self.fields(node, "notify[]", "a `notify` hook", NOTIFY_KEYS)?;
        let mut on = Vec::new();
        match fields.get("on") {
            Some(events) => {
                for item in self.seq("on", events) {
                    let Some(name) = self.string_node("on", item) else {
                        continue;
                    };
                    match NotifyEvent::from_name(&name) {
                        Some(event) => on.push(Spanned::new(event, item.span)),
                        None => {
                            let names = NotifyEvent::NAMES.iter().copied();
                            let help = suggestion(&name, names.clone(), || {
                                format!("the events are {}", list(names))
                            });
                            self.push(Problem::InvalidChoice {
                                field: "on",
                                found: name.value,
                                span: item.span.into(),
                                help,
                            });
                        }
                    }
                }
            }
            None => self.missing(
                &fields,
                "on",
                format!(
                    "say which events run the hook: `on: [finished]` (one or more of {})",
                    list(NotifyEvent::NAMES.iter().copied())
                ),
            ),
        }
        let run = fields.get("run").and_then(|n| self.run(n));
        if fields.get("run").is_none() {
            self.missing(
                &fields,
                "run",
                "say what to run: `run: { program: ./notify-chat }`; the event arrives as JSON on its stdin".to_owned(),
            );
        }
        Some(Notify {
            on,
            run: run?,
            env: self.string_map(&fields, "env"),
            timeout: self.duration(&fields, "timeout"),
            target: self.string(&fields, "target"),
            span: node.span,
        })
    }

    fn param(&mut self, key: &Key, node: &Node) -> Option<Param> {
        let name = Spanned::new(key.name.clone(), key.span);
        if matches!(node.value, Value::Null) {
            return Some(Param {
                name,
                ty: None,
                default: None,
                description: None,
                example: None,
                allowed: None,
                pattern: None,
                required: None,
            });
        }
        let fields = self.fields(
            node,
            &format!("params.{}", key.name),
            format!("param `{}`", key.name),
            PARAM_KEYS,
        )?;
        let ty = self.choice(&fields, "type", ParamType::NAMES, ParamType::from_name);
        let allowed = match fields.get("enum") {
            Some(node) => match &node.value {
                Value::Seq(items) => Some(Spanned::new(items.clone(), node.span)),
                _ => {
                    self.wrong_type("enum", "a list", node);
                    None
                }
            },
            None => None,
        };
        Some(Param {
            name,
            ty,
            default: fields.get("default").cloned(),
            description: self.string(&fields, "description"),
            example: fields.get("example").cloned(),
            allowed,
            pattern: self.string(&fields, "pattern"),
            required: self.bool(&fields, "required"),
        })
    }

    fn env_file(&mut self, node: &Node) -> Option<EnvFile> {
        let fields = self.fields(node, "env_file", "`env_file`", ENV_FILE_KEYS)?;
        let path = self.string(&fields, "path");
        if path.is_none() && fields.get("path").is_none() {
            self.missing(
                &fields,
                "path",
                "name the file: `env_file: { path: ./site.env }`".to_owned(),
            );
        }
        Some(EnvFile {
            path: path?,
            secret: self.string_list(&fields, "secret"),
            at: String::new(),
            span: node.span,
        })
    }

    fn secret(&mut self, key: &Key, node: &Node) -> Option<Secret> {
        let fields = self.fields(
            node,
            &format!("secrets.{}", key.name),
            format!("secret `{}`", key.name),
            SECRET_KEYS,
        )?;
        Some(Secret {
            name: Spanned::new(key.name.clone(), key.span),
            env: self.string(&fields, "env"),
            file: self.string(&fields, "file"),
            span: node.span,
        })
    }

    fn connection(&mut self, key: &Key, node: &Node) -> Option<Connection> {
        let fields = self.fields(
            node,
            &format!("connections.{}", key.name),
            format!("connection `{}`", key.name),
            CONNECTION_KEYS,
        )?;
        let mssql = self.string(&fields, "mssql");
        if mssql.is_none() && fields.get("mssql").is_none() {
            self.missing(
                &fields,
                "mssql",
                "add `mssql: \"server=tcp:host,1433;…\"` (an ADO.NET connection string)".to_owned(),
            );
        }
        Some(Connection {
            name: Spanned::new(key.name.clone(), key.span),
            mssql: mssql?,
        })
    }

    fn target(&mut self, key: &Key, node: &Node) -> Option<Target> {
        let fields = self.fields(
            node,
            &format!("targets.{}", key.name),
            format!("target `{}`", key.name),
            TARGET_KEYS,
        )?;
        let ssh = self.string(&fields, "ssh");
        if ssh.is_none() && fields.get("ssh").is_none() {
            self.missing(
                &fields,
                "ssh",
                "add `ssh: \"admin@host\"` (`[user@]host[:port]` or a host of your ssh config)"
                    .to_owned(),
            );
        }
        let shell = self.choice(&fields, "shell", Target::SHELLS, |name| {
            Shell::from_name(name).filter(|s| *s != Shell::Cmd)
        });
        Some(Target {
            name: Spanned::new(key.name.clone(), key.span),
            ssh: ssh?,
            shell,
        })
    }

    fn defaults(&mut self, node: &Node) -> Option<Defaults> {
        let fields = self.fields(node, "defaults", "`defaults`", DEFAULTS_KEYS)?;
        Some(Defaults {
            timeout: self.duration(&fields, "timeout"),
            retry: fields.get("retry").and_then(|n| self.retry(n)),
            env: self.string_map(&fields, "env"),
            cwd: self.string(&fields, "cwd"),
            span: node.span,
        })
    }

    fn retry(&mut self, node: &Node) -> Option<Retry> {
        let fields = self.fields(node, "retry", "`retry`", RETRY_KEYS)?;
        let attempts = fields.get("attempts").and_then(|n| match n.value {
            Value::Int(i) if i >= 0 => {
                Some(Spanned::new(u32::try_from(i).unwrap_or(u32::MAX), n.span))
            }
            _ => {
                self.wrong_type("attempts", "a whole number", n);
                None
            }
        });
        let on = match fields.get("on") {
            Some(node) => self
                .fields(node, "on", "`retry.on`", RETRY_ON_KEYS)
                .map(|on| RetryOn {
                    exit_codes: self.int_list(&on, "exit_codes"),
                    sql_errors: self.int_list(&on, "sql_errors"),
                    timeout: self.bool(&on, "timeout"),
                    connect: self.bool(&on, "connect"),
                }),
            None => None,
        };
        Some(Retry {
            attempts,
            delay: self.duration(&fields, "delay"),
            backoff: self.choice(&fields, "backoff", Backoff::NAMES, Backoff::from_name),
            max_delay: self.duration(&fields, "max_delay"),
            jitter: self.bool(&fields, "jitter"),
            on,
        })
    }

    /// A list of steps (`steps` or `finally`) at `node`: those built as it was read, or
    /// those of its items, which were taken out of it.
    fn steps(&mut self, field: &str, node: &Node, items: Vec<Node>, built: Built) -> Vec<Step> {
        // Reports a value that is not a list (a taken or streamed list is left empty).
        self.seq(field, node);
        if items.is_empty() {
            self.problems.extend(built.problems);
            return built.steps;
        }
        // Exact capacity: a `Step` is large, and a list grown by doubling holds up to twice
        // what it needs.
        let mut steps = Vec::with_capacity(items.len());
        for (i, item) in items.into_iter().enumerate() {
            steps.extend(self.step(i, item));
        }
        steps
    }

    fn step(&mut self, index: usize, node: Node) -> Option<Step> {
        // The step's own node: its strings move into the model.
        let id_text = node
            .as_map()
            .and_then(|m| m.iter().find(|(k, _)| k.name == "id"))
            .and_then(|(_, v)| v.as_str())
            .map(str::to_owned);
        let context = match &id_text {
            Some(id) => Context::Step(id),
            None => Context::StepNumber(index),
        };
        let span = node.span;
        let mut fields = self.fields_of(Cow::Owned(node), "steps[]", context, STEP_KEYS)?;
        let id = self.take_string(&mut fields, "id");
        if id.is_none() && fields.get("id").is_none() {
            self.missing(
                &fields,
                "id",
                "give every step an `id`, e.g. `id: bring-online`".to_owned(),
            );
        }
        let uses = self.string(&fields, "use").map(Box::new);
        let kind = match &uses {
            // A `use` step has no kind of its own: the group's steps act.
            Some(_) => None,
            None => self.step_kind(&mut fields, id.as_ref()),
        };
        let with = self.passed(&fields);
        let id = id?;
        self.check_use(&fields, &id, uses.is_some());
        let kind = kind.unwrap_or_else(|| {
            StepKind::Wait(Spanned::new(Duration(std::time::Duration::ZERO), id.span))
        });
        Some(Step {
            id,
            title: self.string(&fields, "title").map(Box::new),
            needs: self.take_string_list(&mut fields, "needs"),
            when: self.string(&fields, "when").map(Box::new),
            timeout: self.duration(&fields, "timeout").map(Box::new),
            expect: self.duration(&fields, "expect").map(Box::new),
            retry: fields
                .get("retry")
                .and_then(|n| self.retry(n))
                .map(Box::new),
            until: self.string(&fields, "until").map(Box::new),
            outputs: self.string_map(&fields, "outputs").into(),
            rollback: fields
                .get("rollback")
                .and_then(|n| self.action(n))
                .map(Box::new),
            irreversible: self.bool(&fields, "irreversible").map(Box::new),
            probe: self.bool(&fields, "probe").map(Box::new),
            rehearse: fields
                .get("rehearse")
                .and_then(|n| self.rehearse(n))
                .map(Box::new),
            idempotent: self.bool(&fields, "idempotent").map(Box::new),
            continue_on_failure: self.bool(&fields, "continue_on_failure").map(Box::new),
            env: self.string_map(&fields, "env").into(),
            for_each: fields
                .get("for_each")
                .and_then(|n| self.for_each(n))
                .map(Box::new),
            item_as: self.string(&fields, "as").map(Box::new),
            concurrency: self.count(&fields, "concurrency", 1).map(Box::new),
            max_failures: self.count(&fields, "max_failures", 0).map(Box::new),
            uses,
            with: with.into(),
            scope: crate::scope::Scope::default(),
            target: self.string(&fields, "target").map(Box::new),
            kind,
            span,
        })
    }

    /// A `use` step has no keys of its own beyond `id`, `title`, `needs` and `with`; `with`
    /// belongs to a `use` step.
    fn check_use(&mut self, fields: &Fields, id: &Spanned<String>, uses: bool) {
        const WITH_USE: &[&str] = &["id", "title", "needs", "use", "with"];
        if uses {
            for (key, _) in fields.entries.iter() {
                if STEP_KEYS.contains(&key.name.as_str()) && !WITH_USE.contains(&key.name.as_str())
                {
                    self.push(Problem::UseWithKey {
                        id: id.value.clone(),
                        key: key.name.clone(),
                        span: key.span.into(),
                    });
                }
            }
        } else if let Some(span) = fields.key_span("with") {
            self.push(Problem::WithWithoutUse {
                id: id.value.clone(),
                span: span.into(),
            });
        }
    }

    /// `with:` the params passed to a group: strings are templates, other values pass as they are.
    fn passed(&mut self, fields: &Fields) -> IndexMap<String, Spanned<Passed>> {
        let mut out = IndexMap::new();
        let Some(node) = fields.get("with") else {
            return out;
        };
        if matches!(node.value, Value::Null) {
            return out;
        }
        let Some(entries) = node.as_map() else {
            self.wrong_type("with", "a mapping of param names to values", node);
            return out;
        };
        for (k, v) in entries {
            let passed = match &v.value {
                Value::String(s) => Passed::Template(s.clone()),
                _ => Passed::Value(v.to_json()),
            };
            out.insert(k.name.clone(), Spanned::new(passed, v.span));
        }
        out
    }

    /// `for_each`: a template string or a literal list.
    fn for_each(&mut self, node: &Node) -> Option<Spanned<ForEach>> {
        match &node.value {
            Value::Seq(_) => match node.to_json() {
                serde_json::Value::Array(items) => {
                    Some(Spanned::new(ForEach::List(items), node.span))
                }
                _ => None,
            },
            _ => self
                .string_node("for_each", node)
                .map(|s| Spanned::new(ForEach::Template(s.value), s.span)),
        }
    }

    /// A whole number of at least `min`.
    fn count(&mut self, fields: &Fields, key: &str, min: i64) -> Option<Spanned<i64>> {
        let node = fields.get(key)?;
        let n = self.int(key, node)?;
        if n.value < min {
            self.push(Problem::OutOfRange {
                field: key.to_owned(),
                min,
                span: node.span.into(),
            });
            return None;
        }
        Some(n)
    }

    /// The step's kind: the first of the kind keys that could be read. A step must have
    /// exactly one kind key; when it has none or several, the problem is reported here.
    fn step_kind(&mut self, fields: &mut Fields, id: Option<&Spanned<String>>) -> Option<StepKind> {
        let built = [
            fields
                .take("run")
                .and_then(|node| self.run_of(Cow::Owned(node)))
                .map(StepKind::Run),
            self.kind_key(fields, "sql", Self::sql)
                .map(|sql| StepKind::Sql(Box::new(sql))),
            self.duration(fields, "wait").map(StepKind::Wait),
            self.kind_key(fields, "assert", Self::assert)
                .map(StepKind::Assert),
            self.kind_key(fields, "approval", Self::approval)
                .map(|approval| StepKind::Approval(Box::new(approval))),
        ];
        // A step without an id is left out of the model: its kind is not worth a second problem.
        if let Some(id) = id {
            // Listed only when there are several: most steps have one kind, and no list.
            let present = || {
                STEP_KINDS
                    .iter()
                    .filter_map(|k| fields.key_span(k).map(|span| (*k, span)))
            };
            let mut found = present();
            match (found.next(), found.next()) {
                (None, _) => self.push(Problem::NoStepKind {
                    id: id.value.clone(),
                    span: id.span.into(),
                }),
                (Some(_), None) => {}
                (Some(_), Some((_, second))) => self.push(Problem::MultipleStepKinds {
                    id: id.value.clone(),
                    kinds: list(present().map(|(k, _)| k)),
                    span: second.into(),
                }),
            }
        }
        built.into_iter().flatten().next()
    }

    /// The value of a kind key, if present and readable.
    fn kind_key<T>(
        &mut self,
        fields: &Fields,
        key: &str,
        read: fn(&mut Self, &Node) -> Option<T>,
    ) -> Option<T> {
        fields.get(key).and_then(|node| read(self, node))
    }

    fn run(&mut self, node: &Node) -> Option<Run> {
        self.run_of(Cow::Borrowed(node))
    }

    fn run_of(&mut self, node: Cow<'_, Node>) -> Option<Run> {
        let span = node.span;
        let mut fields = self.fields_of(node, "run", "`run`", RUN_KEYS)?;
        Some(Run {
            program: self.take_string(&mut fields, "program"),
            args: self.take_string_list(&mut fields, "args"),
            shell: self.choice(&fields, "shell", Shell::NAMES, Shell::from_name),
            script: self.string(&fields, "script"),
            cwd: self.string(&fields, "cwd").map(Box::new),
            span,
        })
    }

    fn sql(&mut self, node: &Node) -> Option<Sql> {
        let fields = self.fields(node, "sql", "`sql`", SQL_KEYS)?;
        let connection = self.string(&fields, "connection");
        if fields.get("connection").is_none() {
            self.missing(
                &fields,
                "connection",
                "name a connection declared under `connections`".to_owned(),
            );
        }
        let query = self.string(&fields, "query");
        if fields.get("query").is_none() {
            self.missing(
                &fields,
                "query",
                "add the T-SQL to run as `query`".to_owned(),
            );
        }
        let args = match fields.get("args") {
            Some(n) => {
                let items = self.seq("args", n);
                items
                    .iter()
                    .filter_map(|item| {
                        let scalar = match &item.value {
                            Value::Null => Scalar::Null,
                            Value::Bool(b) => Scalar::Bool(*b),
                            Value::Int(i) => Scalar::Int(*i),
                            Value::Float(f) => Scalar::Float(*f),
                            Value::String(s) => Scalar::String(s.clone()),
                            Value::Seq(_) | Value::Map(_) => {
                                self.wrong_type(
                                    "args",
                                    "a scalar (string, number, bool or null)",
                                    item,
                                );
                                return None;
                            }
                        };
                        Some(Spanned::new(scalar, item.span))
                    })
                    .collect()
            }
            None => Vec::new(),
        };
        Some(Sql {
            connection: connection?,
            query: query?,
            args,
            database: self.string(&fields, "database"),
        })
    }

    fn assert(&mut self, node: &Node) -> Option<Assert> {
        if matches!(node.value, Value::Map(_)) {
            let fields = self.fields(node, "assert", "`assert`", ASSERT_KEYS)?;
            let that = self.string(&fields, "that");
            if fields.get("that").is_none() {
                self.missing(
                    &fields,
                    "that",
                    "add the expression that must hold as `that`".to_owned(),
                );
            }
            return Some(Assert {
                that: that?,
                message: self.string(&fields, "message"),
            });
        }
        Some(Assert {
            that: self.string_node("assert", node)?,
            message: None,
        })
    }

    fn approval(&mut self, node: &Node) -> Option<Approval> {
        let fields = self.fields(node, "approval", "`approval`", APPROVAL_KEYS)?;
        let prompt = self.string(&fields, "prompt");
        if fields.get("prompt").is_none() {
            self.missing(
                &fields,
                "prompt",
                "add the question to ask as `prompt`".to_owned(),
            );
        }
        let approvers = fields.get("approvers").and_then(|n| self.approvers(n));
        let min = self.count(&fields, "min", 1);
        if approvers.is_none() {
            for field in ["min", "self_approval", "timeout"] {
                if let Some(node) = fields.get(field) {
                    self.push(Problem::NoApprovers {
                        field,
                        span: node.span.into(),
                    });
                }
            }
        }
        if let (Some(Approvers::Users(users)), Some(min)) = (&approvers, &min)
            && min.value > users.len() as i64
        {
            self.push(Problem::TooFewApprovers {
                min: min.value,
                count: users.len(),
                span: min.span.into(),
            });
        }
        Some(Approval {
            prompt: prompt?,
            instructions: self.string(&fields, "instructions"),
            min,
            self_approval: self.bool(&fields, "self_approval"),
            timeout: self.duration(&fields, "timeout"),
            approvers,
        })
    }

    /// `approvers:` a non-empty list of user names, or `{ group: NAME }`.
    fn approvers(&mut self, node: &Node) -> Option<Approvers> {
        if matches!(node.value, Value::Map(_)) {
            let fields = self.fields(node, "approvers", "`approvers`", APPROVER_GROUP_KEYS)?;
            if fields.get("group").is_none() {
                self.missing(
                    &fields,
                    "group",
                    "name the OS group whose members may approve as `group`".to_owned(),
                );
            }
            let group = self.string(&fields, "group")?;
            return Some(Approvers::Group(ApproverGroup { group }));
        }
        if !matches!(node.value, Value::Seq(_)) {
            self.wrong_type(
                "approvers",
                "a list of user names or `{ group: NAME }`",
                node,
            );
            return None;
        }
        let users: Vec<Spanned<String>> = self
            .seq("approvers", node)
            .iter()
            .filter_map(|item| self.string_node("approvers", item))
            .collect();
        if users.is_empty() {
            self.push(Problem::OutOfRange {
                field: "approvers".to_owned(),
                min: 1,
                span: node.span.into(),
            });
            return None;
        }
        Some(Approvers::Users(users))
    }

    fn action(&mut self, node: &Node) -> Option<Rollback> {
        let fields = self.fields(node, "rollback", "`rollback`", ROLLBACK_KEYS)?;
        let built: Vec<RollbackKind> = [
            self.kind_key(&fields, "run", Self::run)
                .map(RollbackKind::Run),
            self.kind_key(&fields, "sql", Self::sql)
                .map(RollbackKind::Sql),
            self.kind_key(&fields, "approval", Self::approval)
                .map(RollbackKind::Approval),
        ]
        .into_iter()
        .flatten()
        .collect();
        if let Some(RollbackKind::Approval(a)) = built.first()
            && a.is_multi_party()
        {
            self.push(Problem::RollbackApprovers {
                span: node.span.into(),
            });
        }
        if built.len() != 1 {
            self.push(Problem::InvalidRollback {
                count: built.len(),
                span: node.span.into(),
            });
        }
        let kind = built.into_iter().next().unwrap_or_else(|| {
            RollbackKind::Approval(Approval {
                prompt: Spanned::new(String::new(), node.span),
                instructions: None,
                approvers: None,
                min: None,
                self_approval: None,
                timeout: None,
            })
        });
        Some(Rollback {
            kind,
            timeout: self.duration(&fields, "timeout"),
            retry: fields.get("retry").and_then(|n| self.retry(n)),
            env: self.string_map(&fields, "env"),
            past_point_of_no_return: self.bool(&fields, "past_point_of_no_return"),
            target: self.string(&fields, "target"),
            span: node.span,
        })
    }

    /// `rehearse:` exactly one of `run`, `sql`.
    fn rehearse(&mut self, node: &Node) -> Option<Rehearse> {
        let fields = self.fields(node, "rehearse", "`rehearse`", REHEARSE_KEYS)?;
        let built: Vec<RehearseKind> = [
            self.kind_key(&fields, "run", Self::run)
                .map(RehearseKind::Run),
            self.kind_key(&fields, "sql", Self::sql)
                .map(RehearseKind::Sql),
        ]
        .into_iter()
        .flatten()
        .collect();
        if built.len() != 1 {
            self.push(Problem::InvalidRehearse {
                count: built.len(),
                span: node.span.into(),
            });
        }
        let target = self.string(&fields, "target");
        Some(Rehearse {
            kind: built.into_iter().next()?,
            target,
            span: node.span,
        })
    }
}
