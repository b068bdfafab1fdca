//! Wiring tests against an in-process fake API server: reflectors fill their stores and forward
//! only what triggers work (spec/k8s.md §3.1, §3.2), the ConfigMap hot reload swaps the handle
//! or keeps the last good version with an `InvalidConfiguration` Event (§6.4), and leader
//! election uses the per-instance Lease name and retries (§6.5).

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

mod fake_api;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use wva_k8s::crd::VariantAutoscaling;
use wva_k8s::handles::{ActiveConfig, ConfigHandle, Stores, VaDeletedHook, trigger_channels};
use wva_k8s::lease::LeaseParams;
use wva_k8s::runtime::config_watch::{ConfigReloadOptions, start_config_reload};
use wva_k8s::runtime::leader::{LeaderOptions, start_leader_election};
use wva_k8s::runtime::reflectors::{ReflectorOptions, start_reflectors};

use fake_api::FakeApi;

const VAS: &str = "/apis/llmd.ai/v1alpha1/namespaces/ns/variantautoscalings";
const DEPLOYMENTS: &str = "/apis/apps/v1/namespaces/ns/deployments";
const PODS: &str = "/api/v1/namespaces/ns/pods";
const CONFIGMAPS: &str = "/api/v1/namespaces/wva/configmaps";
const WAIT: Duration = Duration::from_secs(5);

fn va(generation: i64, replicas_in_status: Option<u32>) -> Value {
    let mut va = json!({
        "apiVersion": "llmd.ai/v1alpha1", "kind": "VariantAutoscaling",
        "metadata": {"name": "va1", "namespace": "ns", "generation": generation,
            "labels": {"wva.llmd.ai/controller-instance": "a"}},
        "spec": {"modelID": "m", "scaleTargetRef": {"kind": "Deployment", "name": "d1"}}
    });
    if let Some(n) = replicas_in_status {
        va["status"] = json!({"desiredOptimizedAlloc": {"accelerator": "H100", "numReplicas": n}});
    }
    va
}

fn deployment() -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "d1", "namespace": "ns", "generation": 1},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "d1"}},
            "template": {"metadata": {"labels": {"app": "d1"}}, "spec": {"containers": [{"name": "vllm", "image": "vllm"}]}}}
    })
}

fn pod(ready: bool, marker: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "p1", "namespace": "ns", "labels": {"app": "d1", "marker": marker}},
        "spec": {"containers": [{"name": "vllm", "image": "vllm"}]},
        "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}]}
    })
}

async fn next<T>(rx: &mut futures::channel::mpsc::Receiver<T>) -> T {
    tokio::time::timeout(WAIT, rx.next())
        .await
        .expect("nothing forwarded in time")
        .expect("channel closed")
}

fn marker(pod: &Pod) -> String {
    pod.metadata.labels.as_ref().unwrap()["marker"].clone()
}

#[tokio::test]
async fn reflectors_fill_their_stores_and_forward_only_what_triggers_work() {
    let api = FakeApi::default();
    api.seed(VAS, va(1, None));
    api.seed(DEPLOYMENTS, deployment());
    api.seed(PODS, pod(false, "initial"));
    let (senders, mut triggers) = trigger_channels(16);
    let deleted = Arc::new(Mutex::new(Vec::<String>::new()));
    let seen = deleted.clone();
    let hook: VaDeletedHook = Arc::new(move |va: &VariantAutoscaling| {
        seen.lock().unwrap().push(va.metadata.name.clone().unwrap());
    });
    let opts = ReflectorOptions {
        watch_namespace: Some("ns".into()),
        controller_instance: Some("a".into()),
        ..ReflectorOptions::default()
    };
    let reflectors = start_reflectors(api.client(), opts, senders, hook);
    assert!(
        tokio::time::timeout(WAIT, reflectors.wait_until_ready())
            .await
            .unwrap()
    );
    let stores = reflectors.stores.clone();
    assert_eq!(stores.vas.state().len(), 1);
    assert_eq!(stores.deployments.state().len(), 1);
    assert_eq!(stores.pods.state().len(), 1);
    assert!(stores.namespaces.is_none(), "scoped: no Namespace watch");
    assert!(stores.leader_worker_sets.is_none() && stores.hpas.is_none());

    // The initial list is forwarded once.
    assert_eq!(next(&mut triggers.vas).await.metadata.generation, Some(1));
    assert_eq!(
        next(&mut triggers.deployments)
            .await
            .metadata
            .name
            .as_deref(),
        Some("d1")
    );
    assert_eq!(marker(&next(&mut triggers.pods).await), "initial");

    // The VA list carries the instance label selector.
    let list = api
        .wait_for(|r| r.path == VAS && !r.query.iter().any(|(k, _)| k == "watch"))
        .await;
    assert!(
        list.query.contains(&(
            "labelSelector".into(),
            "wva.llmd.ai/controller-instance=a".into()
        )),
        "{:?}",
        list.query
    );

    for path in [VAS, DEPLOYMENTS, PODS] {
        api.wait_for_watchers(path, 1).await;
    }
    // A status-only VA update is not forwarded; the spec change after it is.
    api.push(VAS, "MODIFIED", va(1, Some(3)));
    api.push(VAS, "MODIFIED", va(2, Some(3)));
    assert_eq!(next(&mut triggers.vas).await.metadata.generation, Some(2));

    // A VA delete calls the hook and is forwarded.
    api.push(VAS, "DELETED", va(2, Some(3)));
    let gone = next(&mut triggers.vas).await;
    assert_eq!(gone.metadata.generation, Some(2));
    assert_eq!(*deleted.lock().unwrap(), vec!["va1".to_string()]);
    assert!(stores.vas.state().is_empty());

    // A Deployment delete is forwarded.
    api.push(DEPLOYMENTS, "DELETED", deployment());
    assert_eq!(
        next(&mut triggers.deployments)
            .await
            .metadata
            .name
            .as_deref(),
        Some("d1")
    );

    // A label-only Pod change is not forwarded; the Ready flip after it is.
    api.push(PODS, "MODIFIED", pod(false, "relabelled"));
    api.push(PODS, "MODIFIED", pod(true, "ready"));
    assert_eq!(marker(&next(&mut triggers.pods).await), "ready");
    assert!(triggers.vas.try_recv().is_err());
    assert!(triggers.pods.try_recv().is_err());
}

const SATURATION: &str = "wva-saturation-scaling-config";

fn saturation_cm(data: Value) -> Value {
    json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": SATURATION, "namespace": "wva", "uid": "cm-uid"},
        "data": data
    })
}

fn empty_stores() -> Stores {
    Stores {
        vas: kube::runtime::reflector::store().0,
        deployments: kube::runtime::reflector::store().0,
        leader_worker_sets: None,
        pods: kube::runtime::reflector::store().0,
        namespaces: None,
        nodes: None,
        inference_pools: None,
        hpas: None,
    }
}

#[tokio::test]
async fn configmap_reload_swaps_good_versions_and_keeps_the_last_good_on_a_bad_edit() {
    let api = FakeApi::default();
    api.seed(
        CONFIGMAPS,
        saturation_cm(json!({"default": "kvCacheThreshold: 0.7"})),
    );
    let handle: ConfigHandle = Arc::new(ArcSwap::from_pointee(ActiveConfig::default()));
    let reloads = Arc::new(Mutex::new(0u32));
    let counted = reloads.clone();
    let opts = ConfigReloadOptions {
        pod_namespace: "wva".into(),
        pod_name: Some("wva-0".into()),
        watch_namespace: None,
        namespace_overrides: false,
        saturation_name: SATURATION.into(),
        scale_to_zero_name: "wva-model-scale-to-zero-config".into(),
    };
    let reload = start_config_reload(
        api.client(),
        opts,
        handle.clone(),
        empty_stores(),
        Arc::new(tokio::sync::Notify::new()),
        None,
        Arc::new(move || *counted.lock().unwrap() += 1),
    );
    assert!(
        tokio::time::timeout(WAIT, reload.wait_until_ready())
            .await
            .unwrap()
    );
    assert_eq!(handle.load().saturation.global().kv_cache_threshold, 0.7);
    // One field-selected watch per ConfigMap name.
    for name in [SATURATION, "wva-model-scale-to-zero-config"] {
        let selector = ("fieldSelector".to_string(), format!("metadata.name={name}"));
        api.wait_for(|r| {
            r.path == CONFIGMAPS
                && r.query.iter().any(|(k, _)| k == "watch")
                && r.query.contains(&selector)
        })
        .await;
    }
    api.wait_for_watchers(CONFIGMAPS, 2).await;

    // A valid edit is swapped in and requests a cycle.
    api.push(
        CONFIGMAPS,
        "MODIFIED",
        saturation_cm(json!({"default": "kvCacheThreshold: 0.6"})),
    );
    for _ in 0..500 {
        if handle.load().saturation.global().kv_cache_threshold == 0.6 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(handle.load().saturation.global().kv_cache_threshold, 0.6);
    assert_eq!(*reloads.lock().unwrap(), 1);

    // A bad edit: last good kept whole, one Warning Event with the exact note.
    api.push(
        CONFIGMAPS,
        "MODIFIED",
        saturation_cm(json!({"default": "kvCacheThreshold: 0.5", "bad": "bogus: 1"})),
    );
    let event = api
        .wait_for(|r| {
            r.method == "POST" && r.path == "/apis/events.k8s.io/v1/namespaces/wva/events"
        })
        .await;
    let body = event.body.unwrap();
    assert_eq!(body["type"], "Warning");
    assert_eq!(body["reason"], "InvalidConfiguration");
    assert_eq!(body["action"], "LoadConfig");
    assert_eq!(body["reportingController"], "wva-manager");
    assert_eq!(body["reportingInstance"], "wva-0");
    assert_eq!(body["regarding"]["kind"], "ConfigMap");
    assert_eq!(body["regarding"]["name"], SATURATION);
    assert_eq!(
        body["note"],
        "Rejected wva/wva-saturation-scaling-config: bad: unknown field \"bogus\"; keeping the last good configuration"
    );
    assert_eq!(handle.load().saturation.global().kv_cache_threshold, 0.6);
    assert_eq!(*reloads.lock().unwrap(), 1);
}

#[tokio::test]
async fn leader_election_uses_the_instance_lease_and_retries_after_api_errors() {
    let api = FakeApi::default();
    api.fail("/apis/coordination.k8s.io/");
    let shutdown = CancellationToken::new();
    let opts = LeaderOptions {
        enabled: true,
        namespace: "wva".into(),
        params: LeaseParams {
            name: wva_k8s::lease::lease_name("72dd1cf1.llm-d.ai", Some("Team_A")),
            identity: "wva-0".into(),
            duration_secs: 60,
            grace_secs: 10,
            retry_period: Duration::from_millis(50),
        },
    };
    let leadership = start_leader_election(api.client(), opts, shutdown.clone());
    let lease_path = "/apis/coordination.k8s.io/v1/namespaces/wva/leases/72dd1cf1.llm-d.ai-team-a";
    api.wait_for(|r| r.path == lease_path).await;
    // The build is retried after the retry period.
    for _ in 0..500 {
        if api
            .recorded()
            .iter()
            .filter(|r| r.path == lease_path)
            .count()
            >= 2
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        api.recorded()
            .iter()
            .filter(|r| r.path == lease_path)
            .count()
            >= 2
    );
    assert!(!*leadership.is_leader.borrow());
    shutdown.cancel();
    tokio::time::timeout(WAIT, leadership.finished())
        .await
        .unwrap();
}

#[tokio::test]
async fn without_leader_election_the_process_leads_at_once() {
    let api = FakeApi::default();
    let opts = LeaderOptions {
        enabled: false,
        namespace: "wva".into(),
        params: LeaseParams {
            name: "id".into(),
            identity: "wva-0".into(),
            duration_secs: 60,
            grace_secs: 10,
            retry_period: Duration::from_secs(10),
        },
    };
    let leadership = start_leader_election(api.client(), opts, CancellationToken::new());
    assert!(leadership.wait_for_leadership().await);
    assert!(api.recorded().is_empty());
    assert!(!leadership.lost.is_cancelled());
}
