//! `CycleReport`: the decisions and analysis of one cycle, as JSON (spec/core.md §8).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::state::CoreState;
use crate::{CycleInput, Decision};

/// How usable a model's metrics were this cycle (§3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Availability {
    /// Every expected record present and fresh.
    Fresh,
    /// Analysed, but scale-down and scale-to-zero are suppressed.
    Stale,
    /// No usable record; every target held.
    Unavailable,
}

/// Per-variant detail of the V1 analysis.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct V1VariantAnalysis {
    /// Variant name.
    pub name: String,
    /// Accelerator string.
    pub accelerator: String,
    /// Cost per replica.
    pub cost: f64,
    /// Usable records.
    pub replica_count: u32,
    /// Non-saturated records.
    pub non_saturated_count: u32,
    /// Mean spare KV over non-saturated records.
    pub avg_spare_kv_capacity: f64,
    /// Mean spare queue over non-saturated records.
    pub avg_spare_queue_length: f64,
    /// Highest KV usage.
    pub max_kv_cache_usage: f64,
    /// Longest queue.
    pub max_queue_length: f64,
    /// Saturated pods, sorted.
    pub saturated_replicas: Vec<String>,
}

/// The V1 analysis of one model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct V1Analysis {
    /// Metric availability.
    pub availability: Availability,
    /// Usable records.
    pub total_replicas: u32,
    /// Non-saturated records (N).
    pub non_saturated_count: u32,
    /// Model mean spare KV.
    pub avg_spare_kv_capacity: f64,
    /// Model mean spare queue.
    pub avg_spare_queue_length: f64,
    /// A trigger fired.
    pub should_scale_up: bool,
    /// Removing one replica keeps enough spare.
    pub scale_down_safe: bool,
    /// Simulated spare KV after removing one replica (N ≥ 2 only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remaining_spare_kv: Option<f64>,
    /// Simulated spare queue after removing one replica (N ≥ 2 only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remaining_spare_queue: Option<f64>,
    /// Per variant, in name order.
    pub variants: Vec<V1VariantAnalysis>,
}

/// Where a V2 variant's per-replica capacity came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CapacitySource {
    /// Median of this cycle's replicas.
    Replicas,
    /// The variant's stored record.
    Stored,
    /// A compatible record of another variant.
    Compatible,
    /// Unknown (0).
    None,
}

/// Per-variant detail of the V2 analysis.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct V2VariantAnalysis {
    /// Variant name.
    pub name: String,
    /// Accelerator string.
    pub accelerator: String,
    /// Cost per replica.
    pub cost: f64,
    /// Ready replicas (readyCount).
    pub ready_replicas: u32,
    /// Pending replicas.
    pub pending_replicas: u32,
    /// Tokens per replica.
    pub per_replica_capacity: i64,
    /// Source of the capacity.
    pub capacity_source: CapacitySource,
    /// readyCount × perReplicaCapacity.
    pub total_capacity: i64,
    /// Token demand.
    pub total_demand: i64,
    /// demand / capacity.
    pub utilization: f64,
}

/// The V2 (token-based) analysis of one model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct V2Analysis {
    /// Metric availability.
    pub availability: Availability,
    /// Σ totalCapacity.
    pub total_supply: i64,
    /// Σ current × perReplicaCapacity.
    pub anticipated_supply: i64,
    /// Σ demand.
    pub total_demand: i64,
    /// demand / supply.
    pub utilization: f64,
    /// Tokens to add.
    pub required_capacity: f64,
    /// Tokens that may be removed.
    pub spare_capacity: f64,
    /// Model mean prompt tokens.
    pub avg_input_tokens: f64,
    /// Model mean generated tokens.
    pub avg_output_tokens: f64,
    /// Model mean prefix-cache hit rate.
    pub prefix_cache_hit_rate: f64,
    /// Per variant, in name order.
    pub variants: Vec<V2VariantAnalysis>,
}

/// An analysis with nothing but availability (unavailable models, and the queueing model,
/// which is not built in this release).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BareAnalysis {
    /// Metric availability.
    pub availability: Availability,
}

/// The analysis of one model, by analyzer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ModelAnalysis {
    /// Saturation V1.
    V1(V1Analysis),
    /// Token-based V2.
    V2(V2Analysis),
    /// Availability only.
    Bare(BareAnalysis),
}

impl ModelAnalysis {
    /// The model's availability.
    pub fn availability(&self) -> Availability {
        match self {
            ModelAnalysis::V1(a) => a.availability,
            ModelAnalysis::V2(a) => a.availability,
            ModelAnalysis::Bare(a) => a.availability,
        }
    }
}

/// One model's entry in the report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ModelReport {
    /// Model.
    #[serde(rename = "modelID")]
    pub model_id: String,
    /// Namespace.
    pub namespace: String,
    /// `saturation-v1`, `saturation-token-based` or `queueing-model`.
    pub analyzer: String,
    /// The analysis.
    pub analysis: ModelAnalysis,
}

/// The output of one cycle.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CycleReport {
    /// The input, with `now` set to the value used.
    pub input: CycleInput,
    /// Models in canonical order.
    pub models: Vec<ModelReport>,
    /// Decisions by (namespace, modelID, variant).
    pub decisions: Vec<Decision>,
    /// Updated state to carry to the next cycle.
    pub state: CoreState,
    /// Stage name → microseconds (engine only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timings: Option<BTreeMap<String, u64>>,
}

/// Why a report could not be serialised.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// A NaN or infinity reached the report (a bug; serde_json would write `null`).
    #[error("non-finite number in report at {0}")]
    NonFinite(String),
    /// Serialisation failed.
    #[error("serialising report: {0}")]
    Json(#[from] serde_json::Error),
}

fn find_null(value: &serde_json::Value, path: &mut String) -> Option<String> {
    match value {
        serde_json::Value::Null => Some(path.clone()),
        serde_json::Value::Array(items) => items.iter().enumerate().find_map(|(i, v)| {
            let len = path.len();
            path.push_str(&format!("[{i}]"));
            let found = find_null(v, path);
            path.truncate(len);
            found
        }),
        serde_json::Value::Object(map) => map.iter().find_map(|(k, v)| {
            let len = path.len();
            path.push('.');
            path.push_str(k);
            let found = find_null(v, path);
            path.truncate(len);
            found
        }),
        _ => None,
    }
}

impl CycleReport {
    /// Fails if any number in the report is NaN or infinite (the report holds no `null`).
    pub fn check_finite(&self) -> Result<(), ReportError> {
        let value = serde_json::to_value(self)?;
        match find_null(&value, &mut String::new()) {
            Some(path) => Err(ReportError::NonFinite(
                path.trim_start_matches('.').to_string(),
            )),
            None => Ok(()),
        }
    }

    /// Pretty JSON, after the finite check.
    pub fn to_json_pretty(&self) -> Result<String, ReportError> {
        self.check_finite()?;
        Ok(serde_json::to_string_pretty(self)?)
    }

    /// Compact JSON, after the finite check.
    pub fn to_json(&self) -> Result<String, ReportError> {
        self.check_finite()?;
        Ok(serde_json::to_string(self)?)
    }
}
