//! Collector costs at 1000 models × 4 pods (spec §10.5):
//! planning + rendering, demultiplexing a cached answer set (a warm `collect`), and one
//! end-to-end refresh (HTTP + decode + demux) against an in-process canned loopback server.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use test_support::{FakeApi, FakeResponse};
use wva_collector::catalogue::TrackedSet;
use wva_collector::{
    CacheConfig, CatalogueConfig, CollectRequest, MetricsSource, ModelKey, ModelRequest,
    PodNameDirectory, PrometheusConfig, PrometheusSource, QueryCatalogue,
};

const MODELS: usize = 1000;
const PODS: usize = 4;
const NAMESPACES: [&str; 3] = ["inference-a", "inference-b", "inference-c"];

fn key(i: usize) -> ModelKey {
    ModelKey::new(
        NAMESPACES[i % NAMESPACES.len()],
        format!("example-org/llama-3-70b-instr-{i:05}"),
    )
}

fn request() -> CollectRequest {
    CollectRequest::new(
        (0..MODELS)
            .map(|i| ModelRequest::with_retention(key(i), Duration::from_secs(3600)))
            .collect(),
    )
}

/// One canned answer per query shape: 4000 samples (model-level queries: 1000).
fn answer(query: &str, t: f64) -> String {
    let mut out = String::from(r#"{"status":"success","data":{"resultType":"vector","result":["#);
    let model_level = query.contains("increase(");
    for i in 0..MODELS {
        let k = key(i);
        for p in 0..(if model_level { 1 } else { PODS }) {
            let value = if query.contains("timestamp(") {
                format!("{}", t - 2.0)
            } else if query.contains("kv_cache") {
                "0.5".to_string()
            } else {
                "3".to_string()
            };
            let pod = if model_level {
                String::new()
            } else {
                format!(r#","pod":"pod-{i:05}-{p}","num_gpu_blocks":"1000","block_size":"16""#)
            };
            out.push_str(&format!(
                r#"{{"metric":{{"namespace":"{}","model_name":"{}"{pod}}},"value":[{t},"{value}"]}},"#,
                k.namespace, k.model_id
            ));
        }
    }
    out.pop();
    out.push_str("]}}");
    out
}

fn bench(c: &mut Criterion) {
    let catalogue = QueryCatalogue::new(CatalogueConfig::default());
    let tracked = TrackedSet::from_requests(&request().models);
    c.bench_function("plan_and_render_1000_models", |b| {
        b.iter(|| black_box(catalogue.plan(black_box(&tracked))))
    });

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let t = 1_700_000_000.0;
    let kinds = ["timestamp(", "kv_cache", "increase(", "other"];
    let bodies: Arc<Vec<(String, String)>> = Arc::new(
        kinds
            .iter()
            .map(|k| (k.to_string(), answer(k, t)))
            .collect(),
    );
    let total_bytes: usize = bodies.iter().map(|(_, b)| b.len()).sum();
    let b2 = bodies.clone();
    let api = rt.block_on(FakeApi::start(move |req, _| {
        let q = req.field("query").unwrap_or_default();
        let body = b2
            .iter()
            .find(|(k, _)| q.contains(k.as_str()))
            .or(b2.last())
            .map(|(_, b)| b.clone())
            .unwrap_or_default();
        FakeResponse::json(200, body)
    }));
    let new_source = || {
        PrometheusSource::new(
            PrometheusConfig::new(&api.base_url()).unwrap(),
            CatalogueConfig::default(),
            CacheConfig::default(),
            Arc::new(PodNameDirectory::default()),
            None,
        )
        .unwrap()
    };
    let req = request();
    let warm = new_source();
    let first = rt.block_on(warm.collect(&req));
    let replicas: usize = first.models.values().map(|m| m.replicas.len()).sum();
    assert_eq!(replicas, MODELS * PODS);
    let queries = first.queries.len();
    let answer_bytes: usize = first.queries.len() * (total_bytes / kinds.len());
    eprintln!(
        "refresh at {MODELS} models x {PODS} pods: {queries} queries, about {} MiB of answers, {replicas} replica records",
        answer_bytes / (1024 * 1024)
    );
    c.bench_function("demux_cached_answers_1000_models_x_4_pods", |b| {
        b.iter(|| black_box(rt.block_on(warm.collect(&req))))
    });
    let mut group = c.benchmark_group("refresh");
    group.sample_size(10);
    group.bench_function("end_to_end_refresh_1000_models_x_4_pods", |b| {
        b.iter(|| {
            let s = new_source();
            black_box(rt.block_on(s.collect(&req)))
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
