//! Every problem `runbook` can find in a file, each with a stable code, a label on the exact
//! span and help. The wording of a message lives only here.

use miette::{Diagnostic, LabeledSpan, SourceSpan};
use thiserror::Error;

/// The help for a YAML syntax error that has no more specific one.
pub(crate) const SYNTAX_HELP: &str = "fix the YAML syntax at this point";
/// The help for a tab in indentation.
pub(crate) const TAB_HELP: &str = "indent with spaces: YAML does not allow tabs in indentation";
/// The help for `yes`/`no`/`on`/`off` where a boolean is expected.
pub(crate) const YAML12_BOOL_HELP: &str =
    "YAML 1.2: write true/false (`yes`, `no`, `on` and `off` are strings)";
/// The help for backslashes in double-quoted YAML (Windows paths).
pub(crate) const QUOTE_PATHS_HELP: &str = "in double quotes a backslash starts an escape (`\\n` is a newline); write Windows paths in single quotes: 'C:\\new\\temp'";

/// A problem found while loading or validating a runbook.
#[derive(Clone, Debug, Error, Diagnostic)]
pub enum Problem {
    // ---- reading the file ----
    #[error("cannot read `{path}`: {reason}")]
    #[diagnostic(code(runbook::io), help("check that the path exists and is readable"))]
    Io { path: String, reason: String },

    #[error("the file is {size} bytes; runbooks are limited to {limit} bytes")]
    #[diagnostic(
        code(runbook::too_large),
        help("a runbook this large is almost certainly not a runbook; split it or check the path")
    )]
    TooLarge { size: u64, limit: u64 },

    #[error("the file is not valid UTF-8")]
    #[diagnostic(code(runbook::invalid_utf8), help("save the file as UTF-8"))]
    InvalidUtf8 {
        #[label("invalid byte here")]
        span: SourceSpan,
    },

    #[error("YAML syntax error: {message}")]
    #[diagnostic(code(runbook::yaml_syntax))]
    Syntax {
        message: String,
        #[label("here")]
        span: SourceSpan,
        #[help]
        help: &'static str,
    },

    #[error("the file exceeds a resource limit: {message}")]
    #[diagnostic(
        code(runbook::resource_limit),
        help(
            "runbooks are refused when they nest too deeply, expand too many aliases or are too large; simplify the file"
        )
    )]
    ResourceLimit {
        message: String,
        #[label("limit reached here")]
        span: SourceSpan,
    },

    #[error("the file holds more than one YAML document")]
    #[diagnostic(
        code(runbook::multiple_documents),
        help("put each runbook in a file of its own")
    )]
    MultipleDocuments {
        #[label("a second document starts here")]
        span: SourceSpan,
    },

    #[error("the file is empty")]
    #[diagnostic(
        code(runbook::empty),
        help("a runbook starts with `runbook: 1`, a `name` and a list of `steps`")
    )]
    Empty {
        #[label("nothing here")]
        span: SourceSpan,
    },

    #[error("a runbook must be a mapping, found {found}")]
    #[diagnostic(
        code(runbook::not_a_mapping),
        help("a runbook starts with `runbook: 1`, a `name` and a list of `steps`")
    )]
    NotAMapping {
        found: &'static str,
        #[label("expected a mapping")]
        span: SourceSpan,
    },

    // ---- the shape of the document ----
    #[error("unknown key `{key}` in {context}")]
    #[diagnostic(code(runbook::unknown_key))]
    UnknownKey {
        key: String,
        context: String,
        #[label("unknown key")]
        span: SourceSpan,
        #[help]
        help: String,
    },

    #[error("`{field}` must be {expected}, found {found}")]
    #[diagnostic(code(runbook::wrong_type))]
    WrongType {
        field: String,
        expected: &'static str,
        found: &'static str,
        #[label("expected {expected}")]
        span: SourceSpan,
        #[help]
        help: Option<String>,
    },

    #[error("step `{id}` has `{key}` but no `for_each`")]
    #[diagnostic(
        code(runbook::loop_key_without_for_each),
        help(
            "`as`, `concurrency` and `max_failures` apply to the items of a `for_each`; add one or remove the key"
        )
    )]
    LoopKeyWithoutForEach {
        id: String,
        key: &'static str,
        #[label("only for a `for_each` step")]
        span: SourceSpan,
    },

    #[error("`{name}` cannot name the item of a `for_each`")]
    #[diagnostic(
        code(runbook::bad_item_name),
        help(
            "use a letter or `_`, then letters, digits or `_`, and none of params, secrets, env, steps, run, result"
        )
    )]
    BadItemName {
        name: String,
        #[label("not a usable variable name")]
        span: SourceSpan,
    },

    #[error("`{field}` must be at least {min}")]
    #[diagnostic(
        code(runbook::out_of_range),
        help(
            "`concurrency` counts items at once (1 or more); `max_failures` counts items allowed to fail (0 or more)"
        )
    )]
    OutOfRange {
        field: String,
        min: i64,
        #[label("less than {min}")]
        span: SourceSpan,
    },

    #[error("{context} has no `{field}`")]
    #[diagnostic(code(runbook::missing_field))]
    MissingField {
        field: &'static str,
        context: String,
        #[label("`{field}` missing here")]
        span: SourceSpan,
        #[help]
        help: String,
    },

    #[error("unsupported runbook format version {found}")]
    #[diagnostic(
        code(runbook::unsupported_version),
        help("this version of runbook reads format version 1: write `runbook: 1`")
    )]
    UnsupportedVersion {
        found: String,
        #[label("expected 1")]
        span: SourceSpan,
    },

    #[error("`{found}` is not a valid {field}")]
    #[diagnostic(code(runbook::invalid_value))]
    InvalidChoice {
        field: &'static str,
        found: String,
        #[label("not one of the allowed values")]
        span: SourceSpan,
        #[help]
        help: String,
    },

    #[error("invalid duration `{text}`: {reason}")]
    #[diagnostic(
        code(runbook::invalid_duration),
        help("write a number and a unit: `500ms`, `30s`, `5m`, `1h30m`")
    )]
    InvalidDuration {
        text: String,
        reason: String,
        #[label("invalid duration")]
        span: SourceSpan,
    },

    // ---- steps and the graph ----
    #[error("duplicate step id `{id}`")]
    #[diagnostic(code(runbook::duplicate_step), help("give each step a unique id"))]
    DuplicateStep {
        id: String,
        #[label("used again here")]
        span: SourceSpan,
        #[label("first used here")]
        first: SourceSpan,
    },

    #[error("invalid {what} `{name}`")]
    #[diagnostic(code(runbook::invalid_id))]
    InvalidId {
        what: &'static str,
        name: String,
        #[label("invalid {what}")]
        span: SourceSpan,
        #[help]
        help: String,
    },

    #[error("step `{step}` needs unknown step `{id}`")]
    #[diagnostic(code(runbook::unknown_step))]
    UnknownStep {
        step: String,
        id: String,
        #[label("no step has this id")]
        span: SourceSpan,
        #[help]
        help: String,
    },

    #[error("`service_restored_at` names unknown step `{id}`")]
    #[diagnostic(code(runbook::unknown_service_restored_at))]
    UnknownServiceRestoredAt {
        id: String,
        #[label("no step of the run has this id")]
        span: SourceSpan,
        #[help]
        help: String,
    },

    #[error("step `{id}` has no `expect`: the RTO estimate counts it as 0")]
    #[diagnostic(
        code(runbook::no_estimate),
        severity(Warning),
        help(
            "the runbook declares `rto`: add `expect: 5m` (how long the step normally takes) so that `plan` can tell whether the RTO holds"
        )
    )]
    NoEstimate {
        id: String,
        #[label("no `expect`")]
        span: SourceSpan,
    },

    #[error("finally step `{step}` needs `{id}`, a step of the run")]
    #[diagnostic(
        code(runbook::finally_needs_step),
        help(
            "finally steps run after the whole run ended, whatever it did: `needs` may name only other finally steps; read `steps['{id}'].status` to act on how `{id}` ended"
        )
    )]
    FinallyNeedsStep {
        step: String,
        id: String,
        #[label("a step of the run, not a finally step")]
        span: SourceSpan,
    },

    #[error("finally step `{step}` has a rollback")]
    #[diagnostic(
        code(runbook::finally_rollback),
        help(
            "finally steps are never rolled back (they run after the rollback); remove `rollback:`"
        )
    )]
    FinallyRollback {
        step: String,
        #[label("never runs")]
        span: SourceSpan,
    },

    #[error("`run.outcome` is known only in finally steps")]
    #[diagnostic(
        code(runbook::outcome_not_available),
        help("move this step under `finally:`; the run's steps run before its outcome is known")
    )]
    OutcomeNotAvailable {
        #[label("`run.outcome` is not defined here")]
        span: SourceSpan,
    },

    #[error("step `{id}` needs itself")]
    #[diagnostic(
        code(runbook::self_dependency),
        help("remove `{id}` from its own `needs`")
    )]
    SelfDependency {
        id: String,
        #[label("a step cannot need itself")]
        span: SourceSpan,
    },

    #[error("dependency cycle: {path}")]
    #[diagnostic(
        code(runbook::cycle),
        help("steps form a DAG: remove one of these `needs` to break the cycle")
    )]
    Cycle {
        path: String,
        #[label(collection)]
        edges: Vec<LabeledSpan>,
    },

    #[error("step `{id}` has no kind")]
    #[diagnostic(
        code(runbook::no_step_kind),
        help("give the step exactly one of `run`, `sql`, `wait`, `assert`, `approval`")
    )]
    NoStepKind {
        id: String,
        #[label("this step does nothing")]
        span: SourceSpan,
    },

    #[error("step `{id}` has more than one kind: {kinds}")]
    #[diagnostic(
        code(runbook::multiple_step_kinds),
        help("split it into one step per kind, joined with `needs`")
    )]
    MultipleStepKinds {
        id: String,
        kinds: String,
        #[label("second kind")]
        span: SourceSpan,
    },

    #[error("a rollback must have exactly one of `run`, `sql`, `approval`; it has {count}")]
    #[diagnostic(
        code(runbook::invalid_rollback),
        help(
            "write the action that undoes the step, e.g. `rollback: {{ run: {{ shell: sh, script: … }} }}`"
        )
    )]
    InvalidRollback {
        count: usize,
        #[label("here")]
        span: SourceSpan,
    },

    #[error("`min: {min}` asks for more approvals than the {count} approvers listed")]
    #[diagnostic(
        code(runbook::min_approvers),
        help("lower `min`, or add approvers (at most {count} of them can approve)")
    )]
    TooFewApprovers {
        min: i64,
        count: usize,
        #[label("more than the approvers")]
        span: SourceSpan,
    },

    #[error("`{field}` applies only to a multi-party approval")]
    #[diagnostic(
        code(runbook::no_approvers),
        help(
            "add `approvers: [NAME, ...]` or `approvers: {{ group: NAME }}`, or remove `{field}`"
        )
    )]
    NoApprovers {
        field: &'static str,
        #[label("without `approvers`")]
        span: SourceSpan,
    },

    #[error("a rollback's approval cannot be a multi-party approval")]
    #[diagnostic(
        code(runbook::rollback_approvers),
        help(
            "a rollback runs after a failure and must not wait on votes; ask the approvers in a step before it instead"
        )
    )]
    RollbackApprovers {
        #[label("here")]
        span: SourceSpan,
    },

    #[error("a rehearse action must have exactly one of `run`, `sql`; it has {count}")]
    #[diagnostic(
        code(runbook::invalid_rehearse),
        help(
            "write the read-only action `runbook check` runs instead, e.g. `rehearse: {{ run: {{ shell: powershell, script: … -WhatIf }} }}`"
        )
    )]
    InvalidRehearse {
        count: usize,
        #[label("here")]
        span: SourceSpan,
    },

    #[error("unknown connection `{name}`")]
    #[diagnostic(code(runbook::unknown_connection))]
    UnknownConnection {
        name: String,
        #[label("not declared under `connections`")]
        span: SourceSpan,
        #[help]
        help: String,
    },

    #[error("invalid retry policy: {reason}")]
    #[diagnostic(code(runbook::invalid_retry))]
    InvalidRetry {
        reason: String,
        #[label("here")]
        span: SourceSpan,
        #[help]
        help: String,
    },

    #[error("invalid `run`: {reason}")]
    #[diagnostic(
        code(runbook::invalid_run),
        help(
            "write either `program` with `args` (no shell), or `shell` (sh, bash, pwsh, powershell, cmd) with `script`"
        )
    )]
    InvalidRun {
        reason: &'static str,
        #[label("here")]
        span: SourceSpan,
    },

    #[error("secret `{name}` must have exactly one of `env` and `file`")]
    #[diagnostic(
        code(runbook::invalid_secret),
        help("write `{{ env: VARIABLE }}` or `{{ file: /path/to/secret }}`")
    )]
    InvalidSecret {
        name: String,
        #[label("here")]
        span: SourceSpan,
    },

    // ---- templates and expressions ----
    #[error("template syntax error: {message}")]
    #[diagnostic(code(runbook::template_syntax))]
    TemplateSyntax {
        message: String,
        #[label("here")]
        span: SourceSpan,
        #[help]
        help: String,
    },

    #[error("expression syntax error: {message}")]
    #[diagnostic(code(runbook::expression_syntax))]
    ExpressionSyntax {
        message: String,
        #[label("here")]
        span: SourceSpan,
        #[help]
        help: String,
    },

    #[error("unknown variable `{name}`")]
    #[diagnostic(code(runbook::unknown_variable))]
    UnknownVariable {
        name: String,
        #[label("not defined")]
        span: SourceSpan,
        #[help]
        help: String,
    },

    #[error("`{name}` has no attribute `{attribute}`")]
    #[diagnostic(code(runbook::unknown_attribute))]
    UnknownAttribute {
        name: String,
        attribute: String,
        #[label("unknown attribute")]
        span: SourceSpan,
        #[help]
        help: String,
    },

    #[error("template reads unknown step `{id}`")]
    #[diagnostic(code(runbook::unknown_step_reference))]
    UnknownStepReference {
        id: String,
        #[label("no step has this id")]
        span: SourceSpan,
        #[help]
        help: String,
    },

    #[error("step `{step}` reads `steps.{id}`, but `{id}` does not run before it")]
    #[diagnostic(
        code(runbook::not_an_ancestor),
        help("add `{id}` to the `needs` of `{step}` (directly or through another step)")
    )]
    NotAnAncestor {
        step: String,
        id: String,
        #[label("`{id}` is not an ancestor of `{step}`")]
        span: SourceSpan,
    },

    #[error("`steps.{written}` is read as a subtraction")]
    #[diagnostic(
        code(runbook::hyphenated_step_reference),
        help("step ids with hyphens are read with a subscript: `steps['{id}']`")
    )]
    HyphenatedStepReference {
        written: String,
        id: String,
        #[label("this is `steps.{first} - …`")]
        span: SourceSpan,
        first: String,
    },

    #[error("unknown {kind} `{name}`")]
    #[diagnostic(code(runbook::unknown_filter))]
    UnknownFilter {
        kind: &'static str,
        name: String,
        #[label("no such {kind}")]
        span: SourceSpan,
        #[help]
        help: String,
    },

    #[error("`result` is only available in `until` and `outputs`")]
    #[diagnostic(
        code(runbook::result_not_available),
        help("read an earlier step's result with `steps.<id>` instead")
    )]
    ResultNotAvailable {
        #[label("`result` is not defined here")]
        span: SourceSpan,
    },

    // ---- bounded work ----
    #[error("{message}")]
    #[diagnostic(
        code(runbook::resource_limit),
        help(
            "split the condition into steps whose `outputs` the next step reads, or compute the value outside the runbook and pass it as a param"
        )
    )]
    TemplateTooComplex {
        message: String,
        #[label("refused before parsing")]
        span: SourceSpan,
    },

    #[error(
        "these loops run {iterations} times, more than one template may ({fuel} steps of the template engine)"
    )]
    #[diagnostic(
        code(runbook::resource_limit),
        help("loop over a smaller range; a template that runs out of steps fails at run time too")
    )]
    TemplateLoopTooLong {
        iterations: u128,
        fuel: u64,
        #[label("runs too many times")]
        span: SourceSpan,
    },

    // ---- params ----
    #[error("{what} of param `{param}` is invalid: {reason}")]
    #[diagnostic(code(runbook::invalid_param_value))]
    InvalidParamValue {
        param: String,
        what: &'static str,
        reason: String,
        #[label("does not fit the param")]
        span: SourceSpan,
        #[help]
        help: String,
    },

    #[error("invalid pattern: {reason}")]
    #[diagnostic(
        code(runbook::invalid_pattern),
        help(
            "`pattern` is a regular expression (Rust regex syntax) that the whole value must match"
        )
    )]
    InvalidPattern {
        reason: String,
        #[label("invalid regular expression")]
        span: SourceSpan,
    },

    // ---- warnings ----
    #[error("param `{name}` is never used")]
    #[diagnostic(
        code(runbook::unused_param),
        severity(Warning),
        help("remove it, or use it as `{{{{ params.{name} }}}}`")
    )]
    UnusedParam {
        name: String,
        #[label("declared here")]
        span: SourceSpan,
    },

    #[error("secret `{name}` is never used")]
    #[diagnostic(
        code(runbook::unused_secret),
        severity(Warning),
        help("remove it, or use it as `{{{{ secrets.{name} }}}}`")
    )]
    UnusedSecret {
        name: String,
        #[label("declared here")]
        span: SourceSpan,
    },

    #[error("step `{id}` changes something (`{kind}`) but has neither `probe` nor `rehearse`")]
    #[diagnostic(
        code(runbook::not_rehearsable),
        severity(Warning),
        help(
            "`runbook check` can only report it as not rehearsed: give it a read-only `rehearse:` action (e.g. the cmdlet with -WhatIf, RESTORE VERIFYONLY), or `probe: true` if it only reads"
        )
    )]
    NotRehearsable {
        id: String,
        kind: &'static str,
        #[label("not rehearsed by `runbook check`")]
        span: SourceSpan,
    },

    #[error("step `{id}` polls with `until` but has a single attempt")]
    #[diagnostic(
        code(runbook::until_single_attempt),
        severity(Warning),
        help("give it `retry: {{ attempts: N, delay: … }}` so the condition is polled")
    )]
    UntilSingleAttempt {
        id: String,
        #[label("checked only once")]
        span: SourceSpan,
    },

    #[error("invalid environment variable name `{name}`")]
    #[diagnostic(
        code(runbook::invalid_env_name),
        help("a name is not empty and has no `=` (and no NUL): `env: {{ LANG: C }}`")
    )]
    InvalidEnvName {
        name: String,
        #[label("not a variable name")]
        span: SourceSpan,
    },

    #[error("a NUL character in a string")]
    #[diagnostic(
        code(runbook::nul_byte),
        help(
            "remove it: no command, query or file name can carry a NUL (`\\0` in double quotes is one)"
        )
    )]
    NulByte {
        #[label("contains a NUL")]
        span: SourceSpan,
    },

    #[error(
        "a backslash in double quotes starts an escape: `{escape}` here is {meaning}, not part of a path"
    )]
    #[diagnostic(code(runbook::escaped_path), severity(Warning))]
    EscapedPath {
        escape: String,
        meaning: &'static str,
        #[label("an escape, not a backslash")]
        span: SourceSpan,
        #[help]
        help: &'static str,
    },

    #[error("step `{id}` has a rollback that runs after the point of no return `{irreversible}`")]
    #[diagnostic(
        code(runbook::rollback_past_point_of_no_return),
        severity(Warning),
        help(
            "`{id}` runs after irreversible step `{irreversible}` completed, so a later failure undoes it while `{irreversible}` stays done (a pool pointed back at a lost data centre). Remove the rollback and fix forward, or mark it `past_point_of_no_return: true` if undoing only this step is safe"
        )
    )]
    RollbackPastPointOfNoReturn {
        id: String,
        irreversible: String,
        #[label("runs after `{irreversible}`")]
        span: SourceSpan,
    },

    #[error("irreversible step `{id}` has a rollback that will never run")]
    #[diagnostic(
        code(runbook::irreversible_rollback),
        severity(Warning),
        help(
            "a completed irreversible step is never rolled back: remove `rollback` or `irreversible`"
        )
    )]
    IrreversibleRollback {
        id: String,
        #[label("never runs")]
        span: SourceSpan,
    },

    #[error("secret `{name}` is passed as a command-line argument")]
    #[diagnostic(
        code(runbook::secret_in_args),
        severity(Warning),
        help(
            "arguments are visible to every user in the process list; pass it through `env` instead"
        )
    )]
    SecretInArgs {
        name: String,
        #[label("visible in the process list")]
        span: SourceSpan,
    },

    #[error("`{read}` may not exist: step `{step}` is skipped when `{when}` is false")]
    #[diagnostic(
        code(runbook::reads_skipped_step),
        severity(Warning),
        help(
            "a skipped step has no output: add `| default(...)`, or give this step a `when` of its own that checks `steps['{step}'].status`"
        )
    )]
    ReadsSkippedStep {
        read: String,
        step: String,
        when: String,
        #[label("`{step}` may be skipped")]
        span: SourceSpan,
    },

    #[error("a template is interpolated into SQL without `sql_ident` or `sql_literal`")]
    #[diagnostic(
        code(runbook::unfiltered_sql_template),
        severity(Warning),
        help(
            "pass values as `args` (`@P1`), or quote with `| sql_literal` (values) or `| sql_ident` (names)"
        )
    )]
    UnfilteredSqlTemplate {
        #[label("not quoted for SQL")]
        span: SourceSpan,
    },

    #[error("a template is interpolated into a `{shell}` script without `{filter}`")]
    #[diagnostic(
        code(runbook::unfiltered_shell_template),
        severity(Warning),
        help(
            "a value pasted into a script runs as code if it holds `;`, `$(…)` or a quote: write `{{{{ … | {filter} }}}}`, or pass it through `env` and use the variable"
        )
    )]
    UnfilteredShellTemplate {
        shell: String,
        filter: &'static str,
        #[label("not quoted for the shell")]
        span: SourceSpan,
    },

    #[error("`sql_ident` is used inside a T-SQL string literal")]
    #[diagnostic(
        code(runbook::sql_ident_in_literal),
        severity(Warning),
        help(
            "brackets do not quote inside '…': a `'` in the value ends the literal; use `| sql_literal` (without the surrounding quotes), or pass it as an `@P` argument"
        )
    )]
    SqlIdentInLiteral {
        #[label("inside a string literal")]
        span: SourceSpan,
    },

    // ---- test files (`*.test.yaml`) ----
    #[error("{message}")]
    #[diagnostic(code(runbook::invalid_test))]
    InvalidTest {
        message: String,
        #[label("{label}")]
        span: SourceSpan,
        label: String,
        #[help]
        help: String,
    },
    // ---- step groups ----
    #[error("step `{id}` uses a group and also has `{key}`")]
    #[diagnostic(
        code(runbook::use_with_key),
        help(
            "a `use:` step takes only `id`, `title`, `needs`, `use` and `with`: the group's own steps carry their actions, rollbacks, retries and loops (repeat over a list inside the group with `for_each` on its steps)"
        )
    )]
    UseWithKey {
        id: String,
        key: String,
        #[label("not allowed next to `use`")]
        span: SourceSpan,
    },

    #[error("step `{id}` has `with` but no `use`")]
    #[diagnostic(
        code(runbook::with_without_use),
        help("`with:` passes params to the group named by `use:`; add `use:` or remove `with:`")
    )]
    WithWithoutUse {
        id: String,
        #[label("only for a `use` step")]
        span: SourceSpan,
    },

    #[error("cannot include `{path}`: {reason}")]
    #[diagnostic(
        code(runbook::group_unreadable),
        help(
            "`use:` is a path relative to the file that holds it, e.g. `./groups/prechecks.yaml`"
        )
    )]
    GroupUnreadable {
        path: String,
        reason: String,
        #[label("included here")]
        span: SourceSpan,
    },

    #[error("`{path}` is outside the runbook's directory `{root}`")]
    #[diagnostic(
        code(runbook::group_outside),
        help(
            "groups live under the directory of the runbook that is run (a copied runbook folder must carry its groups); move the group there"
        )
    )]
    GroupOutside {
        path: String,
        root: String,
        #[label("leaves the runbook's directory")]
        span: SourceSpan,
    },

    #[error("`{path}` is not a step group")]
    #[diagnostic(
        code(runbook::not_a_group),
        help("a group file starts with `group: 1` (a runbook, `runbook: 1`, cannot be included)")
    )]
    NotAGroup {
        path: String,
        #[label("included here")]
        span: SourceSpan,
    },

    #[error("the groups include each other: {chain}")]
    #[diagnostic(
        code(runbook::group_cycle),
        help("a group cannot include itself, directly or through other groups; break the chain")
    )]
    GroupCycle {
        chain: String,
        #[label("closes the cycle")]
        span: SourceSpan,
    },

    #[error("group `{group}` has no param `{name}`")]
    #[diagnostic(code(runbook::unknown_group_param))]
    UnknownGroupParam {
        group: String,
        name: String,
        #[label("not a param of the group")]
        span: SourceSpan,
        #[help]
        help: String,
    },

    #[error("group `{group}` needs param `{name}`, which `with` does not pass")]
    #[diagnostic(
        code(runbook::missing_group_param),
        help("pass it: `with: {{ {name}: ... }}`, or give the param a `default` in the group")
    )]
    MissingGroupParam {
        group: String,
        name: String,
        #[label("`{name}` missing")]
        span: SourceSpan,
    },

    #[error("`{path}` is a step group, not a runbook")]
    #[diagnostic(
        code(runbook::group_not_runnable),
        help("a group runs only inside a runbook that includes it with `use:`")
    )]
    GroupNotRunnable {
        path: String,
        #[label("`group: 1`")]
        span: SourceSpan,
    },

    #[error("secret `{name}` is passed as `{param}`, which reaches the command line of `{step}`")]
    #[diagnostic(
        code(runbook::secret_in_args),
        severity(Warning),
        help(
            "arguments are visible to every user in the process list; in the group, pass the param through `env` instead"
        )
    )]
    SecretIntoGroupArgs {
        name: String,
        param: String,
        step: String,
        #[label("visible in the process list")]
        span: SourceSpan,
    },

    #[error("finally step `{id}` uses a group")]
    #[diagnostic(
        code(runbook::finally_use),
        help("`use:` is for the run's steps; write the finally steps out")
    )]
    FinallyUse {
        id: String,
        #[label("not in `finally`")]
        span: SourceSpan,
    },

    #[error("unknown target `{name}`")]
    #[diagnostic(code(runbook::unknown_target))]
    UnknownTarget {
        name: String,
        #[label("not declared under `targets`")]
        span: SourceSpan,
        #[help]
        help: String,
    },

    #[error("`target` on a `{kind}` {what}: only `run` actions run on another machine")]
    #[diagnostic(
        code(runbook::target_not_run),
        help("remove `target`, or make the action a `run` (a program or a script on the target)")
    )]
    TargetNotRun {
        kind: &'static str,
        what: &'static str,
        #[label("here")]
        span: SourceSpan,
    },

    #[error("the `{shell}` shell cannot run on target `{target}`, whose shell is `{target_shell}`")]
    #[diagnostic(
        code(runbook::target_shell),
        help(
            "on a target, `shell` may be left out (the target's shell runs the script); `sh` and `bash` run on Unix targets, `powershell` and `pwsh` on Windows targets"
        )
    )]
    TargetShell {
        shell: String,
        target: String,
        target_shell: String,
        #[label("not this target's kind of shell")]
        span: SourceSpan,
    },

    #[error("invalid ssh destination `{found}`: {reason}")]
    #[diagnostic(
        code(runbook::invalid_ssh_destination),
        help("write `[user@]host[:port]` or a host of your ssh config")
    )]
    InvalidSshDestination {
        found: String,
        reason: String,
        #[label("here")]
        span: SourceSpan,
    },
}

impl Problem {
    pub fn is_error(&self) -> bool {
        !matches!(self.severity(), Some(miette::Severity::Warning))
    }

    /// The stable code, e.g. `runbook::unknown_step`.
    pub fn code_str(&self) -> String {
        self.code().map(|c| c.to_string()).unwrap_or_default()
    }

    /// The span the problem is about: its first label.
    pub fn primary_span(&self) -> Option<SourceSpan> {
        self.labels()
            .and_then(|mut labels| labels.next())
            .map(|label| *label.inner())
    }
}

/// Best match for a mistyped name among candidates, if one is close enough.
///
/// The work per name is bounded, whatever the number of candidates: a cheap bound on the score
/// skips the candidates that cannot beat the best so far, and at most [`MOST_COMPARED`] are
/// scored. A runbook with thousands of unknown names among thousands of steps is still reported
/// in time linear in its problems.
pub fn did_you_mean<'a>(
    name: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    // Jaro-Winkler costs the product of the two lengths: names longer than any real id are
    // not compared, nor are names too different in length to be a typo of each other.
    const LONGEST_COMPARED: usize = 128;
    if name.len() > LONGEST_COMPARED {
        return None;
    }
    let letters = Letters::of(name);
    let mut compared = 0;
    let mut best: Option<(f64, &str)> = None;
    for candidate in candidates {
        if candidate.len() > LONGEST_COMPARED || candidate.len().abs_diff(name.len()) > 32 {
            continue;
        }
        // A candidate can only replace the best with a strictly higher score.
        let needed = best.map_or(0.8, |(s, _)| s.max(0.8));
        if letters.best_score(name, candidate) < needed {
            continue;
        }
        if compared == MOST_COMPARED {
            break;
        }
        compared += 1;
        let score = strsim::jaro_winkler(name, candidate);
        if score >= 0.8 && best.is_none_or(|(s, _)| score > s) {
            best = Some((score, candidate));
        }
    }
    best.map(|(_, c)| c)
}

/// How many candidates one mistyped name is scored against at most (those that cannot be
/// close enough are skipped without scoring and do not count).
pub const MOST_COMPARED: usize = 256;

/// How often each character occurs in a name (characters past ASCII share one bucket), for a
/// bound on the Jaro-Winkler score that costs one pass over the candidate.
struct Letters {
    counts: [u8; 128],
    chars: usize,
}

impl Letters {
    fn of(name: &str) -> Self {
        let mut counts = [0u8; 128];
        let mut chars = 0;
        for c in name.chars() {
            let bucket = &mut counts[Self::bucket(c)];
            *bucket = bucket.saturating_add(1);
            chars += 1;
        }
        Self { counts, chars }
    }

    fn bucket(c: char) -> usize {
        (c as usize).min(127)
    }

    /// An upper bound on `strsim::jaro_winkler(name, candidate)`. Jaro matches pair equal
    /// characters, so there are at most as many as the characters the two share; Jaro is then
    /// at most `(m / |a| + m / |b| + 1) / 3`, and Winkler's prefix bonus only raises it towards 1.
    fn best_score(&self, name: &str, candidate: &str) -> f64 {
        if self.chars == 0 || candidate.is_empty() {
            return 1.0;
        }
        let mut left = self.counts;
        let (mut shared, mut chars) = (0usize, 0usize);
        for c in candidate.chars() {
            let bucket = &mut left[Self::bucket(c)];
            if *bucket > 0 {
                *bucket -= 1;
                shared += 1;
            }
            chars += 1;
        }
        if shared == 0 {
            return 0.0;
        }
        let m = shared as f64;
        let jaro = (m / self.chars as f64 + m / chars as f64 + 1.0) / 3.0;
        let prefix = name
            .chars()
            .take(4)
            .zip(candidate.chars())
            .take_while(|(a, b)| a == b)
            .count();
        // Rounding slack, so that the bound is never below the score computed for it.
        jaro + 0.1 * prefix as f64 * (1.0 - jaro) + 1e-9
    }
}

/// "did you mean `x`?" or a fallback listing what is allowed.
pub fn suggestion<'a>(
    name: &str,
    candidates: impl IntoIterator<Item = &'a str> + Clone,
    fallback: impl FnOnce() -> String,
) -> String {
    match did_you_mean(name, candidates) {
        Some(best) => format!("did you mean `{best}`?"),
        None => fallback(),
    }
}

/// A list of names for help texts: "`a`, `b`, `c`".
pub fn list<'a>(names: impl IntoIterator<Item = &'a str>) -> String {
    let names: Vec<String> = names.into_iter().map(|n| format!("`{n}`")).collect();
    if names.is_empty() {
        "none".to_owned()
    } else {
        names.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bound_is_never_below_the_score() {
        let names = [
            "",
            "a",
            "1",
            "ab",
            "ba",
            "abc",
            "copy-logs",
            "cpy-logs",
            "copy_logs",
            "logs-copy",
            "ëtape",
            "etape",
            "étape-2",
            "restore",
            "restroe",
            "stop-app",
            "start-app",
            "aaaa",
            "aaab",
            "baaa",
            "x".repeat(128).leak(),
            "xy".repeat(40).leak(),
            "日本語",
            "日本",
        ];
        for a in names {
            let letters = Letters::of(a);
            for b in names {
                let score = strsim::jaro_winkler(a, b);
                let bound = letters.best_score(a, b);
                assert!(bound >= score, "{a:?} {b:?}: bound {bound} < score {score}");
            }
        }
    }

    #[test]
    fn the_best_candidate_is_found_past_the_scoring_cap() {
        let ids: Vec<String> = (0..5_000).map(|i| format!("restore-replica-{i}")).collect();
        let best = did_you_mean("restore-replca-4321", ids.iter().map(String::as_str));
        assert_eq!(best, Some("restore-replica-4321"));
    }
}
