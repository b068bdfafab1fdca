//! Freshness classes of collected metrics (spec/collector.md §5.1).

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// How recent a metric value is.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default,
)]
#[serde(rename_all = "lowercase")]
pub enum Freshness {
    /// Younger than the fresh threshold.
    #[default]
    Fresh,
    /// At least the fresh threshold, younger than the unavailable threshold.
    Stale,
    /// At least the unavailable threshold old, or never observed.
    Unavailable,
}

impl Freshness {
    /// The lowercase name used in JSON and labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Freshness::Fresh => "fresh",
            Freshness::Stale => "stale",
            Freshness::Unavailable => "unavailable",
        }
    }

    /// The worse of two classes (`Unavailable` > `Stale` > `Fresh`).
    pub fn worst(self, other: Freshness) -> Freshness {
        self.max(other)
    }
}

impl std::fmt::Display for Freshness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a freshness policy was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("fresh threshold ({fresh:?}) must be less than unavailable threshold ({unavailable:?})")]
pub struct FreshnessPolicyError {
    /// The rejected fresh threshold.
    pub fresh: Duration,
    /// The rejected unavailable threshold.
    pub unavailable: Duration,
}

/// Thresholds that turn an age into a [`Freshness`] class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FreshnessPolicy {
    fresh: Duration,
    unavailable: Duration,
}

impl Default for FreshnessPolicy {
    fn default() -> Self {
        FreshnessPolicy {
            fresh: Duration::from_secs(60),
            unavailable: Duration::from_secs(300),
        }
    }
}

impl FreshnessPolicy {
    /// A policy; `fresh` must be strictly less than `unavailable`.
    pub fn new(fresh: Duration, unavailable: Duration) -> Result<Self, FreshnessPolicyError> {
        if fresh < unavailable {
            Ok(FreshnessPolicy { fresh, unavailable })
        } else {
            Err(FreshnessPolicyError { fresh, unavailable })
        }
    }

    /// The fresh threshold.
    pub fn fresh(&self) -> Duration {
        self.fresh
    }

    /// The unavailable threshold.
    pub fn unavailable(&self) -> Duration {
        self.unavailable
    }

    /// `Fresh` when `age < fresh`, `Stale` when `age < unavailable`, else `Unavailable`.
    pub fn classify(&self, age: Duration) -> Freshness {
        if age < self.fresh {
            Freshness::Fresh
        } else if age < self.unavailable {
            Freshness::Stale
        } else {
            Freshness::Unavailable
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_boundaries_are_one_and_five_minutes() {
        let p = FreshnessPolicy::default();
        assert_eq!(p.classify(Duration::from_secs(59)), Freshness::Fresh);
        assert_eq!(p.classify(Duration::from_secs(60)), Freshness::Stale);
        assert_eq!(p.classify(Duration::from_secs(299)), Freshness::Stale);
        assert_eq!(p.classify(Duration::from_secs(300)), Freshness::Unavailable);
    }

    #[test]
    fn fresh_threshold_must_be_below_unavailable() {
        let s = Duration::from_secs(5);
        assert!(FreshnessPolicy::new(s, s).is_err());
        assert!(FreshnessPolicy::new(s, s * 2).is_ok());
    }

    #[test]
    fn worst_orders_unavailable_above_stale_above_fresh() {
        assert_eq!(Freshness::Fresh.worst(Freshness::Stale), Freshness::Stale);
        assert_eq!(
            Freshness::Unavailable.worst(Freshness::Stale),
            Freshness::Unavailable
        );
    }
}
