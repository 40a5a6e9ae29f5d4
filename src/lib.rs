//! `runbook`: validate, rehearse and execute declarative operational runbooks.
//!
//! The modules below are listed in pipeline order, one group per stage:
//!
//! 1. **Read**: `load` reads a file (through the spanned `yaml` tree) into the typed
//!    `model`; every problem is a `diagnostic`.
//! 2. **Check**: `validate` reports every problem at once and builds the step graph (`dag`);
//!    `discover` finds the files `validate` checks; `schema` is generated from the model.
//! 3. **Bind and render**: `bind` binds the operator's params and reads secrets, `env_file` reads the dotenv file, `template`
//!    and `context` fill in templates, `render` turns a step into the action it will run (`target`: on which machine),
//!    `mask` hides secrets in everything shown or stored.
//! 4. **Decide**: `schedule` says which step starts next (for the run, the plan's waves and the
//!    `--fail-at` prediction alike), `retry` whether to try again, `rollback` what a failure
//!    undoes, `outcome` how a stop ends (its exit code, from `exit`). `plan` is the dry-run;
//!    `estimate` its critical path and expected time to service restored against the RTO.
//! 5. **Run**: a `session` (approvals, secrets, `lock` and `estate_lock`, `journal`) drives `exec`, which
//!    runs each attempt through `steps` (one executor per kind; `program_path` finds their
//!    programs, once per run) and asks people through
//!    `prompt`. The engine only emits events. `check` is the live pre-flight: probes and
//!    `rehearse:` actions only, through the same attempt runner, with no journal. `approve`
//!    casts a vote on a multi-party approval as a `ballot` file the waiting run reads.
//! 6. **Remember**: the `journal` is read back into a `record` for `resume`, `runs` and
//!    `show` (and its `timeline`), and `history` for the medians of `plan --history`; `scenario` runs a runbook's tests (`runbook test`) through the engine with
//!    mocked results, and records a run's journal as a test.
//! 7. **Print**: only `report` and `cli` print; `complete` gives the shell the step ids and
//!    runs it completes, `init` writes a new runbook from a template.

// 1. Read
pub(crate) mod diagnostic;
pub(crate) mod line_index;
pub(crate) mod load;
pub(crate) mod model;
pub(crate) mod yaml;

// 2. Check
pub(crate) mod dag;
pub(crate) mod discover;
pub(crate) mod include;
pub(crate) mod schema;
pub(crate) mod validate;

// 3. Bind and render
pub(crate) mod bind;
pub(crate) mod context;
pub(crate) mod env_file;
pub(crate) mod items;
pub(crate) mod mask;
pub(crate) mod render;
pub(crate) mod scope;
pub(crate) mod target;
pub(crate) mod template;
pub(crate) mod template_limit;

// 4. Decide
pub(crate) mod estimate;
pub(crate) mod exit;
pub(crate) mod outcome;
pub(crate) mod plan;
pub(crate) mod retry;
pub(crate) mod rollback;
pub(crate) mod schedule;

// 5. Run
pub(crate) mod approve;
pub(crate) mod ballot;
pub(crate) mod check;
pub(crate) mod estate_lock;
pub(crate) mod exec;
pub(crate) mod lock;
pub(crate) mod lock_file;
pub(crate) mod program_path;
pub(crate) mod prompt;
pub(crate) mod session;
pub(crate) mod steps;

// 6. Remember
pub(crate) mod history;
pub(crate) mod journal;
pub(crate) mod record;
pub(crate) mod recorded;
pub(crate) mod resume;
pub(crate) mod scenario;
pub(crate) mod timeline;

// 7. Print
pub mod cli;
pub(crate) mod complete;
pub(crate) mod init;
pub(crate) mod report;

// The fuzz target's entry (`fuzz/`). Not an API.
#[doc(hidden)]
pub mod fuzz;
#[doc(hidden)]
pub use fuzz::entry as fuzz_entry;
