//! Turns the collector's callbacks into the exposition's `wva_*` self-metrics.

use std::time::Duration;

use wva_collector::{CacheOutcome, CollectorObserver, Freshness, ModelKey, QueryEvent, QueryName};
use wva_exposition::{CacheLookup, Exposition};

/// A [`CollectorObserver`] that records query latency and errors, cache lookups and metric age
/// in an [`Exposition`]'s self-metrics.
#[derive(Debug, Clone)]
pub struct SelfMetricsObserver {
    exposition: Exposition,
}

impl SelfMetricsObserver {
    /// An observer writing into `exposition`.
    pub fn new(exposition: Exposition) -> Self {
        SelfMetricsObserver { exposition }
    }
}

impl CollectorObserver for SelfMetricsObserver {
    fn on_query(&self, event: &QueryEvent) {
        self.exposition.self_metrics().observe_query(
            event.name.as_str(),
            event.duration,
            event.error_kind.as_deref(),
        );
    }

    fn on_cache(&self, name: QueryName, outcome: CacheOutcome) {
        // A coalesced lookup sends no query of its own: it counts as a hit.
        let lookup = match outcome {
            CacheOutcome::Hit | CacheOutcome::Coalesced => CacheLookup::Hit,
            CacheOutcome::Miss => CacheLookup::Miss,
        };
        self.exposition
            .self_metrics()
            .observe_cache(name.as_str(), lookup);
    }

    fn on_model(&self, key: &ModelKey, age: Duration, _freshness: Freshness) {
        self.exposition
            .self_metrics()
            .set_metric_age(&key.namespace, &key.model_id, age);
    }
}
