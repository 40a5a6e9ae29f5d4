//! Durations as people write them: `500ms`, `30s`, `5m`, `1h30m`.

use std::borrow::Cow;
use std::fmt;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};

/// A non-negative duration read from a human string.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Duration(pub std::time::Duration);

impl Duration {
    /// Parses `500ms`, `30s`, `5m`, `1h30m`, `2h 15m`. Returns why not on failure.
    pub fn parse(text: &str) -> Result<Self, String> {
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return Err("the duration is empty".to_owned());
        }
        if trimmed.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!(
                "`{trimmed}` has no unit; write `{trimmed}s` for seconds"
            ));
        }
        humantime::parse_duration(trimmed)
            .map(Duration)
            .map_err(|err| err.to_string())
    }

    pub const fn get(self) -> std::time::Duration {
        self.0
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", humantime::format_duration(self.0))
    }
}

impl JsonSchema for Duration {
    fn schema_name() -> Cow<'static, str> {
        "Duration".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "description": "A duration such as `500ms`, `30s`, `5m` or `1h30m`.",
            "pattern": "^\\s*([0-9]+(\\.[0-9]+)?\\s*[a-zA-Zµ]+\\s*)+$"
        })
    }
}
