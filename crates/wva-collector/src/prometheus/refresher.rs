//! The background refresher (spec §4.2, §4.5).

use std::time::Duration;

use futures::StreamExt;
use tokio_util::sync::CancellationToken;

use super::cache::CacheKey;
use super::source::PrometheusSource;

/// `interval × (1 − U[0, 0.1])`: the jitter only shortens the wait.
pub(crate) fn jittered(interval: Duration) -> Duration {
    interval.mul_f64(1.0 - fastrand::f64() * 0.1)
}

impl PrometheusSource {
    /// Runs ticks until `shutdown` fires, then stops every fetch task (within 5 s).
    pub(super) async fn run_refresher(&self, shutdown: CancellationToken) {
        let interval = self.cache_cfg.fetch_interval;
        if !interval.is_zero() {
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = self.cancel.cancelled() => break,
                    _ = tokio::time::timeout(interval, self.tick()) => {}
                }
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = self.cancel.cancelled() => break,
                    _ = tokio::time::sleep(jittered(interval)) => {}
                }
            }
        } else {
            tokio::select! {
                _ = shutdown.cancelled() => {},
                _ = self.cancel.cancelled() => {},
            }
        }
        self.shutdown().await;
    }

    /// One tick: drop idle models, sweep the cache, fetch plan keys absent or older than half
    /// the interval, at most `max_concurrent_queries` at once.
    pub async fn tick(&self) {
        self.drop_idle();
        self.cache.sweep(self.cache_cfg.ttl);
        let state = self.current_plan();
        let half = self.cache_cfg.fetch_interval / 2;
        let due: Vec<CacheKey> = state
            .plan
            .queries
            .iter()
            .map(|q| (q.name, q.text.clone()))
            .filter(|k| self.cache.age(k).is_none_or(|a| a >= half))
            .collect();
        let total = due.len();
        let results: Vec<bool> = futures::stream::iter(due)
            .map(|k| async move {
                let (_, r) = self.cache.get(&k, half).await;
                match r {
                    Ok(_) => {
                        self.set_health(true, None);
                        true
                    }
                    Err(e) => {
                        self.set_health(false, Some(&e));
                        false
                    }
                }
            })
            .buffer_unordered(self.cfg.max_concurrent_queries.max(1))
            .collect()
            .await;
        let failed = results.iter().filter(|ok| !**ok).count();
        tracing::debug!(fetched = total, failed, "refresh tick");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_only_shortens_the_interval_by_at_most_ten_percent() {
        for _ in 0..1000 {
            let d = jittered(Duration::from_secs(30));
            assert!(
                d >= Duration::from_secs(27) && d <= Duration::from_secs(30),
                "{d:?}"
            );
        }
    }
}
