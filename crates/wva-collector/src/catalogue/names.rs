//! Query names and groups (spec §1.2–1.3).

use std::fmt;

use serde::{Deserialize, Serialize};

/// A group of queries that is switched on or off as a whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QueryGroup {
    /// Liveness, KV usage, queue length, running requests (always on).
    Core,
    /// Token averages, prefix hit rate and KV geometry (saturation analyzer V2).
    SaturationV2,
    /// Request rate, TTFT and ITL (queueing-model analyzer).
    Queueing,
    /// Per-model request count over a retention window (scale to zero).
    ScaleToZero,
    /// EPP flow-control queue size and bytes (off by default).
    SchedulerQueue,
    /// kube-state-metrics Deployment replica counts (`run --standalone` only).
    Standalone,
}

impl QueryGroup {
    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            QueryGroup::Core => "core",
            QueryGroup::SaturationV2 => "saturation_v2",
            QueryGroup::Queueing => "queueing",
            QueryGroup::ScaleToZero => "scale_to_zero",
            QueryGroup::SchedulerQueue => "scheduler_queue",
            QueryGroup::Standalone => "standalone",
        }
    }
}

/// Every query of the catalogue (exhaustive).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QueryName {
    /// Raw sample time of `vllm:num_requests_running` per pod (liveness and age).
    ReplicaLastSample,
    /// 1-minute peak of `vllm:kv_cache_usage_perc`.
    KvCacheUsage,
    /// 1-minute peak of `vllm:num_requests_waiting`.
    QueueLength,
    /// `vllm:num_requests_running`.
    RunningRequests,
    /// `vllm:cache_config_info` labels (KV geometry).
    CacheConfigInfo,
    /// Mean prompt tokens per finished request over 5 minutes.
    AvgInputTokens,
    /// Mean generated tokens per finished request over 5 minutes.
    AvgOutputTokens,
    /// Prefix-cache hit rate over 5 minutes.
    PrefixCacheHitRate,
    /// Finished requests per second over 1 minute.
    RequestRate,
    /// Mean time to first token over 1 minute.
    TtftMeanSeconds,
    /// Mean inter-token latency over 1 minute.
    ItlMeanSeconds,
    /// Requests finished in the retention window, per model.
    ModelRequestCount,
    /// EPP flow-control queue size per model.
    SchedulerQueueSize,
    /// EPP flow-control queue bytes per model.
    SchedulerQueueBytes,
    /// kube-state-metrics `kube_deployment_status_replicas`.
    DeploymentReplicas,
    /// kube-state-metrics `kube_deployment_status_replicas_ready`.
    DeploymentReadyReplicas,
}

impl QueryName {
    /// All names, in catalogue order.
    pub const ALL: [QueryName; 16] = [
        QueryName::ReplicaLastSample,
        QueryName::KvCacheUsage,
        QueryName::QueueLength,
        QueryName::RunningRequests,
        QueryName::CacheConfigInfo,
        QueryName::AvgInputTokens,
        QueryName::AvgOutputTokens,
        QueryName::PrefixCacheHitRate,
        QueryName::RequestRate,
        QueryName::TtftMeanSeconds,
        QueryName::ItlMeanSeconds,
        QueryName::ModelRequestCount,
        QueryName::SchedulerQueueSize,
        QueryName::SchedulerQueueBytes,
        QueryName::DeploymentReplicas,
        QueryName::DeploymentReadyReplicas,
    ];

    /// The per-replica queries (§1.2), in catalogue order.
    pub const PER_REPLICA: [QueryName; 11] = [
        QueryName::ReplicaLastSample,
        QueryName::KvCacheUsage,
        QueryName::QueueLength,
        QueryName::RunningRequests,
        QueryName::CacheConfigInfo,
        QueryName::AvgInputTokens,
        QueryName::AvgOutputTokens,
        QueryName::PrefixCacheHitRate,
        QueryName::RequestRate,
        QueryName::TtftMeanSeconds,
        QueryName::ItlMeanSeconds,
    ];

    /// The spec's name, e.g. `kv_cache_usage`.
    pub fn as_str(self) -> &'static str {
        match self {
            QueryName::ReplicaLastSample => "replica_last_sample",
            QueryName::KvCacheUsage => "kv_cache_usage",
            QueryName::QueueLength => "queue_length",
            QueryName::RunningRequests => "running_requests",
            QueryName::CacheConfigInfo => "cache_config_info",
            QueryName::AvgInputTokens => "avg_input_tokens",
            QueryName::AvgOutputTokens => "avg_output_tokens",
            QueryName::PrefixCacheHitRate => "prefix_cache_hit_rate",
            QueryName::RequestRate => "request_rate",
            QueryName::TtftMeanSeconds => "ttft_mean_seconds",
            QueryName::ItlMeanSeconds => "itl_mean_seconds",
            QueryName::ModelRequestCount => "model_request_count",
            QueryName::SchedulerQueueSize => "scheduler_queue_size",
            QueryName::SchedulerQueueBytes => "scheduler_queue_bytes",
            QueryName::DeploymentReplicas => "deployment_replicas",
            QueryName::DeploymentReadyReplicas => "deployment_ready_replicas",
        }
    }

    /// The group the query belongs to.
    pub fn group(self) -> QueryGroup {
        match self {
            QueryName::ReplicaLastSample
            | QueryName::KvCacheUsage
            | QueryName::QueueLength
            | QueryName::RunningRequests => QueryGroup::Core,
            QueryName::CacheConfigInfo
            | QueryName::AvgInputTokens
            | QueryName::AvgOutputTokens
            | QueryName::PrefixCacheHitRate => QueryGroup::SaturationV2,
            QueryName::RequestRate | QueryName::TtftMeanSeconds | QueryName::ItlMeanSeconds => {
                QueryGroup::Queueing
            }
            QueryName::ModelRequestCount => QueryGroup::ScaleToZero,
            QueryName::SchedulerQueueSize | QueryName::SchedulerQueueBytes => {
                QueryGroup::SchedulerQueue
            }
            QueryName::DeploymentReplicas | QueryName::DeploymentReadyReplicas => {
                QueryGroup::Standalone
            }
        }
    }

    /// The record field this per-replica query fills, if any.
    pub fn field(self) -> Option<crate::snapshot::Field> {
        use crate::snapshot::Field;
        Some(match self {
            QueryName::KvCacheUsage => Field::KvCacheUsage,
            QueryName::QueueLength => Field::QueueLength,
            QueryName::RunningRequests => Field::RunningRequests,
            QueryName::CacheConfigInfo => Field::CacheConfig,
            QueryName::AvgInputTokens => Field::AvgInputTokens,
            QueryName::AvgOutputTokens => Field::AvgOutputTokens,
            QueryName::PrefixCacheHitRate => Field::PrefixCacheHitRate,
            QueryName::RequestRate => Field::RequestRate,
            QueryName::TtftMeanSeconds => Field::TtftMeanSeconds,
            QueryName::ItlMeanSeconds => Field::ItlMeanSeconds,
            _ => return None,
        })
    }
}

impl fmt::Display for QueryName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
