//! What the engine hands the registry for one variant in one publication.

use std::fmt;

use wva_core::{Decision, Reason};

/// Accelerator label value used when none could be resolved.
pub const UNKNOWN_ACCELERATOR: &str = "unknown";

/// Identity of a variant: its namespace and `metadata.name`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct VariantKey {
    /// Namespace of the VariantAutoscaling.
    pub namespace: String,
    /// `metadata.name` of the VariantAutoscaling.
    pub name: String,
}

impl VariantKey {
    /// Key of the variant `name` in `namespace`.
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> Self {
        VariantKey {
            namespace: namespace.into(),
            name: name.into(),
        }
    }
}

impl fmt::Display for VariantKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// The `reason` label of `inferno_replica_scaling_total`: the core's reasons plus `scale_from_zero`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ScalingReason {
    /// A reason decided by the core.
    Core(Reason),
    /// The one change made outside the core: waking a variant with pending requests.
    ScaleFromZero,
}

impl ScalingReason {
    /// Every reason label value, the core's in declaration order then `scale_from_zero`.
    pub fn all() -> impl Iterator<Item = ScalingReason> {
        Reason::ALL
            .into_iter()
            .map(ScalingReason::Core)
            .chain(std::iter::once(ScalingReason::ScaleFromZero))
    }

    /// The snake_case label value.
    pub fn as_str(self) -> &'static str {
        match self {
            ScalingReason::Core(reason) => reason.as_str(),
            ScalingReason::ScaleFromZero => "scale_from_zero",
        }
    }
}

impl From<Reason> for ScalingReason {
    fn from(reason: Reason) -> Self {
        ScalingReason::Core(reason)
    }
}

impl fmt::Display for ScalingReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The `direction` label of `inferno_replica_scaling_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Direction {
    /// Desired replicas went up.
    ScaleUp,
    /// Desired replicas went down.
    ScaleDown,
}

impl Direction {
    /// `scale_up` or `scale_down`.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::ScaleUp => "scale_up",
            Direction::ScaleDown => "scale_down",
        }
    }

    /// The direction of a change from `previous` to `desired`, `None` when equal.
    pub fn of_change(previous: u32, desired: u32) -> Option<Direction> {
        match desired.cmp(&previous) {
            std::cmp::Ordering::Greater => Some(Direction::ScaleUp),
            std::cmp::Ordering::Less => Some(Direction::ScaleDown),
            std::cmp::Ordering::Equal => None,
        }
    }
}

/// One variant's published state for one cycle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishedVariant {
    /// Namespace and name of the variant.
    pub key: VariantKey,
    /// Resolved accelerator; empty means [`UNKNOWN_ACCELERATOR`].
    pub accelerator_type: String,
    /// Current replicas of the scale target (`status.replicas`).
    pub current_replicas: u32,
    /// The published decision.
    pub desired_replicas: u32,
    /// Why the decision was made; the counter's `reason` label.
    pub reason: ScalingReason,
    /// The core's hold value, compared with `desired_replicas` the first time this process
    /// publishes the variant; `None` makes the first publication count nothing.
    pub baseline: Option<u32>,
    /// `false` when the scale target is unresolved: the three gauges are dropped, counters stay.
    pub target_resolved: bool,
}

impl PublishedVariant {
    /// A resolved variant with the given values.
    pub fn new(
        key: VariantKey,
        accelerator_type: impl Into<String>,
        current_replicas: u32,
        desired_replicas: u32,
        reason: impl Into<ScalingReason>,
    ) -> Self {
        PublishedVariant {
            key,
            accelerator_type: accelerator_type.into(),
            current_replicas,
            desired_replicas,
            reason: reason.into(),
            baseline: None,
            target_resolved: true,
        }
    }

    /// The publication of a core decision, with the core's hold value as baseline.
    pub fn from_decision(decision: &Decision, baseline: u32) -> Self {
        PublishedVariant::new(
            VariantKey::new(&decision.namespace, &decision.variant),
            &decision.accelerator,
            decision.current_replicas,
            decision.target_replicas,
            decision.reason,
        )
        .with_baseline(baseline)
    }

    /// Sets the first-publication baseline.
    pub fn with_baseline(mut self, baseline: u32) -> Self {
        self.baseline = Some(baseline);
        self
    }

    /// Marks the scale target as unresolved (gauges dropped, counters kept).
    pub fn unresolved(mut self) -> Self {
        self.target_resolved = false;
        self
    }

    /// The accelerator label value, `unknown` when empty.
    pub fn accelerator_label(&self) -> &str {
        if self.accelerator_type.is_empty() {
            UNKNOWN_ACCELERATOR
        } else {
            &self.accelerator_type
        }
    }

    /// `inferno_desired_ratio`: desired / current, and desired when current is 0.
    pub fn desired_ratio(&self) -> f64 {
        desired_ratio(self.current_replicas, self.desired_replicas)
    }
}

/// desired / current as `f64`, and desired when current is 0 (never NaN or infinite).
pub fn desired_ratio(current: u32, desired: u32) -> f64 {
    if current == 0 {
        f64::from(desired)
    } else {
        f64::from(desired) / f64::from(current)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wva_core::Action;

    #[test]
    fn ratio_is_desired_over_current() {
        assert_eq!(desired_ratio(2, 3), 1.5);
        assert_eq!(desired_ratio(3, 1), 1.0 / 3.0);
    }

    #[test]
    fn ratio_is_desired_when_current_is_zero() {
        assert_eq!(desired_ratio(0, 4), 4.0);
        assert_eq!(desired_ratio(0, 0), 0.0);
    }

    #[test]
    fn reason_labels_are_the_core_enum_plus_scale_from_zero() {
        let labels: Vec<&str> = ScalingReason::all().map(ScalingReason::as_str).collect();
        assert_eq!(labels.len(), Reason::ALL.len() + 1);
        assert_eq!(labels.last(), Some(&"scale_from_zero"));
        assert!(labels.contains(&"kv_cache_saturation"));
    }

    #[test]
    fn empty_accelerator_is_published_as_unknown() {
        let v = PublishedVariant::new(VariantKey::new("ns", "v"), "", 1, 1, Reason::Steady);
        assert_eq!(v.accelerator_label(), "unknown");
    }

    #[test]
    fn from_decision_copies_the_decision_and_baseline() {
        let decision = Decision {
            variant: "llama-h100".into(),
            namespace: "team-a".into(),
            model_id: "meta-llama/Llama-3.1-8B".into(),
            accelerator: "H100".into(),
            current_replicas: 2,
            target_replicas: 3,
            action: Action::ScaleUp,
            reason: Reason::KvCacheSaturation,
            detail: String::new(),
        };
        let v = PublishedVariant::from_decision(&decision, 2);
        assert_eq!(v.key, VariantKey::new("team-a", "llama-h100"));
        assert_eq!(v.accelerator_type, "H100");
        assert_eq!((v.current_replicas, v.desired_replicas), (2, 3));
        assert_eq!(v.reason, ScalingReason::Core(Reason::KvCacheSaturation));
        assert_eq!(v.baseline, Some(2));
        assert!(v.target_resolved);
    }
}
