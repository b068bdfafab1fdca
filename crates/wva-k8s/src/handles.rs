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
