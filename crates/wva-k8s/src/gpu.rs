//! GPU counting: GPUs per replica of a target (spec/k8s.md §4) and the GPU inventory for the
//! limiter from nodes and pods (§7).

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::{Container, Node, Pod, PodSpec};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use crate::accelerator::product_of_labels;
use crate::target::{TargetKey, pod_target};

/// The extended resources that count as GPUs.
pub const GPU_RESOURCES: [&str; 3] = ["nvidia.com/gpu", "amd.com/gpu", "intel.com/gpu"];

/// A GPU quantity that is not a whole number (it counts as 0).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NonIntegerGpu {
    /// The container.
    pub container: String,
    /// The resource name.
    pub resource: String,
    /// The quantity as written.
    pub quantity: String,
}

/// GPUs of one container: its request, else its limit, summed over the GPU resources.
pub fn container_gpus(container: &Container, bad: &mut Vec<NonIntegerGpu>) -> u32 {
    let resources = container.resources.as_ref();
    let requests = resources.and_then(|r| r.requests.as_ref());
    let limits = resources.and_then(|r| r.limits.as_ref());
    GPU_RESOURCES
        .iter()
        .filter_map(|name| {
            let quantity = requests
                .and_then(|r| r.get(*name))
                .or_else(|| limits.and_then(|l| l.get(*name)))?;
            match whole_quantity(quantity) {
                Some(n) => Some(n),
                None => {
                    bad.push(NonIntegerGpu {
                        container: container.name.clone(),
                        resource: (*name).to_owned(),
                        quantity: quantity.0.clone(),
                    });
                    None
                }
            }
        })
        .fold(0u32, u32::saturating_add)
}

/// Σ over `containers` of their GPUs (a replica's GPUs before the "0 → 1" rule).
pub fn containers_gpus(spec: &PodSpec, bad: &mut Vec<NonIntegerGpu>) -> u32 {
    spec.containers
        .iter()
        .map(|c| container_gpus(c, bad))
        .fold(0, u32::saturating_add)
}

/// GPUs a running pod holds: max(Σ containers, max over init containers).
pub fn pod_gpus(spec: &PodSpec, bad: &mut Vec<NonIntegerGpu>) -> u32 {
    let main = containers_gpus(spec, bad);
    let init = spec
        .init_containers
        .iter()
        .flatten()
        .map(|c| container_gpus(c, bad))
        .max()
        .unwrap_or(0);
    main.max(init)
}

/// A quantity that is a plain non-negative integer (`"1"`, `"8"`); anything else → `None`.
fn whole_quantity(quantity: &Quantity) -> Option<u32> {
    let text = quantity.0.trim();
    (!text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()))
        .then(|| text.parse().ok())
        .flatten()
}

/// GPUs available to WVA-managed variants, per normalised accelerator type.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GpuInventory {
    /// Σ allocatable of counted nodes − GPUs of foreign pods on them, per type.
    pub available: BTreeMap<String, u64>,
    /// Σ allocatable of counted nodes, per type.
    pub capacity: BTreeMap<String, u64>,
    /// GPUs requested by pods of no tracked variant, per type.
    pub foreign: BTreeMap<String, u64>,
    /// GPU nodes skipped because no product label names their type (WARN once each).
    pub unlabelled_nodes: Vec<String>,
}

/// Builds the GPU inventory from the Node store (already filtered by `WVA_NODE_SELECTOR`) and
/// the Pod store; pods of `tracked` targets are WVA's own and are not subtracted.
pub fn gpu_inventory<'a>(
    nodes: impl IntoIterator<Item = &'a Node>,
    pods: impl IntoIterator<Item = &'a Pod>,
    tracked: &BTreeSet<TargetKey>,
) -> GpuInventory {
    let mut inventory = GpuInventory::default();
    let mut node_types: BTreeMap<&str, String> = BTreeMap::new();
    for node in nodes {
        let Some(name) = node.metadata.name.as_deref() else {
            continue;
        };
        let allocatable = node_gpus(node);
        if allocatable == 0 || !node_schedulable_and_ready(node) {
            continue;
        }
        let empty = BTreeMap::new();
        match product_of_labels(node.metadata.labels.as_ref().unwrap_or(&empty)) {
            Some(kind) => {
                *inventory.capacity.entry(kind.clone()).or_default() += allocatable;
                node_types.insert(name, kind);
            }
            None => inventory.unlabelled_nodes.push(name.to_owned()),
        }
    }
    for pod in pods {
        let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
        if matches!(phase, Some("Succeeded" | "Failed")) {
            continue;
        }
        let Some(spec) = pod.spec.as_ref() else {
            continue;
        };
        let Some(kind) = spec.node_name.as_deref().and_then(|n| node_types.get(n)) else {
            continue;
        };
        if pod_target(pod).is_some_and(|t| tracked.contains(&t)) {
            continue;
        }
        let used = u64::from(pod_gpus(spec, &mut Vec::new()));
        if used > 0 {
            *inventory.foreign.entry(kind.clone()).or_default() += used;
        }
    }
    inventory.available = inventory
        .capacity
        .iter()
        .map(|(kind, cap)| {
            (
                kind.clone(),
                cap.saturating_sub(inventory.foreign.get(kind).copied().unwrap_or(0)),
            )
        })
        .collect();
    inventory
}

fn node_gpus(node: &Node) -> u64 {
    let Some(allocatable) = node.status.as_ref().and_then(|s| s.allocatable.as_ref()) else {
        return 0;
    };
    GPU_RESOURCES
        .iter()
        .filter_map(|r| allocatable.get(*r).and_then(whole_quantity))
        .map(u64::from)
        .sum()
}

fn node_schedulable_and_ready(node: &Node) -> bool {
    let unschedulable = node
        .spec
        .as_ref()
        .and_then(|s| s.unschedulable)
        .unwrap_or(false);
    let ready = node
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
    !unschedulable && ready
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::{PodStatus, ResourceRequirements};

    use super::*;
    use crate::target::TargetKind;
    use crate::test_fixtures::{gpus, mk_container, mk_node, mk_pod, on_node};

    const H100: (&str, &str) = ("nvidia.com/gpu.product", "NVIDIA-H100-80GB-HBM3");

    #[test]
    fn request_wins_over_limit_and_limit_counts_alone() {
        let mut both = mk_container("a", gpus("nvidia.com/gpu", "2"));
        both.resources.as_mut().unwrap().limits = Some(gpus("nvidia.com/gpu", "4"));
        let limit_only = Container {
            name: "b".into(),
            resources: Some(ResourceRequirements {
                limits: Some(gpus("amd.com/gpu", "1")),
                ..Default::default()
            }),
            ..Default::default()
        };
        let spec = PodSpec {
            containers: vec![both, limit_only],
            ..Default::default()
        };
        assert_eq!(containers_gpus(&spec, &mut Vec::new()), 3);
    }

    #[test]
    fn non_integer_quantities_count_zero_and_are_reported() {
        let spec = PodSpec {
            containers: vec![mk_container("a", gpus("nvidia.com/gpu", "500m"))],
            ..Default::default()
        };
        let mut bad = Vec::new();
        assert_eq!(containers_gpus(&spec, &mut bad), 0);
        assert_eq!(
            bad,
            [NonIntegerGpu {
                container: "a".into(),
                resource: "nvidia.com/gpu".into(),
                quantity: "500m".into()
            }]
        );
    }

    #[test]
    fn pod_holds_the_larger_of_containers_and_any_init_container() {
        let spec = PodSpec {
            containers: vec![
                mk_container("a", gpus("nvidia.com/gpu", "1")),
                mk_container("b", gpus("nvidia.com/gpu", "1")),
            ],
            init_containers: Some(vec![mk_container("i", gpus("nvidia.com/gpu", "4"))]),
            ..Default::default()
        };
        assert_eq!(pod_gpus(&spec, &mut Vec::new()), 4);
    }

    #[test]
    fn inventory_subtracts_foreign_pods_but_not_tracked_ones() {
        let nodes = [
            mk_node("n1", &[H100], "nvidia.com/gpu", "8"),
            mk_node("n2", &[H100], "nvidia.com/gpu", "8"),
        ];
        let own = on_node(
            mk_pod("ns", "vllm-a", "vllm", true),
            "n1",
            "nvidia.com/gpu",
            "2",
        );
        let foreign = on_node(
            mk_pod("ns", "train-a", "train", true),
            "n2",
            "nvidia.com/gpu",
            "3",
        );
        let tracked = BTreeSet::from([TargetKey::of(TargetKind::Deployment, "ns", "vllm")]);
        let inv = gpu_inventory(&nodes, [&own, &foreign], &tracked);
        assert_eq!(inv.capacity, BTreeMap::from([("H100".into(), 16)]));
        assert_eq!(inv.foreign, BTreeMap::from([("H100".into(), 3)]));
        assert_eq!(inv.available, BTreeMap::from([("H100".into(), 13)]));
    }

    #[test]
    fn finished_pods_release_their_gpus() {
        let nodes = [mk_node("n1", &[H100], "nvidia.com/gpu", "8")];
        let mut done = on_node(
            mk_pod("ns", "job-a", "job", false),
            "n1",
            "nvidia.com/gpu",
            "8",
        );
        done.status = Some(PodStatus {
            phase: Some("Succeeded".into()),
            ..Default::default()
        });
        let inv = gpu_inventory(&nodes, [&done], &BTreeSet::new());
        assert_eq!(inv.available, BTreeMap::from([("H100".into(), 8)]));
    }

    #[test]
    fn cordoned_not_ready_and_gpu_less_nodes_do_not_count() {
        let mut cordoned = mk_node("c", &[H100], "nvidia.com/gpu", "8");
        cordoned.spec.as_mut().unwrap().unschedulable = Some(true);
        let mut not_ready = mk_node("r", &[H100], "nvidia.com/gpu", "8");
        not_ready
            .status
            .as_mut()
            .unwrap()
            .conditions
            .as_mut()
            .unwrap()[0]
            .status = "False".into();
        let cpu_only = mk_node("cpu", &[H100], "cpu", "64");
        let inv = gpu_inventory(&[cordoned, not_ready, cpu_only], [], &BTreeSet::new());
        assert_eq!(inv, GpuInventory::default());
    }

    #[test]
    fn gpu_node_without_product_label_is_skipped_and_named() {
        let nodes = [
            mk_node("bare", &[], "nvidia.com/gpu", "8"),
            mk_node(
                "gke",
                &[("cloud.google.com/gke-accelerator", "nvidia-l4")],
                "nvidia.com/gpu",
                "1",
            ),
        ];
        let inv = gpu_inventory(&nodes, [], &BTreeSet::new());
        assert_eq!(inv.unlabelled_nodes, ["bare"]);
        assert_eq!(inv.available, BTreeMap::from([("L4".into(), 1)]));
    }

    #[test]
    fn foreign_use_never_drives_availability_below_zero() {
        let nodes = [mk_node("n1", &[H100], "nvidia.com/gpu", "2")];
        let hog = on_node(
            mk_pod("ns", "hog-a", "hog", true),
            "n1",
            "nvidia.com/gpu",
            "4",
        );
        let inv = gpu_inventory(&nodes, [&hog], &BTreeSet::new());
        assert_eq!(inv.available, BTreeMap::from([("H100".into(), 0)]));
    }
}
