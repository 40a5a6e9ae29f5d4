//! `runbook`: validate, rehearse and execute declarative operational runbooks.
//!
//! The modules in pipeline order. A runbook file is read by [`load`] (through [`yaml`]) into
//! the typed [`model`]; [`validate`] reports every problem at once as [`diagnostic`]s and
//! builds the step graph ([`dag`]). [`params`] binds the operator's values, [`template`] and
//! [`context`] fill in templates, and [`render`] turns a step into the action it will run.
//! [`plan`] is the dry-run. A real run is a [`session`] (approvals, secrets, [`lock`],
//! [`journal`]) that drives [`exec`]: [`schedule`] decides which step starts next, [`steps`]
//! executes one attempt of each kind, [`retry`] decides whether to try again, [`rollback`]
//! plans the undo, and [`outcome`] turns why a run stopped into its exit code. Every event is
//! journaled; [`record`] reads a journal back for [`resume`], `runs` and `show`. Printing
//! happens only in [`report`] and [`cli`].

pub mod cli;
pub(crate) mod context;
pub(crate) mod dag;
pub(crate) mod diagnostic;
pub(crate) mod discover;
pub(crate) mod exec;
pub(crate) mod exit;
pub(crate) mod graph;
pub(crate) mod journal;
pub(crate) mod line_index;
pub(crate) mod load;
pub(crate) mod lock;
pub(crate) mod mask;
pub(crate) mod model;
pub(crate) mod outcome;
pub(crate) mod params;
pub(crate) mod plan;
pub(crate) mod prompt;
pub(crate) mod record;
pub(crate) mod render;
pub(crate) mod report;
pub(crate) mod resume;
pub(crate) mod retry;
pub(crate) mod rollback;
pub(crate) mod schedule;
pub(crate) mod schema;
pub(crate) mod session;
pub(crate) mod steps;
pub(crate) mod template;
pub(crate) mod validate;
pub(crate) mod yaml;
