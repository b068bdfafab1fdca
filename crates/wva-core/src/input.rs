//! `CycleInput`: everything one cycle decides from, as JSON (spec/core.md §8), and its
//! validation.

use std::collections::{BTreeMap, HashSet};

use serde::{Deserialize, Serialize};

use crate::config::saturation::{SaturationConfig, SaturationEntry};
use crate::config::scale_to_zero::{ScaleToZeroConfig, ScaleToZeroEntry};
use crate::config::{ConfigIssue, DEFAULT_KEY};
use crate::state::CoreState;
use crate::timestamp::Timestamp;
use crate::{ReplicaMetrics, VariantState};

/// The input of one planning cycle.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CycleInput {
    /// The cycle's time; absent ⇒ the latest timestamp in `state`, else the epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub now: Option<Timestamp>,
    /// Saturation scaling config entries by ConfigMap key (may be empty).
    pub config: BTreeMap<String, SaturationEntry>,
    /// Scale-to-zero config entries by ConfigMap key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale_to_zero: Option<BTreeMap<String, ScaleToZeroEntry>>,
    /// Active variants.
    pub variants: Vec<VariantState>,
    /// Per-pod metrics.
    pub replicas: Vec<ReplicaMetrics>,
    /// Requests over the retention window, keyed `"<namespace>/<modelID>"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_counts: Option<BTreeMap<String, f64>>,
    /// Total GPUs per accelerator type; absent ⇒ no limiter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu_inventory: Option<BTreeMap<String, u64>>,
    /// State learned by earlier cycles.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<CoreState>,
}

/// Why an input was rejected: the JSON path (or config key) and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct InputError {
    /// JSON path of the offending value, e.g. `variants[3].cost` or `config["default"]`.
    pub path: String,
    /// The problem, naming the bad value and what is allowed.
    pub message: String,
}

impl InputError {
    fn new(path: impl Into<String>, message: impl Into<String>) -> InputError {
        InputError {
            path: path.into(),
            message: message.into(),
        }
    }
}

/// A validated input with its configs parsed and `now` resolved.
#[derive(Debug, Clone)]
pub(crate) struct Validated {
    pub(crate) now: Timestamp,
    pub(crate) saturation: SaturationConfig,
    pub(crate) scale_to_zero: ScaleToZeroConfig,
    /// Scale-to-zero warnings (do not fail the input).
    pub(crate) warnings: Vec<ConfigIssue>,
    /// `(namespace, modelID)` → request count.
    pub(crate) request_counts: BTreeMap<(String, String), f64>,
}

fn finite_non_negative(x: f64) -> bool {
    x.is_finite() && x >= 0.0
}

impl CycleInput {
    /// Decodes and validates a JSON document; errors name the JSON path.
    pub fn from_json(text: &str) -> Result<CycleInput, InputError> {
        let de = &mut serde_json::Deserializer::from_str(text);
        let input: CycleInput = serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            let message = e.inner().to_string();
            if path.is_empty() || path == "." {
                InputError::new("input", message)
            } else {
                InputError::new(path, message)
            }
        })?;
        input.validate()?;
        Ok(input)
    }

    /// Checks every rule of §8 beyond decoding.
    pub fn validate(&self) -> Result<(), InputError> {
        self.validated().map(|_| ())
    }

    /// Sets the scale-to-zero fallback (the operator flag) into the `default` entry unless it
    /// already sets `enable_scale_to_zero`, so that a replay needs no extra value.
    pub fn record_scale_to_zero_fallback(&mut self, enabled: bool) {
        let entries = self.scale_to_zero.get_or_insert_with(BTreeMap::new);
        let default = entries.entry(DEFAULT_KEY.to_string()).or_default();
        if default.enable_scale_to_zero.is_none() {
            default.enable_scale_to_zero = Some(enabled);
        }
    }

    /// Scale-to-zero warnings `(key, message)` of a valid input (they never fail it).
    pub fn config_warnings(&self) -> Result<Vec<ConfigIssue>, InputError> {
        self.validated().map(|v| v.warnings)
    }

    pub(crate) fn validated(&self) -> Result<Validated, InputError> {
        let mut seen = HashSet::with_capacity(self.variants.len());
        for (i, v) in self.variants.iter().enumerate() {
            for (field, value) in [
                ("name", &v.name),
                ("namespace", &v.namespace),
                ("modelID", &v.model_id),
            ] {
                if value.is_empty() {
                    return Err(InputError::new(
                        format!("variants[{i}].{field}"),
                        "must not be empty",
                    ));
                }
            }
            if !finite_non_negative(v.cost) {
                return Err(InputError::new(
                    format!("variants[{i}].cost"),
                    format!("must be a finite number >= 0, got {}", v.cost),
                ));
            }
            if !seen.insert((v.namespace.as_str(), v.name.as_str())) {
                return Err(InputError::new(
                    format!("variants[{i}]"),
                    format!("duplicate variant \"{}/{}\"", v.namespace, v.name),
                ));
            }
        }
        let mut seen = HashSet::with_capacity(self.replicas.len());
        for (i, r) in self.replicas.iter().enumerate() {
            for (field, value) in [
                ("pod", &r.pod),
                ("namespace", &r.namespace),
                ("variant", &r.variant),
            ] {
                if value.is_empty() {
                    return Err(InputError::new(
                        format!("replicas[{i}].{field}"),
                        "must not be empty",
                    ));
                }
            }
            if r.queue_length < 0.0 {
                return Err(InputError::new(
                    format!("replicas[{i}].queueLength"),
                    format!("must be >= 0, got {}", r.queue_length),
                ));
            }
            if let Some(rate) = r.request_rate
                && !finite_non_negative(rate)
            {
                return Err(InputError::new(
                    format!("replicas[{i}].requestRate"),
                    format!("must be a finite number >= 0, got {rate}"),
                ));
            }
            if !seen.insert((r.namespace.as_str(), r.pod.as_str())) {
                return Err(InputError::new(
                    format!("replicas[{i}]"),
                    format!("duplicate replica \"{}/{}\"", r.namespace, r.pod),
                ));
            }
        }
        let mut request_counts = BTreeMap::new();
        for (key, value) in self.request_counts.iter().flatten() {
            let Some((ns, model)) = key.split_once('/') else {
                return Err(InputError::new(
                    format!("requestCounts[\"{key}\"]"),
                    "key must be \"<namespace>/<modelID>\"",
                ));
            };
            if !finite_non_negative(*value) {
                return Err(InputError::new(
                    format!("requestCounts[\"{key}\"]"),
                    format!("must be a finite number >= 0, got {value}"),
                ));
            }
            request_counts.insert((ns.to_string(), model.to_string()), *value);
        }
        let (saturation, issues) = SaturationConfig::from_entries(&self.config);
        if let Some((key, message)) = issues.into_iter().next() {
            return Err(InputError::new(format!("config[\"{key}\"]"), message));
        }
        let empty = BTreeMap::new();
        let (scale_to_zero, rejected, warnings) =
            ScaleToZeroConfig::from_entries(self.scale_to_zero.as_ref().unwrap_or(&empty));
        if let Some((key, message)) = rejected.into_iter().next() {
            return Err(InputError::new(format!("scaleToZero[\"{key}\"]"), message));
        }
        let now = self
            .now
            .or_else(|| self.state.as_ref().and_then(CoreState::latest_timestamp))
            .unwrap_or(Timestamp::EPOCH);
        Ok(Validated {
            now,
            saturation,
            scale_to_zero,
            warnings,
            request_counts,
        })
    }
}
