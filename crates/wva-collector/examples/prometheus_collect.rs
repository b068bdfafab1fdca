//! Collects the vLLM metrics of some models from a Prometheus and prints the snapshot as JSON.
//!
//! ```text
//! cargo run -p wva-collector --example prometheus_collect -- http://127.0.0.1:9090 NAMESPACE MODEL_ID...
//! ```
//!
//! Every pod is mapped to a variant named after the pod (`PodNameDirectory`). When Prometheus
//! cannot be reached, the models come back `unavailable` with the error — never zeros.

use std::process::ExitCode;
use std::sync::Arc;

use wva_collector::{
    CacheConfig, CatalogueConfig, CollectRequest, MetricsSource, ModelKey, ModelRequest,
    PodNameDirectory, PrometheusConfig, PrometheusSource,
};

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let url = args
        .next()
        .unwrap_or_else(|| "http://127.0.0.1:9090".to_string());
    let namespace = args.next().unwrap_or_else(|| "default".to_string());
    let models: Vec<String> = args.collect();
    let config = match PrometheusConfig::new(&url) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let source = match PrometheusSource::new(
        config,
        CatalogueConfig::default(),
        CacheConfig::default(),
        Arc::new(PodNameDirectory::default()),
        None,
    ) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let keys = if models.is_empty() {
        source
            .discover_models(std::slice::from_ref(&namespace), &[])
            .await
            .unwrap_or_default()
    } else {
        models
            .into_iter()
            .map(|m| ModelKey::new(namespace.clone(), m))
            .collect()
    };
    let request = CollectRequest::new(keys.into_iter().map(ModelRequest::new).collect());
    let snapshot = source.collect(&request).await;
    match serde_json::to_string_pretty(&snapshot) {
        Ok(json) => println!("{json}"),
        Err(e) => eprintln!("cannot encode the snapshot: {e}"),
    }
    eprintln!("PromQL queries sent: {}", source.stats().total_sent());
    ExitCode::SUCCESS
}
