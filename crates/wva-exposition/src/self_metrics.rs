//! The `wva_*` self-metrics (spec/exposition.md §5): ordinary `prometheus` families.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use prometheus::core::Collector;
use prometheus::{GaugeVec, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, Opts, Registry};
use wva_core::{Action, Decision, Reason};

use crate::config::BuildInfo;
use crate::error::ExpositionError;

/// Buckets of the cycle and phase histograms, in seconds.
pub const CYCLE_BUCKETS: [f64; 12] = [
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];
/// Buckets of the Prometheus query histogram, in seconds.
pub const QUERY_BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// What started a control cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CycleTrigger {
    /// The fixed interval.
    Periodic,
    /// A coalesced change event.
    Event,
}

impl CycleTrigger {
    /// `periodic` or `event`.
    pub fn as_str(self) -> &'static str {
        match self {
            CycleTrigger::Periodic => "periodic",
            CycleTrigger::Event => "event",
        }
    }
}

/// A phase of a control cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CyclePhase {
    /// Inventory snapshot.
    Inventory,
    /// Metric collection.
    Collect,
    /// The core's decision.
    Decide,
    /// Publication of metrics.
    Publish,
    /// Status and scale actuation.
    Actuate,
}

impl CyclePhase {
    /// The `phase` label value.
    pub fn as_str(self) -> &'static str {
        match self {
            CyclePhase::Inventory => "inventory",
            CyclePhase::Collect => "collect",
            CyclePhase::Decide => "decide",
            CyclePhase::Publish => "publish",
            CyclePhase::Actuate => "actuate",
        }
    }
}

/// Outcome label shared by cycles and status patches: `ok` or `error`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Succeeded.
    Ok,
    /// Failed.
    Error,
}

impl Outcome {
    /// `ok` or `error`.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Error => "error",
        }
    }
}

/// A metric-cache lookup result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheLookup {
    /// Answered from the cache (a coalesced lookup counts as a hit).
    Hit,
    /// Needed a Prometheus query.
    Miss,
}

/// How a scale subresource patch was triggered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScalePatchMode {
    /// Direct actuation of a decision.
    Direct,
    /// Waking an idle variant.
    ScaleFromZero,
}

impl ScalePatchMode {
    /// `direct` or `scale_from_zero`.
    pub fn as_str(self) -> &'static str {
        match self {
            ScalePatchMode::Direct => "direct",
            ScalePatchMode::ScaleFromZero => "scale_from_zero",
        }
    }
}

/// Result of a scale subresource patch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScalePatchResult {
    /// Applied.
    Ok,
    /// The precondition failed (replicas no longer 0, resource version changed).
    Conflict,
    /// Any other failure.
    Error,
}

impl ScalePatchResult {
    /// `ok`, `conflict` or `error`.
    pub fn as_str(self) -> &'static str {
        match self {
            ScalePatchResult::Ok => "ok",
            ScalePatchResult::Conflict => "conflict",
            ScalePatchResult::Error => "error",
        }
    }
}

/// The ConfigMap a reload concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigMapKind {
    /// The saturation scaling config.
    Saturation,
    /// The scale-to-zero config.
    ScaleToZero,
}

impl ConfigMapKind {
    /// `saturation` or `scale_to_zero`.
    pub fn as_str(self) -> &'static str {
        match self {
            ConfigMapKind::Saturation => "saturation",
            ConfigMapKind::ScaleToZero => "scale_to_zero",
        }
    }
}

/// Result of a ConfigMap reload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReloadResult {
    /// The new config is in force.
    Ok,
    /// The edit was invalid; the last good config stays.
    Rejected,
}

impl ReloadResult {
    /// `ok` or `rejected`.
    pub fn as_str(self) -> &'static str {
        match self {
            ReloadResult::Ok => "ok",
            ReloadResult::Rejected => "rejected",
        }
    }
}

/// An authentication decision on the metrics listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthResult {
    /// The request was let through.
    Allowed,
    /// No or an invalid token (401).
    Unauthenticated,
    /// Authenticated but not authorised (403).
    Forbidden,
    /// The authentication backend failed (503).
    Error,
}

impl AuthResult {
    /// The `result` label value.
    pub fn as_str(self) -> &'static str {
        match self {
            AuthResult::Allowed => "allowed",
            AuthResult::Unauthenticated => "unauthenticated",
            AuthResult::Forbidden => "forbidden",
            AuthResult::Error => "error",
        }
    }
}

/// Handle on the `wva_*` self-metrics; cheap to clone, usable from any thread.
#[derive(Clone)]
pub struct SelfMetrics {
    is_leader: IntGauge,
    cycle_duration: HistogramVec,
    phase_duration: HistogramVec,
    cycles: IntCounterVec,
    last_success: GaugeVec,
    query_duration: HistogramVec,
    query_errors: IntCounterVec,
    cache_hits: IntCounterVec,
    cache_misses: IntCounterVec,
    metric_age: GaugeVec,
    decisions: IntCounterVec,
    status_patches: IntCounterVec,
    scale_patches: IntCounterVec,
    config_reloads: IntCounterVec,
    auth_requests: IntCounterVec,
}

impl std::fmt::Debug for SelfMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SelfMetrics").finish_non_exhaustive()
    }
}

/// Registers `collector` in `registry`, naming the family on failure.
fn register<C: Collector + Clone + 'static>(
    registry: &Registry,
    name: &str,
    collector: Result<C, prometheus::Error>,
) -> Result<C, ExpositionError> {
    let wrap = |source| ExpositionError::Register {
        family: name.to_owned(),
        source,
    };
    let collector = collector.map_err(wrap)?;
    registry
        .register(Box::new(collector.clone()))
        .map_err(wrap)?;
    Ok(collector)
}

/// An `IntCounterVec` named `name` with `labels`, registered in `registry`.
fn counter_vec(
    registry: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
) -> Result<IntCounterVec, ExpositionError> {
    register(
        registry,
        name,
        IntCounterVec::new(Opts::new(name, help), labels),
    )
}

/// A `HistogramVec` named `name` with `labels` and `buckets`, registered in `registry`.
fn histogram_vec(
    registry: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
    buckets: &[f64],
) -> Result<HistogramVec, ExpositionError> {
    let opts = HistogramOpts::new(name, help).buckets(buckets.to_vec());
    register(registry, name, HistogramVec::new(opts, labels))
}

/// A `GaugeVec` named `name` with `labels`, registered in `registry`.
fn gauge_vec(
    registry: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
) -> Result<GaugeVec, ExpositionError> {
    register(registry, name, GaugeVec::new(Opts::new(name, help), labels))
}

impl SelfMetrics {
    /// Registers every self-metric family in `registry`; `wva_build_info` is set at once.
    pub(crate) fn register(
        registry: &Registry,
        build: &BuildInfo,
    ) -> Result<Self, ExpositionError> {
        let build_info = gauge_vec(
            registry,
            "wva_build_info",
            "Build information of wva-manager; the value is always 1",
            &["version", "git_commit", "rustc_version"],
        )?;
        build_info
            .with_label_values(&[&build.version, &build.git_commit, &build.rustc_version])
            .set(1.0);
        let is_leader = register(
            registry,
            "wva_is_leader",
            IntGauge::new(
                "wva_is_leader",
                "1 if this replica holds the leader lease, else 0",
            ),
        )?;
        Ok(SelfMetrics {
            is_leader,
            cycle_duration: histogram_vec(
                registry,
                "wva_cycle_duration_seconds",
                "Duration of a control cycle from inventory to actuation",
                &["trigger"],
                &CYCLE_BUCKETS,
            )?,
            phase_duration: histogram_vec(
                registry,
                "wva_cycle_phase_duration_seconds",
                "Duration of each phase of a control cycle",
                &["phase"],
                &CYCLE_BUCKETS,
            )?,
            cycles: counter_vec(
                registry,
                "wva_cycles_total",
                "Control cycles run",
                &["trigger", "result"],
            )?,
            last_success: gauge_vec(
                registry,
                "wva_last_successful_cycle_timestamp_seconds",
                "Unix time at which the last successful control cycle finished",
                &[],
            )?,
            query_duration: histogram_vec(
                registry,
                "wva_prometheus_query_duration_seconds",
                "Latency of Prometheus queries by catalogue query name",
                &["query"],
                &QUERY_BUCKETS,
            )?,
            query_errors: counter_vec(
                registry,
                "wva_prometheus_query_errors_total",
                "Failed Prometheus queries by catalogue query name and error kind",
                &["query", "kind"],
            )?,
            cache_hits: counter_vec(
                registry,
                "wva_metrics_cache_hits_total",
                "Metric cache lookups answered from the cache",
                &["query"],
            )?,
            cache_misses: counter_vec(
                registry,
                "wva_metrics_cache_misses_total",
                "Metric cache lookups that needed a Prometheus query",
                &["query"],
            )?,
            metric_age: gauge_vec(
                registry,
                "wva_metric_age_seconds",
                "Age of the newest sample used for a model",
                &["namespace", "model_id"],
            )?,
            decisions: counter_vec(
                registry,
                "wva_decisions_total",
                "Decisions made, one per variant per cycle",
                &["action", "reason"],
            )?,
            status_patches: counter_vec(
                registry,
                "wva_status_patches_total",
                "VariantAutoscaling status applies sent to the API server",
                &["result"],
            )?,
            scale_patches: counter_vec(
                registry,
                "wva_scale_patches_total",
                "Scale subresource patches sent to the API server",
                &["mode", "result"],
            )?,
            config_reloads: counter_vec(
                registry,
                "wva_config_reloads_total",
                "ConfigMap reload attempts",
                &["configmap", "result"],
            )?,
            auth_requests: counter_vec(
                registry,
                "wva_metrics_auth_requests_total",
                "Authentication decisions on the metrics listener",
                &["result"],
            )?,
        })
    }

    /// Sets `wva_is_leader` to 1 or 0.
    pub(crate) fn set_leader(&self, leader: bool) {
        self.is_leader.set(i64::from(leader));
    }

    /// Records one finished control cycle: duration histogram and `wva_cycles_total`.
    pub fn observe_cycle(&self, trigger: CycleTrigger, outcome: Outcome, duration: Duration) {
        self.cycle_duration
            .with_label_values(&[trigger.as_str()])
            .observe(duration.as_secs_f64());
        self.cycles
            .with_label_values(&[trigger.as_str(), outcome.as_str()])
            .inc();
    }

    /// Records the duration of one phase of a cycle.
    pub fn observe_phase(&self, phase: CyclePhase, duration: Duration) {
        self.phase_duration
            .with_label_values(&[phase.as_str()])
            .observe(duration.as_secs_f64());
    }

    /// Sets `wva_last_successful_cycle_timestamp_seconds` to the time `finished_at`.
    pub fn set_last_successful_cycle(&self, finished_at: SystemTime) {
        let secs = finished_at
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        self.last_success
            .with_label_values(&[] as &[&str])
            .set(secs);
    }

    /// Records one query sent to Prometheus: its latency and, when it failed, its error kind
    /// (the collector's error variant in snake_case, e.g. `timeout`).
    pub fn observe_query(&self, query: &str, duration: Duration, error_kind: Option<&str>) {
        self.query_duration
            .with_label_values(&[query])
            .observe(duration.as_secs_f64());
        if let Some(kind) = error_kind {
            self.query_errors.with_label_values(&[query, kind]).inc();
        }
    }

    /// Records one metric-cache lookup of `query`.
    pub fn observe_cache(&self, query: &str, lookup: CacheLookup) {
        let family = match lookup {
            CacheLookup::Hit => &self.cache_hits,
            CacheLookup::Miss => &self.cache_misses,
        };
        family.with_label_values(&[query]).inc();
    }

    /// Sets the age of the newest sample used for a model.
    pub fn set_metric_age(&self, namespace: &str, model_id: &str, age: Duration) {
        self.metric_age
            .with_label_values(&[namespace, model_id])
            .set(age.as_secs_f64());
    }

    /// Removes a model's `wva_metric_age_seconds` series (the collector untracked it).
    pub fn remove_metric_age(&self, namespace: &str, model_id: &str) {
        // An absent series is not an error: the model may never have been measured.
        let _ = self.metric_age.remove_label_values(&[namespace, model_id]);
    }

    /// Counts one decision by action and reason.
    pub fn record_decision(&self, action: Action, reason: Reason) {
        self.decisions
            .with_label_values(&[action.as_str(), reason.as_str()])
            .inc();
    }

    /// Counts every decision of a cycle.
    pub fn record_decisions(&self, decisions: &[Decision]) {
        for decision in decisions {
            self.record_decision(decision.action, decision.reason);
        }
    }

    /// Counts one VariantAutoscaling status apply.
    pub fn record_status_patch(&self, outcome: Outcome) {
        self.status_patches
            .with_label_values(&[outcome.as_str()])
            .inc();
    }

    /// Counts one scale subresource patch.
    pub fn record_scale_patch(&self, mode: ScalePatchMode, result: ScalePatchResult) {
        self.scale_patches
            .with_label_values(&[mode.as_str(), result.as_str()])
            .inc();
    }

    /// Counts one ConfigMap reload attempt.
    pub fn record_config_reload(&self, configmap: ConfigMapKind, result: ReloadResult) {
        self.config_reloads
            .with_label_values(&[configmap.as_str(), result.as_str()])
            .inc();
    }

    /// Counts one authentication decision on the metrics listener.
    pub fn record_auth(&self, result: AuthResult) {
        self.auth_requests
            .with_label_values(&[result.as_str()])
            .inc();
    }
}
