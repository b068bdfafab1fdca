//! HTTP endpoints of the emulated pods (`/metrics`, `/health`, `/v1/models`), in per-replica or
//! shared mode, and the gateway's flow-control metrics.

use crate::config::ScrapeFault;
use crate::exposition::{CONTENT_TYPE, MetricsOptions, TextWriter};
use crate::fleet::{Inner, Published};
use crate::http::{Req, Resp, json, resp, serve, text};
use hyper::{Method, StatusCode};
use serde_json::json as j;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Read access to the published state, without keeping the fleet alive.
#[derive(Debug, Clone)]
pub(crate) struct Reader {
    published: Arc<RwLock<Arc<Published>>>,
    scrapes: Arc<AtomicU64>,
    opts: MetricsOptions,
    cancel: CancellationToken,
}

impl Reader {
    pub(crate) fn new(inner: &Inner) -> Self {
        Reader {
            published: inner.published.clone(),
            scrapes: inner.scrapes.clone(),
            opts: inner.cfg.metrics,
            cancel: inner.cancel.clone(),
        }
    }

    fn get(&self) -> Arc<Published> {
        self.published
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

/// Answers one pod request (`rest` is the path below the pod).
async fn pod_request(r: Reader, pod: String, method: Method, rest: String) -> Resp {
    let p = r.get();
    let Some(pub_) = p.pods.get(&pod).cloned() else {
        if p.starting.contains(&pod) {
            return text(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("pod {pod} is starting"),
            );
        }
        return text(StatusCode::NOT_FOUND, format!("pod {pod} not found"));
    };
    if method != Method::GET && method != Method::HEAD {
        return text(StatusCode::METHOD_NOT_ALLOWED, "only GET");
    }
    match rest.as_str() {
        "/metrics" => {
            r.scrapes.fetch_add(1, Ordering::Relaxed);
            match pub_.fault.map(|f| f.scrape).unwrap_or_default() {
                ScrapeFault::Ok => resp(StatusCode::OK, CONTENT_TYPE, pub_.render(&r.opts)),
                ScrapeFault::Http500 => text(StatusCode::INTERNAL_SERVER_ERROR, "injected fault"),
                ScrapeFault::Garbage => resp(
                    StatusCode::OK,
                    CONTENT_TYPE,
                    "vllm:num_requests_running{{{ not-a-number\n",
                ),
                ScrapeFault::Timeout => {
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_secs(60)) => {}
                        _ = r.cancel.cancelled() => {}
                    }
                    text(StatusCode::GATEWAY_TIMEOUT, "injected timeout")
                }
            }
        }
        "/health" => text(StatusCode::OK, "ok"),
        "/v1/models" => json(
            StatusCode::OK,
            &j!({"object": "list", "data": [{"id": pub_.model, "object": "model", "owned_by": "vllm", "root": pub_.model, "max_model_len": pub_.max_model_len}]}),
        ),
        _ => text(StatusCode::NOT_FOUND, format!("no route {rest}")),
    }
}

/// Serves one pod on its own listener until `cancel`.
pub(crate) async fn serve_pod(
    listener: TcpListener,
    pod: String,
    reader: Reader,
    cancel: CancellationToken,
) {
    serve(listener, cancel, move |req: Req| {
        let (r, pod) = (reader.clone(), pod.clone());
        async move { pod_request(r, pod, req.method, req.path).await }
    })
    .await;
}

/// Serves every pod at `/pods/<pod>/...` on one listener.
pub(crate) async fn serve_shared(listener: TcpListener, inner: Arc<Inner>) {
    let reader = Reader::new(&inner);
    let cancel = inner.cancel.clone();
    drop(inner);
    serve(listener, cancel, move |req: Req| {
        let r = reader.clone();
        async move {
            let Some(rest) = req.path.strip_prefix("/pods/") else {
                return text(StatusCode::NOT_FOUND, "use /pods/<pod>/metrics");
            };
            let (pod, sub) = match rest.find('/') {
                Some(i) => (rest[..i].to_owned(), rest[i..].to_owned()),
                None => (rest.to_owned(), String::new()),
            };
            pod_request(r, pod, req.method, sub).await
        }
    })
    .await;
}

/// The gateway's EPP flow-control gauges.
pub(crate) fn render_gateway(p: &Published, namespace: &str, pool: &str) -> String {
    let mut w = TextWriter::new();
    for (name, help, bytes) in [
        (
            "inference_extension_flow_control_queue_size",
            "Number of requests held in the flow-control queue.",
            false,
        ),
        (
            "inference_extension_flow_control_queue_bytes",
            "Bytes of the requests held in the flow-control queue.",
            true,
        ),
    ] {
        w.family(name, help, "gauge");
        for (model, n, tokens) in &p.gateway {
            let labels = [
                ("fairness_id", "default"),
                ("inference_pool", pool),
                ("model_name", model.as_str()),
                ("priority", "0"),
                ("target_model_name", model.as_str()),
            ];
            w.sample(
                name,
                &labels,
                if bytes {
                    (*tokens * 4) as f64
                } else {
                    *n as f64
                },
            );
        }
    }
    let _ = namespace;
    w.finish()
}

/// Serves the gateway's `/metrics`.
pub(crate) async fn serve_gateway(listener: TcpListener, inner: Arc<Inner>) {
    let reader = Reader::new(&inner);
    let cancel = inner.cancel.clone();
    let ns = inner.cfg.namespace.clone();
    let pool = inner
        .cfg
        .gateway
        .inference_pool
        .clone()
        .unwrap_or_else(|| format!("{ns}-pool"));
    drop(inner);
    serve(listener, cancel, move |req: Req| {
        let (r, ns, pool) = (reader.clone(), ns.clone(), pool.clone());
        async move {
            match req.path.as_str() {
                "/metrics" => resp(
                    StatusCode::OK,
                    CONTENT_TYPE,
                    render_gateway(&r.get(), &ns, &pool),
                ),
                "/health" | "/healthz" => text(StatusCode::OK, "ok"),
                _ => text(StatusCode::NOT_FOUND, "not found"),
            }
        }
    })
    .await;
}
