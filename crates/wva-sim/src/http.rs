//! Minimal hyper 1 server plumbing shared by the pod, gateway and control listeners.

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// A response with a full body.
pub(crate) type Resp = Response<Full<Bytes>>;

/// A parsed request: method, path, query and body.
#[derive(Debug)]
pub(crate) struct Req {
    pub method: Method,
    pub path: String,
    pub query: String,
    pub body: Bytes,
}

const MAX_BODY: usize = 1 << 20;

/// A response with a status, content type and body.
pub(crate) fn resp(status: StatusCode, content_type: &str, body: impl Into<Bytes>) -> Resp {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    if let Ok(v) = hyper::header::HeaderValue::from_str(content_type) {
        r.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
    }
    r
}

/// A plain-text response.
pub(crate) fn text(status: StatusCode, body: impl Into<String>) -> Resp {
    let mut b = body.into();
    if !b.ends_with('\n') {
        b.push('\n');
    }
    resp(status, "text/plain; charset=utf-8", b)
}

/// A JSON response.
pub(crate) fn json<T: serde::Serialize>(status: StatusCode, v: &T) -> Resp {
    match serde_json::to_vec(v) {
        Ok(b) => resp(status, "application/json", b),
        Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// Serves `listener` until `cancel` fires; each request goes to `handler`. Connections are
/// closed when `cancel` fires too, so a stopped pod refuses and drops its scrapers.
pub(crate) async fn serve<H, F>(listener: TcpListener, cancel: CancellationToken, handler: H)
where
    H: Fn(Req) -> F + Send + Sync + 'static,
    F: Future<Output = Resp> + Send + 'static,
{
    let handler = Arc::new(handler);
    loop {
        let accepted = tokio::select! {
            _ = cancel.cancelled() => break,
            a = listener.accept() => a,
        };
        let Ok((stream, _)) = accepted else { continue };
        let handler = handler.clone();
        let cancel = cancel.clone();
        tokio::spawn(async move {
            let svc = service_fn(move |req: Request<Incoming>| {
                let handler = handler.clone();
                async move {
                    let (parts, body) = req.into_parts();
                    let body = match Limited::new(body, MAX_BODY).collect().await {
                        Ok(b) => b.to_bytes(),
                        Err(_) => {
                            return Ok::<_, Infallible>(text(
                                StatusCode::PAYLOAD_TOO_LARGE,
                                "body too large or unreadable",
                            ));
                        }
                    };
                    let r = Req {
                        method: parts.method,
                        path: parts.uri.path().to_owned(),
                        query: parts.uri.query().unwrap_or("").to_owned(),
                        body,
                    };
                    Ok::<_, Infallible>(handler(r).await)
                }
            });
            let conn = http1::Builder::new().serve_connection(TokioIo::new(stream), svc);
            tokio::select! {
                _ = conn => {}
                _ = cancel.cancelled() => {}
            }
        });
    }
}
