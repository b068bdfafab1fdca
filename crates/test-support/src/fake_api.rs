//! A scripted HTTP server standing in for the Prometheus API in fault tests.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use http_body_util::{BodyExt, StreamBody, combinators::BoxBody};
use hyper::body::{Frame, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::http::parse_form;

/// A request as the fake server saw it.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedRequest {
    /// HTTP method.
    pub method: String,
    /// Path.
    pub path: String,
    /// The query string (without `?`; empty when absent).
    pub query: String,
    /// Headers (lowercase names).
    pub headers: Vec<(String, String)>,
    /// Decoded form fields of the body.
    pub form: Vec<(String, String)>,
    /// The body as text (lossy UTF-8).
    pub body: String,
}

impl RecordedRequest {
    /// A header value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Whether the query string has `watch=true` (a Kubernetes watch request).
    pub fn is_watch(&self) -> bool {
        self.query.split('&').any(|pair| pair == "watch=true")
    }

    /// A form field.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.form
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// What to answer.
#[derive(Debug, Clone, PartialEq)]
pub struct FakeResponse {
    /// Status code.
    pub status: u16,
    /// Extra headers.
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: Vec<u8>,
    /// Wait before answering.
    pub delay: Duration,
    /// Send the headers and the body, then never end the body.
    pub stall_body: bool,
}

impl FakeResponse {
    /// A JSON answer.
    pub fn json(status: u16, body: impl Into<String>) -> Self {
        FakeResponse {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: body.into().into_bytes(),
            delay: Duration::ZERO,
            stall_body: false,
        }
    }

    /// A success answer with a vector result (`result` is the JSON array text).
    pub fn vector(result: &str) -> Self {
        Self::json(
            200,
            format!(r#"{{"status":"success","data":{{"resultType":"vector","result":{result}}}}}"#),
        )
    }

    /// A Prometheus error answer.
    pub fn error(status: u16, error_type: &str, error: &str) -> Self {
        Self::json(
            status,
            serde_json::json!({"status": "error", "errorType": error_type, "error": error})
                .to_string(),
        )
    }

    /// Adds a header.
    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Keeps the body open after sending it (a Kubernetes watch that stays quiet).
    pub fn stalled(mut self) -> Self {
        self.stall_body = true;
        self
    }

    /// Delays the answer.
    pub fn delayed(mut self, d: Duration) -> Self {
        self.delay = d;
        self
    }
}

type Handler = dyn Fn(&RecordedRequest, usize) -> FakeResponse + Send + Sync;

/// The fake server; `handler(request, index)` decides each answer (index counts from 0).
pub struct FakeApi {
    addr: SocketAddr,
    requests: Arc<Mutex<Vec<RecordedRequest>>>,
    count: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl FakeApi {
    /// Starts on a free loopback port.
    pub async fn start(
        handler: impl Fn(&RecordedRequest, usize) -> FakeResponse + Send + Sync + 'static,
    ) -> FakeApi {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let requests: Arc<Mutex<Vec<RecordedRequest>>> = Arc::default();
        let count = Arc::new(AtomicUsize::new(0));
        let handler: Arc<Handler> = Arc::new(handler);
        let (r, c) = (requests.clone(), count.clone());
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let (r, c, h) = (r.clone(), c.clone(), handler.clone());
                tokio::spawn(async move {
                    let svc = service_fn(move |req: Request<Incoming>| {
                        let (r, c, h) = (r.clone(), c.clone(), h.clone());
                        async move {
                            let method = req.method().to_string();
                            let path = req.uri().path().to_string();
                            let query = req.uri().query().unwrap_or_default().to_string();
                            let headers = req
                                .headers()
                                .iter()
                                .map(|(k, v)| {
                                    (k.as_str().to_string(), v.to_str().unwrap_or("").to_string())
                                })
                                .collect();
                            let body = req
                                .into_body()
                                .collect()
                                .await
                                .map(|b| b.to_bytes())
                                .unwrap_or_default();
                            let body = String::from_utf8_lossy(&body).into_owned();
                            let rec = RecordedRequest {
                                method,
                                path,
                                query,
                                headers,
                                form: parse_form(&body),
                                body,
                            };
                            let n = c.fetch_add(1, Ordering::SeqCst);
                            if let Ok(mut g) = r.lock() {
                                g.push(rec.clone());
                            }
                            let spec = h(&rec, n);
                            if !spec.delay.is_zero() {
                                tokio::time::sleep(spec.delay).await;
                            }
                            let mut b = Response::builder().status(spec.status);
                            for (k, v) in &spec.headers {
                                b = b.header(k, v);
                            }
                            let first = futures::stream::once(async move {
                                Ok::<_, Infallible>(Frame::data(Bytes::from(spec.body)))
                            });
                            let body: BoxBody<Bytes, Infallible> = if spec.stall_body {
                                BodyExt::boxed(StreamBody::new(
                                    first.chain(futures::stream::pending()),
                                ))
                            } else {
                                BodyExt::boxed(StreamBody::new(first))
                            };
                            Ok::<_, Infallible>(b.body(body).expect("response"))
                        }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        FakeApi {
            addr,
            requests,
            count,
            task,
        }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Requests received so far.
    pub fn count(&self) -> usize {
        self.count.load(Ordering::SeqCst)
    }

    /// A copy of the requests received so far.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.requests.lock().map(|g| g.clone()).unwrap_or_default()
    }
}

impl Drop for FakeApi {
    fn drop(&mut self) {
        self.task.abort();
    }
}
