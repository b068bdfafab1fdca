//! Time sources of a fleet: real, scaled or manual (lockstep) virtual time since fleet start.

use std::fmt::Debug;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// A source of virtual time since fleet start.
pub trait Clock: Send + Sync + Debug {
    /// Virtual time elapsed since fleet start.
    fn now(&self) -> Duration;
    /// How many virtual seconds pass per wall second (`None` for a manual clock).
    fn speed(&self) -> Option<f64>;
}

/// Virtual time = wall time since start.
#[derive(Debug, Clone, Copy)]
pub struct RealClock {
    start: Instant,
}

impl RealClock {
    /// Starts now.
    pub fn new() -> Self {
        RealClock {
            start: Instant::now(),
        }
    }
}

impl Default for RealClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for RealClock {
    fn now(&self) -> Duration {
        self.start.elapsed()
    }
    fn speed(&self) -> Option<f64> {
        Some(1.0)
    }
}

/// Virtual time = k × wall time since start.
#[derive(Debug, Clone, Copy)]
pub struct ScaledClock {
    start: Instant,
    factor: f64,
}

impl ScaledClock {
    /// Starts now with speed `factor` (> 0; non-finite or non-positive values mean 1).
    pub fn new(factor: f64) -> Self {
        let factor = if factor.is_finite() && factor > 0.0 {
            factor
        } else {
            1.0
        };
        ScaledClock {
            start: Instant::now(),
            factor,
        }
    }
}

impl Clock for ScaledClock {
    fn now(&self) -> Duration {
        self.start.elapsed().mul_f64(self.factor)
    }
    fn speed(&self) -> Option<f64> {
        Some(self.factor)
    }
}

/// Virtual time advanced by the caller (tests and lockstep runs).
#[derive(Debug, Default)]
pub struct ManualClock {
    us: AtomicU64,
}

impl ManualClock {
    /// At 0.
    pub fn new() -> Self {
        ManualClock {
            us: AtomicU64::new(0),
        }
    }

    /// Sets the time (never moves backwards).
    pub fn set(&self, t: Duration) {
        self.us.fetch_max(t.as_micros() as u64, Ordering::SeqCst);
    }

    /// Advances by `d`.
    pub fn advance(&self, d: Duration) {
        self.us.fetch_add(d.as_micros() as u64, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Duration {
        Duration::from_micros(self.us.load(Ordering::SeqCst))
    }
    fn speed(&self) -> Option<f64> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_only_moves_forward() {
        let c = ManualClock::new();
        c.advance(Duration::from_secs(2));
        c.set(Duration::from_secs(1));
        assert_eq!(c.now(), Duration::from_secs(2));
        c.set(Duration::from_secs(5));
        assert_eq!(c.now(), Duration::from_secs(5));
        assert_eq!(c.speed(), None);
    }

    #[test]
    fn scaled_clock_runs_faster_than_real() {
        let s = ScaledClock::new(1000.0);
        std::thread::sleep(Duration::from_millis(5));
        assert!(s.now() >= Duration::from_secs(5));
        assert_eq!(ScaledClock::new(-1.0).speed(), Some(1.0));
    }
}
