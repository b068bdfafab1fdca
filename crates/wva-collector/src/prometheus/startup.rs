//! The bounded startup check (spec §6.4).

use std::time::Duration;

use tokio::time::Instant;

use crate::error::CollectorError;

use super::source::PrometheusSource;

fn stops_early(e: &CollectorError) -> bool {
    match e {
        CollectorError::Unauthorized { .. } | CollectorError::Tls { .. } => true,
        CollectorError::Api { status, .. } => (400..500).contains(status) && *status != 429,
        _ => false,
    }
}

impl PrometheusSource {
    /// Queries `up` at once, then after 1, 2, 4, 8, 16, 30, 30 … s, within the startup timeout.
    /// Stops early on `Unauthorized`, `Tls` and other 4xx.
    pub async fn startup_check(&self) -> Result<(), CollectorError> {
        let deadline = Instant::now() + self.cfg.startup_timeout;
        let mut attempts = 0u32;
        let mut wait = Duration::from_secs(1);
        loop {
            attempts += 1;
            let r = tokio::time::timeout_at(deadline, self.fetcher.fetch_raw("up", "up")).await;
            let err = match r {
                Ok(Ok(answer)) => {
                    if answer.samples.is_empty() {
                        tracing::warn!(
                            "Prometheus returned no \"up\" series; is it scraping anything?"
                        );
                    }
                    return Ok(());
                }
                Ok(Err(e)) => e,
                Err(_) => CollectorError::Timeout {
                    query: "up".to_string(),
                    after: self.cfg.startup_timeout,
                },
            };
            if stops_early(&err) || Instant::now() + wait >= deadline {
                return Err(CollectorError::StartupCheckFailed {
                    attempts,
                    last: Box::new(err),
                });
            }
            tracing::info!(error = %err, retry_in = ?wait, "Prometheus not reachable yet");
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(Duration::from_secs(30));
        }
    }
}
