//! A fixed-bucket histogram with cumulative rendering, and vLLM's bucket sets.

use std::sync::Arc;

/// A histogram: per-bucket counts (the last is `+Inf`), sum and count.
#[derive(Debug, Clone, PartialEq)]
pub struct Histogram {
    bounds: Arc<[f64]>,
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

impl Histogram {
    /// An empty histogram over `bounds` (sorted upper bounds, `+Inf` implied).
    pub fn new(bounds: Arc<[f64]>) -> Self {
        let n = bounds.len() + 1;
        Histogram {
            bounds,
            counts: vec![0; n],
            sum: 0.0,
            count: 0,
        }
    }

    /// Records `v` once.
    pub fn observe(&mut self, v: f64) {
        self.observe_n(v, 1);
    }

    /// Records `v` `n` times (one bucket lookup).
    pub fn observe_n(&mut self, v: f64, n: u64) {
        if n == 0 {
            return;
        }
        let i = self.bounds.partition_point(|&b| b < v);
        self.counts[i] += n;
        self.sum += v * n as f64;
        self.count += n;
    }

    /// Upper bounds (without `+Inf`).
    pub fn bounds(&self) -> &[f64] {
        &self.bounds
    }

    /// Cumulative counts, one per bound then `+Inf`.
    pub fn cumulative(&self) -> impl Iterator<Item = u64> + '_ {
        self.counts.iter().scan(0u64, |acc, c| {
            *acc += c;
            Some(*acc)
        })
    }

    /// Sum of observations.
    pub fn sum(&self) -> f64 {
        self.sum
    }

    /// Number of observations.
    pub fn count(&self) -> u64 {
        self.count
    }
}

/// TTFT buckets (s).
pub const TTFT_BUCKETS: &[f64] = &[
    0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
    20.0, 40.0, 80.0, 160.0, 640.0, 2560.0,
];
/// Inter-token latency and time-per-output-token buckets (s).
pub const ITL_BUCKETS: &[f64] = &[
    0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0,
    40.0, 80.0,
];
/// Request latency buckets (s): e2e, queue, prefill, decode, inference.
pub const LATENCY_BUCKETS: &[f64] = &[
    0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0, 120.0, 240.0,
    480.0, 960.0, 1920.0, 7680.0,
];

/// Iteration-token buckets: 1, 8, 16, 32, …, 16384.
pub fn iteration_token_buckets() -> Arc<[f64]> {
    let mut v = vec![1.0];
    let mut x = 8.0;
    while x <= 16384.0 {
        v.push(x);
        x *= 2.0;
    }
    v.into()
}

/// 1-2-5 buckets up to `max` (inclusive), as vLLM builds them from `max_model_len`.
pub fn one_two_five_buckets(max: u32) -> Arc<[f64]> {
    let mut v = Vec::new();
    let mut mag = 1u64;
    'outer: loop {
        for m in [1, 2, 5] {
            let b = m * mag;
            if b > u64::from(max) {
                break 'outer;
            }
            v.push(b as f64);
        }
        mag *= 10;
    }
    v.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_cumulative_and_inf_equals_count() {
        let mut h = Histogram::new(Arc::from(&[1.0, 2.0][..]));
        h.observe(0.5);
        h.observe(1.0);
        h.observe_n(1.5, 2);
        h.observe(9.0);
        assert_eq!(h.cumulative().collect::<Vec<_>>(), vec![2, 4, 5]);
        assert_eq!(h.count(), 5);
        assert!((h.sum() - 13.5).abs() < 1e-12);
    }

    #[test]
    fn one_two_five_stops_at_max() {
        assert_eq!(
            &*one_two_five_buckets(4096),
            &[
                1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0, 2000.0
            ][..]
        );
        let it = iteration_token_buckets();
        assert_eq!(it.first(), Some(&1.0));
        assert_eq!(it.last(), Some(&16384.0));
        assert_eq!(it.len(), 13);
    }
}
