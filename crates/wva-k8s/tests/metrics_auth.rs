//! `--metrics-auth kubernetes` against a strict mock API server (spec/k8s.md §9): TokenReview +
//! SubjectAccessReview for `/metrics`, and the one-minute verdict cache.

// Test helpers outside `#[test]` functions: a failed unwrap is a failed scenario.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use http::{Request, Response};
use kube::client::Body;
use serde_json::{Value, json};
use tokio::task::JoinHandle;
use wva_exposition::{TokenAuthorizer, TokenVerdict};
use wva_k8s::metrics_auth::{CACHE_TTL, KubeTokenAuthorizer};

const TOKEN_REVIEWS: &str = "/apis/authentication.k8s.io/v1/tokenreviews";
const ACCESS_REVIEWS: &str = "/apis/authorization.k8s.io/v1/subjectaccessreviews";
const WAIT: Duration = Duration::from_secs(2);

/// One expected request: POST to `path` with `body`, answered with `code` and `reply`.
struct Expect {
    path: &'static str,
    body: Value,
    code: u16,
    reply: Value,
}

type Handle = tower_test::mock::Handle<Request<Body>, Response<Body>>;

/// Answers `expected` in order, counting in `served`; fails on a missing or an extra request.
/// The stream of requests ends when the client is dropped ([`finish`]), so no timer is involved
/// and the paused clock can be advanced freely.
async fn verify(mut handle: Handle, expected: Vec<Expect>, served: Arc<AtomicUsize>) {
    for (i, e) in expected.into_iter().enumerate() {
        let Some((request, reply)) = handle.next_request().await else {
            panic!("request #{i} missing: expected POST {}", e.path);
        };
        assert_eq!(request.method(), http::Method::POST, "request #{i}: method");
        assert_eq!(request.uri().path(), e.path, "request #{i}: path");
        let content_type = request
            .headers()
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        assert_eq!(content_type.as_deref(), Some("application/json"));
        let bytes = request.into_body().collect_bytes().await.unwrap();
        let actual: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(actual, e.body, "request #{i}: body");
        served.fetch_add(1, Ordering::SeqCst);
        reply.send_response(
            Response::builder()
                .status(e.code)
                .header(http::header::CONTENT_TYPE, "application/json")
                .body(Body::from(serde_json::to_vec(&e.reply).unwrap()))
                .unwrap(),
        );
    }
    if let Some((request, _)) = handle.next_request().await {
        panic!(
            "unexpected extra request {} {}",
            request.method(),
            request.uri()
        );
    }
}

/// An authorizer on a mock API answering `expected`, the verifier task and its request count.
fn authorizer(expected: Vec<Expect>) -> (KubeTokenAuthorizer, JoinHandle<()>, Arc<AtomicUsize>) {
    let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let served = Arc::new(AtomicUsize::new(0));
    let verifier = tokio::spawn(verify(handle, expected, served.clone()));
    let client = kube::Client::new(service, "default");
    (KubeTokenAuthorizer::new(client), verifier, served)
}

fn token_review(token: &str) -> Expect {
    Expect {
        path: TOKEN_REVIEWS,
        body: json!({
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenReview",
            "metadata": {},
            "spec": {"token": token},
        }),
        code: 201,
        reply: json!({
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenReview",
            "metadata": {},
            "spec": {},
            "status": {
                "authenticated": true,
                "user": {
                    "username": "system:serviceaccount:monitoring:prometheus",
                    "uid": "4f7c-uid",
                    "groups": ["system:serviceaccounts", "system:authenticated"],
                    "extra": {"authentication.kubernetes.io/pod-name": ["prometheus-0"]},
                },
            },
        }),
    }
}

fn unauthenticated_review(token: &str) -> Expect {
    Expect {
        reply: json!({
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenReview",
            "metadata": {},
            "spec": {},
            "status": {"authenticated": false, "error": "token expired"},
        }),
        ..token_review(token)
    }
}

fn access_review(path: &str, allowed: bool) -> Expect {
    Expect {
        path: ACCESS_REVIEWS,
        body: json!({
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SubjectAccessReview",
            "metadata": {},
            "spec": {
                "user": "system:serviceaccount:monitoring:prometheus",
                "uid": "4f7c-uid",
                "groups": ["system:serviceaccounts", "system:authenticated"],
                "extra": {"authentication.kubernetes.io/pod-name": ["prometheus-0"]},
                "nonResourceAttributes": {"path": path, "verb": "get"},
            },
        }),
        code: 201,
        reply: json!({
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SubjectAccessReview",
            "metadata": {},
            "spec": {},
            "status": {"allowed": allowed},
        }),
    }
}

/// Drops the client, which ends the request stream, and waits for the verifier's verdict.
async fn finish(authorizer: KubeTokenAuthorizer, verifier: JoinHandle<()>) {
    drop(authorizer);
    tokio::time::timeout(WAIT, verifier)
        .await
        .expect("the verifier did not end")
        .unwrap();
}

#[tokio::test]
async fn allowed_token_is_reviewed_then_authorised_for_metrics() {
    let (auth, verifier, served) =
        authorizer(vec![token_review("good"), access_review("/metrics", true)]);
    let verdict = auth.authorize("good", "/metrics").await.unwrap();
    assert_eq!(verdict, TokenVerdict::Allowed);
    assert_eq!(served.load(Ordering::SeqCst), 2);
    finish(auth, verifier).await;
}

#[tokio::test]
async fn unauthenticated_token_gets_no_access_review() {
    let (auth, verifier, served) = authorizer(vec![unauthenticated_review("stale")]);
    let verdict = auth.authorize("stale", "/metrics").await.unwrap();
    assert_eq!(verdict, TokenVerdict::Unauthenticated);
    assert_eq!(served.load(Ordering::SeqCst), 1);
    finish(auth, verifier).await;
}

#[tokio::test]
async fn authenticated_token_denied_by_the_access_review_is_forbidden() {
    let (auth, verifier, _) = authorizer(vec![
        token_review("nosy"),
        access_review("/debug/cycle", false),
    ]);
    let verdict = auth.authorize("nosy", "/debug/cycle").await.unwrap();
    assert_eq!(verdict, TokenVerdict::Forbidden);
    finish(auth, verifier).await;
}

#[tokio::test(start_paused = true)]
async fn verdicts_are_cached_for_one_minute_then_reviewed_again() {
    let (auth, verifier, served) = authorizer(vec![
        token_review("good"),
        access_review("/metrics", true),
        token_review("good"),
        access_review("/metrics", false),
    ]);
    assert_eq!(
        auth.authorize("good", "/metrics").await.unwrap(),
        TokenVerdict::Allowed
    );
    assert_eq!(served.load(Ordering::SeqCst), 2);
    tokio::time::advance(CACHE_TTL - Duration::from_secs(1)).await;
    // Within the minute: the cached verdict, no API request.
    assert_eq!(
        auth.authorize("good", "/metrics").await.unwrap(),
        TokenVerdict::Allowed
    );
    assert_eq!(served.load(Ordering::SeqCst), 2);
    tokio::time::advance(Duration::from_secs(1)).await;
    // Expired: a fresh review, whose new verdict is used.
    assert_eq!(
        auth.authorize("good", "/metrics").await.unwrap(),
        TokenVerdict::Forbidden
    );
    assert_eq!(served.load(Ordering::SeqCst), 4);
    finish(auth, verifier).await;
}

#[tokio::test(start_paused = true)]
async fn denials_are_cached_per_path() {
    let (auth, verifier, served) = authorizer(vec![
        token_review("nosy"),
        access_review("/debug/cycle", false),
        token_review("nosy"),
        access_review("/metrics", true),
    ]);
    assert_eq!(
        auth.authorize("nosy", "/debug/cycle").await.unwrap(),
        TokenVerdict::Forbidden
    );
    assert_eq!(
        auth.authorize("nosy", "/debug/cycle").await.unwrap(),
        TokenVerdict::Forbidden
    );
    assert_eq!(served.load(Ordering::SeqCst), 2);
    assert_eq!(
        auth.authorize("nosy", "/metrics").await.unwrap(),
        TokenVerdict::Allowed
    );
    assert_eq!(served.load(Ordering::SeqCst), 4);
    finish(auth, verifier).await;
}

#[tokio::test]
async fn api_failure_is_an_error_and_not_cached() {
    let failure = Expect {
        code: 500,
        reply: json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": "etcd unavailable", "reason": "InternalError", "code": 500,
        }),
        ..token_review("good")
    };
    let (auth, verifier, served) = authorizer(vec![
        failure,
        token_review("good"),
        access_review("/metrics", true),
    ]);
    let error = auth.authorize("good", "/metrics").await.unwrap_err();
    assert!(error.starts_with("TokenReview failed: "), "{error}");
    assert!(!error.contains("good"), "the token leaked into {error:?}");
    assert_eq!(
        auth.authorize("good", "/metrics").await.unwrap(),
        TokenVerdict::Allowed
    );
    assert_eq!(served.load(Ordering::SeqCst), 3);
    finish(auth, verifier).await;
}
