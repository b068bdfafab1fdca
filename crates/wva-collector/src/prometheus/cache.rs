//! The single-flight TTL query cache (spec §3.1).
//!
//! `DashMap<(QueryName, text), Slot>`. The first reader installs `InFlight` in one short critical
//! section and spawns the fetch on the `TaskTracker`; the task itself writes its outcome into the
//! slot (only while the slot still holds its own fetch id), so a cancelled reader never cancels
//! the fetch and no cleanup depends on a waiter. Readers await the shared handle after every map
//! guard is dropped. Failures are never cached: the slot reverts to its previous `Ready` value or
//! is removed.

use std::collections::HashSet;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use dashmap::DashMap;
use dashmap::mapref::entry::Entry;
use futures::FutureExt;
use futures::future::{BoxFuture, Shared};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::catalogue::QueryName;
use crate::error::CollectorError;
use crate::observer::{CacheOutcome, CollectorObserver};
use crate::stats::StatsCounters;

use super::decode::DecodedResult;

/// A cache key: query name and exact rendered text.
pub(crate) type CacheKey = (QueryName, Arc<str>);

/// The function that performs one logical query.
pub(crate) type FetchFn = Arc<
    dyn Fn(QueryName, Arc<str>) -> BoxFuture<'static, Result<DecodedResult, CollectorError>>
        + Send
        + Sync,
>;

/// A cached answer and its arrival instant.
#[derive(Debug, Clone)]
pub(crate) struct Ready {
    pub result: Arc<DecodedResult>,
    pub fetched: Instant,
}

type SharedFetch = Shared<BoxFuture<'static, Result<Ready, CollectorError>>>;

enum Slot {
    Ready(Ready),
    InFlight {
        id: u64,
        handle: SharedFetch,
        prev: Option<Ready>,
    },
}

struct Shared0 {
    map: DashMap<CacheKey, Slot>,
    max_size: usize,
    plan_keys: RwLock<Arc<HashSet<CacheKey>>>,
}

/// The query cache.
pub(crate) struct QueryCache {
    inner: Arc<Shared0>,
    next_id: AtomicU64,
    fetch: FetchFn,
    tracker: TaskTracker,
    cancel: CancellationToken,
    stats: Arc<StatsCounters>,
    observer: Option<Arc<dyn CollectorObserver>>,
}

/// Writes a fetch's outcome into its slot, or reverts the slot if the task is dropped first.
struct SlotWriter {
    inner: Arc<Shared0>,
    key: CacheKey,
    id: u64,
    done: bool,
}

impl SlotWriter {
    fn finish(&mut self, outcome: &Result<Ready, CollectorError>) {
        self.done = true;
        let mut remove = false;
        if let Some(mut slot) = self.inner.map.get_mut(&self.key) {
            let replacement = match &*slot {
                Slot::InFlight { id, prev, .. } if *id == self.id => match outcome {
                    Ok(r) => Some(Slot::Ready(r.clone())),
                    Err(_) => match prev {
                        Some(p) => Some(Slot::Ready(p.clone())),
                        None => {
                            remove = true;
                            None
                        }
                    },
                },
                _ => None,
            };
            if let Some(r) = replacement {
                *slot = r;
            }
        }
        if remove {
            let id = self.id;
            self.inner.map.remove_if(
                &self.key,
                |_, s| matches!(s, Slot::InFlight { id: i, .. } if *i == id),
            );
        }
        if outcome.is_ok() {
            evict(&self.inner);
        }
    }
}

impl Drop for SlotWriter {
    fn drop(&mut self) {
        if !self.done {
            self.finish(&Err(CollectorError::ShuttingDown));
        }
    }
}

/// Removes entries beyond the bound: off-plan keys first, then the oldest `fetched`.
fn evict(inner: &Shared0) {
    let len = inner.map.len();
    if len <= inner.max_size {
        return;
    }
    let plan = inner
        .plan_keys
        .read()
        .map(|g| g.clone())
        .unwrap_or_default();
    // Collect victims first; touching the map while an iterator is alive can deadlock.
    let mut candidates: Vec<(bool, Instant, CacheKey)> = inner
        .map
        .iter()
        .filter_map(|e| match e.value() {
            Slot::Ready(r) => Some((plan.contains(e.key()), r.fetched, e.key().clone())),
            Slot::InFlight { .. } => None,
        })
        .collect();
    candidates.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1)));
    for (_, _, key) in candidates.into_iter().take(len - inner.max_size) {
        inner
            .map
            .remove_if(&key, |_, s| matches!(s, Slot::Ready(_)));
    }
}

impl QueryCache {
    /// A cache of at most `max_size` entries whose fetches run on `tracker` under `cancel`.
    pub(crate) fn new(
        fetch: FetchFn,
        max_size: usize,
        tracker: TaskTracker,
        cancel: CancellationToken,
        stats: Arc<StatsCounters>,
        observer: Option<Arc<dyn CollectorObserver>>,
    ) -> Self {
        QueryCache {
            inner: Arc::new(Shared0 {
                map: DashMap::new(),
                max_size: max_size.max(1),
                plan_keys: RwLock::new(Arc::new(HashSet::new())),
            }),
            next_id: AtomicU64::new(1),
            fetch,
            tracker,
            cancel,
            stats,
            observer,
        }
    }

    /// Sets the keys of the current plan (eviction spares them first).
    pub(crate) fn set_plan_keys(&self, keys: HashSet<CacheKey>) {
        if let Ok(mut g) = self.inner.plan_keys.write() {
            *g = Arc::new(keys);
        }
    }

    /// Number of entries.
    pub(crate) fn len(&self) -> usize {
        self.inner.map.len()
    }

    /// Age of a `Ready` entry, or `None` when absent or in flight.
    pub(crate) fn age(&self, key: &CacheKey) -> Option<Duration> {
        match self.inner.map.get(key).as_deref() {
            Some(Slot::Ready(r)) => Some(r.fetched.elapsed()),
            _ => None,
        }
    }

    /// Removes `Ready` entries at least `ttl` old.
    pub(crate) fn sweep(&self, ttl: Duration) {
        self.inner
            .map
            .retain(|_, s| !matches!(s, Slot::Ready(r) if r.fetched.elapsed() >= ttl));
    }

    fn start(&self, key: &CacheKey, prev: Option<Ready>) -> (u64, SharedFetch) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let fut = (self.fetch)(key.0, key.1.clone());
        let cancel = self.cancel.clone();
        let mut writer = SlotWriter {
            inner: self.inner.clone(),
            key: key.clone(),
            id,
            done: false,
        };
        let name = key.0;
        let task = async move {
            let r = cancel
                .run_until_cancelled(AssertUnwindSafe(fut).catch_unwind())
                .await;
            let outcome = match r {
                None => Err(CollectorError::ShuttingDown),
                Some(Err(_)) => Err(CollectorError::Internal {
                    what: format!("the fetch of query {name} panicked"),
                }),
                Some(Ok(Ok(d))) => Ok(Ready {
                    result: Arc::new(d),
                    fetched: Instant::now(),
                }),
                Some(Ok(Err(e))) => Err(e),
            };
            writer.finish(&outcome);
            outcome
        };
        let _ = prev;
        let handle = self.tracker.spawn(task);
        let shared = async move {
            match handle.await {
                Ok(r) => r,
                Err(e) if e.is_panic() => Err(CollectorError::Internal {
                    what: format!("the fetch of query {name} panicked"),
                }),
                Err(_) => Err(CollectorError::ShuttingDown),
            }
        }
        .boxed()
        .shared();
        (id, shared)
    }

    /// Reads a key: a hit when a `Ready` entry is younger than `max_age`, else joins or starts a
    /// fetch. Returns the outcome and the answer.
    pub(crate) async fn get(
        &self,
        key: &CacheKey,
        max_age: Duration,
    ) -> (CacheOutcome, Result<Ready, CollectorError>) {
        if self.cancel.is_cancelled() {
            return (CacheOutcome::Miss, Err(CollectorError::ShuttingDown));
        }
        let (outcome, handle) = {
            match self.inner.map.entry(key.clone()) {
                Entry::Occupied(mut o) => {
                    let (outcome, handle) = match o.get() {
                        Slot::Ready(r) if r.fetched.elapsed() < max_age => {
                            let r = r.clone();
                            drop(o);
                            self.count(key.0, CacheOutcome::Hit);
                            return (CacheOutcome::Hit, Ok(r));
                        }
                        Slot::InFlight { handle, .. } => (CacheOutcome::Coalesced, handle.clone()),
                        Slot::Ready(r) => {
                            let prev = r.clone();
                            let (id, handle) = self.start(key, Some(prev.clone()));
                            o.insert(Slot::InFlight {
                                id,
                                handle: handle.clone(),
                                prev: Some(prev),
                            });
                            (CacheOutcome::Miss, handle)
                        }
                    };
                    (outcome, handle)
                }
                Entry::Vacant(v) => {
                    let (id, handle) = self.start(key, None);
                    v.insert(Slot::InFlight {
                        id,
                        handle: handle.clone(),
                        prev: None,
                    });
                    (CacheOutcome::Miss, handle)
                }
            }
        };
        self.count(key.0, outcome);
        (outcome, handle.await)
    }

    fn count(&self, name: QueryName, outcome: CacheOutcome) {
        match outcome {
            CacheOutcome::Hit => self.stats.hit(name),
            CacheOutcome::Miss => self.stats.miss(name),
            CacheOutcome::Coalesced => self.stats.coalesced(name),
        }
        if let Some(o) = &self.observer {
            o.on_cache(name, outcome);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    fn counting_fetch(calls: Arc<AtomicUsize>, delay: Duration, fail: bool) -> FetchFn {
        Arc::new(move |_, _| {
            let calls = calls.clone();
            async move {
                calls.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(delay).await;
                if fail {
                    Err(CollectorError::Internal {
                        what: "boom".into(),
                    })
                } else {
                    Ok(DecodedResult::default())
                }
            }
            .boxed()
        })
    }

    fn cache(fetch: FetchFn) -> Arc<QueryCache> {
        Arc::new(QueryCache::new(
            fetch,
            16,
            TaskTracker::new(),
            CancellationToken::new(),
            Arc::new(StatsCounters::default()),
            None,
        ))
    }

    fn key(t: &str) -> CacheKey {
        (QueryName::KvCacheUsage, Arc::from(t))
    }

    #[tokio::test(start_paused = true)]
    async fn hundred_concurrent_cold_reads_send_one_fetch() {
        let calls = Arc::new(AtomicUsize::new(0));
        let c = cache(counting_fetch(
            calls.clone(),
            Duration::from_millis(200),
            false,
        ));
        let mut tasks = Vec::new();
        for _ in 0..100 {
            let c = c.clone();
            tasks.push(tokio::spawn(async move {
                c.get(&key("a"), Duration::from_secs(30)).await
            }));
        }
        let mut outcomes = Vec::new();
        for t in tasks {
            let (o, r) = t.await.unwrap();
            assert!(r.is_ok());
            outcomes.push(o);
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert_eq!(
            outcomes
                .iter()
                .filter(|o| **o == CacheOutcome::Miss)
                .count(),
            1
        );
        assert_eq!(
            outcomes
                .iter()
                .filter(|o| **o == CacheOutcome::Coalesced)
                .count(),
            99
        );
    }

    #[tokio::test(start_paused = true)]
    async fn hit_within_ttl_and_miss_after() {
        let calls = Arc::new(AtomicUsize::new(0));
        let c = cache(counting_fetch(
            calls.clone(),
            Duration::from_millis(1),
            false,
        ));
        let ttl = Duration::from_secs(30);
        assert_eq!(c.get(&key("a"), ttl).await.0, CacheOutcome::Miss);
        tokio::time::advance(Duration::from_secs(29)).await;
        assert_eq!(c.get(&key("a"), ttl).await.0, CacheOutcome::Hit);
        tokio::time::advance(Duration::from_secs(2)).await;
        assert_eq!(c.get(&key("a"), ttl).await.0, CacheOutcome::Miss);
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn failures_are_not_cached() {
        let calls = Arc::new(AtomicUsize::new(0));
        let c = cache(counting_fetch(
            calls.clone(),
            Duration::from_millis(1),
            true,
        ));
        let ttl = Duration::from_secs(30);
        assert!(c.get(&key("a"), ttl).await.1.is_err());
        assert!(c.get(&key("a"), ttl).await.1.is_err());
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        assert_eq!(c.len(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_cancelled_first_reader_does_not_cancel_the_fetch() {
        let calls = Arc::new(AtomicUsize::new(0));
        let c = cache(counting_fetch(
            calls.clone(),
            Duration::from_millis(200),
            false,
        ));
        let ttl = Duration::from_secs(30);
        let first = {
            let c = c.clone();
            tokio::spawn(async move { c.get(&key("a"), ttl).await })
        };
        tokio::time::sleep(Duration::from_millis(10)).await;
        first.abort();
        let (o, r) = c.get(&key("a"), ttl).await;
        assert_eq!(o, CacheOutcome::Coalesced);
        assert!(r.is_ok());
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert_eq!(c.get(&key("a"), ttl).await.0, CacheOutcome::Hit);
    }

    #[tokio::test(start_paused = true)]
    async fn a_panicking_fetch_gives_internal_and_leaves_no_stuck_slot() {
        let calls = Arc::new(AtomicUsize::new(0));
        let calls2 = calls.clone();
        let fetch: FetchFn = Arc::new(move |_, _| {
            let n = calls2.fetch_add(1, Ordering::SeqCst);
            async move {
                if n == 0 {
                    panic!("fetch exploded");
                }
                Ok(DecodedResult::default())
            }
            .boxed()
        });
        let c = cache(fetch);
        let ttl = Duration::from_secs(30);
        let (_, r) = c.get(&key("a"), ttl).await;
        assert!(matches!(r, Err(CollectorError::Internal { .. })), "{r:?}");
        let (o, r) = c.get(&key("a"), ttl).await;
        assert_eq!(o, CacheOutcome::Miss);
        assert!(r.is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn the_bound_evicts_off_plan_keys_first() {
        let calls = Arc::new(AtomicUsize::new(0));
        let c = Arc::new(QueryCache::new(
            counting_fetch(calls, Duration::from_millis(1), false),
            2,
            TaskTracker::new(),
            CancellationToken::new(),
            Arc::new(StatsCounters::default()),
            None,
        ));
        let ttl = Duration::from_secs(30);
        c.set_plan_keys([key("plan-a"), key("plan-b")].into_iter().collect());
        c.get(&key("plan-a"), ttl).await.1.unwrap();
        tokio::time::advance(Duration::from_secs(1)).await;
        c.get(&key("off"), ttl).await.1.unwrap();
        tokio::time::advance(Duration::from_secs(1)).await;
        c.get(&key("plan-b"), ttl).await.1.unwrap();
        assert_eq!(c.len(), 2);
        assert!(c.age(&key("off")).is_none());
        assert!(c.age(&key("plan-a")).is_some());
    }

    #[tokio::test(start_paused = true)]
    async fn shutdown_gives_waiters_shutting_down() {
        let calls = Arc::new(AtomicUsize::new(0));
        let cancel = CancellationToken::new();
        let c = Arc::new(QueryCache::new(
            counting_fetch(calls, Duration::from_secs(3600), false),
            4,
            TaskTracker::new(),
            cancel.clone(),
            Arc::new(StatsCounters::default()),
            None,
        ));
        let waiter = {
            let c = c.clone();
            tokio::spawn(async move { c.get(&key("a"), Duration::from_secs(30)).await })
        };
        tokio::time::sleep(Duration::from_millis(5)).await;
        cancel.cancel();
        let (_, r) = waiter.await.unwrap();
        assert_eq!(r.unwrap_err(), CollectorError::ShuttingDown);
        assert_eq!(c.len(), 0);
    }
}
