//! The vLLM families the scrape source keeps, and the windows they are read over (spec §1.2).

use std::time::Duration;

/// Window of the KV-usage and queue-length peaks.
pub(crate) const PEAK_WINDOW: Duration = Duration::from_secs(60);
/// Window of the token means and the prefix hit rate.
pub(crate) const TOKEN_WINDOW: Duration = Duration::from_secs(300);
/// Window of the request rate, TTFT and ITL.
pub(crate) const LATENCY_WINDOW: Duration = Duration::from_secs(60);

/// A gauge family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Gauge {
    /// `vllm:num_requests_running`, summed over engines.
    Running,
    /// `vllm:num_requests_waiting`, peak over engines and time.
    Waiting,
    /// `vllm:kv_cache_usage_perc`, peak over engines and time.
    KvUsage,
}

impl Gauge {
    pub(crate) const ALL: [Gauge; 3] = [Gauge::Running, Gauge::Waiting, Gauge::KvUsage];

    pub(crate) fn metric(self) -> &'static str {
        match self {
            Gauge::Running => "vllm:num_requests_running",
            Gauge::Waiting => "vllm:num_requests_waiting",
            Gauge::KvUsage => "vllm:kv_cache_usage_perc",
        }
    }

    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

/// A counter family (histogram `_sum`/`_count` included); increases are summed per pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Counter {
    PromptSum,
    PromptCount,
    GenerationSum,
    GenerationCount,
    PrefixHits,
    PrefixQueries,
    Success,
    TtftSum,
    TtftCount,
    ItlSum,
    ItlCount,
    TpotSum,
    TpotCount,
}

impl Counter {
    pub(crate) const ALL: [Counter; 13] = [
        Counter::PromptSum,
        Counter::PromptCount,
        Counter::GenerationSum,
        Counter::GenerationCount,
        Counter::PrefixHits,
        Counter::PrefixQueries,
        Counter::Success,
        Counter::TtftSum,
        Counter::TtftCount,
        Counter::ItlSum,
        Counter::ItlCount,
        Counter::TpotSum,
        Counter::TpotCount,
    ];

    pub(crate) fn metric(self) -> &'static str {
        match self {
            Counter::PromptSum => "vllm:request_prompt_tokens_sum",
            Counter::PromptCount => "vllm:request_prompt_tokens_count",
            Counter::GenerationSum => "vllm:request_generation_tokens_sum",
            Counter::GenerationCount => "vllm:request_generation_tokens_count",
            Counter::PrefixHits => "vllm:prefix_cache_hits_total",
            Counter::PrefixQueries => "vllm:prefix_cache_queries_total",
            Counter::Success => "vllm:request_success_total",
            Counter::TtftSum => "vllm:time_to_first_token_seconds_sum",
            Counter::TtftCount => "vllm:time_to_first_token_seconds_count",
            Counter::ItlSum => "vllm:inter_token_latency_seconds_sum",
            Counter::ItlCount => "vllm:inter_token_latency_seconds_count",
            Counter::TpotSum => "vllm:time_per_output_token_seconds_sum",
            Counter::TpotCount => "vllm:time_per_output_token_seconds_count",
        }
    }

    /// The window this counter is read over (the request count's own window is extra).
    pub(crate) fn window(self) -> Duration {
        match self {
            Counter::PromptSum
            | Counter::PromptCount
            | Counter::GenerationSum
            | Counter::GenerationCount
            | Counter::PrefixHits
            | Counter::PrefixQueries => TOKEN_WINDOW,
            Counter::Success
            | Counter::TtftSum
            | Counter::TtftCount
            | Counter::ItlSum
            | Counter::ItlCount
            | Counter::TpotSum
            | Counter::TpotCount => LATENCY_WINDOW,
        }
    }

    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

/// `vllm:cache_config_info`: its labels are the data, and it has no `model_name` on real vLLM.
pub(crate) const CACHE_CONFIG_INFO: &str = "vllm:cache_config_info";

/// What a metric name is to the scrape source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kept {
    Gauge(Gauge),
    Counter(Counter),
    CacheConfig,
}

/// The family a sample name belongs to, if the source keeps it.
pub(crate) fn classify(name: &str) -> Option<Kept> {
    if !name.starts_with("vllm:") {
        return None;
    }
    if name == CACHE_CONFIG_INFO {
        return Some(Kept::CacheConfig);
    }
    if let Some(g) = Gauge::ALL.into_iter().find(|g| g.metric() == name) {
        return Some(Kept::Gauge(g));
    }
    Counter::ALL
        .into_iter()
        .find(|c| c.metric() == name)
        .map(Kept::Counter)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indexes_match_the_order_of_all() {
        for (i, g) in Gauge::ALL.into_iter().enumerate() {
            assert_eq!(g.index(), i);
        }
        for (i, c) in Counter::ALL.into_iter().enumerate() {
            assert_eq!(c.index(), i);
        }
    }

    #[test]
    fn only_catalogue_families_are_kept() {
        assert_eq!(
            classify("vllm:request_success_total"),
            Some(Kept::Counter(Counter::Success))
        );
        assert_eq!(classify("vllm:cache_config_info"), Some(Kept::CacheConfig));
        assert_eq!(classify("vllm:request_success_created"), None);
        assert_eq!(classify("vllm:time_to_first_token_seconds_bucket"), None);
        assert_eq!(classify("process_open_fds"), None);
    }
}
