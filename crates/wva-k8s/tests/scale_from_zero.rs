//! The scale-from-zero loop (spec/k8s.md §5.3) end to end: stores filled directly, a mock API
//! server (tower-test) answering the EPP Service GET, the scale patch and the Event, and a real
//! local HTTP server standing in for the EPP's `/metrics`.

// Test helpers outside `#[test]` functions: a failed unwrap is a failed scenario.
#![allow(clippy::unwrap_used)]

#[allow(dead_code)]
mod mock;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::{Request, Response};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use kube::api::DynamicObject;
use kube::client::Body;
use kube::core::{ApiResource, GroupVersionKind};
use kube::runtime::reflector::store::Writer;
use kube::runtime::watcher::Event;
use mock::{Cluster, NS, context, deployment, va};
use serde_json::{Value, json};
use test_support::MetricsServer;
use tokio_util::sync::CancellationToken;
use wva_exposition::{Exposition, ExpositionConfig};
use wva_k8s::controller::{
    FilterSource, KubeInventory, OutcomeBoard, WakeOptions, start_scale_from_zero,
};
use wva_k8s::crd::VariantAutoscaling;
use wva_k8s::handles::ActiveConfig;

const JSON_PATCH: &str = "application/json-patch+json";

/// One request the mock API server saw.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    path: String,
    query: String,
    content_type: Option<String>,
    body: Option<Value>,
}

type Log = Arc<Mutex<Vec<Seen>>>;

/// A mock API answering by route (Service GETs from `services`, scale patches, Events) and
/// logging every request; anything else gets a 404.
fn mock_api(services: Vec<(String, Value)>) -> (kube::Client, Log) {
    let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let log: Log = Arc::default();
    let seen = log.clone();
    tokio::spawn(async move {
        while let Some((request, reply)) = handle.next_request().await {
            let method = request.method().as_str().to_owned();
            let path = request.uri().path().to_owned();
            let query = request.uri().query().unwrap_or_default().to_owned();
            let content_type = request
                .headers()
                .get(http::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let bytes = request.into_body().collect_bytes().await.unwrap();
            let body = serde_json::from_slice::<Value>(&bytes).ok();
            let (code, answer) = if method == "GET" {
                services
                    .iter()
                    .find(|(name, _)| path == format!("/api/v1/namespaces/{NS}/services/{name}"))
                    .map_or_else(|| (404, not_found()), |(_, s)| (200, s.clone()))
            } else if method == "PATCH" && path.ends_with("/scale") {
                (
                    200,
                    json!({"apiVersion": "autoscaling/v1", "kind": "Scale",
                           "metadata": {"name": "x", "namespace": NS}, "spec": {"replicas": 1}}),
                )
            } else if method == "POST" && path.ends_with("/events") {
                (201, body.clone().unwrap_or_default())
            } else {
                (404, not_found())
            };
            seen.lock().unwrap().push(Seen {
                method,
                path,
                query,
                content_type,
                body,
            });
            let response = Response::builder()
                .status(code)
                .header(http::header::CONTENT_TYPE, "application/json")
                .body(Body::from(serde_json::to_vec(&answer).unwrap()))
                .unwrap();
            reply.send_response(response);
        }
    });
    (kube::Client::new(service, "default"), log)
}

fn not_found() -> Value {
    json!({"apiVersion": "v1", "kind": "Status", "status": "Failure", "code": 404,
           "reason": "NotFound", "message": "not found"})
}

/// The EPP Service `name`: a gRPC port, then the metrics port targeting `metrics_port`.
fn epp_service(name: &str, metrics_port: u16) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": name, "namespace": NS},
        "spec": {"selector": {"app": "epp"}, "ports": [
            {"name": "grpc-ext-proc", "port": 9002, "targetPort": 9002},
            {"name": "http-metrics", "port": 9090, "targetPort": metrics_port}
        ]}
    })
}

/// A v1 InferencePool selecting `pool: <selector>` with EPP Service `epp`.
fn pool(name: &str, selector: &str, epp: &str) -> DynamicObject {
    serde_json::from_value(json!({
        "apiVersion": "inference.networking.k8s.io/v1", "kind": "InferencePool",
        "metadata": {"name": name, "namespace": NS},
        "spec": {"selector": {"matchLabels": {"pool": selector}},
                 "targetPorts": [{"number": 8000}],
                 "endpointPickerRef": {"name": epp, "port": {"number": 9002}}}
    }))
    .unwrap()
}

/// The Ready EPP pod, reachable on loopback.
fn epp_pod() -> Pod {
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "epp-0", "namespace": NS, "labels": {"app": "epp"}},
        "status": {"phase": "Running", "podIP": "127.0.0.1",
                   "conditions": [{"type": "Ready", "status": "True"}]}
    }))
    .unwrap()
}

/// VA `name` of `model` at `cost` on an idle Deployment of the same name labelled `pool: <model>`.
fn idle_variant(name: &str, model: &str, cost: &str) -> (VariantAutoscaling, Deployment) {
    let mut v = va(name, name, Some("H100"));
    v.spec.model_id = model.into();
    v.spec.variant_cost = cost.into();
    let mut d = deployment(name, 0, 0);
    d.spec
        .as_mut()
        .unwrap()
        .template
        .metadata
        .as_mut()
        .unwrap()
        .labels
        .as_mut()
        .unwrap()
        .insert("pool".into(), model.into());
    (v, d)
}

/// A running loop and what the test observes of it.
struct Scenario {
    log: Log,
    exposition: Exposition,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<()>,
    _pools: Writer<DynamicObject>,
    _cluster: Cluster,
}

impl Scenario {
    fn start(
        variants: Vec<(VariantAutoscaling, Deployment)>,
        pools: Vec<DynamicObject>,
        services: Vec<(String, Value)>,
    ) -> Scenario {
        let (vas, deployments) = variants.into_iter().unzip();
        let (mut cluster, mut stores) = Cluster::new(vas, deployments, vec![]);
        cluster.pods.apply_watcher_event(&Event::Apply(epp_pod()));
        let resource = ApiResource::from_gvk(&GroupVersionKind::gvk(
            "inference.networking.k8s.io",
            "v1",
            "InferencePool",
        ));
        let mut pool_writer = Writer::<DynamicObject>::new(resource);
        pool_writer.apply_watcher_event(&Event::Init);
        for p in pools {
            pool_writer.apply_watcher_event(&Event::InitApply(p));
        }
        pool_writer.apply_watcher_event(&Event::InitDone);
        stores.inference_pools = Some(pool_writer.as_reader());
        let (client, log) = mock_api(services);
        let board = OutcomeBoard::default();
        let inventory = Arc::new(KubeInventory::new(
            stores.clone(),
            Arc::new(arc_swap::ArcSwap::from_pointee(ActiveConfig::default())),
            FilterSource::new(None, None, None),
            board.clone(),
            false,
        ));
        let ctx = context(client, stores, board, |_| {});
        let exposition = Exposition::new(ExpositionConfig::default()).unwrap();
        let shutdown = CancellationToken::new();
        let options = WakeOptions::new(Duration::from_millis(20), 10, None);
        let task = start_scale_from_zero(
            ctx,
            inventory,
            exposition.clone(),
            options,
            shutdown.clone(),
        );
        Scenario {
            log,
            exposition,
            shutdown,
            task,
            _pools: pool_writer,
            _cluster: cluster,
        }
    }

    fn requests(&self, method: &str) -> Vec<Seen> {
        self.log
            .lock()
            .unwrap()
            .iter()
            .filter(|s| s.method == method)
            .cloned()
            .collect()
    }

    /// Waits (up to 5 s) until `n` requests of `method` were seen.
    async fn wait_for(&self, method: &str, n: usize) {
        for _ in 0..250 {
            if self.requests(method).len() >= n {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!(
            "fewer than {n} {method} requests: {:?}",
            self.log.lock().unwrap()
        );
    }

    async fn stop(self) -> Log {
        self.shutdown.cancel();
        self.task.await.unwrap();
        self.log
    }
}

fn queue(model: &str, size: u32) -> String {
    format!(
        "inference_extension_flow_control_queue_size{{fairness_id=\"f\",priority=\"0\",target_model_name=\"{model}\"}} {size}\n"
    )
}

fn scale_path(deployment: &str) -> String {
    format!("/apis/apps/v1/namespaces/{NS}/deployments/{deployment}/scale")
}

#[tokio::test]
async fn pending_requests_wake_only_the_cheapest_idle_variant_once() {
    let epp = MetricsServer::start().await;
    epp.set("/metrics", queue("m", 3));
    let scenario = Scenario::start(
        vec![
            idle_variant("h100", "m", "30.0"),
            idle_variant("a100", "m", "20.0"),
        ],
        vec![pool("pool-m", "m", "epp-m")],
        vec![("epp-m".into(), epp_service("epp-m", epp.addr().port()))],
    );
    scenario.wait_for("POST", 1).await;
    // Many more ticks: the stores still show 0 replicas, yet nothing is read or patched again.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let encoded = scenario.exposition.encode();
    let log = scenario.stop().await;
    let log = log.lock().unwrap();
    let gets: Vec<&Seen> = log.iter().filter(|s| s.method == "GET").collect();
    assert_eq!(gets.len(), 1, "{log:?}");
    assert_eq!(
        gets[0].path,
        format!("/api/v1/namespaces/{NS}/services/epp-m")
    );
    let patches: Vec<&Seen> = log.iter().filter(|s| s.method == "PATCH").collect();
    assert_eq!(patches.len(), 1, "{log:?}");
    assert_eq!(patches[0].path, scale_path("a100"));
    assert_eq!(
        patches[0].query.trim_start_matches('&'),
        "fieldManager=wva-manager"
    );
    assert_eq!(patches[0].content_type.as_deref(), Some(JSON_PATCH));
    assert_eq!(
        patches[0].body,
        Some(json!([
            {"op": "test", "path": "/spec/replicas", "value": 0},
            {"op": "replace", "path": "/spec/replicas", "value": 1}
        ]))
    );
    let events: Vec<&Seen> = log.iter().filter(|s| s.method == "POST").collect();
    assert_eq!(events.len(), 1);
    let event = events[0].body.as_ref().unwrap();
    assert_eq!(event["reason"], "ScaledFromZero");
    assert_eq!(
        event["note"],
        "Scaled Deployment a100 from 0 to 1: pending requests for model m"
    );
    let counted = encoded.lines().any(|l| {
        l.starts_with("inferno_replica_scaling_total{")
            && l.contains("variant_name=\"a100\"")
            && l.contains("direction=\"scale_up\"")
            && l.contains("reason=\"scale_from_zero\"")
            && l.ends_with(" 1")
    });
    assert!(counted, "{encoded}");
    let desired = encoded.lines().any(|l| {
        l.starts_with("inferno_desired_replicas{")
            && l.contains("variant_name=\"a100\"")
            && l.ends_with(" 1")
    });
    assert!(desired, "{encoded}");
}

#[tokio::test]
async fn empty_queue_patches_nothing_until_requests_arrive() {
    let epp = MetricsServer::start().await;
    epp.set("/metrics", queue("m", 0));
    let scenario = Scenario::start(
        vec![idle_variant("a100", "m", "20.0")],
        vec![pool("pool-m", "m", "epp-m")],
        vec![("epp-m".into(), epp_service("epp-m", epp.addr().port()))],
    );
    scenario.wait_for("GET", 1).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(scenario.requests("PATCH").is_empty());
    epp.set("/metrics", queue("m", 1));
    scenario.wait_for("PATCH", 1).await;
    let log = scenario.stop().await;
    let log = log.lock().unwrap();
    assert_eq!(log.iter().filter(|s| s.method == "GET").count(), 1);
    assert_eq!(log.iter().filter(|s| s.method == "PATCH").count(), 1);
}

#[tokio::test]
async fn another_models_pending_requests_do_not_wake_this_model() {
    let epp = MetricsServer::start().await;
    epp.set("/metrics", format!("{}{}", queue("m", 0), queue("n", 2)));
    let port = epp.addr().port();
    let scenario = Scenario::start(
        vec![
            idle_variant("m-a100", "m", "20.0"),
            idle_variant("n-l4", "n", "5.0"),
        ],
        vec![pool("pool-m", "m", "epp-m"), pool("pool-n", "n", "epp-n")],
        vec![
            ("epp-m".into(), epp_service("epp-m", port)),
            ("epp-n".into(), epp_service("epp-n", port)),
        ],
    );
    scenario.wait_for("POST", 1).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let log = scenario.stop().await;
    let log = log.lock().unwrap();
    let patched: Vec<&str> = log
        .iter()
        .filter(|s| s.method == "PATCH")
        .map(|s| s.path.as_str())
        .collect();
    assert_eq!(patched, [scale_path("n-l4")]);
    let mut read: Vec<&str> = log
        .iter()
        .filter(|s| s.method == "GET")
        .map(|s| s.path.as_str())
        .collect();
    read.sort();
    assert_eq!(
        read,
        [
            format!("/api/v1/namespaces/{NS}/services/epp-m"),
            format!("/api/v1/namespaces/{NS}/services/epp-n")
        ]
    );
}
