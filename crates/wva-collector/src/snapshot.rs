//! What a source hands the engine each cycle (spec §2, §8).

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use wva_core::{Freshness, ReplicaMetrics};

use crate::catalogue::QueryName;
use crate::error::CollectorError;
use crate::model::{ModelKey, VariantRef};
use crate::replicas::Replicas;

/// A per-replica value of a [`ReplicaRecord`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Field {
    /// KV-cache usage, 0–1.
    KvCacheUsage,
    /// Waiting requests.
    QueueLength,
    /// Running requests.
    RunningRequests,
    /// Mean prompt tokens.
    AvgInputTokens,
    /// Mean generated tokens.
    AvgOutputTokens,
    /// Prefix-cache hit rate, 0–1.
    PrefixCacheHitRate,
    /// Finished requests per second.
    RequestRate,
    /// Mean time to first token, seconds.
    TtftMeanSeconds,
    /// Mean inter-token latency, seconds.
    ItlMeanSeconds,
    /// KV-cache geometry from `vllm:cache_config_info`.
    CacheConfig,
}

impl Field {
    /// All numeric fields (everything but `CacheConfig`).
    pub const NUMERIC: [Field; 9] = [
        Field::KvCacheUsage,
        Field::QueueLength,
        Field::RunningRequests,
        Field::AvgInputTokens,
        Field::AvgOutputTokens,
        Field::PrefixCacheHitRate,
        Field::RequestRate,
        Field::TtftMeanSeconds,
        Field::ItlMeanSeconds,
    ];

    /// The query that fills the field.
    pub fn query(self) -> QueryName {
        match self {
            Field::KvCacheUsage => QueryName::KvCacheUsage,
            Field::QueueLength => QueryName::QueueLength,
            Field::RunningRequests => QueryName::RunningRequests,
            Field::AvgInputTokens => QueryName::AvgInputTokens,
            Field::AvgOutputTokens => QueryName::AvgOutputTokens,
            Field::PrefixCacheHitRate => QueryName::PrefixCacheHitRate,
            Field::RequestRate => QueryName::RequestRate,
            Field::TtftMeanSeconds => QueryName::TtftMeanSeconds,
            Field::ItlMeanSeconds => QueryName::ItlMeanSeconds,
            Field::CacheConfig => QueryName::CacheConfigInfo,
        }
    }

    /// Checks a sample for this field (§2.3): non-finite values are `NonFinite`; KV usage and
    /// prefix hit rate must lie in [0, 1], everything else must be ≥ 0 (`OutOfRange`).
    pub fn validate(self, value: f64) -> Result<f64, AbsentReason> {
        if !value.is_finite() {
            return Err(AbsentReason::NonFinite);
        }
        let ok = match self {
            Field::KvCacheUsage | Field::PrefixCacheHitRate => (0.0..=1.0).contains(&value),
            _ => value >= 0.0,
        };
        if ok {
            Ok(value)
        } else {
            Err(AbsentReason::OutOfRange)
        }
    }
}

/// Why a value is `None`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AbsentReason {
    /// No series for this replica.
    NoSeries,
    /// The sample was NaN or ±Inf (dropped, never read as 0).
    NonFinite,
    /// The sample was outside the field's range.
    OutOfRange,
    /// A label value could not be parsed (`cache_config_info`).
    Unparsable,
    /// The query failed (see the model's `errors`).
    QueryFailed,
    /// The query's group is switched off.
    GroupDisabled,
}

/// A model-level value with its age and freshness.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Measured<T> {
    /// The value.
    pub value: T,
    /// Age of the value (seconds in JSON).
    #[serde(with = "crate::serde_secs")]
    pub age: Duration,
    /// Freshness class of `age`.
    pub freshness: Freshness,
}

/// Whether a model's data can be used (§2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Availability {
    /// Everything needed is present and current.
    Available,
    /// Usable, but something is missing, failed or served from a last-good copy.
    Partial,
    /// Not usable: the engine must hold its previous decision.
    Unavailable,
}

/// KV-cache geometry of a replica.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CacheConfigInfo {
    /// Number of KV-cache blocks on the GPU (> 0).
    pub num_gpu_blocks: u64,
    /// Tokens per block (> 0).
    pub block_size: u64,
}

/// EPP flow-control queue of a model (§1.3).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SchedulerQueue {
    /// Queued requests.
    pub size: Option<f64>,
    /// Queued bytes.
    pub bytes: Option<f64>,
    /// True when the value could come from another namespace serving the same model ID.
    pub namespace_ambiguous: bool,
}

/// Metrics of one live, mapped replica (pod).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReplicaRecord {
    /// Pod name.
    pub pod: String,
    /// Variant owning the pod.
    pub variant: VariantRef,
    /// Age of the pod's latest scrape (seconds in JSON).
    #[serde(with = "crate::serde_secs")]
    pub sample_age: Duration,
    /// Freshness class of `sample_age` (at least `Stale` when served from last-good).
    pub freshness: Freshness,
    /// KV-cache geometry, when known.
    pub cache_config: Option<CacheConfigInfo>,
    /// KV-cache usage, 0–1 (1-minute peak).
    pub kv_cache_usage: Option<f64>,
    /// Waiting requests (1-minute peak).
    pub queue_length: Option<f64>,
    /// Running requests.
    pub running_requests: Option<f64>,
    /// Mean prompt tokens per finished request.
    pub avg_input_tokens: Option<f64>,
    /// Mean generated tokens per finished request.
    pub avg_output_tokens: Option<f64>,
    /// Prefix-cache hit rate, 0–1.
    pub prefix_cache_hit_rate: Option<f64>,
    /// Finished requests per second.
    pub request_rate: Option<f64>,
    /// Mean time to first token, seconds.
    pub ttft_mean_seconds: Option<f64>,
    /// Mean inter-token latency, seconds.
    pub itl_mean_seconds: Option<f64>,
    /// Why each `None` field is absent.
    pub absent: BTreeMap<Field, AbsentReason>,
}

impl ReplicaRecord {
    /// A record with every value absent (`NoSeries`), to be filled with [`ReplicaRecord::set`].
    pub fn new(pod: impl Into<String>, variant: VariantRef, sample_age: Duration) -> Self {
        let mut absent = BTreeMap::new();
        for f in Field::NUMERIC {
            absent.insert(f, AbsentReason::NoSeries);
        }
        absent.insert(Field::CacheConfig, AbsentReason::NoSeries);
        ReplicaRecord {
            pod: pod.into(),
            variant,
            sample_age,
            freshness: Freshness::Fresh,
            cache_config: None,
            kv_cache_usage: None,
            queue_length: None,
            running_requests: None,
            avg_input_tokens: None,
            avg_output_tokens: None,
            prefix_cache_hit_rate: None,
            request_rate: None,
            ttft_mean_seconds: None,
            itl_mean_seconds: None,
            absent,
        }
    }

    fn slot(&mut self, field: Field) -> Option<&mut Option<f64>> {
        Some(match field {
            Field::KvCacheUsage => &mut self.kv_cache_usage,
            Field::QueueLength => &mut self.queue_length,
            Field::RunningRequests => &mut self.running_requests,
            Field::AvgInputTokens => &mut self.avg_input_tokens,
            Field::AvgOutputTokens => &mut self.avg_output_tokens,
            Field::PrefixCacheHitRate => &mut self.prefix_cache_hit_rate,
            Field::RequestRate => &mut self.request_rate,
            Field::TtftMeanSeconds => &mut self.ttft_mean_seconds,
            Field::ItlMeanSeconds => &mut self.itl_mean_seconds,
            Field::CacheConfig => return None,
        })
    }

    /// The value of a numeric field.
    pub fn get(&self, field: Field) -> Option<f64> {
        match field {
            Field::KvCacheUsage => self.kv_cache_usage,
            Field::QueueLength => self.queue_length,
            Field::RunningRequests => self.running_requests,
            Field::AvgInputTokens => self.avg_input_tokens,
            Field::AvgOutputTokens => self.avg_output_tokens,
            Field::PrefixCacheHitRate => self.prefix_cache_hit_rate,
            Field::RequestRate => self.request_rate,
            Field::TtftMeanSeconds => self.ttft_mean_seconds,
            Field::ItlMeanSeconds => self.itl_mean_seconds,
            Field::CacheConfig => None,
        }
    }

    /// Validates and stores a sample (§2.3). Returns the reason when it was dropped
    /// (`NonFinite`, `OutOfRange`), in which case the field stays `None` with that reason.
    pub fn set(&mut self, field: Field, value: f64) -> Result<(), AbsentReason> {
        let checked = field.validate(value);
        match checked {
            Ok(v) => {
                if let Some(slot) = self.slot(field) {
                    *slot = Some(v);
                    self.absent.remove(&field);
                }
                Ok(())
            }
            Err(reason) => {
                self.mark_absent(field, reason);
                Err(reason)
            }
        }
    }

    /// Sets a field to `None` with a reason.
    pub fn mark_absent(&mut self, field: Field, reason: AbsentReason) {
        if field == Field::CacheConfig {
            self.cache_config = None;
        } else if let Some(slot) = self.slot(field) {
            *slot = None;
        }
        self.absent.insert(field, reason);
    }

    /// Stores the KV geometry.
    pub fn set_cache_config(&mut self, info: CacheConfigInfo) {
        self.cache_config = Some(info);
        self.absent.remove(&Field::CacheConfig);
    }

    /// Converts to wva-core's [`ReplicaMetrics`] in `namespace`. A missing KV usage or queue
    /// length becomes NaN, which the core reads as unavailable (spec/core.md §1.2), never 0.
    pub fn to_replica_metrics(&self, namespace: &str) -> ReplicaMetrics {
        ReplicaMetrics {
            pod: self.pod.clone(),
            namespace: namespace.to_string(),
            variant: self.variant.name.clone(),
            kv_cache_usage: self.kv_cache_usage.unwrap_or(f64::NAN),
            queue_length: self.queue_length.unwrap_or(f64::NAN),
            num_gpu_blocks: self.cache_config.map(|c| c.num_gpu_blocks),
            block_size: self.cache_config.map(|c| c.block_size),
            avg_input_tokens: self.avg_input_tokens,
            avg_output_tokens: self.avg_output_tokens,
            prefix_cache_hit_rate: self.prefix_cache_hit_rate,
            request_rate: self.request_rate,
            freshness: self.freshness,
        }
    }
}

/// Everything collected for one model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelSnapshot {
    /// Whether the data can be used.
    pub availability: Availability,
    /// Freshness class of `age`.
    pub freshness: Freshness,
    /// The oldest replica age, or the fetch age with no replicas (seconds in JSON).
    #[serde(with = "crate::serde_secs")]
    pub age: Duration,
    /// True when served from the last successfully assembled copy because a fetch failed.
    pub served_from_last_good: bool,
    /// Live, mapped replicas by pod name.
    pub replicas: Replicas,
    /// Pods the directory lists that are not live, with the reason.
    pub missing_pods: Vec<(String, String)>,
    /// Requests finished in the retention window, when asked for and known.
    pub request_count: Option<Measured<f64>>,
    /// EPP queue, when the scheduler group is on and known.
    pub scheduler_queue: Option<Measured<SchedulerQueue>>,
    /// Errors of the queries that fed this model, sorted by query then message.
    pub errors: Vec<(QueryName, CollectorError)>,
}

impl ModelSnapshot {
    /// An `Unavailable` snapshot with no replicas that carries `errors`.
    pub fn unavailable(errors: Vec<(QueryName, CollectorError)>) -> Self {
        let mut s = ModelSnapshot {
            availability: Availability::Unavailable,
            freshness: Freshness::Unavailable,
            age: Duration::ZERO,
            served_from_last_good: false,
            replicas: Replicas::new(),
            missing_pods: Vec::new(),
            request_count: None,
            scheduler_queue: None,
            errors,
        };
        s.sort_errors();
        s
    }

    /// Sorts `errors` by query name, then message (the spec's order).
    pub fn sort_errors(&mut self) {
        self.errors.sort_by_key(|(name, e)| (*name, e.to_string()));
    }
}

/// Outcome of one (query, batch) read in a cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QueryOutcome {
    /// Answered from the cache.
    Hit,
    /// Fetched by this read.
    Miss,
    /// Joined a fetch already in flight.
    Coalesced,
    /// Failed (see `error`).
    Failed,
}

/// One (query, batch) read of a cycle.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueryReport {
    /// Which query.
    pub name: QueryName,
    /// The rendered PromQL text (or the scrape target for the scrape source).
    pub text: String,
    /// Hit, miss, coalesced or failed.
    pub outcome: QueryOutcome,
    /// How long this read waited (seconds in JSON).
    #[serde(with = "crate::serde_secs")]
    pub duration: Duration,
    /// Series in the answer.
    pub series: usize,
    /// The error of a failed read.
    pub error: Option<CollectorError>,
}

/// Current and ready replicas of a Deployment from kube-state-metrics (standalone mode).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeploymentReplicas {
    /// Namespace of the Deployment.
    pub namespace: String,
    /// Deployment name.
    pub deployment: String,
    /// `kube_deployment_status_replicas`, when present.
    pub replicas: Option<f64>,
    /// `kube_deployment_status_replicas_ready`, when present.
    pub ready_replicas: Option<f64>,
}

/// The result of one `collect`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CollectedSnapshot {
    /// Wall-clock time the snapshot was assembled.
    pub taken_at: SystemTime,
    /// `"prometheus"` or `"scrape"`.
    pub source: String,
    /// Every requested model (JSON: a list of `{model, snapshot}` objects, since JSON object keys
    /// must be strings).
    #[serde(with = "model_map")]
    pub models: BTreeMap<ModelKey, ModelSnapshot>,
    /// One report per (query, batch) read.
    pub queries: Vec<QueryReport>,
    /// kube-state-metrics Deployment counts (standalone group only), sorted.
    #[serde(default)]
    pub deployments: Vec<DeploymentReplicas>,
}

impl CollectedSnapshot {
    /// An empty snapshot from `source`, taken now.
    pub fn empty(source: impl Into<String>) -> Self {
        CollectedSnapshot {
            taken_at: SystemTime::now(),
            source: source.into(),
            models: BTreeMap::new(),
            queries: Vec::new(),
            deployments: Vec::new(),
        }
    }
}

mod model_map {
    use std::collections::BTreeMap;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use super::ModelSnapshot;
    use crate::model::ModelKey;

    #[derive(Serialize)]
    struct EntryRef<'a> {
        model: &'a ModelKey,
        snapshot: &'a ModelSnapshot,
    }

    #[derive(Deserialize)]
    struct Entry {
        model: ModelKey,
        snapshot: ModelSnapshot,
    }

    pub fn serialize<S: Serializer>(
        map: &BTreeMap<ModelKey, ModelSnapshot>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.collect_seq(
            map.iter()
                .map(|(model, snapshot)| EntryRef { model, snapshot }),
        )
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<BTreeMap<ModelKey, ModelSnapshot>, D::Error> {
        let v = Vec::<Entry>::deserialize(d)?;
        Ok(v.into_iter().map(|e| (e.model, e.snapshot)).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_finite_and_out_of_range_samples_are_dropped_with_their_reason() {
        let mut r = ReplicaRecord::new("p", VariantRef::new("ns", "v"), Duration::ZERO);
        assert_eq!(
            r.set(Field::KvCacheUsage, f64::NAN),
            Err(AbsentReason::NonFinite)
        );
        assert_eq!(
            r.set(Field::KvCacheUsage, 1.5),
            Err(AbsentReason::OutOfRange)
        );
        assert_eq!(r.kv_cache_usage, None);
        assert_eq!(r.absent[&Field::KvCacheUsage], AbsentReason::OutOfRange);
        assert_eq!(
            r.set(Field::QueueLength, f64::INFINITY),
            Err(AbsentReason::NonFinite)
        );
        assert_eq!(
            r.set(Field::QueueLength, -1.0),
            Err(AbsentReason::OutOfRange)
        );
        assert!(r.set(Field::QueueLength, 3.0).is_ok());
        assert_eq!(r.queue_length, Some(3.0));
        assert!(!r.absent.contains_key(&Field::QueueLength));
    }

    #[test]
    fn a_collected_snapshot_round_trips_through_json() {
        let mut snap = CollectedSnapshot::empty("prometheus");
        let mut m = ModelSnapshot::unavailable(vec![(
            QueryName::ReplicaLastSample,
            CollectorError::ShuttingDown,
        )]);
        let mut r =
            ReplicaRecord::new("p", VariantRef::new("ns", "v"), Duration::from_millis(1500));
        r.set(Field::KvCacheUsage, 0.5).unwrap();
        m.replicas.insert(r);
        snap.models.insert(ModelKey::new("ns", "m"), m);
        let json = serde_json::to_value(&snap).unwrap();
        assert_eq!(json["models"][0]["model"]["model_id"], "m");
        assert_eq!(
            json["models"][0]["snapshot"]["replicas"]["p"]["sample_age"],
            1.5
        );
        assert_eq!(
            json["models"][0]["snapshot"]["errors"][0][1]["kind"],
            "shutting_down"
        );
        let back: CollectedSnapshot = serde_json::from_value(json).unwrap();
        assert_eq!(back.models.len(), 1);
        assert_eq!(
            back.models[&ModelKey::new("ns", "m")].replicas["p"].kv_cache_usage,
            Some(0.5)
        );
    }

    #[test]
    fn missing_kv_becomes_nan_in_core_metrics_never_zero() {
        let r = ReplicaRecord::new("p", VariantRef::new("ns", "v"), Duration::ZERO);
        let m = r.to_replica_metrics("ns");
        assert!(m.kv_cache_usage.is_nan());
        assert!(m.queue_length.is_nan());
    }
}
