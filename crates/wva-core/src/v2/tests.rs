use crate::model::{Outcome, VariantView};
use crate::optimizer::cost_aware;
use crate::report::{Availability, CapacitySource, ModelAnalysis, V2Analysis, V2VariantAnalysis};
use crate::testkit::{decision, mk_input, mk_replica, mk_variant, v2_config};
use crate::{CycleInput, CycleReport, LearnedFrom, Reason, ReplicaMetrics, Timestamp, plan};

fn geo(mut r: ReplicaMetrics, blocks: u64, avg_in: f64, avg_out: f64) -> ReplicaMetrics {
    r.num_gpu_blocks = Some(blocks);
    r.block_size = Some(16);
    r.avg_input_tokens = Some(avg_in);
    r.avg_output_tokens = Some(avg_out);
    r
}

fn v2(report: &CycleReport) -> &V2Analysis {
    match &report.models[0].analysis {
        ModelAnalysis::V2(a) => a,
        other => panic!("not V2: {other:?}"),
    }
}

fn v2_input(variants: Vec<crate::VariantState>, replicas: Vec<ReplicaMetrics>) -> CycleInput {
    let mut input = mk_input(variants, replicas);
    input.config = v2_config();
    input.now = Some(Timestamp::parse("2026-03-01T12:00:00Z").unwrap());
    input
}

#[test]
fn example_3_spare_below_one_replica_removes_nothing() {
    let input = v2_input(
        vec![mk_variant("v", "m", 1.0, 1)],
        vec![geo(mk_replica("p", "v", 0.5, 2.0), 1250, 300.7, 50.0)],
    );
    let report = plan(&input).unwrap();
    let a = v2(&report);
    assert_eq!(report.models[0].analyzer, "saturation-token-based");
    assert_eq!(a.availability, Availability::Fresh);
    assert_eq!(
        (a.total_demand, a.total_supply, a.anticipated_supply),
        (10600, 16000, 16000)
    );
    assert_eq!(a.required_capacity, 0.0);
    assert!((a.spare_capacity - (16000.0 - 10600.0 / 0.7)).abs() < 1e-9);
    assert_eq!(a.variants[0].capacity_source, CapacitySource::Replicas);
    let d = decision(&report, "v");
    assert_eq!(
        (d.target_replicas, d.reason, d.detail.as_str()),
        (1, Reason::Steady, "V2 steady state")
    );
    let rec = report.state.capacity.get("ns", "m", "v").unwrap();
    assert_eq!(
        (
            rec.effective_capacity,
            rec.total_kv_capacity_tokens,
            rec.learned_from
        ),
        (16000, 20000, LearnedFrom::Live)
    );
}

#[test]
fn observed_k2_is_pushed_to_history_and_lowers_capacity() {
    // queue 5 ≥ trunc(5) and inUse 18000 > 0: k2 = inUse; effective = min(16000, 18000).
    let input = v2_input(
        vec![mk_variant("v", "m", 1.0, 1)],
        vec![geo(mk_replica("p", "v", 0.6, 5.0), 1250, 100.0, 50.0)],
    );
    let report = plan(&input).unwrap();
    let h: Vec<_> = report.state.history.entries().collect();
    assert_eq!(h.len(), 1);
    assert_eq!(h[0].key, "m|A100|short");
    assert_eq!(h[0].values.iter().copied().collect::<Vec<_>>(), vec![12000]);
    assert_eq!(v2(&report).variants[0].per_replica_capacity, 12000);
    // Demand 12000 + 5 × 100 = 12500 > 12000 / 0.85 − 12000: scale up by one replica.
    let d = decision(&report, "v");
    assert_eq!((d.target_replicas, d.reason), (2, Reason::CapacityRequired));
    assert!(
        d.detail
            .starts_with("V2 scale-up (optimizer: cost-aware, required: "),
        "{}",
        d.detail
    );
}

#[test]
fn history_mean_is_used_when_the_queue_is_short() {
    let mut input = v2_input(
        vec![mk_variant("v", "m", 1.0, 1)],
        vec![geo(mk_replica("p", "v", 0.6, 5.0), 1250, 100.0, 50.0)],
    );
    let first = plan(&input).unwrap();
    input.state = Some(first.state.clone());
    input.replicas = vec![geo(mk_replica("p", "v", 0.1, 0.0), 1250, 100.0, 50.0)];
    let second = plan(&input).unwrap();
    assert_eq!(v2(&second).variants[0].per_replica_capacity, 12000);
}

#[test]
fn derived_k2_comes_from_vllm_args() {
    let mut v = mk_variant("v", "m", 1.0, 1);
    v.vllm_args = Some(vec![
        "vllm".into(),
        "serve".into(),
        "--max-num-seqs".into(),
        "4".into(),
    ]);
    // n = min(8192 × 100 / 1100, 4) = 4; k2 = trunc(4 × (1000 + 50)) = 4200 < k1 16000.
    let input = v2_input(
        vec![v],
        vec![geo(mk_replica("p", "v", 0.1, 0.0), 1250, 1000.0, 100.0)],
    );
    let report = plan(&input).unwrap();
    assert_eq!(v2(&report).variants[0].per_replica_capacity, 4200);
    let rec = report.state.capacity.get("ns", "m", "v").unwrap();
    assert_eq!(rec.vllm_params.as_ref().unwrap().max_num_seqs, 4);
}

#[test]
fn live_capacity_is_the_median_of_replicas() {
    let mut v = mk_variant("v", "m", 1.0, 4);
    v.desired_replicas = 4;
    let reps = vec![
        geo(mk_replica("p1", "v", 0.1, 0.0), 1000, 10.0, 10.0), // k1 12800
        geo(mk_replica("p2", "v", 0.1, 0.0), 1250, 10.0, 10.0), // 16000
        geo(mk_replica("p3", "v", 0.1, 0.0), 1001, 10.0, 10.0), // 12812
        geo(mk_replica("p4", "v", 0.1, 0.0), 2000, 10.0, 10.0), // 25600
    ];
    let report = plan(&v2_input(vec![v], reps)).unwrap();
    // Sorted: 12800, 12812, 16000, 25600 ⇒ (12812 + 16000) / 2 = 14406.
    assert_eq!(v2(&report).variants[0].per_replica_capacity, 14406);
    // Geometry of the first contributing pod.
    assert_eq!(
        report
            .state
            .capacity
            .get("ns", "m", "v")
            .unwrap()
            .num_gpu_blocks,
        1000
    );
}

#[test]
fn replica_without_geometry_contributes_nothing_and_makes_the_model_stale() {
    let reps = vec![
        geo(mk_replica("p1", "v", 0.5, 0.0), 1250, 10.0, 10.0),
        mk_replica("p2", "v", 0.9, 9.0),
    ];
    let report = plan(&v2_input(vec![mk_variant("v", "m", 1.0, 2)], reps)).unwrap();
    let a = v2(&report);
    assert_eq!(a.availability, Availability::Stale);
    assert_eq!(a.total_demand, 10000);
}

#[test]
fn deployment_record_gives_stored_capacity_to_a_variant_without_replicas() {
    let mut a = mk_variant("a", "m", 1.0, 1);
    a.vllm_args = Some(vec![
        "vllm".into(),
        "--max-num-batched-tokens".into(),
        "4096".into(),
    ]);
    let b = mk_variant("b", "m", 1.0, 1);
    let input = v2_input(
        vec![a, b],
        vec![geo(mk_replica("b1", "b", 0.1, 0.0), 1250, 0.0, 0.0)],
    );
    let report = plan(&input).unwrap();
    let rows = &v2(&report).variants;
    // No token means ⇒ stored estimate is the record's effectiveCapacity (the batch budget).
    assert_eq!(
        (rows[0].capacity_source, rows[0].per_replica_capacity),
        (CapacitySource::Stored, 4096)
    );
    assert_eq!(rows[0].total_demand, 0);
    let rec = report.state.capacity.get("ns", "m", "a").unwrap();
    assert_eq!(rec.learned_from, LearnedFrom::Deployment);
    assert_eq!(rec.total_kv_capacity_tokens, 0);
}

#[test]
fn stored_deployment_estimate_uses_token_means_and_kv_bound() {
    let mut a = mk_variant("a", "m", 1.0, 1);
    a.vllm_args = Some(vec![
        "vllm".into(),
        "--num-gpu-blocks-override".into(),
        "100".into(),
    ]);
    let b = mk_variant("b", "m", 1.0, 1);
    let input = v2_input(
        vec![a, b],
        vec![geo(mk_replica("b1", "b", 0.1, 0.0), 1250, 900.0, 100.0)],
    );
    let report = plan(&input).unwrap();
    let row = &v2(&report).variants[0];
    // estimate = 243200; bounded by trunc(1600 × 0.8) = 1280.
    assert_eq!(
        (row.capacity_source, row.per_replica_capacity),
        (CapacitySource::Stored, 1280)
    );
}

#[test]
fn live_record_is_not_replaced_by_a_deployment_record() {
    let mut v = mk_variant("v", "m", 1.0, 1);
    v.vllm_args = Some(vec!["vllm".into()]);
    let mut input = v2_input(
        vec![v],
        vec![geo(mk_replica("p", "v", 0.1, 0.0), 1250, 10.0, 10.0)],
    );
    let first = plan(&input).unwrap();
    input.state = Some(first.state);
    input.replicas.clear();
    let second = plan(&input).unwrap();
    let rec = second.state.capacity.get("ns", "m", "v").unwrap();
    assert_eq!(rec.learned_from, LearnedFrom::Live);
}

#[test]
fn v1_models_write_no_v2_state() {
    let mut v = mk_variant("v", "m", 1.0, 1);
    v.vllm_args = Some(vec!["vllm".into()]);
    let mut input = v2_input(
        vec![v],
        vec![geo(mk_replica("p", "v", 0.1, 0.0), 1250, 10.0, 10.0)],
    );
    input.config.clear();
    let report = plan(&input).unwrap();
    assert!(report.state.capacity.is_empty() && report.state.history.is_empty());
}

fn view_fixture() -> Vec<crate::VariantState> {
    let mut big = mk_variant("big", "m", 20.0, 2);
    big.ready_replicas = 2;
    let small = mk_variant("small", "m", 5.0, 1);
    vec![big, small]
}

fn analysis(required: f64, spare: f64, caps: &[i64]) -> V2Analysis {
    V2Analysis {
        availability: Availability::Fresh,
        total_supply: 0,
        anticipated_supply: 0,
        total_demand: 0,
        utilization: 0.0,
        required_capacity: required,
        spare_capacity: spare,
        avg_input_tokens: 0.0,
        avg_output_tokens: 0.0,
        prefix_cache_hit_rate: 0.0,
        variants: caps
            .iter()
            .map(|c| V2VariantAnalysis {
                name: String::new(),
                accelerator: String::new(),
                cost: 0.0,
                ready_replicas: 0,
                pending_replicas: 0,
                per_replica_capacity: *c,
                capacity_source: CapacitySource::Replicas,
                total_capacity: 0,
                total_demand: 0,
                utilization: 0.0,
            })
            .collect(),
    }
}

fn run(states: &[crate::VariantState], a: &V2Analysis) -> Vec<Outcome> {
    let views: Vec<VariantView<'_>> = states
        .iter()
        .map(|s| VariantView {
            state: s,
            records: vec![],
        })
        .collect();
    cost_aware(&views, a)
}

#[test]
fn example_4_spare_removes_expensive_first_and_keeps_the_cheapest() {
    let states = view_fixture();
    let out = run(&states, &analysis(0.0, 25000.0, &[12000, 8000]));
    assert_eq!((out[0].target, out[0].reason), (0, Reason::SpareCapacity));
    assert_eq!(
        out[0].detail,
        "V2 scale-down (optimizer: cost-aware, spare: 25000)"
    );
    assert_eq!((out[1].target, out[1].reason), (1, Reason::Steady));
}

#[test]
fn required_capacity_goes_to_the_best_cost_per_token() {
    let states = view_fixture();
    // cost/cap: big 20/12000 = 0.00167, small 5/8000 = 0.000625 ⇒ small takes all: ceil(9000/8000) = 2.
    let out = run(&states, &analysis(9000.0, 0.0, &[12000, 8000]));
    assert_eq!((out[0].target, out[1].target), (2, 3));
    assert_eq!(out[1].reason, Reason::CapacityRequired);
    assert_eq!(
        out[1].detail,
        "V2 scale-up (optimizer: cost-aware, required: 9000)"
    );
}

#[test]
fn zero_capacity_variants_are_skipped() {
    let states = view_fixture();
    let out = run(&states, &analysis(100.0, 0.0, &[0, 0]));
    assert_eq!((out[0].target, out[1].target), (2, 1));
    let out = run(&states, &analysis(100.0, 0.0, &[50, 0]));
    assert_eq!(out[0].target, 4);
}

#[test]
fn required_and_spare_never_hold_together() {
    let report = plan(&v2_input(
        vec![mk_variant("v", "m", 1.0, 3)],
        vec![
            geo(mk_replica("p1", "v", 0.05, 0.0), 1250, 10.0, 10.0),
            geo(mk_replica("p2", "v", 0.05, 0.0), 1250, 10.0, 10.0),
            geo(mk_replica("p3", "v", 0.05, 0.0), 1250, 10.0, 10.0),
        ],
    ))
    .unwrap();
    let a = v2(&report);
    assert!(a.spare_capacity > 0.0 && a.required_capacity == 0.0);
    // spare = 48000 − 3000/0.7 ≈ 43714 ⇒ remove floor(43714/16000) = 2, keeping the last one.
    assert_eq!(decision(&report, "v").target_replicas, 1);
}
