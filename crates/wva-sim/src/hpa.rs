//! A pure emulation of the Kubernetes HorizontalPodAutoscaler (autoscaling/v2) for one External
//! metric with an `AverageValue` target (spec/sim.md §3.6).

use std::collections::VecDeque;
use std::time::Duration;

/// HPA parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HpaConfig {
    /// `AverageValue` target per pod (default 1).
    pub target: f64,
    /// Tolerance around ratio 1 (default 0.1).
    pub tolerance: f64,
    /// Scale-up stabilisation window (default 0 s): the minimum recommendation over it.
    pub up_window: Duration,
    /// Scale-down stabilisation window (default 300 s): the maximum recommendation over it.
    pub down_window: Duration,
    /// At most this many pods added per `up_period` (`None`: unbounded).
    pub up_pods: Option<u32>,
    /// Period of the scale-up policy.
    pub up_period: Duration,
    /// At most this many pods removed per `down_period` (`None`: unbounded).
    pub down_pods: Option<u32>,
    /// Period of the scale-down policy.
    pub down_period: Duration,
    /// Lower bound (raised to 1 unless `allow_zero`).
    pub min: u32,
    /// Upper bound.
    pub max: u32,
    /// Emulates the `HPAScaleToZero` feature gate: `min = 0` allowed.
    pub allow_zero: bool,
}

impl Default for HpaConfig {
    fn default() -> Self {
        HpaConfig {
            target: 1.0,
            tolerance: 0.1,
            up_window: Duration::ZERO,
            down_window: Duration::from_secs(300),
            up_pods: None,
            up_period: Duration::from_secs(15),
            down_pods: None,
            down_period: Duration::from_secs(15),
            min: 1,
            max: 10,
            allow_zero: false,
        }
    }
}

/// The HPA state of one scale target.
#[derive(Debug, Clone)]
pub struct HpaEmulator {
    cfg: HpaConfig,
    recommendations: VecDeque<(Duration, u32)>,
    changes: VecDeque<(Duration, i64)>,
}

impl HpaEmulator {
    /// A new emulator.
    pub fn new(cfg: HpaConfig) -> Self {
        HpaEmulator {
            cfg,
            recommendations: VecDeque::new(),
            changes: VecDeque::new(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &HpaConfig {
        &self.cfg
    }

    fn min(&self) -> u32 {
        if self.cfg.allow_zero {
            self.cfg.min
        } else {
            self.cfg.min.max(1)
        }
    }

    /// The replica count the HPA sets at `now`, given the current replicas and the sum of the
    /// matching metric series (`None` when the metric is missing: current is kept).
    pub fn recommend(&mut self, now: Duration, current: u32, metric: Option<f64>) -> u32 {
        let Some(value) = metric.filter(|v| v.is_finite() && *v >= 0.0) else {
            return current;
        };
        let target = if self.cfg.target > 0.0 {
            self.cfg.target
        } else {
            1.0
        };
        let raw = if current > 0 {
            let ratio = value / (target * f64::from(current));
            if (ratio - 1.0).abs() <= self.cfg.tolerance {
                current
            } else {
                (value / target).ceil() as u32
            }
        } else {
            (value / target).ceil() as u32
        };
        self.recommendations.push_back((now, raw));
        let keep = self.cfg.up_window.max(self.cfg.down_window);
        while self
            .recommendations
            .front()
            .is_some_and(|(t, _)| now.saturating_sub(*t) > keep)
        {
            self.recommendations.pop_front();
        }
        let in_window = |w: Duration| {
            self.recommendations
                .iter()
                .filter(move |(t, _)| now.saturating_sub(*t) <= w)
                .map(|r| r.1)
        };
        let up_floor = in_window(self.cfg.up_window).min().unwrap_or(raw);
        let down_ceiling = in_window(self.cfg.down_window).max().unwrap_or(raw);
        let mut desired = if raw > current {
            up_floor.max(current)
        } else if raw < current {
            down_ceiling.min(current)
        } else {
            current
        };
        // Rate policies over their periods.
        let since = |p: Duration, up: bool| -> i64 {
            self.changes
                .iter()
                .filter(|(t, d)| now.saturating_sub(*t) < p && (*d > 0) == up)
                .map(|(_, d)| d.abs())
                .sum()
        };
        if desired > current {
            if let Some(limit) = self.cfg.up_pods {
                let room = (i64::from(limit) - since(self.cfg.up_period, true)).max(0);
                desired = desired.min(current + room as u32);
            }
        } else if desired < current
            && let Some(limit) = self.cfg.down_pods
        {
            let room = (i64::from(limit) - since(self.cfg.down_period, false)).max(0);
            desired = desired.max(current.saturating_sub(room as u32));
        }
        let desired = desired.clamp(self.min(), self.cfg.max.max(self.min()));
        if desired != current {
            self.changes
                .push_back((now, i64::from(desired) - i64::from(current)));
        }
        let horizon = self.cfg.up_period.max(self.cfg.down_period);
        while self
            .changes
            .front()
            .is_some_and(|(t, _)| now.saturating_sub(*t) > horizon)
        {
            self.changes.pop_front();
        }
        desired
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(x: u64) -> Duration {
        Duration::from_secs(x)
    }

    fn hpa(down: u64) -> HpaEmulator {
        HpaEmulator::new(HpaConfig {
            down_window: s(down),
            max: 100,
            ..Default::default()
        })
    }

    #[test]
    fn tolerance_table() {
        // (current, metric, expected)
        let cases = [
            (20, 21.0, 20),
            (20, 21.9, 20),
            (20, 23.0, 23),
            (10, 9.5, 10),
            (4, 8.0, 8),
            (3, 2.5, 3),
        ];
        for (cur, metric, want) in cases {
            let mut h = hpa(0);
            assert_eq!(
                h.recommend(s(0), cur, Some(metric)),
                want,
                "current {cur} metric {metric}"
            );
        }
    }

    #[test]
    fn missing_metric_keeps_current() {
        let mut h = hpa(0);
        assert_eq!(h.recommend(s(0), 4, None), 4);
        assert_eq!(h.recommend(s(1), 4, Some(f64::NAN)), 4);
    }

    #[test]
    fn scale_down_waits_for_the_down_window() {
        let mut h = hpa(5);
        assert_eq!(h.recommend(s(0), 4, Some(4.0)), 4);
        assert_eq!(h.recommend(s(1), 4, Some(1.0)), 4);
        assert_eq!(h.recommend(s(4), 4, Some(1.0)), 4);
        assert_eq!(h.recommend(s(6), 4, Some(1.0)), 1);
    }

    #[test]
    fn scale_up_window_takes_the_minimum() {
        let mut h = HpaEmulator::new(HpaConfig {
            up_window: s(3),
            down_window: s(0),
            ..Default::default()
        });
        assert_eq!(h.recommend(s(0), 2, Some(2.0)), 2);
        assert_eq!(h.recommend(s(1), 2, Some(6.0)), 2);
        assert_eq!(h.recommend(s(5), 2, Some(6.0)), 6);
    }

    #[test]
    fn policies_limit_pods_per_period() {
        let mut h = HpaEmulator::new(HpaConfig {
            up_pods: Some(2),
            up_period: s(10),
            down_window: s(0),
            max: 50,
            ..Default::default()
        });
        assert_eq!(h.recommend(s(0), 1, Some(9.0)), 3);
        assert_eq!(h.recommend(s(5), 3, Some(9.0)), 3);
        assert_eq!(h.recommend(s(11), 3, Some(9.0)), 5);
        let mut h = HpaEmulator::new(HpaConfig {
            down_pods: Some(1),
            down_period: s(10),
            down_window: s(0),
            ..Default::default()
        });
        assert_eq!(h.recommend(s(0), 5, Some(1.0)), 4);
        assert_eq!(h.recommend(s(1), 4, Some(1.0)), 4);
    }

    #[test]
    fn bounds_and_allow_zero() {
        let mut h = HpaEmulator::new(HpaConfig {
            min: 0,
            max: 3,
            down_window: s(0),
            ..Default::default()
        });
        assert_eq!(h.recommend(s(0), 2, Some(0.0)), 1, "min 0 needs allow_zero");
        assert_eq!(h.recommend(s(1), 1, Some(9.0)), 3);
        let mut h = HpaEmulator::new(HpaConfig {
            min: 0,
            allow_zero: true,
            down_window: s(0),
            ..Default::default()
        });
        assert_eq!(h.recommend(s(0), 2, Some(0.0)), 0);
        assert_eq!(
            h.recommend(s(1), 0, Some(0.4)),
            1,
            "from zero, desired = ceil(metric / target)"
        );
    }
}
