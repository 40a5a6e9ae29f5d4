//! Integration tests: each drives the real `runbook` binary and checks what a user sees.

mod bad_input;
mod bounded;
mod diagnostics;
mod formats;
mod graph;
mod journal;
mod long_lines;
mod plan;
mod rehearsal;
mod run;
mod schema;
mod shipped;
mod sql;
mod support;
mod tds;
mod tds_selftest;
