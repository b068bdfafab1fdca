//! An in-test HTTP server serving exposition text per path, with switchable status codes.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

#[derive(Clone, Default)]
struct Page {
    status: u16,
    body: String,
}

/// Serves `GET <path>` with the text set for that path (404 for unknown paths).
pub struct MetricsServer {
    addr: SocketAddr,
    pages: Arc<RwLock<HashMap<String, Page>>>,
    task: JoinHandle<()>,
}

impl MetricsServer {
    /// Starts on a free loopback port (needs a tokio runtime).
    pub async fn start() -> MetricsServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let pages: Arc<RwLock<HashMap<String, Page>>> = Arc::default();
        let p = pages.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let p = p.clone();
                tokio::spawn(async move {
                    let svc = service_fn(move |req: Request<Incoming>| {
                        let page = p.read().ok().and_then(|g| g.get(req.uri().path()).cloned());
                        async move {
                            let (status, body) = match page {
                                Some(pg) => (pg.status, pg.body),
                                None => (404, "not found\n".to_string()),
                            };
                            Ok::<_, Infallible>(
                                Response::builder()
                                    .status(status)
                                    .header("content-type", "text/plain; version=0.0.4")
                                    .body(Full::new(Bytes::from(body)))
                                    .expect("response"),
                            )
                        }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        MetricsServer { addr, pages, task }
    }

    /// The server's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serves `body` with status 200 at `path`.
    pub fn set(&self, path: &str, body: impl Into<String>) {
        if let Ok(mut g) = self.pages.write() {
            g.insert(
                path.to_string(),
                Page {
                    status: 200,
                    body: body.into(),
                },
            );
        }
    }

    /// Answers `path` with `status` (keeping the body).
    pub fn set_status(&self, path: &str, status: u16) {
        if let Ok(mut g) = self.pages.write() {
            g.entry(path.to_string()).or_default().status = status;
        }
    }

    /// Stops serving `path` (404).
    pub fn remove(&self, path: &str) {
        if let Ok(mut g) = self.pages.write() {
            g.remove(path);
        }
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}
