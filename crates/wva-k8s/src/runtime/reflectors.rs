//! The reflectors every replica runs (spec/k8s.md §3.1) and the forwarding of their events to
//! the leader's controller (§3.2): VAs on generation or label changes, every touched
//! Deployment and LeaderWorkerSet, Pods only on creation, deletion, Ready flips and phase
//! changes, and `reconcile_all` when a Namespace's exclusion or opt-in label changes.

use std::collections::{HashMap, HashSet};
use std::fmt::Debug;
use std::hash::Hash;
use std::sync::Arc;

use futures::future::BoxFuture;
use futures::{FutureExt, Stream, StreamExt};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{Namespace, Node, Pod};
use kube::api::{Api, ApiResource, DynamicObject, PartialObjectMeta};
use kube::runtime::reflector::Store;
use kube::runtime::reflector::store::Writer;
use kube::runtime::watcher::{self, Event};
use kube::runtime::{Predicate, WatchStreamExt, predicates};
use kube::{Client, Resource};
use serde::de::DeserializeOwned;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::crd::VariantAutoscaling;
use crate::handles::{Stores, TriggerSenders, VaDeletedHook};
use crate::inventory::{namespace_config_enabled, namespace_excluded};
use crate::labels::CONTROLLER_INSTANCE_LABEL;
use crate::runtime::strip;
use crate::triggers::pod_change_matters;

/// What to watch; discovery (which optional APIs are served) is the caller's job.
#[derive(Debug, Clone, Default)]
pub struct ReflectorOptions {
    /// `WATCH_NAMESPACE`: scopes every namespaced reflector and disables the Namespace one.
    pub watch_namespace: Option<String>,
    /// `CONTROLLER_INSTANCE`: selects the VAs of this instance (§3.7).
    pub controller_instance: Option<String>,
    /// The LeaderWorkerSet resource, when `leaderworkerset.x-k8s.io/v1` is served.
    pub leader_worker_sets: Option<ApiResource>,
    /// The InferencePool resource of `POOL_GROUP`, when served.
    pub inference_pools: Option<ApiResource>,
    /// Watch HorizontalPodAutoscalers (`--actuation direct`).
    pub hpas: bool,
    /// Watch Nodes (limiter or limited mode): `Some(selector)`, the selector being
    /// `WVA_NODE_SELECTOR` (empty = all nodes).
    pub nodes: Option<String>,
}

/// The label selector of the VA watcher (§3.7): this instance's label, or no instance label.
pub fn va_label_selector(controller_instance: Option<&str>) -> String {
    match controller_instance {
        Some(instance) => format!("{CONTROLLER_INSTANCE_LABEL}={instance}"),
        None => format!("!{CONTROLLER_INSTANCE_LABEL}"),
    }
}

/// The running reflectors: their stores, readiness and tasks (aborted on drop).
pub struct Reflectors {
    /// The stores the inventory reads.
    pub stores: Stores,
    /// Notified when the namespaces eligible for local ConfigMaps may have changed (a
    /// Namespace label/annotation change, or a namespace gaining its first or losing its last
    /// VA); the ConfigMap reload task re-merges on it.
    pub namespaces_changed: Arc<Notify>,
    tasks: Vec<JoinHandle<()>>,
}

impl Reflectors {
    /// Resolves once every started reflector has finished its initial list
    /// (`Store::wait_until_ready` of each store); `false` if a reflector task ended first.
    pub fn wait_until_ready(&self) -> BoxFuture<'static, bool> {
        let s = &self.stores;
        let mut waits = vec![
            ready_future(&s.vas),
            ready_future(&s.deployments),
            ready_future(&s.pods),
        ];
        waits.extend(s.leader_worker_sets.as_ref().map(ready_future));
        waits.extend(s.namespaces.as_ref().map(ready_future));
        waits.extend(s.nodes.as_ref().map(ready_future));
        waits.extend(s.inference_pools.as_ref().map(ready_future));
        waits.extend(s.hpas.as_ref().map(ready_future));
        async move {
            futures::future::join_all(waits)
                .await
                .into_iter()
                .all(|ok| ok)
        }
        .boxed()
    }

    /// Whether any reflector task has ended (they only end on a panic or when aborted).
    pub fn any_finished(&self) -> bool {
        self.tasks.iter().any(JoinHandle::is_finished)
    }
}

impl Drop for Reflectors {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

fn ready_future<K>(store: &Store<K>) -> BoxFuture<'static, bool>
where
    K: Resource + Clone + Send + Sync + 'static,
    K::DynamicType: Eq + Hash + Clone + Send + Sync,
{
    let store = store.clone();
    async move { store.wait_until_ready().await.is_ok() }.boxed()
}

fn scoped<K>(client: &Client, namespace: Option<&str>) -> Api<K>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope>,
    K::DynamicType: Default,
{
    match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

fn scoped_dynamic(
    client: &Client,
    namespace: Option<&str>,
    resource: &ApiResource,
) -> Api<DynamicObject> {
    match namespace {
        Some(ns) => Api::namespaced_with(client.clone(), ns, resource),
        None => Api::all_with(client.clone(), resource),
    }
}

/// Drives `stream` (already reflected into its store), handing each event to `on_event`.
/// Watch errors are retried by `default_backoff()` and logged here.
fn spawn_driven<K, S>(
    kind: &'static str,
    stream: S,
    mut on_event: impl FnMut(&Event<K>) + Send + 'static,
) -> JoinHandle<()>
where
    K: Send + 'static,
    S: Stream<Item = Result<Event<K>, watcher::Error>> + Send + 'static,
{
    tokio::spawn(async move {
        let mut stream = std::pin::pin!(stream);
        while let Some(item) = stream.next().await {
            match item {
                Ok(event) => on_event(&event),
                Err(error) => tracing::warn!(kind, "watch failed; retrying: {error}"),
            }
        }
    })
}

fn start<K>(
    kind: &'static str,
    api: Api<K>,
    config: watcher::Config,
    writer: Writer<K>,
    strip: fn(&mut K),
    on_event: impl FnMut(&Event<K>) + Send + 'static,
) -> JoinHandle<()>
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    K::DynamicType: Eq + Hash + Clone + Send + Sync,
{
    let stream = watcher::watcher(api, config)
        .default_backoff()
        .modify(strip)
        .reflect(writer);
    spawn_driven(kind, stream, on_event)
}

fn ignore<K>(_: &Event<K>) {}

/// Starts every reflector of §3.1 the options call for, forwarding their events through
/// `senders` and calling `on_va_deleted` on each VA `Delete` before forwarding it. Must be
/// called inside a Tokio runtime.
pub fn start_reflectors(
    client: Client,
    opts: ReflectorOptions,
    senders: TriggerSenders,
    on_va_deleted: VaDeletedHook,
) -> Reflectors {
    let ns = opts.watch_namespace.as_deref();
    let namespaces_changed = Arc::new(Notify::new());
    let mut tasks = Vec::new();

    let (vas, writer) = kube::runtime::reflector::store::<VariantAutoscaling>();
    let va_config =
        watcher::Config::default().labels(&va_label_selector(opts.controller_instance.as_deref()));
    let mut va_forward =
        VaForwarder::new(senders.clone(), on_va_deleted, namespaces_changed.clone());
    tasks.push(start(
        "VariantAutoscaling",
        scoped(&client, ns),
        va_config,
        writer,
        strip::strip_va,
        move |event| va_forward.on_event(event),
    ));

    let (deployments, writer) = kube::runtime::reflector::store::<Deployment>();
    let mut dep_forward =
        TouchedForwarder::new(senders.deployments.clone(), senders.reconcile_all.clone());
    tasks.push(start(
        "Deployment",
        scoped(&client, ns),
        watcher::Config::default(),
        writer,
        strip::strip_deployment,
        move |event| dep_forward.on_event(event),
    ));

    let leader_worker_sets = opts.leader_worker_sets.as_ref().map(|resource| {
        let writer = Writer::<DynamicObject>::new(resource.clone());
        let store = writer.as_reader();
        let mut forward = TouchedForwarder::new(
            senders.leader_worker_sets.clone(),
            senders.reconcile_all.clone(),
        );
        tasks.push(start(
            "LeaderWorkerSet",
            scoped_dynamic(&client, ns, resource),
            watcher::Config::default(),
            writer,
            strip::strip_leader_worker_set,
            move |event| forward.on_event(event),
        ));
        store
    });

    let (pods, writer) = kube::runtime::reflector::store::<Pod>();
    let mut pod_forward = PodForwarder::new(senders.clone());
    tasks.push(start(
        "Pod",
        scoped(&client, ns),
        watcher::Config::default(),
        writer,
        strip::strip_pod,
        move |event| pod_forward.on_event(event),
    ));

    let namespaces = match ns {
        Some(_) => None,
        None => {
            let (store, writer) = kube::runtime::reflector::store::<PartialObjectMeta<Namespace>>();
            let mut forward = NamespaceForwarder::new(senders.clone(), namespaces_changed.clone());
            tasks.push(start(
                "Namespace",
                Api::<PartialObjectMeta<Namespace>>::all(client.clone()),
                watcher::Config::default(),
                writer,
                |meta: &mut PartialObjectMeta<Namespace>| meta.metadata.managed_fields = None,
                move |event| forward.on_event(event),
            ));
            Some(store)
        }
    };

    let nodes = opts.nodes.as_ref().map(|selector| {
        let (store, writer) = kube::runtime::reflector::store::<Node>();
        let mut config = watcher::Config::default();
        if !selector.is_empty() {
            config = config.labels(selector);
        }
        tasks.push(start(
            "Node",
            Api::all(client.clone()),
            config,
            writer,
            strip::strip_node,
            ignore,
        ));
        store
    });

    let inference_pools = opts.inference_pools.as_ref().map(|resource| {
        let writer = Writer::<DynamicObject>::new(resource.clone());
        let store = writer.as_reader();
        tasks.push(start(
            "InferencePool",
            scoped_dynamic(&client, ns, resource),
            watcher::Config::default(),
            writer,
            strip::strip_inference_pool,
            ignore,
        ));
        store
    });

    let hpas = opts.hpas.then(|| {
        let (store, writer) = kube::runtime::reflector::store::<HorizontalPodAutoscaler>();
        tasks.push(start(
            "HorizontalPodAutoscaler",
            scoped(&client, ns),
            watcher::Config::default(),
            writer,
            |hpa: &mut HorizontalPodAutoscaler| {
                hpa.metadata.managed_fields = None;
                hpa.status = None;
            },
            ignore,
        ));
        store
    });

    Reflectors {
        stores: Stores {
            vas,
            deployments,
            leader_worker_sets,
            pods,
            namespaces,
            nodes,
            inference_pools,
            hpas,
        },
        namespaces_changed,
        tasks,
    }
}

type Key = (Option<String>, String);

fn key_of<K: Resource>(obj: &K) -> Key {
    let meta = obj.meta();
    (
        meta.namespace.clone(),
        meta.name.clone().unwrap_or_default(),
    )
}

/// Sends `obj` on `tx` (owned, never cloned per send, so the bound holds); on a full or
/// closed channel requests a `reconcile_all` instead.
fn send<K>(
    tx: &mut futures::channel::mpsc::Sender<K>,
    all: &mut futures::channel::mpsc::Sender<()>,
    obj: K,
) {
    if tx.try_send(obj).is_err() {
        reconcile_all(all);
    }
}

/// Requests a `reconcile_all`; a full channel already holds such a request.
fn reconcile_all(all: &mut futures::channel::mpsc::Sender<()>) {
    let _ = all.try_send(());
}

/// Forwards VAs whose generation or labels changed (status-only updates are dropped), taps
/// deletes for the hook, and tracks which namespaces hold VAs.
struct VaForwarder {
    senders: TriggerSenders,
    on_deleted: VaDeletedHook,
    namespaces_changed: Arc<Notify>,
    known: HashMap<Key, (Option<u64>, VariantAutoscaling)>,
    relisted: HashSet<Key>,
}

impl VaForwarder {
    fn new(
        senders: TriggerSenders,
        on_deleted: VaDeletedHook,
        namespaces_changed: Arc<Notify>,
    ) -> Self {
        VaForwarder {
            senders,
            on_deleted,
            namespaces_changed,
            known: HashMap::new(),
            relisted: HashSet::new(),
        }
    }

    fn namespaces(&self) -> HashSet<Option<String>> {
        self.known.keys().map(|(ns, _)| ns.clone()).collect()
    }

    fn on_event(&mut self, event: &Event<VariantAutoscaling>) {
        let before = self.namespaces();
        match event {
            Event::Init => self.relisted.clear(),
            Event::InitApply(va) => {
                self.relisted.insert(key_of(va));
                self.applied(va);
            }
            Event::Apply(va) => self.applied(va),
            Event::InitDone => {
                let gone: Vec<Key> = self
                    .known
                    .keys()
                    .filter(|k| !self.relisted.contains(*k))
                    .cloned()
                    .collect();
                for key in gone {
                    if let Some((_, va)) = self.known.remove(&key) {
                        self.deleted(va);
                    }
                }
                self.relisted.clear();
            }
            Event::Delete(va) => {
                self.known.remove(&key_of(va));
                self.deleted(va.clone());
            }
        }
        if self.namespaces() != before {
            self.namespaces_changed.notify_one();
        }
    }

    fn applied(&mut self, va: &VariantAutoscaling) {
        let hash = predicates::generation
            .combine(predicates::labels)
            .hash_property(va);
        let previous = self.known.insert(key_of(va), (hash, va.clone()));
        let changed = match (previous, hash) {
            (Some((Some(old), _)), Some(new)) => old != new,
            _ => true,
        };
        if changed {
            send(
                &mut self.senders.vas,
                &mut self.senders.reconcile_all,
                va.clone(),
            );
        }
    }

    fn deleted(&mut self, va: VariantAutoscaling) {
        (self.on_deleted)(&va);
        send(&mut self.senders.vas, &mut self.senders.reconcile_all, va);
    }
}

/// Forwards every touched object (deletes included); objects that vanished during a relist
/// cannot be named, so they request a `reconcile_all`.
struct TouchedForwarder<K> {
    tx: futures::channel::mpsc::Sender<K>,
    all: futures::channel::mpsc::Sender<()>,
    known: HashSet<Key>,
    relisted: HashSet<Key>,
}

impl<K: Resource + Clone> TouchedForwarder<K> {
    fn new(tx: futures::channel::mpsc::Sender<K>, all: futures::channel::mpsc::Sender<()>) -> Self {
        TouchedForwarder {
            tx,
            all,
            known: HashSet::new(),
            relisted: HashSet::new(),
        }
    }

    fn on_event(&mut self, event: &Event<K>) {
        match event {
            Event::Init => self.relisted.clear(),
            Event::InitApply(obj) => {
                self.relisted.insert(key_of(obj));
                self.known.insert(key_of(obj));
                send(&mut self.tx, &mut self.all, obj.clone());
            }
            Event::Apply(obj) => {
                self.known.insert(key_of(obj));
                send(&mut self.tx, &mut self.all, obj.clone());
            }
            Event::Delete(obj) => {
                self.known.remove(&key_of(obj));
                send(&mut self.tx, &mut self.all, obj.clone());
            }
            Event::InitDone => {
                let before = self.known.len();
                self.known.retain(|k| self.relisted.contains(k));
                if self.known.len() != before {
                    reconcile_all(&mut self.all);
                }
                self.relisted.clear();
            }
        }
    }
}

/// Forwards Pods only on creation, deletion, Ready flips and phase changes
/// ([`pod_change_matters`]), comparing with the last projection seen of each pod.
struct PodForwarder {
    senders: TriggerSenders,
    known: HashMap<Key, Pod>,
    relisted: HashSet<Key>,
}

impl PodForwarder {
    fn new(senders: TriggerSenders) -> Self {
        PodForwarder {
            senders,
            known: HashMap::new(),
            relisted: HashSet::new(),
        }
    }

    fn on_event(&mut self, event: &Event<Pod>) {
        match event {
            Event::Init => self.relisted.clear(),
            Event::InitApply(pod) => {
                self.relisted.insert(key_of(pod));
                self.applied(pod);
            }
            Event::Apply(pod) => self.applied(pod),
            Event::Delete(pod) => {
                self.known.remove(&key_of(pod));
                send(
                    &mut self.senders.pods,
                    &mut self.senders.reconcile_all,
                    pod.clone(),
                );
            }
            Event::InitDone => {
                let gone: Vec<Key> = self
                    .known
                    .keys()
                    .filter(|k| !self.relisted.contains(*k))
                    .cloned()
                    .collect();
                for key in gone {
                    if let Some(pod) = self.known.remove(&key) {
                        send(&mut self.senders.pods, &mut self.senders.reconcile_all, pod);
                    }
                }
                self.relisted.clear();
            }
        }
    }

    fn applied(&mut self, pod: &Pod) {
        let previous = self.known.insert(key_of(pod), pod.clone());
        if pod_change_matters(previous.as_ref(), Some(pod)) {
            send(
                &mut self.senders.pods,
                &mut self.senders.reconcile_all,
                pod.clone(),
            );
        }
    }
}

/// Requests a `reconcile_all` when a Namespace's exclusion annotation or config opt-in label
/// changes (including a namespace appearing or disappearing with either set).
struct NamespaceForwarder {
    senders: TriggerSenders,
    namespaces_changed: Arc<Notify>,
    known: HashMap<String, (bool, bool)>,
    relisted: HashMap<String, (bool, bool)>,
}

impl NamespaceForwarder {
    fn new(senders: TriggerSenders, namespaces_changed: Arc<Notify>) -> Self {
        NamespaceForwarder {
            senders,
            namespaces_changed,
            known: HashMap::new(),
            relisted: HashMap::new(),
        }
    }

    fn flags(meta: &PartialObjectMeta<Namespace>) -> (String, (bool, bool)) {
        (
            meta.metadata.name.clone().unwrap_or_default(),
            (
                namespace_excluded(&meta.metadata),
                namespace_config_enabled(&meta.metadata),
            ),
        )
    }

    fn on_event(&mut self, event: &Event<PartialObjectMeta<Namespace>>) {
        let changed = match event {
            Event::Init => {
                self.relisted.clear();
                false
            }
            Event::InitApply(meta) => {
                let (name, flags) = Self::flags(meta);
                self.relisted.insert(name, flags);
                false
            }
            Event::InitDone => {
                let relisted = std::mem::take(&mut self.relisted);
                let significant =
                    |m: &HashMap<String, (bool, bool)>| -> HashMap<String, (bool, bool)> {
                        m.iter()
                            .filter(|(_, f)| f.0 || f.1)
                            .map(|(k, f)| (k.clone(), *f))
                            .collect()
                    };
                let changed = significant(&self.known) != significant(&relisted);
                self.known = relisted;
                changed
            }
            Event::Apply(meta) => {
                let (name, flags) = Self::flags(meta);
                let previous = self.known.insert(name, flags);
                previous.unwrap_or((false, false)) != flags
            }
            Event::Delete(meta) => {
                let (name, _) = Self::flags(meta);
                self.known
                    .remove(&name)
                    .is_some_and(|flags| flags.0 || flags.1)
            }
        };
        if changed {
            reconcile_all(&mut self.senders.reconcile_all);
            self.namespaces_changed.notify_one();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handles::trigger_channels;
    use std::sync::Mutex;

    fn va(name: &str, generation: i64, status_marker: Option<&str>) -> VariantAutoscaling {
        let mut va: VariantAutoscaling = serde_json::from_value(serde_json::json!({
            "apiVersion": "llmd.ai/v1alpha1", "kind": "VariantAutoscaling",
            "metadata": {"name": name, "namespace": "ns", "generation": generation},
            "spec": {"modelID": "m", "scaleTargetRef": {"kind": "Deployment", "name": "d"}}
        }))
        .unwrap();
        va.metadata.resource_version = status_marker.map(str::to_owned);
        va
    }

    #[test]
    fn va_selector_names_the_instance_or_excludes_labelled_vas() {
        assert_eq!(
            va_label_selector(Some("a")),
            "wva.llmd.ai/controller-instance=a"
        );
        assert_eq!(va_label_selector(None), "!wva.llmd.ai/controller-instance");
    }

    #[test]
    fn va_forwarding_skips_status_only_updates_and_taps_deletes() {
        let (senders, mut triggers) = trigger_channels(8);
        let deleted = Arc::new(Mutex::new(Vec::new()));
        let seen = deleted.clone();
        let hook: VaDeletedHook = Arc::new(move |va: &VariantAutoscaling| {
            seen.lock().unwrap().push(va.metadata.name.clone().unwrap());
        });
        let mut fwd = VaForwarder::new(senders, hook, Arc::new(Notify::new()));
        fwd.on_event(&Event::Init);
        fwd.on_event(&Event::InitApply(va("a", 1, Some("1"))));
        fwd.on_event(&Event::InitApply(va("b", 1, Some("1"))));
        fwd.on_event(&Event::InitDone);
        fwd.on_event(&Event::Apply(va("a", 1, Some("2"))));
        fwd.on_event(&Event::Apply(va("a", 2, Some("3"))));
        fwd.on_event(&Event::Delete(va("b", 1, Some("4"))));
        // A relist in which `a` is gone: the hook still runs.
        fwd.on_event(&Event::Init);
        fwd.on_event(&Event::InitDone);
        let mut names = Vec::new();
        while let Ok(v) = triggers.vas.try_recv() {
            names.push((v.metadata.name.unwrap(), v.metadata.generation.unwrap()));
        }
        assert_eq!(
            names,
            vec![
                ("a".into(), 1),
                ("b".into(), 1),
                ("a".into(), 2),
                ("b".into(), 1),
                ("a".into(), 2)
            ]
        );
        assert_eq!(*deleted.lock().unwrap(), vec!["b".to_string(), "a".into()]);
    }

    #[test]
    fn pod_that_vanished_during_a_relist_is_forwarded_as_gone() {
        let (senders, mut triggers) = trigger_channels(8);
        let mut fwd = PodForwarder::new(senders);
        let pod = |name: &str| Pod {
            metadata: kube::api::ObjectMeta {
                name: Some(name.into()),
                namespace: Some("ns".into()),
                ..Default::default()
            },
            ..Default::default()
        };
        fwd.on_event(&Event::Init);
        fwd.on_event(&Event::InitApply(pod("a")));
        fwd.on_event(&Event::InitApply(pod("b")));
        fwd.on_event(&Event::InitDone);
        assert_eq!(
            triggers.pods.try_recv().unwrap().metadata.name.unwrap(),
            "a"
        );
        assert_eq!(
            triggers.pods.try_recv().unwrap().metadata.name.unwrap(),
            "b"
        );
        // Relist: `a` unchanged (not forwarded), `b` gone (forwarded).
        fwd.on_event(&Event::Init);
        fwd.on_event(&Event::InitApply(pod("a")));
        fwd.on_event(&Event::InitDone);
        assert_eq!(
            triggers.pods.try_recv().unwrap().metadata.name.unwrap(),
            "b"
        );
        assert!(triggers.pods.try_recv().is_err());
    }

    #[test]
    fn full_channel_requests_reconcile_all() {
        let (senders, mut triggers) = trigger_channels(0);
        let mut fwd =
            TouchedForwarder::new(senders.deployments.clone(), senders.reconcile_all.clone());
        let dep = |n: &str| Deployment {
            metadata: kube::api::ObjectMeta {
                name: Some(n.into()),
                namespace: Some("ns".into()),
                ..Default::default()
            },
            ..Default::default()
        };
        for n in ["a", "b", "c"] {
            fwd.on_event(&Event::Apply(dep(n)));
        }
        assert!(triggers.deployments.try_recv().is_ok());
        assert_eq!(triggers.reconcile_all.try_recv().ok(), Some(()));
    }

    #[test]
    fn namespace_flag_changes_request_reconcile_all_but_other_edits_do_not() {
        let (senders, mut triggers) = trigger_channels(8);
        let notify = Arc::new(Notify::new());
        let mut fwd = NamespaceForwarder::new(senders, notify);
        let ns = |annotations: Option<(&str, &str)>| {
            let mut meta = PartialObjectMeta::<Namespace>::default();
            meta.metadata.name = Some("team".into());
            meta.metadata.annotations =
                annotations.map(|(k, v)| [(k.to_string(), v.to_string())].into());
            meta
        };
        fwd.on_event(&Event::Init);
        fwd.on_event(&Event::InitApply(ns(None)));
        fwd.on_event(&Event::InitDone);
        fwd.on_event(&Event::Apply(ns(Some(("other", "x")))));
        assert!(
            triggers.reconcile_all.try_recv().is_err(),
            "nothing pending"
        );
        fwd.on_event(&Event::Apply(ns(Some(("wva.llmd.ai/exclude", "true")))));
        assert_eq!(triggers.reconcile_all.try_recv().ok(), Some(()));
    }
}
