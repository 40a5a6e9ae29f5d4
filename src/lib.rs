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
pub mod context;
pub mod dag;
pub mod diagnostic;
pub mod discover;
pub mod exec;
pub mod exit;
pub mod graph;
pub mod journal;
pub mod line_index;
pub mod load;
pub mod lock;
pub mod mask;
pub mod model;
pub mod outcome;
pub mod params;
pub mod plan;
pub mod prompt;
pub mod record;
pub mod render;
pub mod report;
pub mod resume;
pub mod retry;
pub mod rollback;
pub mod schedule;
pub mod schema;
pub mod session;
pub mod steps;
pub mod template;
pub mod validate;
pub mod yaml;
