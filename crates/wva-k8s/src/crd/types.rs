//! The `VariantAutoscaling` custom resource (`llmd.ai/v1alpha1`), field-compatible with upstream.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::condition_schema::conditions_schema;

/// The cost per replica assumed when `variantCost` is absent or unparsable.
pub const DEFAULT_VARIANT_COST: &str = "10.0";

fn default_variant_cost() -> String {
    DEFAULT_VARIANT_COST.to_owned()
}

/// Desired state of a `VariantAutoscaling`: one variant (a Deployment of a model on one
/// accelerator type) and its cost.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "llmd.ai",
    version = "v1alpha1",
    kind = "VariantAutoscaling",
    namespaced,
    status = "VariantAutoscalingStatus",
    shortname = "va",
    doc = "VariantAutoscaling is the Schema for the variantautoscalings API.",
    printcolumn = r#"{"name":"Target","type":"string","jsonPath":".spec.scaleTargetRef.name"}"#,
    printcolumn = r#"{"name":"Model","type":"string","jsonPath":".spec.modelID"}"#,
    printcolumn = r#"{"name":"Optimized","type":"string","jsonPath":".status.desiredOptimizedAlloc.numReplicas"}"#,
    printcolumn = r#"{"name":"MetricsReady","type":"string","jsonPath":".status.conditions[?(@.type=='MetricsAvailable')].status"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct VariantAutoscalingSpec {
    /// The workload whose replicas this variant scales (a Deployment or a LeaderWorkerSet).
    pub scale_target_ref: ScaleTargetRef,
    /// The OpenAI model name served by the variant, as vLLM reports it in `model_name`.
    #[serde(rename = "modelID")]
    #[schemars(length(min = 1))]
    pub model_id: String,
    /// Cost per replica, a decimal number in a string (default `"10.0"`).
    #[serde(default = "default_variant_cost")]
    #[schemars(regex(pattern = r"^\d+(\.\d+)?$"))]
    pub variant_cost: String,
}

/// Reference to the scaled workload, as in an HPA's `scaleTargetRef`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-map-type" = "atomic"))]
pub struct ScaleTargetRef {
    /// API version of the target, e.g. `apps/v1`; absent means the kind's default group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    /// Kind of the target, e.g. `Deployment`.
    pub kind: String,
    /// Name of the target in the VA's namespace.
    pub name: String,
}

/// Observed state of a `VariantAutoscaling`, written by the manager with server-side apply.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VariantAutoscalingStatus {
    /// The replicas and accelerator last decided for this variant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub desired_optimized_alloc: Option<OptimizedAlloc>,
    /// Whether the scale target already runs the decided replica count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actuation: Option<ActuationStatus>,
    /// Standard conditions: TargetResolved, AcceleratorResolved, MetricsAvailable, OptimizationReady.
    #[serde(default)]
    #[schemars(schema_with = "conditions_schema")]
    pub conditions: Vec<Condition>,
}

/// The decided allocation of one variant.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OptimizedAlloc {
    /// The resolved accelerator name, e.g. `H100` (or `unknown`).
    #[schemars(length(min = 2))]
    pub accelerator: String,
    /// The published desired replica count.
    pub num_replicas: u32,
    /// Start of the cycle that last changed `numReplicas` or `accelerator`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_run_time: Option<Time>,
}

/// Whether the decision is in effect on the scale target.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ActuationStatus {
    /// True when the target's `spec.replicas` equals `desiredOptimizedAlloc.numReplicas`.
    pub applied: bool,
}

impl VariantAutoscalingSpec {
    /// `variantCost` as a number, or `None` when it does not match `^\d+(\.\d+)?$`
    /// (objects stored before the schema validated it).
    pub fn parsed_cost(&self) -> Option<f64> {
        let text = self.variant_cost.as_str();
        let (whole, fraction) = match text.split_once('.') {
            Some((w, f)) => (w, Some(f)),
            None => (text, None),
        };
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(whole) || fraction.is_some_and(|f| !digits(f)) {
            return None;
        }
        text.parse().ok()
    }

    /// `variantCost` as a number, `10.0` when unparsable.
    pub fn cost(&self) -> f64 {
        self.parsed_cost().unwrap_or(10.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const UPSTREAM_VA: &str = r#"
apiVersion: llmd.ai/v1alpha1
kind: VariantAutoscaling
metadata:
  name: vllm-llama-a100
  namespace: llm-d-sim
  labels:
    inference.optimization/acceleratorName: A100
spec:
  scaleTargetRef:
    kind: Deployment
    name: vllm-llama-a100
  modelID: unsloth/Meta-Llama-3.1-8B
status:
  desiredOptimizedAlloc:
    accelerator: A100
    numReplicas: 2
    lastRunTime: "2025-10-01T12:00:00Z"
  actuation:
    applied: true
  conditions:
    - type: MetricsAvailable
      status: "True"
      reason: MetricsFound
      message: Saturation metrics data is available for scaling decisions
      lastTransitionTime: "2025-10-01T11:59:30Z"
      observedGeneration: 1
    - type: OptimizationReady
      status: "True"
      reason: OptimizationSucceeded
      message: Optimization completed successfully
      lastTransitionTime: "2025-10-01T12:00:00Z"
"#;

    #[test]
    fn upstream_object_without_api_version_or_cost_loads() {
        let va: VariantAutoscaling = serde_saphyr::from_str(UPSTREAM_VA).unwrap();
        assert_eq!(va.spec.scale_target_ref.api_version, None);
        assert_eq!(va.spec.scale_target_ref.kind, "Deployment");
        assert_eq!(va.spec.model_id, "unsloth/Meta-Llama-3.1-8B");
        assert_eq!(va.spec.variant_cost, "10.0");
        let status = va.status.unwrap();
        assert_eq!(status.desired_optimized_alloc.unwrap().num_replicas, 2);
        assert_eq!(status.actuation, Some(ActuationStatus { applied: true }));
        assert_eq!(status.conditions.len(), 2);
        assert_eq!(status.conditions[0].observed_generation, Some(1));
        assert_eq!(status.conditions[1].observed_generation, None);
    }

    #[test]
    fn empty_status_serialises_without_optional_objects() {
        let status = VariantAutoscalingStatus::default();
        assert_eq!(
            serde_json::to_value(&status).unwrap(),
            serde_json::json!({"conditions": []})
        );
    }

    #[test]
    fn spec_serialises_with_upstream_field_names() {
        let spec = VariantAutoscalingSpec {
            scale_target_ref: ScaleTargetRef {
                api_version: Some("apps/v1".into()),
                kind: "Deployment".into(),
                name: "d".into(),
            },
            model_id: "m".into(),
            variant_cost: "30.0".into(),
        };
        assert_eq!(
            serde_json::to_value(&spec).unwrap(),
            serde_json::json!({
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "d"},
                "modelID": "m",
                "variantCost": "30.0"
            })
        );
    }

    fn spec_with_cost(cost: &str) -> VariantAutoscalingSpec {
        VariantAutoscalingSpec {
            scale_target_ref: ScaleTargetRef {
                api_version: None,
                kind: "Deployment".into(),
                name: "d".into(),
            },
            model_id: "m".into(),
            variant_cost: cost.into(),
        }
    }

    #[test]
    fn cost_parses_decimal_strings() {
        assert_eq!(spec_with_cost("30.0").parsed_cost(), Some(30.0));
        assert_eq!(spec_with_cost("7").parsed_cost(), Some(7.0));
        assert_eq!(spec_with_cost("0.25").cost(), 0.25);
    }

    #[test]
    fn unparsable_cost_falls_back_to_ten() {
        for bad in ["", "abc", "-1", "1e3", "1.", ".5", " 3", "NaN", "inf"] {
            assert_eq!(spec_with_cost(bad).parsed_cost(), None, "{bad:?}");
            assert_eq!(spec_with_cost(bad).cost(), 10.0);
        }
    }
}
