//! Model discovery for operators' tools (`wva-manager collect` without `--model`).

use std::collections::BTreeSet;

use crate::catalogue::alternation;
use crate::error::CollectorError;
use crate::model::ModelKey;

use super::source::PrometheusSource;

impl PrometheusSource {
    /// The PromQL that lists `(namespace, model_name)` pairs of live vLLM pods, optionally
    /// restricted to namespaces and model IDs (empty = any).
    pub fn discovery_query(&self, namespaces: &[String], models: &[String]) -> String {
        let ns = &self.catalogue().config().namespace_label;
        let mut matchers = Vec::new();
        if !namespaces.is_empty() {
            matchers.push(format!(
                "{ns}=~\"{}\"",
                alternation(namespaces.iter().map(String::as_str))
            ));
        }
        if models.is_empty() {
            matchers.push("model_name!=\"\"".to_string());
        } else {
            matchers.push(format!(
                "model_name=~\"{}\"",
                alternation(models.iter().map(String::as_str))
            ));
        }
        format!(
            "count by ({ns}, model_name) (vllm:num_requests_running{{{}}})",
            matchers.join(",")
        )
    }

    /// Lists the models that have live `vllm:num_requests_running` series (one query, sent
    /// through the breaker-free path with retries). Sorted by (namespace, model).
    pub async fn discover_models(
        &self,
        namespaces: &[String],
        models: &[String],
    ) -> Result<Vec<ModelKey>, CollectorError> {
        let text = self.discovery_query(namespaces, models);
        let answer = self.fetcher.fetch_raw("discover_models", &text).await?;
        let ns = self.catalogue().config().namespace_label.as_str();
        let keys: BTreeSet<ModelKey> = answer
            .samples
            .iter()
            .filter_map(|s| Some(ModelKey::new(s.label(ns)?, s.label("model_name")?)))
            .filter(|k| !k.model_id.is_empty())
            .collect();
        Ok(keys.into_iter().collect())
    }
}
