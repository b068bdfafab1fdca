//! Connection and cache configuration from `PROMETHEUS_*` keys (spec §6).

mod boolean;
mod duration;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

pub use boolean::parse_bool;
pub use duration::{format_go_duration, parse_go_duration};

use crate::error::CollectorError;
use crate::secret::{Secret, TokenSource};
use crate::tls::TlsOptions;
use wva_core::FreshnessPolicy;

/// Backoff between attempts of one logical query (spec §4.3).
#[derive(Debug, Clone, PartialEq)]
pub struct RetryConfig {
    /// First wait (500 ms).
    pub initial_backoff: Duration,
    /// Growth factor (2).
    pub multiplier: f64,
    /// Each wait × (1 + U[0, jitter]) (0.1).
    pub jitter: f64,
    /// Attempts per logical query (5).
    pub max_attempts: u32,
    /// Largest honoured `Retry-After` (10 s).
    pub max_retry_after: Duration,
}

impl Default for RetryConfig {
    fn default() -> Self {
        RetryConfig {
            initial_backoff: Duration::from_millis(500),
            multiplier: 2.0,
            jitter: 0.1,
            max_attempts: 5,
            max_retry_after: Duration::from_secs(10),
        }
    }
}

/// Circuit-breaker settings (spec §4.4).
#[derive(Debug, Clone, PartialEq)]
pub struct BreakerConfig {
    /// Consecutive failures that open it (5).
    pub threshold: u32,
    /// First open period (30 s), doubled on each re-open.
    pub cooldown: Duration,
    /// Longest open period (5 min).
    pub max_cooldown: Duration,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        BreakerConfig {
            threshold: 5,
            cooldown: Duration::from_secs(30),
            max_cooldown: Duration::from_secs(300),
        }
    }
}

/// How to reach Prometheus.
#[derive(Debug, Clone)]
pub struct PrometheusConfig {
    /// Validated base URL (a path prefix is kept), without user info.
    pub base_url: String,
    /// `PROMETHEUS_ALLOW_INSECURE_HTTP`.
    pub allow_insecure_http: bool,
    /// Bearer token source.
    pub token: TokenSource,
    /// TLS options.
    pub tls: TlsOptions,
    /// Per-attempt timeout (`PROMETHEUS_QUERY_TIMEOUT`, 10 s).
    pub query_timeout: Duration,
    /// Shared deadline of the attempts of one logical query (25 s).
    pub query_deadline: Duration,
    /// Bound of one `collect` (15 s).
    pub collect_timeout: Duration,
    /// Bound of `startup_check` (120 s).
    pub startup_timeout: Duration,
    /// Parallel fetches of a refresh tick (4).
    pub max_concurrent_queries: usize,
    /// Largest decoded answer (64 MiB).
    pub max_response_bytes: u64,
    /// Retry policy.
    pub retry: RetryConfig,
    /// Breaker policy.
    pub breaker: BreakerConfig,
}

impl PrometheusConfig {
    /// A config for `base_url` with every other setting at its default; the URL is validated as
    /// `PROMETHEUS_BASE_URL` would be (without `PROMETHEUS_ALLOW_INSECURE_HTTP`).
    pub fn new(base_url: &str) -> Result<Self, CollectorError> {
        let mut map = BTreeMap::new();
        map.insert("PROMETHEUS_BASE_URL".to_string(), base_url.to_string());
        PrometheusConfig::from_map(&map)
    }

    /// Reads and validates the `PROMETHEUS_*` connection keys; each error is one §6.2 line.
    pub fn from_map(map: &BTreeMap<String, String>) -> Result<Self, CollectorError> {
        let get = |k: &str| map.get(k).map(String::as_str);
        let allow_insecure_http = bool_key(map, "PROMETHEUS_ALLOW_INSECURE_HTTP")?;
        let raw = match get("PROMETHEUS_BASE_URL") {
            Some(v) if !v.trim().is_empty() => v.trim(),
            _ => {
                return Err(CollectorError::config(
                    "PROMETHEUS_BASE_URL",
                    "prometheus configuration is required but not found. set PROMETHEUS_BASE_URL in config file or environment variable",
                ));
            }
        };
        let base_url = validate_url(raw, allow_insecure_http)?;
        let static_token = get("PROMETHEUS_BEARER_TOKEN").filter(|v| !v.trim().is_empty());
        let token_path = get("PROMETHEUS_TOKEN_PATH").filter(|v| !v.trim().is_empty());
        let token = match (static_token, token_path) {
            (Some(t), path) => {
                if path.is_some() {
                    tracing::warn!(
                        "both PROMETHEUS_BEARER_TOKEN and PROMETHEUS_TOKEN_PATH are set; using PROMETHEUS_BEARER_TOKEN"
                    );
                }
                TokenSource::Static(Secret::new(t))
            }
            (None, Some(p)) => TokenSource::File(p.into()),
            (None, None) => TokenSource::None,
        };
        let insecure_skip_verify = bool_key(map, "PROMETHEUS_TLS_INSECURE_SKIP_VERIFY")?;
        if insecure_skip_verify {
            tracing::warn!(
                "PROMETHEUS_TLS_INSECURE_SKIP_VERIFY=true: the Prometheus certificate is not verified"
            );
        }
        let mut ca_cert_path = get("PROMETHEUS_CA_CERT_PATH")
            .filter(|v| !v.is_empty())
            .map(Into::into);
        if insecure_skip_verify && ca_cert_path.is_some() {
            tracing::warn!(
                "PROMETHEUS_CA_CERT_PATH is ignored under PROMETHEUS_TLS_INSECURE_SKIP_VERIFY"
            );
            ca_cert_path = None;
        }
        let client_cert_path = get("PROMETHEUS_CLIENT_CERT_PATH")
            .filter(|v| !v.is_empty())
            .map(Into::into);
        let client_key_path = get("PROMETHEUS_CLIENT_KEY_PATH")
            .filter(|v| !v.is_empty())
            .map(Into::into);
        match (&client_cert_path, &client_key_path) {
            (Some(_), None) | (None, Some(_)) => {
                let only = if client_cert_path.is_some() {
                    "PROMETHEUS_CLIENT_CERT_PATH"
                } else {
                    "PROMETHEUS_CLIENT_KEY_PATH"
                };
                return Err(CollectorError::config(
                    only,
                    format!(
                        "PROMETHEUS_CLIENT_CERT_PATH and PROMETHEUS_CLIENT_KEY_PATH must be set together; only {only} is set"
                    ),
                ));
            }
            _ => {}
        }
        let server_name = get("PROMETHEUS_SERVER_NAME")
            .filter(|v| !v.is_empty())
            .map(str::to_string);
        if let Some(n) = &server_name {
            crate::tls::parse_server_name(n)?;
        }
        let query_timeout = duration_key(map, "PROMETHEUS_QUERY_TIMEOUT", Duration::from_secs(10))?;
        if query_timeout < Duration::from_secs(1) || query_timeout > Duration::from_secs(300) {
            return Err(out_of_range(
                map,
                "PROMETHEUS_QUERY_TIMEOUT",
                "must be between 1s and 5m",
            ));
        }
        Ok(PrometheusConfig {
            base_url,
            allow_insecure_http,
            token,
            tls: TlsOptions {
                insecure_skip_verify,
                ca_cert_path,
                client_cert_path,
                client_key_path,
                server_name,
            },
            query_timeout,
            query_deadline: Duration::from_secs(25).max(query_timeout),
            collect_timeout: Duration::from_secs(15),
            startup_timeout: Duration::from_secs(120),
            max_concurrent_queries: 4,
            max_response_bytes: 64 * 1024 * 1024,
            retry: RetryConfig::default(),
            breaker: BreakerConfig::default(),
        })
    }

    /// Whether the base URL is `https://`.
    pub fn is_https(&self) -> bool {
        self.base_url.starts_with("https://")
    }
}

/// Cache, refresher and freshness settings.
#[derive(Debug, Clone, PartialEq)]
pub struct CacheConfig {
    /// Entry lifetime (`PROMETHEUS_METRICS_CACHE_TTL`, 30 s).
    pub ttl: Duration,
    /// Refresher period; zero turns it off (`…_FETCH_INTERVAL`, 30 s).
    pub fetch_interval: Duration,
    /// Fresh/stale/unavailable thresholds (1 min, 5 min).
    pub freshness: FreshnessPolicy,
    /// Maximum entries (`…_MAX_SIZE`; 0 means 1024).
    pub max_size: usize,
    /// A model not requested for this long is untracked (5 min).
    pub tracking_idle_timeout: Duration,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            ttl: Duration::from_secs(30),
            fetch_interval: Duration::from_secs(30),
            freshness: FreshnessPolicy::default(),
            max_size: 1024,
            tracking_idle_timeout: Duration::from_secs(300),
        }
    }
}

impl CacheConfig {
    /// Reads and validates the `PROMETHEUS_METRICS_CACHE_*` keys.
    pub fn from_map(map: &BTreeMap<String, String>) -> Result<Self, CollectorError> {
        let d = CacheConfig::default();
        let ttl = duration_key(map, "PROMETHEUS_METRICS_CACHE_TTL", d.ttl)?;
        if ttl < Duration::from_secs(1) {
            return Err(out_of_range(
                map,
                "PROMETHEUS_METRICS_CACHE_TTL",
                "must be at least 1s",
            ));
        }
        let fetch_interval = duration_key(
            map,
            "PROMETHEUS_METRICS_CACHE_FETCH_INTERVAL",
            d.fetch_interval,
        )?;
        if !fetch_interval.is_zero() && fetch_interval < Duration::from_secs(1) {
            return Err(out_of_range(
                map,
                "PROMETHEUS_METRICS_CACHE_FETCH_INTERVAL",
                "must be 0 (off) or at least 1s",
            ));
        }
        let fresh = duration_key(
            map,
            "PROMETHEUS_METRICS_CACHE_FRESH_THRESHOLD",
            d.freshness.fresh(),
        )?;
        let unavailable = duration_key(
            map,
            "PROMETHEUS_METRICS_CACHE_UNAVAILABLE_THRESHOLD",
            d.freshness.unavailable(),
        )?;
        let freshness = FreshnessPolicy::new(fresh, unavailable).map_err(|_| {
            CollectorError::config(
                "PROMETHEUS_METRICS_CACHE_FRESH_THRESHOLD",
                format!(
                    "PROMETHEUS_METRICS_CACHE_FRESH_THRESHOLD ({}) must be less than PROMETHEUS_METRICS_CACHE_UNAVAILABLE_THRESHOLD ({})",
                    format_go_duration(fresh),
                    format_go_duration(unavailable)
                ),
            )
        })?;
        let max_size = match map.get("PROMETHEUS_METRICS_CACHE_MAX_SIZE") {
            None => 0,
            Some(v) => v.trim().parse::<usize>().map_err(|_| {
                CollectorError::config(
                    "PROMETHEUS_METRICS_CACHE_MAX_SIZE",
                    format!(
                        "PROMETHEUS_METRICS_CACHE_MAX_SIZE=\"{v}\" is not a non-negative integer"
                    ),
                )
            })?,
        };
        for key in [
            "PROMETHEUS_METRICS_CACHE_STALE_THRESHOLD",
            "PROMETHEUS_METRICS_CACHE_CLEANUP_INTERVAL",
        ] {
            if map.contains_key(key) {
                duration_key(map, key, Duration::ZERO)?;
                tracing::info!(key, "accepted for compatibility; it has no effect");
            }
        }
        Ok(CacheConfig {
            ttl,
            fetch_interval,
            freshness,
            max_size: if max_size == 0 { 1024 } else { max_size },
            tracking_idle_timeout: d.tracking_idle_timeout,
        })
    }
}

fn bool_key(map: &BTreeMap<String, String>, key: &str) -> Result<bool, CollectorError> {
    match map.get(key) {
        None => Ok(false),
        Some(v) if v.is_empty() => Ok(false),
        Some(v) => parse_bool(v).ok_or_else(|| {
            CollectorError::config(
                key,
                format!("{key}=\"{v}\" is not a boolean: use true or false"),
            )
        }),
    }
}

fn duration_key(
    map: &BTreeMap<String, String>,
    key: &str,
    default: Duration,
) -> Result<Duration, CollectorError> {
    match map.get(key) {
        None => Ok(default),
        Some(v) if v.is_empty() => Ok(default),
        Some(v) => parse_go_duration(v.trim()).ok_or_else(|| {
            CollectorError::config(
                key,
                format!("{key}=\"{v}\" is not a valid duration: use a number with a unit (ms, s, m, h), e.g. 30s"),
            )
        }),
    }
}

fn out_of_range(map: &BTreeMap<String, String>, key: &str, rule: &str) -> CollectorError {
    let v = map.get(key).map(String::as_str).unwrap_or_default();
    CollectorError::config(key, format!("{key}={v} is out of range: {rule}"))
}

/// Whether a URL host is loopback (`localhost` in any case, 127.0.0.0/8, `::1`); no DNS.
pub fn is_loopback_host(host: &url::Host<&str>) -> bool {
    match host {
        url::Host::Domain(d) => d.eq_ignore_ascii_case("localhost"),
        url::Host::Ipv4(ip) => IpAddr::V4(*ip).is_loopback(),
        url::Host::Ipv6(ip) => ip.is_loopback(),
    }
}

fn validate_url(raw: &str, allow_insecure_http: bool) -> Result<String, CollectorError> {
    let key = "PROMETHEUS_BASE_URL";
    let url = url::Url::parse(raw).map_err(|e| {
        // A URL that does not parse may still carry credentials: mask everything before '@'.
        let shown = match raw.split_once('@') {
            Some((_, rest)) => format!("***@{rest}"),
            None => raw.to_string(),
        };
        CollectorError::config(key, format!("{key}=\"{shown}\" is not a valid URL: {e}"))
    })?;
    if !url.username().is_empty()
        || url.password().is_some()
        || url.query().is_some()
        || url.fragment().is_some()
    {
        let mut shown = url.clone();
        if !url.username().is_empty() || url.password().is_some() {
            let _ = shown.set_password(None);
            let _ = shown.set_username("***");
        }
        return Err(CollectorError::config(
            key,
            format!(
                "{key}=\"{shown}\" must not contain user credentials, a query string or a fragment"
            ),
        ));
    }
    let loopback = url.host().is_some_and(|h| is_loopback_host(&h));
    match url.scheme() {
        "https" => {}
        "http" if loopback || allow_insecure_http => {}
        _ => {
            return Err(CollectorError::config(
                key,
                format!(
                    "HTTPS is required - URL must use https:// scheme: {url} (http:// is allowed only for a loopback host or with PROMETHEUS_ALLOW_INSECURE_HTTP=true)"
                ),
            ));
        }
    }
    if url.host().is_none() {
        return Err(CollectorError::config(
            key,
            format!("{key}=\"{raw}\" is not a valid URL: empty host"),
        ));
    }
    Ok(url.as_str().trim_end_matches('/').to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn err(pairs: &[(&str, &str)]) -> String {
        PrometheusConfig::from_map(&map(pairs))
            .unwrap_err()
            .to_string()
    }

    fn cache_err(pairs: &[(&str, &str)]) -> String {
        CacheConfig::from_map(&map(pairs)).unwrap_err().to_string()
    }

    #[test]
    fn url_rules_give_the_exact_messages() {
        assert_eq!(
            err(&[]),
            "prometheus configuration is required but not found. set PROMETHEUS_BASE_URL in config file or environment variable"
        );
        assert_eq!(
            err(&[("PROMETHEUS_BASE_URL", "http://prom.example:9090")]),
            "HTTPS is required - URL must use https:// scheme: http://prom.example:9090/ (http:// is allowed only for a loopback host or with PROMETHEUS_ALLOW_INSECURE_HTTP=true)"
        );
        assert_eq!(
            err(&[("PROMETHEUS_BASE_URL", "https://user:pw@prom.example")]),
            "PROMETHEUS_BASE_URL=\"https://***@prom.example/\" must not contain user credentials, a query string or a fragment"
        );
        assert_eq!(
            err(&[("PROMETHEUS_BASE_URL", "not a url")]),
            "PROMETHEUS_BASE_URL=\"not a url\" is not a valid URL: relative URL without a base"
        );
        assert_eq!(
            err(&[
                ("PROMETHEUS_BASE_URL", "https://p"),
                ("PROMETHEUS_ALLOW_INSECURE_HTTP", "yes")
            ]),
            "PROMETHEUS_ALLOW_INSECURE_HTTP=\"yes\" is not a boolean: use true or false"
        );
        assert_eq!(
            err(&[
                ("PROMETHEUS_BASE_URL", "https://p"),
                ("PROMETHEUS_QUERY_TIMEOUT", "10")
            ]),
            "PROMETHEUS_QUERY_TIMEOUT=\"10\" is not a valid duration: use a number with a unit (ms, s, m, h), e.g. 30s"
        );
        assert_eq!(
            err(&[
                ("PROMETHEUS_BASE_URL", "https://p"),
                ("PROMETHEUS_QUERY_TIMEOUT", "10m")
            ]),
            "PROMETHEUS_QUERY_TIMEOUT=10m is out of range: must be between 1s and 5m"
        );
        assert_eq!(
            err(&[
                ("PROMETHEUS_BASE_URL", "https://p"),
                ("PROMETHEUS_SERVER_NAME", "bad name!")
            ]),
            "PROMETHEUS_SERVER_NAME=\"bad name!\" is not a valid DNS name or IP address"
        );
        assert_eq!(
            err(&[
                ("PROMETHEUS_BASE_URL", "https://p"),
                ("PROMETHEUS_CLIENT_KEY_PATH", "/k")
            ]),
            "PROMETHEUS_CLIENT_CERT_PATH and PROMETHEUS_CLIENT_KEY_PATH must be set together; only PROMETHEUS_CLIENT_KEY_PATH is set"
        );
    }

    #[test]
    fn loopback_http_and_path_prefix_are_accepted() {
        for u in [
            "http://127.0.0.1:9090",
            "http://LocalHost:9090",
            "http://[::1]:9090",
            "http://127.3.4.5",
        ] {
            assert!(PrometheusConfig::new(u).is_ok(), "{u}");
        }
        let c = PrometheusConfig::new("https://prom.example/prefix/").unwrap();
        assert_eq!(c.base_url, "https://prom.example/prefix");
        let c = PrometheusConfig::from_map(&map(&[
            ("PROMETHEUS_BASE_URL", "http://prom.example"),
            ("PROMETHEUS_ALLOW_INSECURE_HTTP", "True"),
        ]));
        assert!(c.is_ok());
    }

    #[test]
    fn cache_keys_validate_with_exact_messages() {
        assert_eq!(
            cache_err(&[("PROMETHEUS_METRICS_CACHE_TTL", "500ms")]),
            "PROMETHEUS_METRICS_CACHE_TTL=500ms is out of range: must be at least 1s"
        );
        assert_eq!(
            cache_err(&[("PROMETHEUS_METRICS_CACHE_FRESH_THRESHOLD", "5m")]),
            "PROMETHEUS_METRICS_CACHE_FRESH_THRESHOLD (5m0s) must be less than PROMETHEUS_METRICS_CACHE_UNAVAILABLE_THRESHOLD (5m0s)"
        );
        assert_eq!(
            cache_err(&[("PROMETHEUS_METRICS_CACHE_MAX_SIZE", "-1")]),
            "PROMETHEUS_METRICS_CACHE_MAX_SIZE=\"-1\" is not a non-negative integer"
        );
        assert_eq!(
            cache_err(&[("PROMETHEUS_METRICS_CACHE_STALE_THRESHOLD", "2x")]),
            "PROMETHEUS_METRICS_CACHE_STALE_THRESHOLD=\"2x\" is not a valid duration: use a number with a unit (ms, s, m, h), e.g. 30s"
        );
        let c = CacheConfig::from_map(&map(&[
            ("PROMETHEUS_METRICS_CACHE_MAX_SIZE", "0"),
            ("PROMETHEUS_METRICS_CACHE_FETCH_INTERVAL", "0"),
        ]))
        .unwrap();
        assert_eq!(c.max_size, 1024);
        assert!(c.fetch_interval.is_zero());
    }
}
