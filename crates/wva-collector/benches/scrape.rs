//! Parser and scrape-source costs: `cargo bench -p wva-collector --bench scrape`.
//!
//! - `parse/vllm_fixture`: `parse_exposition` on a real-shaped vLLM 0.10 page (~400 lines).
//! - `collect/1000_pods`: `ScrapeSource::collect` from memory for 250 models × 4 pods after two
//!   stepped rounds (the per-cycle cost the engine pays with the scrape source).
//! - `round/1000_pods`: one stepped round over 1000 pods served by an in-process loopback server
//!   (HTTP, parse, windows).
#![allow(missing_docs, clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::hint::black_box;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use wva_collector::{
    CatalogueConfig, CollectRequest, Endpoint, MetricsSource, ModelKey, ModelRequest,
    ReplicaDirectory, ReplicaTarget, Scheme, ScrapeConfig, ScrapeSource, VariantRef,
    parse_exposition,
};

const FIXTURE: &str = include_str!("../tests/fixtures/vllm_0_10_llama_8b.txt");
const MODELS: usize = 250;
const PODS_PER_MODEL: usize = 4;

fn bench_parse(c: &mut Criterion) {
    c.bench_function("parse/vllm_fixture", |b| {
        b.iter(|| parse_exposition(black_box(FIXTURE)).unwrap().samples.len())
    });
}

/// One page per model (the fixture with the model renamed), served at `/<model>/<pod>`.
async fn serve(pages: Arc<BTreeMap<String, String>>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let pages = pages.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let n = stream.read(&mut buf).await.unwrap_or(0);
                let head = String::from_utf8_lossy(&buf[..n]);
                let path = head.split(' ').nth(1).unwrap_or("/");
                let model = path.split('/').nth(1).unwrap_or("");
                let body = pages.get(model).cloned().unwrap_or_default();
                let resp = format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = stream.write_all(resp.as_bytes()).await;
                let _ = stream.write_all(body.as_bytes()).await;
            });
        }
    });
    addr
}

struct Fleet(SocketAddr);

impl ReplicaDirectory for Fleet {
    fn variant_of(&self, model: &ModelKey, _pod: &str) -> Option<VariantRef> {
        Some(VariantRef::new(model.namespace.clone(), "v"))
    }

    fn replicas(&self, model: &ModelKey) -> Vec<ReplicaTarget> {
        (0..PODS_PER_MODEL)
            .map(|i| ReplicaTarget {
                pod: format!("{}-{i}", model.model_id),
                variant: VariantRef::new(model.namespace.clone(), "v"),
                endpoint: Some(Endpoint::new(
                    Scheme::Http,
                    self.0,
                    format!("/{}/{i}", model.model_id),
                )),
            })
            .collect()
    }
}

fn bench_source(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let names: Vec<String> = (0..MODELS).map(|i| format!("model-{i:04}")).collect();
    let pages: BTreeMap<String, String> = names
        .iter()
        .map(|n| {
            (
                n.clone(),
                FIXTURE.replace("meta-llama/Llama-3.1-8B-Instruct", n),
            )
        })
        .collect();
    let addr = rt.block_on(serve(Arc::new(pages)));
    let source = ScrapeSource::new(
        ScrapeConfig::stepped(),
        CatalogueConfig::default(),
        Arc::new(Fleet(addr)),
        None,
    )
    .unwrap();
    let request = CollectRequest::new(
        names
            .iter()
            .map(|n| ModelRequest::new(ModelKey::new("bench", n.clone())))
            .collect(),
    );
    source.track(&request.models);
    let mut at = 0u64;
    for _ in 0..2 {
        at += 1;
        rt.block_on(source.scrape_round(Duration::from_secs(at)));
    }
    let snap = rt.block_on(source.collect(&request));
    assert_eq!(
        snap.models
            .values()
            .map(|m| m.replicas.len())
            .sum::<usize>(),
        MODELS * PODS_PER_MODEL
    );

    c.bench_function("collect/1000_pods", |b| {
        b.iter(|| rt.block_on(source.collect(&request)).models.len())
    });
    let mut group = c.benchmark_group("round");
    group.sample_size(10);
    group.bench_function("1000_pods", |b| {
        b.iter(|| {
            at += 1;
            rt.block_on(source.scrape_round(Duration::from_secs(at)))
                .scraped
        })
    });
    group.finish();
}

criterion_group!(benches, bench_parse, bench_source);
criterion_main!(benches);
