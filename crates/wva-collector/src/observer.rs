//! Synchronous callbacks the engine turns into self-metrics (spec §8).

use std::time::Duration;

use wva_core::Freshness;

use crate::catalogue::QueryName;
use crate::model::ModelKey;
use crate::snapshot::QueryOutcome;

/// Outcome of one cache lookup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CacheOutcome {
    /// A `Ready` entry younger than the TTL.
    Hit,
    /// Started a fetch.
    Miss,
    /// Joined a fetch in flight.
    Coalesced,
}

impl CacheOutcome {
    /// `hit`, `miss` or `coalesced`.
    pub fn as_str(self) -> &'static str {
        match self {
            CacheOutcome::Hit => "hit",
            CacheOutcome::Miss => "miss",
            CacheOutcome::Coalesced => "coalesced",
        }
    }
}

/// One logical query that went to the network (after retries).
#[derive(Debug, Clone, PartialEq)]
pub struct QueryEvent {
    /// Query name.
    pub name: QueryName,
    /// `Miss` on success, `Failed` on error.
    pub outcome: QueryOutcome,
    /// HTTP attempts made.
    pub attempts: u32,
    /// Wall time of all attempts.
    pub duration: Duration,
    /// Series in the answer (0 on failure).
    pub series: usize,
    /// The error kind on failure (`CollectorError::kind`).
    pub error_kind: Option<String>,
}

/// Receives collector events; implementations must be cheap and never block.
pub trait CollectorObserver: Send + Sync {
    /// A logical query finished.
    fn on_query(&self, event: &QueryEvent) {
        let _ = event;
    }

    /// A cache lookup happened.
    fn on_cache(&self, name: QueryName, outcome: CacheOutcome) {
        let _ = (name, outcome);
    }

    /// A model snapshot was assembled with this age and freshness.
    fn on_model(&self, key: &ModelKey, age: Duration, freshness: Freshness) {
        let _ = (key, age, freshness);
    }
}
