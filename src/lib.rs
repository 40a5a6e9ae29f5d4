//! `runbook`: validate, rehearse and execute declarative operational runbooks.
//!
//! The pipeline: [`load`] reads a file into the typed [`model`], [`validate`] reports every
//! problem at once as [`diagnostic::Problem`]s, and [`report`] renders them.

pub mod cli;
pub mod context;
pub mod dag;
pub mod diagnostic;
pub mod exec;
pub mod graph;
pub mod journal;
pub mod line_index;
pub mod load;
pub mod lock;
pub mod mask;
pub mod model;
pub mod params;
pub mod plan;
pub mod render;
pub mod report;
pub mod resume;
pub mod retry;
pub mod rollback;
pub mod schema;
pub mod steps;
pub mod template;
pub mod validate;
pub mod yaml;
