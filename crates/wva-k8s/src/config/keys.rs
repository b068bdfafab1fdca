//! The keys of `wva-manager run` (spec/k8s.md §6.2): environment name, flag name, default.

/// One configuration key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Key {
    /// Environment variable name, also the config-file key and the name in error lines.
    pub env: &'static str,
    /// Flag name without `--`, if the key has a flag.
    pub flag: Option<&'static str>,
    /// Default value as text, if any.
    pub default: Option<&'static str>,
}

const fn key(env: &'static str, flag: &'static str, default: Option<&'static str>) -> Key {
    Key {
        env,
        flag: Some(flag),
        default,
    }
}

/// Every flag-backed key of `wva-manager run`, in the order errors are reported.
pub const KEYS: &[Key] = &[
    key("WVA_CONFIG_FILE", "config-file", None),
    key("KUBECONFIG", "kubeconfig", None),
    key(
        "METRICS_BIND_ADDRESS",
        "metrics-bind-address",
        Some("0.0.0.0:8080"),
    ),
    key(
        "HEALTH_PROBE_BIND_ADDRESS",
        "health-probe-bind-address",
        Some("0.0.0.0:8081"),
    ),
    key("METRICS_SECURE", "metrics-secure", Some("false")),
    key("METRICS_CERT_PATH", "metrics-cert-path", None),
    key("METRICS_CERT_NAME", "metrics-cert-name", Some("tls.crt")),
    key("METRICS_CERT_KEY", "metrics-cert-key", Some("tls.key")),
    key("METRICS_AUTH", "metrics-auth", None),
    key("METRICS_AUTH_TOKEN_FILE", "metrics-auth-token-file", None),
    key("ENABLE_HTTP2", "enable-http2", Some("false")),
    key("WVA_METRICS_NAMING", "metrics-naming", Some("inferno")),
    key("CONTROLLER_INSTANCE", "controller-instance", None),
    key("LEADER_ELECT", "leader-elect", Some("false")),
    key(
        "LEADER_ELECTION_ID",
        "leader-election-id",
        Some("72dd1cf1.llm-d.ai"),
    ),
    key(
        "LEADER_ELECTION_LEASE_DURATION",
        "leader-election-lease-duration",
        Some("60s"),
    ),
    key(
        "LEADER_ELECTION_RENEW_DEADLINE",
        "leader-election-renew-deadline",
        Some("50s"),
    ),
    key(
        "LEADER_ELECTION_RETRY_PERIOD",
        "leader-election-retry-period",
        Some("10s"),
    ),
    key("WATCH_NAMESPACE", "watch-namespace", None),
    key("GLOBAL_OPT_INTERVAL", "interval", Some("30s")),
    key("WVA_EVENT_DEBOUNCE", "event-debounce", Some("2s")),
    key("WVA_MIN_CYCLE_GAP", "min-cycle-gap", Some("5s")),
    key("WVA_ACTUATION", "actuation", Some("metrics")),
    key("WVA_SCALE_FROM_ZERO", "scale-from-zero", Some("true")),
    key(
        "WVA_SCALE_FROM_ZERO_INTERVAL",
        "scale-from-zero-interval",
        Some("100ms"),
    ),
    key(
        "SCALE_FROM_ZERO_ENGINE_MAX_CONCURRENCY",
        "scale-from-zero-max-concurrency",
        Some("10"),
    ),
    key("WVA_SCALE_TO_ZERO", "scale-to-zero", Some("false")),
    key("WVA_LIMITED_MODE", "limited-mode", Some("false")),
    key("WVA_NODE_SELECTOR", "gpu-node-selector", None),
    key(
        "POOL_GROUP",
        "pool-group",
        Some("inference.networking.x-k8s.io"),
    ),
    key(
        "WVA_NAMESPACE_OVERRIDES",
        "namespace-overrides",
        Some("true"),
    ),
    key("WVA_SATURATION_CONFIG_FILE", "saturation-config-file", None),
    key(
        "WVA_SCALE_TO_ZERO_CONFIG_FILE",
        "scale-to-zero-config-file",
        None,
    ),
    key("REST_CLIENT_TIMEOUT", "rest-client-timeout", Some("60s")),
    key("LOG_FORMAT", "log-format", Some("text")),
    key("LOG_LEVEL", "log-level", None),
    key("WVA_STANDALONE", "standalone", Some("false")),
    key("WVA_VARIANTS_FILE", "variants", None),
    key("PROMETHEUS_BASE_URL", "prometheus-url", None),
];

/// Keys read from the environment only (never from flags or the config file).
pub const ENV_ONLY: &[&str] = &[
    "POD_NAMESPACE",
    "POD_NAME",
    "SATURATION_CONFIG_MAP_NAME",
    "SCALE_TO_ZERO_CONFIG_MAP_NAME",
    "EPP_METRIC_READER_BEARER_TOKEN",
];

/// Upstream key accepted and ignored.
pub const IGNORED: &[&str] = &["CONFIG_MAP_NAME"];

/// Prefix of the collector's keys, passed through for its own validation.
pub const PROMETHEUS_PREFIX: &str = "PROMETHEUS_";

/// The key with this environment name.
pub fn by_env(env: &str) -> Option<&'static Key> {
    KEYS.iter().find(|k| k.env == env)
}

/// The key with this flag name.
pub fn by_flag(flag: &str) -> Option<&'static Key> {
    KEYS.iter().find(|k| k.flag == Some(flag))
}
