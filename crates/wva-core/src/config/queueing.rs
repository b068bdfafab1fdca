//! The `queueingModel` mapping of a saturation config entry (spec/core.md §7.6).
//!
//! The queueing-model optimizer itself is not built in this release; its configuration is
//! parsed, inherited and validated so that configs written for it are checked today.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

/// Allowed values of `queueingModel.saturationPolicy`.
pub const SATURATION_POLICIES: [&str; 4] = [
    "None",
    "PriorityExhaustive",
    "PriorityRoundRobin",
    "RoundRobin",
];

/// The `queueingModel` mapping as written; every key optional.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct QueueingModelEntry {
    /// Best-effort policy for unallocated models (global only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub saturation_policy: Option<String>,
    /// Run best effort once after all priorities (global only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delayed_best_effort: Option<bool>,
    /// Cost per GPU by normalised accelerator name (global only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accelerator_costs: Option<BTreeMap<String, f64>>,
    /// Service classes with per-model SLO targets (global only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_classes: Option<Vec<ServiceClass>>,
    /// The service class of the model(s) this entry applies to (default `Free`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_class: Option<String>,
    /// Performance parameters keyed by variant name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variants: Option<BTreeMap<String, VariantPerformance>>,
}

/// A service class: a priority and SLO targets per model.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServiceClass {
    /// Class name, non-empty and unique.
    pub name: String,
    /// 1 = highest .. 100 = lowest; values outside read as 100.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<i64>,
    /// Targets per model.
    #[serde(default)]
    pub targets: Vec<ServiceTarget>,
}

/// SLO targets of one model in a service class (0 or absent = not considered).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServiceTarget {
    /// Model the targets apply to.
    #[serde(rename = "modelID")]
    pub model_id: String,
    /// Time to first token, ms.
    #[serde(
        default,
        deserialize_with = "super::number::opt_number",
        skip_serializing_if = "Option::is_none"
    )]
    pub ttft: Option<f64>,
    /// Inter-token latency, ms.
    #[serde(
        default,
        deserialize_with = "super::number::opt_number",
        skip_serializing_if = "Option::is_none"
    )]
    pub itl: Option<f64>,
    /// Tokens per second floor.
    #[serde(
        default,
        deserialize_with = "super::number::opt_number",
        skip_serializing_if = "Option::is_none"
    )]
    pub tps: Option<f64>,
}

/// Performance parameters of one variant (α, β, γ in ms; N = maxBatchSize).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VariantPerformance {
    /// Base iteration time.
    #[serde(deserialize_with = "super::number::number")]
    pub alpha: f64,
    /// Compute slope.
    #[serde(deserialize_with = "super::number::number")]
    pub beta: f64,
    /// Memory-access slope.
    #[serde(deserialize_with = "super::number::number")]
    pub gamma: f64,
    /// Maximum batch size, 1–4096.
    pub max_batch_size: i64,
}

impl QueueingModelEntry {
    /// Names of the global-only keys this mapping sets, in schema order.
    pub(crate) fn global_only_keys(&self) -> Vec<&'static str> {
        let mut keys = Vec::new();
        if self.service_classes.is_some() {
            keys.push("queueingModel.serviceClasses");
        }
        if self.saturation_policy.is_some() {
            keys.push("queueingModel.saturationPolicy");
        }
        if self.delayed_best_effort.is_some() {
            keys.push("queueingModel.delayedBestEffort");
        }
        if self.accelerator_costs.is_some() {
            keys.push("queueingModel.acceleratorCosts");
        }
        keys
    }

    /// Completes this mapping from its parent's, per direct key (lists and maps wholesale).
    pub(crate) fn inherit(&self, parent: Option<&QueueingModelEntry>) -> QueueingModelEntry {
        let Some(p) = parent else {
            return self.clone();
        };
        QueueingModelEntry {
            saturation_policy: self
                .saturation_policy
                .clone()
                .or_else(|| p.saturation_policy.clone()),
            delayed_best_effort: self.delayed_best_effort.or(p.delayed_best_effort),
            accelerator_costs: self
                .accelerator_costs
                .clone()
                .or_else(|| p.accelerator_costs.clone()),
            service_classes: self
                .service_classes
                .clone()
                .or_else(|| p.service_classes.clone()),
            service_class: self
                .service_class
                .clone()
                .or_else(|| p.service_class.clone()),
            variants: self.variants.clone().or_else(|| p.variants.clone()),
        }
    }

    /// The §7.6 value checks; the first failure is returned.
    pub(crate) fn validate(&self) -> Result<(), String> {
        for (name, v) in self.variants.iter().flatten() {
            let prefix = format!("queueingModel.variants.{name}");
            if !(v.alpha.is_finite() && v.alpha > 0.0) {
                return Err(format!("{prefix}.alpha must be > 0, got {}", v.alpha));
            }
            if !(v.beta.is_finite() && v.beta >= 0.0) {
                return Err(format!("{prefix}.beta must be >= 0, got {}", v.beta));
            }
            if !(v.gamma.is_finite() && v.gamma >= 0.0) {
                return Err(format!("{prefix}.gamma must be >= 0, got {}", v.gamma));
            }
            if !(1..=4096).contains(&v.max_batch_size) {
                return Err(format!(
                    "{prefix}.maxBatchSize must be between 1 and 4096, got {}",
                    v.max_batch_size
                ));
            }
        }
        let mut seen = BTreeSet::new();
        for (i, class) in self.service_classes.iter().flatten().enumerate() {
            if class.name.is_empty() {
                return Err(format!(
                    "queueingModel.serviceClasses[{i}].name must not be empty"
                ));
            }
            if !seen.insert(class.name.as_str()) {
                return Err(format!("duplicate service class \"{}\"", class.name));
            }
            for (j, t) in class.targets.iter().enumerate() {
                for (field, value) in [("ttft", t.ttft), ("itl", t.itl), ("tps", t.tps)] {
                    if let Some(x) = value
                        && !(x.is_finite() && x >= 0.0)
                    {
                        return Err(format!(
                            "queueingModel.serviceClasses[{i}].targets[{j}].{field} must be >= 0, got {x}"
                        ));
                    }
                }
            }
        }
        for (name, cost) in self.accelerator_costs.iter().flatten() {
            if !(cost.is_finite() && *cost >= 0.0) {
                return Err(format!(
                    "queueingModel.acceleratorCosts.{name} must be >= 0, got {cost}"
                ));
            }
        }
        if let Some(policy) = &self.saturation_policy
            && !SATURATION_POLICIES.contains(&policy.as_str())
        {
            return Err(format!(
                "queueingModel.saturationPolicy must be one of None, PriorityExhaustive, PriorityRoundRobin, RoundRobin, got \"{policy}\""
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn perf(alpha: f64, beta: f64, gamma: f64, n: i64) -> VariantPerformance {
        VariantPerformance {
            alpha,
            beta,
            gamma,
            max_batch_size: n,
        }
    }

    fn with_variant(p: VariantPerformance) -> QueueingModelEntry {
        QueueingModelEntry {
            variants: Some(BTreeMap::from([("v".to_string(), p)])),
            ..Default::default()
        }
    }

    #[test]
    fn variant_parameters_are_range_checked_in_order() {
        let e = |p| with_variant(p).validate().unwrap_err();
        assert_eq!(
            e(perf(0.0, 0.0, 0.0, 1)),
            "queueingModel.variants.v.alpha must be > 0, got 0"
        );
        assert_eq!(
            e(perf(1.0, -0.5, 0.0, 1)),
            "queueingModel.variants.v.beta must be >= 0, got -0.5"
        );
        assert_eq!(
            e(perf(1.0, 0.0, -1.0, 1)),
            "queueingModel.variants.v.gamma must be >= 0, got -1"
        );
        assert_eq!(
            e(perf(1.0, 0.0, 0.0, 4097)),
            "queueingModel.variants.v.maxBatchSize must be between 1 and 4096, got 4097"
        );
        assert!(with_variant(perf(1.0, 0.0, 0.0, 4096)).validate().is_ok());
        assert!(with_variant(perf(1.0, 0.0, 0.0, 0)).validate().is_err());
    }

    #[test]
    fn service_classes_need_unique_non_empty_names_and_non_negative_targets() {
        let class = |name: &str, ttft| ServiceClass {
            name: name.to_string(),
            priority: Some(1),
            targets: vec![ServiceTarget {
                model_id: "m".into(),
                ttft,
                itl: None,
                tps: None,
            }],
        };
        let q = |classes| QueueingModelEntry {
            service_classes: Some(classes),
            ..Default::default()
        };
        assert_eq!(
            q(vec![class("", None)]).validate().unwrap_err(),
            "queueingModel.serviceClasses[0].name must not be empty"
        );
        assert_eq!(
            q(vec![class("a", None), class("a", None)])
                .validate()
                .unwrap_err(),
            "duplicate service class \"a\""
        );
        assert_eq!(
            q(vec![class("a", Some(-1.5))]).validate().unwrap_err(),
            "queueingModel.serviceClasses[0].targets[0].ttft must be >= 0, got -1.5"
        );
    }

    #[test]
    fn unknown_saturation_policy_and_negative_costs_are_rejected() {
        let q = QueueingModelEntry {
            saturation_policy: Some("Greedy".into()),
            ..Default::default()
        };
        assert_eq!(
            q.validate().unwrap_err(),
            "queueingModel.saturationPolicy must be one of None, PriorityExhaustive, PriorityRoundRobin, RoundRobin, got \"Greedy\""
        );
        let q = QueueingModelEntry {
            accelerator_costs: Some(BTreeMap::from([("H100".to_string(), -1.0)])),
            ..Default::default()
        };
        assert_eq!(
            q.validate().unwrap_err(),
            "queueingModel.acceleratorCosts.H100 must be >= 0, got -1"
        );
    }

    #[test]
    fn inheritance_is_per_direct_key() {
        let parent = QueueingModelEntry {
            service_class: Some("Premium".into()),
            saturation_policy: Some("None".into()),
            ..Default::default()
        };
        let child = QueueingModelEntry {
            service_class: Some("Free".into()),
            ..Default::default()
        };
        let done = child.inherit(Some(&parent));
        assert_eq!(done.service_class.as_deref(), Some("Free"));
        assert_eq!(done.saturation_policy.as_deref(), Some("None"));
    }
}
