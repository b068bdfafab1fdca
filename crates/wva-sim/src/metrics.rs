//! The metric state of one replica: gauges, counters and histograms (never decreasing).

use crate::histogram::{
    Histogram, ITL_BUCKETS, LATENCY_BUCKETS, TTFT_BUCKETS, iteration_token_buckets,
    one_two_five_buckets,
};
use serde::Serialize;
use std::sync::Arc;

/// Why a request finished (the `finished_reason` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    /// Reached its natural end.
    Stop,
    /// Capped by `max_tokens` / `max_model_len`.
    Length,
    /// Aborted (drain timeout).
    Abort,
    /// Could never be scheduled.
    Error,
    /// Repetition (never produced by the sim; the series exists as in vLLM).
    Repetition,
}

impl FinishReason {
    /// All reasons, in label order.
    pub const ALL: [FinishReason; 5] = [
        FinishReason::Abort,
        FinishReason::Error,
        FinishReason::Length,
        FinishReason::Repetition,
        FinishReason::Stop,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            FinishReason::Stop => "stop",
            FinishReason::Length => "length",
            FinishReason::Abort => "abort",
            FinishReason::Error => "error",
            FinishReason::Repetition => "repetition",
        }
    }

    fn index(self) -> usize {
        match self {
            FinishReason::Abort => 0,
            FinishReason::Error => 1,
            FinishReason::Length => 2,
            FinishReason::Repetition => 3,
            FinishReason::Stop => 4,
        }
    }
}

/// Every metric of one replica, as of its last step.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplicaMetrics {
    /// `vllm:num_requests_running`.
    pub running: u64,
    /// `vllm:num_requests_waiting`.
    pub waiting: u64,
    /// `vllm:kv_cache_usage_perc` (0..1).
    pub kv_usage: f64,
    /// `vllm:request_success_total` by reason ([`FinishReason::ALL`] order).
    pub success: [u64; 5],
    /// `vllm:prompt_tokens_total`.
    pub prompt_tokens: u64,
    /// `vllm:generation_tokens_total`.
    pub generation_tokens: u64,
    /// `vllm:num_preemptions_total`.
    pub preemptions: u64,
    /// `vllm:prefix_cache_queries_total`.
    pub prefix_queries: u64,
    /// `vllm:prefix_cache_hits_total`.
    pub prefix_hits: u64,
    /// `vllm:request_prompt_tokens`.
    pub prompt_tokens_hist: Histogram,
    /// `vllm:request_generation_tokens`.
    pub generation_tokens_hist: Histogram,
    /// `vllm:time_to_first_token_seconds`.
    pub ttft: Histogram,
    /// `vllm:inter_token_latency_seconds`.
    pub itl: Histogram,
    /// `vllm:request_time_per_output_token_seconds`.
    pub tpot: Histogram,
    /// `vllm:e2e_request_latency_seconds`.
    pub e2e: Histogram,
    /// `vllm:request_queue_time_seconds`.
    pub queue: Histogram,
    /// `vllm:request_prefill_time_seconds`.
    pub prefill: Histogram,
    /// `vllm:request_decode_time_seconds`.
    pub decode: Histogram,
    /// `vllm:request_inference_time_seconds`.
    pub inference: Histogram,
    /// `vllm:iteration_tokens_total`.
    pub iteration_tokens: Histogram,
}

impl ReplicaMetrics {
    /// All series at 0, token histograms bucketed 1-2-5 up to `max_model_len`.
    pub fn new(max_model_len: u32) -> Self {
        let tokens = one_two_five_buckets(max_model_len);
        let ttft: Arc<[f64]> = TTFT_BUCKETS.into();
        let itl: Arc<[f64]> = ITL_BUCKETS.into();
        let lat: Arc<[f64]> = LATENCY_BUCKETS.into();
        ReplicaMetrics {
            running: 0,
            waiting: 0,
            kv_usage: 0.0,
            success: [0; 5],
            prompt_tokens: 0,
            generation_tokens: 0,
            preemptions: 0,
            prefix_queries: 0,
            prefix_hits: 0,
            prompt_tokens_hist: Histogram::new(tokens.clone()),
            generation_tokens_hist: Histogram::new(tokens),
            ttft: Histogram::new(ttft),
            itl: Histogram::new(itl.clone()),
            tpot: Histogram::new(itl),
            e2e: Histogram::new(lat.clone()),
            queue: Histogram::new(lat.clone()),
            prefill: Histogram::new(lat.clone()),
            decode: Histogram::new(lat.clone()),
            inference: Histogram::new(lat),
            iteration_tokens: Histogram::new(iteration_token_buckets()),
        }
    }

    /// Counts one finished request.
    pub fn count_finish(&mut self, reason: FinishReason) {
        self.success[reason.index()] += 1;
    }

    /// Finished requests for one reason.
    pub fn finished(&self, reason: FinishReason) -> u64 {
        self.success[reason.index()]
    }
}
