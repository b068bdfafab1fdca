//! The engine's [`Inventory`] in Kubernetes mode: each cycle reads the reflector stores (no API
//! call), builds the inventory (spec/k8s.md §4), records what it saw on the outcome board, and
//! refreshes the pod → variant directory the collector joins Prometheus series with.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, PoisonError};

use arc_swap::ArcSwap;
use wva_collector::{CollectedSnapshot, ModelKey, ReplicaDirectory, ReplicaTarget, VariantRef};
use wva_core::VariantState;
use wva_engine::{Inventory, InventorySnapshot, InventoryVariant};

use super::context::FilterSource;
use super::outcomes::{OutcomeBoard, metric_errors};
use crate::gpu::gpu_inventory;
use crate::handles::{ConfigHandle, Stores};
use crate::inventory::{self, Snapshot, VariantEntry, build_inventory};
use crate::target::ObjectName;

/// What the collector needs to attribute pods: pod → owning variant (the conflict winner), and
/// each model's Ready pods.
#[derive(Debug, Default)]
struct DirectoryMap {
    /// `(namespace, pod)` → `(variant, modelID)`.
    owners: HashMap<(String, String), (String, String)>,
    /// Ready pods per model.
    ready: BTreeMap<ModelKey, Vec<ReplicaTarget>>,
}

impl DirectoryMap {
    fn of(variants: &[VariantEntry]) -> DirectoryMap {
        let mut map = DirectoryMap::default();
        for v in variants {
            let key = ModelKey::new(v.namespace.clone(), v.model_id.clone());
            for pod in &v.pods {
                map.owners.insert(
                    (v.namespace.clone(), pod.name.clone()),
                    (v.name.clone(), v.model_id.clone()),
                );
                if pod.ready {
                    map.ready
                        .entry(key.clone())
                        .or_default()
                        .push(ReplicaTarget {
                            pod: pod.name.clone(),
                            variant: VariantRef::new(v.namespace.clone(), v.name.clone()),
                            endpoint: None,
                        });
                }
            }
        }
        map
    }
}

/// The collector's pod → variant join over the last inventory snapshot (spec/k8s.md §3.3):
/// `variant_of` answers the owning VA when its `modelID` matches; `replicas` lists the model's
/// Ready pods without a scrape endpoint (Kubernetes mode reads Prometheus).
#[derive(Debug, Clone)]
pub struct KubeDirectory {
    map: Arc<ArcSwap<DirectoryMap>>,
}

impl ReplicaDirectory for KubeDirectory {
    fn variant_of(&self, model: &ModelKey, pod: &str) -> Option<VariantRef> {
        let map = self.map.load();
        let (variant, model_id) = map.owners.get(&(model.namespace.clone(), pod.to_owned()))?;
        (model_id == &model.model_id).then(|| VariantRef::new(model.namespace.clone(), variant))
    }

    fn replicas(&self, model: &ModelKey) -> Vec<ReplicaTarget> {
        self.map
            .load()
            .ready
            .get(model)
            .cloned()
            .unwrap_or_default()
    }
}

/// The Kubernetes inventory over the reflector stores and the hot-reloaded configuration.
pub struct KubeInventory {
    stores: Stores,
    config: ConfigHandle,
    filters: FilterSource,
    board: OutcomeBoard,
    scale_to_zero_fallback: bool,
    directory: Arc<ArcSwap<DirectoryMap>>,
    /// Per VA, the generation whose unparsable `variantCost` was already logged.
    cost_warned: Mutex<HashMap<ObjectName, i64>>,
}

impl std::fmt::Debug for KubeInventory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeInventory")
            .field("filters", &self.filters)
            .field("scale_to_zero_fallback", &self.scale_to_zero_fallback)
            .finish_non_exhaustive()
    }
}

impl KubeInventory {
    /// An inventory over `stores` and `config`, tracking the VAs `filters` selects, recording
    /// what each cycle saw on `board`; `scale_to_zero_fallback` is `--scale-to-zero`.
    pub fn new(
        stores: Stores,
        config: ConfigHandle,
        filters: FilterSource,
        board: OutcomeBoard,
        scale_to_zero_fallback: bool,
    ) -> KubeInventory {
        KubeInventory {
            stores,
            config,
            filters,
            board,
            scale_to_zero_fallback,
            directory: Arc::default(),
            cost_warned: Mutex::new(HashMap::new()),
        }
    }

    /// The collector's pod → variant directory, refreshed by every snapshot.
    pub fn directory(&self) -> KubeDirectory {
        KubeDirectory {
            map: self.directory.clone(),
        }
    }

    /// The inventory of the stores' current contents.
    pub fn inventory(&self) -> inventory::Inventory {
        let vas = self.stores.vas.state();
        let deployments = self.stores.deployments.state();
        let leader_worker_sets = self
            .stores
            .leader_worker_sets
            .as_ref()
            .map(|s| s.state())
            .unwrap_or_default();
        let pods = self.stores.pods.state();
        build_inventory(
            Snapshot {
                vas: &vas,
                deployments: &deployments,
                leader_worker_sets: &leader_worker_sets,
                pods: &pods,
            },
            &self.filters.current(),
        )
    }

    fn warn_once(&self, inventory: &inventory::Inventory) {
        let mut warned = self
            .cost_warned
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        for v in &inventory.variants {
            let id = (v.namespace.clone(), v.name.clone());
            if !v.cost_valid && warned.get(&id) != Some(&v.generation) {
                tracing::warn!(namespace = %v.namespace, variant = %v.name, "variantCost is not a decimal number; using 10.0");
                warned.insert(id, v.generation);
            }
            for bad in &v.non_integer_gpus {
                tracing::warn!(namespace = %v.namespace, variant = %v.name, gpu = ?bad, "GPU quantity is not a whole number; counted as 0");
            }
        }
    }

    fn gpus(&self, inventory: &inventory::Inventory) -> Option<BTreeMap<String, u64>> {
        let nodes = self.stores.nodes.as_ref()?.state();
        let pods = self.stores.pods.state();
        let tracked: BTreeSet<_> = inventory
            .variants
            .iter()
            .map(|v| v.target.clone())
            .collect();
        let gpus = gpu_inventory(
            nodes.iter().map(|n| n.as_ref()),
            pods.iter().map(|p| p.as_ref()),
            &tracked,
        );
        Some(gpus.available)
    }
}

/// The core's view of one inventory entry.
pub fn variant_state(v: &VariantEntry) -> VariantState {
    VariantState {
        name: v.name.clone(),
        namespace: v.namespace.clone(),
        model_id: v.model_id.clone(),
        accelerator: v.accelerator.name.clone(),
        cost: v.cost,
        current_replicas: v.current,
        ready_replicas: v.ready,
        desired_replicas: v.previous_desired,
        gpus_per_replica: v.gpus_per_replica,
        vllm_args: (!v.vllm_args.is_empty()).then(|| v.vllm_args.clone()),
    }
}

impl Inventory for KubeInventory {
    fn snapshot(&self) -> InventorySnapshot {
        let inventory = self.inventory();
        self.warn_once(&inventory);
        let seen = inventory
            .variants
            .iter()
            .map(|v| {
                (
                    (v.namespace.clone(), v.name.clone()),
                    Some(v.fingerprint.clone()),
                )
            })
            .chain(
                inventory
                    .unresolved
                    .iter()
                    .map(|u| ((u.namespace.clone(), u.name.clone()), None)),
            )
            .collect();
        self.board.record_seen(seen);
        self.directory
            .store(Arc::new(DirectoryMap::of(&inventory.variants)));
        let config = self.config.load();
        InventorySnapshot {
            variants: inventory
                .variants
                .iter()
                .map(|v| InventoryVariant {
                    state: variant_state(v),
                    active: v.active,
                })
                .collect(),
            saturation: config.saturation.clone(),
            scale_to_zero: config.scale_to_zero.clone(),
            scale_to_zero_fallback: self.scale_to_zero_fallback,
            gpu_inventory: self.gpus(&inventory),
        }
    }

    /// Keeps the cycle's Prometheus errors for the actuator, which reports them as
    /// `MetricsAvailable=False/PrometheusError` (spec/k8s.md §2.2).
    fn observe(&self, _snapshot: &mut InventorySnapshot, collected: &CollectedSnapshot) {
        self.board.record_metric_errors(metric_errors(collected));
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::apps::v1::Deployment;
    use k8s_openapi::api::core::v1::Pod;
    use kube::runtime::reflector::{Store, store::Writer};
    use kube::runtime::watcher::Event;

    use super::*;
    use crate::crd::VariantAutoscaling;
    use crate::handles::ActiveConfig;
    use crate::test_fixtures::{mk_deployment, mk_pod, mk_va};

    fn store<K>(objects: Vec<K>) -> Store<K>
    where
        K: kube::Resource + Clone + 'static,
        K::DynamicType: Default + Eq + std::hash::Hash + Clone,
    {
        let mut writer = Writer::<K>::default();
        writer.apply_watcher_event(&Event::Init);
        for o in objects {
            writer.apply_watcher_event(&Event::InitApply(o));
        }
        writer.apply_watcher_event(&Event::InitDone);
        writer.as_reader()
    }

    fn stores(
        vas: Vec<VariantAutoscaling>,
        deployments: Vec<Deployment>,
        pods: Vec<Pod>,
    ) -> Stores {
        Stores {
            vas: store(vas),
            deployments: store(deployments),
            leader_worker_sets: None,
            pods: store(pods),
            namespaces: None,
            nodes: None,
            inference_pools: None,
            hpas: None,
        }
    }

    fn inventory(stores: Stores, board: OutcomeBoard) -> KubeInventory {
        KubeInventory::new(
            stores,
            Arc::new(ArcSwap::from_pointee(ActiveConfig::default())),
            FilterSource::new(None, None, None),
            board,
            true,
        )
    }

    #[test]
    fn snapshot_lists_resolved_variants_in_core_terms_and_records_what_it_saw() {
        let board = OutcomeBoard::new();
        let mut previous = mk_va("ns", "a", "da", Some("H100"));
        previous.status = Some(crate::crd::VariantAutoscalingStatus {
            desired_optimized_alloc: Some(crate::crd::OptimizedAlloc {
                accelerator: "H100".into(),
                num_replicas: 3,
                last_run_time: None,
            }),
            ..Default::default()
        });
        let inv = inventory(
            stores(
                vec![previous, mk_va("ns", "orphan", "missing", None)],
                vec![mk_deployment("ns", "da", Some(2), 2, 1, "2")],
                vec![
                    mk_pod("ns", "da-7d9f8-x", "da", true),
                    mk_pod("ns", "da-7d9f8-y", "da", false),
                ],
            ),
            board.clone(),
        );
        let snapshot = inv.snapshot();
        assert_eq!(snapshot.variants.len(), 1);
        let v = &snapshot.variants[0];
        assert!(v.active);
        assert_eq!(
            v.state,
            VariantState {
                name: "a".into(),
                namespace: "ns".into(),
                model_id: "m".into(),
                accelerator: "H100".into(),
                cost: 10.0,
                current_replicas: 2,
                ready_replicas: 1,
                desired_replicas: 3,
                gpus_per_replica: 2,
                vllm_args: Some(vec![
                    "vllm".into(),
                    "serve".into(),
                    "--model".into(),
                    "m".into()
                ]),
            }
        );
        assert!(snapshot.scale_to_zero_fallback);
        assert_eq!(
            snapshot.gpu_inventory, None,
            "no Node store, no limiter inventory"
        );
        assert!(
            !board.cycle_needed("ns", "orphan", None),
            "unresolved VA was seen"
        );
        let seen = inv.inventory().variants[0].fingerprint.clone();
        assert!(!board.cycle_needed("ns", "a", Some(&seen)));

        let directory = inv.directory();
        let model = ModelKey::new("ns", "m");
        assert_eq!(
            directory.variant_of(&model, "da-7d9f8-y"),
            Some(VariantRef::new("ns", "a"))
        );
        assert_eq!(
            directory.variant_of(&ModelKey::new("ns", "other"), "da-7d9f8-y"),
            None
        );
        assert_eq!(directory.variant_of(&model, "stranger"), None);
        let ready: Vec<String> = directory
            .replicas(&model)
            .into_iter()
            .map(|r| r.pod)
            .collect();
        assert_eq!(ready, ["da-7d9f8-x"]);
    }

    #[test]
    fn observe_records_the_cycles_prometheus_errors_for_the_actuator() {
        let board = OutcomeBoard::new();
        let inv = inventory(stores(vec![], vec![], vec![]), board.clone());
        let mut snapshot = inv.snapshot();
        let mut collected = CollectedSnapshot::empty("prometheus");
        let error = wva_collector::CollectorError::Timeout {
            query: "replica_last_sample".into(),
            after: std::time::Duration::from_secs(5),
        };
        collected.models.insert(
            ModelKey::new("ns", "m"),
            wva_collector::ModelSnapshot::unavailable(vec![(
                wva_collector::QueryName::ReplicaLastSample,
                error.clone(),
            )]),
        );
        inv.observe(&mut snapshot, &collected);
        assert_eq!(
            board
                .metric_errors()
                .get(&("ns".to_owned(), "m".to_owned())),
            Some(&error.to_string())
        );
        // The next cycle's collection replaces the record: the error is gone once it recovers.
        inv.observe(&mut snapshot, &CollectedSnapshot::empty("prometheus"));
        assert!(board.metric_errors().is_empty());
    }

    #[test]
    fn idle_target_is_listed_inactive() {
        let inv = inventory(
            stores(
                vec![mk_va("ns", "a", "da", None)],
                vec![mk_deployment("ns", "da", Some(0), 0, 0, "1")],
                vec![],
            ),
            OutcomeBoard::new(),
        );
        let snapshot = inv.snapshot();
        assert_eq!(snapshot.variants.len(), 1);
        assert!(!snapshot.variants[0].active);
        assert_eq!(snapshot.variants[0].state.accelerator, "unknown");
    }
}
