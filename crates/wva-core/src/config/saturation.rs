//! The saturation scaling ConfigMap: entries, built-in defaults, completion, selection and
//! validation (spec/core.md §2.1–2.2).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::queueing::QueueingModelEntry;
use super::{
    ConfigIssue, DEFAULT_KEY, EntryIndex, EntryKind, NO_SELECTOR, classify, parse_yaml_entry,
};

/// Which analyzer a model runs, from `analyzerName`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum AnalyzerKind {
    /// `""`: the saturation analyzer V1 (§4).
    #[default]
    SaturationV1,
    /// `"saturation"`: the token-based analyzer V2 (§5).
    TokenBased,
    /// `"queueing-model"`: the queueing-model optimizer (§7; not built in this release).
    QueueingModel,
}

impl AnalyzerKind {
    /// Parses an `analyzerName` value.
    pub fn from_config_name(name: &str) -> Option<AnalyzerKind> {
        match name {
            "" => Some(AnalyzerKind::SaturationV1),
            "saturation" => Some(AnalyzerKind::TokenBased),
            "queueing-model" => Some(AnalyzerKind::QueueingModel),
            _ => None,
        }
    }

    /// The name reported in `CycleReport.models[].analyzer`.
    pub fn report_name(self) -> &'static str {
        match self {
            AnalyzerKind::SaturationV1 => "saturation-v1",
            AnalyzerKind::TokenBased => "saturation-token-based",
            AnalyzerKind::QueueingModel => "queueing-model",
        }
    }
}

/// One entry of the saturation scaling ConfigMap as written; every key optional.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SaturationEntry {
    /// Replica saturated if KV usage ≥ this.
    #[serde(
        default,
        deserialize_with = "super::number::opt_number",
        skip_serializing_if = "Option::is_none"
    )]
    pub kv_cache_threshold: Option<f64>,
    /// Replica saturated if queue ≥ this.
    #[serde(
        default,
        deserialize_with = "super::number::opt_number",
        skip_serializing_if = "Option::is_none"
    )]
    pub queue_length_threshold: Option<f64>,
    /// V1 scale-up if mean spare KV < this.
    #[serde(
        default,
        deserialize_with = "super::number::opt_number",
        skip_serializing_if = "Option::is_none"
    )]
    pub kv_spare_trigger: Option<f64>,
    /// V1 scale-up if mean spare queue < this.
    #[serde(
        default,
        deserialize_with = "super::number::opt_number",
        skip_serializing_if = "Option::is_none"
    )]
    pub queue_spare_trigger: Option<f64>,
    /// GPU limiter switch (default entry only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enable_limiter: Option<bool>,
    /// `""` = V1, `"saturation"` = V2, `"queueing-model"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub analyzer_name: Option<String>,
    /// V2 scale-up utilisation threshold.
    #[serde(
        default,
        deserialize_with = "super::number::opt_number",
        skip_serializing_if = "Option::is_none"
    )]
    pub scale_up_threshold: Option<f64>,
    /// V2 scale-down utilisation boundary.
    #[serde(
        default,
        deserialize_with = "super::number::opt_number",
        skip_serializing_if = "Option::is_none"
    )]
    pub scale_down_boundary: Option<f64>,
    /// Model the entry applies to.
    #[serde(rename = "model_id", default, skip_serializing_if = "Option::is_none")]
    pub model_id: Option<String>,
    /// Namespace the entry applies to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Queueing-model settings (§7.6).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queueing_model: Option<QueueingModelEntry>,
}

/// A completed, validated entry: every setting resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct SaturationSettings {
    /// `T_kv`.
    pub kv_cache_threshold: f64,
    /// `T_q`.
    pub queue_length_threshold: f64,
    /// `S_kv`.
    pub kv_spare_trigger: f64,
    /// `S_q`.
    pub queue_spare_trigger: f64,
    /// GPU limiter switch (meaningful in the default entry only).
    pub enable_limiter: bool,
    /// The analyzer.
    pub analyzer: AnalyzerKind,
    /// V2 scale-up threshold.
    pub scale_up_threshold: f64,
    /// V2 scale-down boundary.
    pub scale_down_boundary: f64,
    /// Completed queueing-model settings, when any entry in the chain sets them.
    pub queueing_model: Option<QueueingModelEntry>,
}

impl Default for SaturationSettings {
    /// The built-in defaults.
    fn default() -> Self {
        SaturationSettings {
            kv_cache_threshold: 0.80,
            queue_length_threshold: 5.0,
            kv_spare_trigger: 0.1,
            queue_spare_trigger: 3.0,
            enable_limiter: false,
            analyzer: AnalyzerKind::SaturationV1,
            scale_up_threshold: 0.85,
            scale_down_boundary: 0.70,
            queueing_model: None,
        }
    }
}

impl SaturationSettings {
    /// Fills every field `entry` omits from `self` (the parent).
    fn complete(&self, entry: &SaturationEntry, analyzer: AnalyzerKind) -> SaturationSettings {
        let queueing_model = match &entry.queueing_model {
            Some(q) => Some(q.inherit(self.queueing_model.as_ref())),
            None => self.queueing_model.clone(),
        };
        SaturationSettings {
            kv_cache_threshold: entry.kv_cache_threshold.unwrap_or(self.kv_cache_threshold),
            queue_length_threshold: entry
                .queue_length_threshold
                .unwrap_or(self.queue_length_threshold),
            kv_spare_trigger: entry.kv_spare_trigger.unwrap_or(self.kv_spare_trigger),
            queue_spare_trigger: entry
                .queue_spare_trigger
                .unwrap_or(self.queue_spare_trigger),
            enable_limiter: entry.enable_limiter.unwrap_or(self.enable_limiter),
            analyzer,
            scale_up_threshold: entry.scale_up_threshold.unwrap_or(self.scale_up_threshold),
            scale_down_boundary: entry
                .scale_down_boundary
                .unwrap_or(self.scale_down_boundary),
            queueing_model,
        }
    }

    /// The §2.2 value checks, in order; the first failure is returned.
    pub fn validate(&self) -> Result<(), String> {
        let in_unit = |x: f64| (0.0..=1.0).contains(&x);
        let non_negative = |x: f64| x.is_finite() && x >= 0.0;
        let in_open_unit = |x: f64| x > 0.0 && x <= 1.0;
        let (kv, q, skv, sq) = (
            self.kv_cache_threshold,
            self.queue_length_threshold,
            self.kv_spare_trigger,
            self.queue_spare_trigger,
        );
        if !in_unit(kv) {
            return Err(format!(
                "kvCacheThreshold must be between 0 and 1, got {kv:.2}"
            ));
        }
        if !non_negative(q) {
            return Err(format!("queueLengthThreshold must be >= 0, got {q:.1}"));
        }
        if !in_unit(skv) {
            return Err(format!(
                "kvSpareTrigger must be between 0 and 1, got {skv:.2}"
            ));
        }
        if !non_negative(sq) {
            return Err(format!("queueSpareTrigger must be >= 0, got {sq:.1}"));
        }
        if kv < skv {
            return Err(format!(
                "kvCacheThreshold ({kv:.2}) should be >= kvSpareTrigger ({skv:.2})"
            ));
        }
        if self.analyzer == AnalyzerKind::TokenBased {
            let (up, down) = (self.scale_up_threshold, self.scale_down_boundary);
            if !in_open_unit(up) {
                return Err(format!("scaleUpThreshold must be in (0, 1], got {up:.2}"));
            }
            if !in_open_unit(down) {
                return Err(format!(
                    "scaleDownBoundary must be in (0, 1], got {down:.2}"
                ));
            }
            if up <= down {
                return Err(format!(
                    "scaleUpThreshold ({up:.2}) must be > scaleDownBoundary ({down:.2})"
                ));
            }
        }
        if let Some(q) = &self.queueing_model {
            q.validate()?;
        }
        Ok(())
    }
}

/// The parsed and validated saturation scaling config: accepted entries, completed, indexed
/// for per-model selection.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SaturationConfig {
    /// The accepted entries as written, by ConfigMap key.
    entries: BTreeMap<String, SaturationEntry>,
    /// The completed `default` (built-ins when absent or rejected).
    global: SaturationSettings,
    index: EntryIndex<SaturationSettings>,
}

impl SaturationConfig {
    /// Parses ConfigMap data (key → YAML document); returns the config built from the accepted
    /// entries and one `(key, message)` per rejected entry.
    pub fn parse_configmap(
        data: &BTreeMap<String, String>,
    ) -> (SaturationConfig, Vec<ConfigIssue>) {
        let mut issues = Vec::new();
        let mut parsed = BTreeMap::new();
        for (key, text) in data {
            match parse_yaml_entry::<SaturationEntry>(text) {
                Ok(entry) => {
                    parsed.insert(key.clone(), entry);
                }
                Err(message) => issues.push((key.clone(), message)),
            }
        }
        let (config, mut more) = SaturationConfig::from_entries(&parsed);
        issues.append(&mut more);
        issues.sort();
        (config, issues)
    }

    /// Builds the config from already-decoded entries (as in `CycleInput.config`); returns one
    /// `(key, message)` per rejected entry, sorted by key.
    pub fn from_entries(
        entries: &BTreeMap<String, SaturationEntry>,
    ) -> (SaturationConfig, Vec<ConfigIssue>) {
        let mut issues: Vec<ConfigIssue> = Vec::new();
        let mut namespace_defaults = Vec::new();
        let mut models = Vec::new();
        for (key, entry) in entries {
            match structural_check(key, entry) {
                Err(message) => issues.push((key.clone(), message)),
                Ok((EntryKind::Global, analyzer)) => {
                    let _ = analyzer;
                }
                Ok((kind @ EntryKind::NamespaceDefault(_), analyzer)) => {
                    namespace_defaults.push((key, entry, kind, analyzer));
                }
                Ok((kind, analyzer)) => models.push((key, entry, kind, analyzer)),
            }
        }

        let mut config = SaturationConfig::default();
        let builtins = SaturationSettings::default();
        if let Some(entry) = entries.get(DEFAULT_KEY)
            && !issues.iter().any(|(k, _)| k == DEFAULT_KEY)
        {
            let analyzer = analyzer_of(entry).unwrap_or_default();
            let done = builtins.complete(entry, analyzer);
            match done.validate() {
                Ok(()) => {
                    config.global = done.clone();
                    config.index.insert(EntryKind::Global, done);
                    config
                        .entries
                        .insert(DEFAULT_KEY.to_string(), entry.clone());
                }
                Err(message) => issues.push((DEFAULT_KEY.to_string(), message)),
            }
        }

        // Namespace defaults first (parents of namespaced model entries), then model entries;
        // within each, byte-wise key order so the smaller key wins a duplicate.
        for group in [namespace_defaults, models] {
            let mut claimed: Vec<(EntryKind, &String)> = Vec::new();
            let mut winners = Vec::new();
            for (key, entry, kind, analyzer) in group {
                if let Some((_, winner)) = claimed.iter().find(|(k, _)| *k == kind) {
                    issues.push((key.clone(), format!("duplicate of entry \"{winner}\"")));
                    continue;
                }
                claimed.push((kind.clone(), key));
                winners.push((key, entry, kind, analyzer));
            }
            for (key, entry, kind, analyzer) in winners {
                let parent = match &kind {
                    EntryKind::Model(_, Some(ns)) => config
                        .index
                        .namespace_defaults
                        .get(ns)
                        .unwrap_or(&config.global),
                    _ => &config.global,
                };
                let done = parent.complete(entry, analyzer.unwrap_or(parent.analyzer));
                match done.validate() {
                    Ok(()) => {
                        config.index.insert(kind, done);
                        config.entries.insert(key.clone(), entry.clone());
                    }
                    Err(message) => issues.push((key.clone(), message)),
                }
            }
        }
        issues.sort();
        (config, issues)
    }

    /// The settings that apply to model (modelID, namespace): first match of the selection.
    pub fn resolve(&self, model_id: &str, namespace: &str) -> &SaturationSettings {
        self.index
            .chain(model_id, namespace)
            .into_iter()
            .next()
            .unwrap_or(&self.global)
    }

    /// The completed `default` entry (built-ins when absent or rejected).
    pub fn global(&self) -> &SaturationSettings {
        &self.global
    }

    /// The accepted entries as written.
    pub fn entries(&self) -> &BTreeMap<String, SaturationEntry> {
        &self.entries
    }
}

fn analyzer_of(entry: &SaturationEntry) -> Option<AnalyzerKind> {
    entry
        .analyzer_name
        .as_deref()
        .and_then(AnalyzerKind::from_config_name)
}

/// Entry kind, global-only keys and analyzer name (the structural checks after parsing).
fn structural_check(
    key: &str,
    entry: &SaturationEntry,
) -> Result<(EntryKind, Option<AnalyzerKind>), String> {
    let kind = classify(key, entry.model_id.as_deref(), entry.namespace.as_deref())
        .ok_or_else(|| NO_SELECTOR.to_string())?;
    if kind != EntryKind::Global {
        if entry.enable_limiter.is_some() {
            return Err("enableLimiter is only allowed in the default entry".to_string());
        }
        if let Some(q) = &entry.queueing_model
            && let Some(first) = q.global_only_keys().first()
        {
            return Err(format!("{first} is only allowed in the default entry"));
        }
    }
    let analyzer = match &entry.analyzer_name {
        None => None,
        Some(name) => Some(AnalyzerKind::from_config_name(name).ok_or_else(|| {
            format!("analyzerName must be one of \"\", \"saturation\", \"queueing-model\", got \"{name}\"")
        })?),
    };
    Ok((kind, analyzer))
}

#[cfg(test)]
mod tests;
