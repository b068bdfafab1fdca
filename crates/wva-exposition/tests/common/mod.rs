//! Fixtures shared by the integration tests of wva-exposition.
#![allow(dead_code, clippy::unwrap_used)]

use std::time::{Duration, UNIX_EPOCH};

use wva_core::{Action, Reason};
use wva_exposition::{
    BuildInfo, CacheLookup, CyclePhase, CycleTrigger, Exposition, ExpositionConfig, MetricsNaming,
    Outcome, PublishedVariant, VariantKey,
};

/// An exposition with fixed build information.
pub fn exposition(naming: MetricsNaming, instance: Option<&str>) -> Exposition {
    Exposition::new(ExpositionConfig {
        naming,
        controller_instance: instance.map(str::to_owned),
        build_info: BuildInfo::new("0.1.0", "abc1234", "1.95.0"),
        leader_elect: false,
    })
    .unwrap()
}

/// A resolved variant in namespace `llm-d-sim`.
pub fn variant(
    name: &str,
    accel: &str,
    current: u32,
    desired: u32,
    reason: Reason,
) -> PublishedVariant {
    PublishedVariant::new(
        VariantKey::new("llm-d-sim", name),
        accel,
        current,
        desired,
        reason,
    )
}

/// Publishes two cycles and feeds every self-metric once, with values chosen for the golden file.
pub fn populate(e: &Exposition) {
    e.publish(&[
        variant("vllm-llama-h100", "H100", 1, 1, Reason::Steady).with_baseline(1),
        variant("vllm-llama-a100", "A100", 3, 3, Reason::Steady).with_baseline(3),
    ]);
    e.publish(&[
        variant("vllm-llama-h100", "H100", 1, 2, Reason::KvCacheSaturation),
        variant("vllm-llama-a100", "A100", 3, 2, Reason::SpareCapacity),
    ]);
    let m = e.self_metrics();
    m.observe_cycle(
        CycleTrigger::Periodic,
        Outcome::Ok,
        Duration::from_millis(120),
    );
    m.observe_phase(CyclePhase::Collect, Duration::from_millis(80));
    m.set_last_successful_cycle(UNIX_EPOCH + Duration::from_secs(1_780_000_000));
    m.observe_query("kv_cache_usage", Duration::from_millis(30), None);
    m.observe_query("queue_length", Duration::from_millis(7), Some("timeout"));
    m.observe_cache("kv_cache_usage", CacheLookup::Hit);
    m.observe_cache("queue_length", CacheLookup::Miss);
    m.set_metric_age(
        "llm-d-sim",
        "unsloth/Meta-Llama-3.1-8B",
        Duration::from_millis(2500),
    );
    m.set_metric_age("llm-d-sim", "odd\"model\\name\nx", Duration::from_secs(1));
    m.record_decision(Action::ScaleUp, Reason::KvCacheSaturation);
}

pub mod http;
pub mod prometheus;
