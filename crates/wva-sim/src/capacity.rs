//! The analytic performance model shared with the queueing analyzer (spec/core.md §7.1).
//!
//! `T(n) = α + n(βc + γm)` with `c = (I+O)/(O+1)` and `m = I + O/2`; prefill
//! `P(n) = T(n) + (β+γ)I`; decode per token `D(n) = T(n) + β + γm`; service `S(n) = P(n) + O·D(n)`.
//! Times are in milliseconds, rates in requests per second.

use crate::profile::ReplicaProfile;
use serde::Serialize;

fn cm(i: f64, o: f64) -> (f64, f64) {
    let o = if o < 1.0 { 1.0 } else { o };
    ((i + o) / (o + 1.0), i + o / 2.0)
}

/// Iteration time `T(n)` in ms for batch size `n` and mean sizes `i`, `o`.
pub fn iteration_time(p: &ReplicaProfile, n: f64, i: f64, o: f64) -> f64 {
    let (c, m) = cm(i, o);
    p.perf.alpha_ms + n * (p.perf.beta_ms * c + p.perf.gamma_ms * m)
}

/// Prefill time `P(n)` in ms (0 when `i` = 0).
pub fn prefill_time(p: &ReplicaProfile, n: f64, i: f64, o: f64) -> f64 {
    if i <= 0.0 {
        return 0.0;
    }
    iteration_time(p, n, i, o) + (p.perf.beta_ms + p.perf.gamma_ms) * i
}

/// Decode time per output token `D(n)` in ms.
pub fn decode_time(p: &ReplicaProfile, n: f64, i: f64, o: f64) -> f64 {
    let (_, m) = cm(i, o);
    iteration_time(p, n, i, o) + p.perf.beta_ms + p.perf.gamma_ms * m
}

/// Service time `S(n) = P(n) + O·D(n)` in ms.
pub fn service_time(p: &ReplicaProfile, n: f64, i: f64, o: f64) -> f64 {
    let o1 = o.max(1.0);
    prefill_time(p, n, i, o) + o1 * decode_time(p, n, i, o)
}

/// The largest batch a replica sustains: `max_num_seqs`, or fewer when the KV pool holds fewer
/// sequences of mean context `m` (at least 1).
pub fn max_batch(p: &ReplicaProfile, i: f64, o: f64) -> f64 {
    let (_, m) = cm(i, o);
    let by_kv = (p.kv.tokens() as f64 / m.max(1.0)).floor();
    f64::from(p.max_num_seqs).min(by_kv).max(1.0)
}

/// Maximum request rate of one replica (req/s): `N / S(N)` at the largest sustainable batch.
pub fn max_rate(p: &ReplicaProfile, i: f64, o: f64) -> f64 {
    let n = max_batch(p, i, o);
    n / service_time(p, n, i, o) * 1000.0
}

/// The predicted steady state of one replica at a given rate.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct SteadyState {
    /// Mean number of running sequences (`n = λ·S(n)`), capped at the maximum batch.
    pub n: f64,
    /// Predicted KV usage (`n·m / capacity`), 0..1.
    pub kv_usage: f64,
    /// Predicted time to first token (s), `P(n)`, without queueing.
    pub ttft_s: f64,
    /// Predicted inter-token latency (s), `D(n)`.
    pub itl_s: f64,
    /// Throughput (req/s): the rate, or `max_rate` when saturated.
    pub throughput: f64,
    /// Rate / `max_rate`.
    pub utilisation: f64,
    /// True when the rate exceeds what the replica can serve.
    pub saturated: bool,
}

/// Solves `n = λ·S(n)` for one replica at `rate` req/s with mean sizes `i`, `o`.
pub fn steady_state(p: &ReplicaProfile, rate: f64, i: f64, o: f64) -> SteadyState {
    let (c, m) = cm(i, o);
    let o1 = o.max(1.0);
    let lam = rate.max(0.0) / 1000.0;
    let k = p.perf.beta_ms * c + p.perf.gamma_ms * m;
    let a = (1.0 + o1) * p.perf.alpha_ms
        + (p.perf.beta_ms + p.perf.gamma_ms) * i
        + o1 * (p.perf.beta_ms + p.perf.gamma_ms * m);
    let b = (1.0 + o1) * k;
    let nmax = max_batch(p, i, o);
    let mr = max_rate(p, i, o);
    let (n, saturated) = if lam * b >= 1.0 {
        (nmax, true)
    } else {
        let n = lam * a / (1.0 - lam * b);
        if n > nmax { (nmax, true) } else { (n, false) }
    };
    SteadyState {
        n,
        kv_usage: (n * m / p.kv.tokens() as f64).min(1.0),
        ttft_s: prefill_time(p, n, i, o) / 1000.0,
        itl_s: decode_time(p, n, i, o) / 1000.0,
        throughput: if saturated { mr } else { rate },
        utilisation: if mr > 0.0 { rate / mr } else { f64::INFINITY },
        saturated,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::{KvPool, Perf, builtin};

    #[test]
    fn max_rates_match_the_profile_table() {
        let table = [("L4", 3.5), ("A100", 10.0), ("H100", 18.0)];
        for (acc, want) in table {
            let p = builtin(acc).unwrap();
            let got = max_rate(&p, 512.0, 256.0);
            assert!((got - want).abs() / want < 0.06, "{acc}: {got}");
        }
    }

    #[test]
    fn example_six_of_the_core_spec() {
        let p = ReplicaProfile {
            perf: Perf {
                alpha_ms: 4.0,
                beta_ms: 0.02,
                gamma_ms: 0.001,
            },
            kv: KvPool {
                num_gpu_blocks: 100_000,
                block_size: 16,
            },
            max_num_seqs: 8,
            max_num_batched_tokens: 8192,
            cost: 1.0,
        };
        assert!((iteration_time(&p, 1.0, 900.0, 100.0) - 5.14802).abs() < 1e-4);
        assert!((prefill_time(&p, 1.0, 900.0, 100.0) - 24.04802).abs() < 1e-4);
        assert!((decode_time(&p, 1.0, 900.0, 100.0) - 6.11802).abs() < 1e-4);
        assert!((service_time(&p, 1.0, 900.0, 100.0) - 635.85).abs() < 1e-2);
        assert!((service_time(&p, 8.0, 900.0, 100.0) - 1447.5).abs() < 0.1);
    }

    #[test]
    fn steady_state_solves_littles_law() {
        let p = builtin("L4").unwrap();
        let s = steady_state(&p, 2.0, 512.0, 256.0);
        assert!(!s.saturated);
        let lhs = s.n;
        let rhs = 2.0 * service_time(&p, s.n, 512.0, 256.0) / 1000.0;
        assert!((lhs - rhs).abs() < 1e-9);
        assert!(steady_state(&p, 10.0, 512.0, 256.0).saturated);
    }
}
