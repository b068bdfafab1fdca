//! Per-object backoff of the reconcile (spec/k8s.md §3.6): 1 s, ×2, capped at 5 min, ±10 %
//! jitter, reset on the next success; a 422 blocks retries until the VA's generation or its
//! outcome changes. kube's `error_policy` is stateless and its scheduler keeps the earlier of two
//! queued requests, so the state lives here and the reconcile consults it first.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

use crate::status::{MetricsState, OptimizationOutcome, VariantOutcome};
use crate::target::ObjectName;

/// First retry delay.
pub const INITIAL_DELAY: Duration = Duration::from_secs(1);
/// Longest retry delay.
pub const MAX_DELAY: Duration = Duration::from_secs(300);
/// Relative jitter applied to every delay.
pub const JITTER: f64 = 0.1;

/// What a 422 was answered to: retrying the same pair would fail the same way.
#[derive(Debug, Clone, PartialEq)]
pub struct RejectKey {
    /// The VA's `metadata.generation`.
    pub generation: i64,
    /// The outcome content (its cycle start aside) the reconcile worked from.
    pub outcome: Option<(MetricsState, OptimizationOutcome)>,
}

impl RejectKey {
    /// The key of a reconcile of generation `generation` working from `outcome`.
    pub fn new(generation: i64, outcome: Option<&VariantOutcome>) -> RejectKey {
        RejectKey {
            generation,
            outcome: outcome.map(|o| (o.metrics.clone(), o.optimization.clone())),
        }
    }
}

/// What the reconcile must do before any API call.
#[derive(Debug, Clone, PartialEq)]
pub enum Gate {
    /// Go ahead.
    Open,
    /// A backoff holds: requeue after this long, no API call.
    Wait(Duration),
    /// The same generation and outcome got a 422: wait for a change, no API call.
    Rejected,
}

#[derive(Debug, Clone)]
struct Entry {
    attempts: u32,
    not_before: Option<Instant>,
    rejected: Option<RejectKey>,
}

/// The backoff state of every object, by `(namespace, name)`.
#[derive(Debug, Default)]
pub struct BackoffBook {
    entries: Mutex<HashMap<ObjectName, Entry>>,
}

impl BackoffBook {
    /// An empty book.
    pub fn new() -> BackoffBook {
        BackoffBook::default()
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<ObjectName, Entry>> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether `id` may call the API now, working from `key`.
    pub fn gate(&self, id: &ObjectName, key: &RejectKey, now: Instant) -> Gate {
        let entries = self.entries();
        let Some(entry) = entries.get(id) else {
            return Gate::Open;
        };
        if entry.rejected.as_ref() == Some(key) {
            return Gate::Rejected;
        }
        match entry.not_before {
            Some(at) if at > now => Gate::Wait(at - now),
            _ => Gate::Open,
        }
    }

    /// Records a retryable failure of `id` at `now`; returns the delay before the next try.
    pub fn failed(&self, id: &ObjectName, now: Instant) -> Duration {
        let mut entries = self.entries();
        let entry = entries.entry(id.clone()).or_insert(Entry {
            attempts: 0,
            not_before: None,
            rejected: None,
        });
        entry.attempts = entry.attempts.saturating_add(1);
        let delay = jittered(delay_for(entry.attempts), random_unit());
        entry.not_before = Some(now + delay);
        entry.rejected = None;
        delay
    }

    /// Records a 422 for `key`: no retry until the key changes.
    pub fn rejected(&self, id: &ObjectName, key: RejectKey) {
        self.entries().insert(
            id.clone(),
            Entry {
                attempts: 0,
                not_before: None,
                rejected: Some(key),
            },
        );
    }

    /// Forgets `id` (a success, or the object is gone).
    pub fn clear(&self, id: &ObjectName) {
        self.entries().remove(id);
    }

    /// How long the last recorded failure of `id` asks to wait from `now`; `None` when nothing
    /// is pending (no entry, or a 422 that waits for a change).
    pub fn remaining(&self, id: &ObjectName, now: Instant) -> Option<Duration> {
        let entries = self.entries();
        let at = entries.get(id)?.not_before?;
        Some(at.saturating_duration_since(now))
    }
}

/// The un-jittered delay of attempt `attempt` (1-based): 1 s × 2^(attempt−1), capped at 5 min.
pub fn delay_for(attempt: u32) -> Duration {
    let exponent = attempt.saturating_sub(1).min(16);
    INITIAL_DELAY
        .saturating_mul(1u32 << exponent)
        .min(MAX_DELAY)
}

/// `delay` scaled by a factor in `[1 − JITTER, 1 + JITTER]` chosen by `unit` in `[0, 1]`.
pub fn jittered(delay: Duration, unit: f64) -> Duration {
    let factor = 1.0 - JITTER + 2.0 * JITTER * unit.clamp(0.0, 1.0);
    delay.mul_f64(factor)
}

/// A pseudo-random number in `[0, 1]` from the standard library's randomly keyed hasher.
fn random_unit() -> f64 {
    let bits = RandomState::new().hash_one(Instant::now());
    (bits >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id() -> ObjectName {
        ("ns".into(), "va".into())
    }

    #[test]
    fn delays_double_from_one_second_and_stop_at_five_minutes() {
        let delays: Vec<u64> = (1..=10).map(|a| delay_for(a).as_secs()).collect();
        assert_eq!(delays, [1, 2, 4, 8, 16, 32, 64, 128, 256, 300]);
        assert_eq!(delay_for(u32::MAX), MAX_DELAY);
    }

    #[test]
    fn jitter_stays_within_ten_percent() {
        let one = Duration::from_secs(1);
        assert_eq!(jittered(one, 0.0), Duration::from_millis(900));
        assert_eq!(jittered(one, 1.0), Duration::from_millis(1100));
        assert_eq!(jittered(one, 0.5), one);
        for _ in 0..100 {
            let d = jittered(one, random_unit());
            assert!(d >= Duration::from_millis(900) && d <= Duration::from_millis(1100));
        }
    }

    #[test]
    fn failure_holds_the_gate_until_its_delay_passed_and_success_resets() {
        let book = BackoffBook::new();
        let key = RejectKey::new(1, None);
        let t0 = Instant::now();
        assert_eq!(book.gate(&id(), &key, t0), Gate::Open);
        let first = book.failed(&id(), t0);
        assert!(matches!(book.gate(&id(), &key, t0), Gate::Wait(d) if d == first));
        assert_eq!(book.gate(&id(), &key, t0 + first), Gate::Open);
        let second = book.failed(&id(), t0 + first);
        assert!(second >= Duration::from_millis(1800), "{second:?}");
        book.clear(&id());
        assert_eq!(book.gate(&id(), &key, t0 + first), Gate::Open);
        let again = book.failed(&id(), t0);
        assert!(again <= Duration::from_millis(1100), "reset after success");
    }

    #[test]
    fn rejection_blocks_the_same_generation_and_outcome_only() {
        let book = BackoffBook::new();
        let key = RejectKey::new(3, None);
        book.rejected(&id(), key.clone());
        let now = Instant::now();
        assert_eq!(book.gate(&id(), &key, now), Gate::Rejected);
        assert_eq!(book.remaining(&id(), now), None);
        assert_eq!(book.gate(&id(), &RejectKey::new(4, None), now), Gate::Open);
    }
}
