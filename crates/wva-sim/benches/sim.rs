//! Criterion benches of spec/sim.md §7: `tick_1000_replicas`, `render_metrics`, `route_1000`.
#![allow(missing_docs, clippy::unwrap_used)]

use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use wva_sim::config::Routing;
use wva_sim::exposition::{BucketMode, MetricSet, MetricsOptions};
use wva_sim::router::{Candidate, pick};
use wva_sim::scenario::Scenario;
use wva_sim::sim::Simulation;

/// bench-1000 (1000 pods, 100 models) warmed up at the 3× step: about 20,000 requests in flight.
fn loaded_fleet() -> Simulation {
    let mut cfg = Scenario::named("bench-1000").unwrap().config;
    cfg.startup_delay = std::time::Duration::ZERO;
    for m in &mut cfg.models {
        m.load = wva_sim::LoadProfile::Constant { rate: 30.0 };
    }
    let mut sim = Simulation::new(cfg).unwrap();
    for _ in 0..300 {
        sim.tick();
    }
    sim
}

fn tick_1000_replicas(c: &mut Criterion) {
    let mut sim = loaded_fleet();
    let in_flight: u64 = (0..100).map(|m| sim.in_flight(m)).sum();
    eprintln!("tick_1000_replicas: {in_flight} requests in flight");
    c.bench_function("tick_1000_replicas", |b| b.iter(|| sim.tick()));
}

fn render_metrics(c: &mut Criterion) {
    let mut sim = Simulation::new(Scenario::named("demo").unwrap().config).unwrap();
    for _ in 0..300 {
        sim.tick();
    }
    let pods = sim.publish();
    let pod = pods.values().next().unwrap().clone();
    let full = MetricsOptions::default();
    let inf = MetricsOptions {
        set: MetricSet::Minimal,
        buckets: BucketMode::InfOnly,
        ..Default::default()
    };
    c.bench_function("render_metrics/full", |b| {
        b.iter(|| black_box(pod.render(&full)))
    });
    c.bench_function("render_metrics/inf_only", |b| {
        b.iter(|| black_box(pod.render(&inf)))
    });
}

fn route_1000(c: &mut Criterion) {
    let cands: Vec<Candidate> = (0..1000u64)
        .map(|i| Candidate {
            waiting: i % 7,
            kv: (i % 10) as f64 / 10.0,
            running: i % 40,
            max_num_seqs: 48,
            routed: 0,
        })
        .collect();
    let mut rr = 0;
    let mut rng = wva_sim::rng::stream(1, "route");
    c.bench_function("route_1000", |b| {
        b.iter(|| {
            black_box(pick(
                Routing::LeastLoaded,
                black_box(&cands),
                &mut rr,
                &mut rng,
            ))
        })
    });
}

criterion_group!(benches, tick_1000_replicas, render_metrics, route_1000);
criterion_main!(benches);
