//! `CollectorStats`: a serializable snapshot of the collector's counters (spec §8).

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::catalogue::QueryName;
use crate::error::CollectorError;

/// Counters of one query name.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct QueryStats {
    /// Logical queries sent (cache misses that reached the network).
    pub sent: u64,
    /// HTTP attempts, retries included.
    pub http_attempts: u64,
    /// Cache hits.
    pub hits: u64,
    /// Cache misses.
    pub misses: u64,
    /// Reads that joined a fetch in flight.
    pub coalesced: u64,
    /// Failed logical queries by error kind.
    pub errors: BTreeMap<String, u64>,
    /// Unix time (seconds) of the last success.
    pub last_success: Option<f64>,
    /// Message of the last error.
    pub last_error: Option<String>,
}

/// Samples dropped while reading answers, by cause.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DroppedSamples {
    /// NaN or ±Inf.
    pub non_finite: u64,
    /// Outside the field's range.
    pub out_of_range: u64,
    /// Missing `pod` or `namespace` label.
    pub unlabelled: u64,
    /// A (namespace, model) pair that is not tracked.
    pub untracked: u64,
    /// The directory maps the pod to no variant.
    pub unmapped: u64,
    /// Seen only in range queries, not in the liveness query.
    pub not_live: u64,
    /// Native-histogram samples.
    pub unsupported: u64,
    /// Sample time after evaluation time (age clamped to 0).
    pub clock_skew: u64,
    /// Pods with several valid `cache_config_info` pairs.
    pub conflicting_cache_config: u64,
    /// Unparsable `cache_config_info` labels.
    pub unparsable: u64,
}

/// State of the circuit breaker.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum BreakerState {
    /// Requests flow.
    #[default]
    Closed,
    /// Requests fail fast until the cooldown ends.
    Open {
        /// Time until the next probe (seconds in JSON).
        #[serde(with = "crate::serde_secs")]
        retry_in: Duration,
    },
    /// One probe may go through.
    HalfOpen,
}

/// A snapshot of a source's counters (Clone + Serialize).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CollectorStats {
    /// `prometheus` or `scrape`.
    pub source: String,
    /// Per query name.
    pub queries: BTreeMap<QueryName, QueryStats>,
    /// Dropped samples by cause.
    pub dropped: DroppedSamples,
    /// Prometheus `warnings` and `infos` received.
    pub warnings: u64,
    /// Circuit-breaker state.
    pub breaker: BreakerState,
    /// Models currently tracked.
    pub tracked_models: usize,
    /// Cache entries held.
    pub cache_entries: usize,
    /// Pod scrapes that succeeded (scrape source).
    pub scrapes_ok: u64,
    /// Pod scrapes that failed (scrape source).
    pub scrapes_failed: u64,
    /// Unix time (seconds) of the last success of any query or scrape.
    pub last_success: Option<f64>,
    /// Message of the last error of any query or scrape.
    pub last_error: Option<String>,
}

impl CollectorStats {
    /// Logical queries sent, over all names.
    pub fn total_sent(&self) -> u64 {
        self.queries.values().map(|q| q.sent).sum()
    }

    /// Hit ratio (hits + coalesced) / (hits + misses + coalesced), `None` before any read.
    pub fn hit_ratio(&self) -> Option<f64> {
        let (mut h, mut m) = (0u64, 0u64);
        for q in self.queries.values() {
            h += q.hits + q.coalesced;
            m += q.misses;
        }
        if h + m == 0 {
            None
        } else {
            Some(h as f64 / (h + m) as f64)
        }
    }
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

#[derive(Default)]
struct QueryCounters {
    sent: AtomicU64,
    http_attempts: AtomicU64,
    hits: AtomicU64,
    misses: AtomicU64,
    coalesced: AtomicU64,
    detail: Mutex<QueryDetail>,
}

#[derive(Default)]
struct QueryDetail {
    errors: BTreeMap<String, u64>,
    last_success: Option<f64>,
    last_error: Option<String>,
}

/// Live atomic counters behind [`CollectorStats`]; shared by both sources of this crate.
#[derive(Default)]
pub(crate) struct StatsCounters {
    queries: [QueryCounters; QueryName::ALL.len()],
    pub(crate) non_finite: AtomicU64,
    pub(crate) out_of_range: AtomicU64,
    pub(crate) unlabelled: AtomicU64,
    pub(crate) untracked: AtomicU64,
    pub(crate) unmapped: AtomicU64,
    pub(crate) not_live: AtomicU64,
    pub(crate) unsupported: AtomicU64,
    pub(crate) clock_skew: AtomicU64,
    pub(crate) conflicting_cache_config: AtomicU64,
    pub(crate) unparsable: AtomicU64,
    pub(crate) warnings: AtomicU64,
    pub(crate) scrapes_ok: AtomicU64,
    pub(crate) scrapes_failed: AtomicU64,
    last: Mutex<QueryDetail>,
}

fn index(name: QueryName) -> usize {
    QueryName::ALL.iter().position(|n| *n == name).unwrap_or(0)
}

/// Adds one to a counter.
pub(crate) fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

impl StatsCounters {
    fn q(&self, name: QueryName) -> &QueryCounters {
        &self.queries[index(name)]
    }

    /// A logical query went to the network.
    pub(crate) fn sent(&self, name: QueryName) {
        bump(&self.q(name).sent);
    }

    /// One HTTP attempt.
    pub(crate) fn attempt(&self, name: QueryName) {
        bump(&self.q(name).http_attempts);
    }

    /// A cache hit.
    pub(crate) fn hit(&self, name: QueryName) {
        bump(&self.q(name).hits);
    }

    /// A cache miss.
    pub(crate) fn miss(&self, name: QueryName) {
        bump(&self.q(name).misses);
    }

    /// A coalesced read.
    pub(crate) fn coalesced(&self, name: QueryName) {
        bump(&self.q(name).coalesced);
    }

    /// A success of `name` (or of a scrape when `name` is `None`).
    pub(crate) fn success(&self, name: Option<QueryName>) {
        let now = unix_now();
        if let Some(name) = name
            && let Ok(mut d) = self.q(name).detail.lock()
        {
            d.last_success = Some(now);
        }
        if let Ok(mut d) = self.last.lock() {
            d.last_success = Some(now);
        }
    }

    /// A failure of `name` (or of a scrape when `name` is `None`).
    pub(crate) fn failure(&self, name: Option<QueryName>, err: &CollectorError) {
        let msg = err.to_string();
        if let Some(name) = name
            && let Ok(mut d) = self.q(name).detail.lock()
        {
            *d.errors.entry(err.kind().to_string()).or_insert(0) += 1;
            d.last_error = Some(msg.clone());
        }
        if let Ok(mut d) = self.last.lock() {
            d.last_error = Some(msg);
        }
    }

    /// The serializable snapshot.
    pub(crate) fn snapshot(
        &self,
        source: &str,
        breaker: BreakerState,
        tracked_models: usize,
        cache_entries: usize,
    ) -> CollectorStats {
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let mut queries = BTreeMap::new();
        for name in QueryName::ALL {
            let c = self.q(name);
            let (errors, last_success, last_error) = match c.detail.lock() {
                Ok(d) => (d.errors.clone(), d.last_success, d.last_error.clone()),
                Err(_) => (BTreeMap::new(), None, None),
            };
            let s = QueryStats {
                sent: load(&c.sent),
                http_attempts: load(&c.http_attempts),
                hits: load(&c.hits),
                misses: load(&c.misses),
                coalesced: load(&c.coalesced),
                errors,
                last_success,
                last_error,
            };
            if s != QueryStats::default() {
                queries.insert(name, s);
            }
        }
        let (last_success, last_error) = match self.last.lock() {
            Ok(d) => (d.last_success, d.last_error.clone()),
            Err(_) => (None, None),
        };
        CollectorStats {
            source: source.to_string(),
            queries,
            dropped: DroppedSamples {
                non_finite: load(&self.non_finite),
                out_of_range: load(&self.out_of_range),
                unlabelled: load(&self.unlabelled),
                untracked: load(&self.untracked),
                unmapped: load(&self.unmapped),
                not_live: load(&self.not_live),
                unsupported: load(&self.unsupported),
                clock_skew: load(&self.clock_skew),
                conflicting_cache_config: load(&self.conflicting_cache_config),
                unparsable: load(&self.unparsable),
            },
            warnings: load(&self.warnings),
            breaker,
            tracked_models,
            cache_entries,
            scrapes_ok: load(&self.scrapes_ok),
            scrapes_failed: load(&self.scrapes_failed),
            last_success,
            last_error,
        }
    }
}
