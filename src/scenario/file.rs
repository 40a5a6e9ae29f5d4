//! Reads a test file (`*.test.yaml`): the runbook it tests and its scenarios (params,
//! approvals, mocks, expectations), every problem located at its line and column. The runbook
//! itself is read by the runbook loader; the ids the test names are checked against it in
//! [`super::names`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::diagnostic::{Problem, list, suggestion};
use crate::exec::event::Row;
use crate::model::Spanned;
use crate::yaml::{Key, Node, Span, Value};

/// A test file as read.
#[derive(Debug)]
pub struct TestFile {
    /// The runbook, resolved against the test file's directory, and where the test names it.
    pub runbook: Spanned<PathBuf>,
    pub scenarios: Vec<Scenario>,
}

#[derive(Debug)]
pub struct Scenario {
    pub name: Spanned<String>,
    /// Params, and values of the runbook's secrets (named like params).
    pub params: Vec<(Spanned<String>, serde_json::Value)>,
    pub approvals: Approvals,
    /// Per unit (step, `STEP[KEY]`, `rollback:UNIT`): one mock per attempt, or one for all.
    pub mocks: Vec<(Spanned<String>, Mocks)>,
    /// The units whose mocks are shared with other scenarios (taken from a YAML alias, or
    /// under an anchor for others to take): that this run leaves one unused says nothing.
    pub shared_mocks: Vec<String>,
    pub expect: Expect,
}

#[derive(Debug, Default)]
pub enum Approvals {
    #[default]
    None,
    All,
    Given(Vec<Spanned<String>>),
}

#[derive(Clone, Debug)]
pub enum Mocks {
    /// One mock answers every attempt.
    Every(Mock),
    /// One mock per attempt, in order.
    PerAttempt(Vec<Mock>),
}

impl Mocks {
    /// Every mock given, whichever attempts it answers.
    pub fn all(&self) -> &[Mock] {
        match self {
            Mocks::Every(mock) => std::slice::from_ref(mock),
            Mocks::PerAttempt(list) => list,
        }
    }
}

/// The result of one mocked attempt.
#[derive(Clone, Debug, Default)]
pub struct Mock {
    pub exit_code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub rows: Option<Vec<Row>>,
    /// What SQL Server would say with the result: PRINT and informational messages, as a real
    /// query's `result.messages` holds them (their text).
    pub messages: Vec<String>,
    pub rows_affected: Option<u64>,
    pub outputs: BTreeMap<String, String>,
    pub fail: Option<Fail>,
}

/// `fail: { reason, number?, message? }`: an attempt that failed for this reason.
#[derive(Clone, Debug)]
pub struct Fail {
    pub reason: Reason,
    pub number: Option<i64>,
    pub message: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    Exit,
    Sql,
    Timeout,
    Connect,
    Until,
    Error,
}

pub const REASONS: &[&str] = &["exit", "sql", "timeout", "connect", "until", "error"];

#[derive(Debug, Default)]
pub struct Expect {
    pub ran: Option<Vec<Spanned<String>>>,
    pub skipped: Option<Vec<Spanned<String>>>,
    pub attempts: Vec<(Spanned<String>, u32)>,
    pub rolled_back: Option<Vec<Spanned<String>>>,
    pub needs_person: Option<Vec<Spanned<String>>>,
    pub exit_code: Option<u8>,
    pub output_contains: Vec<String>,
    pub output_lacks: Vec<String>,
}

const FILE_KEYS: &[&str] = &["test", "runbook", "scenarios"];
const SCENARIO_KEYS: &[&str] = &["name", "params", "approvals", "mocks", "expect"];
const MOCK_KEYS: &[&str] = &[
    "exit_code",
    "stdout",
    "stderr",
    "rows",
    "rows_affected",
    "messages",
    "outputs",
    "fail",
];
const FAIL_KEYS: &[&str] = &["reason", "number", "message"];
const EXPECT_KEYS: &[&str] = &[
    "ran",
    "skipped",
    "attempts",
    "rolled_back",
    "needs_person",
    "exit_code",
    "output_contains",
    "output_lacks",
];

/// Reads a test file's text; `None` with problems when its shape is wrong.
pub fn parse(path: &Path, source: &str, problems: &mut Vec<Problem>) -> Option<TestFile> {
    let root = match crate::load::parse_yaml(source) {
        Ok(root) => root,
        Err(problem) => {
            problems.push(problem);
            return None;
        }
    };
    let entries = map(&root, "a test file", problems)?;
    unknown_keys(entries, FILE_KEYS, "a test file", problems);
    match field(entries, "test") {
        Some(v) if matches!(v.value, Value::Int(1)) => {}
        Some(v) => problems.push(invalid(
            v.span,
            "unsupported test file version",
            "expected 1",
            "this version of runbook reads test files of version 1: write `test: 1`",
        )),
        None => problems.push(missing(root.span, "test", "a test file")),
    }
    let runbook = match field(entries, "runbook") {
        Some(node) => string(node, "runbook", problems).map(|s| {
            let dir = path.parent().unwrap_or(Path::new("."));
            Spanned::new(dir.join(s), node.span)
        }),
        None => {
            problems.push(missing(root.span, "runbook", "a test file"));
            None
        }
    };
    let scenarios = match field(entries, "scenarios") {
        Some(node) => match &node.value {
            Value::Seq(items) if !items.is_empty() => items
                .iter()
                .filter_map(|item| scenario(item, source, problems))
                .collect(),
            _ => {
                problems.push(invalid(
                    node.span,
                    "`scenarios` must be a list with at least one scenario",
                    "expected a non-empty list",
                    "each scenario has a `name`, and `params`, `approvals`, `mocks` and `expect` as it needs",
                ));
                Vec::new()
            }
        },
        None => {
            problems.push(missing(root.span, "scenarios", "a test file"));
            Vec::new()
        }
    };
    let runbook = runbook?;
    (problems.is_empty()).then_some(TestFile { runbook, scenarios })
}

fn scenario(node: &Node, source: &str, problems: &mut Vec<Problem>) -> Option<Scenario> {
    let entries = map(node, "a scenario", problems)?;
    unknown_keys(entries, SCENARIO_KEYS, "a scenario", problems);
    let name = match field(entries, "name") {
        Some(n) => string(n, "name", problems).map(|s| Spanned::new(s, n.span))?,
        None => {
            problems.push(missing(node.span, "name", "a scenario"));
            return None;
        }
    };
    let params = each_entry(entries, "params", problems, |k, v, _| {
        Some((key(k), v.to_json()))
    });
    let approvals = match field(entries, "approvals") {
        None => Approvals::None,
        Some(n) if n.as_str() == Some("all") => Approvals::All,
        Some(n) => match &n.value {
            Value::Seq(_) => Approvals::Given(ids(n, "approvals", problems)),
            _ => {
                problems.push(invalid(
                    n.span,
                    "`approvals` must be `all` or a list of approval step ids",
                    "expected `all` or a list",
                    "approvals not given are refused, as in a run without a terminal",
                ));
                Approvals::None
            }
        },
    };
    let mocks = each_entry(entries, "mocks", problems, |k, v, problems| {
        let mocks = match &v.value {
            Value::Seq(items) if !items.is_empty() => {
                Mocks::PerAttempt(items.iter().filter_map(|m| mock(m, problems)).collect())
            }
            Value::Seq(_) => {
                problems.push(invalid(
                    v.span,
                    "an empty list of mocks",
                    "no attempt is answered",
                    "give one mock per attempt, or a single mock for every attempt",
                ));
                return None;
            }
            _ => Mocks::Every(mock(v, problems)?),
        };
        Some((key(k), mocks))
    });
    let anchored = field(entries, "mocks").is_some_and(|n| is_anchored(source, n.span));
    let shared_mocks = mocks
        .iter()
        .filter(|(unit, _)| anchored || is_alias(source, unit.span))
        .map(|(unit, _)| unit.value.clone())
        .collect();
    let expect = field(entries, "expect")
        .map(|n| expect(n, problems))
        .unwrap_or_default();
    Some(Scenario {
        name,
        params,
        approvals,
        mocks,
        shared_mocks,
        expect,
    })
}

/// Whether the node at `span` carries an anchor (`&name`) for other nodes to take.
fn is_anchored(source: &str, span: Span) -> bool {
    source
        .get(..span.offset())
        .and_then(|before| before.split_whitespace().next_back())
        .is_some_and(|word| word.len() > 1 && word.starts_with('&'))
}

/// Whether `span` points at an alias (`*name`, or `<<: *name`): what stands there was
/// taken from elsewhere.
fn is_alias(source: &str, span: Span) -> bool {
    source
        .get(span.offset()..)
        .is_some_and(|at| at.starts_with('*'))
}

fn mock(node: &Node, problems: &mut Vec<Problem>) -> Option<Mock> {
    let entries = map(node, "a mock", problems)?;
    unknown_keys(entries, MOCK_KEYS, "a mock", problems);
    let mut mock = Mock::default();
    if let Some(n) = field(entries, "exit_code") {
        mock.exit_code = integer(n, "exit_code", problems).and_then(|i| i32::try_from(i).ok());
    }
    if let Some(n) = field(entries, "stdout") {
        mock.stdout = string(n, "stdout", problems).unwrap_or_default();
    }
    if let Some(n) = field(entries, "stderr") {
        mock.stderr = string(n, "stderr", problems).unwrap_or_default();
    }
    if let Some(n) = field(entries, "rows") {
        match n.to_json() {
            serde_json::Value::Array(rows) if rows.iter().all(|r| r.is_object()) => {
                mock.rows = Some(
                    rows.into_iter()
                        .filter_map(|r| match r {
                            serde_json::Value::Object(row) => Some(row),
                            _ => None,
                        })
                        .collect(),
                );
            }
            _ => problems.push(invalid(
                n.span,
                "`rows` must be a list of rows, each a mapping of column to value",
                "expected a list of mappings",
                "for example `rows: [{ state_desc: RESTORING }]`",
            )),
        }
    }
    if let Some(n) = field(entries, "rows_affected") {
        match integer(n, "rows_affected", problems).map(u64::try_from) {
            Some(Ok(count)) => mock.rows_affected = Some(count),
            Some(Err(_)) => problems.push(invalid(
                n.span,
                "`rows_affected` counts rows: 0 or more",
                "not a count",
                "write how many rows the query changed, as SQL Server's row count says",
            )),
            None => {}
        }
    }
    if let Some(n) = field(entries, "messages") {
        mock.messages = ids(n, "messages", problems)
            .into_iter()
            .map(|m| m.value)
            .collect();
    }
    if let Some(n) = field(entries, "outputs")
        && let Some(outputs) = map(n, "`outputs`", problems)
    {
        for (k, v) in outputs {
            let text = match &v.value {
                Value::String(s) => s.clone(),
                _ => v.to_json().to_string(),
            };
            mock.outputs.insert(k.name.clone(), text);
        }
    }
    if let Some(n) = field(entries, "fail") {
        mock.fail = fail(n, problems);
    }
    Some(mock)
}

fn fail(node: &Node, problems: &mut Vec<Problem>) -> Option<Fail> {
    let entries = map(node, "`fail`", problems)?;
    unknown_keys(entries, FAIL_KEYS, "`fail`", problems);
    let Some(r) = field(entries, "reason") else {
        problems.push(missing(node.span, "reason", "`fail`"));
        return None;
    };
    let text = string(r, "reason", problems)?;
    let reason = match text.as_str() {
        "exit" => Reason::Exit,
        "sql" => Reason::Sql,
        "timeout" => Reason::Timeout,
        "connect" => Reason::Connect,
        "until" => Reason::Until,
        "error" => Reason::Error,
        other => {
            problems.push(Problem::InvalidChoice {
                field: "fail.reason",
                found: other.to_owned(),
                span: r.span.into(),
                help: suggestion(other, REASONS.iter().copied(), || {
                    format!("the reasons are {}", list(REASONS.iter().copied()))
                }),
            });
            return None;
        }
    };
    let number = field(entries, "number").and_then(|n| integer(n, "number", problems));
    if reason == Reason::Sql && number.is_none() {
        problems.push(missing(node.span, "number", "`fail: { reason: sql }`"));
    }
    let message = field(entries, "message").and_then(|n| string(n, "message", problems));
    Some(Fail {
        reason,
        number,
        message,
    })
}

fn expect(node: &Node, problems: &mut Vec<Problem>) -> Expect {
    let Some(entries) = map(node, "`expect`", problems) else {
        return Expect::default();
    };
    unknown_keys(entries, EXPECT_KEYS, "`expect`", problems);
    // A step listed twice would be compared as once: say so instead.
    let list_of = |name: &str, problems: &mut Vec<Problem>| {
        field(entries, name).map(|n| {
            let listed = ids(n, name, problems);
            for (i, id) in listed.iter().enumerate() {
                if listed[..i].iter().any(|earlier| earlier.value == id.value) {
                    problems.push(invalid(
                        id.span,
                        &format!("`{}` is listed twice in `{name}`", id.value),
                        "listed again",
                        "each step or instance appears once",
                    ));
                }
            }
            listed
        })
    };
    // An empty text is in every output: a check that could never fail.
    let texts = |name: &str, problems: &mut Vec<Problem>| -> Vec<String> {
        field(entries, name)
            .map(|n| {
                ids(n, name, problems)
                    .into_iter()
                    .filter(|text| {
                        if text.value.is_empty() {
                            problems.push(invalid(
                                text.span,
                                &format!("an empty text in `{name}`"),
                                "empty",
                                "give the text to look for in the run's output",
                            ));
                        }
                        !text.value.is_empty()
                    })
                    .map(|s| s.value)
                    .collect()
            })
            .unwrap_or_default()
    };
    let attempts = each_entry(entries, "attempts", problems, |k, v, problems| {
        let n = integer(v, "attempts", problems)?;
        match u32::try_from(n) {
            Ok(n) => Some((key(k), n)),
            Err(_) => {
                problems.push(invalid(
                    v.span,
                    "`attempts` counts attempts: 0 or more",
                    "not a count",
                    "write how many attempts the step made, 0 when it never started",
                ));
                None
            }
        }
    });
    Expect {
        ran: list_of("ran", problems),
        skipped: list_of("skipped", problems),
        attempts,
        rolled_back: list_of("rolled_back", problems),
        needs_person: list_of("needs_person", problems),
        exit_code: field(entries, "exit_code")
            .and_then(|n| integer(n, "exit_code", problems))
            .and_then(|i| u8::try_from(i).ok()),
        output_contains: texts("output_contains", problems),
        output_lacks: texts("output_lacks", problems),
    }
}

fn key(k: &Key) -> Spanned<String> {
    Spanned::new(k.name.clone(), k.span)
}

/// The entries of the mapping at `name` (none when it is absent), each read by `read`.
fn each_entry<T>(
    entries: &[(Key, Node)],
    name: &str,
    problems: &mut Vec<Problem>,
    mut read: impl FnMut(&Key, &Node, &mut Vec<Problem>) -> Option<T>,
) -> Vec<T> {
    let Some(node) = field(entries, name) else {
        return Vec::new();
    };
    let Some(inner) = map(node, &format!("`{name}`"), problems) else {
        return Vec::new();
    };
    inner
        .iter()
        .filter_map(|(k, v)| read(k, v, problems))
        .collect()
}

fn field<'a>(entries: &'a [(Key, Node)], name: &str) -> Option<&'a Node> {
    entries.iter().find(|(k, _)| k.name == name).map(|(_, v)| v)
}

fn map<'a>(node: &'a Node, what: &str, problems: &mut Vec<Problem>) -> Option<&'a [(Key, Node)]> {
    match &node.value {
        Value::Map(entries) => Some(entries),
        // `params:` with nothing after it.
        Value::Null => Some(&[]),
        other => {
            problems.push(invalid(
                node.span,
                &format!("{what} must be a mapping, found {}", other.kind()),
                "expected a mapping",
                "see the test file format in the README (`runbook test`)",
            ));
            None
        }
    }
}

fn string(node: &Node, name: &str, problems: &mut Vec<Problem>) -> Option<String> {
    match &node.value {
        Value::String(s) => Some(s.clone()),
        Value::Int(i) => Some(i.to_string()),
        Value::Float(f) => Some(f.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        other => {
            problems.push(wrong_type(node, name, "a string", other.kind()));
            None
        }
    }
}

fn integer(node: &Node, name: &str, problems: &mut Vec<Problem>) -> Option<i64> {
    match &node.value {
        Value::Int(i) => Some(*i),
        other => {
            problems.push(wrong_type(node, name, "an integer", other.kind()));
            None
        }
    }
}

/// A list of strings (step ids, or texts), each with its place.
fn ids(node: &Node, name: &str, problems: &mut Vec<Problem>) -> Vec<Spanned<String>> {
    match &node.value {
        Value::Seq(items) => items
            .iter()
            .filter_map(|item| string(item, name, problems).map(|s| Spanned::new(s, item.span)))
            .collect(),
        Value::Null => Vec::new(),
        other => {
            problems.push(wrong_type(node, name, "a list", other.kind()));
            Vec::new()
        }
    }
}

fn wrong_type(node: &Node, field: &str, expected: &'static str, found: &'static str) -> Problem {
    Problem::WrongType {
        field: field.to_owned(),
        expected,
        found,
        span: node.span.into(),
        help: None,
    }
}

fn unknown_keys(entries: &[(Key, Node)], known: &[&str], what: &str, problems: &mut Vec<Problem>) {
    for (k, _) in entries {
        if !known.contains(&k.name.as_str()) {
            problems.push(Problem::UnknownKey {
                key: k.name.clone(),
                context: what.to_owned(),
                span: k.span.into(),
                help: suggestion(&k.name, known.iter().copied(), || {
                    format!("the keys of {what} are {}", list(known.iter().copied()))
                }),
            });
        }
    }
}

fn missing(span: Span, field: &'static str, what: &str) -> Problem {
    Problem::MissingField {
        field,
        context: what.to_owned(),
        span: Span::new(span.offset(), 0).into(),
        help: "see the test file format in the README (`runbook test`)".to_owned(),
    }
}

/// A problem of a test file, located at `span`.
pub fn invalid(span: Span, message: &str, label: &str, help: &str) -> Problem {
    Problem::InvalidTest {
        message: message.to_owned(),
        span: span.into(),
        label: label.to_owned(),
        help: help.to_owned(),
    }
}
