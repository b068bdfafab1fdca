//! `PrometheusSource`: collect, track, untrack, stats (spec §3, §4.1, §8).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};

use dashmap::DashMap;
use futures::FutureExt;
use futures::future::BoxFuture;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::catalogue::{
    BatchPlan, CatalogueConfig, PlannedQuery, QueryCatalogue, QueryName, TrackedSet,
};
use crate::config::{CacheConfig, PrometheusConfig};
use crate::directory::ReplicaDirectory;
use crate::error::CollectorError;
use crate::model::{CollectRequest, ModelKey, ModelRequest};
use crate::observer::{CacheOutcome, CollectorObserver};
use crate::snapshot::{CollectedSnapshot, ModelSnapshot, QueryOutcome, QueryReport};
use crate::source::MetricsSource;
use crate::stats::{CollectorStats, StatsCounters};

use super::assemble::{Assembled, Assembler, Read, from_last_good};
use super::breaker::Breaker;
use super::cache::{CacheKey, FetchFn, QueryCache};
use super::client::PromClient;
use super::fetch::Fetcher;

#[derive(Debug, Clone)]
struct TrackedEntry {
    retention: Option<Duration>,
    last_requested: Instant,
}

pub(super) struct PlanState {
    generation: u64,
    pub(super) plan: Arc<BatchPlan>,
    tracked: BTreeSet<ModelKey>,
}

struct LastGood {
    snapshot: ModelSnapshot,
    at: Instant,
}

/// Reads vLLM metrics from Prometheus: batched queries, single-flight TTL cache, background
/// refresher, circuit breaker, last-good snapshots. Shared through an `Arc`.
pub struct PrometheusSource {
    pub(super) cfg: PrometheusConfig,
    pub(super) cache_cfg: CacheConfig,
    catalogue: QueryCatalogue,
    directory: Arc<dyn ReplicaDirectory>,
    observer: Option<Arc<dyn CollectorObserver>>,
    pub(super) fetcher: Arc<Fetcher>,
    pub(super) cache: QueryCache,
    tracked: Mutex<BTreeMap<ModelKey, TrackedEntry>>,
    generation: AtomicU64,
    plan: RwLock<Arc<PlanState>>,
    last_good: DashMap<ModelKey, Arc<LastGood>>,
    stats: Arc<StatsCounters>,
    pub(super) tracker: TaskTracker,
    pub(super) cancel: CancellationToken,
    unmapped_log: Mutex<HashMap<(ModelKey, String), Instant>>,
    warned_unlabelled: Mutex<HashSet<QueryName>>,
    pub(super) healthy: Mutex<Option<bool>>,
}

impl std::fmt::Debug for PrometheusSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PrometheusSource")
            .field("base_url", &self.cfg.base_url)
            .finish_non_exhaustive()
    }
}

/// Labels kept from answers: the grouping labels of every catalogue query.
fn kept_labels(c: &CatalogueConfig) -> Vec<String> {
    let mut v: Vec<String> = [
        c.namespace_label.as_str(),
        c.pod_label.as_str(),
        "model_name",
        "num_gpu_blocks",
        "block_size",
        "target_model_name",
        "deployment",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    v.sort();
    v.dedup();
    v
}

impl PrometheusSource {
    /// A source; validates TLS files and the token now. Spawns nothing until used.
    pub fn new(
        config: PrometheusConfig,
        catalogue: CatalogueConfig,
        cache: CacheConfig,
        directory: Arc<dyn ReplicaDirectory>,
        observer: Option<Arc<dyn CollectorObserver>>,
    ) -> Result<Arc<Self>, CollectorError> {
        let stats = Arc::new(StatsCounters::default());
        let client = PromClient::new(&config, kept_labels(&catalogue))?;
        let fetcher = Arc::new(Fetcher {
            client,
            breaker: Breaker::new(config.breaker.clone()),
            retry: config.retry.clone(),
            deadline: config.query_deadline,
            stats: stats.clone(),
            observer: observer.clone(),
        });
        let tracker = TaskTracker::new();
        let cancel = CancellationToken::new();
        let f = fetcher.clone();
        let fetch: FetchFn = Arc::new(move |name, text| {
            let f = f.clone();
            async move { f.fetch(name, &text).await }.boxed()
        });
        let query_cache = QueryCache::new(
            fetch,
            cache.max_size,
            tracker.clone(),
            cancel.clone(),
            stats.clone(),
            observer.clone(),
        );
        Ok(Arc::new(PrometheusSource {
            cfg: config,
            cache_cfg: cache,
            catalogue: QueryCatalogue::new(catalogue),
            directory,
            observer,
            fetcher,
            cache: query_cache,
            tracked: Mutex::new(BTreeMap::new()),
            generation: AtomicU64::new(1),
            plan: RwLock::new(Arc::new(PlanState {
                generation: 0,
                plan: Arc::new(BatchPlan::default()),
                tracked: BTreeSet::new(),
            })),
            last_good: DashMap::new(),
            stats,
            tracker,
            cancel,
            unmapped_log: Mutex::new(HashMap::new()),
            warned_unlabelled: Mutex::new(HashSet::new()),
            healthy: Mutex::new(None),
        }))
    }

    /// The query catalogue in use.
    pub fn catalogue(&self) -> &QueryCatalogue {
        &self.catalogue
    }

    /// The plan of the current tracked set (rebuilt lazily after a change).
    pub fn plan(&self) -> Arc<BatchPlan> {
        self.current_plan().plan.clone()
    }

    pub(super) fn current_plan(&self) -> Arc<PlanState> {
        let generation = self.generation.load(Ordering::Acquire);
        if let Ok(g) = self.plan.read()
            && g.generation == generation
        {
            return g.clone();
        }
        let (tracked, set) = match self.tracked.lock() {
            Ok(t) => (
                TrackedSet {
                    models: t.iter().map(|(k, e)| (k.clone(), e.retention)).collect(),
                },
                t.keys().cloned().collect::<BTreeSet<_>>(),
            ),
            Err(_) => (TrackedSet::default(), BTreeSet::new()),
        };
        let plan = Arc::new(self.catalogue.plan(&tracked));
        self.cache.set_plan_keys(
            plan.queries
                .iter()
                .map(|q| (q.name, q.text.clone()))
                .collect(),
        );
        let state = Arc::new(PlanState {
            generation,
            plan,
            tracked: set,
        });
        if let Ok(mut g) = self.plan.write() {
            *g = state.clone();
        }
        state
    }

    fn track_at(&self, models: &[ModelRequest], now: Instant) {
        let Ok(mut t) = self.tracked.lock() else {
            return;
        };
        let mut changed = false;
        for m in models {
            match t.get_mut(&m.key) {
                Some(e) => {
                    e.last_requested = now;
                    if e.retention != m.retention {
                        e.retention = m.retention;
                        changed = true;
                    }
                }
                None => {
                    t.insert(
                        m.key.clone(),
                        TrackedEntry {
                            retention: m.retention,
                            last_requested: now,
                        },
                    );
                    changed = true;
                }
            }
        }
        if changed {
            self.generation.fetch_add(1, Ordering::AcqRel);
        }
    }

    /// Drops models not requested for the idle timeout; returns how many.
    pub(super) fn drop_idle(&self) -> usize {
        let idle = self.cache_cfg.tracking_idle_timeout;
        let removed: Vec<ModelKey> = match self.tracked.lock() {
            Ok(mut t) => {
                let gone: Vec<ModelKey> = t
                    .iter()
                    .filter(|(_, e)| e.last_requested.elapsed() >= idle)
                    .map(|(k, _)| k.clone())
                    .collect();
                for k in &gone {
                    t.remove(k);
                }
                gone
            }
            Err(_) => Vec::new(),
        };
        for k in &removed {
            self.last_good.remove(k);
        }
        if !removed.is_empty() {
            self.generation.fetch_add(1, Ordering::AcqRel);
            tracing::debug!(count = removed.len(), "untracked idle models");
        }
        removed.len()
    }

    /// Number of tracked models.
    pub fn tracked_models(&self) -> usize {
        self.tracked.lock().map(|t| t.len()).unwrap_or(0)
    }

    fn note_unmapped(&self, key: &ModelKey, pod: &str) {
        if let Ok(mut m) = self.unmapped_log.lock() {
            let k = (key.clone(), pod.to_string());
            let due = m
                .get(&k)
                .is_none_or(|t| t.elapsed() >= Duration::from_secs(600));
            if due {
                tracing::debug!(model = %key, pod, "pod maps to no variant; dropped");
                m.insert(k, Instant::now());
            }
        }
    }

    fn warn_unlabelled(&self, name: QueryName) {
        if let Ok(mut w) = self.warned_unlabelled.lock()
            && w.insert(name)
        {
            tracing::warn!(
                query = name.as_str(),
                "samples without a pod or namespace label were dropped; does the scrape config attach `pod`?"
            );
        }
    }

    pub(super) fn set_health(&self, ok: bool, err: Option<&CollectorError>) {
        if let Ok(mut h) = self.healthy.lock()
            && *h != Some(ok)
        {
            if ok {
                tracing::info!(base_url = %self.cfg.base_url, "Prometheus queries succeed");
            } else if let Some(e) = err {
                tracing::warn!(error = %e, "Prometheus queries fail");
            }
            *h = Some(ok);
        }
    }

    /// Collects the requested models (see [`MetricsSource::collect`]).
    pub async fn collect_models(&self, request: &CollectRequest) -> CollectedSnapshot {
        let started = Instant::now();
        self.track_at(&request.models, started);
        let state = self.current_plan();
        let wanted: BTreeSet<&ModelKey> = request.models.iter().map(|m| &m.key).collect();
        let needed: Vec<&PlannedQuery> = state
            .plan
            .queries
            .iter()
            .filter(|q| {
                wanted.len() == state.tracked.len()
                    || q.batch.keys.iter().any(|k| wanted.contains(k))
            })
            .collect();
        let deadline = started + self.cfg.collect_timeout;
        let ttl = self.cache_cfg.ttl;
        let reads_fut = needed.iter().map(|q| {
            let key: CacheKey = (q.name, q.text.clone());
            async move {
                let t0 = Instant::now();
                let (outcome, result) =
                    match tokio::time::timeout_at(deadline, self.cache.get(&key, ttl)).await {
                        Ok((o, r)) => (Some(o), r),
                        Err(_) => (
                            None,
                            Err(CollectorError::Timeout {
                                query: q.name.as_str().to_string(),
                                after: self.cfg.collect_timeout,
                            }),
                        ),
                    };
                (q, outcome, result, t0.elapsed())
            }
        });
        let results = futures::future::join_all(reads_fut).await;
        let mut queries = Vec::with_capacity(results.len());
        let mut reads = Vec::with_capacity(results.len());
        for (q, outcome, result, duration) in results {
            queries.push(QueryReport {
                name: q.name,
                text: q.text.to_string(),
                outcome: match (&result, outcome) {
                    (Err(_), _) | (_, None) => QueryOutcome::Failed,
                    (Ok(_), Some(CacheOutcome::Hit)) => QueryOutcome::Hit,
                    (Ok(_), Some(CacheOutcome::Miss)) => QueryOutcome::Miss,
                    (Ok(_), Some(CacheOutcome::Coalesced)) => QueryOutcome::Coalesced,
                },
                duration,
                series: result.as_ref().map_or(0, |r| r.result.samples.len()),
                error: result.as_ref().err().cloned(),
            });
            reads.push(Read { query: q, result });
        }
        let invalid: HashMap<&ModelKey, &CollectorError> =
            state.plan.invalid.iter().map(|(k, e)| (k, e)).collect();
        let assembler = Assembler::new(
            &self.catalogue,
            self.directory.as_ref(),
            self.cache_cfg.freshness,
            &self.stats,
            &state.tracked,
            &reads,
            &|n| self.warn_unlabelled(n),
        );
        let mut models = BTreeMap::new();
        for m in &request.models {
            let snap = if let Some(e) = invalid.get(&m.key) {
                ModelSnapshot::unavailable(vec![(QueryName::ReplicaLastSample, (*e).clone())])
            } else {
                match assembler.model(&m.key, m.retention, &|k, p| self.note_unmapped(k, p)) {
                    Assembled::Ok(s) => {
                        self.last_good.insert(
                            m.key.clone(),
                            Arc::new(LastGood {
                                snapshot: s.clone(),
                                at: Instant::now(),
                            }),
                        );
                        s
                    }
                    Assembled::LivenessFailed { errors } => self.serve_last_good(&m.key, errors),
                }
            };
            if let Some(o) = &self.observer {
                o.on_model(&m.key, snap.age, snap.freshness);
            }
            models.insert(m.key.clone(), snap);
        }
        let deployments = assembler.deployments();
        CollectedSnapshot {
            taken_at: SystemTime::now(),
            source: "prometheus".to_string(),
            models,
            queries,
            deployments,
        }
    }

    fn serve_last_good(
        &self,
        key: &ModelKey,
        errors: Vec<(QueryName, CollectorError)>,
    ) -> ModelSnapshot {
        let copy = self.last_good.get(key).map(|g| g.value().clone());
        if let Some(copy) = copy {
            if let Some(s) = from_last_good(
                &copy.snapshot,
                copy.at.elapsed(),
                &self.cache_cfg.freshness,
                errors.clone(),
            ) {
                return s;
            }
            self.last_good.remove(key);
        }
        ModelSnapshot::unavailable(errors)
    }

    /// Stops background work and in-flight fetches; waiters get `ShuttingDown`. Bounded by 5 s.
    pub async fn shutdown(&self) {
        self.cancel.cancel();
        self.tracker.close();
        let _ = tokio::time::timeout(Duration::from_secs(5), self.tracker.wait()).await;
    }
}

impl MetricsSource for PrometheusSource {
    fn name(&self) -> &'static str {
        "prometheus"
    }

    fn collect<'a>(&'a self, request: &'a CollectRequest) -> BoxFuture<'a, CollectedSnapshot> {
        self.collect_models(request).boxed()
    }

    fn track(&self, models: &[ModelRequest]) {
        self.track_at(models, Instant::now());
    }

    fn untrack(&self, key: &ModelKey) {
        let removed = self
            .tracked
            .lock()
            .map(|mut t| t.remove(key).is_some())
            .unwrap_or(false);
        self.last_good.remove(key);
        if removed {
            self.generation.fetch_add(1, Ordering::AcqRel);
        }
    }

    fn stats(&self) -> CollectorStats {
        self.stats.snapshot(
            "prometheus",
            self.fetcher.breaker.state(),
            self.tracked_models(),
            self.cache.len(),
        )
    }

    fn spawn_background(self: Arc<Self>, shutdown: CancellationToken) -> JoinHandle<()> {
        tokio::spawn(async move { self.run_refresher(shutdown).await })
    }
}
