//! Test doubles for the scrape tests: a tiny HTTP/1.1 metrics server and a directory.
#![allow(dead_code, clippy::unwrap_used)]

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use wva_collector::{Endpoint, ModelKey, ReplicaDirectory, ReplicaTarget, Scheme, VariantRef};

/// What the server answers on one path.
#[derive(Debug, Clone)]
pub struct Page {
    pub status: u16,
    pub body: String,
    /// Wait this long before answering.
    pub delay: Duration,
    /// Answer 401 unless the request carries exactly this bearer token.
    pub require_token: Option<String>,
}

impl Page {
    pub fn ok(body: impl Into<String>) -> Self {
        Page {
            status: 200,
            body: body.into(),
            delay: Duration::ZERO,
            require_token: None,
        }
    }

    pub fn status(status: u16) -> Self {
        Page {
            status,
            body: format!("status {status}\n"),
            delay: Duration::ZERO,
            require_token: None,
        }
    }
}

/// One request the server saw.
#[derive(Debug, Clone)]
pub struct Seen {
    pub path: String,
    pub headers: Vec<(String, String)>,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A loopback HTTP server answering GETs from a path → page table; unknown paths get 404.
#[derive(Clone)]
pub struct MetricsServer {
    pub addr: SocketAddr,
    pages: Arc<Mutex<HashMap<String, Page>>>,
    seen: Arc<Mutex<Vec<Seen>>>,
    in_flight: Arc<AtomicUsize>,
    max_in_flight: Arc<AtomicUsize>,
}

impl MetricsServer {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = MetricsServer {
            addr,
            pages: Arc::default(),
            seen: Arc::default(),
            in_flight: Arc::default(),
            max_in_flight: Arc::default(),
        };
        let s = server.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let s = s.clone();
                tokio::spawn(async move { s.serve(stream).await });
            }
        });
        server
    }

    async fn serve(&self, mut stream: tokio::net::TcpStream) {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        let head = String::from_utf8_lossy(&buf).to_string();
        let mut lines = head.split("\r\n");
        let path = lines
            .next()
            .and_then(|l| l.split(' ').nth(1))
            .unwrap_or("/")
            .to_owned();
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(": "))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        let seen = Seen {
            path: path.clone(),
            headers,
        };
        let page = self.pages.lock().unwrap().get(&path).cloned();
        let authorized = |p: &Page| match &p.require_token {
            None => true,
            Some(t) => seen.header("authorization") == Some(format!("Bearer {t}").as_str()),
        };
        let page = match page {
            Some(p) if !authorized(&p) => Page::status(401),
            Some(p) => p,
            None => Page::status(404),
        };
        self.seen.lock().unwrap().push(seen);
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_in_flight.fetch_max(now, Ordering::SeqCst);
        if !page.delay.is_zero() {
            tokio::time::sleep(page.delay).await;
        }
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        let response = format!(
            "HTTP/1.1 {} X\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}",
            page.status,
            page.body.len(),
            page.body
        );
        let _ = stream.write_all(response.as_bytes()).await;
        let _ = stream.shutdown().await;
    }

    pub fn set(&self, path: &str, page: Page) {
        self.pages.lock().unwrap().insert(path.to_owned(), page);
    }

    pub fn set_body(&self, path: &str, body: impl Into<String>) {
        self.set(path, Page::ok(body));
    }

    /// The most requests answered at the same time so far.
    pub fn max_in_flight(&self) -> usize {
        self.max_in_flight.load(Ordering::SeqCst)
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    pub fn endpoint(&self, path: &str) -> Endpoint {
        Endpoint::new(Scheme::Http, self.addr, path)
    }
}

/// A loopback port that was bound and then closed: connecting is refused.
pub async fn closed_port() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    drop(l);
    addr
}

/// A directory backed by a map the test edits.
#[derive(Default)]
pub struct MapDirectory {
    pub pods: Mutex<BTreeMap<ModelKey, Vec<ReplicaTarget>>>,
}

impl MapDirectory {
    pub fn new() -> Arc<Self> {
        Arc::new(MapDirectory::default())
    }

    pub fn add(&self, model: &ModelKey, pod: &str, variant: &str, endpoint: Option<Endpoint>) {
        self.pods
            .lock()
            .unwrap()
            .entry(model.clone())
            .or_default()
            .push(ReplicaTarget {
                pod: pod.to_owned(),
                variant: VariantRef::new(model.namespace.clone(), variant),
                endpoint,
            });
    }

    pub fn remove(&self, model: &ModelKey, pod: &str) {
        if let Some(v) = self.pods.lock().unwrap().get_mut(model) {
            v.retain(|t| t.pod != pod);
        }
    }
}

impl ReplicaDirectory for MapDirectory {
    fn variant_of(&self, model: &ModelKey, pod: &str) -> Option<VariantRef> {
        self.pods
            .lock()
            .unwrap()
            .get(model)?
            .iter()
            .find(|t| t.pod == pod)
            .map(|t| t.variant.clone())
    }

    fn replicas(&self, model: &ModelKey) -> Vec<ReplicaTarget> {
        self.pods
            .lock()
            .unwrap()
            .get(model)
            .cloned()
            .unwrap_or_default()
    }
}

/// The state of a fake vLLM pod, rendered as vLLM writes it.
#[derive(Debug, Clone, Default)]
pub struct FakeVllm {
    pub model: String,
    pub running: f64,
    pub waiting: f64,
    pub kv: f64,
    pub success: f64,
    pub prompt_sum: f64,
    pub prompt_count: f64,
    pub gen_sum: f64,
    pub gen_count: f64,
    pub prefix_hits: f64,
    pub prefix_queries: f64,
    pub ttft_sum: f64,
    pub ttft_count: f64,
    pub itl_sum: f64,
    pub itl_count: f64,
    pub blocks: u64,
    pub block_size: u64,
}

impl FakeVllm {
    pub fn new(model: &str) -> Self {
        FakeVllm {
            model: model.to_owned(),
            blocks: 1000,
            block_size: 16,
            ..FakeVllm::default()
        }
    }

    /// `n` finished requests, each with these prompt/output sizes, TTFT and ITL.
    pub fn finish(&mut self, n: f64, prompt: f64, output: f64, ttft: f64, itl: f64) {
        self.success += n;
        self.prompt_sum += n * prompt;
        self.prompt_count += n;
        self.gen_sum += n * output;
        self.gen_count += n;
        self.ttft_sum += n * ttft;
        self.ttft_count += n;
        self.itl_sum += n * (output - 1.0) * itl;
        self.itl_count += n * (output - 1.0);
        self.prefix_queries += n * prompt;
        self.prefix_hits += n * prompt * 0.25;
    }

    pub fn render(&self) -> String {
        let m = escape(&self.model);
        let l = format!("model_name=\"{m}\",engine=\"0\"");
        format!(
            "# HELP vllm:num_requests_running Number of requests in model execution batches.
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{{{l}}} {}
# TYPE vllm:num_requests_waiting gauge
vllm:num_requests_waiting{{{l}}} {}
# TYPE vllm:kv_cache_usage_perc gauge
vllm:kv_cache_usage_perc{{{l}}} {}
# TYPE vllm:cache_config_info gauge
vllm:cache_config_info{{block_size=\"{}\",cache_dtype=\"auto\",engine=\"0\",num_gpu_blocks=\"{}\"}} 1.0
# TYPE vllm:request_success_total counter
vllm:request_success_total{{{l},finished_reason=\"stop\"}} {}
vllm:request_success_total{{{l},finished_reason=\"length\"}} 0.0
# TYPE vllm:prefix_cache_queries_total counter
vllm:prefix_cache_queries_total{{{l}}} {}
# TYPE vllm:prefix_cache_hits_total counter
vllm:prefix_cache_hits_total{{{l}}} {}
# TYPE vllm:request_prompt_tokens histogram
vllm:request_prompt_tokens_bucket{{{l},le=\"+Inf\"}} {}
vllm:request_prompt_tokens_count{{{l}}} {}
vllm:request_prompt_tokens_sum{{{l}}} {}
# TYPE vllm:request_generation_tokens histogram
vllm:request_generation_tokens_bucket{{{l},le=\"+Inf\"}} {}
vllm:request_generation_tokens_count{{{l}}} {}
vllm:request_generation_tokens_sum{{{l}}} {}
# TYPE vllm:time_to_first_token_seconds histogram
vllm:time_to_first_token_seconds_count{{{l}}} {}
vllm:time_to_first_token_seconds_sum{{{l}}} {}
# TYPE vllm:inter_token_latency_seconds histogram
vllm:inter_token_latency_seconds_count{{{l}}} {}
vllm:inter_token_latency_seconds_sum{{{l}}} {}
",
            f(self.running),
            f(self.waiting),
            f(self.kv),
            self.block_size,
            self.blocks,
            f(self.success),
            f(self.prefix_queries),
            f(self.prefix_hits),
            f(self.prompt_count),
            f(self.prompt_count),
            f(self.prompt_sum),
            f(self.gen_count),
            f(self.gen_count),
            f(self.gen_sum),
            f(self.ttft_count),
            f(self.ttft_sum),
            f(self.itl_count),
            f(self.itl_sum),
        )
    }
}

/// A float as the exposition writes it (`NaN`, `+Inf`, `-Inf` spelled out).
pub fn f(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        format!("{v:?}")
    }
}

/// A label value escaped for the text format.
pub fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
