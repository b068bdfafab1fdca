//! Per-replica metrics as the core consumes them (spec/core.md §1.2).

use serde::{Deserialize, Serialize};

use crate::Freshness;

/// The metrics of one replica (pod) of a variant, as handed to the core.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReplicaMetrics {
    /// Pod name; `(namespace, pod)` is unique.
    pub pod: String,
    /// Namespace of the pod and its variant.
    pub namespace: String,
    /// Name of the variant the pod belongs to.
    pub variant: String,
    /// Fraction of the KV cache in use, 0–1.
    pub kv_cache_usage: f64,
    /// Requests waiting in the queue.
    pub queue_length: f64,
    /// Number of KV-cache blocks on the GPU, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub num_gpu_blocks: Option<u64>,
    /// Tokens per KV-cache block, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub block_size: Option<u64>,
    /// Mean prompt tokens per finished request, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub avg_input_tokens: Option<f64>,
    /// Mean generated tokens per finished request, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub avg_output_tokens: Option<f64>,
    /// Prefix-cache hit rate, 0–1, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix_cache_hit_rate: Option<f64>,
    /// Completed requests per second, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_rate: Option<f64>,
    /// How recent the values are.
    #[serde(default)]
    pub freshness: Freshness,
}
