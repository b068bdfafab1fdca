//! The scale-to-zero ConfigMap: entries, selection and retention resolution (spec/core.md §2.3).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{
    ConfigIssue, DEFAULT_KEY, EntryIndex, EntryKind, NO_SELECTOR, classify, parse_yaml_entry,
};
use crate::go_duration::parse_go_duration;

/// Retention used when no entry in the chain gives a valid one.
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(600);

const DAY_NANOS: i64 = 86_400 * 1_000_000_000;

/// One entry of the scale-to-zero ConfigMap as written (snake_case keys).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScaleToZeroEntry {
    /// Model the entry applies to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_id: Option<String>,
    /// Namespace the entry applies to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Whether the model may scale to zero.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enable_scale_to_zero: Option<bool>,
    /// How long without requests before scaling to zero (Go duration).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention_period: Option<String>,
}

/// What scale-to-zero means for one model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScaleToZeroPolicy {
    /// Whether the model may scale to zero.
    pub enabled: bool,
    /// The window without requests that proves idleness.
    pub retention: Duration,
}

impl ScaleToZeroPolicy {
    /// `minReplicas(model)`: 0 if enabled, else 1.
    pub fn min_replicas(&self) -> u32 {
        if self.enabled { 0 } else { 1 }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Resolved {
    enabled: Option<bool>,
    retention: Option<Duration>,
}

/// The parsed scale-to-zero config, indexed for per-model resolution.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ScaleToZeroConfig {
    entries: BTreeMap<String, ScaleToZeroEntry>,
    index: EntryIndex<Resolved>,
}

/// Checks a retention value: `Ok(Some(d))` valid, `Ok(None)` absent/empty, `Err` a warning.
pub fn parse_retention(value: &str) -> Result<Option<Duration>, String> {
    if value.is_empty() {
        return Ok(None);
    }
    let nanos = parse_go_duration(value).map_err(|e| e.to_string())?;
    if nanos <= 0 {
        return Err(format!("retention period must be positive, got {value}"));
    }
    let nanos = u64::try_from(nanos).map_err(|_| format!("invalid duration format: {value}"))?;
    Ok(Some(Duration::from_nanos(nanos)))
}

impl ScaleToZeroConfig {
    /// Parses ConfigMap data (key → YAML document). Returns the config, the rejected entries
    /// and the warnings (accepted entries with an unusable retention), each `(key, message)`.
    pub fn parse_configmap(
        data: &BTreeMap<String, String>,
    ) -> (ScaleToZeroConfig, Vec<ConfigIssue>, Vec<ConfigIssue>) {
        let mut rejected = Vec::new();
        let mut parsed = BTreeMap::new();
        for (key, text) in data {
            match parse_yaml_entry::<ScaleToZeroEntry>(text) {
                Ok(entry) => {
                    parsed.insert(key.clone(), entry);
                }
                Err(message) => rejected.push((key.clone(), message)),
            }
        }
        let (config, mut more, warnings) = ScaleToZeroConfig::from_entries(&parsed);
        rejected.append(&mut more);
        rejected.sort();
        (config, rejected, warnings)
    }

    /// Builds the config from decoded entries; returns (config, rejected, warnings).
    pub fn from_entries(
        entries: &BTreeMap<String, ScaleToZeroEntry>,
    ) -> (ScaleToZeroConfig, Vec<ConfigIssue>, Vec<ConfigIssue>) {
        let mut config = ScaleToZeroConfig::default();
        let mut rejected = Vec::new();
        let mut warnings = Vec::new();
        let mut groups: [Vec<(&String, &ScaleToZeroEntry, EntryKind)>; 3] = Default::default();
        for (key, entry) in entries {
            match classify(key, entry.model_id.as_deref(), entry.namespace.as_deref()) {
                None => rejected.push((key.clone(), NO_SELECTOR.to_string())),
                Some(kind) => {
                    let slot = match kind {
                        EntryKind::Global => 0,
                        EntryKind::NamespaceDefault(_) => 1,
                        EntryKind::Model(..) => 2,
                    };
                    groups[slot].push((key, entry, kind));
                }
            }
        }
        for group in groups {
            let mut claimed: Vec<(EntryKind, &String)> = Vec::new();
            for (key, entry, kind) in group {
                if let Some((_, winner)) = claimed.iter().find(|(k, _)| *k == kind) {
                    rejected.push((key.clone(), format!("duplicate of entry \"{winner}\"")));
                    continue;
                }
                claimed.push((kind.clone(), key));
                let retention = match entry.retention_period.as_deref().map(parse_retention) {
                    None | Some(Ok(None)) => None,
                    Some(Ok(Some(d))) => {
                        if d.as_nanos() > DAY_NANOS as u128 {
                            warnings.push((
                                key.clone(),
                                format!(
                                    "retention period {} exceeds 24h",
                                    entry.retention_period.as_deref().unwrap_or_default()
                                ),
                            ));
                        }
                        Some(d)
                    }
                    Some(Err(message)) => {
                        warnings.push((key.clone(), message));
                        None
                    }
                };
                let resolved = Resolved {
                    enabled: entry.enable_scale_to_zero,
                    retention,
                };
                config.index.insert(kind, resolved);
                config.entries.insert(key.clone(), entry.clone());
            }
        }
        rejected.sort();
        warnings.sort();
        (config, rejected, warnings)
    }

    /// The policy for model (modelID, namespace); `fallback` is the enabled value when no
    /// entry in the chain sets `enable_scale_to_zero`.
    pub fn resolve(&self, model_id: &str, namespace: &str, fallback: bool) -> ScaleToZeroPolicy {
        let chain = self.index.chain(model_id, namespace);
        let enabled = chain.iter().find_map(|r| r.enabled).unwrap_or(fallback);
        let retention = chain
            .iter()
            .find_map(|r| r.retention)
            .unwrap_or(DEFAULT_RETENTION);
        ScaleToZeroPolicy { enabled, retention }
    }

    /// The accepted entries as written.
    pub fn entries(&self) -> &BTreeMap<String, ScaleToZeroEntry> {
        &self.entries
    }

    /// Whether a `default` entry was accepted.
    pub fn has_default(&self) -> bool {
        self.entries.contains_key(DEFAULT_KEY)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn most_specific_entry_setting_enabled_wins() {
        let (c, rejected, _) = ScaleToZeroConfig::parse_configmap(&data(&[
            (
                "default",
                "enable_scale_to_zero: false\nretention_period: 5m",
            ),
            (
                "a",
                "model_id: m\nnamespace: ns\nenable_scale_to_zero: true",
            ),
            (
                "b",
                "model_id: m\nenable_scale_to_zero: false\nretention_period: 1h",
            ),
        ]));
        assert!(rejected.is_empty());
        let p = c.resolve("m", "ns", false);
        assert!(p.enabled);
        assert_eq!(p.retention, Duration::from_secs(3600));
        let other_ns = c.resolve("m", "other", true);
        assert!(!other_ns.enabled);
        let other_model = c.resolve("x", "ns", true);
        assert!(!other_model.enabled);
        assert_eq!(other_model.retention, Duration::from_secs(300));
    }

    #[test]
    fn namespace_is_honoured() {
        let (c, _, _) = ScaleToZeroConfig::parse_configmap(&data(&[(
            "team-a",
            "namespace: team-a\nenable_scale_to_zero: true",
        )]));
        assert!(c.resolve("m", "team-a", false).enabled);
        assert!(!c.resolve("m", "team-b", false).enabled);
    }

    #[test]
    fn fallback_applies_when_no_entry_sets_enabled() {
        let c = ScaleToZeroConfig::default();
        assert!(c.resolve("m", "ns", true).enabled);
        assert!(!c.resolve("m", "ns", false).enabled);
        assert_eq!(c.resolve("m", "ns", false).retention, DEFAULT_RETENTION);
        assert_eq!(c.resolve("m", "ns", true).min_replicas(), 0);
        assert_eq!(c.resolve("m", "ns", false).min_replicas(), 1);
    }

    #[test]
    fn invalid_retention_is_a_warning_and_skipped() {
        let (c, rejected, warnings) = ScaleToZeroConfig::parse_configmap(&data(&[
            ("default", "retention_period: 15m"),
            ("a", "model_id: m\nretention_period: soon"),
            ("b", "model_id: n\nretention_period: \"0\""),
            ("c", "model_id: o\nretention_period: 48h"),
            ("d", "model_id: p\nretention_period: -5m"),
        ]));
        assert!(rejected.is_empty(), "{rejected:?}");
        assert_eq!(
            warnings,
            vec![
                ("a".to_string(), "invalid duration format: soon".to_string()),
                (
                    "b".to_string(),
                    "retention period must be positive, got 0".to_string()
                ),
                (
                    "c".to_string(),
                    "retention period 48h exceeds 24h".to_string()
                ),
                (
                    "d".to_string(),
                    "retention period must be positive, got -5m".to_string()
                ),
            ]
        );
        assert_eq!(
            c.resolve("m", "ns", false).retention,
            Duration::from_secs(900)
        );
        assert_eq!(
            c.resolve("o", "ns", false).retention,
            Duration::from_secs(48 * 3600)
        );
    }

    #[test]
    fn structural_errors_reject_the_entry() {
        let (c, rejected, _) = ScaleToZeroConfig::parse_configmap(&data(&[
            ("a", "enable_scale_to_zero: true"),
            (
                "b",
                "model_id: m\nenable_scale_to_zero: true\nretention: 5m",
            ),
            ("c", "model_id: m\nenable_scale_to_zero: true"),
            ("d", "model_id: m\nenable_scale_to_zero: false"),
            ("e", "model_id: [1"),
        ]));
        assert_eq!(rejected[0], ("a".to_string(), NO_SELECTOR.to_string()));
        assert_eq!(
            rejected[1],
            ("b".to_string(), "unknown field \"retention\"".to_string())
        );
        assert_eq!(
            rejected[2],
            ("d".to_string(), "duplicate of entry \"c\"".to_string())
        );
        assert_eq!(rejected[3].0, "e");
        assert!(
            rejected[3].1.starts_with("invalid entry: "),
            "{}",
            rejected[3].1
        );
        assert!(c.resolve("m", "x", false).enabled);
    }

    #[test]
    fn empty_document_is_an_empty_entry() {
        let (c, rejected, _) = ScaleToZeroConfig::parse_configmap(&data(&[("default", "")]));
        assert!(rejected.is_empty());
        assert!(c.has_default());
    }
}
