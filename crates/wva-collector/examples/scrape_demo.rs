//! Scrapes a tiny in-process "vLLM pod" with `ScrapeSource` in stepped mode and prints what the
//! engine would see. Run with `cargo run -p wva-collector --example scrape_demo`.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use wva_collector::{
    CatalogueConfig, CollectRequest, CollectorError, Endpoint, MetricsSource, ModelKey,
    ModelRequest, ReplicaDirectory, ReplicaTarget, Scheme, ScrapeConfig, ScrapeSource, VariantRef,
};

/// The fake pod's counters, advanced by the "simulation" between rounds.
#[derive(Default)]
struct Pod {
    finished: f64,
    prompt_tokens: f64,
}

impl Pod {
    fn render(&self, kv: f64) -> String {
        let l = "model_name=\"demo-model\",engine=\"0\"";
        format!(
            "# TYPE vllm:num_requests_running gauge\n\
             vllm:num_requests_running{{{l}}} 4\n\
             vllm:num_requests_waiting{{{l}}} 1\n\
             vllm:kv_cache_usage_perc{{{l}}} {kv}\n\
             vllm:cache_config_info{{block_size=\"16\",engine=\"0\",num_gpu_blocks=\"2048\"}} 1\n\
             vllm:request_success_total{{{l},finished_reason=\"stop\"}} {}\n\
             vllm:request_prompt_tokens_count{{{l}}} {}\n\
             vllm:request_prompt_tokens_sum{{{l}}} {}\n",
            self.finished, self.finished, self.prompt_tokens
        )
    }
}

/// Serves `body` on every GET.
async fn serve(body: Arc<Mutex<String>>) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let text = body.lock().map(|b| b.clone()).unwrap_or_default();
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = stream.read(&mut buf).await;
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    text.len()
                );
                let _ = stream.write_all(head.as_bytes()).await;
                let _ = stream.write_all(text.as_bytes()).await;
            });
        }
    });
    Ok(addr)
}

/// One model with one pod at `addr`.
struct OnePod(SocketAddr);

impl ReplicaDirectory for OnePod {
    fn variant_of(&self, model: &ModelKey, _pod: &str) -> Option<VariantRef> {
        Some(VariantRef::new(model.namespace.clone(), "demo-a100"))
    }

    fn replicas(&self, model: &ModelKey) -> Vec<ReplicaTarget> {
        vec![ReplicaTarget {
            pod: "demo-a100-0".into(),
            variant: VariantRef::new(model.namespace.clone(), "demo-a100"),
            endpoint: Some(Endpoint::new(Scheme::Http, self.0, "/metrics")),
        }]
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let body = Arc::new(Mutex::new(String::new()));
    let addr = serve(body.clone()).await?;
    let source = ScrapeSource::new(
        ScrapeConfig::stepped(),
        CatalogueConfig::default(),
        Arc::new(OnePod(addr)),
        None,
    )
    .map_err(|e: CollectorError| e.to_string())?;
    let request = CollectRequest::new(vec![ModelRequest::new(ModelKey::new("demo", "demo-model"))]);
    source.track(&request.models);

    // Virtual time: one round per simulated second; the pod finishes 3 requests a second.
    let mut pod = Pod::default();
    for second in 0..=60u64 {
        let kv = 0.2 + 0.01 * (second % 30) as f64;
        if let Ok(mut b) = body.lock() {
            *b = pod.render(kv);
        }
        source.scrape_round(Duration::from_secs(second)).await;
        pod.finished += 3.0;
        pod.prompt_tokens += 3.0 * 512.0;
    }
    let snapshot = source.collect(&request).await;
    println!("{}", serde_json::to_string_pretty(&snapshot)?);
    Ok(())
}
