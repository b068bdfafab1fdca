//! What the scrape source remembers about one (model, pod): its last outcome and windows.

use std::collections::HashMap;
use std::time::Duration;

use super::extract::{Observation, SeriesLabels};
use super::family::{Counter, Gauge, LATENCY_WINDOW, PEAK_WINDOW};
use super::window::{CounterWindow, GaugeWindow, counter_delta};
use crate::catalogue::{CatalogueConfig, QueryGroup};
use crate::error::CollectorError;
use crate::model::VariantRef;
use crate::snapshot::{AbsentReason, CacheConfigInfo, Field, ReplicaRecord};
use crate::stats::{StatsCounters, bump};

/// Pod states by (model, pod name); ordered so one model's pods are one range.
pub(crate) type PodMap = std::collections::BTreeMap<(crate::model::ModelKey, String), PodState>;

/// The latest scrape of a pod.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Outcome {
    /// Never scraped yet.
    Pending,
    /// The last scrape succeeded.
    Live,
    /// The last scrape failed with this error (already a `CollectorError::Scrape`).
    Failed(CollectorError),
}

/// One (model, pod) as the scrape source sees it.
#[derive(Debug, Clone)]
pub(crate) struct PodState {
    pub(crate) outcome: Outcome,
    /// URL of the last scrape (for reports).
    pub(crate) url: String,
    /// Sample time of the last successful scrape (the scrape's start).
    pub(crate) sampled_at: Option<Duration>,
    /// Completion time of the last successful scrape; ages count from here.
    pub(crate) completed_at: Option<Duration>,
    /// Time of the last attempt, successful or not.
    pub(crate) attempted_at: Option<Duration>,
    /// Duration of the last attempt.
    pub(crate) last_duration: Duration,
    /// Catalogue samples in the last successful scrape.
    pub(crate) last_series: usize,
    running: Option<f64>,
    waiting: GaugeWindow,
    kv: GaugeWindow,
    counters: Vec<CounterWindow>,
    raw: Vec<HashMap<SeriesLabels, f64>>,
    request_count: Option<CounterWindow>,
    cache_config: Vec<(Option<String>, Option<String>)>,
}

impl PodState {
    /// A pod not scraped yet; `retention` is its model's request-count window.
    pub(crate) fn new(url: String, retention: Option<Duration>) -> Self {
        PodState {
            outcome: Outcome::Pending,
            url,
            sampled_at: None,
            completed_at: None,
            attempted_at: None,
            last_duration: Duration::ZERO,
            last_series: 0,
            running: None,
            waiting: GaugeWindow::new(PEAK_WINDOW),
            kv: GaugeWindow::new(PEAK_WINDOW),
            counters: Counter::ALL
                .into_iter()
                .map(|c| CounterWindow::new(c.window()))
                .collect(),
            raw: vec![HashMap::new(); Counter::ALL.len()],
            request_count: retention.map(CounterWindow::new),
            cache_config: Vec::new(),
        }
    }

    /// Follows a change of the model's request-count window.
    pub(crate) fn set_retention(&mut self, retention: Option<Duration>) {
        match (&mut self.request_count, retention) {
            (Some(w), Some(r)) => w.set_retention(r),
            (slot @ None, Some(r)) => *slot = Some(CounterWindow::new(r)),
            (slot, None) => *slot = None,
        }
    }

    /// Records a successful scrape sampled at `sampled_at` and completed at `completed_at`.
    pub(crate) fn record_success(
        &mut self,
        sampled_at: Duration,
        completed_at: Duration,
        duration: Duration,
        obs: Observation,
    ) {
        if self.sampled_at.is_some_and(|prev| sampled_at <= prev) {
            // A round stamped no later than the last one (a stepped caller repeated `at`):
            // the value is current, but it adds no interval.
            self.outcome = Outcome::Live;
            self.completed_at = Some(completed_at.max(self.completed_at.unwrap_or_default()));
            self.attempted_at = Some(completed_at);
            return;
        }
        let previous = self.sampled_at;
        self.running = obs.gauges[Gauge::Running.index()];
        if let Some(v) = obs.gauges[Gauge::Waiting.index()] {
            self.waiting.push(sampled_at, v);
        }
        if let Some(v) = obs.gauges[Gauge::KvUsage.index()] {
            self.kv.push(sampled_at, v);
        }
        for (c, series) in Counter::ALL.into_iter().zip(obs.counters) {
            let old = &self.raw[c.index()];
            let mut delta = 0.0;
            let mut continued = false;
            for (labels, v) in &series {
                if let Some(prev) = old.get(labels) {
                    continued = true;
                    delta += counter_delta(*prev, *v);
                }
            }
            if continued && let Some(start) = previous {
                self.counters[c.index()].push(start, sampled_at, delta);
                if c == Counter::Success
                    && let Some(w) = &mut self.request_count
                {
                    w.push(start, sampled_at, delta);
                }
            }
            self.raw[c.index()] = series.into_iter().collect();
        }
        self.cache_config = obs.cache_config;
        self.last_series = obs.kept;
        self.last_duration = duration;
        self.sampled_at = Some(sampled_at);
        self.completed_at = Some(completed_at);
        self.attempted_at = Some(completed_at);
        self.outcome = Outcome::Live;
    }

    /// Records a failed scrape: the pod is not live until its next success.
    pub(crate) fn record_failure(
        &mut self,
        error: CollectorError,
        at: Duration,
        duration: Duration,
    ) {
        self.outcome = Outcome::Failed(error);
        self.attempted_at = Some(at);
        self.last_duration = duration;
    }

    /// The latest time this state was touched, for pruning.
    pub(crate) fn last_activity(&self) -> Duration {
        self.attempted_at
            .max(self.completed_at)
            .unwrap_or(Duration::ZERO)
    }

    /// Requests finished in `[now − retention, now]`, if the window holds an interval.
    pub(crate) fn request_increase(&self, now: Duration, retention: Duration) -> Option<f64> {
        self.request_count
            .as_ref()
            .and_then(|w| w.increase(now, retention))
    }

    fn increase(&self, c: Counter, at: Duration) -> Option<f64> {
        self.counters[c.index()].increase(at, c.window())
    }

    /// Σ increase of `num` / Σ increase of `den`; NaN when `den` did not move.
    fn ratio(&self, num: Counter, den: Counter, at: Duration) -> Option<f64> {
        Some(self.increase(num, at)? / self.increase(den, at)?)
    }

    /// The record of a live pod; windows end at the pod's last sample time.
    pub(crate) fn record(
        &self,
        pod: &str,
        variant: VariantRef,
        sample_age: Duration,
        catalogue: &CatalogueConfig,
        peak_window: Duration,
        stats: &StatsCounters,
    ) -> ReplicaRecord {
        let mut rec = ReplicaRecord::new(pod, variant, sample_age);
        let at = self.sampled_at.unwrap_or_default();
        let put = |rec: &mut ReplicaRecord, field: Field, value: Option<f64>| {
            if let Some(v) = value {
                match rec.set(field, v) {
                    Err(AbsentReason::NonFinite) => bump(&stats.non_finite),
                    Err(AbsentReason::OutOfRange) => bump(&stats.out_of_range),
                    _ => {}
                }
            }
        };
        put(&mut rec, Field::KvCacheUsage, self.kv.peak(at, peak_window));
        put(
            &mut rec,
            Field::QueueLength,
            self.waiting.peak(at, peak_window),
        );
        put(&mut rec, Field::RunningRequests, self.running);

        if catalogue.enabled(QueryGroup::SaturationV2) {
            self.put_cache_config(&mut rec, stats);
            let input = self.ratio(Counter::PromptSum, Counter::PromptCount, at);
            put(&mut rec, Field::AvgInputTokens, input);
            let output = self.ratio(Counter::GenerationSum, Counter::GenerationCount, at);
            put(&mut rec, Field::AvgOutputTokens, output);
            let prefix = self.ratio(Counter::PrefixHits, Counter::PrefixQueries, at);
            put(&mut rec, Field::PrefixCacheHitRate, prefix);
        } else {
            for f in [
                Field::CacheConfig,
                Field::AvgInputTokens,
                Field::AvgOutputTokens,
                Field::PrefixCacheHitRate,
            ] {
                rec.mark_absent(f, AbsentReason::GroupDisabled);
            }
        }

        if catalogue.enabled(QueryGroup::Queueing) {
            let rate = self
                .increase(Counter::Success, at)
                .map(|n| n / LATENCY_WINDOW.as_secs_f64());
            put(&mut rec, Field::RequestRate, rate);
            let ttft = self.ratio(Counter::TtftSum, Counter::TtftCount, at);
            put(&mut rec, Field::TtftMeanSeconds, ttft);
            // Like the PromQL `or`: the new ITL histogram when it has data, else the old one.
            let itl = self
                .ratio(Counter::ItlSum, Counter::ItlCount, at)
                .or_else(|| self.ratio(Counter::TpotSum, Counter::TpotCount, at));
            put(&mut rec, Field::ItlMeanSeconds, itl);
        } else {
            for f in [
                Field::RequestRate,
                Field::TtftMeanSeconds,
                Field::ItlMeanSeconds,
            ] {
                rec.mark_absent(f, AbsentReason::GroupDisabled);
            }
        }
        rec
    }

    /// Valid `(num_gpu_blocks, block_size)` pairs are base-10 `u64`s > 0; with several, the
    /// smallest product wins and the conflict is counted (spec §2.3).
    fn put_cache_config(&self, rec: &mut ReplicaRecord, stats: &StatsCounters) {
        if self.cache_config.is_empty() {
            return;
        }
        let parse = |v: &Option<String>| {
            v.as_deref()
                .and_then(|s| s.parse::<u64>().ok())
                .filter(|n| *n > 0)
        };
        let mut valid: Vec<CacheConfigInfo> = self
            .cache_config
            .iter()
            .filter_map(|(blocks, size)| {
                Some(CacheConfigInfo {
                    num_gpu_blocks: parse(blocks)?,
                    block_size: parse(size)?,
                })
            })
            .collect();
        valid.sort_by_key(|c| {
            (
                u128::from(c.num_gpu_blocks) * u128::from(c.block_size),
                c.num_gpu_blocks,
            )
        });
        valid.dedup();
        match valid.first() {
            Some(best) => {
                if valid.len() > 1 {
                    bump(&stats.conflicting_cache_config);
                }
                rec.set_cache_config(*best);
            }
            None => {
                bump(&stats.unparsable);
                rec.mark_absent(Field::CacheConfig, AbsentReason::Unparsable);
            }
        }
    }
}
