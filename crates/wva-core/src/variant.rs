//! The variant: one Deployment serving a model on one accelerator type (spec/core.md §1.1).

use serde::{Deserialize, Serialize};

/// A variant with its spec and its state at the start of the cycle.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VariantState {
    /// Variant (VariantAutoscaling) name; `(namespace, name)` is unique.
    pub name: String,
    /// Namespace.
    pub namespace: String,
    /// Model served.
    #[serde(rename = "modelID")]
    pub model_id: String,
    /// Accelerator type as labelled on the variant; may be empty.
    pub accelerator: String,
    /// Cost of one replica, finite and ≥ 0.
    pub cost: f64,
    /// Replicas of the Deployment now.
    pub current_replicas: u32,
    /// Ready replicas.
    pub ready_replicas: u32,
    /// Target published by the previous cycle; 0 = never set.
    pub desired_replicas: u32,
    /// GPUs requested per pod; 0 is read as 1.
    pub gpus_per_replica: u32,
    /// The vLLM container's command followed by its args.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vllm_args: Option<Vec<String>>,
}

impl VariantState {
    /// `max(0, current − ready)`.
    pub fn pending_replicas(&self) -> u32 {
        self.current_replicas.saturating_sub(self.ready_replicas)
    }

    /// `current − pending` (= min(current, ready)).
    pub fn ready_count(&self) -> u32 {
        self.current_replicas.min(self.ready_replicas)
    }

    /// GPUs per replica with 0 read as 1.
    pub fn gpus(&self) -> u32 {
        self.gpus_per_replica.max(1)
    }

    /// `hold(v)`: desired if > 0, else current.
    pub fn hold(&self) -> u32 {
        if self.desired_replicas > 0 {
            self.desired_replicas
        } else {
            self.current_replicas
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(current: u32, ready: u32, desired: u32) -> VariantState {
        VariantState {
            name: "v".into(),
            namespace: "ns".into(),
            model_id: "m".into(),
            accelerator: "A100".into(),
            cost: 1.0,
            current_replicas: current,
            ready_replicas: ready,
            desired_replicas: desired,
            gpus_per_replica: 0,
            vllm_args: None,
        }
    }

    #[test]
    fn pending_and_ready_count_add_up_to_current() {
        let s = v(3, 1, 0);
        assert_eq!(s.pending_replicas(), 2);
        assert_eq!(s.ready_count(), 1);
        let over = v(2, 5, 0);
        assert_eq!(over.pending_replicas(), 0);
        assert_eq!(over.ready_count(), 2);
    }

    #[test]
    fn hold_prefers_a_set_desired_count() {
        assert_eq!(v(3, 3, 5).hold(), 5);
        assert_eq!(v(3, 3, 0).hold(), 3);
    }

    #[test]
    fn zero_gpus_read_as_one() {
        assert_eq!(v(1, 1, 0).gpus(), 1);
    }
}
