//! Single-flight, TTL and refresher behaviour through the public API (spec §10.4).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers outside #[test] fns

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{MapDirectory, fast_config, request};
use test_support::{FakeApi, FakeResponse};
use tokio_util::sync::CancellationToken;
use wva_collector::{
    CacheConfig, CacheOutcome, CatalogueConfig, CollectorObserver, Freshness, MetricsSource,
    ModelKey, ModelRequest, PrometheusSource, QueryEvent, QueryName, QueryOutcome,
};

fn answer(_: &test_support::RecordedRequest, _: usize) -> FakeResponse {
    FakeResponse::vector(
        r#"[{"metric":{"namespace":"ns","model_name":"m","pod":"p"},"value":[1000,"999"]}]"#,
    )
}

fn key() -> ModelKey {
    ModelKey::new("ns", "m")
}

fn src(
    base: &str,
    cache: CacheConfig,
    observer: Option<Arc<dyn CollectorObserver>>,
) -> Arc<PrometheusSource> {
    let dir = Arc::new(MapDirectory::default());
    dir.map(&key(), "p", "v");
    PrometheusSource::new(
        fast_config(base),
        CatalogueConfig::with_groups([]),
        cache,
        dir,
        observer,
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundred_concurrent_collects_on_a_cold_cache_send_one_request_per_key() {
    let api = FakeApi::start(|r, n| answer(r, n).delayed(Duration::from_millis(200))).await;
    let s = src(&api.base_url(), CacheConfig::default(), None);
    let mut tasks = Vec::new();
    for _ in 0..100 {
        let s = s.clone();
        tasks.push(tokio::spawn(
            async move { s.collect(&request(&[key()])).await },
        ));
    }
    let mut outcomes = Vec::new();
    for t in tasks {
        let snap = t.await.unwrap();
        assert_eq!(snap.models[&key()].replicas.len(), 1);
        outcomes.extend(snap.queries.iter().map(|q| q.outcome));
    }
    assert_eq!(api.count(), 4, "one request per key (4 core queries)");
    let misses = outcomes
        .iter()
        .filter(|o| **o == QueryOutcome::Miss)
        .count();
    assert_eq!(misses, 4);
    let stats = s.stats();
    let q = &stats.queries[&QueryName::KvCacheUsage];
    assert_eq!(q.misses, 1);
    assert_eq!(q.hits + q.coalesced, 99);
    assert!(stats.hit_ratio().unwrap() > 0.98);
}

#[derive(Default)]
struct Recorder {
    queries: Mutex<Vec<(tokio::time::Instant, QueryName)>>,
    cache: Mutex<Vec<(QueryName, CacheOutcome)>>,
    models: Mutex<Vec<(ModelKey, Freshness)>>,
}

impl CollectorObserver for Recorder {
    fn on_query(&self, e: &QueryEvent) {
        self.queries
            .lock()
            .unwrap()
            .push((tokio::time::Instant::now(), e.name));
    }
    fn on_cache(&self, name: QueryName, outcome: CacheOutcome) {
        self.cache.lock().unwrap().push((name, outcome));
    }
    fn on_model(&self, key: &ModelKey, _age: Duration, freshness: Freshness) {
        self.models.lock().unwrap().push((key.clone(), freshness));
    }
}

// Paused time is safe here: the fake server is a task on this same runtime.
#[tokio::test(start_paused = true)]
async fn refresher_ticks_at_once_then_every_27_to_30_s_and_engine_reads_between_are_hits() {
    let api = FakeApi::start(answer).await;
    let rec = Arc::new(Recorder::default());
    let s = src(&api.base_url(), CacheConfig::default(), Some(rec.clone()));
    s.track(&[ModelRequest::new(key())]);
    let shutdown = CancellationToken::new();
    let handle = s.clone().spawn_background(shutdown.clone());
    let start = tokio::time::Instant::now();
    for _ in 0..18 {
        tokio::time::sleep(Duration::from_secs(5)).await;
        let snap = s.collect(&request(&[key()])).await;
        assert!(
            snap.queries.iter().all(|q| q.outcome == QueryOutcome::Hit),
            "{:?}",
            snap.queries
        );
    }
    shutdown.cancel();
    handle.await.unwrap();
    let ticks: Vec<Duration> = rec
        .queries
        .lock()
        .unwrap()
        .iter()
        .filter(|(_, n)| *n == QueryName::ReplicaLastSample)
        .map(|(t, _)| *t - start)
        .collect();
    assert!(
        ticks[0] < Duration::from_secs(1),
        "first tick at once: {ticks:?}"
    );
    assert!(ticks.len() >= 3, "{ticks:?}");
    for w in ticks.windows(2) {
        let gap = w[1] - w[0];
        assert!(
            gap >= Duration::from_secs(27) && gap <= Duration::from_millis(30_500),
            "gap {gap:?} in {ticks:?}"
        );
    }
    assert!(rec.models.lock().unwrap().iter().all(|(k, _)| *k == key()));
    assert!(
        rec.cache
            .lock()
            .unwrap()
            .iter()
            .any(|(_, o)| *o == CacheOutcome::Hit)
    );
}

#[tokio::test(start_paused = true)]
async fn an_idle_model_is_untracked_after_five_minutes_and_untrack_drops_last_good() {
    let down = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let d2 = down.clone();
    let api = FakeApi::start(move |r, n| {
        if d2.load(std::sync::atomic::Ordering::SeqCst) {
            FakeResponse::error(503, "unavailable", "down")
        } else {
            answer(r, n)
        }
    })
    .await;
    let s = src(&api.base_url(), CacheConfig::default(), None);
    s.collect(&request(&[key()])).await;
    assert_eq!(s.stats().tracked_models, 1);
    tokio::time::advance(Duration::from_secs(299)).await;
    s.tick().await;
    assert_eq!(s.stats().tracked_models, 1);
    tokio::time::advance(Duration::from_secs(1)).await;
    s.tick().await;
    assert_eq!(s.stats().tracked_models, 0);

    // untrack drops the last-good copy: a later outage gives Unavailable at once.
    s.collect(&request(&[key()])).await;
    s.untrack(&key());
    assert_eq!(s.stats().tracked_models, 0);
    down.store(true, std::sync::atomic::Ordering::SeqCst);
    tokio::time::advance(Duration::from_secs(31)).await;
    let m = s.collect(&request(&[key()])).await.models[&key()].clone();
    assert!(!m.served_from_last_good);
    assert!(m.replicas.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_completes_within_five_seconds_while_a_query_hangs() {
    let api = FakeApi::start(|r, n| answer(r, n).delayed(Duration::from_secs(3600))).await;
    let s = src(&api.base_url(), CacheConfig::default(), None);
    s.track(&[ModelRequest::new(key())]);
    let shutdown = CancellationToken::new();
    let handle = s.clone().spawn_background(shutdown.clone());
    let reader = {
        let s = s.clone();
        tokio::spawn(async move { s.collect(&request(&[key()])).await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(api.count() >= 1, "a query is hanging");
    let t0 = std::time::Instant::now();
    shutdown.cancel();
    handle.await.unwrap();
    let snap = reader.await.unwrap();
    assert!(t0.elapsed() < Duration::from_secs(5), "{:?}", t0.elapsed());
    let e = &snap.models[&key()].errors[0].1;
    assert_eq!(e.to_string(), "collector is shutting down");
}
