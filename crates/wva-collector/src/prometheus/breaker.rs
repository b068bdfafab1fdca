//! The per-source circuit breaker (spec §4.4).

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use crate::config::BreakerConfig;
use crate::error::CollectorError;
use crate::stats::BreakerState;

#[derive(Debug)]
enum State {
    Closed,
    Open { until: Instant },
    HalfOpen { probing: bool },
}

#[derive(Debug)]
struct Inner {
    state: State,
    failures: u32,
    cooldown: Duration,
}

/// Counts consecutive failures; opens at the threshold; one probe after the cooldown.
#[derive(Debug)]
pub(crate) struct Breaker {
    cfg: BreakerConfig,
    inner: Mutex<Inner>,
}

/// Permission to send; `probe` is true for the half-open probe.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Permit {
    pub probe: bool,
}

impl Breaker {
    /// A closed breaker.
    pub(crate) fn new(cfg: BreakerConfig) -> Self {
        let cooldown = cfg.cooldown;
        Breaker {
            cfg,
            inner: Mutex::new(Inner {
                state: State::Closed,
                failures: 0,
                cooldown,
            }),
        }
    }

    /// May a query be sent now?
    pub(crate) fn acquire(&self) -> Result<Permit, CollectorError> {
        let Ok(mut g) = self.inner.lock() else {
            return Ok(Permit { probe: false });
        };
        let now = Instant::now();
        match g.state {
            State::Closed => Ok(Permit { probe: false }),
            State::Open { until } if now >= until => {
                g.state = State::HalfOpen { probing: true };
                Ok(Permit { probe: true })
            }
            State::Open { until } => Err(CollectorError::CircuitOpen {
                failures: g.failures,
                retry_in: until - now,
            }),
            State::HalfOpen { probing: false } => {
                g.state = State::HalfOpen { probing: true };
                Ok(Permit { probe: true })
            }
            State::HalfOpen { probing: true } => Err(CollectorError::CircuitOpen {
                failures: g.failures,
                retry_in: Duration::ZERO,
            }),
        }
    }

    /// A logical query succeeded.
    pub(crate) fn success(&self) {
        if let Ok(mut g) = self.inner.lock() {
            if !matches!(g.state, State::Closed) {
                tracing::info!("Prometheus answers again; circuit breaker closed");
            }
            g.state = State::Closed;
            g.failures = 0;
            g.cooldown = self.cfg.cooldown;
        }
    }

    /// A logical query failed with an error that counts (retryable or `Unauthorized`).
    pub(crate) fn failure(&self, permit: Permit) {
        if let Ok(mut g) = self.inner.lock() {
            g.failures = g.failures.saturating_add(1);
            let reopen = permit.probe || matches!(g.state, State::HalfOpen { .. });
            if reopen {
                g.cooldown = (g.cooldown * 2).min(self.cfg.max_cooldown);
                g.state = State::Open {
                    until: Instant::now() + g.cooldown,
                };
                tracing::warn!(retry_in = ?g.cooldown, "Prometheus probe failed; circuit breaker re-opened");
            } else if matches!(g.state, State::Closed) && g.failures >= self.cfg.threshold {
                g.state = State::Open {
                    until: Instant::now() + g.cooldown,
                };
                tracing::warn!(failures = g.failures, retry_in = ?g.cooldown, "circuit breaker opened");
            }
        }
    }

    /// A probe ended with an error that does not count; let another probe through.
    pub(crate) fn release(&self, permit: Permit) {
        if permit.probe
            && let Ok(mut g) = self.inner.lock()
            && matches!(g.state, State::HalfOpen { probing: true })
        {
            g.state = State::HalfOpen { probing: false };
        }
    }

    /// The state for `CollectorStats`.
    pub(crate) fn state(&self) -> BreakerState {
        let Ok(g) = self.inner.lock() else {
            return BreakerState::Closed;
        };
        match g.state {
            State::Closed => BreakerState::Closed,
            State::Open { until } => {
                let now = Instant::now();
                if now >= until {
                    BreakerState::HalfOpen
                } else {
                    BreakerState::Open {
                        retry_in: until - now,
                    }
                }
            }
            State::HalfOpen { .. } => BreakerState::HalfOpen,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn opens_at_threshold_probes_after_cooldown_and_doubles() {
        let b = Breaker::new(BreakerConfig::default());
        for _ in 0..5 {
            let p = b.acquire().unwrap();
            b.failure(p);
        }
        assert!(matches!(
            b.acquire(),
            Err(CollectorError::CircuitOpen { failures: 5, .. })
        ));
        tokio::time::advance(Duration::from_secs(30)).await;
        let probe = b.acquire().unwrap();
        assert!(probe.probe);
        assert!(b.acquire().is_err(), "only one probe at a time");
        b.failure(probe);
        match b.state() {
            BreakerState::Open { retry_in } => assert_eq!(retry_in, Duration::from_secs(60)),
            s => panic!("{s:?}"),
        }
        tokio::time::advance(Duration::from_secs(60)).await;
        let probe = b.acquire().unwrap();
        b.success();
        assert_eq!(b.state(), BreakerState::Closed);
        let _ = probe;
    }
}
