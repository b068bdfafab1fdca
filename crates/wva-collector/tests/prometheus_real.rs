//! Integration tests against a real Prometheus (spec §10.1): per-pod values, ratios, retention,
//! cache_config join, NaN on no traffic, background refresh, stale pods.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers outside #[test] fns

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{MapDirectory, fast_config, request, source};
use test_support::{FileSdTarget, MetricsServer, Prometheus, VllmPod, vllm_text};
use tokio_util::sync::CancellationToken;
use wva_collector::{
    AbsentReason, Availability, CacheConfig, CatalogueConfig, CollectRequest, Field, Freshness,
    MetricsSource, ModelKey, ModelRequest, QueryName, QueryOutcome,
};

async fn wait_series(prom: &Prometheus, expr: &str, n: usize) {
    let ok = prom
        .wait_for(expr, Duration::from_secs(20), |v| v.len() == n)
        .await;
    assert!(ok, "{expr} never had {n} series; log:\n{}", prom.log());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_pod_values_ratios_retention_and_cache_config_through_pod() {
    let Some(prom) = Prometheus::start().await else {
        return;
    };
    let server = Arc::new(MetricsServer::start().await);
    let model = "meta/llama-3.1-8b";
    let key = ModelKey::new("team-a", model);
    let mut idle = VllmPod::new(model);
    idle.kv_cache_usage = 0.5;
    idle.waiting = 3.0;
    idle.running = 4.0;
    server.set("/pods/idle/metrics", vllm_text(std::slice::from_ref(&idle)));
    // The busy pod finishes one request (120 prompt, 40 generated tokens) every 200 ms.
    let busy_server = server.clone();
    let traffic = tokio::spawn(async move {
        let mut busy = VllmPod::new(model);
        busy.kv_cache_usage = 0.75;
        busy.cache_config = Some(("2000".into(), "32".into()));
        loop {
            busy.prompt_tokens.0 += 120.0;
            busy.prompt_tokens.1 += 1.0;
            busy.generation_tokens.0 += 40.0;
            busy.generation_tokens.1 += 1.0;
            busy.success_total += 1.0;
            busy_server.set("/pods/busy/metrics", vllm_text(std::slice::from_ref(&busy)));
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
    prom.set_targets(&[
        FileSdTarget::pod(
            server.addr(),
            "/pods/idle/metrics",
            "team-a",
            "llama-idle-0",
        ),
        FileSdTarget::pod(
            server.addr(),
            "/pods/busy/metrics",
            "team-a",
            "llama-busy-0",
        ),
    ]);
    wait_series(&prom, "rate(vllm:request_prompt_tokens_count[5m])", 2).await;
    let ok = prom
        .wait_for(
            "rate(vllm:request_prompt_tokens_count[5m]) > 0",
            Duration::from_secs(20),
            |v| v.len() == 1,
        )
        .await;
    assert!(ok);
    let dir = Arc::new(MapDirectory::default());
    dir.map(&key, "llama-idle-0", "llama-idle");
    dir.map(&key, "llama-busy-0", "llama-busy");
    let src = source(
        fast_config(&prom.base_url()),
        CatalogueConfig::default(),
        CacheConfig::default(),
        dir,
    );
    let req = CollectRequest::new(vec![ModelRequest::with_retention(
        key.clone(),
        Duration::from_secs(15 * 60),
    )]);
    let snap = src.collect(&req).await;
    assert_eq!(
        snap.queries.len(),
        12,
        "11 per-replica queries + 1 request count"
    );
    assert!(
        snap.queries.iter().all(|q| q.outcome == QueryOutcome::Miss),
        "{:?}",
        snap.queries
    );
    let rc = snap
        .queries
        .iter()
        .find(|q| q.name == QueryName::ModelRequestCount)
        .unwrap();
    assert!(rc.text.ends_with("[15m]))"), "{}", rc.text);
    let m = &snap.models[&key];
    assert!(m.errors.is_empty(), "{:?}", m.errors);
    assert_eq!(m.availability, Availability::Available);
    assert_eq!(m.freshness, Freshness::Fresh);
    assert!(m.age < Duration::from_secs(5), "{:?}", m.age);
    assert!(m.request_count.as_ref().unwrap().value > 0.0);
    let idle_r = &m.replicas["llama-idle-0"];
    assert_eq!(idle_r.variant.name, "llama-idle");
    assert_eq!(idle_r.kv_cache_usage, Some(0.5));
    assert_eq!(idle_r.queue_length, Some(3.0));
    assert_eq!(idle_r.running_requests, Some(4.0));
    assert_eq!(idle_r.cache_config.unwrap().num_gpu_blocks, 1000);
    // No finished request: rate/rate is NaN, which is "no data", never 0.
    assert_eq!(idle_r.avg_input_tokens, None);
    assert_eq!(
        idle_r.absent[&Field::AvgInputTokens],
        AbsentReason::NonFinite
    );
    let busy_r = &m.replicas["llama-busy-0"];
    assert_eq!(busy_r.kv_cache_usage, Some(0.75));
    let cc = busy_r.cache_config.unwrap();
    assert_eq!((cc.num_gpu_blocks, cc.block_size), (2000, 32));
    let avg_in = busy_r.avg_input_tokens.unwrap();
    let avg_out = busy_r.avg_output_tokens.unwrap();
    assert!((avg_in - 120.0).abs() / 120.0 < 0.01, "{avg_in}");
    assert!((avg_out - 40.0).abs() / 40.0 < 0.01, "{avg_out}");
    assert!(busy_r.request_rate.unwrap() > 0.0);
    assert_eq!(
        busy_r.absent.get(&Field::PrefixCacheHitRate),
        Some(&AbsentReason::NoSeries)
    );
    traffic.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn background_refresh_keeps_engine_reads_warm() {
    let Some(prom) = Prometheus::start().await else {
        return;
    };
    let server = MetricsServer::start().await;
    let key = ModelKey::new("ns", "m");
    server.set("/p/metrics", vllm_text(&[VllmPod::new("m")]));
    prom.set_targets(&[FileSdTarget::pod(server.addr(), "/p/metrics", "ns", "m-0")]);
    wait_series(&prom, "vllm:num_requests_running", 1).await;
    let dir = Arc::new(MapDirectory::default());
    dir.map(&key, "m-0", "v");
    let cache = CacheConfig {
        ttl: Duration::from_secs(2),
        fetch_interval: Duration::from_secs(1),
        ..CacheConfig::default()
    };
    let src = source(
        fast_config(&prom.base_url()),
        CatalogueConfig::with_groups([]),
        cache,
        dir,
    );
    src.track(&[ModelRequest::new(key.clone())]);
    let shutdown = CancellationToken::new();
    let handle = src.clone().spawn_background(shutdown.clone());
    tokio::time::sleep(Duration::from_millis(3500)).await;
    let before = prom.api_query_requests().await;
    for _ in 0..3 {
        let snap = src.collect(&request(std::slice::from_ref(&key))).await;
        assert!(
            snap.queries.iter().all(|q| q.outcome == QueryOutcome::Hit),
            "{:?}",
            snap.queries
        );
        assert_eq!(snap.models[&key].replicas.len(), 1);
    }
    assert_eq!(
        prom.api_query_requests().await,
        before,
        "engine reads sent queries"
    );
    let stats = src.stats();
    assert!(
        stats.queries[&QueryName::ReplicaLastSample].misses >= 3,
        "ticks refreshed: {:?}",
        stats.queries
    );
    let t0 = std::time::Instant::now();
    shutdown.cancel();
    handle.await.unwrap();
    assert!(t0.elapsed() < Duration::from_secs(5));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_and_removed_targets_leave_the_snapshot_while_range_queries_still_see_them() {
    let Some(prom) = Prometheus::start().await else {
        return;
    };
    let server = MetricsServer::start().await;
    let key = ModelKey::new("ns", "m");
    for p in ["a", "b"] {
        server.set(&format!("/{p}/metrics"), vllm_text(&[VllmPod::new("m")]));
    }
    let targets = |pods: &[&str]| {
        pods.iter()
            .map(|p| {
                FileSdTarget::pod(
                    server.addr(),
                    &format!("/{p}/metrics"),
                    "ns",
                    &format!("m-{p}"),
                )
            })
            .collect::<Vec<_>>()
    };
    prom.set_targets(&targets(&["a", "b"]));
    wait_series(&prom, "vllm:num_requests_running", 2).await;
    let dir = Arc::new(MapDirectory::default());
    dir.map(&key, "m-a", "v");
    dir.map(&key, "m-b", "v");
    dir.list(&key, &["m-a", "m-b"]);
    let cache = CacheConfig {
        ttl: Duration::from_secs(1),
        ..CacheConfig::default()
    };
    let src = source(
        fast_config(&prom.base_url()),
        CatalogueConfig::with_groups([]),
        cache,
        dir,
    );
    let req = request(std::slice::from_ref(&key));
    assert_eq!(src.collect(&req).await.models[&key].replicas.len(), 2);

    // Pod b's target answers 500: it leaves at Prometheus's next scrape (+ our 1 s TTL).
    server.set_status("/b/metrics", 500);
    let t0 = std::time::Instant::now();
    let gone = loop {
        let snap = src.collect(&req).await;
        let m = &snap.models[&key];
        if !m.replicas.contains_key("m-b") {
            break m.clone();
        }
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "pod b still live after 5 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(t0.elapsed() <= Duration::from_secs(4), "{:?}", t0.elapsed());
    assert_eq!(
        gone.missing_pods,
        vec![("m-b".to_string(), "no live series".to_string())]
    );
    assert_eq!(gone.availability, Availability::Partial);
    let range = prom
        .query_vector("max_over_time(vllm:kv_cache_usage_perc{pod=\"m-b\"}[1m])")
        .await;
    assert_eq!(range.len(), 1, "the range query still sees the failed pod");
    assert!(src.stats().dropped.not_live > 0);

    // Pod a leaves file_sd: gone within 10 s (discovery batching + two scrape intervals).
    prom.set_targets(&targets(&["b"]));
    let t0 = std::time::Instant::now();
    let m = loop {
        let snap = src.collect(&req).await;
        let m = snap.models[&key].clone();
        if m.replicas.is_empty() {
            break m;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(12),
            "pod a still live after 12 s"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert_eq!(
        m.availability,
        Availability::Unavailable,
        "listed pods, none live"
    );
    assert_eq!(m.missing_pods.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn series_with_ninety_second_old_timestamps_are_stale_with_their_real_age() {
    let Some(prom) = Prometheus::start().await else {
        return;
    };
    let server = MetricsServer::start().await;
    let ts_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis()
        - 90_000;
    let l = "namespace=\"ns\",pod=\"old-0\",model_name=\"m\"";
    server.set(
        "/old/metrics",
        format!(
            "vllm:num_requests_running{{{l}}} 1 {ts_ms}\nvllm:num_requests_waiting{{{l}}} 0 {ts_ms}\nvllm:kv_cache_usage_perc{{{l}}} 0.1 {ts_ms}\n"
        ),
    );
    prom.set_targets(&[FileSdTarget::bare(server.addr(), "/old/metrics")]);
    wait_series(&prom, "vllm:num_requests_running", 1).await;
    let key = ModelKey::new("ns", "m");
    let dir = Arc::new(MapDirectory::default());
    dir.map(&key, "old-0", "v");
    let src = source(
        fast_config(&prom.base_url()),
        CatalogueConfig::with_groups([]),
        CacheConfig::default(),
        dir,
    );
    let snap = src.collect(&request(std::slice::from_ref(&key))).await;
    let m = &snap.models[&key];
    let r = &m.replicas["old-0"];
    let age = r.sample_age.as_secs_f64();
    assert!((89.0..100.0).contains(&age), "age {age}");
    assert_eq!(r.freshness, Freshness::Stale);
    assert_eq!(m.freshness, Freshness::Stale);
}
