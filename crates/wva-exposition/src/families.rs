//! Names, help strings and labels of the four per-variant families (spec/exposition.md §1, §4).

/// Label name of the instance label added registry-wide.
pub const CONTROLLER_INSTANCE_LABEL: &str = "controller_instance";

/// One of the four per-variant families, independent of its prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VariantFamily {
    /// `*_current_replicas` gauge.
    CurrentReplicas,
    /// `*_desired_replicas` gauge.
    DesiredReplicas,
    /// `*_desired_ratio` gauge.
    DesiredRatio,
    /// `*_replica_scaling_total` counter.
    ReplicaScalingTotal,
}

impl VariantFamily {
    /// The four families in name order.
    pub const ALL: [VariantFamily; 4] = [
        VariantFamily::CurrentReplicas,
        VariantFamily::DesiredRatio,
        VariantFamily::DesiredReplicas,
        VariantFamily::ReplicaScalingTotal,
    ];

    /// Name without prefix, e.g. `desired_replicas`.
    pub fn suffix(self) -> &'static str {
        match self {
            VariantFamily::CurrentReplicas => "current_replicas",
            VariantFamily::DesiredReplicas => "desired_replicas",
            VariantFamily::DesiredRatio => "desired_ratio",
            VariantFamily::ReplicaScalingTotal => "replica_scaling_total",
        }
    }

    /// Full name under `prefix` (`inferno` or `wva`).
    pub fn name(self, prefix: &str) -> String {
        format!("{prefix}_{}", self.suffix())
    }

    /// The exact help string of the seed.
    pub fn help(self) -> &'static str {
        match self {
            VariantFamily::CurrentReplicas => "Current number of replicas for each variant",
            VariantFamily::DesiredReplicas => "Desired number of replicas for each variant",
            VariantFamily::DesiredRatio => {
                "Ratio of the desired number of replicas and the current number of replicas for each variant"
            }
            VariantFamily::ReplicaScalingTotal => "Total number of replica scaling operations",
        }
    }

    /// Label names in output order.
    pub fn labels(self) -> &'static [&'static str] {
        match self {
            VariantFamily::ReplicaScalingTotal => {
                &["variant_name", "namespace", "direction", "reason"]
            }
            _ => &["variant_name", "namespace", "accelerator_type"],
        }
    }

    /// `true` for the counter, `false` for the gauges.
    pub fn is_counter(self) -> bool {
        matches!(self, VariantFamily::ReplicaScalingTotal)
    }
}
