//! The shape of a step group file (`group: 1`), as the schema shows it. A group is read into
//! a [`super::Runbook`] whose `group` holds its outputs; this type only describes the file.

use indexmap::IndexMap;
use schemars::JsonSchema;

use super::{Connection, Param, Spanned, Step, Target};

/// A step group file, format version 1: steps that runbooks include with `use:`.
#[derive(JsonSchema)]
#[schemars(deny_unknown_fields, title = "group")]
#[allow(dead_code)] // never built: it only describes the schema
pub struct GroupFile {
    /// The format version of a group file: always `1`.
    #[schemars(range(min = 1, max = 1))]
    group: i64,
    /// A short name: letters, digits, `_` and `-`.
    name: Spanned<String>,
    description: Option<Spanned<String>>,
    /// The group's params: what a `use:` step passes under `with:`.
    #[serde(default)]
    params: IndexMap<String, Param>,
    /// Connections of the group's `sql` steps (templates over the group's params).
    #[serde(default)]
    connections: IndexMap<String, Connection>,
    /// Machines the group's `run` steps run on (templates over the group's params); a step
    /// of the group names them as written here.
    #[serde(default)]
    targets: IndexMap<String, Target>,
    steps: Vec<Step>,
    /// Values the including runbook reads as `steps['USE'].outputs.NAME`: templates over
    /// the group's steps.
    #[serde(default)]
    outputs: IndexMap<String, Spanned<String>>,
}
