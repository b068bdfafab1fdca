//! Sample windows kept per pod: gauge peaks and counter increases (spec §7, "Windows").
//!
//! Counter increases follow Prometheus: a decrease is a reset, after which the new value is
//! the increase. Unlike Prometheus there is no extrapolation to the window edges: an increase
//! counts only the intervals between two scrapes that both lie inside the window.

use std::collections::VecDeque;
use std::time::Duration;

/// The larger of two values where NaN loses to any number (PromQL's `max` rule).
pub(crate) fn nan_max(acc: Option<f64>, v: f64) -> Option<f64> {
    match acc {
        None => Some(v),
        Some(a) if a.is_nan() || v > a => Some(v),
        Some(a) => Some(a),
    }
}

/// `(time, value)` samples of a gauge, kept for `retention`.
#[derive(Debug, Clone)]
pub(crate) struct GaugeWindow {
    samples: VecDeque<(Duration, f64)>,
    retention: Duration,
}

impl GaugeWindow {
    pub(crate) fn new(retention: Duration) -> Self {
        GaugeWindow {
            samples: VecDeque::new(),
            retention,
        }
    }

    /// Adds a sample at `t`; a time not after the last one replaces nothing and is ignored.
    pub(crate) fn push(&mut self, t: Duration, v: f64) {
        if self.samples.back().is_some_and(|(last, _)| *last >= t) {
            return;
        }
        self.samples.push_back((t, v));
        let oldest = t.saturating_sub(self.retention);
        while self.samples.front().is_some_and(|(s, _)| *s < oldest) {
            self.samples.pop_front();
        }
    }

    /// The peak of the samples in `[at − window, at]` (NaN only if all are NaN).
    pub(crate) fn peak(&self, at: Duration, window: Duration) -> Option<f64> {
        let from = at.saturating_sub(window);
        self.samples
            .iter()
            .filter(|(t, _)| *t >= from && *t <= at)
            .fold(None, |acc, (_, v)| nan_max(acc, *v))
    }
}

/// The increase of a counter between two scrapes.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Interval {
    start: Duration,
    end: Duration,
    delta: f64,
}

/// Increases of a (pod-level, summed) counter per scrape interval, kept for `retention`.
///
/// Adjacent intervals shorter than `granularity` are merged, so a long window (the request
/// count's retention, e.g. 24 h) holds about `retention / granularity` entries; the window's
/// start is then exact to one granularity.
#[derive(Debug, Clone)]
pub(crate) struct CounterWindow {
    intervals: VecDeque<Interval>,
    retention: Duration,
    granularity: Duration,
}

impl CounterWindow {
    /// Entries a long window is merged down to, about.
    const MAX_ENTRIES: u32 = 1024;

    pub(crate) fn new(retention: Duration) -> Self {
        CounterWindow {
            intervals: VecDeque::new(),
            retention,
            granularity: retention / Self::MAX_ENTRIES,
        }
    }

    /// Changes the retention (a model's request-count window changed); keeps what fits.
    pub(crate) fn set_retention(&mut self, retention: Duration) {
        self.retention = retention;
        self.granularity = retention / Self::MAX_ENTRIES;
    }

    /// Records the increase `delta` over `(start, end]`.
    pub(crate) fn push(&mut self, start: Duration, end: Duration, delta: f64) {
        if end <= start || self.intervals.back().is_some_and(|i| i.end > start) {
            return;
        }
        match self.intervals.back_mut() {
            Some(last) if last.end == start && last.end - last.start < self.granularity => {
                last.end = end;
                last.delta += delta;
            }
            _ => self.intervals.push_back(Interval { start, end, delta }),
        }
        let oldest = end.saturating_sub(self.retention);
        while self.intervals.front().is_some_and(|i| i.start < oldest) {
            self.intervals.pop_front();
        }
    }

    /// The increase over the intervals inside `[at − window, at]`; `None` when there is
    /// none (fewer than two scrapes in the window, as Prometheus's `rate` needs).
    pub(crate) fn increase(&self, at: Duration, window: Duration) -> Option<f64> {
        let from = at.saturating_sub(window);
        self.intervals
            .iter()
            .filter(|i| i.start >= from && i.end <= at)
            .fold(None, |acc, i| Some(acc.unwrap_or(0.0) + i.delta))
    }
}

/// The increase of one raw counter series from `prev` to `now`, with Prometheus's reset rule.
pub(crate) fn counter_delta(prev: f64, now: f64) -> f64 {
    if now >= prev { now - prev } else { now }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(secs: u64) -> Duration {
        Duration::from_secs(secs)
    }

    #[test]
    fn gauge_peak_covers_only_the_window() {
        let mut g = GaugeWindow::new(s(60));
        for (t, v) in [(0, 0.9), (30, 0.2), (65, 0.4), (70, 0.3)] {
            g.push(s(t), v);
        }
        assert_eq!(g.peak(s(70), s(60)), Some(0.4));
        assert_eq!(g.peak(s(40), s(60)), Some(0.2));
        assert_eq!(g.peak(s(200), s(60)), None);
    }

    #[test]
    fn gauge_peak_ignores_nan_unless_all_are_nan() {
        let mut g = GaugeWindow::new(s(60));
        g.push(s(1), f64::NAN);
        assert!(g.peak(s(1), s(60)).is_some_and(f64::is_nan));
        g.push(s(2), 0.5);
        g.push(s(3), f64::NAN);
        assert_eq!(g.peak(s(3), s(60)), Some(0.5));
    }

    #[test]
    fn counter_reset_counts_the_new_value() {
        assert_eq!(counter_delta(10.0, 15.0), 5.0);
        assert_eq!(counter_delta(10.0, 3.0), 3.0);
    }

    #[test]
    fn increase_needs_two_scrapes_inside_the_window() {
        let mut c = CounterWindow::new(s(300));
        assert_eq!(c.increase(s(10), s(60)), None);
        c.push(s(0), s(5), 2.0);
        c.push(s(5), s(10), 3.0);
        assert_eq!(c.increase(s(10), s(60)), Some(5.0));
        // At 64 s the first interval started before the window.
        assert_eq!(c.increase(s(64), s(60)), Some(3.0));
        assert_eq!(c.increase(s(80), s(60)), None);
    }

    #[test]
    fn long_windows_merge_short_intervals() {
        let mut c = CounterWindow::new(s(86_400));
        for i in 0..10_000u64 {
            c.push(s(i * 5), s(i * 5 + 5), 1.0);
        }
        assert!(c.intervals.len() <= 1100, "{}", c.intervals.len());
        assert_eq!(c.increase(s(50_000), s(86_400)), Some(10_000.0));
        assert_eq!(c.intervals.back().map(|i| i.end), Some(s(50_000)));
    }

    #[test]
    fn out_of_order_intervals_are_ignored() {
        let mut c = CounterWindow::new(s(300));
        c.push(s(10), s(20), 1.0);
        c.push(s(5), s(15), 7.0);
        assert_eq!(c.increase(s(20), s(60)), Some(1.0));
    }
}
