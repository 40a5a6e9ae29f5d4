//! The JSON Schema of the runbook format, generated from the model.

use serde_json::Value;

use crate::model::Runbook;

/// The schema as pretty JSON, as committed in `schema/runbook.schema.json`.
pub fn json() -> String {
    let schema = schemars::schema_for!(Runbook);
    let mut value = schema.to_value();
    with_group(&mut value);
    forbid_null(&mut value);
    let mut text = serde_json::to_string_pretty(&value).unwrap_or_default();
    text.push('\n');
    text
}

/// One schema for both kinds of file, so that runbooks and step groups share the editor line:
/// the root is `oneOf` the runbook (its keys stay at the root) and the group (`group: 1`).
fn with_group(value: &mut Value) {
    let group = schemars::schema_for!(crate::model::GroupFile).to_value();
    let Some(root) = value.as_object_mut() else {
        return;
    };
    if let Some(Value::Object(defs)) = group.get("$defs")
        && let Some(Value::Object(ours)) = root.get_mut("$defs")
    {
        for (name, def) in defs {
            ours.entry(name.clone()).or_insert_with(|| def.clone());
        }
    }
    let mut group_root = group;
    if let Some(g) = group_root.as_object_mut() {
        g.remove("$defs");
        g.remove("$schema");
    }
    let group_ref = "#/$defs/GroupFile";
    if let Some(Value::Object(defs)) = root.get_mut("$defs") {
        defs.insert("GroupFile".to_owned(), group_root);
    }
    // The runbook's own root stays as it is for runbooks; a file with `group` is a group.
    let runbook_only = serde_json::json!({ "not": { "required": ["group"] } });
    let group_only = serde_json::json!({ "required": ["group"], "$ref": group_ref });
    let keys: Vec<String> = ["type", "properties", "required", "additionalProperties"]
        .iter()
        .map(|k| (*k).to_owned())
        .collect();
    let mut runbook = serde_json::Map::new();
    for key in keys {
        if let Some(v) = root.remove(&key) {
            runbook.insert(key, v);
        }
    }
    let mut runbook = Value::Object(runbook);
    if let (Some(r), Some(extra)) = (runbook.as_object_mut(), runbook_only.as_object()) {
        r.extend(extra.clone());
    }
    root.insert("oneOf".to_owned(), serde_json::json!([runbook, group_only]));
}

/// Optional fields come out as "T or null", but the loader treats an explicit `null` as a
/// wrong type: only leaving the key out is allowed. Remove the null alternatives.
fn forbid_null(value: &mut Value) {
    match value {
        Value::Object(map) => {
            if let Some(Value::Array(types)) = map.get_mut("type")
                && types.len() > 1
            {
                types.retain(|t| t != "null");
                if types.len() == 1 {
                    let only = types.remove(0);
                    map.insert("type".to_owned(), only);
                }
            }
            // `T or null` only: a longer list (SQL argument scalars) means null on purpose.
            if let Some(Value::Array(any_of)) = map
                .get_mut("anyOf")
                .filter(|a| a.as_array().is_some_and(|a| a.len() == 2))
            {
                any_of.retain(|s| s.get("type").and_then(Value::as_str) != Some("null"));
                if any_of.len() == 1
                    && let Some(Value::Object(only)) = any_of.pop()
                {
                    map.remove("anyOf");
                    for (k, v) in only {
                        map.entry(k).or_insert(v);
                    }
                }
            }
            map.values_mut().for_each(forbid_null);
        }
        Value::Array(items) => items.iter_mut().for_each(forbid_null),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::json;

    #[test]
    fn schema_lists_the_keys_the_loader_accepts() {
        use crate::model::build::*;
        let schema: serde_json::Value = serde_json::from_str(&json()).unwrap();
        let keys = |def: Option<&str>| -> Vec<String> {
            let node = match def {
                None => &schema["oneOf"][0],
                Some(name) => &schema["$defs"][name],
            };
            let mut keys: Vec<String> = node["properties"]
                .as_object()
                .unwrap_or_else(|| panic!("no properties for {def:?}"))
                .keys()
                .cloned()
                .collect();
            keys.sort();
            keys
        };
        let sorted = |list: &[&str]| {
            let mut v: Vec<String> = list.iter().map(|s| (*s).to_owned()).collect();
            v.sort();
            v
        };
        for (def, list) in [
            (None, RUNBOOK_KEYS),
            (Some("GroupFile"), GROUP_KEYS),
            (Some("Step"), STEP_KEYS),
            (Some("Param"), PARAM_KEYS),
            (Some("Secret"), SECRET_KEYS),
            (Some("Connection"), CONNECTION_KEYS),
            (Some("Defaults"), DEFAULTS_KEYS),
            (Some("Retry"), RETRY_KEYS),
            (Some("RetryOn"), RETRY_ON_KEYS),
            (Some("Run"), RUN_KEYS),
            (Some("Sql"), SQL_KEYS),
            (Some("Assert"), ASSERT_KEYS),
            (Some("Approval"), APPROVAL_KEYS),
            (Some("Rollback"), ROLLBACK_KEYS),
            (Some("Rehearse"), REHEARSE_KEYS),
            (Some("Notify"), NOTIFY_KEYS),
        ] {
            assert_eq!(keys(def), sorted(list), "keys of {def:?}");
        }
    }

    #[test]
    fn schema_does_not_require_assert_on_every_step() {
        let schema: serde_json::Value = serde_json::from_str(&json()).unwrap();
        assert_eq!(
            schema["$defs"]["Step"]["required"],
            serde_json::json!(["id"])
        );
    }
}
