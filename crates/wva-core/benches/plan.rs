//! Criterion benchmark of `wva_core::plan` at 100, 1,000 and 10,000 variants (4 replicas each,
//! 4 variants per model, V1 and V2 models mixed, half of the V2 variants with stored state).

use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::Duration;

use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use wva_core::{
    CapacityRecord, CoreState, CycleInput, Freshness, LearnedFrom, ReplicaMetrics, SaturationEntry,
    Timestamp, VariantState, VllmParams, plan_owned,
};

/// Builds a deterministic fleet of `variants` variants.
fn fleet(variants: usize) -> CycleInput {
    let now = Timestamp::parse("2026-03-01T12:00:00Z").expect("timestamp");
    let mut vs = Vec::with_capacity(variants);
    let mut rs = Vec::with_capacity(variants * 4);
    let mut capacity = Vec::new();
    for i in 0..variants {
        let model = i / 4;
        let v2 = model % 2 == 1;
        let namespace = if v2 { "team-v2" } else { "team-v1" }.to_string();
        let name = format!("variant-{i:05}");
        let accelerator = ["H100", "A100", "NVIDIA-L40S", "MI300X"][i % 4].to_string();
        vs.push(VariantState {
            name: name.clone(),
            namespace: namespace.clone(),
            model_id: format!("model-{model:05}"),
            accelerator: accelerator.clone(),
            cost: 10.0 + (i % 4) as f64 * 7.5,
            current_replicas: 4,
            ready_replicas: 4,
            desired_replicas: 4,
            gpus_per_replica: 1,
            vllm_args: (v2 && i % 2 == 0).then(|| {
                vec![
                    "vllm".into(),
                    "serve".into(),
                    "--max-num-seqs".into(),
                    "128".into(),
                ]
            }),
        });
        if v2 && i % 2 == 1 {
            capacity.push(CapacityRecord {
                namespace: namespace.clone(),
                model_id: format!("model-{model:05}"),
                variant: name.clone(),
                accelerator,
                gpu_count: 1,
                num_gpu_blocks: 2000,
                block_size: 16,
                total_kv_capacity_tokens: 32000,
                effective_capacity: 25600,
                vllm_params: Some(VllmParams::default()),
                learned_from: LearnedFrom::Live,
                learned_at: now,
            });
        }
        for p in 0..4 {
            let load = ((i * 7 + p * 13) % 100) as f64 / 100.0;
            rs.push(ReplicaMetrics {
                pod: format!("{name}-pod-{p}"),
                namespace: namespace.clone(),
                variant: name.clone(),
                kv_cache_usage: load,
                queue_length: ((i + p) % 7) as f64,
                num_gpu_blocks: Some(2000),
                block_size: Some(16),
                avg_input_tokens: Some(800.0 + p as f64),
                avg_output_tokens: Some(150.0),
                prefix_cache_hit_rate: Some(0.2),
                request_rate: Some(1.5),
                freshness: Freshness::Fresh,
            });
        }
    }
    let state = CoreState::from_document(&wva_core::state::StateDocument {
        capacity,
        history: vec![],
    })
    .expect("state");
    CycleInput {
        now: Some(now),
        config: BTreeMap::from([(
            "v2".to_string(),
            SaturationEntry {
                namespace: Some("team-v2".into()),
                analyzer_name: Some("saturation".into()),
                ..Default::default()
            },
        )]),
        scale_to_zero: None,
        variants: vs,
        replicas: rs,
        request_counts: None,
        gpu_inventory: None,
        state: Some(state),
    }
}

/// CPU time of this thread (Linux `/proc/thread-self/schedstat`), so that figures stay
/// comparable on a machine shared with other builds; `None` elsewhere.
fn thread_cpu_time() -> Option<Duration> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let nanos: u64 = text.split_whitespace().next()?.parse().ok()?;
    Some(Duration::from_nanos(nanos))
}

fn bench_plan_cpu(c: &mut Criterion) {
    if thread_cpu_time().is_none() {
        return;
    }
    let mut group = c.benchmark_group("plan_cpu");
    group.sample_size(10);
    for n in [100usize, 1_000, 10_000] {
        let input = fleet(n);
        group.throughput(Throughput::Elements(n as u64));
        group.bench_with_input(BenchmarkId::from_parameter(n), &input, |b, input| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    // The engine hands over a freshly built input; copying and dropping it is
                    // not part of planning.
                    let owned = input.clone();
                    let start = thread_cpu_time().unwrap_or_default();
                    let report = plan_owned(black_box(owned)).expect("plan");
                    total += thread_cpu_time().unwrap_or_default().saturating_sub(start);
                    drop(black_box(report));
                }
                total
            })
        });
    }
    group.finish();
}

fn bench_plan(c: &mut Criterion) {
    let mut group = c.benchmark_group("plan");
    group.sample_size(10);
    for n in [100usize, 1_000, 10_000] {
        let input = fleet(n);
        group.throughput(Throughput::Elements(n as u64));
        group.bench_with_input(BenchmarkId::from_parameter(n), &input, |b, input| {
            b.iter_batched(
                || input.clone(),
                |owned| plan_owned(black_box(owned)).expect("plan"),
                BatchSize::LargeInput,
            )
        });
    }
    group.finish();
}

criterion_group!(benches, bench_plan, bench_plan_cpu);
criterion_main!(benches);
