//! Exit codes of every command, in one place; the README's tables list the same.

/// Success: the run (or check) went through; tolerated failures are in the summary.
pub const OK: u8 = 0;
/// The run failed and was rolled back cleanly or had nothing to roll back; `validate` found
/// errors.
pub const FAILED: u8 = 1;
/// Invalid runbook, params, secrets or arguments: nothing ran.
pub const USAGE: u8 = 2;
/// A person must act: a rollback failed, or the run stopped past a point of no return.
pub const NEEDS_PERSON: u8 = 3;
/// The run journal could not be written: the run stopped before its next side effect.
pub const JOURNAL_FAILED: u8 = 4;
/// Interrupted (Ctrl-C, SIGTERM).
pub const INTERRUPTED: u8 = 130;
