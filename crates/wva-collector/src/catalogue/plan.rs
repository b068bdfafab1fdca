//! Batching the tracked set into selectors and rendering the exact PromQL texts (spec §1.2–1.4).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use wva_core::format_prometheus_duration;

use super::escape::alternation;
use super::{CatalogueConfig, QueryGroup, QueryName};
use crate::error::CollectorError;
use crate::model::{ModelKey, ModelRequest};

/// The tracked models with their optional request-count retention, sorted by key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrackedSet {
    /// Model → retention of `model_request_count` (`None`: not asked).
    pub models: BTreeMap<ModelKey, Option<Duration>>,
}

impl TrackedSet {
    /// A set from requests (a later duplicate key overrides an earlier one).
    pub fn from_requests(requests: &[ModelRequest]) -> Self {
        TrackedSet {
            models: requests
                .iter()
                .map(|r| (r.key.clone(), r.retention))
                .collect(),
        }
    }
}

/// Which form of selector a batch uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Selector {
    /// `namespace=~"…",model_name=~"…"`.
    Full,
    /// `namespace=~"…"` alone (the model alternation did not fit).
    NamespaceOnly,
}

/// One batch: a set of tracked models sharing one selector text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    /// The tracked models the batch covers.
    pub keys: Vec<ModelKey>,
    /// Selector form.
    pub selector: Selector,
    /// `{SEL}` contents.
    pub sel: String,
    /// `{NSSEL}` contents.
    pub nssel: String,
    /// `{MSEL}` contents.
    pub msel: String,
    /// The escaped model alternation `<MRE>`.
    pub mre: String,
}

/// One query of the plan: its name, batch, retention and exact text (the cache key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedQuery {
    /// Query name.
    pub name: QueryName,
    /// The batch it reads.
    pub batch: Arc<Batch>,
    /// Retention of a `model_request_count` query.
    pub retention: Option<Duration>,
    /// The rendered PromQL.
    pub text: Arc<str>,
}

/// Everything one refresh sends.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BatchPlan {
    /// The per-replica batches (B of them).
    pub batches: Vec<Arc<Batch>>,
    /// Distinct queries, in catalogue then batch order; identical texts appear once.
    pub queries: Vec<PlannedQuery>,
    /// Models that cannot be queried.
    pub invalid: Vec<(ModelKey, CollectorError)>,
}

/// Renders and batches queries; all methods are pure.
#[derive(Debug, Clone, Default)]
pub struct QueryCatalogue {
    config: CatalogueConfig,
}

impl QueryCatalogue {
    /// A catalogue for this configuration.
    pub fn new(config: CatalogueConfig) -> Self {
        QueryCatalogue { config }
    }

    /// The configuration.
    pub fn config(&self) -> &CatalogueConfig {
        &self.config
    }

    /// Whether a query's group is on.
    pub fn enabled(&self, name: QueryName) -> bool {
        self.config.enabled(name.group())
    }

    /// Checks that a model can be queried at all (§1.1, §1.4).
    pub fn validate(&self, key: &ModelKey) -> Result<(), CollectorError> {
        let invalid = |reason: &str| CollectorError::InvalidModel {
            key: key.clone(),
            reason: reason.to_string(),
        };
        if key.model_id.is_empty() {
            return Err(invalid("the model ID is empty"));
        }
        if key.namespace.is_empty() {
            return Err(invalid("the namespace is empty"));
        }
        let one = self.batch(std::slice::from_ref(key));
        if one.is_none() {
            return Err(invalid(&format!(
                "its selector is longer than {} bytes",
                self.config.selector_max_bytes
            )));
        }
        Ok(())
    }

    fn ns_sel(&self, nsre: &str) -> String {
        format!("{}=~\"{}\"", self.config.namespace_label, nsre)
    }

    /// A batch for these keys if some selector fits.
    fn batch(&self, keys: &[ModelKey]) -> Option<Batch> {
        let nsre = alternation(keys.iter().map(|k| k.namespace.as_str()));
        let mre = alternation(keys.iter().map(|k| k.model_id.as_str()));
        let nssel = self.ns_sel(&nsre);
        let full = format!("{nssel},model_name=~\"{mre}\"");
        let max = self.config.selector_max_bytes;
        let (selector, sel) = if full.len() <= max {
            (Selector::Full, full)
        } else if nssel.len() <= max {
            (Selector::NamespaceOnly, nssel.clone())
        } else {
            return None;
        };
        Some(Batch {
            keys: keys.to_vec(),
            selector,
            sel,
            msel: format!("target_model_name=~\"{mre}\""),
            nssel,
            mre,
        })
    }

    /// Cuts sorted, valid keys into batches: one if possible, else greedily by namespace.
    fn batches(&self, keys: &[ModelKey]) -> Vec<Batch> {
        if keys.is_empty() {
            return Vec::new();
        }
        if let Some(b) = self.batch(keys) {
            return vec![b];
        }
        let mut by_ns: BTreeMap<&str, Vec<ModelKey>> = BTreeMap::new();
        for k in keys {
            by_ns
                .entry(k.namespace.as_str())
                .or_default()
                .push(k.clone());
        }
        let mut out = Vec::new();
        let mut current: Vec<ModelKey> = Vec::new();
        let mut current_batch: Option<Batch> = None;
        for (_, ks) in by_ns {
            let mut candidate = current.clone();
            candidate.extend(ks.iter().cloned());
            match self.batch(&candidate) {
                Some(b) => {
                    current = candidate;
                    current_batch = Some(b);
                }
                None => {
                    if let Some(b) = current_batch.take() {
                        out.push(b);
                    }
                    // A single namespace always fits here: each key was validated alone, and a
                    // namespace-only selector does not grow with its models.
                    current_batch = self.batch(&ks);
                    current = ks;
                }
            }
        }
        if let Some(b) = current_batch {
            out.push(b);
        }
        out
    }

    /// Plans one refresh of the tracked set.
    pub fn plan(&self, tracked: &TrackedSet) -> BatchPlan {
        let mut invalid = Vec::new();
        let mut valid: Vec<ModelKey> = Vec::new();
        let mut by_retention: BTreeMap<Duration, Vec<ModelKey>> = BTreeMap::new();
        for (key, retention) in &tracked.models {
            match self.validate(key) {
                Ok(()) => {
                    valid.push(key.clone());
                    if let Some(r) = retention {
                        by_retention.entry(*r).or_default().push(key.clone());
                    }
                }
                Err(e) => invalid.push((key.clone(), e)),
            }
        }
        let batches: Vec<Arc<Batch>> = self.batches(&valid).into_iter().map(Arc::new).collect();
        let mut queries = Vec::new();
        let mut seen: BTreeSet<(QueryName, Arc<str>)> = BTreeSet::new();
        let mut push = |q: PlannedQuery, queries: &mut Vec<PlannedQuery>| {
            if seen.insert((q.name, q.text.clone())) {
                queries.push(q);
            }
        };
        for name in QueryName::PER_REPLICA {
            if !self.enabled(name) {
                continue;
            }
            for b in &batches {
                let text: Arc<str> = Arc::from(self.render(name, b));
                push(
                    PlannedQuery {
                        name,
                        batch: b.clone(),
                        retention: None,
                        text,
                    },
                    &mut queries,
                );
            }
        }
        if self.config.enabled(QueryGroup::ScaleToZero) {
            for (r, keys) in &by_retention {
                for b in self.batches(keys) {
                    let b = Arc::new(b);
                    let text: Arc<str> = Arc::from(self.render_request_count(&b, *r));
                    push(
                        PlannedQuery {
                            name: QueryName::ModelRequestCount,
                            batch: b,
                            retention: Some(*r),
                            text,
                        },
                        &mut queries,
                    );
                }
            }
        }
        for (group, names) in [
            (
                QueryGroup::SchedulerQueue,
                [
                    QueryName::SchedulerQueueSize,
                    QueryName::SchedulerQueueBytes,
                ],
            ),
            (
                QueryGroup::Standalone,
                [
                    QueryName::DeploymentReplicas,
                    QueryName::DeploymentReadyReplicas,
                ],
            ),
        ] {
            if !self.config.enabled(group) {
                continue;
            }
            for name in names {
                for b in &batches {
                    let text: Arc<str> = Arc::from(self.render(name, b));
                    push(
                        PlannedQuery {
                            name,
                            batch: b.clone(),
                            retention: None,
                            text,
                        },
                        &mut queries,
                    );
                }
            }
        }
        BatchPlan {
            batches,
            queries,
            invalid,
        }
    }

    /// `model_request_count` for one batch and retention window.
    pub fn render_request_count(&self, batch: &Batch, retention: Duration) -> String {
        format!(
            "sum by ({ns}, model_name) (increase(vllm:request_success_total{{{sel}}}[{r}]))",
            ns = self.config.namespace_label,
            sel = batch.sel,
            r = format_prometheus_duration(retention)
        )
    }

    /// The exact PromQL of a query for a batch. `model_request_count` uses a 1-hour window here;
    /// use [`QueryCatalogue::render_request_count`] for another retention.
    pub fn render(&self, name: QueryName, batch: &Batch) -> String {
        let ns = &self.config.namespace_label;
        let pod = &self.config.pod_label;
        let sel = &batch.sel;
        let by = format!("by ({ns}, model_name, {pod})");
        let ratio = |num: &str, den: &str, w: &str| {
            format!("sum {by} (rate({num}{{{sel}}}[{w}])) / sum {by} (rate({den}{{{sel}}}[{w}]))")
        };
        match name {
            QueryName::ReplicaLastSample => {
                format!("max {by} (timestamp(vllm:num_requests_running{{{sel}}}))")
            }
            QueryName::KvCacheUsage => {
                format!("max {by} (max_over_time(vllm:kv_cache_usage_perc{{{sel}}}[1m]))")
            }
            QueryName::QueueLength => {
                format!("max {by} (max_over_time(vllm:num_requests_waiting{{{sel}}}[1m]))")
            }
            QueryName::RunningRequests => format!("sum {by} (vllm:num_requests_running{{{sel}}})"),
            QueryName::CacheConfigInfo => format!(
                "max by ({ns}, {pod}, num_gpu_blocks, block_size) (vllm:cache_config_info{{{}}})",
                batch.nssel
            ),
            QueryName::AvgInputTokens => ratio(
                "vllm:request_prompt_tokens_sum",
                "vllm:request_prompt_tokens_count",
                "5m",
            ),
            QueryName::AvgOutputTokens => ratio(
                "vllm:request_generation_tokens_sum",
                "vllm:request_generation_tokens_count",
                "5m",
            ),
            QueryName::PrefixCacheHitRate => ratio(
                "vllm:prefix_cache_hits_total",
                "vllm:prefix_cache_queries_total",
                "5m",
            ),
            QueryName::RequestRate => {
                format!("sum {by} (rate(vllm:request_success_total{{{sel}}}[1m]))")
            }
            QueryName::TtftMeanSeconds => ratio(
                "vllm:time_to_first_token_seconds_sum",
                "vllm:time_to_first_token_seconds_count",
                "1m",
            ),
            QueryName::ItlMeanSeconds => format!(
                "({}) or ({})",
                ratio(
                    "vllm:inter_token_latency_seconds_sum",
                    "vllm:inter_token_latency_seconds_count",
                    "1m"
                ),
                ratio(
                    "vllm:time_per_output_token_seconds_sum",
                    "vllm:time_per_output_token_seconds_count",
                    "1m"
                )
            ),
            QueryName::ModelRequestCount => {
                self.render_request_count(batch, Duration::from_secs(3600))
            }
            QueryName::SchedulerQueueSize => {
                scheduler(batch, "inference_extension_flow_control_queue_size")
            }
            QueryName::SchedulerQueueBytes => {
                scheduler(batch, "inference_extension_flow_control_queue_bytes")
            }
            QueryName::DeploymentReplicas => format!(
                "max by ({ns}, deployment) (kube_deployment_status_replicas{{{}}})",
                batch.nssel
            ),
            QueryName::DeploymentReadyReplicas => format!(
                "max by ({ns}, deployment) (kube_deployment_status_replicas_ready{{{}}})",
                batch.nssel
            ),
        }
    }
}

fn scheduler(batch: &Batch, metric: &str) -> String {
    format!(
        "sum by (target_model_name) ({metric}{{{msel}}}) or sum by (target_model_name) (label_replace({metric}{{target_model_name=\"\",model_name=~\"{mre}\"}}, \"target_model_name\", \"$1\", \"model_name\", \"(.*)\"))",
        msel = batch.msel,
        mre = batch.mre
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tracked(n: usize, ns: &str) -> TrackedSet {
        TrackedSet {
            models: (0..n)
                .map(|i| (ModelKey::new(ns, format!("model-{i:04}")), None))
                .collect(),
        }
    }

    #[test]
    fn default_catalogue_renders_eleven_queries_for_one_batch() {
        let c = QueryCatalogue::new(CatalogueConfig::default());
        let plan = c.plan(&tracked(10, "ns"));
        assert_eq!(plan.batches.len(), 1);
        assert_eq!(plan.queries.len(), 11);
        assert_eq!(
            &*plan.queries[0].text,
            "max by (namespace, model_name, pod) (timestamp(vllm:num_requests_running{namespace=~\"ns\",model_name=~\"model-0000|model-0001|model-0002|model-0003|model-0004|model-0005|model-0006|model-0007|model-0008|model-0009\"}))"
        );
    }

    #[test]
    fn thousand_models_fall_back_to_a_namespace_only_selector() {
        let c = QueryCatalogue::new(CatalogueConfig::default());
        let plan = c.plan(&tracked(1000, "ns"));
        assert_eq!(plan.batches.len(), 1);
        assert_eq!(plan.batches[0].selector, Selector::NamespaceOnly);
        assert_eq!(plan.batches[0].sel, "namespace=~\"ns\"");
    }

    #[test]
    fn retention_renders_with_core_duration_format_and_batches_per_retention() {
        let c = QueryCatalogue::new(CatalogueConfig::with_groups([QueryGroup::ScaleToZero]));
        let mut t = tracked(3, "ns");
        for (i, v) in t.models.values_mut().enumerate() {
            *v = Some(Duration::from_secs(if i == 0 { 900 } else { 86_400 }));
        }
        let plan = c.plan(&t);
        let counts: Vec<_> = plan
            .queries
            .iter()
            .filter(|q| q.name == QueryName::ModelRequestCount)
            .map(|q| q.text.to_string())
            .collect();
        assert_eq!(counts.len(), 2);
        assert!(counts[0].ends_with("[15m]))"), "{}", counts[0]);
        assert!(counts[1].ends_with("[1d]))"));
        assert_eq!(plan.queries.len(), 6);
    }

    #[test]
    fn empty_and_oversized_ids_are_invalid() {
        let c = QueryCatalogue::new(CatalogueConfig {
            selector_max_bytes: 64,
            ..CatalogueConfig::default()
        });
        let mut t = tracked(1, "ns");
        t.models.insert(ModelKey::new("ns", ""), None);
        t.models.insert(ModelKey::new("x".repeat(80), "m"), None);
        let plan = c.plan(&t);
        assert_eq!(plan.invalid.len(), 2);
        assert_eq!(plan.batches.len(), 1);
    }

    #[test]
    fn namespaces_beyond_the_limit_split_greedily() {
        let c = QueryCatalogue::new(CatalogueConfig {
            selector_max_bytes: 60,
            ..CatalogueConfig::default()
        });
        let mut t = TrackedSet::default();
        for ns in [
            "alpha-namespace",
            "beta-namespace",
            "gamma-namespace",
            "delta-namespace",
        ] {
            t.models.insert(ModelKey::new(ns, "m"), None);
        }
        let plan = c.plan(&t);
        assert!(plan.batches.len() > 1);
        let covered: usize = plan.batches.iter().map(|b| b.keys.len()).sum();
        assert_eq!(covered, 4);
        assert!(plan.batches.iter().all(|b| b.sel.len() <= 60));
    }
}
