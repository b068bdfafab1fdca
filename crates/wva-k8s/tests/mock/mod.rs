//! A strict mock API server for the controller (the controller-rs `ApiServerVerifier` pattern,
//! spec/k8s.md §9) and fixtures: stores filled with `Writer::apply_watcher_event`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use http::{Request, Response};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::DynamicObject;
use kube::client::Body;
use kube::runtime::reflector::store::Writer;
use kube::runtime::watcher::Event;
use serde_json::{Value, json};
use tokio::task::JoinHandle;
use wva_k8s::controller::{Context, FilterSource, OutcomeBoard, Settings};
use wva_k8s::crd::{ScaleTargetRef, VariantAutoscaling, VariantAutoscalingSpec};
use wva_k8s::handles::Stores;

/// Namespace of every scenario.
pub const NS: &str = "llm";
/// How long the verifier waits for an expected request, and for extra ones at the end.
pub const WAIT: Duration = Duration::from_secs(2);

/// One expected request and the canned answer.
#[derive(Debug, Clone)]
pub struct Expect {
    method: &'static str,
    path: String,
    query: BTreeSet<(String, String)>,
    content_type: Option<&'static str>,
    body: Option<Value>,
    reply_code: u16,
    reply: Value,
}

impl Expect {
    fn new(method: &'static str, path: String) -> Expect {
        Expect {
            method,
            path,
            query: BTreeSet::new(),
            content_type: None,
            body: None,
            reply_code: 200,
            reply: json!({}),
        }
    }

    /// The server-side apply of a VA's status.
    pub fn status_apply(name: &str, status: Value) -> Expect {
        let mut e = Expect::new(
            "PATCH",
            format!("/apis/llmd.ai/v1alpha1/namespaces/{NS}/variantautoscalings/{name}/status"),
        );
        e.query = query(&[("fieldManager", "wva-manager"), ("force", "true")]);
        e.content_type = Some("application/apply-patch+yaml");
        e.body = Some(json!({
            "apiVersion": "llmd.ai/v1alpha1",
            "kind": "VariantAutoscaling",
            "status": status,
        }));
        e.reply = json!({
            "apiVersion": "llmd.ai/v1alpha1",
            "kind": "VariantAutoscaling",
            "metadata": {"name": name, "namespace": NS},
            "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "x"}, "modelID": "m"}
        });
        e
    }

    /// An Event POST; `event` is the body without `eventTime` and `metadata.name`.
    pub fn event(event: Value) -> Expect {
        let mut e = Expect::new(
            "POST",
            format!("/apis/events.k8s.io/v1/namespaces/{NS}/events"),
        );
        e.content_type = Some("application/json");
        e.reply = event.clone();
        e.body = Some(event);
        e
    }

    /// A scale subresource patch of `resource_path` (e.g. `apps/v1/namespaces/llm/deployments/d`).
    pub fn scale(resource_path: &str, content_type: &'static str, body: Value) -> Expect {
        let mut e = Expect::new("PATCH", format!("/apis/{resource_path}/scale"));
        e.query = query(&[("fieldManager", "wva-manager")]);
        e.content_type = Some(content_type);
        e.body = Some(body);
        e.reply = json!({
            "apiVersion": "autoscaling/v1", "kind": "Scale",
            "metadata": {"name": "x", "namespace": NS},
            "spec": {"replicas": 1}
        });
        e
    }

    /// Answers with `code` and a `Status` of `reason`, with `causes` messages.
    pub fn fails(mut self, code: u16, reason: &str, causes: &[&str]) -> Expect {
        self.reply_code = code;
        self.reply = json!({
            "apiVersion": "v1", "kind": "Status", "status": "Failure",
            "code": code, "reason": reason, "message": format!("{reason} answer"),
            "details": {"causes": causes.iter().map(|m| json!({"reason": "FieldValueInvalid", "message": m})).collect::<Vec<_>>()}
        });
        self
    }
}

fn query(pairs: &[(&str, &str)]) -> BTreeSet<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// Query parameters as a set (kube's query strings start with `&`; empty pairs are skipped).
fn query_set(query: Option<&str>) -> BTreeSet<(String, String)> {
    query
        .unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (k.to_owned(), v.to_owned()),
            None => (p.to_owned(), String::new()),
        })
        .collect()
}

/// Removes what comes from the wall clock: Events' `eventTime`, `metadata.name` and
/// `series.lastObservedTime`, and the conditions' `lastTransitionTime` (checked to be RFC 3339
/// in whole seconds first).
fn normalise(mut body: Value) -> Value {
    if body.get("kind") == Some(&json!("Event")) {
        if let Some(o) = body.as_object_mut() {
            o.remove("eventTime");
        }
        if let Some(m) = body.get_mut("metadata").and_then(Value::as_object_mut) {
            m.remove("name");
        }
        if let Some(s) = body.get_mut("series").and_then(Value::as_object_mut) {
            s.remove("lastObservedTime");
        }
    }
    if let Some(conditions) = body
        .pointer_mut("/status/conditions")
        .and_then(Value::as_array_mut)
    {
        for c in conditions {
            let t = c
                .get("lastTransitionTime")
                .and_then(Value::as_str)
                .unwrap_or_default();
            assert!(
                t.parse::<Timestamp>().is_ok() && t.ends_with('Z') && !t.contains('.'),
                "lastTransitionTime {t:?} is not RFC 3339 in whole seconds"
            );
            if let Some(o) = c.as_object_mut() {
                o.remove("lastTransitionTime");
            }
        }
    }
    body
}

type Handle = tower_test::mock::Handle<Request<Body>, Response<Body>>;

async fn verify(mut handle: Handle, expected: Vec<Expect>) {
    for (i, e) in expected.into_iter().enumerate() {
        let next = tokio::time::timeout(WAIT, handle.next_request()).await;
        let Ok(Some((request, reply))) = next else {
            panic!("request #{i} missing: expected {} {}", e.method, e.path);
        };
        let what = format!("request #{i} ({} {})", request.method(), request.uri());
        assert_eq!(request.method().as_str(), e.method, "{what}: method");
        assert_eq!(request.uri().path(), e.path, "{what}: path");
        assert_eq!(query_set(request.uri().query()), e.query, "{what}: query");
        let content_type = request
            .headers()
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        assert_eq!(
            content_type.as_deref(),
            e.content_type,
            "{what}: content-type"
        );
        let bytes = request.into_body().collect_bytes().await.unwrap();
        if let Some(expected_body) = e.body {
            let actual: Value = serde_json::from_slice(&bytes).unwrap();
            assert_eq!(normalise(actual), normalise(expected_body), "{what}: body");
        }
        let response = Response::builder()
            .status(e.reply_code)
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(Body::from(serde_json::to_vec(&e.reply).unwrap()))
            .unwrap();
        reply.send_response(response);
    }
    if let Ok(Some((request, _))) = tokio::time::timeout(WAIT, handle.next_request()).await {
        panic!(
            "unexpected extra request {} {}",
            request.method(),
            request.uri()
        );
    }
}

/// A client on a mock service and the verifier task that answers `expected` in order.
pub fn mock_api(expected: Vec<Expect>) -> (kube::Client, JoinHandle<()>) {
    let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let client = kube::Client::new(service, "default");
    (client, tokio::spawn(verify(handle, expected)))
}

/// The stores' writers, to change the cluster between reconciles.
pub struct Cluster {
    /// VAs.
    pub vas: Writer<VariantAutoscaling>,
    /// Deployments.
    pub deployments: Writer<Deployment>,
    /// LeaderWorkerSets.
    pub lws: Writer<DynamicObject>,
    /// Pods.
    pub pods: Writer<Pod>,
}

fn filled<K>(writer: &mut Writer<K>, objects: Vec<K>)
where
    K: kube::Resource + Clone + 'static,
    K::DynamicType: Eq + std::hash::Hash + Clone,
{
    writer.apply_watcher_event(&Event::Init);
    for o in objects {
        writer.apply_watcher_event(&Event::InitApply(o));
    }
    writer.apply_watcher_event(&Event::InitDone);
}

impl Cluster {
    /// Stores holding these objects, ready (`Init`, `InitApply`…, `InitDone`).
    pub fn new(
        vas: Vec<VariantAutoscaling>,
        deployments: Vec<Deployment>,
        lws: Vec<DynamicObject>,
    ) -> (Cluster, Stores) {
        let mut cluster = Cluster {
            vas: Writer::default(),
            deployments: Writer::default(),
            lws: Writer::new(wva_k8s::controller::context::leader_worker_set_resource()),
            pods: Writer::default(),
        };
        filled(&mut cluster.vas, vas);
        filled(&mut cluster.deployments, deployments);
        filled(&mut cluster.lws, lws);
        filled(&mut cluster.pods, Vec::new());
        let stores = Stores {
            vas: cluster.vas.as_reader(),
            deployments: cluster.deployments.as_reader(),
            leader_worker_sets: Some(cluster.lws.as_reader()),
            pods: cluster.pods.as_reader(),
            namespaces: None,
            nodes: None,
            inference_pools: None,
            hpas: None,
        };
        (cluster, stores)
    }
}

/// A context over `client` and `stores` with reporter instance `wva-0`.
pub fn context(
    client: kube::Client,
    stores: Stores,
    board: OutcomeBoard,
    tweak: impl FnOnce(&mut Settings),
) -> Arc<Context> {
    let mut settings = Settings::new(FilterSource::new(None, None, None));
    settings.reporter_instance = Some("wva-0".into());
    tweak(&mut settings);
    let ctx = Context::new(client, stores, settings, board);
    ctx.rebuild_index();
    Arc::new(ctx)
}

/// A time `secs` after 2026-01-01T00:00:00Z.
pub fn at(secs: i64) -> Time {
    Time(Timestamp::from_second(1_767_225_600 + secs).unwrap())
}

/// VA `name` in [`NS`] on Deployment `target`, model `m`, generation 1, uid `uid-{name}`.
pub fn va(name: &str, target: &str, accelerator: Option<&str>) -> VariantAutoscaling {
    let mut va = VariantAutoscaling::new(
        name,
        VariantAutoscalingSpec {
            scale_target_ref: ScaleTargetRef {
                api_version: Some("apps/v1".into()),
                kind: "Deployment".into(),
                name: target.into(),
            },
            model_id: "m".into(),
            variant_cost: "10.0".into(),
        },
    );
    va.metadata.namespace = Some(NS.into());
    va.metadata.generation = Some(1);
    va.metadata.uid = Some(format!("uid-{name}"));
    va.metadata.resource_version = Some("7".into());
    va.metadata.creation_timestamp = Some(at(0));
    if let Some(acc) = accelerator {
        va.metadata.labels = Some(BTreeMap::from([(
            "inference.optimization/acceleratorName".to_owned(),
            acc.to_owned(),
        )]));
    }
    va
}

/// Deployment `name` in [`NS`] with `spec.replicas` and `status.replicas` = `readyReplicas`.
pub fn deployment(name: &str, spec: i32, status: i32) -> Deployment {
    serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "replicas": spec,
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [
                {"name": "vllm", "image": "vllm", "command": ["vllm", "serve"],
                 "resources": {"requests": {"nvidia.com/gpu": "1"}}}
            ]}}
        },
        "status": {"replicas": status, "readyReplicas": status}
    }))
    .unwrap()
}

/// LeaderWorkerSet `name` in [`NS`] with `spec.replicas`.
pub fn leader_worker_set(name: &str, replicas: i32) -> DynamicObject {
    serde_json::from_value(json!({
        "apiVersion": "leaderworkerset.x-k8s.io/v1", "kind": "LeaderWorkerSet",
        "metadata": {"name": name, "namespace": NS},
        "spec": {"replicas": replicas, "leaderWorkerTemplate": {"size": 2, "workerTemplate": {"spec": {"containers": [
            {"name": "vllm", "image": "vllm", "resources": {"requests": {"nvidia.com/gpu": "8"}}}
        ]}}}},
        "status": {"replicas": replicas, "readyReplicas": replicas}
    }))
    .unwrap()
}

/// A condition as sent (without `lastTransitionTime`, which the verifier checks and drops).
pub fn cond(type_: &str, status: bool, reason: &str, message: &str) -> Value {
    json!({
        "type": type_,
        "status": if status { "True" } else { "False" },
        "reason": reason,
        "message": message,
        "observedGeneration": 1,
        "lastTransitionTime": "2026-01-01T00:00:00Z"
    })
}

/// The body of an Event about VA `name` (no `eventTime`, no `metadata.name`).
pub fn event_body(name: &str, type_: &str, reason: &str, action: &str, note: &str) -> Value {
    json!({
        "apiVersion": "events.k8s.io/v1",
        "kind": "Event",
        "metadata": {"namespace": NS},
        "action": action,
        "reason": reason,
        "note": note,
        "type": type_,
        "regarding": {
            "apiVersion": "llmd.ai/v1alpha1",
            "kind": "VariantAutoscaling",
            "name": name,
            "namespace": NS,
            "resourceVersion": "7",
            "uid": format!("uid-{name}")
        },
        "reportingController": "wva-manager",
        "reportingInstance": "wva-0"
    })
}

/// A ready store holding `objects` (for the optional stores).
pub fn store_of<K>(objects: Vec<K>) -> kube::runtime::reflector::Store<K>
where
    K: kube::Resource + Clone + 'static,
    K::DynamicType: Default + Eq + std::hash::Hash + Clone,
{
    let mut writer = Writer::<K>::default();
    filled(&mut writer, objects);
    writer.as_reader()
}

/// HPA `name` in [`NS`] targeting Deployment `target`.
pub fn hpa(name: &str, target: &str) -> k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler {
    serde_json::from_value(json!({
        "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": name, "namespace": NS},
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": target},
                 "maxReplicas": 10}
    }))
    .unwrap()
}
