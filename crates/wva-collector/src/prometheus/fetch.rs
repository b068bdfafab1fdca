//! A logical query: breaker, attempts with backoff, 401 token reload, shared deadline (§4.3).

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::catalogue::QueryName;
use crate::config::RetryConfig;
use crate::error::CollectorError;
use crate::observer::{CollectorObserver, QueryEvent};
use crate::snapshot::QueryOutcome;
use crate::stats::StatsCounters;

use super::breaker::Breaker;
use super::client::PromClient;
use super::decode::DecodedResult;

/// Sends logical queries with retries, behind the circuit breaker.
pub(crate) struct Fetcher {
    pub(crate) client: PromClient,
    pub(crate) breaker: Breaker,
    pub(crate) retry: RetryConfig,
    pub(crate) deadline: Duration,
    pub(crate) stats: Arc<StatsCounters>,
    pub(crate) observer: Option<Arc<dyn CollectorObserver>>,
}

/// The wait before attempt `n + 1` after `n` failed attempts: initial × multiplier^(n−1) ×
/// (1 + U[0, jitter]).
pub(crate) fn backoff(cfg: &RetryConfig, failed_attempts: u32) -> Duration {
    let exp = cfg
        .multiplier
        .powi(failed_attempts.saturating_sub(1).min(30) as i32);
    let jitter = 1.0 + fastrand::f64() * cfg.jitter;
    Duration::try_from_secs_f64(cfg.initial_backoff.as_secs_f64() * exp * jitter)
        .unwrap_or(Duration::from_secs(60))
}

impl Fetcher {
    /// One logical query of a catalogue entry.
    pub(crate) async fn fetch(
        &self,
        name: QueryName,
        text: &str,
    ) -> Result<DecodedResult, CollectorError> {
        let start = Instant::now();
        let mut attempts = 0u32;
        let result = self
            .fetch_counted(Some(name), name.as_str(), text, &mut attempts, true)
            .await;
        match &result {
            Ok(r) => {
                self.stats.success(Some(name));
                self.stats
                    .warnings
                    .fetch_add(r.warnings as u64, std::sync::atomic::Ordering::Relaxed);
                self.stats
                    .unsupported
                    .fetch_add(r.unsupported as u64, std::sync::atomic::Ordering::Relaxed);
                if r.warnings > 0 {
                    tracing::debug!(
                        query = name.as_str(),
                        warnings = r.warnings,
                        "Prometheus sent warnings"
                    );
                }
            }
            Err(e) => {
                tracing::debug!(query = name.as_str(), error = %e, "query failed");
                self.stats.failure(Some(name), e)
            }
        }
        if let Some(obs) = &self.observer {
            obs.on_query(&QueryEvent {
                name,
                outcome: if result.is_ok() {
                    QueryOutcome::Miss
                } else {
                    QueryOutcome::Failed
                },
                attempts,
                duration: start.elapsed(),
                series: result.as_ref().map_or(0, |r| r.samples.len()),
                error_kind: result.as_ref().err().map(|e| e.kind().to_string()),
            });
        }
        result
    }

    /// One logical query outside the catalogue and the breaker (the startup check's `up`).
    pub(crate) async fn fetch_raw(
        &self,
        label: &str,
        text: &str,
    ) -> Result<DecodedResult, CollectorError> {
        let mut attempts = 0;
        self.fetch_counted(None, label, text, &mut attempts, false)
            .await
    }

    async fn fetch_counted(
        &self,
        name: Option<QueryName>,
        label: &str,
        text: &str,
        attempts: &mut u32,
        use_breaker: bool,
    ) -> Result<DecodedResult, CollectorError> {
        let permit = if use_breaker {
            Some(self.breaker.acquire()?)
        } else {
            None
        };
        if let Some(n) = name {
            self.stats.sent(n);
        }
        let result =
            match tokio::time::timeout(self.deadline, self.attempts(name, label, text, attempts))
                .await
            {
                Ok(r) => r,
                Err(_) => Err(CollectorError::Timeout {
                    query: label.to_string(),
                    after: self.deadline,
                }),
            };
        if let Some(permit) = permit {
            match &result {
                Ok(_) => self.breaker.success(),
                Err(e) if e.is_retryable() || matches!(e, CollectorError::Unauthorized { .. }) => {
                    self.breaker.failure(permit)
                }
                Err(_) => self.breaker.release(permit),
            }
        }
        result
    }

    async fn attempts(
        &self,
        name: Option<QueryName>,
        label: &str,
        text: &str,
        attempts: &mut u32,
    ) -> Result<DecodedResult, CollectorError> {
        let mut token_retry_used = false;
        loop {
            *attempts += 1;
            if let Some(n) = name {
                self.stats.attempt(n);
            }
            let used = self.client.token.peek();
            let err = match self.client.attempt(label, text).await {
                Ok(r) => return Ok(r),
                Err(e) => e,
            };
            if let CollectorError::Unauthorized { .. } = err.err {
                if self.client.token.is_file() && !token_retry_used {
                    token_retry_used = true;
                    // Another query may have reloaded already: compare with the token we sent.
                    let changed = self.client.token.reload().await;
                    if changed || self.client.token.peek() != used {
                        tracing::info!(query = label, "bearer token changed; retrying once");
                        continue;
                    }
                }
                return Err(err.err);
            }
            if !err.err.is_retryable() || *attempts >= self.retry.max_attempts {
                return Err(err.err);
            }
            let is_429 = matches!(err.err, CollectorError::Api { status: 429, .. });
            let wait = match err.retry_after {
                Some(d) if is_429 && d <= self.retry.max_retry_after => d,
                _ => backoff(&self.retry, *attempts),
            };
            tracing::debug!(query = label, attempt = *attempts, wait = ?wait, error = %err.err, "retrying");
            tokio::time::sleep(wait).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_half_a_second_with_at_most_ten_percent_jitter() {
        let cfg = RetryConfig::default();
        for (n, base) in [(1u32, 0.5f64), (2, 1.0), (3, 2.0), (4, 4.0)] {
            let w = backoff(&cfg, n).as_secs_f64();
            assert!(w >= base && w <= base * 1.1 + 1e-9, "{n}: {w}");
        }
    }
}
