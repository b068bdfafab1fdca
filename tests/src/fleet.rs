//! The default e2e fleet (spec/sim.md §6): model `meta-llama/Llama-3.1-8B-Instruct`, variants
//! `cheap` (L4, cost 10) and `fast` (H100, cost 40), startup 2 s, grace 3 s, tick 100 ms,
//! full metrics; and capacity helpers built on `wva_sim::capacity`.

use std::path::Path;

use wva_sim::capacity;
use wva_sim::{ClockMode, Fleet, FleetConfig, FleetHandle, FleetOptions, LoadProfile};

use crate::{Result, err};

/// The e2e model (the slash exercises label escaping).
pub const MODEL: &str = "meta-llama/Llama-3.1-8B-Instruct";
/// The namespace of the fleet.
pub const NAMESPACE: &str = "e2e";
/// The cheap variant (L4, cost 10).
pub const CHEAP: &str = "cheap";
/// The fast variant (H100, cost 40).
pub const FAST: &str = "fast";

/// The default e2e fleet config with `cheap` and `fast` replicas and a constant `rate`.
pub fn e2e_config(cheap: u32, fast: u32, rate: f64) -> Result<FleetConfig> {
    let yaml = format!(
        "seed: 7
tick: 100ms
namespace: {NAMESPACE}
startup_delay: 2s
termination_grace: 3s
max_replicas: 10
metrics: {{set: full}}
models:
  - name: {MODEL}
    load: {{type: constant, rate: {rate}}}
variants:
  - {{name: {CHEAP}, model: {MODEL}, accelerator: L4, cost: 10, replicas: {cheap}}}
  - {{name: {FAST}, model: {MODEL}, accelerator: H100, cost: 40, replicas: {fast}}}
"
    );
    FleetConfig::from_yaml_str(&yaml).map_err(|e| err(format!("e2e fleet config: {e}")))
}

/// The files a started fleet writes for Prometheus and the manager.
#[derive(Debug, Clone)]
pub struct FleetFiles {
    /// Pods' file_sd.
    pub pods_sd: std::path::PathBuf,
    /// Gateway file_sd.
    pub gateway_sd: std::path::PathBuf,
    /// VariantAutoscaling inventory.
    pub inventory: std::path::PathBuf,
}

/// Starts `config` on the real clock, writing its file_sd and inventory files under `dir`.
pub async fn start(config: FleetConfig, dir: &Path) -> Result<(FleetHandle, FleetFiles)> {
    let files = FleetFiles {
        pods_sd: dir.join("pods-sd.json"),
        gateway_sd: dir.join("gateway-sd.json"),
        inventory: dir.join("variants.yaml"),
    };
    let handle = Fleet::start_with(
        config,
        FleetOptions {
            clock: ClockMode::Real,
            file_sd: Some(files.pods_sd.clone()),
            file_sd_gateway: Some(files.gateway_sd.clone()),
            inventory: Some(files.inventory.clone()),
            control_addr: None,
            keep_records: false,
        },
    )
    .await
    .map_err(|e| err(format!("fleet start: {e}")))?;
    Ok((handle, files))
}

/// Mean prompt and output tokens of the fleet's first model named `model`.
pub fn mean_sizes(config: &FleetConfig, model: &str) -> (f64, f64) {
    config
        .model(model)
        .map(|m| (m.prompt_dist().mean(), m.output_dist().mean()))
        .unwrap_or((0.0, 0.0))
}

/// `capacity::max_rate` of one replica of `variant`.
pub fn replica_max_rate(config: &FleetConfig, variant: &str) -> f64 {
    let Some(v) = config.variant(variant) else {
        return 0.0;
    };
    let (i, o) = mean_sizes(config, &v.model);
    capacity::max_rate(&v.profile(), i, o)
}

/// Σ replicas × max_rate over the config's variants (its initial replica counts).
pub fn total_capacity(config: &FleetConfig) -> f64 {
    config
        .variants
        .iter()
        .map(|v| f64::from(v.replicas) * replica_max_rate(config, &v.name))
        .sum()
}

/// The per-replica rate of `variant` whose predicted KV usage is `kv` (bisection over
/// `capacity::steady_state`).
pub fn rate_for_kv(config: &FleetConfig, variant: &str, kv: f64) -> f64 {
    let Some(v) = config.variant(variant) else {
        return 0.0;
    };
    let (i, o) = mean_sizes(config, &v.model);
    let p = v.profile();
    let (mut lo, mut hi) = (0.0, capacity::max_rate(&p, i, o));
    for _ in 0..60 {
        let mid = (lo + hi) / 2.0;
        if capacity::steady_state(&p, mid, i, o).kv_usage < kv {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    lo
}

/// Sets a constant load on the e2e model.
pub fn set_rate(fleet: &FleetHandle, rate: f64) -> Result<()> {
    fleet
        .set_load(MODEL, LoadProfile::Constant { rate })
        .map_err(|e| err(format!("set_load {rate}: {e}")))
}
