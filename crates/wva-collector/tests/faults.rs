//! Fault tests against an in-test HTTP server standing in for Prometheus (spec §10.2).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers outside #[test] fns

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{MapDirectory, fast_config, request};
use test_support::{FakeApi, FakeResponse, RecordedRequest};
use wva_collector::{
    AbsentReason, Availability, BreakerState, CacheConfig, CatalogueConfig, CollectorError, Field,
    Freshness, MetricsSource, ModelKey, PrometheusConfig, PrometheusSource, QueryName,
    ReplicaDirectory, TokenSource,
};

fn key() -> ModelKey {
    ModelKey::new("ns", "m")
}

fn now_s() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// A healthy answer for any catalogue query: one pod `m-0` of model `m` in `ns`.
fn good(req: &RecordedRequest) -> FakeResponse {
    let q = req.field("query").unwrap_or_default();
    let t = now_s();
    let value = if q.contains("timestamp(") {
        format!("{}", t - 1.0)
    } else if q.contains("kv_cache_usage_perc") {
        "0.5".into()
    } else if q.contains("num_requests_waiting") {
        "2".into()
    } else {
        "1".into()
    };
    vector_one(t, &value)
}

fn vector_one(t: f64, value: &str) -> FakeResponse {
    FakeResponse::vector(&format!(
        r#"[{{"metric":{{"namespace":"ns","model_name":"m","pod":"m-0","num_gpu_blocks":"100","block_size":"16"}},"value":[{t},"{value}"]}}]"#
    ))
}

fn is_liveness(req: &RecordedRequest) -> bool {
    req.field("query")
        .unwrap_or_default()
        .contains("timestamp(")
}

fn dir() -> Arc<MapDirectory> {
    let d = MapDirectory::default();
    d.map(&key(), "m-0", "v");
    Arc::new(d)
}

fn core_source(cfg: PrometheusConfig, dir: Arc<dyn ReplicaDirectory>) -> Arc<PrometheusSource> {
    PrometheusSource::new(
        cfg,
        CatalogueConfig::with_groups([]),
        CacheConfig::default(),
        dir,
        None,
    )
    .unwrap()
}

fn liveness_error(
    src: &PrometheusSource,
    snap: &wva_collector::CollectedSnapshot,
) -> CollectorError {
    let _ = src;
    snap.models[&key()]
        .errors
        .iter()
        .find(|(n, _)| *n == QueryName::ReplicaLastSample)
        .map(|(_, e)| e.clone())
        .expect("a liveness error")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_500_is_tried_five_times_then_an_api_error_and_the_model_is_unavailable() {
    let api = FakeApi::start(|_, _| FakeResponse::error(500, "internal", "boom")).await;
    let src = core_source(fast_config(&api.base_url()), dir());
    let snap = src.collect(&request(&[key()])).await;
    let m = &snap.models[&key()];
    assert_eq!(m.availability, Availability::Unavailable);
    assert!(m.replicas.is_empty(), "never zero-filled records");
    let e = liveness_error(&src, &snap);
    assert!(
        matches!(&e, CollectorError::Api { status: 500, error_type, .. } if error_type == "internal"),
        "{e:?}"
    );
    let liveness_attempts = api.requests().iter().filter(|r| is_liveness(r)).count();
    assert_eq!(liveness_attempts, 5);
    let r = &api.requests()[0];
    assert_eq!(r.method, "POST");
    assert_eq!(r.path, "/api/v1/query");
    assert_eq!(
        r.header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(r.header("accept"), Some("application/json"));
    assert!(r.field("timeout").is_some());
    assert!(r.field("time").is_none(), "no time parameter");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_503_followed_by_200_succeeds() {
    let seen: Mutex<HashMap<String, usize>> = Mutex::default();
    let api = FakeApi::start(move |req, _| {
        let q = req.field("query").unwrap_or_default().to_string();
        let mut s = seen.lock().unwrap();
        let n = s.entry(q).or_insert(0);
        *n += 1;
        if *n == 1 {
            FakeResponse::error(503, "unavailable", "warming up")
        } else {
            good(req)
        }
    })
    .await;
    let src = core_source(fast_config(&api.base_url()), dir());
    let snap = src.collect(&request(&[key()])).await;
    let m = &snap.models[&key()];
    assert_eq!(m.availability, Availability::Available, "{:?}", m.errors);
    assert_eq!(m.replicas["m-0"].kv_cache_usage, Some(0.5));
    assert_eq!(api.count(), 8, "4 queries, 2 attempts each");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_data_400_and_execution_422_are_sent_exactly_once_and_never_open_the_breaker() {
    for (status, kind) in [(400, "bad_data"), (422, "execution")] {
        let api =
            FakeApi::start(move |_, _| FakeResponse::error(status, kind, "parse error")).await;
        let src = core_source(fast_config(&api.base_url()), dir());
        for _ in 0..2 {
            let snap = src.collect(&request(&[key()])).await;
            let e = liveness_error(&src, &snap);
            assert!(!e.is_retryable());
            assert_eq!(
                e.to_string(),
                format!(
                    "query replica_last_sample: Prometheus answered HTTP {status} ({kind}): parse error"
                )
            );
        }
        assert_eq!(api.count(), 8, "2 collects × 4 queries × 1 attempt");
        assert_eq!(src.stats().breaker, BreakerState::Closed);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_429_retry_after_is_honoured() {
    let times: Arc<Mutex<Vec<std::time::Instant>>> = Arc::default();
    let t = times.clone();
    let api = FakeApi::start(move |req, _| {
        if !is_liveness(req) {
            return good(req);
        }
        let mut t = t.lock().unwrap();
        t.push(std::time::Instant::now());
        if t.len() == 1 {
            FakeResponse::error(429, "too_many_requests", "slow down")
                .with_header("retry-after", "1")
        } else {
            good(req)
        }
    })
    .await;
    let src = core_source(fast_config(&api.base_url()), dir());
    let snap = src.collect(&request(&[key()])).await;
    assert_eq!(snap.models[&key()].replicas.len(), 1);
    let t = times.lock().unwrap();
    assert_eq!(t.len(), 2);
    let gap = t[1] - t[0];
    assert!(gap >= Duration::from_secs(1), "waited only {gap:?}");
}

fn token_api(expected: &'static str) -> impl Fn(&RecordedRequest, usize) -> FakeResponse {
    move |req, _| {
        if req.header("authorization") == Some(expected) {
            good(req)
        } else {
            FakeResponse::error(401, "unauthorized", "bad token")
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_401_after_the_token_file_changed_retries_once_with_the_new_token() {
    let dirp = tempfile::tempdir().unwrap();
    let path = dirp.path().join("token");
    std::fs::write(&path, "old-token\n").unwrap();
    let api = FakeApi::start(token_api("Bearer new-token")).await;
    let mut cfg = fast_config(&api.base_url());
    cfg.token = TokenSource::File(path.clone());
    let src = core_source(cfg, dir());
    std::fs::write(&path, "new-token").unwrap();
    let snap = src.collect(&request(&[key()])).await;
    assert_eq!(
        snap.models[&key()].replicas.len(),
        1,
        "{:?}",
        snap.models[&key()].errors
    );
    let liveness: Vec<_> = api.requests().into_iter().filter(is_liveness).collect();
    assert_eq!(liveness.len(), 2);
    assert_eq!(
        liveness[0].header("authorization"),
        Some("Bearer old-token")
    );
    assert_eq!(
        liveness[1].header("authorization"),
        Some("Bearer new-token")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_401_without_a_token_change_is_one_attempt_then_unauthorized() {
    let dirp = tempfile::tempdir().unwrap();
    let path = dirp.path().join("token");
    std::fs::write(&path, "old-token").unwrap();
    let api = FakeApi::start(token_api("Bearer new-token")).await;
    let mut cfg = fast_config(&api.base_url());
    cfg.token = TokenSource::File(path);
    let src = core_source(cfg, dir());
    let snap = src.collect(&request(&[key()])).await;
    let e = liveness_error(&src, &snap);
    assert_eq!(
        e.to_string(),
        "query replica_last_sample: Prometheus refused the credentials (HTTP 401)"
    );
    assert_eq!(api.requests().iter().filter(|r| is_liveness(r)).count(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_answer_and_a_stalled_body_time_out_per_attempt_within_the_deadline() {
    for stall in [false, true] {
        let api = FakeApi::start(move |req, _| {
            let mut r = good(req);
            if stall {
                r.stall_body = true;
            } else {
                r.delay = Duration::from_secs(30);
            }
            r
        })
        .await;
        let mut cfg = fast_config(&api.base_url());
        cfg.query_timeout = Duration::from_millis(300);
        cfg.retry.max_attempts = 2;
        cfg.query_deadline = Duration::from_secs(3);
        let src = core_source(cfg, dir());
        let t0 = std::time::Instant::now();
        let snap = src.collect(&request(&[key()])).await;
        assert!(t0.elapsed() < Duration::from_secs(3), "{:?}", t0.elapsed());
        let e = liveness_error(&src, &snap);
        assert_eq!(
            e,
            CollectorError::Timeout {
                query: "replica_last_sample".into(),
                after: Duration::from_millis(300)
            },
            "stall={stall}"
        );
        assert_eq!(api.requests().iter().filter(|r| is_liveness(r)).count(), 2);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_matrix_and_oversized_answers_are_pinned_errors_sent_once() {
    type Check = fn(&CollectorError) -> bool;
    let cases: Vec<(FakeResponse, Check)> = vec![
        (
            FakeResponse::json(200, "<html><body>proxy error</body></html>"),
            |e| matches!(e, CollectorError::Decode { .. }),
        ),
        (
            FakeResponse::json(200, "{\"status\":\"success\",\"data\":"),
            |e| matches!(e, CollectorError::Decode { .. }),
        ),
        (
            FakeResponse::json(
                200,
                r#"{"status":"success","data":{"resultType":"matrix","result":[]}}"#,
            ),
            |e| matches!(e, CollectorError::UnexpectedResultType { got, .. } if got == "matrix"),
        ),
        (
            FakeResponse::json(
                200,
                r#"{"status":"success","data":{"resultType":"scalar","result":[1,"1"]}}"#,
            ),
            |e| matches!(e, CollectorError::UnexpectedResultType { got, .. } if got == "scalar"),
        ),
        (
            FakeResponse::vector(&format!(
                "[{}]",
                "{\"metric\":{},\"value\":[1,\"1\"]},".repeat(100) + "{}"
            )),
            |e| matches!(e, CollectorError::ResponseTooLarge { limit: 1000, .. }),
        ),
    ];
    for (answer, check) in cases {
        let a = answer.clone();
        let api = FakeApi::start(move |_, _| a.clone()).await;
        let mut cfg = fast_config(&api.base_url());
        cfg.max_response_bytes = 1000;
        let src = core_source(cfg, dir());
        let snap = src.collect(&request(&[key()])).await;
        let e = liveness_error(&src, &snap);
        assert!(check(&e), "{e:?}");
        assert_eq!(
            api.requests().iter().filter(|r| is_liveness(r)).count(),
            1,
            "{e}"
        );
        assert_eq!(snap.models[&key()].availability, Availability::Unavailable);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nan_inf_and_out_of_range_samples_are_dropped_counted_and_never_zero() {
    let api = FakeApi::start(|req, _| {
        let q = req.field("query").unwrap_or_default();
        let t = now_s();
        if q.contains("timestamp(") {
            vector_one(t, &format!("{}", t - 2.0))
        } else if q.contains("kv_cache_usage_perc") {
            vector_one(t, "1.5")
        } else if q.contains("num_requests_waiting") {
            vector_one(t, "NaN")
        } else {
            vector_one(t, "+Inf")
        }
    })
    .await;
    let src = core_source(fast_config(&api.base_url()), dir());
    let snap = src.collect(&request(&[key()])).await;
    let m = &snap.models[&key()];
    let r = &m.replicas["m-0"];
    assert_eq!(r.kv_cache_usage, None);
    assert_eq!(r.absent[&Field::KvCacheUsage], AbsentReason::OutOfRange);
    assert_eq!(r.queue_length, None);
    assert_eq!(r.absent[&Field::QueueLength], AbsentReason::NonFinite);
    assert_eq!(r.running_requests, None);
    assert_eq!(r.absent[&Field::RunningRequests], AbsentReason::NonFinite);
    assert_eq!(
        r.absent[&Field::AvgInputTokens],
        AbsentReason::GroupDisabled
    );
    assert_eq!(
        m.availability,
        Availability::Partial,
        "a live pod without KV/queue"
    );
    let d = src.stats().dropped;
    assert_eq!((d.out_of_range, d.non_finite), (1, 2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_result_means_no_replicas_available_when_none_expected_unavailable_when_listed() {
    let api = FakeApi::start(|_, _| FakeResponse::vector("[]")).await;
    let d = dir();
    let src = core_source(fast_config(&api.base_url()), d.clone());
    let snap = src.collect(&request(&[key()])).await;
    let m = &snap.models[&key()];
    assert!(m.replicas.is_empty());
    assert_eq!(m.availability, Availability::Available, "scaled to zero");
    d.list(&key(), &["m-0"]);
    let snap = src.collect(&request(&[key()])).await;
    let m = &snap.models[&key()];
    assert_eq!(m.availability, Availability::Unavailable);
    assert_eq!(
        m.missing_pods,
        vec![("m-0".to_string(), "no live series".to_string())]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn samples_without_pod_are_unlabelled_and_unmapped_pods_are_counted() {
    let api = FakeApi::start(|_, _| {
        let t = now_s();
        FakeResponse::vector(&format!(
            r#"[{{"metric":{{"namespace":"ns","model_name":"m"}},"value":[{t},"1"]}},
                {{"metric":{{"namespace":"ns","model_name":"m","pod":"stranger"}},"value":[{t},"{t}"]}},
                {{"metric":{{"namespace":"ns","model_name":"other","pod":"x"}},"value":[{t},"{t}"]}}]"#
        ))
    })
    .await;
    let src = core_source(fast_config(&api.base_url()), dir());
    let snap = src.collect(&request(&[key()])).await;
    assert!(snap.models[&key()].replicas.is_empty());
    let d = src.stats().dropped;
    assert_eq!(d.unlabelled, 4, "one per query");
    assert_eq!(d.unmapped, 1);
    assert_eq!(d.untracked, 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_failures_open_the_breaker_which_sends_nothing_until_a_good_probe_closes_it() {
    let down = Arc::new(AtomicBool::new(true));
    let d2 = down.clone();
    let api = FakeApi::start(move |req, _| {
        if d2.load(Ordering::SeqCst) {
            FakeResponse::error(503, "unavailable", "down")
        } else {
            good(req)
        }
    })
    .await;
    let mut cfg = fast_config(&api.base_url());
    cfg.retry.max_attempts = 1;
    cfg.breaker.cooldown = Duration::from_millis(300);
    let src = core_source(cfg, dir());
    src.collect(&request(&[key()])).await;
    src.collect(&request(&[key()])).await;
    assert!(matches!(src.stats().breaker, BreakerState::Open { .. }));
    let sent = api.count();
    let t0 = std::time::Instant::now();
    let snap = src.collect(&request(&[key()])).await;
    assert!(t0.elapsed() < Duration::from_millis(200), "answers at once");
    assert_eq!(api.count(), sent, "nothing sent while open");
    let e = liveness_error(&src, &snap);
    assert!(matches!(e, CollectorError::CircuitOpen { .. }), "{e:?}");
    down.store(false, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(700)).await;
    // The half-open probe goes through; the rest fail fast until it succeeds.
    let _ = src.collect(&request(&[key()])).await;
    assert_eq!(src.stats().breaker, BreakerState::Closed);
    let snap = src.collect(&request(&[key()])).await;
    assert_eq!(snap.models[&key()].availability, Availability::Available);
}

#[tokio::test(start_paused = true)]
async fn prometheus_down_serves_last_good_then_stale_then_unavailable_never_zero() {
    let down = Arc::new(AtomicBool::new(false));
    let d2 = down.clone();
    // Paused time: the sample age is computed on the fake's clock, so answer with a fixed pair.
    let api = FakeApi::start(move |req, _| {
        if d2.load(Ordering::SeqCst) {
            return FakeResponse::error(503, "unavailable", "down");
        }
        let q = req.field("query").unwrap_or_default();
        let value = if q.contains("timestamp(") {
            "999"
        } else if q.contains("kv_cache") {
            "0.5"
        } else {
            "2"
        };
        vector_one(1000.0, value)
    })
    .await;
    let src = core_source(fast_config(&api.base_url()), dir());
    let req = request(&[key()]);
    let good_snap = src.collect(&req).await;
    assert_eq!(
        good_snap.models[&key()].availability,
        Availability::Available
    );
    down.store(true, Ordering::SeqCst);
    tokio::time::advance(Duration::from_secs(31)).await;
    let m = src.collect(&req).await.models[&key()].clone();
    assert_eq!(m.availability, Availability::Partial);
    assert!(m.served_from_last_good);
    assert_eq!(m.freshness, Freshness::Stale, "last-good is at least stale");
    assert_eq!(
        m.replicas["m-0"].kv_cache_usage,
        Some(0.5),
        "old value, not zero"
    );
    assert!(!m.errors.is_empty());
    tokio::time::advance(Duration::from_secs(60)).await;
    let m = src.collect(&req).await.models[&key()].clone();
    assert_eq!(m.availability, Availability::Partial);
    assert!(m.age >= Duration::from_secs(60));
    tokio::time::advance(Duration::from_secs(300)).await;
    let m = src.collect(&req).await.models[&key()].clone();
    assert_eq!(m.availability, Availability::Unavailable);
    assert_eq!(m.freshness, Freshness::Unavailable);
    assert!(m.replicas.is_empty());
    assert!(!m.errors.is_empty());
}

#[tokio::test]
async fn unreachable_prometheus_gives_a_transport_error_not_a_panic() {
    let addr = test_support::http::closed_port_addr();
    let mut cfg = fast_config(&format!("http://{addr}"));
    cfg.retry.max_attempts = 2;
    cfg.startup_timeout = Duration::from_millis(500);
    let src = core_source(cfg, dir());
    let snap = src.collect(&request(&[key()])).await;
    let e = liveness_error(&src, &snap);
    assert!(matches!(e, CollectorError::Transport { .. }), "{e:?}");
    assert!(e.to_string().starts_with(&format!(
        "query replica_last_sample: cannot reach Prometheus at http://{addr}: "
    )));
    let err = src.startup_check().await;
    assert!(err.unwrap_err().to_string().starts_with(
        "CRITICAL: Failed to connect to Prometheus - WVA requires Prometheus connectivity for autoscaling decisions: "
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_model_reads_its_own_batch_and_a_failed_batch_spares_the_other() {
    // A selector limit this small plans one namespace-only batch per namespace.
    let (a, b) = (ModelKey::new("ns-a", "m"), ModelKey::new("ns-b", "m"));
    let api = FakeApi::start(|req, _| {
        let q = req.field("query").unwrap_or_default();
        let t = now_s();
        let ours = if q.contains("\"ns-a\"") { "ns-a" } else { "ns-b" };
        if ours == "ns-b" && q.contains("timestamp(") {
            return FakeResponse::error(400, "bad_data", "batch b is broken");
        }
        let value = |ns: &str| {
            if q.contains("timestamp(") {
                format!("{}", t - 1.0)
            } else if ns != ours {
                // Another batch's series in this answer must not reach that batch's model.
                "0.99".to_string()
            } else if ns == "ns-a" {
                "0.25".to_string()
            } else {
                "0.75".to_string()
            }
        };
        FakeResponse::vector(&format!(
            r#"[{{"metric":{{"namespace":"ns-a","model_name":"m","pod":"a-0"}},"value":[{t},"{}"]}},
                {{"metric":{{"namespace":"ns-b","model_name":"m","pod":"b-0"}},"value":[{t},"{}"]}}]"#,
            value("ns-a"),
            value("ns-b"),
        ))
    })
    .await;
    let d = MapDirectory::default();
    d.map(&a, "a-0", "va");
    d.map(&b, "b-0", "vb");
    let mut catalogue = CatalogueConfig::with_groups([]);
    catalogue.selector_max_bytes = 20;
    let src = PrometheusSource::new(
        fast_config(&api.base_url()),
        catalogue,
        CacheConfig::default(),
        Arc::new(d),
        None,
    )
    .unwrap();
    let snap = src.collect(&request(&[a.clone(), b.clone()])).await;
    assert_eq!(src.plan().batches.len(), 2);

    let ma = &snap.models[&a];
    assert_eq!(ma.availability, Availability::Available, "{ma:?}");
    assert_eq!(ma.replicas.keys().collect::<Vec<_>>(), ["a-0"]);
    assert_eq!(ma.replicas["a-0"].kv_cache_usage, Some(0.25));

    let mb = &snap.models[&b];
    assert_eq!(mb.availability, Availability::Unavailable, "{mb:?}");
    assert!(mb.replicas.is_empty(), "{mb:?}");
    assert!(
        mb.errors
            .iter()
            .any(|(n, e)| *n == QueryName::ReplicaLastSample && e.to_string().contains("batch b")),
        "{:?}",
        mb.errors
    );
}
