//! `rehearse:` what `runbook check` runs instead of a step's own action: an action of the same
//! shapes as a step's (`run`, `sql`), read-only by the author's contract (`-WhatIf`,
//! `RESTORE VERIFYONLY`, `Test-Path`). The step's own action never runs under `check`.

use schemars::JsonSchema;

use super::{Run, Sql};
use crate::yaml::Span;

/// `rehearse:` the read-only stand-in for a step's action under `runbook check`.
#[derive(Clone, Debug, PartialEq, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Rehearse {
    /// What the rehearsal does: one of the keys `run`, `sql`.
    #[serde(flatten)]
    #[schemars(with = "RehearseKindKeys")]
    pub kind: RehearseKind,
    /// The machine a `run` rehearsal runs on: a name under `targets:`, as for a step.
    pub target: Option<crate::model::Spanned<String>>,
    #[schemars(skip)]
    pub span: Span,
}

/// What a rehearsal does: exactly one kind.
#[derive(Clone, Debug, PartialEq)]
pub enum RehearseKind {
    Run(Run),
    Sql(Sql),
}

/// The kind keys of a rehearsal, as the schema shows them.
#[derive(JsonSchema)]
#[allow(dead_code)] // never built: it only describes the schema
struct RehearseKindKeys {
    run: Option<Run>,
    sql: Option<Sql>,
}
