//! `ScrapeClient`: headers, token, status, cap, timeout and transport errors.
#![allow(clippy::unwrap_used)] // helpers outside #[test] fns unwrap too

mod scrape_support;

use std::time::Duration;

use scrape_support::{MetricsServer, Page, closed_port};
use wva_collector::scrape::{ScrapeClientConfig, ScrapeError};
use wva_collector::{Endpoint, Scheme, ScrapeClient, Secret, TokenSource};

fn client(config: ScrapeClientConfig) -> ScrapeClient {
    ScrapeClient::new(&config).unwrap()
}

#[tokio::test]
async fn asks_for_text_0_0_4_and_returns_the_body() {
    let server = MetricsServer::start().await;
    server.set_body(
        "/metrics",
        "vllm:num_requests_running{model_name=\"m\"} 1\n",
    );
    let body = client(ScrapeClientConfig::default())
        .scrape(&server.endpoint("/metrics"))
        .await
        .unwrap();
    assert_eq!(body, "vllm:num_requests_running{model_name=\"m\"} 1\n");
    let seen = server.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].header("accept"), Some("text/plain;version=0.0.4"));
    assert_eq!(seen[0].header("authorization"), None);
}

#[tokio::test]
async fn the_path_comes_from_the_endpoint() {
    let server = MetricsServer::start().await;
    server.set_body("/pods/p-1/metrics", "x 1\n");
    let c = client(ScrapeClientConfig::default());
    assert_eq!(
        c.scrape(&server.endpoint("/pods/p-1/metrics"))
            .await
            .unwrap(),
        "x 1\n"
    );
    assert_eq!(server.seen()[0].path, "/pods/p-1/metrics");
}

#[tokio::test]
async fn a_static_bearer_token_is_sent() {
    let server = MetricsServer::start().await;
    let mut page = Page::ok("x 1\n");
    page.require_token = Some("s3cret".into());
    server.set("/metrics", page);
    let c = client(ScrapeClientConfig {
        token: TokenSource::Static(Secret::new("s3cret")),
        ..ScrapeClientConfig::default()
    });
    assert_eq!(
        c.scrape(&server.endpoint("/metrics")).await.unwrap(),
        "x 1\n"
    );
    assert_eq!(
        server.seen()[0].header("authorization"),
        Some("Bearer s3cret")
    );
}

#[tokio::test]
async fn a_401_rereads_a_changed_token_file_and_retries_once() {
    let server = MetricsServer::start().await;
    let mut page = Page::ok("x 1\n");
    page.require_token = Some("new-token".into());
    server.set("/metrics", page);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("token");
    std::fs::write(&path, "old-token\n").unwrap();
    let c = client(ScrapeClientConfig {
        token: TokenSource::File(path.clone()),
        ..ScrapeClientConfig::default()
    });
    std::fs::write(&path, "new-token\n").unwrap();
    assert_eq!(
        c.scrape(&server.endpoint("/metrics")).await.unwrap(),
        "x 1\n"
    );
    let auth: Vec<String> = server
        .seen()
        .iter()
        .map(|s| s.header("authorization").unwrap_or("").to_owned())
        .collect();
    assert_eq!(auth, vec!["Bearer old-token", "Bearer new-token"]);
}

#[tokio::test]
async fn a_refused_token_is_unauthorized_and_never_printed() {
    let server = MetricsServer::start().await;
    let mut page = Page::ok("x 1\n");
    page.require_token = Some("right".into());
    server.set("/metrics", page);
    let c = client(ScrapeClientConfig {
        token: TokenSource::Static(Secret::new("wrong-hunter2")),
        ..ScrapeClientConfig::default()
    });
    let err = c.scrape(&server.endpoint("/metrics")).await.unwrap_err();
    assert!(
        matches!(err, ScrapeError::Unauthorized { status: 401, .. }),
        "{err:?}"
    );
    assert_eq!(server.seen().len(), 1, "a static token is not retried");
    for text in [err.to_string(), format!("{err:?}"), format!("{c:?}")] {
        assert!(!text.contains("hunter2"), "{text}");
    }
}

#[tokio::test]
async fn an_error_status_names_the_url_and_status() {
    let server = MetricsServer::start().await;
    server.set("/metrics", Page::status(500));
    let ep = server.endpoint("/metrics");
    let err = client(ScrapeClientConfig::default())
        .scrape(&ep)
        .await
        .unwrap_err();
    assert_eq!(
        err,
        ScrapeError::Status {
            url: ep.url(),
            status: 500
        }
    );
    assert_eq!(err.to_string(), format!("{} answered HTTP 500", ep.url()));
}

#[tokio::test]
async fn a_body_over_the_cap_is_rejected() {
    let server = MetricsServer::start().await;
    server.set_body("/metrics", "x 1\n".repeat(300));
    let c = client(ScrapeClientConfig {
        max_body_bytes: 1000,
        ..ScrapeClientConfig::default()
    });
    let err = c.scrape(&server.endpoint("/metrics")).await.unwrap_err();
    assert!(
        matches!(err, ScrapeError::TooLarge { limit: 1000, .. }),
        "{err:?}"
    );
    // At the cap exactly, it passes.
    server.set_body("/metrics", "x 1\n".repeat(250));
    assert!(c.scrape(&server.endpoint("/metrics")).await.is_ok());
}

#[tokio::test]
async fn a_stalled_server_times_out_within_the_timeout() {
    let server = MetricsServer::start().await;
    let mut page = Page::ok("x 1\n");
    page.delay = Duration::from_secs(30);
    server.set("/metrics", page);
    let c = client(ScrapeClientConfig {
        timeout: Duration::from_millis(300),
        ..ScrapeClientConfig::default()
    });
    let started = std::time::Instant::now();
    let err = c.scrape(&server.endpoint("/metrics")).await.unwrap_err();
    assert!(matches!(err, ScrapeError::Timeout { .. }), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn a_closed_port_is_a_transport_error() {
    let addr = closed_port().await;
    let err = client(ScrapeClientConfig::default())
        .scrape(&Endpoint::new(Scheme::Http, addr, "/metrics"))
        .await
        .unwrap_err();
    assert!(matches!(err, ScrapeError::Transport { .. }), "{err:?}");
    assert!(
        err.to_string()
            .starts_with(&format!("cannot reach http://{addr}/metrics: "))
    );
}

#[tokio::test]
async fn https_without_tls_options_is_refused_instead_of_unverified() {
    let server = MetricsServer::start().await;
    let err = client(ScrapeClientConfig::default())
        .scrape(&Endpoint::new(Scheme::Https, server.addr, "/metrics"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, ScrapeError::TlsNotConfigured { .. }),
        "{err:?}"
    );
    assert!(server.seen().is_empty());
}

#[tokio::test]
async fn a_body_that_is_not_utf8_is_an_error() {
    // The server writes its body as a String; emulate bytes by a Latin-1 page via raw TCP.
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        let mut buf = [0u8; 2048];
        let _ = s.read(&mut buf).await;
        let body: &[u8] = b"x{a=\"\xff\"} 1\n";
        let head = format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        s.write_all(head.as_bytes()).await.unwrap();
        s.write_all(body).await.unwrap();
    });
    let err = client(ScrapeClientConfig::default())
        .scrape(&Endpoint::new(Scheme::Http, addr, "/metrics"))
        .await
        .unwrap_err();
    assert!(matches!(err, ScrapeError::NotUtf8 { .. }), "{err:?}");
}
