//! The condition catalogue of `VariantAutoscaling` status (spec/k8s.md §2.2): every type,
//! reason and message, exactly.

use crate::accelerator::{AcceleratorResolution, AcceleratorSource};
use crate::crd::ScaleTargetRef;
use crate::labels::ACCELERATOR_LABEL;

/// Condition type: the scale target was found and this VA owns it.
pub const TARGET_RESOLVED: &str = "TargetResolved";
/// Condition type: the accelerator is known.
pub const ACCELERATOR_RESOLVED: &str = "AcceleratorResolved";
/// Condition type: saturation metrics are available.
pub const METRICS_AVAILABLE: &str = "MetricsAvailable";
/// Condition type: the last optimisation ran.
pub const OPTIMIZATION_READY: &str = "OptimizationReady";

/// The four condition types this manager owns, sorted.
pub const OWNED_TYPES: [&str; 4] = [
    ACCELERATOR_RESOLVED,
    METRICS_AVAILABLE,
    OPTIMIZATION_READY,
    TARGET_RESOLVED,
];

/// Longest message kept from an error's `Display`, in characters.
pub const ERROR_MESSAGE_CHARS: usize = 512;

/// One condition's content, without its times.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConditionValue {
    /// Condition type.
    pub type_: &'static str,
    /// `true` → `"True"`, `false` → `"False"`.
    pub status: bool,
    /// CamelCase reason.
    pub reason: &'static str,
    /// Human-readable message.
    pub message: String,
}

impl ConditionValue {
    fn new(type_: &'static str, status: bool, reason: &'static str, message: String) -> Self {
        ConditionValue {
            type_,
            status,
            reason,
            message,
        }
    }

    /// The API's status string.
    pub fn status_str(&self) -> &'static str {
        if self.status { "True" } else { "False" }
    }
}

/// `TargetResolved=True/TargetFound`.
pub fn target_found(target: &ScaleTargetRef) -> ConditionValue {
    let ScaleTargetRef { kind, name, .. } = target;
    ConditionValue::new(
        TARGET_RESOLVED,
        true,
        "TargetFound",
        format!("Scale target {kind} {name} found"),
    )
}

/// `TargetResolved=False/TargetNotFound`.
pub fn target_not_found(target: &ScaleTargetRef) -> ConditionValue {
    let ScaleTargetRef { kind, name, .. } = target;
    ConditionValue::new(
        TARGET_RESOLVED,
        false,
        "TargetNotFound",
        format!("Scale target {kind} {name} not found"),
    )
}

/// `TargetResolved=False/TargetConflict`: `owner` is the VA that owns the target.
pub fn target_conflict(target: &ScaleTargetRef, owner: &str) -> ConditionValue {
    let ScaleTargetRef { kind, name, .. } = target;
    ConditionValue::new(
        TARGET_RESOLVED,
        false,
        "TargetConflict",
        format!("Scale target {kind} {name} is already managed by VariantAutoscaling {owner}"),
    )
}

/// `TargetResolved=False/UnsupportedTargetKind`.
pub fn unsupported_target_kind(target: &ScaleTargetRef) -> ConditionValue {
    let api_version = target
        .api_version
        .as_deref()
        .filter(|v| !v.is_empty())
        .unwrap_or("<none>");
    ConditionValue::new(
        TARGET_RESOLVED,
        false,
        "UnsupportedTargetKind",
        format!(
            "Scale target kind {api_version}/{} is not supported; supported kinds: apps/v1 Deployment, leaderworkerset.x-k8s.io/v1 LeaderWorkerSet",
            target.kind
        ),
    )
}

/// `AcceleratorResolved` from a resolution (`AcceleratorLabel`, `AcceleratorDerived` or
/// `AcceleratorUnknown`).
pub fn accelerator(resolution: &AcceleratorResolution, target: &ScaleTargetRef) -> ConditionValue {
    let ScaleTargetRef { kind, name, .. } = target;
    let acc = &resolution.name;
    match &resolution.source {
        AcceleratorSource::Label => ConditionValue::new(
            ACCELERATOR_RESOLVED,
            true,
            "AcceleratorLabel",
            format!("Accelerator {acc} taken from label {ACCELERATOR_LABEL}"),
        ),
        AcceleratorSource::Derived { key, value } => ConditionValue::new(
            ACCELERATOR_RESOLVED,
            true,
            "AcceleratorDerived",
            format!(
                "Accelerator {acc} derived from {key}={value} in the pod template of {kind} {name}"
            ),
        ),
        AcceleratorSource::Unknown => ConditionValue::new(
            ACCELERATOR_RESOLVED,
            false,
            "AcceleratorUnknown",
            format!(
                "No usable accelerator label {ACCELERATOR_LABEL} and no GPU product in the pod template of {kind} {name}; publishing accelerator_type=\"unknown\""
            ),
        ),
    }
}

/// `MetricsAvailable=True/MetricsFound`.
pub fn metrics_found() -> ConditionValue {
    ConditionValue::new(
        METRICS_AVAILABLE,
        true,
        "MetricsFound",
        "Saturation metrics data is available for scaling decisions".into(),
    )
}

/// `MetricsAvailable=False/MetricsMissing` while pods are not ready or not scraped.
pub fn metrics_missing() -> ConditionValue {
    ConditionValue::new(
        METRICS_AVAILABLE,
        false,
        "MetricsMissing",
        "No saturation metrics available - pods may not be ready or metrics not yet scraped".into(),
    )
}

/// `MetricsAvailable=False/MetricsMissing` for a target with zero replicas.
pub fn metrics_missing_zero_replicas() -> ConditionValue {
    ConditionValue::new(
        METRICS_AVAILABLE,
        false,
        "MetricsMissing",
        "No saturation metrics available - scale target has zero replicas".into(),
    )
}

/// `MetricsAvailable=False/MetricsStale`; `threshold` as configured, e.g. `1m`.
pub fn metrics_stale(threshold: &str) -> ConditionValue {
    ConditionValue::new(
        METRICS_AVAILABLE,
        false,
        "MetricsStale",
        format!("Saturation metrics are older than the freshness threshold ({threshold})"),
    )
}

/// `MetricsAvailable=False/PrometheusError`; the error is cut to 512 characters.
pub fn prometheus_error(error: &str) -> ConditionValue {
    ConditionValue::new(
        METRICS_AVAILABLE,
        false,
        "PrometheusError",
        format!("Prometheus query failed: {}", cut_chars(error)),
    )
}

/// `OptimizationReady=True/OptimizationSucceeded`.
pub fn optimization_succeeded(desired: u32, current: u32, reason: &str) -> ConditionValue {
    let message = if desired == current {
        "Optimization loop ran (no scaling change needed)".to_owned()
    } else {
        format!("Optimization loop ran: desired {desired} replicas, current {current} ({reason})")
    };
    ConditionValue::new(OPTIMIZATION_READY, true, "OptimizationSucceeded", message)
}

/// `OptimizationReady=True/ScaleFromZeroMode`.
pub fn scale_from_zero_mode() -> ConditionValue {
    ConditionValue::new(
        OPTIMIZATION_READY,
        true,
        "ScaleFromZeroMode",
        "Scaled from zero due to pending requests".into(),
    )
}

/// `OptimizationReady=True/SkippedProcessing` for a target with zero replicas.
pub fn skipped_zero_replicas() -> ConditionValue {
    ConditionValue::new(
        OPTIMIZATION_READY,
        true,
        "SkippedProcessing",
        "Skipped: scale target has zero replicas; waiting for scale from zero".into(),
    )
}

/// `OptimizationReady=False/SkippedProcessing` while the target is unresolved.
pub fn skipped_unresolved() -> ConditionValue {
    ConditionValue::new(
        OPTIMIZATION_READY,
        false,
        "SkippedProcessing",
        "Skipped: scale target not resolved".into(),
    )
}

/// `OptimizationReady=False/MetricsUnavailable`; `n` is the kept desired count.
pub fn metrics_unavailable(n: u32) -> ConditionValue {
    ConditionValue::new(
        OPTIMIZATION_READY,
        false,
        "MetricsUnavailable",
        format!("Metrics unavailable; keeping previous desired replicas ({n})"),
    )
}

/// `OptimizationReady=False/InvalidConfiguration`.
pub fn invalid_configuration(detail: &str) -> ConditionValue {
    ConditionValue::new(
        OPTIMIZATION_READY,
        false,
        "InvalidConfiguration",
        format!("Invalid configuration: {detail}"),
    )
}

/// `OptimizationReady=False/OptimizationFailed`; the error is cut to 512 characters.
pub fn optimization_failed(error: &str) -> ConditionValue {
    ConditionValue::new(
        OPTIMIZATION_READY,
        false,
        "OptimizationFailed",
        format!("Optimization failed: {}", cut_chars(error)),
    )
}

fn cut_chars(text: &str) -> &str {
    match text.char_indices().nth(ERROR_MESSAGE_CHARS) {
        Some((end, _)) => &text[..end],
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deployment(api_version: Option<&str>) -> ScaleTargetRef {
        ScaleTargetRef {
            api_version: api_version.map(Into::into),
            kind: "Deployment".into(),
            name: "vllm".into(),
        }
    }

    fn row(c: &ConditionValue) -> (&str, &str, &str, &str) {
        (c.type_, c.status_str(), c.reason, c.message.as_str())
    }

    #[test]
    fn target_rows_read_like_upstream() {
        let t = deployment(None);
        assert_eq!(
            row(&target_found(&t)),
            (
                "TargetResolved",
                "True",
                "TargetFound",
                "Scale target Deployment vllm found"
            )
        );
        assert_eq!(
            row(&target_not_found(&t)),
            (
                "TargetResolved",
                "False",
                "TargetNotFound",
                "Scale target Deployment vllm not found"
            )
        );
        assert_eq!(
            row(&target_conflict(&t, "older")),
            (
                "TargetResolved",
                "False",
                "TargetConflict",
                "Scale target Deployment vllm is already managed by VariantAutoscaling older"
            )
        );
    }

    #[test]
    fn unsupported_kind_names_api_version_or_none() {
        let sts = ScaleTargetRef {
            api_version: Some("apps/v1".into()),
            kind: "StatefulSet".into(),
            name: "s".into(),
        };
        assert_eq!(
            unsupported_target_kind(&sts).message,
            "Scale target kind apps/v1/StatefulSet is not supported; supported kinds: apps/v1 Deployment, leaderworkerset.x-k8s.io/v1 LeaderWorkerSet"
        );
        let bare = ScaleTargetRef {
            api_version: None,
            kind: "Rollout".into(),
            name: "r".into(),
        };
        assert!(
            unsupported_target_kind(&bare)
                .message
                .starts_with("Scale target kind <none>/Rollout is not supported;")
        );
        assert_eq!(
            unsupported_target_kind(&bare).reason,
            "UnsupportedTargetKind"
        );
    }

    #[test]
    fn accelerator_rows_name_their_source() {
        let t = deployment(Some("apps/v1"));
        let label = AcceleratorResolution {
            name: "H100".into(),
            source: AcceleratorSource::Label,
        };
        assert_eq!(
            row(&accelerator(&label, &t)),
            (
                "AcceleratorResolved",
                "True",
                "AcceleratorLabel",
                "Accelerator H100 taken from label inference.optimization/acceleratorName"
            )
        );
        let derived = AcceleratorResolution {
            name: "A100".into(),
            source: AcceleratorSource::Derived {
                key: "nvidia.com/gpu.product".into(),
                value: "NVIDIA-A100-SXM4-80GB".into(),
            },
        };
        assert_eq!(
            accelerator(&derived, &t).message,
            "Accelerator A100 derived from nvidia.com/gpu.product=NVIDIA-A100-SXM4-80GB in the pod template of Deployment vllm"
        );
        let unknown = AcceleratorResolution {
            name: "unknown".into(),
            source: AcceleratorSource::Unknown,
        };
        assert_eq!(
            row(&accelerator(&unknown, &t)),
            (
                "AcceleratorResolved",
                "False",
                "AcceleratorUnknown",
                "No usable accelerator label inference.optimization/acceleratorName and no GPU product in the pod template of Deployment vllm; publishing accelerator_type=\"unknown\""
            )
        );
    }

    #[test]
    fn metrics_rows() {
        assert_eq!(
            row(&metrics_found()),
            (
                "MetricsAvailable",
                "True",
                "MetricsFound",
                "Saturation metrics data is available for scaling decisions"
            )
        );
        assert_eq!(metrics_missing().reason, "MetricsMissing");
        assert_eq!(
            metrics_missing_zero_replicas().message,
            "No saturation metrics available - scale target has zero replicas"
        );
        assert_eq!(
            metrics_stale("1m").message,
            "Saturation metrics are older than the freshness threshold (1m)"
        );
        assert_eq!(
            row(&prometheus_error("timeout")),
            (
                "MetricsAvailable",
                "False",
                "PrometheusError",
                "Prometheus query failed: timeout"
            )
        );
    }

    #[test]
    fn optimization_rows() {
        assert_eq!(
            optimization_succeeded(3, 3, "steady").message,
            "Optimization loop ran (no scaling change needed)"
        );
        assert_eq!(
            optimization_succeeded(4, 3, "kv_cache_saturation").message,
            "Optimization loop ran: desired 4 replicas, current 3 (kv_cache_saturation)"
        );
        assert_eq!(
            row(&scale_from_zero_mode()),
            (
                "OptimizationReady",
                "True",
                "ScaleFromZeroMode",
                "Scaled from zero due to pending requests"
            )
        );
        assert_eq!(row(&skipped_zero_replicas()).1, "True");
        assert_eq!(
            row(&skipped_unresolved()),
            (
                "OptimizationReady",
                "False",
                "SkippedProcessing",
                "Skipped: scale target not resolved"
            )
        );
        assert_eq!(
            metrics_unavailable(2).message,
            "Metrics unavailable; keeping previous desired replicas (2)"
        );
        assert_eq!(
            invalid_configuration("no SLO").message,
            "Invalid configuration: no SLO"
        );
        assert_eq!(
            optimization_failed("boom").message,
            "Optimization failed: boom"
        );
    }

    #[test]
    fn error_messages_are_cut_to_512_characters() {
        let long = "é".repeat(600);
        let message = optimization_failed(&long).message;
        assert_eq!(message.chars().count(), "Optimization failed: ".len() + 512);
        assert_eq!(
            prometheus_error(&long).message.chars().count(),
            "Prometheus query failed: ".len() + 512
        );
    }
}
