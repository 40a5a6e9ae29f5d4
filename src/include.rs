//! Step groups: each `use:` step names a group file (relative to the file that holds it,
//! inside the runbook's directory). The group is read and validated once, in its own file,
//! and its steps are expanded into the runbook's one flat list as `USE.STEP`, followed by the
//! `use` step itself, which needs all of them and carries the group's outputs. Everything
//! after loading (scheduler, journal, resume, rollback, plan, graph) sees ordinary steps.
//!
//! Two lists come out of an expansion: the steps that run (templates and scopes intact), and
//! the view the including file is validated with, where a group's steps are stand-ins that
//! keep their ids, `needs`, outputs' names and flags but no templates (those were checked in
//! the group's own file) and point at the `use` step; the `with:` templates stand on the
//! group's first step, whose ancestors are exactly what they may read.

use std::collections::{HashMap, HashSet};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use indexmap::IndexMap;

use crate::dag::Dag;
use crate::diagnostic::{Problem, list, suggestion};
use crate::line_index::LineIndex;
use crate::model::{
    Connection, Duration, ForEach, Named, Param, Passed, RollbackKind, Runbook, Spanned, Step,
    StepKind,
};
use crate::report::FileReport;
use crate::scope::{Level, Scope};
use crate::yaml::Span;

/// The groups read while checking: each file is read and validated once, however often it
/// is used.
#[derive(Default)]
pub struct Groups {
    /// The directory of the runbook being checked: groups must be inside it.
    root: PathBuf,
    /// Keyed by the root and the group's canonical path.
    cache: HashMap<(PathBuf, PathBuf), Arc<Group>>,
    /// The group files being expanded, outermost first, to catch include cycles.
    stack: Vec<PathBuf>,
}

/// A group file, read, expanded and validated.
struct Group {
    name: String,
    params: IndexMap<String, Param>,
    connections: IndexMap<String, Connection>,
    targets: IndexMap<String, crate::model::Target>,
    outputs: IndexMap<String, Spanned<String>>,
    /// Its steps as they run, ids relative to the group.
    steps: Vec<Step>,
    /// The same steps as its includers validate them.
    view: Vec<Step>,
    /// Its own problems and those of the groups it includes; `None` when it has none.
    report: Option<FileReport>,
    /// The group files it includes, directly or not.
    files: Vec<PathBuf>,
    /// Params that reach a program or its arguments, each with the first step (by its id in
    /// the group) where one does: a secret passed to them would be on the command line.
    in_args: IndexMap<String, String>,
}

/// A runbook (or group) with its `use` steps expanded.
pub struct Expanded {
    /// What runs.
    pub runbook: Runbook,
    /// What the file is validated with (see the module docs), when it is not `runbook`
    /// itself: a file without `use` steps is validated as it runs, with no copy.
    view: Option<Runbook>,
    /// Problems found in the included files, one report per group file.
    pub included: Vec<FileReport>,
    passed_on: IndexMap<String, String>,
}

/// What expanding a list of steps gives.
struct Parts {
    run: Vec<Step>,
    view: Vec<Step>,
    /// The connections of the groups, under `USE.NAME`.
    connections: IndexMap<String, Connection>,
    /// The targets of the groups, under `USE.NAME`.
    targets: IndexMap<String, crate::model::Target>,
    included: Vec<FileReport>,
    /// The group files used, directly or not, each once.
    files: Vec<PathBuf>,
    /// Params of this file passed on to a group param that reaches a command line, each with
    /// the step (by its id here) where it does.
    passed_on: IndexMap<String, String>,
}

/// Where a file stands: its path as shown, its directory, its text.
struct File<'a> {
    display: &'a str,
    dir: &'a Path,
    source: &'a str,
}

impl Expanded {
    /// What the file is validated with (see the module docs).
    pub fn view(&self) -> &Runbook {
        self.view.as_ref().unwrap_or(&self.runbook)
    }
}

impl Groups {
    /// Expands the `use` steps of `runbook`, read from `source` at `display`; problems at the
    /// `use` steps go to `problems`.
    pub fn expand(
        &mut self,
        mut runbook: Runbook,
        display: &str,
        source: &str,
        problems: &mut Vec<Problem>,
    ) -> Expanded {
        for step in &runbook.finally {
            if let Some(uses) = &step.uses {
                problems.push(Problem::FinallyUse {
                    id: step.id.value.clone(),
                    span: uses.span.into(),
                });
            }
        }
        if self.stack.is_empty() {
            // Groups must stay inside the directory of the runbook that runs; a group file
            // checked on its own is not run, and may be used by runbooks further up.
            self.root = match runbook.group {
                Some(_) => PathBuf::from("/"),
                None => std::fs::canonicalize(&runbook.dir).unwrap_or_else(|_| runbook.dir.clone()),
            };
        }
        if runbook.steps.iter().all(|s| s.uses.is_none()) {
            return Expanded {
                runbook,
                view: None,
                included: Vec::new(),
                passed_on: IndexMap::new(),
            };
        }
        let steps = std::mem::take(&mut runbook.steps);
        let file = File {
            display,
            dir: &runbook.dir,
            source,
        };
        let parts = self.steps(&steps, &file, problems);
        drop(steps);
        let mut shown = runbook.clone();
        shown.steps = parts.view;
        runbook.steps = parts.run;
        runbook.connections.extend(parts.connections);
        runbook.targets.extend(parts.targets);
        runbook.included = parts.files;
        Expanded {
            runbook,
            view: Some(shown),
            included: parts.included,
            passed_on: parts.passed_on,
        }
    }

    fn steps(&mut self, steps: &[Step], file: &File, problems: &mut Vec<Problem>) -> Parts {
        let mut run = Vec::with_capacity(steps.len());
        let mut view = Vec::with_capacity(steps.len());
        let mut connections = IndexMap::new();
        let mut targets = IndexMap::new();
        let mut included = Vec::new();
        let mut reported = HashSet::new();
        let mut passed_on = IndexMap::new();
        let mut files: Vec<PathBuf> = Vec::new();
        for step in steps {
            let Some(uses) = &step.uses else {
                run.push(step.clone());
                view.push(step.clone());
                continue;
            };
            let Some((path, group)) = self.resolve(uses, file, problems) else {
                // Unresolved: a stand-in keeps the steps that need it from failing too.
                let stand_in = bare(step, &step.id.value, step.needs.clone(), Scope::default());
                run.push(stand_in.clone());
                view.push(stand_in);
                continue;
            };
            for file in std::iter::once(&path).chain(&group.files) {
                if !files.contains(file) {
                    files.push(file.clone());
                }
            }
            check_with(step, &group, problems);
            for (param, passed) in &step.with {
                let (Some(inner), Passed::Template(text)) =
                    (group.in_args.get(param), &passed.value)
                else {
                    continue;
                };
                for name in secrets_read(text) {
                    problems.push(Problem::SecretIntoGroupArgs {
                        name,
                        param: param.clone(),
                        step: format!("{}.{inner}", step.id.value),
                        span: passed.span.into(),
                    });
                }
                for name in params_read(text) {
                    passed_on
                        .entry(name)
                        .or_insert_with(|| format!("{}.{inner}", step.id.value));
                }
            }
            if let Some(report) = &group.report
                && reported.insert(path)
            {
                let at = at(file, uses.span);
                included.push(chained(report, &at));
            }
            let level = Arc::new(Level {
                prefix: step.id.value.clone(),
                with: (*step.with).clone(),
                params: group.params.clone(),
            });
            let id = &step.id.value;
            let mut members = Vec::with_capacity(group.steps.len());
            let mut first_root = true;
            for (inner, shown) in group.steps.iter().zip(&group.view) {
                let root = inner.needs.is_empty();
                let mut running = inner.clone();
                prefix(&mut running, id, &step.needs, &level);
                let mut stand_in = shown.clone();
                prefix(&mut stand_in, id, &step.needs, &level);
                relocate(&mut stand_in, step, root);
                if root && first_root {
                    first_root = false;
                    stand_in.env = with_templates(step).into();
                }
                members.push(Spanned::new(running.id.value.clone(), step.id.span));
                run.push(running);
                view.push(stand_in);
            }
            for (name, connection) in &group.connections {
                let mut connection = connection.clone();
                connection.name.value = format!("{id}.{name}");
                connections.insert(connection.name.value.clone(), connection);
            }
            for (name, target) in &group.targets {
                targets.insert(format!("{id}.{name}"), target.clone());
            }
            let needs = if members.is_empty() {
                step.needs.clone()
            } else {
                members
            };
            let scope = Scope(vec![level]);
            let mut own = bare(step, &step.id.value, needs, scope);
            own.title = Some(step.title.clone().unwrap_or_else(|| {
                Box::new(Spanned::new(format!("group {}", group.name), step.id.span))
            }));
            let mut shown = own.clone();
            // The `use` step's id is written in this file: checked like any step id.
            shown.scope = Scope::default();
            own.outputs = group.outputs.clone().into();
            shown.outputs = names_only(&group.outputs, step.id.span).into();
            if group.steps.is_empty() {
                shown.env = with_templates(step).into();
            }
            run.push(own);
            view.push(shown);
        }
        Parts {
            run,
            view,
            connections,
            targets,
            included,
            passed_on,
            files,
        }
    }

    /// The group a `use:` names, read and validated on first use.
    fn resolve(
        &mut self,
        uses: &Spanned<String>,
        file: &File,
        problems: &mut Vec<Problem>,
    ) -> Option<(PathBuf, Arc<Group>)> {
        let span = uses.span.into();
        let shown = shown_path(file.display, &uses.value);
        let unreadable = |reason: String| Problem::GroupUnreadable {
            path: shown.clone(),
            reason,
            span,
        };
        if Path::new(uses.as_str()).is_absolute() {
            problems.push(unreadable(
                "an absolute path; write it relative to this file".to_owned(),
            ));
            return None;
        }
        let path = match std::fs::canonicalize(file.dir.join(uses.as_str())) {
            Ok(path) => path,
            Err(e) => {
                problems.push(unreadable(e.to_string()));
                return None;
            }
        };
        if !path.starts_with(&self.root) {
            problems.push(Problem::GroupOutside {
                path: shown,
                root: self.root.display().to_string(),
                span,
            });
            return None;
        }
        if let Some(at) = self.stack.iter().position(|p| *p == path) {
            let mut chain: Vec<String> = self.stack[at..].iter().map(|p| name(p)).collect();
            chain.push(name(&path));
            problems.push(Problem::GroupCycle {
                chain: chain.join(" → "),
                span,
            });
            return None;
        }
        let key = (self.root.clone(), path.clone());
        if let Some(group) = self.cache.get(&key) {
            return Some((path, group.clone()));
        }
        let loaded = crate::load::load(&path);
        if loaded.runbook.as_ref().is_some_and(|r| r.group.is_none()) {
            problems.push(Problem::NotAGroup { path: shown, span });
            return None;
        }
        self.stack.push(path.clone());
        let group = self.read(loaded, &shown);
        self.stack.pop();
        let group = Arc::new(group);
        self.cache.insert(key, group.clone());
        Some((path, group))
    }

    /// Expands and validates a group file in its own right.
    fn read(&mut self, loaded: crate::load::Loaded, shown: &str) -> Group {
        let mut problems = loaded.problems;
        let mut group = Group {
            name: String::new(),
            params: IndexMap::new(),
            connections: IndexMap::new(),
            targets: IndexMap::new(),
            outputs: IndexMap::new(),
            steps: Vec::new(),
            view: Vec::new(),
            report: None,
            in_args: IndexMap::new(),
            files: Vec::new(),
        };
        let mut included = Vec::new();
        if let Some(runbook) = loaded.runbook {
            group.name = runbook.name.value.clone();
            group.params = runbook.params.clone();
            group.outputs = runbook.group.clone().unwrap_or_default();
            group.in_args = in_args(&runbook.steps);
            let expanded = self.expand(runbook, shown, &loaded.source, &mut problems);
            check(expanded.view(), &loaded.source, &mut problems);
            included = expanded.included;
            group.view = expanded.runbook.steps.iter().map(stand_in).collect();
            for (name, step) in &expanded.passed_on {
                group
                    .in_args
                    .entry(name.clone())
                    .or_insert_with(|| step.clone());
            }
            group.files = expanded.runbook.included.clone();
            group.connections = expanded.runbook.connections;
            group.targets = expanded.runbook.targets;
            group.steps = expanded.runbook.steps;
        }
        problems.sort_by_key(|p| p.primary_span().map(|s| s.offset()));
        if !problems.is_empty() || !included.is_empty() {
            group.report = Some(FileReport {
                path: shown.to_owned(),
                source: loaded.source,
                problems,
                included_from: Vec::new(),
                included,
            });
        }
        group
    }
}

/// What a run records to notice a changed runbook on `resume`: the file's bytes, and for a
/// runbook that uses groups, each group file's path and bytes too (an unreadable one counts
/// as changed). A runbook without groups gives its bytes, as before groups existed.
pub fn fingerprint(bytes: &[u8], runbook: &Runbook) -> Vec<u8> {
    let mut all = bytes.to_vec();
    for path in &runbook.included {
        all.extend_from_slice(b"\0");
        all.extend_from_slice(path.as_os_str().as_encoded_bytes());
        all.extend_from_slice(b"\0");
        all.extend(std::fs::read(path).unwrap_or_default());
    }
    all
}

/// Validates a runbook or group (its view, with `use` steps expanded); for a group, its
/// outputs are checked as the outputs of a step that needs all of its steps.
pub fn check(view: &Runbook, source: &str, problems: &mut Vec<Problem>) -> Dag {
    let Some(outputs) = view.group.as_ref().filter(|o| !o.is_empty()) else {
        return crate::validate::validate(view, source, problems);
    };
    let mut with_outputs = view.clone();
    let needs = view
        .steps
        .iter()
        .map(|s| Spanned::new(s.id.value.clone(), Span::default()))
        .collect();
    let span = outputs.values().next().map_or(Span::default(), |o| o.span);
    let marker = Scope(vec![Arc::new(Level {
        prefix: String::new(),
        with: IndexMap::new(),
        params: IndexMap::new(),
    })]);
    let mut step = bare_at("(outputs)", span, needs, marker);
    step.outputs = outputs.clone().into();
    with_outputs.steps.push(step);
    crate::validate::validate(&with_outputs, source, problems);
    crate::dag::Dag::new(view)
}

/// The report of a group file as seen from one `use:` at `at`: every report in it gains the
/// place it was included from.
fn chained(report: &FileReport, at: &str) -> FileReport {
    let mut included_from = report.included_from.clone();
    included_from.push(at.to_owned());
    FileReport {
        path: report.path.clone(),
        source: report.source.clone(),
        problems: report.problems.clone(),
        included_from,
        included: report.included.iter().map(|r| chained(r, at)).collect(),
    }
}

/// `file:line:column` of a span in `file`.
fn at(file: &File, span: Span) -> String {
    let (line, column) = LineIndex::new(file.source).position(span.offset());
    format!("{}:{line}:{column}", file.display)
}

/// The group's path as shown: next to the file that includes it, without `./` or `a/../`.
fn shown_path(including: &str, relative: &str) -> String {
    let dir = Path::new(including).parent().unwrap_or(Path::new(""));
    let joined = dir.join(relative);
    let mut parts: Vec<Component> = Vec::new();
    for part in joined.components() {
        match part {
            Component::CurDir => {}
            Component::ParentDir if matches!(parts.last(), Some(Component::Normal(_))) => {
                parts.pop();
            }
            other => parts.push(other),
        }
    }
    parts.iter().collect::<PathBuf>().display().to_string()
}

fn name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

/// Unknown params passed, and params the group needs that are not.
fn check_with(step: &Step, group: &Group, problems: &mut Vec<Problem>) {
    let names = || group.params.keys().map(String::as_str);
    for (name, value) in &step.with {
        if !group.params.contains_key(name) {
            let help = suggestion(name, names(), || {
                format!("the group's params are {}", list(names()))
            });
            problems.push(Problem::UnknownGroupParam {
                group: group.name.clone(),
                name: name.clone(),
                span: value.span.into(),
                help,
            });
        }
    }
    for (name, param) in &group.params {
        let optional = param.default.is_some() || param.required.as_ref().is_some_and(|r| !r.value);
        if !optional && !step.with.contains_key(name) {
            let span = step.uses.as_ref().map_or(step.id.span, |u| u.span);
            problems.push(Problem::MissingGroupParam {
                group: group.name.clone(),
                name: name.clone(),
                span: span.into(),
            });
        }
    }
}

/// The `with:` templates of a `use` step, checked where the group's first step stands.
fn with_templates(step: &Step) -> IndexMap<String, Spanned<String>> {
    step.with
        .iter()
        .filter_map(|(name, passed)| match &passed.value {
            Passed::Template(text) => Some((name.clone(), Spanned::new(text.clone(), passed.span))),
            Passed::Value(_) => None,
        })
        .collect()
}

/// A step of a group under the `use` step `id`: its id and `needs` prefixed (a first step
/// waits for what the `use` step needs), its connections renamed, its scope one level in.
fn prefix(step: &mut Step, id: &str, outer_needs: &[Spanned<String>], level: &Arc<Level>) {
    step.id.value = format!("{id}.{}", step.id.value);
    if step.needs.is_empty() {
        step.needs = outer_needs.to_vec();
    } else {
        for need in &mut step.needs {
            need.value = format!("{id}.{}", need.value);
        }
    }
    if let StepKind::Sql(sql) = &mut step.kind {
        sql.connection.value = format!("{id}.{}", sql.connection.value);
    }
    if let Some(rollback) = &mut step.rollback
        && let RollbackKind::Sql(sql) = &mut rollback.kind
    {
        sql.connection.value = format!("{id}.{}", sql.connection.value);
    }
    // A target named in the group is the group's own; a template is rendered as written.
    let targets = [
        step.target.as_deref_mut(),
        step.rollback.as_mut().and_then(|r| r.target.as_mut()),
        step.rehearse.as_mut().and_then(|r| r.target.as_mut()),
    ];
    for target in targets.into_iter().flatten() {
        if !target.value.contains("{{") && !target.value.contains("{%") {
            target.value = format!("{id}.{}", target.value);
        }
    }
    step.scope = step.scope.within(level);
}

/// A step that does nothing (a zero wait), keeping only an id and `needs`.
fn bare(step: &Step, id: &str, needs: Vec<Spanned<String>>, scope: Scope) -> Step {
    let mut bare = bare_at(id, step.id.span, needs, scope);
    bare.span = step.span;
    bare
}

fn bare_at(id: &str, span: Span, needs: Vec<Spanned<String>>, scope: Scope) -> Step {
    Step {
        id: Spanned::new(id.to_owned(), span),
        title: None,
        needs,
        when: None,
        timeout: None,
        expect: None,
        retry: None,
        until: None,
        outputs: Named::default(),
        rollback: None,
        irreversible: None,
        probe: None,
        rehearse: None,
        target: None,
        idempotent: None,
        continue_on_failure: None,
        env: Named::default(),
        for_each: None,
        item_as: None,
        concurrency: None,
        max_failures: None,
        uses: None,
        with: Named::default(),
        scope,
        kind: StepKind::Wait(Spanned::new(Duration(std::time::Duration::ZERO), span)),
        span,
    }
}

/// Outputs by name only, with no template (the includer reads their names, not their text).
fn names_only(
    outputs: &IndexMap<String, Spanned<String>>,
    span: Span,
) -> IndexMap<String, Spanned<String>> {
    outputs
        .keys()
        .map(|k| (k.clone(), Spanned::new(String::new(), span)))
        .collect()
}

/// Points a stand-in at the `use` step: the includer's diagnostics are in the includer.
fn relocate(shown: &mut Step, step: &Step, root: bool) {
    let span = step.id.span;
    shown.id.span = span;
    shown.span = step.span;
    if !root {
        shown.needs.iter_mut().for_each(|n| n.span = span);
    }
    for flag in [
        &mut shown.irreversible,
        &mut shown.probe,
        &mut shown.idempotent,
        &mut shown.continue_on_failure,
    ]
    .into_iter()
    .flatten()
    {
        flag.span = span;
    }
    shown.outputs.values_mut().for_each(|o| o.span = span);
    if let Some(f) = &mut shown.for_each {
        f.span = span;
    }
}

/// What a group's step looks like to its includers: its id, `needs`, flags and the names of
/// its outputs, no templates.
pub(crate) fn stand_in(step: &Step) -> Step {
    let mut shown = bare_at(
        &step.id.value,
        step.id.span,
        step.needs.clone(),
        step.scope.clone(),
    );
    shown.span = step.span;
    shown.irreversible = step.irreversible.clone();
    shown.probe = step.probe.clone();
    shown.idempotent = step.idempotent.clone();
    shown.continue_on_failure = step.continue_on_failure.clone();
    shown.outputs = names_only(&step.outputs, step.id.span).into();
    shown.for_each = step
        .for_each
        .as_ref()
        .map(|f| Box::new(Spanned::new(ForEach::List(Vec::new()), f.span)));
    shown
}

/// The params of a group (whose own steps are `steps`) that reach a command line: read in
/// a `program` or `args`, or passed on to such a param of a group it includes.
fn in_args(steps: &[Step]) -> IndexMap<String, String> {
    let mut found = IndexMap::new();
    for step in steps {
        let mut texts: Vec<&str> = Vec::new();
        let runs = [
            match &step.kind {
                StepKind::Run(run) => Some(run),
                _ => None,
            },
            step.rollback.as_ref().and_then(|r| match &r.kind {
                RollbackKind::Run(run) => Some(run),
                _ => None,
            }),
        ];
        for run in runs.into_iter().flatten() {
            texts.extend(run.program.iter().map(|p| p.as_str()));
            texts.extend(run.args.iter().map(|a| a.as_str()));
        }
        for text in texts {
            for name in params_read(text) {
                found.entry(name).or_insert_with(|| step.id.value.clone());
            }
        }
    }
    found
}

/// The names of the params a template reads: `params.NAME` and `params['NAME']`.
fn params_read(text: &str) -> Vec<String> {
    names_after(text, "params")
}

/// The names of the secrets a template reads.
fn secrets_read(text: &str) -> Vec<String> {
    names_after(text, "secrets")
}

fn names_after(text: &str, root: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find(root) {
        let before = rest[..at].chars().next_back();
        rest = &rest[at + root.len()..];
        if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.') {
            continue;
        }
        let name: String = if let Some(dotted) = rest.strip_prefix('.') {
            dotted
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect()
        } else if let Some(quoted) = rest.strip_prefix("['").or_else(|| rest.strip_prefix("[\"")) {
            quoted
                .chars()
                .take_while(|c| *c != '\'' && *c != '"')
                .collect()
        } else {
            continue;
        };
        if !name.is_empty() && !names.contains(&name) {
            names.push(name);
        }
    }
    names
}
