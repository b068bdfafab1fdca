//! The controller's shared context: the client, the stores, the settings, the outcome board,
//! the per-object backoff, the `scaleTargetRef` index and the self-metrics.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use futures::channel::mpsc;
use k8s_openapi::api::core::v1::Namespace;
use kube::Client;
use kube::api::{ApiResource, GroupVersionKind, PartialObjectMeta};
use kube::runtime::reflector::{ObjectRef, Store};
use wva_engine::CycleRequester;
use wva_exposition::SelfMetrics;

use super::backoff::BackoffBook;
use super::outcomes::OutcomeBoard;
use crate::config::{Actuation, ManagerConfig};
use crate::crd::{VariantAutoscaling, VariantAutoscalingStatus};
use crate::handles::Stores;
use crate::inventory::{Filters, namespace_excluded};
use crate::status::status_changed;
use crate::target::{ObjectName, TargetIndex, TargetKey, object_name};

/// Capacity of the channel of single-VA reconcile requests (scale from zero).
const WAKE_CAPACITY: usize = 256;

/// The `apps/v1` Deployment resource, as the scale subresource calls address it.
pub fn deployment_resource() -> ApiResource {
    ApiResource::erase::<k8s_openapi::api::apps::v1::Deployment>(&())
}

/// The `leaderworkerset.x-k8s.io/v1` LeaderWorkerSet resource.
pub fn leader_worker_set_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("leaderworkerset.x-k8s.io", "v1", "LeaderWorkerSet"),
        "leaderworkersets",
    )
}

/// Builds the [`Filters`] of the moment: the static instance and watch-namespace settings plus
/// the namespaces the Namespace store shows as excluded.
#[derive(Clone)]
pub struct FilterSource {
    controller_instance: Option<String>,
    watch_namespace: Option<String>,
    namespaces: Option<Store<PartialObjectMeta<Namespace>>>,
}

impl std::fmt::Debug for FilterSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FilterSource")
            .field("controller_instance", &self.controller_instance)
            .field("watch_namespace", &self.watch_namespace)
            .field("namespaces", &self.namespaces.is_some())
            .finish()
    }
}

impl FilterSource {
    /// `CONTROLLER_INSTANCE`, `WATCH_NAMESPACE` and the Namespace store (`None` when
    /// `WATCH_NAMESPACE` is set).
    pub fn new(
        controller_instance: Option<String>,
        watch_namespace: Option<String>,
        namespaces: Option<Store<PartialObjectMeta<Namespace>>>,
    ) -> FilterSource {
        FilterSource {
            controller_instance,
            watch_namespace,
            namespaces,
        }
    }

    /// The filters in force now.
    pub fn current(&self) -> Filters {
        let excluded_namespaces = self
            .namespaces
            .iter()
            .flat_map(|store| store.state())
            .filter(|ns| namespace_excluded(&ns.metadata))
            .filter_map(|ns| ns.metadata.name.clone())
            .collect();
        Filters {
            controller_instance: self.controller_instance.clone(),
            excluded_namespaces,
            watch_namespace: self.watch_namespace.clone(),
        }
    }
}

/// The settings of the controller that come from `wva-manager run`'s configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `--actuation`: `Metrics` publishes only; `Direct` also patches the scale subresource.
    pub actuation: Actuation,
    /// `--rest-client-timeout`: bound of every non-watch request.
    pub rest_client_timeout: Duration,
    /// `POD_NAME`: the Events' reporting instance (`None` → the controller name).
    pub reporter_instance: Option<String>,
    /// Which VAs this instance tracks and which namespaces are excluded.
    pub filters: FilterSource,
    /// The LeaderWorkerSet resource as the LWS reflector's store was created with.
    pub leader_worker_set_resource: ApiResource,
}

impl Settings {
    /// Settings with the defaults of spec/k8s.md §6.2 (metrics actuation, 60 s timeout), no
    /// reporter instance, and `filters`.
    pub fn new(filters: FilterSource) -> Settings {
        Settings {
            actuation: Actuation::Metrics,
            rest_client_timeout: Duration::from_secs(60),
            reporter_instance: None,
            filters,
            leader_worker_set_resource: leader_worker_set_resource(),
        }
    }
}

impl Settings {
    /// The settings of `wva-manager run`'s configuration: `--actuation`,
    /// `--rest-client-timeout`, `POD_NAME`, `CONTROLLER_INSTANCE` and `WATCH_NAMESPACE`, with the
    /// Namespace store (`None` when `WATCH_NAMESPACE` is set) for exclusions.
    pub fn from_config(
        config: &ManagerConfig,
        namespaces: Option<Store<PartialObjectMeta<Namespace>>>,
    ) -> Settings {
        Settings {
            actuation: config.actuation,
            rest_client_timeout: config.rest_client_timeout,
            reporter_instance: config.pod_name.clone(),
            filters: FilterSource::new(
                config.controller_instance.clone(),
                config.watch_namespace.clone(),
                namespaces,
            ),
            leader_worker_set_resource: leader_worker_set_resource(),
        }
    }
}

/// Everything the reconciles share (spec/k8s.md §3.5, §3.6).
pub struct Context {
    pub(crate) client: Client,
    pub(crate) stores: Stores,
    pub(crate) settings: Settings,
    pub(crate) board: OutcomeBoard,
    pub(crate) backoff: BackoffBook,
    index: Mutex<TargetIndex>,
    self_metrics: Option<SelfMetrics>,
    cycles: Option<CycleRequester>,
    wake_tx: mpsc::Sender<ObjectRef<VariantAutoscaling>>,
    wake_rx: Mutex<Option<mpsc::Receiver<ObjectRef<VariantAutoscaling>>>>,
    /// Per VA, the HPA last reported by a `ConflictingAutoscaler` Event.
    conflicts_reported: Mutex<HashMap<ObjectName, String>>,
    /// Per VA, writes the stores do not show yet (their watch events lag the answer).
    recent: Mutex<HashMap<ObjectName, Recent>>,
}

/// The last writes of one VA that the stores may not reflect yet.
#[derive(Debug, Default)]
struct Recent {
    status: Option<VariantAutoscalingStatus>,
    scaled_to: Option<u32>,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("settings", &self.settings)
            .field("board", &self.board)
            .finish_non_exhaustive()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Context {
    /// A context over the client, the reflector stores, the settings and the board shared with
    /// [`KubeActuator`](super::KubeActuator) and [`KubeInventory`](super::KubeInventory).
    pub fn new(client: Client, stores: Stores, settings: Settings, board: OutcomeBoard) -> Context {
        let (wake_tx, wake_rx) = mpsc::channel(WAKE_CAPACITY);
        Context {
            client,
            stores,
            settings,
            board,
            backoff: BackoffBook::new(),
            index: Mutex::new(TargetIndex::default()),
            self_metrics: None,
            cycles: None,
            wake_tx,
            wake_rx: Mutex::new(Some(wake_rx)),
            conflicts_reported: Mutex::new(HashMap::new()),
            recent: Mutex::new(HashMap::new()),
        }
    }

    /// Counts status and scale patches in `wva_status_patches_total` / `wva_scale_patches_total`.
    pub fn with_self_metrics(mut self, metrics: SelfMetrics) -> Context {
        self.self_metrics = Some(metrics);
        self
    }

    /// Lets reconciles request a cycle (the engine's `Engine::requester()`).
    pub fn with_cycle_requester(mut self, requester: CycleRequester) -> Context {
        self.cycles = Some(requester);
        self
    }

    /// The settings.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The outcome board.
    pub fn board(&self) -> &OutcomeBoard {
        &self.board
    }

    /// The filters in force now.
    pub fn filters(&self) -> Filters {
        self.settings.filters.current()
    }

    /// Asks for a reconcile of one VA soon (e.g. after a scale from zero); a full queue drops
    /// the request (the next `reconcile_all` covers it).
    pub fn request_reconcile(&self, namespace: &str, name: &str) {
        let _ = self
            .wake_tx
            .clone()
            .try_send(ObjectRef::new(name).within(namespace));
    }

    pub(crate) fn take_wake_requests(
        &self,
    ) -> Option<mpsc::Receiver<ObjectRef<VariantAutoscaling>>> {
        lock(&self.wake_rx).take()
    }

    /// Drops a deleted VA's outcome, index entry and backoff state (call it from the
    /// `VaDeletedHook`).
    pub fn forget(&self, va: &VariantAutoscaling) {
        let id = object_name(va);
        self.board.remove(&id.0, &id.1);
        lock(&self.index).delete(&id.0, &id.1);
        self.backoff.clear(&id);
        lock(&self.conflicts_reported).remove(&id);
        lock(&self.recent).remove(&id);
    }

    pub(crate) fn request_cycle(&self) {
        if let Some(cycles) = &self.cycles {
            cycles.request();
        }
    }

    pub(crate) fn self_metrics(&self) -> Option<&SelfMetrics> {
        self.self_metrics.as_ref()
    }

    /// Records (or moves) a VA in the `scaleTargetRef` index.
    pub(crate) fn index_apply(&self, va: &VariantAutoscaling) {
        lock(&self.index).apply(va);
    }

    /// Rebuilds the `scaleTargetRef` index from the VA store (done on every `reconcile_all`).
    pub fn rebuild_index(&self) {
        let vas = self.stores.vas.state();
        lock(&self.index).reset(vas.iter().map(|va| va.as_ref()));
    }

    /// The VAs naming `key`, as reconcile requests.
    pub(crate) fn vas_for(&self, key: &TargetKey) -> Vec<ObjectRef<VariantAutoscaling>> {
        lock(&self.index)
            .vas_for(key)
            .map(|(ns, name)| ObjectRef::new(name).within(ns))
            .collect()
    }

    /// Whether a `ConflictingAutoscaler` Event for `hpa` must be published for `id` (the first
    /// time this HPA is found, not on every reconcile).
    pub(crate) fn conflict_is_new(&self, id: &ObjectName, hpa: &str) -> bool {
        let mut reported = lock(&self.conflicts_reported);
        if reported.get(id).map(String::as_str) == Some(hpa) {
            return false;
        }
        reported.insert(id.clone(), hpa.to_owned());
        true
    }

    /// Whether `desired` was applied already and the VA store just does not show it yet.
    pub(crate) fn status_pending(
        &self,
        id: &ObjectName,
        desired: &VariantAutoscalingStatus,
    ) -> bool {
        lock(&self.recent)
            .get(id)
            .and_then(|r| r.status.as_ref())
            .is_some_and(|applied| !status_changed(Some(applied), desired))
    }

    /// Records an applied status (`None`: the store caught up, nothing pending).
    pub(crate) fn remember_status(
        &self,
        id: &ObjectName,
        status: Option<VariantAutoscalingStatus>,
    ) {
        lock(&self.recent).entry(id.clone()).or_default().status = status;
    }

    /// The replicas a scale patch set that the target store does not show yet.
    pub(crate) fn scale_pending(&self, id: &ObjectName) -> Option<u32> {
        lock(&self.recent).get(id).and_then(|r| r.scaled_to)
    }

    /// Records a scale patch (`None`: the store caught up).
    pub(crate) fn remember_scale(&self, id: &ObjectName, replicas: Option<u32>) {
        lock(&self.recent).entry(id.clone()).or_default().scaled_to = replicas;
    }

    /// Forgets a reported HPA conflict of `id` (the HPA went away).
    pub(crate) fn conflict_cleared(&self, id: &ObjectName) {
        lock(&self.conflicts_reported).remove(id);
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use kube::runtime::reflector::store::Writer;
    use kube::runtime::watcher::Event;

    use super::*;
    use crate::config::{RawConfig, load};

    fn namespace(name: &str, excluded: bool) -> PartialObjectMeta<Namespace> {
        let mut meta = PartialObjectMeta::<Namespace>::default();
        meta.metadata.name = Some(name.to_owned());
        if excluded {
            meta.metadata.annotations = Some(BTreeMap::from([(
                crate::labels::EXCLUDE_ANNOTATION.to_owned(),
                "true".to_owned(),
            )]));
        }
        meta
    }

    #[test]
    fn settings_follow_the_manager_configuration() {
        let env = BTreeMap::from([
            ("WVA_ACTUATION".to_owned(), "direct".to_owned()),
            ("REST_CLIENT_TIMEOUT".to_owned(), "5s".to_owned()),
            ("POD_NAME".to_owned(), "wva-0".to_owned()),
            ("CONTROLLER_INSTANCE".to_owned(), "a".to_owned()),
        ]);
        let config = load(RawConfig {
            flags: &BTreeMap::new(),
            env: &env,
            file: None,
        })
        .unwrap()
        .config;
        let settings = Settings::from_config(&config, None);
        assert_eq!(settings.actuation, Actuation::Direct);
        assert_eq!(settings.rest_client_timeout, Duration::from_secs(5));
        assert_eq!(settings.reporter_instance.as_deref(), Some("wva-0"));
        assert_eq!(
            settings.filters.current().controller_instance.as_deref(),
            Some("a")
        );
    }

    #[test]
    fn excluded_namespaces_come_from_the_namespace_store() {
        let mut writer = Writer::<PartialObjectMeta<Namespace>>::default();
        writer.apply_watcher_event(&Event::Init);
        writer.apply_watcher_event(&Event::InitApply(namespace("quiet", true)));
        writer.apply_watcher_event(&Event::InitApply(namespace("busy", false)));
        writer.apply_watcher_event(&Event::InitDone);
        let filters = FilterSource::new(None, None, Some(writer.as_reader())).current();
        assert!(filters.is_excluded("quiet"));
        assert!(!filters.is_excluded("busy"));
        writer.apply_watcher_event(&Event::Apply(namespace("quiet", false)));
        let filters = FilterSource::new(None, None, Some(writer.as_reader())).current();
        assert!(!filters.is_excluded("quiet"), "exclusion lifted");
    }
}
