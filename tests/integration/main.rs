//! Integration tests: each drives the real `runbook` binary and checks what a user sees.

mod bad_input;
mod bounded;
mod command_line;
mod crash;
mod diagnostics;
mod finally;
mod formats;
mod graph;
mod hostile_text;
mod journal;
mod long_lines;
mod loop_prediction;
mod loop_summary;
mod loops;
mod plan;
mod processes;
mod rehearsal;
mod run;
mod schema;
mod secrets;
mod shipped;
mod sql;
mod support;
mod tds;
mod tds_selftest;
mod whole_output;
