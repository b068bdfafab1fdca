//! One refresh sends as many PromQL queries for 1000 models as for 1 (spec §4.6, §10.1),
//! counted by Prometheus's own `prometheus_http_requests_total{handler="/api/v1/query"}`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers outside #[test] fns

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::fast_config;
use test_support::{FileSdTarget, MetricsServer, Prometheus, VllmPod, vllm_text};
use wva_collector::{
    Availability, CacheConfig, CatalogueConfig, CollectRequest, MetricsSource, ModelKey,
    ModelRequest, PodNameDirectory, PrometheusSource, QueryGroup, QueryOutcome,
};

const NAMESPACES: [&str; 3] = ["inference-a", "inference-b", "inference-c"];

/// A 35-byte model ID.
fn model_id(i: usize) -> String {
    let id = format!("example-org/llama-3-70b-instr-{i:05}");
    assert_eq!(id.len(), 35);
    id
}

fn key(i: usize) -> ModelKey {
    ModelKey::new(NAMESPACES[i % NAMESPACES.len()], model_id(i))
}

async fn settled_count(prom: &Prometheus) -> f64 {
    // The server counts a request after answering it; wait until the counter is stable.
    let mut last = prom.api_query_requests().await;
    loop {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let now = prom.api_query_requests().await;
        if now == last {
            return now;
        }
        last = now;
    }
}

async fn one_refresh(prom: &Prometheus, models: usize, groups: CatalogueConfig) -> (f64, f64) {
    let src = PrometheusSource::new(
        fast_config(&prom.base_url()),
        groups,
        CacheConfig::default(),
        Arc::new(PodNameDirectory::default()),
        None,
    )
    .unwrap();
    let req = CollectRequest::new(
        (0..models)
            .map(|i| ModelRequest::with_retention(key(i), Duration::from_secs(3600)))
            .collect(),
    );
    let before = settled_count(prom).await;
    let snap = src.collect(&req).await;
    let first = settled_count(prom).await - before;
    assert_eq!(snap.models.len(), models);
    for (k, m) in &snap.models {
        assert_eq!(m.replicas.len(), 1, "{k}: {m:?}");
        assert_ne!(m.availability, Availability::Unavailable, "{k}");
    }
    // An engine read within the TTL is answered from the cache: zero queries.
    let before = settled_count(prom).await;
    let again = src.collect(&req).await;
    let second = settled_count(prom).await - before;
    assert!(again.queries.iter().all(|q| q.outcome == QueryOutcome::Hit));
    (first, second)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_refresh_costs_the_same_number_of_queries_at_1_10_100_and_1000_models() {
    let Some(prom) = Prometheus::start().await else {
        return;
    };
    let server = MetricsServer::start().await;
    let pods: Vec<VllmPod> = (0..1000)
        .map(|i| {
            let k = key(i);
            let mut p = VllmPod::new(k.model_id.clone());
            p.extra_labels = vec![
                ("namespace".into(), k.namespace.clone()),
                ("pod".into(), format!("pod-{i:05}")),
            ];
            p
        })
        .collect();
    server.set("/fleet/metrics", vllm_text(&pods));
    prom.set_targets(&[FileSdTarget::bare(server.addr(), "/fleet/metrics")]);
    let ok = prom
        .wait_for(
            "count(vllm:num_requests_running)",
            Duration::from_secs(30),
            |v| v.first().map(|s| s.1) == Some(1000.0),
        )
        .await;
    assert!(ok, "fleet not scraped: {}", prom.log());
    let v1_only = CatalogueConfig::with_groups([QueryGroup::ScaleToZero]);
    println!(
        "| models M | reference 6·M | ours, all default groups | ours, V1-only (core + scale_to_zero) | cached re-read |"
    );
    println!("|---|---|---|---|---|");
    for m in [1usize, 10, 100, 1000] {
        let (all, all_again) = one_refresh(&prom, m, CatalogueConfig::default()).await;
        let (v1, _) = one_refresh(&prom, m, v1_only.clone()).await;
        println!("| {m} | {} | {all} | {v1} | {all_again} |", 6 * m);
        assert_eq!(all, 12.0, "all default groups at {m} models");
        assert_eq!(v1, 5.0, "V1-only at {m} models");
        assert_eq!(all_again, 0.0, "cached re-read at {m} models");
    }
}
