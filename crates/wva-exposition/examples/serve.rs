//! Serves a registry with two published variants on loopback until Ctrl-C.
//!
//! `cargo run -p wva-exposition --example serve`, then
//! `curl -s localhost:8080/metrics | grep inferno_`, `curl -s localhost:8080/debug/cycle?pretty`,
//! `curl -s localhost:8081/readyz?verbose`.

use std::time::Duration;

use tokio_util::sync::CancellationToken;
use wva_core::{Action, Reason};
use wva_exposition::{
    CyclePhase, CycleTrigger, Exposition, ExpositionConfig, Outcome, PublishedVariant,
    ServerConfig, VariantKey,
};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let exposition = Exposition::new(ExpositionConfig::default())?;
    let config_check = exposition
        .readiness()
        .add_check("config", "configuration not loaded yet");

    let shutdown = CancellationToken::new();
    let config = ServerConfig {
        metrics: "127.0.0.1:8080".parse()?,
        probes: "127.0.0.1:8081".parse()?,
        ..ServerConfig::default()
    };
    let servers = exposition.serve(config, shutdown.clone()).await?;
    config_check.set_ready();

    // What the engine does once per cycle.
    let variants = [
        PublishedVariant::new(
            VariantKey::new("llm-d-sim", "vllm-llama-h100"),
            "H100",
            1,
            2,
            Reason::KvCacheSaturation,
        )
        .with_baseline(1),
        PublishedVariant::new(
            VariantKey::new("llm-d-sim", "vllm-llama-a100"),
            "A100",
            2,
            2,
            Reason::Steady,
        )
        .with_baseline(2),
    ];
    let summary = exposition.publish(&variants);
    println!("scaling events: {:?}", summary.scaling_events);
    let metrics = exposition.self_metrics();
    metrics.record_decision(Action::ScaleUp, Reason::KvCacheSaturation);
    metrics.record_decision(Action::NoChange, Reason::Steady);
    metrics.observe_phase(CyclePhase::Decide, Duration::from_micros(850));
    metrics.observe_cycle(
        CycleTrigger::Periodic,
        Outcome::Ok,
        Duration::from_millis(42),
    );
    exposition.set_cycle_report(std::sync::Arc::new(
        serde_json::json!({"decisions": [], "models": []}),
    ));

    println!(
        "serving metrics on {:?} and probes on {:?}; Ctrl-C stops",
        servers.metrics_addr(),
        servers.probes_addr()
    );
    tokio::signal::ctrl_c().await?;
    shutdown.cancel();
    servers.wait().await;
    Ok(())
}
