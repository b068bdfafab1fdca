//! Request routing and the handlers of `/metrics`, `/debug/cycle`, `/healthz` and `/readyz`.

use std::convert::Infallible;

use bytes::Bytes;
use http::header::{ALLOW, CONTENT_TYPE, WWW_AUTHENTICATE};
use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;

use crate::exposition::{Exposition, TEXT_CONTENT_TYPE};
use crate::self_metrics::AuthResult;
use crate::server::auth::{AuthCheck, MetricsAuth};

/// Response body type of every handler.
pub(crate) type Body = Full<Bytes>;

/// Which listener a request arrived on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ListenerKind {
    /// `/metrics` and `/debug/cycle`.
    Metrics,
    /// `/healthz` and `/readyz`.
    Probes,
}

impl ListenerKind {
    /// The name used in bind errors and logs.
    pub(crate) fn name(self) -> &'static str {
        match self {
            ListenerKind::Metrics => "metrics",
            ListenerKind::Probes => "health probes",
        }
    }
}

const TEXT_PLAIN: &str = "text/plain; charset=utf-8";
const JSON: &str = "application/json";

/// A response with `status`, `content_type` and `body`.
fn respond(status: StatusCode, content_type: &str, body: impl Into<Bytes>) -> Response<Body> {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    if let Ok(value) = content_type.parse() {
        response.headers_mut().insert(CONTENT_TYPE, value);
    }
    response
}

/// Whether the query string holds the flag `name` (`?pretty`, `?verbose=1`, `?a&pretty`).
fn has_flag(query: Option<&str>, name: &str) -> bool {
    query.is_some_and(|q| {
        q.split('&')
            .any(|part| part.split('=').next() == Some(name))
    })
}

/// The paths served on each listener.
fn known_path(kind: ListenerKind, path: &str) -> bool {
    match kind {
        ListenerKind::Metrics => matches!(path, "/metrics" | "/debug/cycle"),
        ListenerKind::Probes => matches!(path, "/healthz" | "/readyz"),
    }
}

/// Routes one request.
pub(crate) async fn handle<B>(
    exposition: Exposition,
    kind: ListenerKind,
    auth: MetricsAuth,
    request: Request<B>,
) -> Result<Response<Body>, Infallible> {
    let path = request.uri().path();
    if !known_path(kind, path) {
        return Ok(respond(StatusCode::NOT_FOUND, TEXT_PLAIN, "not found"));
    }
    if request.method() != Method::GET && request.method() != Method::HEAD {
        let mut response = respond(
            StatusCode::METHOD_NOT_ALLOWED,
            TEXT_PLAIN,
            "method not allowed",
        );
        response
            .headers_mut()
            .insert(ALLOW, http::HeaderValue::from_static("GET, HEAD"));
        return Ok(response);
    }
    if kind == ListenerKind::Metrics {
        match auth.check(request.headers(), path).await {
            AuthCheck::NotRequired => {}
            AuthCheck::Allowed => exposition.self_metrics().record_auth(AuthResult::Allowed),
            AuthCheck::Unauthenticated => {
                exposition
                    .self_metrics()
                    .record_auth(AuthResult::Unauthenticated);
                let mut response = respond(StatusCode::UNAUTHORIZED, TEXT_PLAIN, "Unauthorized");
                response.headers_mut().insert(
                    WWW_AUTHENTICATE,
                    http::HeaderValue::from_static("Bearer realm=\"wva-metrics\""),
                );
                return Ok(response);
            }
            AuthCheck::Forbidden => {
                exposition.self_metrics().record_auth(AuthResult::Forbidden);
                return Ok(respond(StatusCode::FORBIDDEN, TEXT_PLAIN, "Forbidden"));
            }
            AuthCheck::Unavailable => {
                exposition.self_metrics().record_auth(AuthResult::Error);
                return Ok(respond(
                    StatusCode::SERVICE_UNAVAILABLE,
                    TEXT_PLAIN,
                    "authentication backend unavailable",
                ));
            }
        }
    }
    let query = request.uri().query();
    let response = match path {
        "/metrics" => respond(StatusCode::OK, TEXT_CONTENT_TYPE, exposition.encode()),
        "/debug/cycle" => debug_cycle(&exposition, has_flag(query, "pretty")),
        "/healthz" => match exposition.health().verdict() {
            Ok(()) => respond(StatusCode::OK, TEXT_PLAIN, "ok"),
            Err(lines) => respond(StatusCode::INTERNAL_SERVER_ERROR, TEXT_PLAIN, lines),
        },
        _ => {
            let report = exposition.readiness().report(has_flag(query, "verbose"));
            let status = if report.ready {
                StatusCode::OK
            } else {
                StatusCode::SERVICE_UNAVAILABLE
            };
            respond(status, TEXT_PLAIN, report.body)
        }
    };
    Ok(response)
}

/// `/debug/cycle`: the last report, or 503 on a follower or before the first cycle.
fn debug_cycle(exposition: &Exposition, pretty_print: bool) -> Response<Body> {
    if !exposition.is_leader() {
        return respond(
            StatusCode::SERVICE_UNAVAILABLE,
            JSON,
            r#"{"error":"not the leader"}"#,
        );
    }
    match exposition.cycle_report_json(pretty_print) {
        None => respond(
            StatusCode::SERVICE_UNAVAILABLE,
            JSON,
            r#"{"error":"no cycle has completed yet"}"#,
        ),
        Some(Ok(json)) => respond(StatusCode::OK, JSON, json),
        Some(Err(e)) => respond(
            StatusCode::INTERNAL_SERVER_ERROR,
            JSON,
            serde_json::json!({ "error": e.to_string() }).to_string(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_are_found_with_or_without_values() {
        assert!(has_flag(Some("pretty"), "pretty"));
        assert!(has_flag(Some("a=1&pretty=true"), "pretty"));
        assert!(!has_flag(Some("prettyish"), "pretty"));
        assert!(!has_flag(None, "pretty"));
    }

    #[test]
    fn probe_paths_are_not_served_on_the_metrics_listener() {
        assert!(known_path(ListenerKind::Metrics, "/metrics"));
        assert!(!known_path(ListenerKind::Metrics, "/healthz"));
        assert!(known_path(ListenerKind::Probes, "/readyz"));
        assert!(!known_path(ListenerKind::Probes, "/debug/cycle"));
    }
}
