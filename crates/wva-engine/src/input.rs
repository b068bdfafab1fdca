//! Turning an inventory snapshot and collected metrics into the core's `CycleInput`.
//!
//! Pure functions: the engine's data flow in one place, testable without a runtime.

use std::collections::{BTreeMap, BTreeSet};

use wva_collector::{CollectRequest, CollectedSnapshot, ModelKey, ModelRequest, ReplicaRecord};
use wva_core::config::DEFAULT_KEY;
use wva_core::{CoreState, CycleInput, Freshness, ReplicaMetrics, ScaleToZeroEntry, Timestamp};

use crate::inventory::InventorySnapshot;

/// The models of the active variants, each once, with the request-count window when the
/// model may scale to zero (the collector skips that query otherwise).
pub fn collect_request(inventory: &InventorySnapshot) -> CollectRequest {
    let mut models: BTreeMap<ModelKey, ModelRequest> = BTreeMap::new();
    for v in inventory.variants.iter().filter(|v| v.active) {
        let key = ModelKey::new(v.state.namespace.clone(), v.state.model_id.clone());
        models.entry(key.clone()).or_insert_with(|| {
            let policy = inventory.scale_to_zero.resolve(
                &v.state.model_id,
                &v.state.namespace,
                inventory.scale_to_zero_fallback,
            );
            ModelRequest {
                key,
                retention: policy.enabled.then_some(policy.retention),
            }
        });
    }
    CollectRequest {
        models: models.into_values().collect(),
    }
}

/// Models tracked last cycle that no active variant serves any more.
pub fn models_to_untrack(previous: &BTreeSet<ModelKey>, request: &CollectRequest) -> Vec<ModelKey> {
    let now: BTreeSet<&ModelKey> = request.models.iter().map(|m| &m.key).collect();
    previous
        .iter()
        .filter(|k| !now.contains(k))
        .cloned()
        .collect()
}

/// One replica record in the core's terms. A record without KV usage or queue length is
/// passed as `unavailable` (values 0, which the core never reads: it drops unavailable
/// records before any analysis), so the missing data shows in the report and never becomes
/// a zero load.
pub fn replica_metrics(namespace: &str, record: &ReplicaRecord) -> ReplicaMetrics {
    let mut m = record.to_replica_metrics(namespace);
    if !(m.kv_cache_usage.is_finite() && m.queue_length.is_finite()) {
        m.kv_cache_usage = 0.0;
        m.queue_length = 0.0;
        m.freshness = Freshness::Unavailable;
    }
    m
}

/// Builds the core's input for one cycle.
pub fn cycle_input(
    now: Timestamp,
    inventory: &InventorySnapshot,
    collected: &CollectedSnapshot,
    state: Option<CoreState>,
) -> CycleInput {
    let mut variants: Vec<_> = inventory
        .variants
        .iter()
        .filter(|v| v.active)
        .map(|v| v.state.clone())
        .collect();
    variants.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
    let known: BTreeSet<(&str, &str)> = variants
        .iter()
        .map(|v| (v.namespace.as_str(), v.name.as_str()))
        .collect();

    let mut replicas = Vec::new();
    let mut request_counts = BTreeMap::new();
    for (key, model) in &collected.models {
        for record in model.replicas.values() {
            if known.contains(&(key.namespace.as_str(), record.variant.name.as_str())) {
                replicas.push(replica_metrics(&key.namespace, record));
            }
        }
        // Only a fresh observation may prove idleness (spec/core.md §3 rule 3).
        if let Some(count) = &model.request_count
            && count.freshness == Freshness::Fresh
            && count.value.is_finite()
        {
            request_counts.insert(format!("{}/{}", key.namespace, key.model_id), count.value);
        }
    }
    replicas.sort_by(|a, b| (&a.namespace, &a.pod).cmp(&(&b.namespace, &b.pod)));
    replicas.dedup_by(|a, b| a.namespace == b.namespace && a.pod == b.pod);

    CycleInput {
        now: Some(now),
        config: inventory.saturation.entries().clone(),
        scale_to_zero: Some(scale_to_zero_entries(inventory)),
        variants,
        replicas,
        request_counts: (!request_counts.is_empty()).then_some(request_counts),
        gpu_inventory: inventory.gpu_inventory.clone(),
        state,
    }
}

/// The accepted scale-to-zero entries with the operator's fallback written into `default`, so
/// that a replay of the recorded input needs no extra value (spec/core.md §2.3).
fn scale_to_zero_entries(inventory: &InventorySnapshot) -> BTreeMap<String, ScaleToZeroEntry> {
    let mut entries = inventory.scale_to_zero.entries().clone();
    let default = entries
        .entry(DEFAULT_KEY.to_string())
        .or_insert_with(|| ScaleToZeroEntry {
            model_id: None,
            namespace: None,
            enable_scale_to_zero: None,
            retention_period: None,
        });
    if default.enable_scale_to_zero.is_none() {
        default.enable_scale_to_zero = Some(inventory.scale_to_zero_fallback);
    }
    entries
}
