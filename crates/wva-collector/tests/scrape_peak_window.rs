//! `ScrapeConfig::peak_window`: KV and queue peaks cover only the configured window.
#![allow(clippy::unwrap_used)] // helpers outside #[test] fns unwrap too

mod scrape_support;

use std::time::Duration;

use scrape_support::{FakeVllm, MapDirectory, MetricsServer};
use wva_collector::{
    CatalogueConfig, CollectRequest, MetricsSource, ModelKey, ModelRequest, ScrapeConfig,
    ScrapeSource,
};

#[tokio::test]
async fn a_short_peak_window_forgets_a_spike_that_the_default_minute_keeps() {
    let server = MetricsServer::start().await;
    let mut results = Vec::new();
    for window in [Duration::from_secs(60), Duration::from_secs(10)] {
        let directory = MapDirectory::new();
        let key = ModelKey::new("llm", "m");
        directory.add(&key, "p1", "v1", Some(server.endpoint("/p1")));
        let config = ScrapeConfig {
            peak_window: window,
            ..ScrapeConfig::stepped()
        };
        let source =
            ScrapeSource::new(config, CatalogueConfig::default(), directory, None).unwrap();
        let request = CollectRequest::new(vec![ModelRequest::new(key.clone())]);
        source.track(&request.models);
        let mut pod = FakeVllm::new("m");
        for t in 1..=30u64 {
            // A spike at 5 s, then a calm 25 s.
            pod.kv = if t == 5 { 0.95 } else { 0.2 };
            pod.waiting = if t == 5 { 9.0 } else { 0.0 };
            server.set_body("/p1", pod.render());
            source.scrape_round(Duration::from_secs(t)).await;
        }
        let snap = source.collect(&request).await;
        let r = &snap.models[&key].replicas["p1"];
        results.push((r.kv_cache_usage, r.queue_length));
    }
    assert_eq!(
        results[0],
        (Some(0.95), Some(9.0)),
        "the default minute keeps the spike"
    );
    assert_eq!(
        results[1],
        (Some(0.2), Some(0.0)),
        "10 s later the spike is gone"
    );
}

#[test]
fn a_peak_window_over_one_minute_or_zero_is_rejected() {
    for bad in [Duration::ZERO, Duration::from_secs(61)] {
        let config = ScrapeConfig {
            peak_window: bad,
            ..ScrapeConfig::stepped()
        };
        let err = config.validate().unwrap_err().to_string();
        assert!(
            err.contains("peak_window must be greater than 0 and at most 1m"),
            "{err}"
        );
    }
}
