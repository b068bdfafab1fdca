//! `MetricsAuth::Delegated` over loopback: the authorizer is consulted with the token and path,
//! and its verdicts map to 200, 401, 403 and 503.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::{Arc, Mutex};

use common::exposition;
use common::http::{get, send};
use tokio_util::sync::CancellationToken;
use wva_exposition::{
    AuthorizeFuture, MetricsAuth, MetricsNaming, ServerConfig, TokenAuthorizer, TokenVerdict,
};

/// Verdicts by token; records every (token, path) it is asked about.
#[derive(Default)]
struct FakeAuthorizer {
    seen: Mutex<Vec<(String, String)>>,
}

impl TokenAuthorizer for FakeAuthorizer {
    fn authorize<'a>(&'a self, token: &'a str, path: &'a str) -> AuthorizeFuture<'a> {
        Box::pin(async move {
            self.seen
                .lock()
                .unwrap()
                .push((token.to_owned(), path.to_owned()));
            match token {
                "reader" => Ok(TokenVerdict::Allowed),
                "stranger" => Ok(TokenVerdict::Forbidden),
                "broken" => Err("connection refused".to_owned()),
                _ => Ok(TokenVerdict::Unauthenticated),
            }
        })
    }
}

#[tokio::test]
async fn delegated_authorizer_verdicts_map_to_status_codes() {
    let e = exposition(MetricsNaming::Inferno, None);
    let authorizer = Arc::new(FakeAuthorizer::default());
    let shutdown = CancellationToken::new();
    let config = ServerConfig {
        metrics: "127.0.0.1:0".parse().unwrap(),
        probes: "127.0.0.1:0".parse().unwrap(),
        auth: MetricsAuth::Delegated(authorizer.clone()),
        ..ServerConfig::default()
    };
    let servers = e.serve(config, shutdown.clone()).await.unwrap();
    let metrics = servers.metrics_addr().unwrap();
    let bearer = |token: &str| format!("Bearer {token}");

    let r = get(metrics, "/metrics").await;
    assert_eq!(r.status, 401);
    assert_eq!(
        r.header("www-authenticate"),
        Some("Bearer realm=\"wva-metrics\"")
    );
    let r = send(
        metrics,
        "GET",
        "/metrics",
        &[("Authorization", &bearer("nobody"))],
    )
    .await;
    assert_eq!(r.status, 401);
    let r = send(
        metrics,
        "GET",
        "/debug/cycle",
        &[("Authorization", &bearer("stranger"))],
    )
    .await;
    assert_eq!(r.status, 403);
    assert_eq!(r.body, "Forbidden");
    let r = send(
        metrics,
        "GET",
        "/metrics",
        &[("Authorization", &bearer("broken"))],
    )
    .await;
    assert_eq!(r.status, 503);
    assert_eq!(r.body, "authentication backend unavailable");
    let r = send(
        metrics,
        "GET",
        "/metrics",
        &[("Authorization", &bearer("reader"))],
    )
    .await;
    assert_eq!(r.status, 200);
    for (result, count) in [
        ("allowed", 1),
        ("unauthenticated", 2),
        ("forbidden", 1),
        ("error", 1),
    ] {
        let line = format!("wva_metrics_auth_requests_total{{result=\"{result}\"}} {count}\n");
        assert!(r.body.contains(&line), "missing {line:?}");
    }

    // The request without a token never reached the authorizer; the others did, with their path.
    let seen = authorizer.seen.lock().unwrap().clone();
    let expected: Vec<(String, String)> = [
        ("nobody", "/metrics"),
        ("stranger", "/debug/cycle"),
        ("broken", "/metrics"),
        ("reader", "/metrics"),
    ]
    .iter()
    .map(|(t, p)| ((*t).to_owned(), (*p).to_owned()))
    .collect();
    assert_eq!(seen, expected);

    // The probes listener is never guarded.
    assert_eq!(
        get(servers.probes_addr().unwrap(), "/healthz").await.status,
        200
    );
    shutdown.cancel();
    servers.wait().await;
}
