//! Small builders for tests (`mk_variant`, `mk_replica`, `mk_input`).

use std::collections::BTreeMap;

use crate::{
    CycleInput, CycleReport, Decision, Freshness, ReplicaMetrics, SaturationEntry, VariantState,
};

pub(crate) fn mk_variant(name: &str, model: &str, cost: f64, current: u32) -> VariantState {
    VariantState {
        name: name.to_string(),
        namespace: "ns".to_string(),
        model_id: model.to_string(),
        accelerator: "A100".to_string(),
        cost,
        current_replicas: current,
        ready_replicas: current,
        desired_replicas: current,
        gpus_per_replica: 1,
        vllm_args: None,
    }
}

pub(crate) fn mk_replica(pod: &str, variant: &str, kv: f64, queue: f64) -> ReplicaMetrics {
    ReplicaMetrics {
        pod: pod.to_string(),
        namespace: "ns".to_string(),
        variant: variant.to_string(),
        kv_cache_usage: kv,
        queue_length: queue,
        num_gpu_blocks: None,
        block_size: None,
        avg_input_tokens: None,
        avg_output_tokens: None,
        prefix_cache_hit_rate: None,
        request_rate: None,
        freshness: Freshness::Fresh,
    }
}

pub(crate) fn mk_input(variants: Vec<VariantState>, replicas: Vec<ReplicaMetrics>) -> CycleInput {
    CycleInput {
        now: None,
        config: BTreeMap::new(),
        scale_to_zero: None,
        variants,
        replicas,
        request_counts: None,
        gpu_inventory: None,
        state: None,
    }
}

pub(crate) fn v2_config() -> BTreeMap<String, SaturationEntry> {
    BTreeMap::from([(
        "default".to_string(),
        SaturationEntry {
            analyzer_name: Some("saturation".to_string()),
            ..Default::default()
        },
    )])
}

pub(crate) fn decision<'a>(report: &'a CycleReport, variant: &str) -> &'a Decision {
    report
        .decisions
        .iter()
        .find(|d| d.variant == variant)
        .unwrap_or_else(|| panic!("no decision for {variant}"))
}

pub(crate) fn targets(report: &CycleReport) -> Vec<(String, u32)> {
    report
        .decisions
        .iter()
        .map(|d| (d.variant.clone(), d.target_replicas))
        .collect()
}
