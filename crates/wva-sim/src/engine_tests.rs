use super::*;
use crate::capacity::{decode_time, steady_state};
use crate::dist::poisson;
use crate::profile::builtin;
use crate::rng::{stream, unit};
use proptest::prelude::*;

fn params(acc: &str, preemption: Preemption) -> EngineParams {
    EngineParams {
        profile: builtin(acc).unwrap(),
        preemption,
        max_model_len: 4096,
        prefix: None,
    }
}

fn req(id: u64, at: u64, i: u32, o: u32) -> Request {
    Request {
        id,
        arrival_us: at,
        prompt_tokens: i,
        output_tokens: o,
        capped: false,
        prefix_group: None,
    }
}

struct Run {
    records: Vec<RequestRecord>,
    mean_running: f64,
    mean_in_flight: f64,
    mean_kv: f64,
}

/// Drives one engine with Poisson arrivals of fixed sizes for `secs`, 100 ms ticks.
fn drive(
    p: EngineParams,
    rate: f64,
    i: u32,
    o: u32,
    secs: u64,
    warmup: u64,
) -> (ReplicaEngine, Run) {
    let mut e = ReplicaEngine::new(p, 0);
    let mut rng = stream(5, "arrivals/test");
    let tick = 100_000u64;
    let mut id = 0;
    let (mut run_sum, mut fl_sum, mut kv_sum, mut n) = (0.0, 0.0, 0.0, 0.0);
    let mut records = Vec::new();
    for k in 0..(secs * 10) {
        let t0 = k * tick;
        let count = poisson(&mut rng, rate * 0.1);
        let mut offs: Vec<u64> = (0..count)
            .map(|_| (unit(&mut rng) * tick as f64) as u64)
            .collect();
        offs.sort_unstable();
        for off in offs {
            e.enqueue(req(id, t0 + off, i, o));
            id += 1;
        }
        e.run_until(t0 + tick);
        let recs = e.take_records();
        if k >= warmup * 10 {
            run_sum += e.running() as f64;
            fl_sum += e.in_flight() as f64;
            kv_sum += e.kv_usage();
            n += 1.0;
            records.extend(recs);
        }
    }
    let run = Run {
        records,
        mean_running: run_sum / n,
        mean_in_flight: fl_sum / n,
        mean_kv: kv_sum / n,
    };
    (e, run)
}

#[test]
fn lone_request_ttft_is_one_prefill_step() {
    let p = params("L4", Preemption::Recompute);
    let mut e = ReplicaEngine::new(p, 0);
    e.enqueue(req(1, 0, 512, 3));
    e.run_until(1_000_000);
    let recs = e.take_records();
    assert_eq!(recs.len(), 1);
    let perf = p.profile.perf;
    let tau = perf.alpha_ms + perf.beta_ms * 512.0 + perf.gamma_ms * 512.0;
    assert_eq!(recs[0].first_token_us, Some((tau * 1000.0).round() as u64));
    assert_eq!(recs[0].output_tokens, 3);
    assert_eq!(recs[0].reason, FinishReason::Stop);
    let m = e.metrics();
    assert_eq!(m.prompt_tokens, 512);
    assert_eq!(m.generation_tokens, 3);
    assert_eq!(m.itl.count(), 2);
    assert_eq!(m.finished(FinishReason::Stop), 1);
    assert_eq!(e.used_blocks(), 0);
    assert_eq!(e.running(), 0);
}

#[test]
fn chunked_prefill_splits_long_prompts_over_steps() {
    let mut p = params("L4", Preemption::Recompute);
    p.profile.max_num_batched_tokens = 256;
    let mut e = ReplicaEngine::new(p, 0);
    e.enqueue(req(1, 0, 1000, 1));
    e.run_until(10_000_000);
    assert_eq!(e.steps(), 4);
    assert_eq!(e.take_records()[0].reason, FinishReason::Stop);
}

#[test]
fn capped_requests_finish_with_length() {
    let p = params("L4", Preemption::Recompute);
    let mut e = ReplicaEngine::new(p, 0);
    let mut r = req(1, 0, 100, 5);
    r.capped = true;
    e.enqueue(r);
    e.run_until(5_000_000);
    assert_eq!(e.metrics().finished(FinishReason::Length), 1);
}

#[test]
fn overload_preempts_under_recompute_but_never_under_reserve() {
    for (mode, expect) in [(Preemption::Recompute, true), (Preemption::Reserve, false)] {
        let mut p = params("L4", mode);
        p.profile.kv.num_gpu_blocks = 256; // 4096 tokens
        let mut e = ReplicaEngine::new(p, 0);
        for k in 0..40 {
            e.enqueue(req(k, 0, 300, 400));
        }
        for t in 1..=3000 {
            e.run_until(t * 100_000);
            assert!(e.used_blocks() <= 256);
            assert!(e.kv_usage() <= 1.0);
        }
        assert_eq!(e.metrics().preemptions > 0, expect, "{mode:?}");
        assert_eq!(e.in_flight(), 0, "{mode:?} must finish everything");
        assert_eq!(e.metrics().finished(FinishReason::Stop), 40);
        assert_eq!(e.metrics().generation_tokens, 40 * 400);
    }
}

#[test]
fn abort_all_records_aborts_and_frees_everything() {
    let p = params("L4", Preemption::Recompute);
    let mut e = ReplicaEngine::new(p, 0);
    for k in 0..10 {
        e.enqueue(req(k, 0, 200, 1000));
    }
    e.run_until(500_000);
    assert_eq!(e.abort_all(600_000), 10);
    assert_eq!(e.metrics().finished(FinishReason::Abort), 10);
    assert_eq!(e.used_blocks(), 0);
    assert_eq!(e.in_flight(), 0);
}

#[test]
fn prefix_cache_hits_resident_groups() {
    let mut p = params("L4", Preemption::Recompute);
    p.prefix = Some(PrefixParams {
        prefix_tokens: 100,
        resident_groups: 2,
    });
    let mut e = ReplicaEngine::new(p, 0);
    for k in 0..3 {
        let mut r = req(k, k * 1_000_000, 200, 2);
        r.prefix_group = Some(7);
        e.enqueue(r);
    }
    e.run_until(5_000_000);
    let m = e.metrics();
    assert_eq!(m.prefix_queries, 600);
    assert_eq!(m.prefix_hits, 2 * 96);
}

#[test]
fn model_agreement_at_moderate_load() {
    let p = params("L4", Preemption::Recompute);
    let (i, o) = (512u32, 256u32);
    for load in [0.3, 0.5, 0.7] {
        let rate = load * crate::capacity::max_rate(&p.profile, f64::from(i), f64::from(o));
        let (e, run) = drive(p, rate, i, o, 900, 100);
        let pred = steady_state(&p.profile, rate, f64::from(i), f64::from(o));
        let secs = 800.0;
        let throughput = run.records.len() as f64 / secs;
        assert!(
            (throughput - rate).abs() / rate < 0.1,
            "load {load}: throughput {throughput} vs {rate}"
        );
        assert!(
            (run.mean_kv - pred.kv_usage).abs() / pred.kv_usage < 0.1,
            "load {load}: kv {} vs {}",
            run.mean_kv,
            pred.kv_usage
        );
        // Little's law: L = X · W.
        let w = run
            .records
            .iter()
            .map(|r| (r.finish_us - r.arrival_us) as f64 / 1e6)
            .sum::<f64>()
            / run.records.len() as f64;
        let l = throughput * w;
        assert!(
            (run.mean_in_flight - l).abs() / l < 0.05,
            "load {load}: L {} vs X·W {l}",
            run.mean_in_flight
        );
        // Mean ITL against D(n) at the measured batch.
        let itl = e.metrics().itl.sum() / e.metrics().itl.count() as f64;
        let d = decode_time(&p.profile, run.mean_running, f64::from(i), f64::from(o)) / 1000.0;
        assert!(
            (itl - d).abs() / d < 0.05,
            "load {load}: itl {itl} vs D(n) {d}"
        );
    }
}

#[test]
fn constant_batch_itl_matches_decode_time() {
    // n sequences admitted together and decoding together: every gap is one step.
    let p = params("H100", Preemption::Recompute);
    let (i, o, n) = (64u32, 2000u32, 32u64);
    let mut e = ReplicaEngine::new(p, 0);
    for k in 0..n {
        e.enqueue(req(k, 0, i, o));
    }
    e.run_until(200_000_000);
    let itl = e.metrics().itl.sum() / e.metrics().itl.count() as f64;
    // Every step decodes n sequences whose mean context is I + O/2: T = α + n(β + γm).
    let perf = p.profile.perf;
    let m = f64::from(i) + f64::from(o) / 2.0;
    let t = (perf.alpha_ms + n as f64 * (perf.beta_ms + perf.gamma_ms * m)) / 1000.0;
    assert!((itl - t).abs() / t < 0.05, "itl {itl} vs {t}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]
    #[test]
    fn invariants_hold_for_random_loads(
        seed in 0u64..1000,
        rate in 0.5f64..40.0,
        i in 1u32..1500,
        o in 1u32..600,
        blocks in 64u32..2048,
        reserve in proptest::bool::ANY,
    ) {
        let mut p = params("L4", if reserve { Preemption::Reserve } else { Preemption::Recompute });
        p.profile.kv.num_gpu_blocks = blocks.max((i + o) / 16 + 2);
        let mut e = ReplicaEngine::new(p, 0);
        let mut rng = stream(seed, "arrivals/p");
        let mut arrived = 0u64;
        let mut finished = 0u64;
        let mut last_counts = (0u64, 0u64, 0u64);
        for k in 0..100u64 {
            let c = poisson(&mut rng, rate * 0.1);
            for j in 0..c {
                e.enqueue(req(arrived, k * 100_000 + j, i, o));
                arrived += 1;
            }
            e.run_until((k + 1) * 100_000);
            finished += e.take_records().len() as u64;
            let m = e.metrics();
            prop_assert!(e.used_blocks() <= u64::from(p.profile.kv.num_gpu_blocks));
            prop_assert!((0.0..=1.0).contains(&m.kv_usage));
            prop_assert!(m.running <= u64::from(p.profile.max_num_seqs));
            let counts = (m.generation_tokens, m.itl.count(), m.e2e.count());
            prop_assert!(counts.0 >= last_counts.0 && counts.1 >= last_counts.1 && counts.2 >= last_counts.2);
            last_counts = counts;
            prop_assert_eq!(arrived, finished + e.in_flight());
            let cum: Vec<u64> = m.ttft.cumulative().collect();
            prop_assert!(cum.windows(2).all(|w| w[0] <= w[1]));
            prop_assert_eq!(cum.last().copied(), Some(m.ttft.count()));
        }
    }
}
