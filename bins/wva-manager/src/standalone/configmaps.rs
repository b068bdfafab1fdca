//! The saturation and scale-to-zero ConfigMaps as files (standalone mode).

use std::collections::BTreeMap;

use wva_core::{SaturationConfig, ScaleToZeroConfig};

/// Reads a ConfigMap manifest (`kind: ConfigMap` with `data`) or a bare mapping of key → YAML
/// text, as `kubectl apply` users and upstream `config.yaml` files write them.
pub fn configmap_data(path: &str, text: &str) -> Result<BTreeMap<String, String>, String> {
    let doc: serde_json::Value = serde_saphyr::from_str(text).map_err(|e| {
        format!(
            "{path}: invalid YAML: {}",
            e.to_string().lines().next().unwrap_or_default()
        )
    })?;
    let map = match &doc {
        serde_json::Value::Null => return Ok(BTreeMap::new()),
        serde_json::Value::Object(m)
            if m.get("kind").and_then(|k| k.as_str()) == Some("ConfigMap") =>
        {
            match m.get("data") {
                None | Some(serde_json::Value::Null) => return Ok(BTreeMap::new()),
                Some(serde_json::Value::Object(data)) => data.clone(),
                Some(_) => return Err(format!("{path}: data: expected a mapping of key to text")),
            }
        }
        serde_json::Value::Object(m) => m.clone(),
        _ => {
            return Err(format!(
                "{path}: expected a ConfigMap or a mapping of key to text"
            ));
        }
    };
    map.into_iter()
        .map(|(k, v)| match v {
            serde_json::Value::String(s) => Ok((k, s)),
            _ => Err(format!(
                "{path}: data.{k}: expected a YAML document as a string"
            )),
        })
        .collect()
}

/// Parses the saturation scaling ConfigMap file. Rejected entries are reported (WARN) and left
/// out, as in the cluster; the file as a whole is rejected only when it cannot be read.
pub fn parse_saturation(path: &str, text: &str) -> Result<SaturationConfig, String> {
    let data = configmap_data(path, text)?;
    let (config, issues) = SaturationConfig::parse_configmap(&data);
    for (key, message) in issues {
        tracing::warn!(file = %path, key = %key, "saturation config entry rejected: {message}");
    }
    Ok(config)
}

/// Parses the scale-to-zero ConfigMap file, reporting rejected entries and warnings.
pub fn parse_scale_to_zero(path: &str, text: &str) -> Result<ScaleToZeroConfig, String> {
    let data = configmap_data(path, text)?;
    let (config, rejected, warnings) = ScaleToZeroConfig::parse_configmap(&data);
    for (key, message) in rejected {
        tracing::warn!(file = %path, key = %key, "scale-to-zero config entry rejected: {message}");
    }
    for (key, message) in warnings {
        tracing::warn!(file = %path, key = %key, "scale-to-zero config: {message}");
    }
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_configmap_manifest_and_a_bare_mapping_alike() {
        let manifest = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\ndata:\n  default: |\n    kvCacheThreshold: 0.7\n";
        let bare = "default: |\n  kvCacheThreshold: 0.7\n";
        let a = configmap_data("a", manifest).unwrap();
        let b = configmap_data("b", bare).unwrap();
        assert_eq!(a, b);
        assert_eq!(a["default"].trim(), "kvCacheThreshold: 0.7");
        let config = parse_saturation("a", manifest).unwrap();
        assert_eq!(config.global().kv_cache_threshold, 0.7);
    }

    #[test]
    fn a_non_string_value_names_its_key() {
        let err = configmap_data("c.yaml", "default:\n  kvCacheThreshold: 0.7\n").unwrap_err();
        assert_eq!(
            err,
            "c.yaml: data.default: expected a YAML document as a string"
        );
    }
}
