//! Standalone mode: the autoscaler without Kubernetes. Variants come from a file of
//! `VariantAutoscaling` objects; pods map to variants by name prefix; current and ready
//! replicas come from kube-state-metrics series in Prometheus, else from the live pods.

pub mod configmaps;
pub mod variants;
pub mod watched;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use futures::future::BoxFuture;
use wva_collector::{CollectedSnapshot, ModelKey, ReplicaDirectory, ReplicaTarget, VariantRef};
use wva_core::{CycleReport, SaturationConfig, ScaleToZeroConfig, VariantState};
use wva_engine::{
    ActuationError, Actuator, CycleRequester, Inventory, InventorySnapshot, InventoryVariant,
};

use self::variants::StandaloneVariant;
use self::watched::WatchedFile;

/// The files standalone mode reads, re-read when they change.
#[derive(Debug)]
pub struct StandaloneFiles {
    /// The `VariantAutoscaling` objects.
    pub variants: WatchedFile<Vec<StandaloneVariant>>,
    /// The saturation scaling ConfigMap, if given.
    pub saturation: Option<WatchedFile<SaturationConfig>>,
    /// The scale-to-zero ConfigMap, if given.
    pub scale_to_zero: Option<WatchedFile<ScaleToZeroConfig>>,
}

fn parse_variants_file(path: &str, text: &str) -> Result<Vec<StandaloneVariant>, String> {
    variants::parse_variants(path, text).map_err(|e| e.to_string())
}

impl StandaloneFiles {
    /// Loads every file; any error is fatal at start.
    pub fn load(
        variants: &std::path::Path,
        saturation: Option<&std::path::Path>,
        scale_to_zero: Option<&std::path::Path>,
    ) -> Result<Self, String> {
        Ok(StandaloneFiles {
            variants: WatchedFile::load(variants, parse_variants_file)?,
            saturation: saturation
                .map(|p| WatchedFile::load(p, configmaps::parse_saturation))
                .transpose()?,
            scale_to_zero: scale_to_zero
                .map(|p| WatchedFile::load(p, configmaps::parse_scale_to_zero))
                .transpose()?,
        })
    }

    /// The current variants (re-read if the file changed).
    pub fn variants(&self) -> Arc<Vec<StandaloneVariant>> {
        self.variants.current().0
    }

    /// Whether any file changed since the last look (reloading it).
    pub fn poll_changes(&self) -> bool {
        let mut changed = self.variants.current().1;
        if let Some(f) = &self.saturation {
            changed |= f.current().1;
        }
        if let Some(f) = &self.scale_to_zero {
            changed |= f.current().1;
        }
        changed
    }
}

/// Pod → variant without Kubernetes: the variant whose `scaleTargetRef.name` followed by `-`
/// prefixes the pod name, in the same namespace and serving the same model; the longest such
/// prefix wins.
#[derive(Debug, Clone)]
pub struct StandaloneDirectory {
    files: Arc<StandaloneFiles>,
}

impl StandaloneDirectory {
    /// A directory over the variants file.
    pub fn new(files: Arc<StandaloneFiles>) -> Self {
        StandaloneDirectory { files }
    }
}

/// The owning variant of `pod` among `variants` (see [`StandaloneDirectory`]).
pub fn owner_of<'a>(
    variants: &'a [StandaloneVariant],
    namespace: &str,
    model_id: Option<&str>,
    pod: &str,
) -> Option<&'a StandaloneVariant> {
    variants
        .iter()
        .filter(|v| v.namespace == namespace && model_id.is_none_or(|m| v.model_id == m))
        .filter(|v| {
            pod.len() > v.target.len() + 1
                && pod.starts_with(v.target.as_str())
                && pod.as_bytes()[v.target.len()] == b'-'
        })
        .max_by(|a, b| {
            a.target
                .len()
                .cmp(&b.target.len())
                .then(b.name.cmp(&a.name))
        })
}

impl ReplicaDirectory for StandaloneDirectory {
    fn variant_of(&self, model: &ModelKey, pod: &str) -> Option<VariantRef> {
        let variants = self.files.variants();
        owner_of(&variants, &model.namespace, Some(&model.model_id), pod)
            .map(|v| VariantRef::new(v.namespace.clone(), v.name.clone()))
    }

    fn replicas(&self, _model: &ModelKey) -> Vec<ReplicaTarget> {
        // No pod list without Kubernetes: liveness alone decides.
        Vec::new()
    }
}

/// The last published target per variant: standalone mode has no VA status to remember it.
pub type DesiredMemory = Arc<Mutex<BTreeMap<(String, String), u32>>>;

/// The standalone inventory: variants from the file, replica counts from the metrics.
#[derive(Debug)]
pub struct StandaloneInventory {
    files: Arc<StandaloneFiles>,
    desired: DesiredMemory,
    scale_to_zero_fallback: bool,
}

impl StandaloneInventory {
    /// An inventory over the files, remembering targets in `desired`.
    pub fn new(
        files: Arc<StandaloneFiles>,
        desired: DesiredMemory,
        scale_to_zero_fallback: bool,
    ) -> Self {
        StandaloneInventory {
            files,
            desired,
            scale_to_zero_fallback,
        }
    }

    /// Requests a cycle whenever a file changes (checked every `every`).
    pub fn spawn_file_watch(
        files: Arc<StandaloneFiles>,
        requester: CycleRequester,
        every: std::time::Duration,
        shutdown: tokio_util::sync::CancellationToken,
    ) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tokio::time::sleep(every) => {}
                }
                if files.poll_changes() {
                    requester.request();
                }
            }
        })
    }
}

impl Inventory for StandaloneInventory {
    fn snapshot(&self) -> InventorySnapshot {
        let desired = self.desired.lock().unwrap_or_else(PoisonError::into_inner);
        let variants = self
            .files
            .variants()
            .iter()
            .map(|v| InventoryVariant {
                state: VariantState {
                    name: v.name.clone(),
                    namespace: v.namespace.clone(),
                    model_id: v.model_id.clone(),
                    accelerator: v.accelerator.clone(),
                    cost: v.cost,
                    current_replicas: 0,
                    ready_replicas: 0,
                    desired_replicas: desired
                        .get(&(v.namespace.clone(), v.name.clone()))
                        .copied()
                        .unwrap_or(0),
                    gpus_per_replica: 1,
                    vllm_args: None,
                },
                active: true,
            })
            .collect();
        InventorySnapshot {
            variants,
            saturation: self
                .files
                .saturation
                .as_ref()
                .map(|f| f.current().0)
                .unwrap_or_default(),
            scale_to_zero: self
                .files
                .scale_to_zero
                .as_ref()
                .map(|f| f.current().0)
                .unwrap_or_default(),
            scale_to_zero_fallback: self.scale_to_zero_fallback,
            gpu_inventory: None,
        }
    }

    fn observe(&self, snapshot: &mut InventorySnapshot, collected: &CollectedSnapshot) {
        fill_replica_counts(&self.files.variants(), snapshot, collected);
    }
}

/// kube-state-metrics `(replicas, ready)` of one Deployment.
type KsmCounts = (Option<f64>, Option<f64>);

/// Current and ready replicas: `kube_deployment_status_replicas{,_ready}` of the scale target
/// when Prometheus has them, else the number of live pods reporting for the variant.
pub fn fill_replica_counts(
    files: &[StandaloneVariant],
    snapshot: &mut InventorySnapshot,
    collected: &CollectedSnapshot,
) {
    let mut live: BTreeMap<(&str, &str), u32> = BTreeMap::new();
    for (key, model) in &collected.models {
        for record in model.replicas.values() {
            *live
                .entry((key.namespace.as_str(), record.variant.name.as_str()))
                .or_default() += 1;
        }
    }
    let deployments: BTreeMap<(&str, &str), KsmCounts> = collected
        .deployments
        .iter()
        .map(|d| {
            (
                (d.namespace.as_str(), d.deployment.as_str()),
                (d.replicas, d.ready_replicas),
            )
        })
        .collect();
    let targets: BTreeMap<(&str, &str), &str> = files
        .iter()
        .map(|v| ((v.namespace.as_str(), v.name.as_str()), v.target.as_str()))
        .collect();
    for v in &mut snapshot.variants {
        let s = &mut v.state;
        let pods = live
            .get(&(s.namespace.as_str(), s.name.as_str()))
            .copied()
            .unwrap_or(0);
        let ksm = targets
            .get(&(s.namespace.as_str(), s.name.as_str()))
            .and_then(|t| deployments.get(&(s.namespace.as_str(), *t)));
        let count = |x: Option<f64>| x.filter(|n| n.is_finite() && *n >= 0.0).map(|n| n as u32);
        s.current_replicas = ksm.and_then(|(r, _)| count(*r)).unwrap_or(pods);
        s.ready_replicas = ksm.and_then(|(_, r)| count(*r)).unwrap_or(pods);
    }
}

/// Standalone actuation: publish only, and remember each target as the next cycle's
/// previous desired value.
#[derive(Debug, Clone)]
pub struct RememberTargets {
    desired: DesiredMemory,
}

impl RememberTargets {
    /// An actuator writing into `desired`.
    pub fn new(desired: DesiredMemory) -> Self {
        RememberTargets { desired }
    }
}

impl Actuator for RememberTargets {
    fn apply<'a>(&'a self, report: &'a CycleReport) -> BoxFuture<'a, Vec<ActuationError>> {
        let mut desired = self.desired.lock().unwrap_or_else(PoisonError::into_inner);
        desired.clear();
        for d in &report.decisions {
            desired.insert((d.namespace.clone(), d.variant.clone()), d.target_replicas);
        }
        Box::pin(async { Vec::new() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(ns: &str, name: &str, model: &str, target: &str) -> StandaloneVariant {
        StandaloneVariant {
            namespace: ns.into(),
            name: name.into(),
            model_id: model.into(),
            accelerator: String::new(),
            cost: 10.0,
            target: target.into(),
        }
    }

    #[test]
    fn longest_target_prefix_in_the_same_namespace_and_model_owns_the_pod() {
        let vs = [
            v("a", "llama", "m", "llama"),
            v("a", "llama-h100", "m", "llama-h100"),
            v("b", "other", "m", "llama-h100-x"),
        ];
        assert_eq!(
            owner_of(&vs, "a", Some("m"), "llama-h100-5d-abc")
                .unwrap()
                .name,
            "llama-h100"
        );
        assert_eq!(
            owner_of(&vs, "a", Some("m"), "llama-l4-5d-abc")
                .unwrap()
                .name,
            "llama"
        );
        assert!(owner_of(&vs, "a", Some("other-model"), "llama-h100-5d-abc").is_none());
        assert!(owner_of(&vs, "a", Some("m"), "llama").is_none());
        assert!(owner_of(&vs, "a", Some("m"), "llamaX-1").is_none());
        assert!(owner_of(&vs, "c", Some("m"), "llama-h100-1").is_none());
    }

    #[test]
    fn replica_counts_prefer_kube_state_metrics_then_live_pods() {
        let files = vec![v("a", "x", "m", "x-dep"), v("a", "y", "m", "y")];
        let mut snap = InventorySnapshot {
            variants: files
                .iter()
                .map(|f| InventoryVariant {
                    state: VariantState {
                        name: f.name.clone(),
                        namespace: f.namespace.clone(),
                        model_id: f.model_id.clone(),
                        accelerator: String::new(),
                        cost: 1.0,
                        current_replicas: 0,
                        ready_replicas: 0,
                        desired_replicas: 0,
                        gpus_per_replica: 1,
                        vllm_args: None,
                    },
                    active: true,
                })
                .collect(),
            ..InventorySnapshot::default()
        };
        let mut collected = CollectedSnapshot::empty("prometheus");
        collected
            .deployments
            .push(wva_collector::DeploymentReplicas {
                namespace: "a".into(),
                deployment: "x-dep".into(),
                replicas: Some(3.0),
                ready_replicas: Some(2.0),
            });
        let mut model = wva_collector::ModelSnapshot::unavailable(Vec::new());
        for pod in ["y-1", "y-2"] {
            model.replicas.insert(wva_collector::ReplicaRecord::new(
                pod,
                VariantRef::new("a", "y"),
                std::time::Duration::ZERO,
            ));
        }
        collected.models.insert(ModelKey::new("a", "m"), model);
        fill_replica_counts(&files, &mut snap, &collected);
        assert_eq!(
            (
                snap.variants[0].state.current_replicas,
                snap.variants[0].state.ready_replicas
            ),
            (3, 2)
        );
        assert_eq!(
            (
                snap.variants[1].state.current_replicas,
                snap.variants[1].state.ready_replicas
            ),
            (2, 2)
        );
    }
}
