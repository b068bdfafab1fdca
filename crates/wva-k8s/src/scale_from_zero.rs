//! Scale-from-zero candidates (spec/k8s.md §5.3 steps 1 and 4): which idle model groups may be
//! woken, and which single variant of each — read from the inventory, no API call.

use std::collections::BTreeMap;

use crate::inventory::{Inventory, VariantEntry};

/// An idle model in one namespace: every variant has `spec.replicas == 0`.
#[derive(Debug, Clone, PartialEq)]
pub struct IdleModel {
    /// Namespace of the variants.
    pub namespace: String,
    /// The model they serve.
    pub model_id: String,
    /// The variant to wake when requests are pending: the cheapest, ties by name.
    pub cheapest: String,
    /// Every idle variant of the model, by name.
    pub variants: Vec<String>,
}

/// Idle model groups by `(namespace, modelID)`; a group is left out while any variant of that
/// model in that namespace has `spec.replicas > 0`.
pub fn idle_models(inventory: &Inventory) -> Vec<IdleModel> {
    let mut groups: BTreeMap<(&str, &str), Vec<&VariantEntry>> = BTreeMap::new();
    for v in &inventory.variants {
        groups
            .entry((v.namespace.as_str(), v.model_id.as_str()))
            .or_default()
            .push(v);
    }
    groups
        .into_iter()
        .filter(|(_, variants)| variants.iter().all(|v| v.spec_replicas == 0))
        .filter_map(|((namespace, model_id), variants)| {
            let cheapest = variants
                .iter()
                .min_by(|a, b| a.cost.total_cmp(&b.cost).then_with(|| a.name.cmp(&b.name)))?;
            Some(IdleModel {
                namespace: namespace.to_owned(),
                model_id: model_id.to_owned(),
                cheapest: cheapest.name.clone(),
                variants: variants.iter().map(|v| v.name.clone()).collect(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::inventory::{Filters, Snapshot, build_inventory};
    use crate::test_fixtures::{mk_deployment, mk_va};

    fn inventory(variants: &[(&str, &str, &str, i32)]) -> Inventory {
        let mut vas = Vec::new();
        let mut deployments = Vec::new();
        for (name, model, cost, replicas) in variants {
            let mut va = mk_va("ns", name, name, Some("H100"));
            va.spec.model_id = (*model).into();
            va.spec.variant_cost = (*cost).into();
            vas.push(Arc::new(va));
            deployments.push(Arc::new(mk_deployment(
                "ns",
                name,
                Some(*replicas),
                *replicas,
                *replicas,
                "1",
            )));
        }
        let snapshot = Snapshot {
            vas: &vas,
            deployments: &deployments,
            leader_worker_sets: &[],
            pods: &[],
        };
        build_inventory(snapshot, &Filters::default())
    }

    #[test]
    fn cheapest_idle_variant_is_chosen() {
        let idle = idle_models(&inventory(&[
            ("h100", "m", "30.0", 0),
            ("a100", "m", "20.0", 0),
        ]));
        assert_eq!(
            idle,
            [IdleModel {
                namespace: "ns".into(),
                model_id: "m".into(),
                cheapest: "a100".into(),
                variants: vec!["a100".into(), "h100".into()]
            }]
        );
    }

    #[test]
    fn equal_costs_break_ties_by_name() {
        let idle = idle_models(&inventory(&[("b", "m", "10.0", 0), ("a", "m", "10.0", 0)]));
        assert_eq!(idle[0].cheapest, "a");
    }

    #[test]
    fn model_with_a_running_variant_is_not_idle() {
        let idle = idle_models(&inventory(&[
            ("h100", "m", "30.0", 1),
            ("a100", "m", "20.0", 0),
            ("l4", "other", "5.0", 0),
        ]));
        let models: Vec<&str> = idle.iter().map(|m| m.model_id.as_str()).collect();
        assert_eq!(models, ["other"]);
    }
}
