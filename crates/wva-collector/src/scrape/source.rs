//! `ScrapeSource`: the engine's metrics read straight from the pods, no Prometheus (spec §7).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, SystemTime};

use futures::future::BoxFuture;
use futures::stream::{self, StreamExt};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::assemble::{ModelView, assemble};
use super::client::ScrapeClient;
use super::config::{RoundMode, ScrapeConfig};
use super::extract::{Observation, observe};
use super::family::TOKEN_WINDOW;
use super::pod::{PodMap, PodState};
use crate::catalogue::{CatalogueConfig, QueryName};
use crate::directory::ReplicaDirectory;
use crate::error::CollectorError;
use crate::model::{CollectRequest, Endpoint, ModelKey, ModelRequest, ReplicaTarget};
use crate::observer::{CollectorObserver, QueryEvent};
use crate::parse::parse_exposition;
use crate::snapshot::{CollectedSnapshot, QueryOutcome};
use crate::source::MetricsSource;
use crate::stats::{BreakerState, CollectorStats, StatsCounters, bump};

/// What one scrape round did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RoundSummary {
    /// The round's time on the source's clock (the caller's `at` in stepped mode).
    pub at: Duration,
    /// Pods listed by the directory for the tracked models.
    pub targets: usize,
    /// Distinct endpoints scraped.
    pub scraped: usize,
    /// Scrapes that failed.
    pub failed: usize,
    /// Listed pods without an endpoint (not scraped).
    pub without_endpoint: usize,
}

/// A tracked model.
#[derive(Debug, Clone)]
struct Tracked {
    retention: Option<Duration>,
    last_requested: Duration,
    /// Rounds that listed this model's pods since it was tracked.
    rounds: u64,
}

#[derive(Debug, Default)]
struct State {
    tracked: BTreeMap<ModelKey, Tracked>,
    pods: PodMap,
    last_round_at: Option<Duration>,
}

/// One endpoint's scrape, parsed for every (model, pod) that lists it.
struct ScrapeResult {
    url: String,
    sampled_at: Duration,
    completed_at: Duration,
    duration: Duration,
    error: Option<CollectorError>,
    users: Vec<(ModelKey, String, Result<Observation, CollectorError>)>,
}

/// Reads vLLM metrics by scraping the pods the [`ReplicaDirectory`] lists, and hands the
/// engine the same [`CollectedSnapshot`] shapes as the Prometheus source.
///
/// - **Rounds.** Each round lists `replicas(model)` of every tracked model and GETs each
///   endpoint once (at most `max_concurrent_scrapes` at a time). With [`RoundMode::Timer`],
///   [`MetricsSource::spawn_background`] runs a round at once and then every
///   `scrape_interval` shortened by up to 10 % jitter. With [`RoundMode::Stepped`] the caller
///   runs [`ScrapeSource::scrape_round`] itself with its virtual time.
/// - **Values.** Per (model, pod), windows computed locally: KV usage and queue length are
///   1-minute peaks, token means and the prefix hit rate 5-minute ratios of increases, request
///   rate, TTFT and ITL 1-minute ones; the request count sums increases over the model's
///   retention. Counter resets count as in Prometheus; there is no extrapolation to the window
///   edges (an increase counts only the intervals between two scrapes inside the window), so
///   `request_rate` can read slightly low for a pod younger than a minute.
/// - **Identity.** Only series whose `model_name` is the target's model are kept
///   (`vllm:cache_config_info`, which has none, is kept); `namespace` and `pod` come from the
///   target, never from the text.
/// - **Liveness and age.** A pod is live while its last scrape succeeded; a failed scrape
///   moves it to `missing_pods` with the error and its values are not served. Age is the time
///   since its last successful scrape completed.
/// - **collect** assembles snapshots from memory. In timer mode, a model whose pods were never
///   scraped makes `collect` wait for one round, bounded by the scrape timeout plus 1 s.
///
/// Lockstep use (what `wva-manager demo --speed max` does):
///
/// ```no_run
/// # use std::{sync::Arc, time::Duration};
/// # use wva_collector::*;
/// # async fn demo(directory: Arc<dyn ReplicaDirectory>) -> Result<(), CollectorError> {
/// let source = ScrapeSource::new(
///     ScrapeConfig::stepped(),
///     CatalogueConfig::default(),
///     directory,
///     None,
/// )?;
/// let request = CollectRequest::new(vec![ModelRequest::new(ModelKey::new("ns", "m"))]);
/// source.track(&request.models);
/// for step in 1..=60u64 {
///     let now = Duration::from_secs(step); // the simulation's virtual time, fleet frozen
///     source.scrape_round(now).await;
///     if step % 5 == 0 {
///         let snapshot = source.collect(&request).await; // ages measured against `now`
///         # let _ = snapshot;
///     }
/// }
/// # Ok(()) }
/// ```
pub struct ScrapeSource {
    me: Weak<ScrapeSource>,
    config: ScrapeConfig,
    catalogue: CatalogueConfig,
    directory: Arc<dyn ReplicaDirectory>,
    observer: Option<Arc<dyn CollectorObserver>>,
    client: ScrapeClient,
    origin: tokio::time::Instant,
    /// Latest `at` of a stepped round, in nanoseconds.
    stepped_now: AtomicU64,
    state: Mutex<State>,
    round_lock: tokio::sync::Mutex<()>,
    stats: StatsCounters,
}

impl std::fmt::Debug for ScrapeSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScrapeSource")
            .field("config", &self.config)
            .field("now", &self.now())
            .finish_non_exhaustive()
    }
}

impl ScrapeSource {
    /// A source over `directory`'s pods. Fails on an invalid config, unreadable TLS files or
    /// an unreadable token file.
    pub fn new(
        config: ScrapeConfig,
        catalogue: CatalogueConfig,
        directory: Arc<dyn ReplicaDirectory>,
        observer: Option<Arc<dyn CollectorObserver>>,
    ) -> Result<Arc<Self>, CollectorError> {
        config.validate()?;
        let client = ScrapeClient::new(&config.client)?;
        Ok(Arc::new_cyclic(|me| ScrapeSource {
            me: me.clone(),
            config,
            catalogue,
            directory,
            observer,
            client,
            origin: tokio::time::Instant::now(),
            stepped_now: AtomicU64::new(0),
            state: Mutex::new(State::default()),
            round_lock: tokio::sync::Mutex::new(()),
            stats: StatsCounters::default(),
        }))
    }

    /// The configuration in use.
    pub fn config(&self) -> &ScrapeConfig {
        &self.config
    }

    /// The source's current time: the tokio clock since construction in timer mode, the
    /// latest `at` in stepped mode.
    pub fn now(&self) -> Duration {
        match self.config.rounds {
            RoundMode::Timer => self.origin.elapsed(),
            RoundMode::Stepped => Duration::from_nanos(self.stepped_now.load(Ordering::Acquire)),
        }
    }

    /// Runs one round now and returns what it did.
    ///
    /// In [`RoundMode::Stepped`], `at` (the caller's virtual time) stamps every sample of the
    /// round and becomes the time ages are measured against; an `at` earlier than a previous
    /// one is raised to it. Call it with the simulated fleet frozen; the results then do not
    /// depend on host speed. In [`RoundMode::Timer`], `at` is ignored and the tokio clock is
    /// used.
    pub async fn scrape_round(&self, at: Duration) -> RoundSummary {
        let fixed = match self.config.rounds {
            RoundMode::Timer => None,
            RoundMode::Stepped => {
                let nanos = u64::try_from(at.as_nanos()).unwrap_or(u64::MAX);
                let prev = self.stepped_now.fetch_max(nanos, Ordering::AcqRel);
                Some(Duration::from_nanos(prev.max(nanos)))
            }
        };
        let _round = self.round_lock.lock().await;
        self.round(fixed).await
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves plain data behind; keep serving it.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn track_at(&self, models: &[ModelRequest], now: Duration) {
        let mut st = self.lock();
        for m in models {
            let t = st.tracked.entry(m.key.clone()).or_insert(Tracked {
                retention: m.retention,
                last_requested: now,
                rounds: 0,
            });
            t.retention = m.retention;
            t.last_requested = now;
        }
    }

    /// One round; the caller holds `round_lock`.
    async fn round(&self, fixed: Option<Duration>) -> RoundSummary {
        let started = fixed.unwrap_or_else(|| self.now());
        let models: Vec<ModelKey> = {
            let mut st = self.lock();
            let idle = self.config.tracking_idle_timeout;
            st.tracked
                .retain(|_, t| started.saturating_sub(t.last_requested) < idle);
            let State { tracked, pods, .. } = &mut *st;
            pods.retain(|(m, _), _| tracked.contains_key(m));
            st.tracked.keys().cloned().collect()
        };

        let mut by_endpoint: BTreeMap<Endpoint, Vec<(ModelKey, ReplicaTarget)>> = BTreeMap::new();
        let mut listed: BTreeSet<(ModelKey, String)> = BTreeSet::new();
        let mut without_endpoint = 0;
        for model in &models {
            for target in self.directory.replicas(model) {
                listed.insert((model.clone(), target.pod.clone()));
                match target.endpoint.clone() {
                    Some(ep) => by_endpoint
                        .entry(ep)
                        .or_default()
                        .push((model.clone(), target)),
                    None => without_endpoint += 1,
                }
            }
        }
        let scraped = by_endpoint.len();
        let results: Vec<ScrapeResult> = stream::iter(
            by_endpoint
                .into_iter()
                .map(|(ep, users)| self.scrape_endpoint(ep, users, fixed)),
        )
        .buffer_unordered(self.config.max_concurrent_scrapes)
        .collect()
        .await;

        let finished = fixed.unwrap_or_else(|| self.now());
        let failed = results.iter().filter(|r| r.error.is_some()).count();
        let events = self.apply(results, &models, &listed, finished);
        if let Some(observer) = &self.observer {
            for event in &events {
                observer.on_query(event);
            }
        }
        RoundSummary {
            at: started,
            targets: listed.len(),
            scraped,
            failed,
            without_endpoint,
        }
    }

    async fn scrape_endpoint(
        &self,
        endpoint: Endpoint,
        users: Vec<(ModelKey, ReplicaTarget)>,
        fixed: Option<Duration>,
    ) -> ScrapeResult {
        let sampled_at = fixed.unwrap_or_else(|| self.now());
        let clock = tokio::time::Instant::now();
        let body = self.client.scrape(&endpoint).await;
        let duration = clock.elapsed();
        let completed_at = fixed.unwrap_or_else(|| self.now());
        let failure = |reason: String| {
            move |pod: &str| CollectorError::Scrape {
                pod: pod.to_owned(),
                reason: reason.clone(),
            }
        };
        let (error, users) = match body {
            Ok(text) => match parse_exposition(&text) {
                Ok(exposition) => (
                    None,
                    users
                        .into_iter()
                        .map(|(m, t)| {
                            let obs = observe(&exposition, &m.model_id);
                            (m, t.pod, Ok(obs))
                        })
                        .collect(),
                ),
                Err(e) => fail_all(users, &failure(e.to_string())),
            },
            Err(e) => fail_all(users, &failure(e.to_string())),
        };
        ScrapeResult {
            url: endpoint.url(),
            sampled_at,
            completed_at,
            duration,
            error,
            users,
        }
    }

    /// Stores a round's results; returns the observer events to send once unlocked.
    fn apply(
        &self,
        results: Vec<ScrapeResult>,
        models: &[ModelKey],
        listed: &BTreeSet<(ModelKey, String)>,
        finished: Duration,
    ) -> Vec<QueryEvent> {
        let mut events = Vec::with_capacity(results.len());
        let mut st = self.lock();
        for r in results {
            bump_scrape(&self.stats, r.error.as_ref());
            let mut series = 0;
            for (model, pod, outcome) in r.users {
                let Some(retention) = st.tracked.get(&model).map(|t| t.retention) else {
                    continue; // untracked while the round ran
                };
                let state = st
                    .pods
                    .entry((model, pod))
                    .or_insert_with(|| PodState::new(r.url.clone(), retention));
                state.url.clone_from(&r.url);
                state.set_retention(retention);
                match outcome {
                    Ok(obs) => {
                        series += obs.kept;
                        for _ in 0..obs.other_model {
                            bump(&self.stats.untracked);
                        }
                        state.record_success(r.sampled_at, r.completed_at, r.duration, obs);
                    }
                    Err(e) => state.record_failure(e, r.completed_at, r.duration),
                }
            }
            events.push(QueryEvent {
                name: QueryName::ReplicaLastSample,
                outcome: if r.error.is_some() {
                    QueryOutcome::Failed
                } else {
                    QueryOutcome::Miss
                },
                attempts: 1,
                duration: r.duration,
                series,
                error_kind: r.error.as_ref().map(|e| e.kind().to_owned()),
            });
        }
        for model in models {
            if let Some(t) = st.tracked.get_mut(model) {
                t.rounds += 1;
            }
        }
        // Forget pods no longer listed once nothing of theirs can be in a window.
        let State { tracked, pods, .. } = &mut *st;
        pods.retain(|key, pod| {
            if listed.contains(key) {
                return true;
            }
            let keep = tracked
                .get(&key.0)
                .and_then(|t| t.retention)
                .map_or(TOKEN_WINDOW, |r| r.max(TOKEN_WINDOW));
            finished.saturating_sub(pod.last_activity()) <= keep
        });
        st.last_round_at = Some(finished);
        events
    }

    /// In timer mode, waits (bounded) for one round when a requested model was never covered.
    async fn first_round_if_needed(&self, keys: &[ModelKey]) {
        if self.config.rounds != RoundMode::Timer || !self.uncovered(keys) {
            return;
        }
        let Some(me) = self.me.upgrade() else {
            return;
        };
        let keys = keys.to_vec();
        // A task, so that a round cut off by the bound below still completes and is kept.
        let round = tokio::spawn(async move {
            let _round = me.round_lock.lock().await;
            if me.uncovered(&keys) {
                me.round(None).await;
            }
        });
        let bound = self.client.timeout() + Duration::from_secs(1);
        let _ = tokio::time::timeout(bound, round).await;
    }

    fn uncovered(&self, keys: &[ModelKey]) -> bool {
        let st = self.lock();
        keys.iter()
            .any(|k| st.tracked.get(k).is_none_or(|t| t.rounds == 0))
    }

    async fn collect_inner(&self, request: &CollectRequest) -> CollectedSnapshot {
        self.track_at(&request.models, self.now());
        let mut wanted: BTreeMap<ModelKey, Option<Duration>> = BTreeMap::new();
        for m in &request.models {
            wanted.insert(m.key.clone(), m.retention);
        }
        let keys: Vec<ModelKey> = wanted.keys().cloned().collect();
        self.first_round_if_needed(&keys).await;

        let now = self.now();
        let mut snapshot = CollectedSnapshot::empty(self.name());
        for (key, retention) in wanted {
            // The directory answers from memory; it is called with no lock held.
            let targets = self.directory.replicas(&key);
            let (model, reports) = {
                let st = self.lock();
                let view = ModelView {
                    key: &key,
                    retention,
                    targets: &targets,
                    now,
                    last_round_at: st.last_round_at,
                    policy: &self.config.freshness,
                    catalogue: &self.catalogue,
                    peak_window: self.config.peak_window,
                };
                assemble(&view, &st.pods, &self.stats)
            };
            if let Some(observer) = &self.observer {
                observer.on_model(&key, model.age, model.freshness);
            }
            snapshot.queries.extend(reports);
            snapshot.models.insert(key, model);
        }
        snapshot.taken_at = SystemTime::now();
        snapshot
    }

    async fn run_timer(self: Arc<Self>) {
        loop {
            {
                let _round = self.round_lock.lock().await;
                self.round(None).await;
            }
            let shorten = 1.0 - fastrand::f64() * 0.1;
            tokio::time::sleep(self.config.scrape_interval.mul_f64(shorten)).await;
        }
    }
}

/// Every user of a failed endpoint gets the error under its own pod name; the first one is
/// also the endpoint's error.
#[allow(clippy::type_complexity)]
fn fail_all(
    users: Vec<(ModelKey, ReplicaTarget)>,
    make: &impl Fn(&str) -> CollectorError,
) -> (
    Option<CollectorError>,
    Vec<(ModelKey, String, Result<Observation, CollectorError>)>,
) {
    let first = users.first().map(|(_, t)| make(&t.pod));
    let users = users
        .into_iter()
        .map(|(m, t)| {
            let e = make(&t.pod);
            (m, t.pod, Err(e))
        })
        .collect();
    (first, users)
}

fn bump_scrape(stats: &StatsCounters, error: Option<&CollectorError>) {
    stats.sent(QueryName::ReplicaLastSample);
    stats.attempt(QueryName::ReplicaLastSample);
    match error {
        None => {
            bump(&stats.scrapes_ok);
            stats.success(Some(QueryName::ReplicaLastSample));
        }
        Some(e) => {
            bump(&stats.scrapes_failed);
            stats.failure(Some(QueryName::ReplicaLastSample), e);
        }
    }
}

impl MetricsSource for ScrapeSource {
    fn name(&self) -> &'static str {
        "scrape"
    }

    fn collect<'a>(&'a self, request: &'a CollectRequest) -> BoxFuture<'a, CollectedSnapshot> {
        Box::pin(self.collect_inner(request))
    }

    fn track(&self, models: &[ModelRequest]) {
        self.track_at(models, self.now());
    }

    fn untrack(&self, key: &ModelKey) {
        let mut st = self.lock();
        st.tracked.remove(key);
        st.pods.retain(|(m, _), _| m != key);
    }

    fn stats(&self) -> CollectorStats {
        let (tracked, pods) = {
            let st = self.lock();
            (st.tracked.len(), st.pods.len())
        };
        self.stats
            .snapshot(self.name(), BreakerState::Closed, tracked, pods)
    }

    fn spawn_background(self: Arc<Self>, shutdown: CancellationToken) -> JoinHandle<()> {
        tokio::spawn(async move {
            match self.config.rounds {
                // The caller drives the rounds; nothing runs on a timer.
                RoundMode::Stepped => shutdown.cancelled().await,
                RoundMode::Timer => {
                    shutdown.run_until_cancelled(self.run_timer()).await;
                }
            }
        })
    }
}
