//! The fleet configuration (YAML), its defaults and its validation (spec/sim.md §3.1).

use crate::dist::SizeDist;
use crate::duration::serde_dur;
use crate::engine::Preemption;
use crate::exposition::{GaugeOverride, MetricsOptions};
use crate::load::LoadProfile;
use crate::profile::{BUILTIN_ACCELERATORS, KvPool, Perf, ReplicaProfile, builtin};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

/// A configuration error: one line naming the key path, the value and what is allowed.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A value is not allowed.
    #[error("{path}: {message}")]
    Invalid {
        /// Key path, e.g. `variants[1].accelerator`.
        path: String,
        /// What is wrong and what is allowed.
        message: String,
    },
    /// The YAML does not parse or does not match the schema.
    #[error("{source_name}: {message}")]
    Parse {
        /// File name or `<string>`.
        source_name: String,
        /// The parser's message.
        message: String,
    },
    /// The file cannot be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
}

fn invalid(path: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        path: path.into(),
        message: message.into(),
    }
}

/// How pods are exposed over HTTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ListenMode {
    /// One loopback port per pod.
    PerReplica,
    /// One port for all pods, at `/pods/<pod>/metrics`.
    Shared,
    /// `per_replica` up to 256 configured pods, else `shared`, decided once at start.
    #[default]
    Auto,
}

/// The `listen:` block.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ListenConfig {
    /// Listener mode.
    pub mode: ListenMode,
    /// Address to bind (loopback by default).
    pub host: IpAddr,
}

impl Default for ListenConfig {
    fn default() -> Self {
        ListenConfig {
            mode: ListenMode::Auto,
            host: IpAddr::from([127, 0, 0, 1]),
        }
    }
}

/// How the gateway picks a replica.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Routing {
    /// Minimises waiting + kv + running/max_num_seqs; ties to the lowest pod name.
    #[default]
    LeastLoaded,
    /// Cycles over ready pods sorted by name.
    RoundRobin,
    /// Seeded random choice.
    Random,
}

/// The `gateway:` block.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GatewayConfig {
    /// Requests waiting longer are dropped (`gateway_timeout`).
    #[serde(with = "serde_dur")]
    pub queue_timeout: Duration,
    /// Also hold requests while every ready replica is saturated (waiting ≥ 5 or KV ≥ 0.8).
    pub flow_control: bool,
    /// `inference_pool` label of the flow-control gauges (default `<namespace>-pool`).
    pub inference_pool: Option<String>,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        GatewayConfig {
            queue_timeout: Duration::from_secs(60),
            flow_control: false,
            inference_pool: None,
        }
    }
}

/// The prefix cache of a model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PrefixCacheConfig {
    /// On or off.
    pub enabled: bool,
    /// Number of prefix groups G.
    pub groups: u32,
    /// Zipf exponent s over the groups.
    pub zipf_s: f64,
    /// Shared prefix length P (tokens).
    pub prefix_tokens: u32,
    /// Groups resident per replica (LRU).
    pub resident_groups: u32,
}

impl Default for PrefixCacheConfig {
    fn default() -> Self {
        PrefixCacheConfig {
            enabled: false,
            groups: 16,
            zipf_s: 1.1,
            prefix_tokens: 256,
            resident_groups: 8,
        }
    }
}

/// One served model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// The served model name (`model_name` label).
    pub name: String,
    /// `max_model_len`.
    #[serde(default = "default_max_model_len")]
    pub max_model_len: u32,
    /// Cap on output tokens.
    #[serde(default = "default_max_tokens")]
    pub max_tokens: u32,
    /// Prompt-size distribution (default lognormal(512, 256) in [16, 2048]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_tokens: Option<SizeDist>,
    /// Output-size distribution (default lognormal(256, 128) in [1, max_tokens]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_tokens: Option<SizeDist>,
    /// Prefix cache.
    #[serde(default)]
    pub prefix_cache: PrefixCacheConfig,
    /// Load profile (default: no load).
    #[serde(default = "no_load")]
    pub load: LoadProfile,
}

fn default_max_model_len() -> u32 {
    4096
}
fn default_max_tokens() -> u32 {
    1024
}
fn no_load() -> LoadProfile {
    LoadProfile::Constant { rate: 0.0 }
}
fn one_u32() -> u32 {
    1
}

impl ModelConfig {
    /// The prompt distribution in force.
    pub fn prompt_dist(&self) -> SizeDist {
        self.prompt_tokens
            .clone()
            .unwrap_or_else(SizeDist::default_prompt)
    }

    /// The output distribution in force.
    pub fn output_dist(&self) -> SizeDist {
        self.output_tokens
            .clone()
            .unwrap_or_else(|| SizeDist::default_output(self.max_tokens))
    }
}

/// One variant: a Deployment of a model on one accelerator type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VariantConfig {
    /// Variant name; the Deployment is `<name>-decode`.
    pub name: String,
    /// Served model (one of `models[].name`).
    pub model: String,
    /// Accelerator type (built-in profile name, or any name with a `perf` block).
    pub accelerator: String,
    /// Cost per replica-hour (default: the profile's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost: Option<f64>,
    /// Initial replicas.
    #[serde(default = "one_u32")]
    pub replicas: u32,
    /// GPUs per replica (metadata only).
    #[serde(default = "one_u32")]
    pub gpus_per_replica: u32,
    /// Step-time override.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub perf: Option<Perf>,
    /// KV pool override.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kv: Option<KvPool>,
    /// `max_num_seqs` override.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_num_seqs: Option<u32>,
    /// `max_num_batched_tokens` override.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_num_batched_tokens: Option<u32>,
    /// Preemption mode.
    #[serde(default)]
    pub preemption: Preemption,
}

impl VariantConfig {
    /// The replica profile: the built-in accelerator with this variant's overrides. An unknown
    /// accelerator (validated to carry `perf`) gets a generic pool of 4096 × 16 blocks.
    pub fn profile(&self) -> ReplicaProfile {
        let base = builtin(&self.accelerator).unwrap_or(ReplicaProfile {
            perf: Perf {
                alpha_ms: 10.0,
                beta_ms: 0.07,
                gamma_ms: 0.00015,
            },
            kv: KvPool {
                num_gpu_blocks: 4096,
                block_size: 16,
            },
            max_num_seqs: 128,
            max_num_batched_tokens: 8192,
            cost: 1.0,
        });
        ReplicaProfile {
            perf: self.perf.unwrap_or(base.perf),
            kv: self.kv.unwrap_or(base.kv),
            max_num_seqs: self.max_num_seqs.unwrap_or(base.max_num_seqs),
            max_num_batched_tokens: self
                .max_num_batched_tokens
                .unwrap_or(base.max_num_batched_tokens),
            cost: self.cost.unwrap_or(base.cost),
        }
    }
}

/// How a pod scrape misbehaves under a fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScrapeFault {
    /// Normal.
    #[default]
    Ok,
    /// Answers 500.
    Http500,
    /// Never answers (until the client gives up).
    Timeout,
    /// Answers 200 with text that is not the exposition format.
    Garbage,
}

/// A fault on one pod (`PUT /pods/{pod}/fault`).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Fault {
    /// Scrape behaviour.
    pub scrape: ScrapeFault,
    /// Forced gauge values.
    #[serde(rename = "override")]
    pub gauges: GaugeOverride,
    /// How long the fault lasts (forever if unset).
    #[serde(
        rename = "for",
        with = "serde_dur::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub duration: Option<Duration>,
}

/// A scheduled action of a scenario.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Action {
    /// Replace a model's load profile.
    SetLoad {
        /// Model name.
        model: String,
        /// New profile (time restarts at the event).
        profile: LoadProfile,
    },
    /// Resize a variant.
    Resize {
        /// Variant name.
        variant: String,
        /// New `spec.replicas`.
        replicas: u32,
    },
    /// Kill the `index`-th live pod of a variant (pods sorted by name).
    KillPod {
        /// Variant name.
        variant: String,
        /// Index among the variant's pods sorted by name.
        index: usize,
    },
    /// Set a fault on the `index`-th pod of a variant.
    Fault {
        /// Variant name.
        variant: String,
        /// Index among the variant's pods sorted by name.
        index: usize,
        /// The fault.
        fault: Fault,
    },
}

/// An action at a virtual time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduledEvent {
    /// When (applied at the first tick starting at or after it).
    #[serde(with = "serde_dur")]
    pub at: Duration,
    /// What.
    pub action: Action,
}

/// The whole fleet configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FleetConfig {
    /// Seed of every random stream.
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// Tick length (10 ms ..= 1 s).
    #[serde(default = "default_tick", with = "serde_dur")]
    pub tick: Duration,
    /// Namespace of every pod.
    #[serde(default = "default_namespace")]
    pub namespace: String,
    /// Listeners.
    #[serde(default)]
    pub listen: ListenConfig,
    /// Pod startup delay.
    #[serde(default = "default_startup", with = "serde_dur")]
    pub startup_delay: Duration,
    /// Uniform ± jitter on the startup delay.
    #[serde(default, with = "serde_dur")]
    pub startup_jitter: Duration,
    /// Drain time before in-flight requests are aborted.
    #[serde(default = "default_grace", with = "serde_dur")]
    pub termination_grace: Duration,
    /// Exposition knobs.
    #[serde(default)]
    pub metrics: MetricsOptions,
    /// Routing policy.
    #[serde(default)]
    pub routing: Routing,
    /// Gateway.
    #[serde(default)]
    pub gateway: GatewayConfig,
    /// Upper bound of `set_replicas` per variant.
    #[serde(default = "default_max_replicas")]
    pub max_replicas: u32,
    /// Extra labels on every file_sd target group.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub extra_target_labels: BTreeMap<String, String>,
    /// Models.
    pub models: Vec<ModelConfig>,
    /// Variants.
    pub variants: Vec<VariantConfig>,
    /// Scheduled actions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<ScheduledEvent>,
}

fn default_seed() -> u64 {
    42
}
fn default_tick() -> Duration {
    Duration::from_millis(100)
}
fn default_namespace() -> String {
    "llm-d-sim".to_owned()
}
fn default_startup() -> Duration {
    Duration::from_secs(2)
}
fn default_grace() -> Duration {
    Duration::from_secs(3)
}
fn default_max_replicas() -> u32 {
    10_000
}

fn dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 40
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

impl FleetConfig {
    /// Parses YAML and validates it.
    pub fn from_yaml_str(text: &str) -> Result<Self, ConfigError> {
        let cfg: FleetConfig = serde_saphyr::from_str(text).map_err(|e| ConfigError::Parse {
            source_name: "<string>".into(),
            message: e.to_string(),
        })?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Reads a YAML file and validates it.
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.display().to_string(),
            source,
        })?;
        let cfg: FleetConfig = serde_saphyr::from_str(&text).map_err(|e| ConfigError::Parse {
            source_name: path.display().to_string(),
            message: e.to_string(),
        })?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// The model config of `name`.
    pub fn model(&self, name: &str) -> Option<&ModelConfig> {
        self.models.iter().find(|m| m.name == name)
    }

    /// The variant config of `name`.
    pub fn variant(&self, name: &str) -> Option<&VariantConfig> {
        self.variants.iter().find(|v| v.name == name)
    }

    /// Checks every rule; the first violation is returned as one line.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let tick_us = self.tick.as_micros();
        if !(10_000..=1_000_000).contains(&tick_us) {
            return Err(invalid(
                "tick",
                format!("{:?} is out of range; allowed 10ms to 1s", self.tick),
            ));
        }
        if !dns_label(&self.namespace) {
            return Err(invalid(
                "namespace",
                format!(
                    "{:?} is not a DNS label (lowercase, digits, '-')",
                    self.namespace
                ),
            ));
        }
        if self.max_replicas == 0 {
            return Err(invalid("max_replicas", "0; must be >= 1"));
        }
        if self.models.is_empty() {
            return Err(invalid("models", "empty; at least one model is required"));
        }
        let mut names = BTreeSet::new();
        for (i, m) in self.models.iter().enumerate() {
            let p = format!("models[{i}]");
            if m.name.is_empty() || !names.insert(m.name.as_str()) {
                return Err(invalid(
                    format!("{p}.name"),
                    format!("{:?} is empty or duplicated", m.name),
                ));
            }
            if m.max_model_len < 2 {
                return Err(invalid(
                    format!("{p}.max_model_len"),
                    format!("{}; must be >= 2", m.max_model_len),
                ));
            }
            if m.max_tokens < 1 {
                return Err(invalid(format!("{p}.max_tokens"), "0; must be >= 1"));
            }
            m.prompt_dist()
                .validate()
                .map_err(|e| invalid(format!("{p}.prompt_tokens"), e))?;
            m.output_dist()
                .validate()
                .map_err(|e| invalid(format!("{p}.output_tokens"), e))?;
            m.load
                .validate()
                .map_err(|e| invalid(format!("{p}.load"), e))?;
            let pc = &m.prefix_cache;
            if pc.enabled
                && (pc.groups == 0
                    || pc.resident_groups == 0
                    || !(pc.zipf_s.is_finite() && pc.zipf_s >= 0.0))
            {
                return Err(invalid(
                    format!("{p}.prefix_cache"),
                    "groups and resident_groups must be >= 1, zipf_s >= 0",
                ));
            }
        }
        if self.variants.is_empty() {
            return Err(invalid(
                "variants",
                "empty; at least one variant is required",
            ));
        }
        let mut vnames = BTreeSet::new();
        for (i, v) in self.variants.iter().enumerate() {
            let p = format!("variants[{i}]");
            if !dns_label(&v.name) || !vnames.insert(v.name.as_str()) {
                return Err(invalid(
                    format!("{p}.name"),
                    format!(
                        "{:?} is duplicated or not a DNS label of at most 40 characters",
                        v.name
                    ),
                ));
            }
            let Some(model) = self.model(&v.model) else {
                let known: Vec<&str> = self.models.iter().map(|m| m.name.as_str()).collect();
                return Err(invalid(
                    format!("{p}.model"),
                    format!(
                        "{:?} is not a model; use one of {}",
                        v.model,
                        known.join(", ")
                    ),
                ));
            };
            if builtin(&v.accelerator).is_none() && v.perf.is_none() {
                return Err(invalid(
                    format!("{p}.accelerator"),
                    format!(
                        "{:?} has no built-in profile; add a perf block or use one of {}",
                        v.accelerator,
                        BUILTIN_ACCELERATORS.join(", ")
                    ),
                ));
            }
            if v.replicas > self.max_replicas {
                return Err(invalid(
                    format!("{p}.replicas"),
                    format!("{} exceeds max_replicas {}", v.replicas, self.max_replicas),
                ));
            }
            let prof = v.profile();
            let f = prof.perf;
            if [f.alpha_ms, f.beta_ms, f.gamma_ms]
                .iter()
                .any(|x| !x.is_finite() || *x < 0.0)
                || f.alpha_ms + f.beta_ms <= 0.0
            {
                return Err(invalid(
                    format!("{p}.perf"),
                    "coefficients must be finite and >= 0, alpha_ms + beta_ms > 0",
                ));
            }
            if prof.kv.block_size == 0 || prof.kv.num_gpu_blocks == 0 {
                return Err(invalid(
                    format!("{p}.kv"),
                    "num_gpu_blocks and block_size must be >= 1",
                ));
            }
            if prof.kv.tokens() < u64::from(model.max_model_len) {
                return Err(invalid(
                    format!("{p}.kv"),
                    format!(
                        "{} tokens cannot hold one request of max_model_len {}",
                        prof.kv.tokens(),
                        model.max_model_len
                    ),
                ));
            }
            if prof.max_num_seqs == 0 || prof.max_num_batched_tokens < prof.max_num_seqs {
                return Err(invalid(
                    format!("{p}.max_num_batched_tokens"),
                    format!(
                        "{} with max_num_seqs {}; need max_num_seqs >= 1 and max_num_batched_tokens >= max_num_seqs",
                        prof.max_num_batched_tokens, prof.max_num_seqs
                    ),
                ));
            }
            if !prof.cost.is_finite() || prof.cost < 0.0 {
                return Err(invalid(
                    format!("{p}.cost"),
                    format!("{}; must be finite and >= 0", prof.cost),
                ));
            }
        }
        for (i, e) in self.events.iter().enumerate() {
            let p = format!("events[{i}].action");
            match &e.action {
                Action::SetLoad { model, profile } => {
                    if self.model(model).is_none() {
                        return Err(invalid(
                            format!("{p}.model"),
                            format!("{model:?} is not a model"),
                        ));
                    }
                    profile
                        .validate()
                        .map_err(|m| invalid(format!("{p}.profile"), m))?;
                }
                Action::Resize { variant, replicas } => {
                    if self.variant(variant).is_none() {
                        return Err(invalid(
                            format!("{p}.variant"),
                            format!("{variant:?} is not a variant"),
                        ));
                    }
                    if *replicas > self.max_replicas {
                        return Err(invalid(
                            format!("{p}.replicas"),
                            format!("{replicas} exceeds max_replicas"),
                        ));
                    }
                }
                Action::KillPod { variant, .. } | Action::Fault { variant, .. } => {
                    if self.variant(variant).is_none() {
                        return Err(invalid(
                            format!("{p}.variant"),
                            format!("{variant:?} is not a variant"),
                        ));
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "
models:
  - name: meta-llama/Llama-3.1-8B-Instruct
    load: {type: constant, rate: 2}
variants:
  - {name: cheap, model: meta-llama/Llama-3.1-8B-Instruct, accelerator: L4, cost: 10}
  - {name: fast, model: meta-llama/Llama-3.1-8B-Instruct, accelerator: H100, cost: 40}
";

    #[test]
    fn minimal_yaml_gets_the_defaults() {
        let c = FleetConfig::from_yaml_str(BASE).unwrap();
        assert_eq!(c.seed, 42);
        assert_eq!(c.tick, Duration::from_millis(100));
        assert_eq!(c.namespace, "llm-d-sim");
        assert_eq!(c.startup_delay, Duration::from_secs(2));
        assert_eq!(c.variants[0].replicas, 1);
        assert_eq!(c.variants[1].profile().max_num_seqs, 256);
        assert_eq!(c.variants[1].profile().cost, 40.0);
    }

    #[test]
    fn unknown_accelerator_error_names_key_value_and_choices() {
        let y = BASE.replace("accelerator: H100", "accelerator: B200");
        let e = FleetConfig::from_yaml_str(&y).unwrap_err().to_string();
        assert_eq!(
            e,
            "variants[1].accelerator: \"B200\" has no built-in profile; add a perf block or use one of L4, A100, H100"
        );
        let y = y.replace(
            "cost: 40}",
            "cost: 40, perf: {alpha_ms: 5, beta_ms: 0.03, gamma_ms: 0.0001}}",
        );
        assert!(FleetConfig::from_yaml_str(&y).is_ok());
    }

    #[test]
    fn each_rule_reports_its_key() {
        let cases = [
            (BASE.replace("models:", "tick: 5ms\nmodels:"), "tick:"),
            (
                BASE.replace(
                    "model: meta-llama/Llama-3.1-8B-Instruct, accelerator: L4",
                    "model: other, accelerator: L4",
                ),
                "variants[0].model:",
            ),
            (
                BASE.replace("name: fast", "name: cheap"),
                "variants[1].name:",
            ),
            (BASE.replace("rate: 2", "rate: -2"), "models[0].load:"),
            (
                BASE.replace(
                    "cost: 10}",
                    "cost: 10, kv: {num_gpu_blocks: 10, block_size: 16}}",
                ),
                "variants[0].kv:",
            ),
            (
                BASE.replace("cost: 10}", "cost: 10, replicas: 20000}"),
                "variants[0].replicas:",
            ),
        ];
        for (y, want) in cases {
            let e = FleetConfig::from_yaml_str(&y).unwrap_err().to_string();
            assert!(e.starts_with(want), "{want}: got {e}");
            assert_eq!(e.lines().count(), 1);
        }
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let y = format!("{BASE}bogus: 1\n");
        assert!(matches!(
            FleetConfig::from_yaml_str(&y),
            Err(ConfigError::Parse { .. })
        ));
    }

    #[test]
    fn events_parse_and_reference_known_names() {
        let y = format!(
            "{BASE}events:\n  - {{at: 10s, action: {{resize: {{variant: cheap, replicas: 3}}}}}}\n  - {{at: 20s, action: {{kill_pod: {{variant: nope, index: 0}}}}}}\n"
        );
        let e = FleetConfig::from_yaml_str(&y).unwrap_err().to_string();
        assert!(e.starts_with("events[1].action.variant:"), "{e}");
    }
}
