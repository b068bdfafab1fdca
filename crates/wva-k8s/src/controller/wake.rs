//! The scale-from-zero loop (spec/k8s.md §5.3): a leader-only task that, every tick, finds the
//! idle model groups of the inventory, the InferencePool serving each, scrapes the pool's EPP
//! (endpoint picker) for queued requests and wakes the cheapest idle variant of a model with
//! pending requests: desired = 1 published at once (closing the HPA race), then the
//! [`scale_from_zero`] patch.
//!
//! No API read per tick: pools and pods come from the reflector stores; the EPP Service is read
//! with one GET when its pool is first seen or changes, and cached.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::Api;
use kube::core::DynamicObject;
use kube::runtime::reflector::ObjectRef;
use serde_json::Value;
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;
use wva_collector::parse::{Exposition as ParsedText, ParseError};
use wva_collector::scrape::{DEFAULT_SCRAPE_TIMEOUT, ScrapeClientConfig, ScrapeError};
use wva_collector::{Endpoint, Scheme, ScrapeClient, parse_exposition};
use wva_exposition::{Exposition, PublishedVariant, ScalingReason, VariantKey};

use super::context::Context;
use super::kube_inventory::KubeInventory;
use super::reconcile::{ScaleFromZero, scale_from_zero};
use crate::crd::VariantAutoscaling;
use crate::handles::Stores;
use crate::inventory::VariantEntry;
use crate::scale_from_zero::idle_models;
use crate::target::TargetKind;

/// Default tick of the loop (`--scale-from-zero-interval`).
pub const DEFAULT_WAKE_INTERVAL: Duration = Duration::from_millis(100);
/// Default bound on simultaneous EPP scrapes (`SCALE_FROM_ZERO_ENGINE_MAX_CONCURRENCY`).
pub const DEFAULT_WAKE_MAX_CONCURRENCY: usize = 10;
/// The EPP gauge of queued requests per model.
pub const QUEUE_SIZE_FAMILY: &str = "inference_extension_flow_control_queue_size";
/// The EPP label naming the model a queued request targets.
pub const TARGET_MODEL_LABEL: &str = "target_model_name";
/// How long a failed EPP Service read is kept before the next GET.
pub const SERVICE_RETRY_AFTER: Duration = Duration::from_secs(30);
/// How long a woken model is left alone while the stores still show it idle (their watch events
/// lag the patch; a failed patch is retried after this).
pub const WOKEN_GRACE: Duration = Duration::from_secs(30);

/// Settings of the scale-from-zero loop.
#[derive(Clone, PartialEq, Eq)]
pub struct WakeOptions {
    /// Tick period (default 100 ms).
    pub interval: Duration,
    /// At most this many EPP scrapes at once (default 10; 0 is taken as 1).
    pub max_concurrency: usize,
    /// `EPP_METRIC_READER_BEARER_TOKEN`; `None` or blank sends no token.
    pub bearer_token: Option<String>,
    /// Timeout of one EPP scrape (default 5 s).
    pub scrape_timeout: Duration,
}

impl std::fmt::Debug for WakeOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WakeOptions")
            .field("interval", &self.interval)
            .field("max_concurrency", &self.max_concurrency)
            .field(
                "bearer_token",
                &self.bearer_token.as_ref().map(|_| "<redacted>"),
            )
            .field("scrape_timeout", &self.scrape_timeout)
            .finish()
    }
}

impl Default for WakeOptions {
    fn default() -> Self {
        WakeOptions {
            interval: DEFAULT_WAKE_INTERVAL,
            max_concurrency: DEFAULT_WAKE_MAX_CONCURRENCY,
            bearer_token: None,
            scrape_timeout: DEFAULT_SCRAPE_TIMEOUT,
        }
    }
}

impl WakeOptions {
    /// Options with the manager's flags and the default 5 s scrape timeout.
    pub fn new(interval: Duration, max_concurrency: usize, bearer_token: Option<String>) -> Self {
        WakeOptions {
            interval,
            max_concurrency,
            bearer_token,
            scrape_timeout: DEFAULT_SCRAPE_TIMEOUT,
        }
    }
}

/// Why a pool's EPP could not be read this time.
#[derive(Debug, thiserror::Error)]
pub enum WakeError {
    /// The GET of the EPP Service failed.
    #[error("cannot read EPP Service {namespace}/{name}: {source}")]
    Service {
        /// Namespace of the pool and Service.
        namespace: String,
        /// Service name.
        name: String,
        /// The API error.
        #[source]
        source: Box<kube::Error>,
    },
    /// The Service has no port whose name contains `metric`.
    #[error("EPP Service {namespace}/{name} has no port whose name contains \"metric\"")]
    NoMetricsPort {
        /// Namespace of the Service.
        namespace: String,
        /// Service name.
        name: String,
    },
    /// The Service has no selector, so its pods cannot be found in the store.
    #[error("EPP Service {namespace}/{name} has no selector")]
    NoSelector {
        /// Namespace of the Service.
        namespace: String,
        /// Service name.
        name: String,
    },
    /// The scrape of the EPP pod failed.
    #[error("scrape of EPP pod {pod} failed: {source}")]
    Scrape {
        /// `namespace/name` of the EPP pod.
        pod: String,
        /// The scrape error.
        #[source]
        source: ScrapeError,
    },
    /// The EPP's metrics page is not valid text format.
    #[error("metrics of EPP pod {pod} are malformed: {source}")]
    Parse {
        /// `namespace/name` of the EPP pod.
        pod: String,
        /// The parse error.
        #[source]
        source: ParseError,
    },
}

/// An InferencePool as the loop needs it: where, which pods, which EPP Service.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct PoolRef {
    /// Namespace of the pool.
    pub namespace: String,
    /// Name of the pool.
    pub name: String,
    /// Selector labels of the model-server pods.
    pub selector: BTreeMap<String, String>,
    /// Name of the EPP Service.
    pub epp_service: String,
}

fn string_map(value: Option<&Value>) -> Option<BTreeMap<String, String>> {
    value?
        .as_object()?
        .iter()
        .map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
        .collect()
}

/// Reads an InferencePool (v1: `spec.selector.matchLabels`, `spec.endpointPickerRef.name`;
/// v1alpha2: `spec.selector`, `spec.extensionRef.name`); `None` when a part is missing or the
/// selector is empty (it would select every pod).
pub fn pool_ref(pool: &DynamicObject) -> Option<PoolRef> {
    let spec = pool.data.get("spec")?;
    let selector = spec.get("selector")?;
    let labels = match selector.get("matchLabels") {
        Some(match_labels) => string_map(Some(match_labels))?,
        None => string_map(Some(selector))?,
    };
    if labels.is_empty() {
        return None;
    }
    let epp = spec
        .pointer("/endpointPickerRef/name")
        .or_else(|| spec.pointer("/extensionRef/name"))?
        .as_str()?;
    Some(PoolRef {
        namespace: pool.metadata.namespace.clone()?,
        name: pool.metadata.name.clone()?,
        selector: labels,
        epp_service: epp.to_owned(),
    })
}

/// Whether every `selector` label is among `labels`.
pub fn selects(selector: &BTreeMap<String, String>, labels: &BTreeMap<String, String>) -> bool {
    selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

/// The pool in `namespace` whose selector is a subset of one of `templates`' labels; the first
/// by name when several match.
pub fn matching_pool<'a>(
    pools: &'a [PoolRef],
    namespace: &str,
    templates: &[BTreeMap<String, String>],
) -> Option<&'a PoolRef> {
    pools
        .iter()
        .filter(|p| p.namespace == namespace)
        .filter(|p| templates.iter().any(|labels| selects(&p.selector, labels)))
        .min_by(|a, b| a.name.cmp(&b.name))
}

/// What the loop keeps of an EPP Service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EppService {
    /// The Service's pod selector.
    pub selector: BTreeMap<String, String>,
    /// The pod port to scrape.
    pub port: u16,
}

/// The EPP Service's selector and metrics port: the first port whose name contains `metric`,
/// its numeric `targetPort` (pods are scraped directly), else its `port` (a named `targetPort`
/// cannot be resolved: the Pod store keeps no container ports).
pub fn epp_service(service: &Service) -> Result<EppService, WakeError> {
    let namespace = service.metadata.namespace.clone().unwrap_or_default();
    let name = service.metadata.name.clone().unwrap_or_default();
    let spec = service.spec.as_ref();
    let selector = spec
        .and_then(|s| s.selector.clone())
        .filter(|s| !s.is_empty())
        .ok_or_else(|| WakeError::NoSelector {
            namespace: namespace.clone(),
            name: name.clone(),
        })?;
    let port = spec
        .and_then(|s| s.ports.as_ref())
        .into_iter()
        .flatten()
        .find(|p| p.name.as_deref().is_some_and(|n| n.contains("metric")))
        .and_then(|p| {
            let target = match &p.target_port {
                Some(IntOrString::Int(n)) => Some(*n),
                _ => None,
            };
            u16::try_from(target.unwrap_or(p.port)).ok()
        })
        .ok_or(WakeError::NoMetricsPort { namespace, name })?;
    Ok(EppService { selector, port })
}

fn pod_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// The EPP pods: Ready, not being deleted, in `namespace`, matching `selector`, with a pod IP;
/// `(name, ip)` by name.
pub fn epp_pods(
    pods: &[Arc<Pod>],
    namespace: &str,
    selector: &BTreeMap<String, String>,
) -> Vec<(String, IpAddr)> {
    let empty = BTreeMap::new();
    let mut found: Vec<(String, IpAddr)> = pods
        .iter()
        .filter(|p| p.metadata.namespace.as_deref() == Some(namespace))
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .filter(|p| selects(selector, p.metadata.labels.as_ref().unwrap_or(&empty)))
        .filter(|p| pod_ready(p))
        .filter_map(|p| {
            let ip = p.status.as_ref()?.pod_ip.as_deref()?.parse().ok()?;
            Some((p.metadata.name.clone().unwrap_or_default(), ip))
        })
        .collect();
    found.sort();
    found
}

/// Whether any `inference_extension_flow_control_queue_size` sample with
/// `target_model_name == model_id` is above 0.
pub fn has_pending_requests(text: &ParsedText<'_>, model_id: &str) -> bool {
    text.samples.iter().any(|s| {
        s.name == QUEUE_SIZE_FAMILY
            && s.label(TARGET_MODEL_LABEL) == Some(model_id)
            && s.value > 0.0
    })
}

/// Labels of the pod templates of a variant's target (LeaderWorkerSet: worker and leader).
fn template_labels(stores: &Stores, v: &VariantEntry) -> Vec<BTreeMap<String, String>> {
    let at = || ObjectRef::<Deployment>::new(&v.target.name).within(&v.namespace);
    match v.kind {
        TargetKind::Deployment => stores
            .deployments
            .get(&at())
            .and_then(|d| d.spec.as_ref()?.template.metadata.as_ref()?.labels.clone())
            .into_iter()
            .collect(),
        TargetKind::LeaderWorkerSet => {
            let Some(store) = &stores.leader_worker_sets else {
                return Vec::new();
            };
            let Some(lws) = store.state().into_iter().find(|l| {
                l.metadata.namespace.as_deref() == Some(v.namespace.as_str())
                    && l.metadata.name.as_deref() == Some(v.target.name.as_str())
            }) else {
                return Vec::new();
            };
            ["workerTemplate", "leaderTemplate"]
                .iter()
                .filter_map(|t| {
                    let path = format!("/spec/leaderWorkerTemplate/{t}/metadata/labels");
                    string_map(lws.data.pointer(&path))
                })
                .collect()
        }
    }
}

type PoolKey = (String, String);
type ModelGroup = (String, String);

/// A model to wake if its pool's EPP queues requests for it.
#[derive(Debug, Clone)]
struct Candidate {
    model_id: String,
    cheapest: VariantEntry,
}

#[derive(Debug)]
struct CachedService {
    pool: PoolRef,
    read: Result<EppService, Instant>,
}

#[derive(Debug, Default)]
struct Shared {
    services: HashMap<PoolKey, CachedService>,
    in_flight: HashSet<PoolKey>,
    woken: HashMap<ModelGroup, Instant>,
}

struct Wake {
    ctx: Arc<Context>,
    inventory: Arc<KubeInventory>,
    exposition: Exposition,
    client: ScrapeClient,
    permits: Arc<Semaphore>,
    shared: Mutex<Shared>,
}

fn lock(shared: &Mutex<Shared>) -> MutexGuard<'_, Shared> {
    shared.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Clears a pool's in-flight mark however its task ends.
struct InFlight {
    wake: Arc<Wake>,
    pool: PoolKey,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        lock(&self.wake.shared).in_flight.remove(&self.pool);
    }
}

/// Starts the leader-only scale-from-zero loop (spec/k8s.md §5.3); it ends when `shutdown` is
/// cancelled. Does nothing while the InferencePool store is absent (API not served). A scrape
/// client that cannot be built (it never reads files here) is logged and ends the task.
pub fn start_scale_from_zero(
    ctx: Arc<Context>,
    inventory: Arc<KubeInventory>,
    exposition: Exposition,
    options: WakeOptions,
    shutdown: CancellationToken,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut config =
            ScrapeClientConfig::with_token_value(options.bearer_token.as_deref().unwrap_or(""));
        config.timeout = options.scrape_timeout;
        let client = match ScrapeClient::new(&config) {
            Ok(client) => client,
            Err(error) => {
                tracing::error!(%error, "scale from zero disabled: cannot build the EPP scrape client");
                return;
            }
        };
        let wake = Arc::new(Wake {
            ctx,
            inventory,
            exposition,
            client,
            permits: Arc::new(Semaphore::new(options.max_concurrency.max(1))),
            shared: Mutex::new(Shared::default()),
        });
        let mut ticker = tokio::time::interval(options.interval.max(Duration::from_millis(1)));
        ticker.set_missed_tick_behavior(MissedTickBehavior::Skip);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = ticker.tick() => tick(&wake),
            }
        }
    })
}

/// One tick: candidates per pool, then one scrape task per pool that has candidates and none in
/// flight.
fn tick(wake: &Arc<Wake>) {
    let Some(pool_store) = &wake.ctx.stores.inference_pools else {
        return;
    };
    let inventory = wake.inventory.inventory();
    let idle = idle_models(&inventory);
    let idle_groups: BTreeSet<ModelGroup> = idle
        .iter()
        .map(|m| (m.namespace.clone(), m.model_id.clone()))
        .collect();
    let mut pools: Vec<PoolRef> = pool_store
        .state()
        .iter()
        .filter_map(|p| pool_ref(p))
        .collect();
    pools.sort();
    let woken: BTreeSet<ModelGroup> = {
        let mut shared = lock(&wake.shared);
        shared
            .woken
            .retain(|group, at| idle_groups.contains(group) && at.elapsed() < WOKEN_GRACE);
        shared.services.retain(|key, _| {
            pools
                .iter()
                .any(|p| (&p.namespace, &p.name) == (&key.0, &key.1))
        });
        shared.woken.keys().cloned().collect()
    };
    let mut per_pool: BTreeMap<PoolKey, (PoolRef, Vec<Candidate>)> = BTreeMap::new();
    for model in &idle {
        if woken.contains(&(model.namespace.clone(), model.model_id.clone())) {
            continue;
        }
        let variants = inventory
            .variants
            .iter()
            .filter(|v| v.namespace == model.namespace && model.variants.contains(&v.name));
        let Some(cheapest) = inventory
            .variants
            .iter()
            .find(|v| v.namespace == model.namespace && v.name == model.cheapest)
        else {
            continue;
        };
        let mut model_pools = BTreeSet::new();
        for v in variants {
            let labels = template_labels(&wake.ctx.stores, v);
            if let Some(pool) = matching_pool(&pools, &v.namespace, &labels) {
                model_pools.insert(pool.clone());
            }
        }
        for pool in model_pools {
            per_pool
                .entry((pool.namespace.clone(), pool.name.clone()))
                .or_insert_with(|| (pool, Vec::new()))
                .1
                .push(Candidate {
                    model_id: model.model_id.clone(),
                    cheapest: cheapest.clone(),
                });
        }
    }
    for (key, (pool, candidates)) in per_pool {
        if !lock(&wake.shared).in_flight.insert(key.clone()) {
            continue;
        }
        let guard = InFlight {
            wake: wake.clone(),
            pool: key,
        };
        tokio::spawn(async move {
            let wake = guard.wake.clone();
            if let Err(error) = check_pool(&wake, &pool, &candidates).await {
                tracing::debug!(pool = %pool.name, namespace = %pool.namespace, %error, "scale from zero: EPP not read");
            }
            drop(guard);
        });
    }
}

/// The cached EPP Service of `pool`, read with one GET when the pool is new or changed (a failed
/// read is retried after [`SERVICE_RETRY_AFTER`]).
async fn service_of(wake: &Wake, pool: &PoolRef) -> Result<Option<EppService>, WakeError> {
    let key = (pool.namespace.clone(), pool.name.clone());
    if let Some(cached) = lock(&wake.shared).services.get(&key)
        && cached.pool == *pool
    {
        match &cached.read {
            Ok(service) => return Ok(Some(service.clone())),
            Err(at) if at.elapsed() < SERVICE_RETRY_AFTER => return Ok(None),
            Err(_) => {}
        }
    }
    let api: Api<Service> = Api::namespaced(wake.ctx.client.clone(), &pool.namespace);
    let read = api
        .get(&pool.epp_service)
        .await
        .map_err(|source| WakeError::Service {
            namespace: pool.namespace.clone(),
            name: pool.epp_service.clone(),
            source: Box::new(source),
        })
        .and_then(|s| epp_service(&s));
    lock(&wake.shared).services.insert(
        key,
        CachedService {
            pool: pool.clone(),
            read: read.as_ref().map(Clone::clone).map_err(|_| Instant::now()),
        },
    );
    read.map(Some)
}

/// Scrapes one Ready EPP pod of `pool` and wakes the candidates with pending requests.
async fn check_pool(
    wake: &Wake,
    pool: &PoolRef,
    candidates: &[Candidate],
) -> Result<(), WakeError> {
    let Ok(permit) = wake.permits.clone().acquire_owned().await else {
        return Ok(());
    };
    let Some(service) = service_of(wake, pool).await? else {
        return Ok(());
    };
    let pods = wake.ctx.stores.pods.state();
    let Some((name, ip)) = epp_pods(&pods, &pool.namespace, &service.selector)
        .into_iter()
        .next()
    else {
        tracing::debug!(pool = %pool.name, namespace = %pool.namespace, "scale from zero: no Ready EPP pod");
        return Ok(());
    };
    let pod = format!("{}/{name}", pool.namespace);
    let endpoint = Endpoint::new(Scheme::Http, SocketAddr::new(ip, service.port), "/metrics");
    let body = wake
        .client
        .scrape(&endpoint)
        .await
        .map_err(|source| WakeError::Scrape {
            pod: pod.clone(),
            source,
        })?;
    let text = parse_exposition(&body).map_err(|source| WakeError::Parse { pod, source })?;
    let pending: Vec<&Candidate> = candidates
        .iter()
        .filter(|c| has_pending_requests(&text, &c.model_id))
        .collect();
    drop(permit);
    for candidate in pending {
        wake_variant(wake, candidate).await;
    }
    Ok(())
}

/// Publishes desired = 1 for the cheapest variant, then patches its target from 0 to 1 (once
/// per model until the stores show it awake or [`WOKEN_GRACE`] passes).
async fn wake_variant(wake: &Wake, candidate: &Candidate) {
    let v = &candidate.cheapest;
    let group = (v.namespace.clone(), candidate.model_id.clone());
    {
        let mut shared = lock(&wake.shared);
        if shared.woken.contains_key(&group) {
            return;
        }
        shared.woken.insert(group, Instant::now());
    }
    let va_ref = ObjectRef::<VariantAutoscaling>::new(&v.name).within(&v.namespace);
    let Some(va) = wake.ctx.stores.vas.get(&va_ref) else {
        return;
    };
    let published = PublishedVariant::new(
        VariantKey::new(&v.namespace, &v.name),
        &v.accelerator.name,
        v.current,
        1,
        ScalingReason::ScaleFromZero,
    )
    .with_baseline(0);
    wake.exposition.publish_variant(&published);
    match scale_from_zero(&wake.ctx, &va).await {
        Ok(ScaleFromZero::Scaled) => tracing::info!(
            namespace = %v.namespace, variant = %v.name, model = %candidate.model_id,
            "scaled from zero: pending requests"
        ),
        Ok(ScaleFromZero::AlreadyScaled) => tracing::debug!(
            namespace = %v.namespace, variant = %v.name, "scale from zero: already scaled"
        ),
        Err(error) => tracing::warn!(
            namespace = %v.namespace, variant = %v.name, %error, "scale from zero failed"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn dynamic(value: Value) -> DynamicObject {
        serde_json::from_value(value).unwrap()
    }

    fn pool(ns: &str, name: &str, selector: &[(&str, &str)]) -> PoolRef {
        PoolRef {
            namespace: ns.into(),
            name: name.into(),
            selector: labels(selector),
            epp_service: format!("{name}-epp"),
        }
    }

    #[test]
    fn v1_pool_reads_match_labels_and_endpoint_picker() {
        let p = dynamic(json!({
            "apiVersion": "inference.networking.k8s.io/v1", "kind": "InferencePool",
            "metadata": {"name": "pool", "namespace": "ns"},
            "spec": {"selector": {"matchLabels": {"app": "vllm"}},
                     "targetPorts": [{"number": 8000}],
                     "endpointPickerRef": {"name": "epp", "port": {"number": 9002}}}
        }));
        assert_eq!(
            pool_ref(&p),
            Some(PoolRef {
                namespace: "ns".into(),
                name: "pool".into(),
                selector: labels(&[("app", "vllm")]),
                epp_service: "epp".into(),
            })
        );
    }

    #[test]
    fn v1alpha2_pool_reads_flat_selector_and_extension_ref() {
        let p = dynamic(json!({
            "apiVersion": "inference.networking.x-k8s.io/v1alpha2", "kind": "InferencePool",
            "metadata": {"name": "pool", "namespace": "ns"},
            "spec": {"selector": {"app": "vllm", "tier": "gpu"}, "targetPortNumber": 8000,
                     "extensionRef": {"name": "epp-svc"}}
        }));
        let parsed = pool_ref(&p).unwrap();
        assert_eq!(parsed.selector, labels(&[("app", "vllm"), ("tier", "gpu")]));
        assert_eq!(parsed.epp_service, "epp-svc");
    }

    #[test]
    fn pool_without_epp_reference_or_with_empty_selector_is_ignored() {
        let no_epp = dynamic(json!({
            "apiVersion": "inference.networking.k8s.io/v1", "kind": "InferencePool",
            "metadata": {"name": "pool", "namespace": "ns"},
            "spec": {"selector": {"matchLabels": {"app": "vllm"}}}
        }));
        let empty = dynamic(json!({
            "apiVersion": "inference.networking.k8s.io/v1", "kind": "InferencePool",
            "metadata": {"name": "pool", "namespace": "ns"},
            "spec": {"selector": {"matchLabels": {}}, "endpointPickerRef": {"name": "epp"}}
        }));
        assert_eq!(pool_ref(&no_epp), None);
        assert_eq!(pool_ref(&empty), None);
    }

    #[test]
    fn pool_matches_when_its_selector_is_a_subset_of_the_template_labels() {
        let pools = [
            pool("ns", "other", &[("app", "other")]),
            pool("ns", "llama", &[("app", "llama")]),
        ];
        let template = [labels(&[("app", "llama"), ("variant", "h100")])];
        assert_eq!(
            matching_pool(&pools, "ns", &template).map(|p| p.name.as_str()),
            Some("llama")
        );
    }

    #[test]
    fn pool_with_an_extra_label_does_not_match() {
        let pools = [pool("ns", "p", &[("app", "llama"), ("tier", "gold")])];
        let template = [labels(&[("app", "llama")])];
        assert_eq!(matching_pool(&pools, "ns", &template), None);
    }

    #[test]
    fn pool_of_another_namespace_does_not_match() {
        let pools = [pool("elsewhere", "p", &[("app", "llama")])];
        let template = [labels(&[("app", "llama")])];
        assert_eq!(matching_pool(&pools, "ns", &template), None);
    }

    fn service(ports: Value, selector: Value) -> Service {
        serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "epp", "namespace": "ns"},
            "spec": {"selector": selector, "ports": ports}
        }))
        .unwrap()
    }

    #[test]
    fn metrics_port_is_the_first_port_named_metric_with_its_target_port() {
        let s = service(
            json!([
                {"name": "grpc-ext-proc", "port": 9002},
                {"name": "http-metrics", "port": 9090, "targetPort": 19090},
                {"name": "metrics-2", "port": 9091}
            ]),
            json!({"app": "epp"}),
        );
        assert_eq!(
            epp_service(&s).unwrap(),
            EppService {
                selector: labels(&[("app", "epp")]),
                port: 19090
            }
        );
    }

    #[test]
    fn named_target_port_falls_back_to_the_service_port() {
        let s = service(
            json!([{"name": "metrics", "port": 9090, "targetPort": "metrics"}]),
            json!({"app": "epp"}),
        );
        assert_eq!(epp_service(&s).unwrap().port, 9090);
    }

    #[test]
    fn service_without_metrics_port_is_an_error() {
        let s = service(
            json!([{"name": "grpc", "port": 9002}]),
            json!({"app": "epp"}),
        );
        assert!(matches!(
            epp_service(&s),
            Err(WakeError::NoMetricsPort { .. })
        ));
    }

    fn pod(name: &str, ns: &str, app: &str, ready: bool, ip: Option<&str>) -> Arc<Pod> {
        Arc::new(
            serde_json::from_value(json!({
                "apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": name, "namespace": ns, "labels": {"app": app}},
                "status": {
                    "podIP": ip,
                    "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}]
                }
            }))
            .unwrap(),
        )
    }

    #[test]
    fn epp_pods_are_the_ready_matching_pods_with_an_ip() {
        let pods = [
            pod("epp-b", "ns", "epp", true, Some("10.0.0.2")),
            pod("epp-a", "ns", "epp", true, Some("10.0.0.1")),
            pod("epp-c", "ns", "epp", false, Some("10.0.0.3")),
            pod("epp-d", "ns", "epp", true, None),
            pod("vllm-0", "ns", "vllm", true, Some("10.0.0.4")),
            pod("epp-x", "other", "epp", true, Some("10.0.0.5")),
        ];
        let found = epp_pods(&pods, "ns", &labels(&[("app", "epp")]));
        let names: Vec<&str> = found.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["epp-a", "epp-b"]);
        assert_eq!(found[0].1, "10.0.0.1".parse::<IpAddr>().unwrap());
    }

    const EPP_TEXT: &str = "# TYPE inference_extension_flow_control_queue_size gauge\n\
        inference_extension_flow_control_queue_size{fairness_id=\"a\",priority=\"0\",target_model_name=\"busy\"} 2\n\
        inference_extension_flow_control_queue_size{fairness_id=\"a\",priority=\"0\",target_model_name=\"quiet\"} 0\n\
        inference_pool_ready_pods{name=\"p\"} 0\n";

    #[test]
    fn queued_requests_for_the_model_are_pending() {
        let text = parse_exposition(EPP_TEXT).unwrap();
        assert!(has_pending_requests(&text, "busy"));
    }

    #[test]
    fn empty_queue_or_other_models_queue_is_not_pending() {
        let text = parse_exposition(EPP_TEXT).unwrap();
        assert!(!has_pending_requests(&text, "quiet"));
        assert!(!has_pending_requests(&text, "absent"));
    }

    #[test]
    fn options_debug_hides_the_token() {
        let options = WakeOptions::new(DEFAULT_WAKE_INTERVAL, 10, Some("s3cret".into()));
        assert!(!format!("{options:?}").contains("s3cret"));
    }
}
