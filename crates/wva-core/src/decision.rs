//! The per-variant decision of one cycle and its closed set of reasons (spec/core.md §1.3).

use serde::{Deserialize, Serialize};

/// Direction of a decision relative to the current replica count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Target above current.
    ScaleUp,
    /// Target below current.
    ScaleDown,
    /// Target equals current.
    NoChange,
}

impl Action {
    /// `scale_up` if `target > current`, `scale_down` if below, else `no_change`.
    pub fn between(current: u32, target: u32) -> Action {
        match target.cmp(&current) {
            std::cmp::Ordering::Greater => Action::ScaleUp,
            std::cmp::Ordering::Less => Action::ScaleDown,
            std::cmp::Ordering::Equal => Action::NoChange,
        }
    }

    /// The snake_case name used in JSON and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::ScaleUp => "scale_up",
            Action::ScaleDown => "scale_down",
            Action::NoChange => "no_change",
        }
    }
}

/// Why a variant got its target; used verbatim as the `reason` metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// V1 scale-up where the KV trigger fired.
    KvCacheSaturation,
    /// V1 scale-up where only the queue trigger fired.
    QueueSaturation,
    /// V2 or queueing model raised this variant.
    CapacityRequired,
    /// V1 safe scale-down; V2 or queueing model lowered this variant.
    SpareCapacity,
    /// The enforcer set the model to zero.
    ScaleToZero,
    /// The enforcer raised the cheapest variant to one.
    MinimumReplicas,
    /// The GPU limiter cut a scale-up, or the queueing model lacked accelerators.
    GpuLimited,
    /// No usable metrics; the target was held.
    MetricsUnavailable,
    /// Stale or incomplete metrics suppressed a scale-down.
    MetricsStale,
    /// V1 blocked by a model in transition.
    InTransition,
    /// The queueing model lacks performance parameters or an SLO target.
    NotConfigured,
    /// The queueing model cannot meet the targets even at minimal load.
    SloInfeasible,
    /// None of the above.
    Steady,
}

impl Reason {
    /// Every reason, in declaration order.
    pub const ALL: [Reason; 13] = [
        Reason::KvCacheSaturation,
        Reason::QueueSaturation,
        Reason::CapacityRequired,
        Reason::SpareCapacity,
        Reason::ScaleToZero,
        Reason::MinimumReplicas,
        Reason::GpuLimited,
        Reason::MetricsUnavailable,
        Reason::MetricsStale,
        Reason::InTransition,
        Reason::NotConfigured,
        Reason::SloInfeasible,
        Reason::Steady,
    ];

    /// The snake_case name used in JSON and as the `reason` label.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::KvCacheSaturation => "kv_cache_saturation",
            Reason::QueueSaturation => "queue_saturation",
            Reason::CapacityRequired => "capacity_required",
            Reason::SpareCapacity => "spare_capacity",
            Reason::ScaleToZero => "scale_to_zero",
            Reason::MinimumReplicas => "minimum_replicas",
            Reason::GpuLimited => "gpu_limited",
            Reason::MetricsUnavailable => "metrics_unavailable",
            Reason::MetricsStale => "metrics_stale",
            Reason::InTransition => "in_transition",
            Reason::NotConfigured => "not_configured",
            Reason::SloInfeasible => "slo_infeasible",
            Reason::Steady => "steady",
        }
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One variant's target for one cycle.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Decision {
    /// Variant name.
    pub variant: String,
    /// Variant namespace.
    pub namespace: String,
    /// Model served by the variant.
    #[serde(rename = "modelID")]
    pub model_id: String,
    /// Accelerator type of the variant.
    pub accelerator: String,
    /// Replicas now.
    pub current_replicas: u32,
    /// Replicas wanted.
    pub target_replicas: u32,
    /// Direction of the change.
    pub action: Action,
    /// Why.
    pub reason: Reason,
    /// Human-readable explanation.
    pub detail: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reason_serialises_as_its_label() {
        for r in Reason::ALL {
            let json = serde_json::to_string(&r).expect("serialise");
            assert_eq!(json, format!("\"{}\"", r.as_str()));
        }
    }

    #[test]
    fn action_between_compares_target_with_current() {
        assert_eq!(Action::between(2, 3), Action::ScaleUp);
        assert_eq!(Action::between(2, 1), Action::ScaleDown);
        assert_eq!(Action::between(2, 2), Action::NoChange);
    }
}
