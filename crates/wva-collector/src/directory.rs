//! The pod → variant mapping the caller provides (spec §2.2).

use crate::model::{ModelKey, ReplicaTarget, VariantRef};

/// Maps pods to variants and lists known replicas; implemented by the caller (engine, k8s,
/// standalone file, simulator, tests).
///
/// Both methods are synchronous, answer from memory and never block or do I/O.
pub trait ReplicaDirectory: Send + Sync {
    /// The variant owning `pod` if that variant serves `model`, else `None`.
    fn variant_of(&self, model: &ModelKey, pod: &str) -> Option<VariantRef>;

    /// The known ready pods of `model` (empty when unknown, e.g. standalone mode).
    fn replicas(&self, model: &ModelKey) -> Vec<ReplicaTarget>;
}

/// A directory that maps every pod to a variant named after a prefix rule or the pod itself.
///
/// Used by `wva-manager collect` and tests where no Kubernetes is available: a pod belongs to the
/// longest registered variant name that, followed by `-`, prefixes the pod name in the model's
/// namespace; with no registered prefix match, the variant is named after the pod.
#[derive(Debug, Clone, Default)]
pub struct PodNameDirectory {
    prefixes: Vec<String>,
}

impl PodNameDirectory {
    /// A directory with these variant names as pod-name prefixes.
    pub fn new(prefixes: Vec<String>) -> Self {
        let mut prefixes = prefixes;
        // Longest first so the longest prefix wins; ties by name for determinism.
        prefixes.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        PodNameDirectory { prefixes }
    }
}

impl ReplicaDirectory for PodNameDirectory {
    fn variant_of(&self, model: &ModelKey, pod: &str) -> Option<VariantRef> {
        let name = self
            .prefixes
            .iter()
            .find(|p| {
                pod.len() > p.len() + 1
                    && pod.starts_with(p.as_str())
                    && pod[p.len()..].starts_with('-')
            })
            .cloned()
            .unwrap_or_else(|| pod.to_string());
        Some(VariantRef::new(model.namespace.clone(), name))
    }

    fn replicas(&self, _model: &ModelKey) -> Vec<ReplicaTarget> {
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn longest_prefix_wins_and_unmatched_pod_names_its_variant() {
        let d = PodNameDirectory::new(vec!["llama".into(), "llama-a100".into()]);
        let m = ModelKey::new("ns", "m");
        assert_eq!(
            d.variant_of(&m, "llama-a100-7f9-x").unwrap().name,
            "llama-a100"
        );
        assert_eq!(d.variant_of(&m, "llama-h100-1").unwrap().name, "llama");
        assert_eq!(d.variant_of(&m, "other-1").unwrap().name, "other-1");
        assert_eq!(d.variant_of(&m, "llama").unwrap().name, "llama");
    }
}
