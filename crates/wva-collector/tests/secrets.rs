//! The bearer token never appears in logs, errors, stats or snapshots (spec §6.3, §10.2).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers outside #[test] fns

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use common::{MapDirectory, fast_config, request};
use test_support::{FakeApi, FakeResponse};
use wva_collector::{
    CacheConfig, CatalogueConfig, MetricsSource, ModelKey, PrometheusSource, Secret, TokenSource,
};

const TOKEN: &str = "s3cr3t-T0KEN-do-not-print";

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

// Current-thread runtime: every task (fetches, the fake server) logs through this thread's
// default subscriber.
#[tokio::test]
async fn the_token_is_in_no_log_line_error_stats_or_snapshot() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let api = FakeApi::start(|req, n| {
        if n < 4 {
            FakeResponse::error(401, "unauthorized", "no")
        } else if n < 8 {
            FakeResponse::error(503, "unavailable", "down")
        } else {
            let t = 1000.0;
            assert!(req.header("authorization").is_some());
            FakeResponse::vector(&format!(
                r#"[{{"metric":{{"namespace":"ns","model_name":"m","pod":"p"}},"value":[{t},"999"]}}]"#
            ))
        }
    })
    .await;
    let mut cfg = fast_config(&api.base_url());
    cfg.token = TokenSource::Static(Secret::new(TOKEN));
    cfg.retry.max_attempts = 1;
    let cfg_debug = format!("{cfg:?}");
    let dir = Arc::new(MapDirectory::default());
    let key = ModelKey::new("ns", "m");
    dir.map(&key, "p", "v");
    let src = PrometheusSource::new(
        cfg,
        CatalogueConfig::with_groups([]),
        CacheConfig::default(),
        dir,
        None,
    )
    .unwrap();
    let mut texts = vec![cfg_debug, format!("{src:?}")];
    for _ in 0..3 {
        let snap = src.collect(&request(std::slice::from_ref(&key))).await;
        for (_, e) in snap.models.values().flat_map(|m| m.errors.iter()) {
            texts.push(e.to_string());
            texts.push(format!("{e:?}"));
        }
        texts.push(serde_json::to_string(&snap).unwrap());
        texts.push(format!("{snap:?}"));
    }
    texts.push(serde_json::to_string(&src.stats()).unwrap());
    let sent_with_token = api
        .requests()
        .iter()
        .filter(|r| r.header("authorization") == Some(&format!("Bearer {TOKEN}")))
        .count();
    assert_eq!(sent_with_token, api.count(), "the token is sent");
    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(!logs.is_empty(), "the subscriber captured the run");
    assert!(logs.contains("query failed"), "errors are logged: {logs}");
    assert!(logs.contains("refused the credentials"), "{logs}");
    texts.push(logs);
    for t in &texts {
        assert!(!t.contains(TOKEN), "token leaked in: {t}");
    }
}
