//! The JSON Schema of the runbook format, generated from the model.

use crate::model::Runbook;

/// The schema as pretty JSON, as committed in `schema/runbook.schema.json`.
pub fn json() -> String {
    let schema = schemars::schema_for!(Runbook);
    let mut text = serde_json::to_string_pretty(&schema).unwrap_or_default();
    text.push('\n');
    text
}
