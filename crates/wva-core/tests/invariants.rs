//! Property tests of spec/core.md §9 (invariants 1–10 and 12) over generated cycles.

// Test helpers outside #[test] functions unwrap too; failures are test failures.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use proptest::prelude::*;
use wva_core::{
    Action, Availability, CycleInput, CycleReport, Freshness, ModelAnalysis, Reason,
    ReplicaMetrics, SaturationEntry, ScaleToZeroEntry, VariantState, normalize_accelerator, plan,
};

const ACCELERATORS: [&str; 4] = ["H100", "A100", "NVIDIA-A100-SXM4-40GB", ""];

#[derive(Debug, Clone)]
struct GenReplica {
    kv: f64,
    queue: u8,
    geometry: Option<u16>,
    avg_in: Option<u16>,
    avg_out: Option<u16>,
    freshness: u8,
}

#[derive(Debug, Clone)]
struct GenVariant {
    cost: u8,
    current: u8,
    ready: u8,
    desired: u8,
    gpus: u8,
    accelerator: usize,
    args: bool,
    replicas: Vec<GenReplica>,
}

#[derive(Debug, Clone)]
struct GenModel {
    v2: bool,
    variants: Vec<GenVariant>,
    request_count: Option<u8>,
}

#[derive(Debug, Clone)]
struct GenConfig {
    kv: f64,
    kv_spare: f64,
    queue: u8,
    queue_spare: u8,
    up: f64,
    down_fraction: f64,
    scale_to_zero: bool,
    limiter: Option<u8>,
}

fn replica() -> impl Strategy<Value = GenReplica> {
    (
        prop_oneof![Just(0.0), Just(0.8), Just(1.0), 0.0f64..1.0],
        0u8..10,
        prop::option::weighted(0.8, 1u16..3000),
        prop::option::of(1u16..2000),
        prop::option::of(1u16..800),
        prop_oneof![6 => Just(0u8), 1 => Just(1u8), 1 => Just(2u8)],
    )
        .prop_map(
            |(kv, queue, geometry, avg_in, avg_out, freshness)| GenReplica {
                kv,
                queue,
                geometry,
                avg_in,
                avg_out,
                freshness,
            },
        )
}

fn variant() -> impl Strategy<Value = GenVariant> {
    (
        (
            0u8..50,
            0u8..5,
            0u8..5,
            0u8..6,
            0u8..3,
            0usize..4,
            any::<bool>(),
        ),
        prop::collection::vec(replica(), 0..=8),
    )
        .prop_map(
            |((cost, current, ready, desired, gpus, accelerator, args), replicas)| GenVariant {
                cost,
                current,
                ready,
                desired,
                gpus,
                accelerator,
                args,
                replicas,
            },
        )
}

fn model() -> impl Strategy<Value = GenModel> {
    (
        any::<bool>(),
        prop::collection::vec(variant(), 1..=6),
        prop::option::of(0u8..3),
    )
        .prop_map(|(v2, variants, request_count)| GenModel {
            v2,
            variants,
            request_count,
        })
}

fn config() -> impl Strategy<Value = GenConfig> {
    (
        0.3f64..=1.0,
        0.0f64..=0.3,
        0u8..10,
        0u8..6,
        0.5f64..=1.0,
        0.1f64..0.95,
        any::<bool>(),
        prop::option::of(0u8..20),
    )
        .prop_map(
            |(kv, kv_spare, queue, queue_spare, up, down_fraction, scale_to_zero, limiter)| {
                GenConfig {
                    kv,
                    kv_spare,
                    queue,
                    queue_spare,
                    up,
                    down_fraction,
                    scale_to_zero,
                    limiter,
                }
            },
        )
}

fn build(models: &[GenModel], cfg: &GenConfig) -> CycleInput {
    let mut variants = Vec::new();
    let mut replicas = Vec::new();
    let mut request_counts = BTreeMap::new();
    let mut config = BTreeMap::new();
    config.insert(
        "default".to_string(),
        SaturationEntry {
            kv_cache_threshold: Some(cfg.kv),
            kv_spare_trigger: Some(cfg.kv_spare.min(cfg.kv)),
            queue_length_threshold: Some(f64::from(cfg.queue)),
            queue_spare_trigger: Some(f64::from(cfg.queue_spare)),
            scale_up_threshold: Some(cfg.up),
            scale_down_boundary: Some(cfg.up * cfg.down_fraction),
            enable_limiter: cfg.limiter.map(|_| true),
            ..Default::default()
        },
    );
    for (mi, m) in models.iter().enumerate() {
        let model_id = format!("org/model-{mi}");
        let namespace = if mi % 2 == 0 { "ns-a" } else { "ns-b" };
        if m.v2 {
            config.insert(
                format!("v2-{mi}"),
                SaturationEntry {
                    model_id: Some(model_id.clone()),
                    namespace: Some(namespace.to_string()),
                    analyzer_name: Some("saturation".into()),
                    ..Default::default()
                },
            );
        }
        if let Some(c) = m.request_count {
            request_counts.insert(format!("{namespace}/{model_id}"), f64::from(c));
        }
        for (vi, v) in m.variants.iter().enumerate() {
            let name = format!("m{mi}-v{vi}");
            variants.push(VariantState {
                name: name.clone(),
                namespace: namespace.into(),
                model_id: model_id.clone(),
                accelerator: ACCELERATORS[v.accelerator].into(),
                cost: f64::from(v.cost),
                current_replicas: u32::from(v.current),
                ready_replicas: u32::from(v.ready),
                desired_replicas: u32::from(v.desired),
                gpus_per_replica: u32::from(v.gpus),
                vllm_args: v
                    .args
                    .then(|| vec!["vllm".into(), "--max-num-seqs".into(), "64".into()]),
            });
            for (ri, r) in v.replicas.iter().enumerate() {
                replicas.push(ReplicaMetrics {
                    pod: format!("{name}-p{ri}"),
                    namespace: namespace.into(),
                    variant: name.clone(),
                    kv_cache_usage: r.kv,
                    queue_length: f64::from(r.queue),
                    num_gpu_blocks: r.geometry.map(u64::from),
                    block_size: r.geometry.map(|_| 16),
                    avg_input_tokens: r.avg_in.map(f64::from),
                    avg_output_tokens: r.avg_out.map(f64::from),
                    prefix_cache_hit_rate: None,
                    request_rate: None,
                    freshness: [Freshness::Fresh, Freshness::Stale, Freshness::Unavailable]
                        [usize::from(r.freshness)],
                });
            }
        }
    }
    CycleInput {
        now: Some(wva_core::Timestamp::parse("2026-03-01T12:00:00Z").unwrap()),
        config,
        scale_to_zero: Some(BTreeMap::from([(
            "default".to_string(),
            ScaleToZeroEntry {
                enable_scale_to_zero: Some(cfg.scale_to_zero),
                ..Default::default()
            },
        )])),
        variants,
        replicas,
        request_counts: Some(request_counts),
        gpu_inventory: cfg.limiter.map(|n| {
            BTreeMap::from([
                ("A100".to_string(), u64::from(n)),
                ("H100".to_string(), u64::from(n) / 2),
            ])
        }),
        state: None,
    }
}

/// Deterministic Fisher–Yates shuffle driven by a seed.
fn shuffle<T>(items: &mut [T], mut seed: u64) {
    for i in (1..items.len()).rev() {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let j = (seed >> 33) as usize % (i + 1);
        items.swap(i, j);
    }
}

fn json(report: &CycleReport) -> (String, String, String) {
    (
        serde_json::to_string(&report.models).unwrap(),
        serde_json::to_string(&report.decisions).unwrap(),
        serde_json::to_string(&report.state).unwrap(),
    )
}

/// Decisions grouped by (namespace, modelID), with the model's analysis.
fn by_model(report: &CycleReport) -> Vec<(&wva_core::ModelReport, Vec<&wva_core::Decision>)> {
    report
        .models
        .iter()
        .map(|m| {
            let ds = report
                .decisions
                .iter()
                .filter(|d| d.namespace == m.namespace && d.model_id == m.model_id)
                .collect();
            (m, ds)
        })
        .collect()
}

fn variant_of<'a>(input: &'a CycleInput, d: &wva_core::Decision) -> &'a VariantState {
    input
        .variants
        .iter()
        .find(|v| v.namespace == d.namespace && v.name == d.variant)
        .unwrap()
}

fn scenario() -> impl Strategy<Value = (Vec<GenModel>, GenConfig, u64)> {
    (
        prop::collection::vec(model(), 1..=3),
        config(),
        any::<u64>(),
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn order_of_variants_replicas_and_state_never_matters((models, cfg, seed) in scenario()) {
        let input = build(&models, &cfg);
        let first = plan(&input).unwrap();
        let mut shuffled = input.clone();
        shuffle(&mut shuffled.variants, seed);
        shuffle(&mut shuffled.replicas, seed ^ 0x9e37_79b9);
        prop_assert_eq!(json(&first), json(&plan(&shuffled).unwrap()));
        // Carry the state into a second cycle, with its lists permuted.
        let mut doc = first.state.to_document();
        shuffle(&mut doc.capacity, seed);
        shuffle(&mut doc.history, seed.rotate_left(7));
        let mut next = input.clone();
        next.state = Some(first.state.clone());
        let mut next_shuffled = shuffled.clone();
        next_shuffled.state = Some(wva_core::CoreState::from_document(&doc).unwrap());
        prop_assert_eq!(json(&plan(&next).unwrap()), json(&plan(&next_shuffled).unwrap()));
    }

    #[test]
    fn replaying_the_report_input_reproduces_the_report((models, cfg, _seed) in scenario()) {
        let input = build(&models, &cfg);
        let report = plan(&input).unwrap();
        let text = report.to_json().unwrap();
        let back: CycleReport = serde_json::from_str(&text).unwrap();
        let replay_input = CycleInput::from_json(&serde_json::to_string(&back.input).unwrap()).unwrap();
        let replay = plan(&replay_input).unwrap();
        prop_assert_eq!(replay.to_json().unwrap(), text);
        // And the state carried forward replays too.
        let mut next = input.clone();
        next.state = Some(report.state.clone());
        let second = plan(&next).unwrap();
        let second_text = second.to_json().unwrap();
        let again = plan(&CycleInput::from_json(&serde_json::to_string(&second.input).unwrap()).unwrap()).unwrap();
        prop_assert_eq!(again.to_json().unwrap(), second_text);
    }

    #[test]
    fn per_model_invariants_hold((models, cfg, _seed) in scenario()) {
        let input = build(&models, &cfg);
        let report = plan(&input).unwrap();
        report.check_finite().unwrap();
        for (m, ds) in by_model(&report) {
            let availability = m.analysis.availability();
            let reasons: Vec<Reason> = ds.iter().map(|d| d.reason).collect();
            // 4. Unavailable holds.
            if availability == Availability::Unavailable {
                for d in &ds {
                    prop_assert_eq!(d.target_replicas, variant_of(&input, d).hold());
                    prop_assert_eq!(d.reason, Reason::MetricsUnavailable);
                }
            }
            // 5. No scale-down on stale.
            if availability == Availability::Stale {
                for d in &ds {
                    let v = variant_of(&input, d);
                    prop_assert!(d.target_replicas >= v.hold().min(v.current_replicas), "{:?}", d);
                }
            }
            // 6. Scale-to-zero needs proof.
            if reasons.contains(&Reason::ScaleToZero) {
                prop_assert!(cfg.scale_to_zero);
                prop_assert_eq!(availability, Availability::Fresh);
                let key = format!("{}/{}", m.namespace, m.model_id);
                prop_assert_eq!(input.request_counts.as_ref().unwrap().get(&key).copied(), Some(0.0));
            }
            // 7. Floor.
            if availability != Availability::Unavailable {
                let sum: u32 = ds.iter().map(|d| d.target_replicas).sum();
                prop_assert!(sum >= 1 || reasons.contains(&Reason::ScaleToZero) || reasons.contains(&Reason::GpuLimited), "{:?}", ds);
            }
            // 9. V2 signals and optimizer direction.
            if let ModelAnalysis::V2(a) = &m.analysis {
                prop_assert!(!(a.required_capacity > 0.0 && a.spare_capacity > 0.0));
                if reasons.contains(&Reason::CapacityRequired) { prop_assert!(a.required_capacity > 0.0); }
                if reasons.contains(&Reason::SpareCapacity) { prop_assert!(a.spare_capacity > 0.0); }
            }
        }
        // 12. Actions agree with targets.
        for d in &report.decisions {
            prop_assert_eq!(d.action, Action::between(d.current_replicas, d.target_replicas));
        }
    }

    #[test]
    fn v1_moves_at_most_one_replica_per_model((models, mut cfg, _seed) in scenario()) {
        // Property 3 concerns the analyzer's reasons; the limiter may overwrite them.
        cfg.limiter = None;
        let input = build(&models, &cfg);
        let report = plan(&input).unwrap();
        for (m, ds) in by_model(&report) {
            let reasons: Vec<Reason> = ds.iter().map(|d| d.reason).collect();
            if m.analyzer == "saturation-v1"
                && !reasons.iter().any(|r| matches!(r, Reason::InTransition | Reason::MetricsUnavailable | Reason::ScaleToZero | Reason::MinimumReplicas))
            {
                let mut steps = 0i64;
                for d in &ds {
                    let v = variant_of(&input, d);
                    let delta = i64::from(d.target_replicas) - i64::from(d.current_replicas);
                    steps += delta.abs();
                    prop_assert!(delta == 0 || (delta == 1 && v.pending_replicas() == 0) || (delta == -1 && d.current_replicas > 1), "{:?}", d);
                }
                prop_assert!(steps <= 1);
            }
        }
    }

    #[test]
    fn removing_the_request_count_removes_every_scale_to_zero((models, cfg, _seed) in scenario()) {
        let mut input = build(&models, &cfg);
        input.request_counts = None;
        let report = plan(&input).unwrap();
        prop_assert!(report.decisions.iter().all(|d| d.reason != Reason::ScaleToZero));
    }

    #[test]
    fn limiter_only_lowers_scale_ups_within_available_gpus((models, mut cfg, _seed) in scenario(), gpus in 0u8..20) {
        cfg.limiter = Some(gpus);
        let limited_input = build(&models, &cfg);
        let limited = plan(&limited_input).unwrap();
        let mut free = limited_input.clone();
        free.config.get_mut("default").unwrap().enable_limiter = None;
        let unlimited = plan(&free).unwrap();
        let inventory = limited_input.gpu_inventory.clone().unwrap();
        let mut used: BTreeMap<String, u64> = BTreeMap::new();
        for d in &limited.decisions {
            if !d.accelerator.is_empty() {
                let v = variant_of(&limited_input, d);
                *used.entry(normalize_accelerator(&d.accelerator)).or_default() += u64::from(v.gpus()) * u64::from(d.current_replicas);
            }
        }
        let mut granted: BTreeMap<String, u64> = BTreeMap::new();
        for (l, u) in limited.decisions.iter().zip(&unlimited.decisions) {
            prop_assert!(l.target_replicas <= u.target_replicas);
            if l.target_replicas != u.target_replicas {
                prop_assert!(u.target_replicas > u.current_replicas);
                prop_assert!(l.target_replicas >= l.current_replicas);
                prop_assert_eq!(l.reason, Reason::GpuLimited);
            }
            let is_v1 = limited.models.iter().any(|m| m.namespace == l.namespace && m.model_id == l.model_id && m.analyzer == "saturation-v1");
            if is_v1 && l.target_replicas > l.current_replicas && !matches!(l.reason, Reason::MinimumReplicas | Reason::MetricsUnavailable) && !l.accelerator.is_empty() {
                let v = variant_of(&limited_input, l);
                *granted.entry(normalize_accelerator(&l.accelerator)).or_default() += u64::from(v.gpus()) * u64::from(l.target_replicas - l.current_replicas);
            }
        }
        for (t, g) in granted {
            let limit = inventory.get(&t).copied().unwrap_or(0);
            let available = limit.saturating_sub(used.get(&t).copied().unwrap_or(0));
            prop_assert!(g <= available, "type {} granted {} available {}", t, g, available);
        }
    }

    #[test]
    fn v1_no_change_is_a_fixed_point((models, cfg, _seed) in scenario()) {
        let input = build(&models, &cfg);
        let report = plan(&input).unwrap();
        if report.decisions.iter().all(|d| d.action == Action::NoChange) {
            let mut again = input.clone();
            for v in &mut again.variants {
                let d = report.decisions.iter().find(|d| d.namespace == v.namespace && d.variant == v.name).unwrap();
                let v1 = report.models.iter().any(|m| m.namespace == v.namespace && m.model_id == v.model_id && m.analyzer == "saturation-v1");
                if v1 {
                    v.desired_replicas = d.target_replicas;
                }
            }
            let next = plan(&again).unwrap();
            for d in &next.decisions {
                let v1 = next.models.iter().any(|m| m.namespace == d.namespace && m.model_id == d.model_id && m.analyzer == "saturation-v1");
                if v1 {
                    prop_assert_eq!(d.action, Action::NoChange, "{:?}", d);
                }
            }
        }
    }
}
