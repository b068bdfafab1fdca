//! The HTTP listeners over loopback: paths, status codes, content types, auth and shutdown.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::http::{get, send};
use common::{exposition, populate};
use tokio::io::AsyncWriteExt;
use tokio_util::sync::CancellationToken;
use wva_exposition::{
    BindAddress, Exposition, ExpositionConfig, ExpositionError, MetricsAuth, MetricsNaming,
    ServerConfig, Servers, StaticToken,
};

fn loopback() -> BindAddress {
    "127.0.0.1:0".parse().unwrap()
}

async fn start(e: &Exposition, auth: MetricsAuth) -> (Servers, CancellationToken) {
    let shutdown = CancellationToken::new();
    let config = ServerConfig {
        metrics: loopback(),
        probes: loopback(),
        auth,
        ..ServerConfig::default()
    };
    (e.serve(config, shutdown.clone()).await.unwrap(), shutdown)
}

#[tokio::test]
async fn metrics_serves_the_text_format_whatever_the_accept_header() {
    let e = exposition(MetricsNaming::Inferno, None);
    populate(&e);
    let (servers, _shutdown) = start(&e, MetricsAuth::None).await;
    let addr = servers.metrics_addr().unwrap();
    let r = send(
        addr,
        "GET",
        "/metrics",
        &[("Accept", "application/openmetrics-text; version=1.0.0")],
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    assert!(r.header("content-encoding").is_none());
    assert_eq!(r.body, e.encode());
    assert!(
        r.body
            .contains("inferno_desired_replicas{variant_name=\"vllm-llama-h100\"")
    );
}

#[tokio::test]
async fn head_answers_headers_without_a_body() {
    let e = exposition(MetricsNaming::Inferno, None);
    populate(&e);
    let (servers, _shutdown) = start(&e, MetricsAuth::None).await;
    let r = send(servers.metrics_addr().unwrap(), "HEAD", "/metrics", &[]).await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    assert!(r.body.is_empty());
    let r = send(servers.probes_addr().unwrap(), "HEAD", "/healthz", &[]).await;
    assert_eq!(r.status, 200);
    assert!(r.body.is_empty());
}

#[tokio::test]
async fn unknown_path_is_404_and_other_methods_are_405() {
    let e = exposition(MetricsNaming::Inferno, None);
    let (servers, _shutdown) = start(&e, MetricsAuth::None).await;
    let metrics = servers.metrics_addr().unwrap();
    let probes = servers.probes_addr().unwrap();
    let r = get(metrics, "/nope").await;
    assert_eq!((r.status, r.body.as_str()), (404, "not found"));
    // Probe paths live on the probes listener only, and the reverse.
    assert_eq!(get(metrics, "/healthz").await.status, 404);
    assert_eq!(get(probes, "/metrics").await.status, 404);
    let r = send(metrics, "POST", "/metrics", &[("Content-Length", "0")]).await;
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow"), Some("GET, HEAD"));
    let r = send(probes, "DELETE", "/readyz", &[]).await;
    assert_eq!(r.status, 405);
}

#[tokio::test]
async fn debug_cycle_is_503_until_the_first_report_then_serves_it() {
    let e = exposition(MetricsNaming::Inferno, None);
    let (servers, _shutdown) = start(&e, MetricsAuth::None).await;
    let addr = servers.metrics_addr().unwrap();
    let r = get(addr, "/debug/cycle").await;
    assert_eq!(r.status, 503);
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.body, r#"{"error":"no cycle has completed yet"}"#);

    let report =
        serde_json::json!({"decisions": [{"variant": "a", "targetReplicas": 2}], "models": []});
    e.set_cycle_report(std::sync::Arc::new(report.clone()));
    let r = get(addr, "/debug/cycle").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&r.body).unwrap(),
        report
    );
    assert!(!r.body.contains('\n'));

    let r = get(addr, "/debug/cycle?pretty").await;
    assert_eq!(r.status, 200);
    assert!(r.body.contains("\n  \"decisions\": ["));
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&r.body).unwrap(),
        report
    );

    e.set_cycle_report_json(r#"{"decisions":[]}"#);
    assert_eq!(get(addr, "/debug/cycle").await.body, r#"{"decisions":[]}"#);
}

#[tokio::test]
async fn debug_cycle_on_a_follower_says_not_the_leader() {
    let e = Exposition::new(ExpositionConfig {
        leader_elect: true,
        ..ExpositionConfig::default()
    })
    .unwrap();
    e.set_cycle_report_json("{}");
    let (servers, _shutdown) = start(&e, MetricsAuth::None).await;
    let addr = servers.metrics_addr().unwrap();
    let r = get(addr, "/debug/cycle").await;
    assert_eq!(
        (r.status, r.body.as_str()),
        (503, r#"{"error":"not the leader"}"#)
    );
    assert!(
        get(addr, "/metrics")
            .await
            .body
            .contains("wva_is_leader 0\n")
    );
    e.set_leader(true);
    assert_eq!(get(addr, "/debug/cycle").await.status, 200);
    assert!(
        get(addr, "/metrics")
            .await
            .body
            .contains("wva_is_leader 1\n")
    );
}

#[tokio::test]
async fn healthz_is_ok_until_a_task_stops() {
    let e = exposition(MetricsNaming::Inferno, None);
    let (servers, _shutdown) = start(&e, MetricsAuth::None).await;
    let addr = servers.probes_addr().unwrap();
    let r = get(addr, "/healthz").await;
    assert_eq!((r.status, r.body.as_str()), (200, "ok"));
    assert_eq!(r.header("content-type"), Some("text/plain; charset=utf-8"));
    e.health().task_stopped("Deployment");
    let r = get(addr, "/healthz").await;
    assert_eq!(
        (r.status, r.body.as_str()),
        (500, "reflector task Deployment stopped")
    );
}

#[tokio::test]
async fn readyz_lists_checks_until_all_pass() {
    let e = exposition(MetricsNaming::Inferno, None);
    let config = e
        .readiness()
        .add_check("config", "configuration not loaded yet");
    let informers = e
        .readiness()
        .add_check("informers", "waiting for the initial list of Deployment");
    let (servers, _shutdown) = start(&e, MetricsAuth::None).await;
    let addr = servers.probes_addr().unwrap();
    config.set_ready();
    let r = get(addr, "/readyz").await;
    assert_eq!(r.status, 503);
    assert_eq!(
        r.body,
        "[+]config ok\n[-]informers failed: waiting for the initial list of Deployment\nreadyz check failed\n"
    );
    informers.set_ready();
    let r = get(addr, "/readyz").await;
    assert_eq!((r.status, r.body.as_str()), (200, "ok"));
    let r = get(addr, "/readyz?verbose").await;
    assert_eq!(
        (r.status, r.body.as_str()),
        (200, "[+]config ok\n[+]informers ok\nreadyz check passed\n")
    );
}

#[tokio::test]
async fn disabled_metrics_listener_still_serves_probes() {
    let e = exposition(MetricsNaming::Inferno, None);
    let shutdown = CancellationToken::new();
    let config = ServerConfig {
        metrics: "0".parse().unwrap(),
        probes: loopback(),
        ..ServerConfig::default()
    };
    let servers = e.serve(config, shutdown.clone()).await.unwrap();
    assert_eq!(servers.metrics_addr(), None);
    assert_eq!(
        get(servers.probes_addr().unwrap(), "/healthz").await.status,
        200
    );
}

#[tokio::test]
async fn bind_failure_names_the_address_and_listener() {
    let e = exposition(MetricsNaming::Inferno, None);
    let taken = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = taken.local_addr().unwrap();
    let config = ServerConfig {
        metrics: BindAddress::Addr(addr),
        probes: loopback(),
        ..ServerConfig::default()
    };
    let err = e.serve(config, CancellationToken::new()).await.unwrap_err();
    assert!(matches!(
        err,
        ExpositionError::Bind {
            listener: "metrics",
            ..
        }
    ));
    assert!(
        err.to_string()
            .starts_with(&format!("cannot bind {addr} for metrics: "))
    );
}

#[tokio::test]
async fn static_token_guards_metrics_and_debug_cycle_only() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("token");
    std::fs::write(&path, "s3cret\n").unwrap();
    let e = exposition(MetricsNaming::Inferno, None);
    let (servers, _shutdown) =
        start(&e, MetricsAuth::Static(StaticToken::load(&path).unwrap())).await;
    let metrics = servers.metrics_addr().unwrap();
    let r = get(metrics, "/metrics").await;
    assert_eq!(r.status, 401);
    assert_eq!(
        r.header("www-authenticate"),
        Some("Bearer realm=\"wva-metrics\"")
    );
    let r = send(
        metrics,
        "GET",
        "/debug/cycle",
        &[("Authorization", "Bearer wrong")],
    )
    .await;
    assert_eq!(r.status, 401);
    let r = send(
        metrics,
        "GET",
        "/metrics",
        &[("Authorization", "Bearer s3cret")],
    )
    .await;
    assert_eq!(r.status, 200);
    assert!(
        r.body
            .contains("wva_metrics_auth_requests_total{result=\"allowed\"} 1\n")
    );
    assert!(
        r.body
            .contains("wva_metrics_auth_requests_total{result=\"unauthenticated\"} 2\n")
    );
    assert_eq!(
        get(servers.probes_addr().unwrap(), "/readyz").await.status,
        200
    );
}

#[tokio::test]
async fn shutdown_stops_both_listeners_within_five_seconds_despite_a_stuck_client() {
    let e = exposition(MetricsNaming::Inferno, None);
    let (servers, shutdown) = start(&e, MetricsAuth::None).await;
    let metrics = servers.metrics_addr().unwrap();
    // A client that sends half a request and then stalls holds its connection open.
    let mut stuck = tokio::net::TcpStream::connect(metrics).await.unwrap();
    stuck
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    // And an idle keep-alive connection after a full request.
    let mut idle = tokio::net::TcpStream::connect(servers.probes_addr().unwrap())
        .await
        .unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(5), servers.wait())
        .await
        .expect("servers stopped within 5 s");
    assert!(tokio::net::TcpStream::connect(metrics).await.is_err());
}
