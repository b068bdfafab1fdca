//! The config file: a flat YAML mapping whose keys are the environment variable names.

use std::collections::BTreeMap;

use serde_json::Value;

use super::error::ConfigError;
use super::keys::{ENV_ONLY, IGNORED, PROMETHEUS_PREFIX, by_env};

/// The file's values as text, and a WARN line per unknown key.
pub(super) fn parse(
    path: &str,
    contents: &str,
) -> Result<(BTreeMap<String, String>, Vec<String>), ConfigError> {
    let not_a_mapping = || ConfigError::NotAMapping {
        path: path.to_owned(),
    };
    let document: Value = if contents.trim().is_empty() {
        Value::Null
    } else {
        serde_saphyr::from_str(contents).map_err(|_| not_a_mapping())?
    };
    let map = match document {
        Value::Null => serde_json::Map::new(),
        Value::Object(map) => map,
        _ => return Err(not_a_mapping()),
    };
    let mut values = BTreeMap::new();
    let mut warnings = Vec::new();
    for (key, value) in map {
        let text = match value {
            Value::Null => continue,
            Value::String(s) => s,
            Value::Bool(b) => b.to_string(),
            Value::Number(n) => n.to_string(),
            Value::Array(_) | Value::Object(_) => return Err(not_a_mapping()),
        };
        if IGNORED.contains(&key.as_str()) {
            continue;
        }
        let known = by_env(&key).is_some() || key.starts_with(PROMETHEUS_PREFIX);
        if !known || ENV_ONLY.contains(&key.as_str()) {
            warnings.push(format!(
                "ignoring unknown configuration key \"{key}\" in {path}"
            ));
            continue;
        }
        values.insert(key, text);
    }
    Ok((values, warnings))
}
