//! The shared handles between the reflectors ([`crate::runtime`]) and the controller
//! ([`crate::controller`]): the reflector stores and the hot-reloaded configuration.

use std::sync::Arc;

use arc_swap::ArcSwap;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{Namespace, Node, Pod};
use kube::api::{DynamicObject, PartialObjectMeta};
use kube::runtime::reflector::Store;
use wva_core::{SaturationConfig, ScaleToZeroConfig};

use crate::crd::VariantAutoscaling;

/// The reflector stores every replica keeps (spec/k8s.md §3.1). Optional stores are `None` when
/// their API is not served or their feature is off.
#[derive(Clone)]
pub struct Stores {
    /// VariantAutoscalings of this controller instance.
    pub vas: Store<VariantAutoscaling>,
    /// Deployments (stripped projection).
    pub deployments: Store<Deployment>,
    /// LeaderWorkerSets, when `leaderworkerset.x-k8s.io/v1` is served.
    pub leader_worker_sets: Option<Store<DynamicObject>>,
    /// Pods (stripped projection).
    pub pods: Store<Pod>,
    /// Namespace metadata; `None` when `WATCH_NAMESPACE` is set.
    pub namespaces: Option<Store<PartialObjectMeta<Namespace>>>,
    /// GPU nodes; `None` until the limiter or limited mode needs them.
    pub nodes: Option<Store<Node>>,
    /// InferencePools of `POOL_GROUP`, when served.
    pub inference_pools: Option<Store<DynamicObject>>,
    /// HorizontalPodAutoscalers; only with `--actuation direct`.
    pub hpas: Option<Store<HorizontalPodAutoscaler>>,
}

/// The saturation and scale-to-zero configuration in force (last good versions).
#[derive(Debug, Clone, Default)]
pub struct ActiveConfig {
    /// The merged saturation scaling configuration.
    pub saturation: Arc<SaturationConfig>,
    /// The merged scale-to-zero configuration.
    pub scale_to_zero: Arc<ScaleToZeroConfig>,
}

/// A cheap, shared, atomically swapped handle on the [`ActiveConfig`].
pub type ConfigHandle = Arc<ArcSwap<ActiveConfig>>;

/// What the reflector tasks forward to the leader's controller (spec/k8s.md §3.2): every
/// touched object (deletes included) of the trigger kinds, and `reconcile_all` requests.
/// Bounded; a sender that finds its channel full requests a `reconcile_all` instead.
pub struct Triggers {
    /// VAs whose generation or labels changed (the controller's primary stream).
    pub vas: futures::channel::mpsc::Receiver<VariantAutoscaling>,
    /// Touched Deployments.
    pub deployments: futures::channel::mpsc::Receiver<Deployment>,
    /// Touched LeaderWorkerSets.
    pub leader_worker_sets: futures::channel::mpsc::Receiver<DynamicObject>,
    /// Pods created, deleted, flipping Ready or changing phase.
    pub pods: futures::channel::mpsc::Receiver<Pod>,
    /// Reconcile every VA (config reloaded, namespace filters changed, overflow).
    pub reconcile_all: futures::channel::mpsc::Receiver<()>,
}

/// The sending halves of [`Triggers`], cloned into the reflector tasks.
#[derive(Clone)]
pub struct TriggerSenders {
    /// See [`Triggers::vas`].
    pub vas: futures::channel::mpsc::Sender<VariantAutoscaling>,
    /// See [`Triggers::deployments`].
    pub deployments: futures::channel::mpsc::Sender<Deployment>,
    /// See [`Triggers::leader_worker_sets`].
    pub leader_worker_sets: futures::channel::mpsc::Sender<DynamicObject>,
    /// See [`Triggers::pods`].
    pub pods: futures::channel::mpsc::Sender<Pod>,
    /// See [`Triggers::reconcile_all`]. A task that owns a clone may `try_send` on it.
    pub reconcile_all: futures::channel::mpsc::Sender<()>,
    /// One sender shared by every [`TriggerSenders::request_reconcile_all`] caller: each clone
    /// of a futures `Sender` adds a guaranteed slot, so sending through fresh clones would make
    /// the channel unbounded (a follower never drains it).
    shared_reconcile_all: Arc<std::sync::Mutex<futures::channel::mpsc::Sender<()>>>,
}

impl TriggerSenders {
    /// Requests a reconcile of every VA; a full channel already holds such a request.
    pub fn request_reconcile_all(&self) {
        let mut sender = self
            .shared_reconcile_all
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let _ = sender.try_send(());
    }
}

/// Bounded trigger channels of `capacity` slots each.
///
/// ```
/// let (senders, mut triggers) = wva_k8s::handles::trigger_channels(4);
/// for _ in 0..100 {
///     senders.request_reconcile_all();
/// }
/// let mut queued = 0;
/// while let Ok(Some(())) = triggers.reconcile_all.try_next() {
///     queued += 1;
/// }
/// assert!((1..=3).contains(&queued), "{queued} reconcile_all requests queued");
/// ```
pub fn trigger_channels(capacity: usize) -> (TriggerSenders, Triggers) {
    use futures::channel::mpsc::channel;
    let (vas_tx, vas) = channel(capacity);
    let (dep_tx, deployments) = channel(capacity);
    let (lws_tx, leader_worker_sets) = channel(capacity);
    let (pods_tx, pods) = channel(capacity);
    let (all_tx, reconcile_all) = channel(1);
    (
        TriggerSenders {
            vas: vas_tx,
            deployments: dep_tx,
            leader_worker_sets: lws_tx,
            pods: pods_tx,
            shared_reconcile_all: Arc::new(std::sync::Mutex::new(all_tx.clone())),
            reconcile_all: all_tx,
        },
        Triggers {
            vas,
            deployments,
            leader_worker_sets,
            pods,
            reconcile_all,
        },
    )
}

/// Called by the VA reflector task on a `Delete` (or when a VA leaves the instance selector),
/// before forwarding: removes the variant's series, untracks it in the collector and drops its
/// outcome and index entries at once (spec/k8s.md §3.2).
pub type VaDeletedHook = Arc<dyn Fn(&VariantAutoscaling) + Send + Sync>;
