//! Configuration of `wva-manager run` (spec/k8s.md §6.1–§6.3): a pure function of the flags
//! given on the command line, the environment and the config file's text, with precedence
//! flag > environment > config file > default and the exact start-up error lines.
//!
//! The binary reads the environment and the file; nothing here touches the process.

mod error;
mod file;
mod keys;
mod parse;

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

pub use error::{ConfigError, ConfigErrors, Source};
pub use keys::{ENV_ONLY, IGNORED, KEYS, Key, PROMETHEUS_PREFIX};
pub use parse::BindAddress;

/// Default `POD_NAMESPACE`.
pub const DEFAULT_POD_NAMESPACE: &str = "workload-variant-autoscaler-system";
/// Default `SATURATION_CONFIG_MAP_NAME`.
pub const DEFAULT_SATURATION_CONFIG_MAP: &str = "wva-saturation-scaling-config";
/// Default `SCALE_TO_ZERO_CONFIG_MAP_NAME`.
pub const DEFAULT_SCALE_TO_ZERO_CONFIG_MAP: &str = "wva-model-scale-to-zero-config";

/// The raw inputs of the loader.
#[derive(Debug, Clone, Copy)]
pub struct RawConfig<'a> {
    /// Flags explicitly given on the command line: name without `--` → value.
    pub flags: &'a BTreeMap<String, String>,
    /// The process environment.
    pub env: &'a BTreeMap<String, String>,
    /// The config file, if one is configured and was read.
    pub file: Option<ConfigFileText<'a>>,
}

/// A config file's path and text.
#[derive(Debug, Clone, Copy)]
pub struct ConfigFileText<'a> {
    /// The path as configured.
    pub path: &'a str,
    /// Its contents.
    pub contents: &'a str,
}

/// How decisions reach the workloads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Actuation {
    /// Publish metrics for an HPA or KEDA (default).
    Metrics,
    /// Patch the scale subresource directly.
    Direct,
}

/// Metric family names to publish.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricsNaming {
    /// `inferno_*` (default).
    Inferno,
    /// `wva_*`.
    Wva,
    /// Both.
    Both,
}

/// Authentication on the metrics listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricsAuth {
    /// None.
    None,
    /// TokenReview + SubjectAccessReview.
    Kubernetes,
    /// A static bearer token from a file.
    Static,
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable text.
    Text,
    /// JSON lines.
    Json,
}

/// API group of the InferencePool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoolGroup {
    /// `inference.networking.x-k8s.io` (default).
    XK8s,
    /// `inference.networking.k8s.io`.
    K8s,
}

impl PoolGroup {
    /// The group name.
    pub fn as_str(self) -> &'static str {
        match self {
            PoolGroup::XK8s => "inference.networking.x-k8s.io",
            PoolGroup::K8s => "inference.networking.k8s.io",
        }
    }
}

/// A secret value whose `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Redacted(pub String);

impl fmt::Debug for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Leader-election timings (lease duration > renew deadline > retry period > 0, whole seconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseTimings {
    /// `LEADER_ELECTION_LEASE_DURATION`.
    pub lease_duration: Duration,
    /// `LEADER_ELECTION_RENEW_DEADLINE`.
    pub renew_deadline: Duration,
    /// `LEADER_ELECTION_RETRY_PERIOD`.
    pub retry_period: Duration,
}

/// The validated configuration of `wva-manager run`.
#[derive(Debug, Clone, PartialEq)]
pub struct ManagerConfig {
    /// `--config-file`.
    pub config_file: Option<String>,
    /// `--kubeconfig`.
    pub kubeconfig: Option<String>,
    /// `--metrics-bind-address`.
    pub metrics_bind_address: BindAddress,
    /// `--health-probe-bind-address`.
    pub health_probe_bind_address: BindAddress,
    /// `--metrics-secure`.
    pub metrics_secure: bool,
    /// `--metrics-cert-path`.
    pub metrics_cert_path: Option<String>,
    /// `--metrics-cert-name`.
    pub metrics_cert_name: String,
    /// `--metrics-cert-key`.
    pub metrics_cert_key: String,
    /// `--metrics-auth` (default `none`, `kubernetes` when secure).
    pub metrics_auth: MetricsAuth,
    /// `--metrics-auth-token-file`.
    pub metrics_auth_token_file: Option<String>,
    /// `--enable-http2`.
    pub enable_http2: bool,
    /// `--metrics-naming`.
    pub metrics_naming: MetricsNaming,
    /// `--controller-instance`.
    pub controller_instance: Option<String>,
    /// `--leader-elect`.
    pub leader_elect: bool,
    /// `--leader-election-id`.
    pub leader_election_id: String,
    /// The three leader-election timings.
    pub lease: LeaseTimings,
    /// `--watch-namespace`.
    pub watch_namespace: Option<String>,
    /// `--interval`.
    pub interval: Duration,
    /// `--event-debounce`.
    pub event_debounce: Duration,
    /// `--min-cycle-gap`.
    pub min_cycle_gap: Duration,
    /// `--actuation`.
    pub actuation: Actuation,
    /// `--scale-from-zero`.
    pub scale_from_zero: bool,
    /// `--scale-from-zero-interval`.
    pub scale_from_zero_interval: Duration,
    /// `--scale-from-zero-max-concurrency`.
    pub scale_from_zero_max_concurrency: u32,
    /// `--scale-to-zero`.
    pub scale_to_zero: bool,
    /// `--limited-mode`.
    pub limited_mode: bool,
    /// `--gpu-node-selector`.
    pub gpu_node_selector: Option<String>,
    /// `--pool-group`.
    pub pool_group: PoolGroup,
    /// `--namespace-overrides`.
    pub namespace_overrides: bool,
    /// `--saturation-config-file`.
    pub saturation_config_file: Option<String>,
    /// `--scale-to-zero-config-file`.
    pub scale_to_zero_config_file: Option<String>,
    /// `--rest-client-timeout`.
    pub rest_client_timeout: Duration,
    /// `--log-format`.
    pub log_format: LogFormat,
    /// `--log-level`, else `RUST_LOG`, else `info` (`tracing` filter syntax).
    pub log_level: String,
    /// `--standalone`.
    pub standalone: bool,
    /// `--variants`.
    pub variants_file: Option<String>,
    /// Every `PROMETHEUS_*` key, merged with the same precedence, for the collector's
    /// `PrometheusConfig::from_map`.
    pub prometheus: BTreeMap<String, String>,
    /// `POD_NAMESPACE`.
    pub pod_namespace: String,
    /// `POD_NAME`, else `HOSTNAME`.
    pub pod_name: Option<String>,
    /// `SATURATION_CONFIG_MAP_NAME`.
    pub saturation_config_map: String,
    /// `SCALE_TO_ZERO_CONFIG_MAP_NAME`.
    pub scale_to_zero_config_map: String,
    /// `EPP_METRIC_READER_BEARER_TOKEN`.
    pub epp_bearer_token: Option<Redacted>,
}

/// A loaded configuration and the warnings to log once logging is up.
#[derive(Debug, Clone, PartialEq)]
pub struct Loaded {
    /// The configuration.
    pub config: ManagerConfig,
    /// WARN lines (unknown config-file keys).
    pub warnings: Vec<String>,
}

/// The config file to read, if any: `--config-file`, else `WVA_CONFIG_FILE`.
pub fn config_file_path(
    flags: &BTreeMap<String, String>,
    env: &BTreeMap<String, String>,
) -> Option<String> {
    flags
        .get("config-file")
        .or_else(|| env.get("WVA_CONFIG_FILE"))
        .filter(|p| !p.is_empty())
        .cloned()
}

/// Loads and validates the configuration. Every error is collected; the binary prints the
/// first as `error: {e}` and exits 2.
pub fn load(raw: RawConfig<'_>) -> Result<Loaded, ConfigErrors> {
    let mut errors = Vec::new();
    for flag in raw.flags.keys() {
        if keys::by_flag(flag).is_none() {
            errors.push(ConfigError::UnknownFlag { flag: flag.clone() });
        }
    }
    let (file_values, warnings) = match raw.file {
        Some(file) => match file::parse(file.path, file.contents) {
            Ok(parsed) => parsed,
            Err(e) => return Err(ConfigErrors(vec![e])),
        },
        None => (BTreeMap::new(), Vec::new()),
    };
    let mut r = Resolver {
        raw,
        file: file_values,
        errors,
    };
    let config = r.config();
    if r.errors.is_empty() {
        return Ok(Loaded { config, warnings });
    }
    r.errors.sort_by_key(|e| match e {
        ConfigError::InvalidValue { key, .. } => KEYS
            .iter()
            .position(|k| k.env == *key)
            .map_or(KEYS.len(), |i| i + 1),
        _ => 0,
    });
    Err(ConfigErrors(r.errors))
}

/// Looks keys up by precedence and records every invalid value.
struct Resolver<'a> {
    raw: RawConfig<'a>,
    file: BTreeMap<String, String>,
    errors: Vec<ConfigError>,
}

impl Resolver<'_> {
    /// The given value of a key and its source, or `None` (empty values count as not given).
    fn given(&self, env: &'static str) -> Option<(String, Source)> {
        let key = keys::by_env(env)?;
        let nonempty = |v: &&String| !v.is_empty();
        if let Some(v) = key
            .flag
            .and_then(|f| self.raw.flags.get(f))
            .filter(nonempty)
        {
            return Some((v.clone(), Source::Flag(key.flag.unwrap_or_default())));
        }
        if let Some(v) = self.raw.env.get(env).filter(nonempty) {
            return Some((v.clone(), Source::Environment));
        }
        let path = self.raw.file.map(|f| f.path.to_owned()).unwrap_or_default();
        self.file
            .get(env)
            .filter(nonempty)
            .map(|v| (v.clone(), Source::ConfigFile(path)))
    }

    /// The value (given, else default) and its source.
    fn value(&self, env: &'static str) -> Option<(String, Source)> {
        self.given(env).or_else(|| {
            keys::by_env(env)?
                .default
                .map(|d| (d.to_owned(), Source::Default))
        })
    }

    fn invalid(
        &mut self,
        key: &'static str,
        value: String,
        origin: Source,
        allowed: impl Into<String>,
    ) {
        self.errors.push(ConfigError::InvalidValue {
            key,
            value,
            origin,
            allowed: allowed.into(),
        });
    }

    /// Parses a key's value; an invalid value is recorded and `fallback` returned.
    fn get<T, E: Into<String>>(
        &mut self,
        env: &'static str,
        parser: impl Fn(&str) -> Result<T, E>,
        fallback: T,
    ) -> T {
        self.get_opt(env, parser).unwrap_or(fallback)
    }

    /// Parses an optional key.
    fn get_opt<T, E: Into<String>>(
        &mut self,
        env: &'static str,
        parser: impl Fn(&str) -> Result<T, E>,
    ) -> Option<T> {
        let (value, origin) = self.value(env)?;
        match parser(&value) {
            Ok(v) => Some(v),
            Err(allowed) => {
                self.invalid(env, value, origin, allowed);
                None
            }
        }
    }

    fn text(&mut self, env: &'static str) -> Option<String> {
        self.value(env).map(|(v, _)| v)
    }

    fn env_only(&self, name: &str) -> Option<String> {
        self.raw.env.get(name).filter(|v| !v.is_empty()).cloned()
    }

    fn config(&mut self) -> ManagerConfig {
        use parse::*;
        let listen = |port| BindAddress::Listen {
            host: "0.0.0.0".into(),
            port,
        };
        let seconds = Duration::from_secs;
        let metrics_secure = self.get("METRICS_SECURE", boolean, false);
        let auths = [
            ("none", MetricsAuth::None),
            ("kubernetes", MetricsAuth::Kubernetes),
            ("static", MetricsAuth::Static),
        ];
        let default_auth = if metrics_secure {
            MetricsAuth::Kubernetes
        } else {
            MetricsAuth::None
        };
        let metrics_auth = self.get("METRICS_AUTH", |t| one_of(t, &auths), default_auth);
        let metrics_auth_token_file = self.text("METRICS_AUTH_TOKEN_FILE");
        if metrics_auth == MetricsAuth::Static
            && metrics_auth_token_file.is_none()
            && let Some((value, origin)) = self.given("METRICS_AUTH")
        {
            self.invalid("METRICS_AUTH", value, origin, TOKEN_FILE_REQUIRED);
        }
        let lease = self.lease_timings();
        let log_level = self
            .text("LOG_LEVEL")
            .or_else(|| self.env_only("RUST_LOG"))
            .unwrap_or_else(|| "info".to_owned());
        ManagerConfig {
            config_file: self.text("WVA_CONFIG_FILE"),
            kubeconfig: self.text("KUBECONFIG"),
            metrics_bind_address: self.get("METRICS_BIND_ADDRESS", bind_address, listen(8080)),
            health_probe_bind_address: self.get(
                "HEALTH_PROBE_BIND_ADDRESS",
                bind_address,
                listen(8081),
            ),
            metrics_secure,
            metrics_cert_path: self.text("METRICS_CERT_PATH"),
            metrics_cert_name: self.text("METRICS_CERT_NAME").unwrap_or_default(),
            metrics_cert_key: self.text("METRICS_CERT_KEY").unwrap_or_default(),
            metrics_auth,
            metrics_auth_token_file,
            enable_http2: self.get("ENABLE_HTTP2", boolean, false),
            metrics_naming: self.get(
                "WVA_METRICS_NAMING",
                |t| {
                    one_of(
                        t,
                        &[
                            ("inferno", MetricsNaming::Inferno),
                            ("wva", MetricsNaming::Wva),
                            ("both", MetricsNaming::Both),
                        ],
                    )
                },
                MetricsNaming::Inferno,
            ),
            controller_instance: self.get_opt("CONTROLLER_INSTANCE", label_value),
            leader_elect: self.get("LEADER_ELECT", boolean, false),
            leader_election_id: self.get("LEADER_ELECTION_ID", dns_subdomain, String::new()),
            lease,
            watch_namespace: self.text("WATCH_NAMESPACE"),
            interval: self.get("GLOBAL_OPT_INTERVAL", positive_duration, seconds(30)),
            event_debounce: self.get("WVA_EVENT_DEBOUNCE", positive_duration, seconds(2)),
            min_cycle_gap: self.get("WVA_MIN_CYCLE_GAP", positive_duration, seconds(5)),
            actuation: self.get(
                "WVA_ACTUATION",
                |t| {
                    one_of(
                        t,
                        &[
                            ("metrics", Actuation::Metrics),
                            ("direct", Actuation::Direct),
                        ],
                    )
                },
                Actuation::Metrics,
            ),
            scale_from_zero: self.get("WVA_SCALE_FROM_ZERO", boolean, true),
            scale_from_zero_interval: self.get(
                "WVA_SCALE_FROM_ZERO_INTERVAL",
                positive_duration,
                Duration::from_millis(100),
            ),
            scale_from_zero_max_concurrency: self.get(
                "SCALE_FROM_ZERO_ENGINE_MAX_CONCURRENCY",
                positive_integer,
                10,
            ),
            scale_to_zero: self.get("WVA_SCALE_TO_ZERO", boolean, false),
            limited_mode: self.get("WVA_LIMITED_MODE", boolean, false),
            gpu_node_selector: self.text("WVA_NODE_SELECTOR"),
            pool_group: self.get(
                "POOL_GROUP",
                |t| {
                    one_of(
                        t,
                        &[
                            (PoolGroup::XK8s.as_str(), PoolGroup::XK8s),
                            (PoolGroup::K8s.as_str(), PoolGroup::K8s),
                        ],
                    )
                },
                PoolGroup::XK8s,
            ),
            namespace_overrides: self.get("WVA_NAMESPACE_OVERRIDES", boolean, true),
            saturation_config_file: self.text("WVA_SATURATION_CONFIG_FILE"),
            scale_to_zero_config_file: self.text("WVA_SCALE_TO_ZERO_CONFIG_FILE"),
            rest_client_timeout: self.get("REST_CLIENT_TIMEOUT", positive_duration, seconds(60)),
            log_format: self.get(
                "LOG_FORMAT",
                |t| one_of(t, &[("text", LogFormat::Text), ("json", LogFormat::Json)]),
                LogFormat::Text,
            ),
            log_level,
            standalone: self.get("WVA_STANDALONE", boolean, false),
            variants_file: self.text("WVA_VARIANTS_FILE"),
            prometheus: self.prometheus(),
            pod_namespace: self
                .env_only("POD_NAMESPACE")
                .unwrap_or_else(|| DEFAULT_POD_NAMESPACE.to_owned()),
            pod_name: self
                .env_only("POD_NAME")
                .or_else(|| self.env_only("HOSTNAME")),
            saturation_config_map: self
                .env_only("SATURATION_CONFIG_MAP_NAME")
                .unwrap_or_else(|| DEFAULT_SATURATION_CONFIG_MAP.to_owned()),
            scale_to_zero_config_map: self
                .env_only("SCALE_TO_ZERO_CONFIG_MAP_NAME")
                .unwrap_or_else(|| DEFAULT_SCALE_TO_ZERO_CONFIG_MAP.to_owned()),
            epp_bearer_token: self
                .env_only("EPP_METRIC_READER_BEARER_TOKEN")
                .map(Redacted),
        }
    }

    /// Each timing must be whole seconds; then lease > renew (else the renew deadline is
    /// reported) and renew > retry (else the retry period is reported).
    fn lease_timings(&mut self) -> LeaseTimings {
        let lease_duration = self.get(
            "LEADER_ELECTION_LEASE_DURATION",
            parse::whole_seconds,
            Duration::from_secs(60),
        );
        let renew_deadline = self.get(
            "LEADER_ELECTION_RENEW_DEADLINE",
            parse::whole_seconds,
            Duration::from_secs(50),
        );
        let retry_period = self.get(
            "LEADER_ELECTION_RETRY_PERIOD",
            parse::whole_seconds,
            Duration::from_secs(10),
        );
        let misordered = if lease_duration <= renew_deadline {
            Some("LEADER_ELECTION_RENEW_DEADLINE")
        } else if renew_deadline <= retry_period {
            Some("LEADER_ELECTION_RETRY_PERIOD")
        } else {
            None
        };
        if let Some(key) = misordered
            && let Some((value, origin)) = self.value(key)
        {
            self.invalid(key, value, origin, parse::LEASE);
        }
        LeaseTimings {
            lease_duration,
            renew_deadline,
            retry_period,
        }
    }

    /// Every `PROMETHEUS_*` key by precedence (flag `--prometheus-url`, environment, file).
    /// Kubernetes service-link variables (`PROMETHEUS_PORT…`, `…_SERVICE_HOST`) are skipped.
    fn prometheus(&self) -> BTreeMap<String, String> {
        let mut merged: BTreeMap<String, String> = self
            .file
            .iter()
            .filter(|(k, v)| k.starts_with(PROMETHEUS_PREFIX) && !v.is_empty())
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        for (k, v) in self.raw.env {
            if k.starts_with(PROMETHEUS_PREFIX) && !v.is_empty() && !is_service_link(k) {
                merged.insert(k.clone(), v.clone());
            }
        }
        if let Some((url, _)) = self.given("PROMETHEUS_BASE_URL") {
            merged.insert("PROMETHEUS_BASE_URL".into(), url);
        }
        merged
    }
}

/// Variables Kubernetes injects for a Service named `prometheus`.
fn is_service_link(name: &str) -> bool {
    name == "PROMETHEUS_PORT"
        || name.starts_with("PROMETHEUS_PORT_")
        || name.starts_with("PROMETHEUS_SERVICE_")
}

#[cfg(test)]
mod tests;
