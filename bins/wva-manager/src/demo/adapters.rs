//! The engine's three adapters over the simulated fleet: inventory, pod directory, actuator.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use futures::future::BoxFuture;
use wva_collector::{Endpoint, ModelKey, ReplicaDirectory, ReplicaTarget, Scheme, VariantRef};
use wva_core::{CycleReport, VariantState};
use wva_engine::{ActuationError, Actuator, Inventory, InventorySnapshot, InventoryVariant};
use wva_sim::{FleetHandle, HpaConfig, HpaEmulator};

/// Targets published by the engine, per variant name (the fleet has one namespace).
pub type Published = Arc<Mutex<BTreeMap<String, u32>>>;

/// Variants, replica counts and the previous target, read from the fleet's snapshot.
pub struct FleetInventory {
    fleet: FleetHandle,
    published: Published,
}

impl FleetInventory {
    /// An inventory over `fleet`; `published` holds the last targets.
    pub fn new(fleet: FleetHandle, published: Published) -> Self {
        FleetInventory { fleet, published }
    }
}

impl Inventory for FleetInventory {
    fn snapshot(&self) -> InventorySnapshot {
        let snap = self.fleet.snapshot();
        let published = self
            .published
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let variants = snap
            .variants
            .iter()
            .map(|v| InventoryVariant {
                state: VariantState {
                    name: v.name.clone(),
                    namespace: snap.namespace.clone(),
                    model_id: v.model.clone(),
                    accelerator: v.accelerator.clone(),
                    cost: v.cost,
                    current_replicas: v.counts.current,
                    ready_replicas: v.counts.ready,
                    desired_replicas: published.get(&v.name).copied().unwrap_or(0),
                    gpus_per_replica: v.gpus_per_replica,
                    vllm_args: None,
                },
                active: true,
            })
            .collect();
        InventorySnapshot {
            variants,
            ..InventorySnapshot::default()
        }
    }
}

/// Pod → variant from the fleet's live, non-draining targets, with their scrape endpoints.
pub struct FleetDirectory {
    fleet: FleetHandle,
}

impl FleetDirectory {
    /// A directory over `fleet`.
    pub fn new(fleet: FleetHandle) -> Self {
        FleetDirectory { fleet }
    }
}

impl ReplicaDirectory for FleetDirectory {
    fn variant_of(&self, model: &ModelKey, pod: &str) -> Option<VariantRef> {
        self.fleet
            .targets()
            .into_iter()
            .find(|t| t.pod == pod && !t.draining)
            .filter(|t| t.model == model.model_id && t.namespace == model.namespace)
            .map(|t| VariantRef::new(t.namespace, t.variant))
    }

    fn replicas(&self, model: &ModelKey) -> Vec<ReplicaTarget> {
        self.fleet
            .targets()
            .into_iter()
            .filter(|t| !t.draining && t.model == model.model_id && t.namespace == model.namespace)
            .map(|t| ReplicaTarget {
                endpoint: Some(Endpoint::new(Scheme::Http, t.addr, t.path.clone())),
                variant: VariantRef::new(t.namespace.clone(), t.variant.clone()),
                pod: t.pod,
            })
            .collect()
    }
}

/// Resizes the fleet from the published targets through one HPA emulator per variant, as an
/// HPA on `inferno_desired_replicas` would (`None`: apply the targets directly).
pub struct FleetActuator {
    fleet: FleetHandle,
    published: Published,
    hpa: Option<HpaConfig>,
    emulators: Mutex<BTreeMap<String, HpaEmulator>>,
}

impl FleetActuator {
    /// An actuator over `fleet`.
    pub fn new(fleet: FleetHandle, published: Published, hpa: Option<HpaConfig>) -> Self {
        FleetActuator {
            fleet,
            published,
            hpa,
            emulators: Mutex::new(BTreeMap::new()),
        }
    }
}

impl Actuator for FleetActuator {
    fn apply<'a>(&'a self, report: &'a CycleReport) -> BoxFuture<'a, Vec<ActuationError>> {
        let mut errors = Vec::new();
        {
            let mut published = self
                .published
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            let mut emulators = self
                .emulators
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            let now = self.fleet.now();
            for d in &report.decisions {
                published.insert(d.variant.clone(), d.target_replicas);
                let current = d.current_replicas;
                let n = match self.hpa {
                    Some(cfg) => emulators
                        .entry(d.variant.clone())
                        .or_insert_with(|| HpaEmulator::new(cfg))
                        .recommend(now, current, Some(f64::from(d.target_replicas))),
                    None => d.target_replicas,
                };
                if n != current
                    && let Err(e) = self.fleet.set_replicas(&d.variant, n)
                {
                    errors.push(ActuationError {
                        namespace: d.namespace.clone(),
                        variant: d.variant.clone(),
                        message: e.to_string(),
                    });
                }
            }
        }
        Box::pin(async move { errors })
    }
}
