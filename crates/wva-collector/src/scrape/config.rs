//! Configuration of the scrape client and the pod-scraping source (spec/collector.md §7).

use std::time::Duration;

use wva_core::FreshnessPolicy;

use crate::error::CollectorError;
use crate::secret::TokenSource;
use crate::tls::TlsOptions;

/// Per-scrape timeout (connect, headers and body).
pub const DEFAULT_SCRAPE_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest accepted metrics body, in decoded bytes.
pub const DEFAULT_MAX_BODY_BYTES: usize = 16 * 1024 * 1024;
/// Time between two rounds (before jitter).
pub const DEFAULT_SCRAPE_INTERVAL: Duration = Duration::from_secs(5);
/// Scrapes in flight at once.
pub const DEFAULT_MAX_CONCURRENT_SCRAPES: usize = 10;
/// A model not requested for this long is no longer tracked.
pub const DEFAULT_TRACKING_IDLE_TIMEOUT: Duration = Duration::from_secs(300);

/// How one HTTP scrape is made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScrapeClientConfig {
    /// Timeout of one scrape: connect, headers and body (default 5 s).
    pub timeout: Duration,
    /// Cap on the decoded body (default 16 MiB); a larger body fails the scrape.
    pub max_body_bytes: usize,
    /// Bearer token sent to every target (default none). A token file is re-read every 60 s
    /// and once more on a 401.
    pub token: TokenSource,
    /// TLS options for `https` endpoints. `None` (the default) allows plain HTTP only: an
    /// `https` endpoint then fails instead of being scraped unverified.
    pub tls: Option<TlsOptions>,
}

impl Default for ScrapeClientConfig {
    fn default() -> Self {
        ScrapeClientConfig {
            timeout: DEFAULT_SCRAPE_TIMEOUT,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            token: TokenSource::None,
            tls: None,
        }
    }
}

impl ScrapeClientConfig {
    /// The defaults with a static bearer token taken from a configuration value, where an
    /// empty (or blank) value means no token, as for `EPP_METRIC_READER_BEARER_TOKEN`.
    pub fn with_token_value(value: &str) -> Self {
        let token = if value.trim().is_empty() {
            TokenSource::None
        } else {
            TokenSource::Static(crate::secret::Secret::new(value))
        };
        ScrapeClientConfig {
            token,
            ..ScrapeClientConfig::default()
        }
    }
}

/// What drives the scrape rounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RoundMode {
    /// `spawn_background` runs a round every `scrape_interval` (shortened by up to 10 %
    /// jitter) on the tokio clock; sample times and ages use the tokio clock.
    #[default]
    Timer,
    /// No timer: the caller runs `ScrapeSource::scrape_round(at)` itself, and `at` (a time on
    /// the caller's virtual clock) stamps the samples; ages are measured against the latest
    /// `at`. For lockstep simulation (spec/sim.md §5), where results must not depend on host
    /// speed.
    Stepped,
}

/// Configuration of [`ScrapeSource`](super::ScrapeSource).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScrapeConfig {
    /// How each scrape is made.
    pub client: ScrapeClientConfig,
    /// Time between rounds in [`RoundMode::Timer`] (default 5 s; the demo uses 1 s).
    pub scrape_interval: Duration,
    /// Timer-driven or caller-stepped rounds.
    pub rounds: RoundMode,
    /// Scrapes in flight at once (default 10).
    pub max_concurrent_scrapes: usize,
    /// Age thresholds for fresh / stale / unavailable.
    pub freshness: FreshnessPolicy,
    /// A model not requested by `collect` for this long is dropped (default 5 min).
    pub tracking_idle_timeout: Duration,
    /// Window of the KV-usage and queue-length peaks (default and maximum 1 min, the
    /// Prometheus queries' `[1m]`). The demo shortens it so that a scale-down shows within
    /// a minute of a load drop.
    pub peak_window: Duration,
}

impl Default for ScrapeConfig {
    fn default() -> Self {
        ScrapeConfig {
            client: ScrapeClientConfig::default(),
            scrape_interval: DEFAULT_SCRAPE_INTERVAL,
            rounds: RoundMode::Timer,
            max_concurrent_scrapes: DEFAULT_MAX_CONCURRENT_SCRAPES,
            freshness: FreshnessPolicy::default(),
            tracking_idle_timeout: DEFAULT_TRACKING_IDLE_TIMEOUT,
            peak_window: super::family::PEAK_WINDOW,
        }
    }
}

impl ScrapeConfig {
    /// The defaults with caller-stepped rounds ([`RoundMode::Stepped`]).
    pub fn stepped() -> Self {
        ScrapeConfig {
            rounds: RoundMode::Stepped,
            ..ScrapeConfig::default()
        }
    }

    /// Checks the values; the error names the field.
    pub fn validate(&self) -> Result<(), CollectorError> {
        let bad = |key: &str, rule: &str| {
            Err(CollectorError::config(
                key,
                format!("scrape configuration: {key} {rule}"),
            ))
        };
        if self.client.timeout.is_zero() {
            return bad("client.timeout", "must be greater than 0");
        }
        if self.client.max_body_bytes == 0 {
            return bad("client.max_body_bytes", "must be greater than 0");
        }
        if self.max_concurrent_scrapes == 0 {
            return bad("max_concurrent_scrapes", "must be at least 1");
        }
        if self.rounds == RoundMode::Timer && self.scrape_interval < Duration::from_millis(10) {
            return bad("scrape_interval", "must be at least 10ms");
        }
        if self.tracking_idle_timeout.is_zero() {
            return bad("tracking_idle_timeout", "must be greater than 0");
        }
        if self.peak_window.is_zero() || self.peak_window > super::family::PEAK_WINDOW {
            return bad("peak_window", "must be greater than 0 and at most 1m");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_token_value_means_no_token() {
        assert_eq!(
            ScrapeClientConfig::with_token_value("  ").token,
            TokenSource::None
        );
        assert!(matches!(
            ScrapeClientConfig::with_token_value("abc").token,
            TokenSource::Static(s) if s.expose() == "abc"
        ));
    }

    #[test]
    fn invalid_values_name_the_field() {
        let c = ScrapeConfig {
            max_concurrent_scrapes: 0,
            ..ScrapeConfig::default()
        };
        assert_eq!(
            c.validate().unwrap_err().to_string(),
            "scrape configuration: max_concurrent_scrapes must be at least 1"
        );
        assert!(ScrapeConfig::stepped().validate().is_ok());
        let c = ScrapeConfig {
            scrape_interval: Duration::ZERO,
            ..ScrapeConfig::default()
        };
        assert!(c.validate().is_err());
        let c = ScrapeConfig {
            scrape_interval: Duration::ZERO,
            ..ScrapeConfig::stepped()
        };
        assert!(c.validate().is_ok(), "stepped rounds need no interval");
    }
}
