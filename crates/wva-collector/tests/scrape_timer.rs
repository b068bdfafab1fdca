//! `ScrapeSource` on the tokio clock: first collect, background rounds, shutdown, observer.
#![allow(clippy::unwrap_used)] // helpers outside #[test] fns unwrap too

mod scrape_support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use scrape_support::{FakeVllm, MapDirectory, MetricsServer, Page, closed_port};
use tokio_util::sync::CancellationToken;
use wva_collector::scrape::ScrapeClientConfig;
use wva_collector::{
    CatalogueConfig, CollectRequest, CollectorObserver, Endpoint, Freshness, MetricsSource,
    ModelKey, ModelRequest, QueryEvent, QueryOutcome, Scheme, ScrapeConfig, ScrapeSource,
};

fn key() -> ModelKey {
    ModelKey::new("llm", "m")
}

fn request() -> CollectRequest {
    CollectRequest::new(vec![ModelRequest::new(key())])
}

fn timer_config(interval_ms: u64) -> ScrapeConfig {
    ScrapeConfig {
        scrape_interval: Duration::from_millis(interval_ms),
        client: ScrapeClientConfig {
            timeout: Duration::from_millis(500),
            ..ScrapeClientConfig::default()
        },
        ..ScrapeConfig::default()
    }
}

fn pod_body(running: f64) -> String {
    let mut pod = FakeVllm::new("m");
    pod.running = running;
    pod.render()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_collect_waits_for_one_round_and_background_rounds_keep_values_current() {
    let server = MetricsServer::start().await;
    server.set_body("/p1", pod_body(3.0));
    let directory = MapDirectory::new();
    directory.add(&key(), "p1", "v1", Some(server.endpoint("/p1")));
    let source = ScrapeSource::new(
        timer_config(100),
        CatalogueConfig::default(),
        directory,
        None,
    )
    .unwrap();

    let snap = source.collect(&request()).await;
    let r = &snap.models[&key()].replicas["p1"];
    assert_eq!(r.running_requests, Some(3.0));
    assert_eq!(r.freshness, Freshness::Fresh);
    assert_eq!(snap.source, "scrape");
    assert_eq!(snap.queries.len(), 1);
    assert_eq!(snap.queries[0].outcome, QueryOutcome::Hit);
    assert_eq!(snap.queries[0].text, server.endpoint("/p1").url());

    let shutdown = CancellationToken::new();
    let background = source.clone().spawn_background(shutdown.clone());
    server.set_body("/p1", pod_body(8.0));
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let snap = source.collect(&request()).await;
        let r = &snap.models[&key()].replicas["p1"];
        if r.running_requests == Some(8.0) {
            assert!(r.sample_age < Duration::from_secs(1), "{:?}", r.sample_age);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "background rounds never picked up the change"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(5), background)
        .await
        .unwrap()
        .unwrap();
    assert!(source.stats().scrapes_ok >= 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_completes_within_five_seconds_while_a_scrape_hangs() {
    let server = MetricsServer::start().await;
    let mut page = Page::ok(pod_body(1.0));
    page.delay = Duration::from_secs(60);
    server.set("/p1", page);
    let directory = MapDirectory::new();
    directory.add(&key(), "p1", "v1", Some(server.endpoint("/p1")));
    let config = ScrapeConfig {
        client: ScrapeClientConfig {
            timeout: Duration::from_secs(30),
            ..ScrapeClientConfig::default()
        },
        ..ScrapeConfig::default()
    };
    let source = ScrapeSource::new(config, CatalogueConfig::default(), directory, None).unwrap();
    source.track(&request().models);
    let shutdown = CancellationToken::new();
    let background = source.clone().spawn_background(shutdown.clone());
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(5), background)
        .await
        .expect("background stopped within 5 s")
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_pod_is_missing_with_a_transport_error_and_collect_returns_promptly() {
    let directory = MapDirectory::new();
    let addr = closed_port().await;
    directory.add(
        &key(),
        "p1",
        "v1",
        Some(Endpoint::new(Scheme::Http, addr, "/metrics")),
    );
    let source = ScrapeSource::new(
        timer_config(1000),
        CatalogueConfig::default(),
        directory,
        None,
    )
    .unwrap();
    let started = Instant::now();
    let snap = source.collect(&request()).await;
    assert!(started.elapsed() < Duration::from_secs(2));
    let m = &snap.models[&key()];
    assert!(m.replicas.is_empty());
    let (pod, reason) = &m.missing_pods[0];
    assert_eq!(pod, "p1");
    assert!(
        reason.starts_with(&format!(
            "scrape of pod p1 failed: cannot reach http://{addr}/metrics"
        )),
        "{reason}"
    );
    assert_eq!(source.stats().scrapes_failed, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ages_grow_between_rounds_on_the_tokio_clock() {
    let server = MetricsServer::start().await;
    server.set_body("/p1", pod_body(1.0));
    let directory = MapDirectory::new();
    directory.add(&key(), "p1", "v1", Some(server.endpoint("/p1")));
    let source = ScrapeSource::new(
        timer_config(1000),
        CatalogueConfig::default(),
        directory,
        None,
    )
    .unwrap();
    source.collect(&request()).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let snap = source.collect(&request()).await;
    let age = snap.models[&key()].replicas["p1"].sample_age;
    assert!(age >= Duration::from_millis(300), "{age:?}");
    assert_eq!(snap.models[&key()].age, age);
}

#[derive(Default)]
struct Counting {
    queries: AtomicUsize,
    failed: AtomicUsize,
    models: AtomicUsize,
}

impl CollectorObserver for Counting {
    fn on_query(&self, event: &QueryEvent) {
        self.queries.fetch_add(1, Ordering::SeqCst);
        if event.outcome == QueryOutcome::Failed {
            self.failed.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn on_model(&self, _key: &ModelKey, _age: Duration, _freshness: Freshness) {
        self.models.fetch_add(1, Ordering::SeqCst);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_observer_hears_every_scrape_and_every_assembled_model() {
    let server = MetricsServer::start().await;
    server.set_body("/p1", pod_body(1.0));
    server.set("/p2", Page::status(500));
    let directory = MapDirectory::new();
    directory.add(&key(), "p1", "v1", Some(server.endpoint("/p1")));
    directory.add(&key(), "p2", "v1", Some(server.endpoint("/p2")));
    let observer = Arc::new(Counting::default());
    let source = ScrapeSource::new(
        timer_config(1000),
        CatalogueConfig::default(),
        directory,
        Some(observer.clone()),
    )
    .unwrap();
    source.collect(&request()).await;
    assert_eq!(observer.queries.load(Ordering::SeqCst), 2);
    assert_eq!(observer.failed.load(Ordering::SeqCst), 1);
    assert_eq!(observer.models.load(Ordering::SeqCst), 1);
}
