//! The inventory (spec/k8s.md §4): a pure function from store snapshots (VAs, Deployments,
//! LeaderWorkerSets, Pods) and the filters to the variants the engine optimises, plus the VAs
//! whose target is not resolved. No API call; `BTreeMap` order by `(namespace, name)`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Container, Pod, PodSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::core::DynamicObject;

use crate::accelerator::{AcceleratorResolution, resolve_accelerator};
use crate::crd::VariantAutoscaling;
use crate::gpu::{NonIntegerGpu, container_gpus};
use crate::labels::{CONFIG_ENABLED_LABEL, CONTROLLER_INSTANCE_LABEL, EXCLUDE_ANNOTATION};
use crate::status::TargetState;
use crate::target::{
    ObjectName, TargetKey, TargetKind, conflict_owner, object_name, pod_target, target_key,
};
use crate::workload::WorkloadView;

/// Which VAs this manager tracks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filters {
    /// `CONTROLLER_INSTANCE`: only VAs labelled with it; unset → only unlabelled VAs.
    pub controller_instance: Option<String>,
    /// Namespaces annotated `wva.llmd.ai/exclude: "true"`.
    pub excluded_namespaces: BTreeSet<String>,
    /// `WATCH_NAMESPACE`: never excluded.
    pub watch_namespace: Option<String>,
}

impl Filters {
    /// Whether `va` belongs to this controller instance and is not in an excluded namespace.
    pub fn tracks(&self, va: &VariantAutoscaling) -> bool {
        let label = va
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(CONTROLLER_INSTANCE_LABEL));
        if label.map(String::as_str) != self.controller_instance.as_deref() {
            return false;
        }
        !self.is_excluded(va.metadata.namespace.as_deref().unwrap_or_default())
    }

    /// Whether a namespace is excluded (the watch namespace never is).
    pub fn is_excluded(&self, namespace: &str) -> bool {
        self.watch_namespace.as_deref() != Some(namespace)
            && self.excluded_namespaces.contains(namespace)
    }
}

/// Whether a Namespace's metadata carries `wva.llmd.ai/exclude: "true"`.
pub fn namespace_excluded(meta: &ObjectMeta) -> bool {
    meta.annotations
        .as_ref()
        .and_then(|a| a.get(EXCLUDE_ANNOTATION))
        .is_some_and(|v| v == "true")
}

/// Whether a Namespace's metadata carries `wva.llmd.ai/config-enabled: "true"`.
pub fn namespace_config_enabled(meta: &ObjectMeta) -> bool {
    meta.labels
        .as_ref()
        .and_then(|l| l.get(CONFIG_ENABLED_LABEL))
        .is_some_and(|v| v == "true")
}

/// The stores' contents at one instant (`Store::state()` of each reflector).
#[derive(Debug, Clone, Copy)]
pub struct Snapshot<'a> {
    /// VariantAutoscalings.
    pub vas: &'a [Arc<VariantAutoscaling>],
    /// Deployments.
    pub deployments: &'a [Arc<Deployment>],
    /// LeaderWorkerSets (empty when the API is not served).
    pub leader_worker_sets: &'a [Arc<DynamicObject>],
    /// Pods.
    pub pods: &'a [Arc<Pod>],
}

/// One live pod of a target.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct PodEntry {
    /// Pod name.
    pub name: String,
    /// The pod's Ready condition.
    pub ready: bool,
}

/// What a change of which must trigger a cycle (spec/k8s.md §3.4).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Fingerprint {
    /// VA `metadata.generation`.
    pub generation: i64,
    /// Target `spec.replicas`.
    pub spec_replicas: u32,
    /// Whether every replica is Ready (pending = 0).
    pub all_ready: bool,
    /// The resolved accelerator.
    pub accelerator: String,
    /// GPUs per replica.
    pub gpus_per_replica: u32,
}

/// A tracked, resolved variant with its spec and state.
#[derive(Debug, Clone, PartialEq)]
pub struct VariantEntry {
    /// VA namespace.
    pub namespace: String,
    /// VA name (the metric's `variant_name`).
    pub name: String,
    /// `spec.modelID`.
    pub model_id: String,
    /// `spec.variantCost` parsed, `10.0` when unparsable.
    pub cost: f64,
    /// Whether `spec.variantCost` parsed (false → WARN once per generation).
    pub cost_valid: bool,
    /// The resolved accelerator.
    pub accelerator: AcceleratorResolution,
    /// The target.
    pub target: TargetKey,
    /// The target's kind.
    pub kind: TargetKind,
    /// `status.replicas` (LeaderWorkerSet: groups).
    pub current: u32,
    /// `status.readyReplicas`.
    pub ready: u32,
    /// `max(0, current − ready)`.
    pub pending: u32,
    /// `spec.replicas` (absent → 1).
    pub spec_replicas: u32,
    /// `spec.replicas != 0`.
    pub active: bool,
    /// GPUs per replica (at least 1).
    pub gpus_per_replica: u32,
    /// `status.desiredOptimizedAlloc.numReplicas`, 0 if absent.
    pub previous_desired: u32,
    /// The vLLM container's command and arguments, preceded by `VLLM_USE_V1=<v>` if set.
    pub vllm_args: Vec<String>,
    /// Live pods of the target, by name.
    pub pods: Vec<PodEntry>,
    /// VA `metadata.generation`.
    pub generation: i64,
    /// For trigger detection.
    pub fingerprint: Fingerprint,
    /// GPU quantities that are not whole numbers (counted as 0; WARN).
    pub non_integer_gpus: Vec<NonIntegerGpu>,
}

/// A tracked VA whose target is not resolved (its gauges are removed while unresolved).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnresolvedVariant {
    /// VA namespace.
    pub namespace: String,
    /// VA name.
    pub name: String,
    /// `spec.modelID`.
    pub model_id: String,
    /// Why it is unresolved (never `Found`).
    pub state: TargetState,
}

/// The inventory of one instant.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Inventory {
    /// Resolved variants, `(namespace, name)` order; inactive ones have `active = false`.
    pub variants: Vec<VariantEntry>,
    /// Tracked VAs without a usable target, `(namespace, name)` order.
    pub unresolved: Vec<UnresolvedVariant>,
}

/// Target lookups over one snapshot: resolves VAs to targets, applying the conflict rule.
#[derive(Debug)]
pub struct Targets<'a> {
    deployments: BTreeMap<(&'a str, &'a str), &'a Deployment>,
    leader_worker_sets: BTreeMap<(&'a str, &'a str), &'a DynamicObject>,
    claims: BTreeMap<TargetKey, Vec<&'a VariantAutoscaling>>,
    pods: BTreeMap<TargetKey, Vec<PodEntry>>,
}

/// A VA's resolved target.
#[derive(Debug, Clone, PartialEq)]
pub enum Resolution {
    /// Found and owned by the VA.
    Found {
        /// The target key.
        key: TargetKey,
        /// Its kind.
        kind: TargetKind,
        /// Its view.
        view: Box<WorkloadView>,
    },
    /// Not usable; the state says why.
    Unresolved(TargetState),
}

impl Resolution {
    /// The status-facing state.
    pub fn state(&self) -> TargetState {
        match self {
            Resolution::Found { view, .. } => TargetState::Found {
                spec_replicas: spec_replicas(view.spec_replicas),
            },
            Resolution::Unresolved(state) => state.clone(),
        }
    }
}

impl<'a> Targets<'a> {
    /// Indexes the snapshot; only VAs that `filters` tracks claim targets.
    pub fn new(snapshot: Snapshot<'a>, filters: &Filters) -> Targets<'a> {
        let key_of = |meta: &'a ObjectMeta| {
            (
                meta.namespace.as_deref().unwrap_or_default(),
                meta.name.as_deref().unwrap_or_default(),
            )
        };
        let mut claims: BTreeMap<TargetKey, Vec<&VariantAutoscaling>> = BTreeMap::new();
        for va in snapshot.vas.iter().filter(|va| filters.tracks(va)) {
            claims.entry(target_key(va)).or_default().push(va);
        }
        let mut pods: BTreeMap<TargetKey, Vec<PodEntry>> = BTreeMap::new();
        for pod in snapshot
            .pods
            .iter()
            .filter(|p| p.metadata.deletion_timestamp.is_none())
        {
            if let Some(key) = pod_target(pod) {
                pods.entry(key).or_default().push(PodEntry {
                    name: pod.metadata.name.clone().unwrap_or_default(),
                    ready: pod_ready(pod),
                });
            }
        }
        pods.values_mut().for_each(|v| v.sort());
        Targets {
            deployments: snapshot
                .deployments
                .iter()
                .map(|d| (key_of(&d.metadata), d.as_ref()))
                .collect(),
            leader_worker_sets: snapshot
                .leader_worker_sets
                .iter()
                .map(|l| (key_of(&l.metadata), l.as_ref()))
                .collect(),
            claims,
            pods,
        }
    }

    /// Resolves `va`'s target: unsupported kind, not found (or being deleted), conflict (an
    /// older VA owns it), or found.
    pub fn resolve(&self, va: &VariantAutoscaling) -> Resolution {
        let key = target_key(va);
        let Some(kind) = key.supported_kind() else {
            return Resolution::Unresolved(TargetState::Unsupported);
        };
        let at = (key.namespace.as_str(), key.name.as_str());
        let view = match kind {
            TargetKind::Deployment => self
                .deployments
                .get(&at)
                .map(|d| WorkloadView::of_deployment(d)),
            TargetKind::LeaderWorkerSet => self
                .leader_worker_sets
                .get(&at)
                .and_then(|l| WorkloadView::of_leader_worker_set(l)),
        };
        let Some(view) = view.filter(|v| !v.deleting) else {
            return Resolution::Unresolved(TargetState::NotFound);
        };
        let owner = self
            .claims
            .get(&key)
            .and_then(|c| conflict_owner(c.iter().copied()));
        if let Some(owner) = owner
            && object_name(owner) != object_name(va)
        {
            return Resolution::Unresolved(TargetState::Conflict {
                owner: owner.metadata.name.clone().unwrap_or_default(),
            });
        }
        Resolution::Found {
            key,
            kind,
            view: Box::new(view),
        }
    }

    /// Live pods of a target, by name.
    pub fn pods_of(&self, key: &TargetKey) -> &[PodEntry] {
        self.pods.get(key).map_or(&[], Vec::as_slice)
    }
}

/// Builds the inventory: every tracked VA is either a variant (target found and owned) or
/// unresolved; VAs of other instances and excluded namespaces are absent.
pub fn build_inventory(snapshot: Snapshot<'_>, filters: &Filters) -> Inventory {
    let targets = Targets::new(snapshot, filters);
    let mut vas: Vec<&VariantAutoscaling> = snapshot
        .vas
        .iter()
        .map(Arc::as_ref)
        .filter(|va| filters.tracks(va))
        .collect();
    vas.sort_by_key(|va| object_name(va));
    vas.dedup_by_key(|va| object_name(va));
    let mut inventory = Inventory::default();
    for va in vas {
        let (namespace, name): ObjectName = object_name(va);
        match targets.resolve(va) {
            Resolution::Found { key, kind, view } => {
                let pods = targets.pods_of(&key).to_vec();
                inventory
                    .variants
                    .push(variant_entry(va, namespace, name, key, kind, &view, pods));
            }
            Resolution::Unresolved(state) => inventory.unresolved.push(UnresolvedVariant {
                namespace,
                name,
                model_id: va.spec.model_id.clone(),
                state,
            }),
        }
    }
    inventory
}

fn variant_entry(
    va: &VariantAutoscaling,
    namespace: String,
    name: String,
    target: TargetKey,
    kind: TargetKind,
    view: &WorkloadView,
    pods: Vec<PodEntry>,
) -> VariantEntry {
    let templates: Vec<&PodSpec> = view.accelerator_templates.iter().collect();
    let accelerator = resolve_accelerator(va, &templates);
    let mut non_integer_gpus = Vec::new();
    let gpus_per_replica = view.gpus_per_replica(&mut non_integer_gpus);
    let current = non_negative(view.current);
    let ready = non_negative(view.ready);
    let pending = current.saturating_sub(ready);
    let spec_replicas = spec_replicas(view.spec_replicas);
    let generation = va.metadata.generation.unwrap_or(0);
    let previous_desired = va
        .status
        .as_ref()
        .and_then(|s| s.desired_optimized_alloc.as_ref())
        .map_or(0, |a| a.num_replicas);
    let cost = va.spec.parsed_cost();
    VariantEntry {
        fingerprint: Fingerprint {
            generation,
            spec_replicas,
            all_ready: pending == 0,
            accelerator: accelerator.name.clone(),
            gpus_per_replica,
        },
        namespace,
        name,
        model_id: va.spec.model_id.clone(),
        cost: cost.unwrap_or(10.0),
        cost_valid: cost.is_some(),
        accelerator,
        target,
        kind,
        current,
        ready,
        pending,
        spec_replicas,
        active: spec_replicas != 0,
        gpus_per_replica,
        previous_desired,
        vllm_args: view
            .serving_template
            .as_ref()
            .map(vllm_args)
            .unwrap_or_default(),
        pods,
        generation,
        non_integer_gpus,
    }
}

fn spec_replicas(replicas: Option<i32>) -> u32 {
    replicas.map_or(1, non_negative)
}

fn non_negative(n: i32) -> u32 {
    u32::try_from(n).unwrap_or(0)
}

fn pod_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// The vLLM container's `command` then `args`, preceded by `VLLM_USE_V1=<v>` when its env sets
/// it. The vLLM container is the first whose command or args hold a token ending in `vllm` or
/// `vllm.entrypoints.openai.api_server`, else the first requesting a GPU, else the first.
pub fn vllm_args(spec: &PodSpec) -> Vec<String> {
    let runs_vllm = |c: &Container| {
        c.command
            .iter()
            .chain(c.args.iter())
            .flatten()
            .flat_map(|a| a.split_whitespace())
            .any(|token| {
                token.ends_with("vllm") || token.ends_with("vllm.entrypoints.openai.api_server")
            })
    };
    let containers = &spec.containers;
    let chosen = containers
        .iter()
        .find(|c| runs_vllm(c))
        .or_else(|| {
            containers
                .iter()
                .find(|c| container_gpus(c, &mut Vec::new()) > 0)
        })
        .or_else(|| containers.first());
    let Some(container) = chosen else {
        return Vec::new();
    };
    let use_v1 = container
        .env
        .iter()
        .flatten()
        .find(|e| e.name == "VLLM_USE_V1")
        .and_then(|e| e.value.clone());
    use_v1
        .map(|v| format!("VLLM_USE_V1={v}"))
        .into_iter()
        .chain(container.command.iter().flatten().cloned())
        .chain(container.args.iter().flatten().cloned())
        .collect()
}

#[cfg(test)]
mod tests;
