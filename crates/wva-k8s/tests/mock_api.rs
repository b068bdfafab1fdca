//! Controller scenarios against a strict mock API server (spec/k8s.md §9): every request is
//! checked in order (method, path, query set, content type, JSON body), and a missing or extra
//! request fails the scenario. Stores are filled directly; reconciles are driven directly.

// Test helpers outside `#[test]` functions: a failed unwrap is a failed scenario.
#![allow(clippy::unwrap_used)]

mod mock;

use std::sync::Arc;
use std::time::Duration;

use kube::runtime::watcher::Event;
use mock::{
    Cluster, Expect, NS, at, cond, context, deployment, event_body, leader_worker_set, mock_api, va,
};
use serde_json::{Value, json};
use wva_core::Reason;
use wva_engine::Inventory;
use wva_k8s::config::Actuation;
use wva_k8s::controller::{
    FilterSource, KubeInventory, OutcomeBoard, ScaleFromZero, error_policy, reconcile,
    scale_from_zero,
};
use wva_k8s::crd::VariantAutoscaling;
use wva_k8s::handles::ActiveConfig;
use wva_k8s::status::{MetricsState, OptimizationOutcome, VariantOutcome};

const MERGE: &str = "application/merge-patch+json";
const JSON_PATCH: &str = "application/json-patch+json";

fn decided(desired: u32, current: u32) -> VariantOutcome {
    VariantOutcome {
        cycle_start: at(60),
        metrics: MetricsState::Fresh,
        optimization: OptimizationOutcome::Decided {
            accelerator: "H100".into(),
            desired,
            current,
            reason: Reason::KvCacheSaturation,
            detail: "kv cache".into(),
        },
    }
}

fn board_with(name: &str, outcome: VariantOutcome) -> OutcomeBoard {
    let board = OutcomeBoard::new();
    board.publish(vec![((NS.to_owned(), name.to_owned()), outcome)]);
    board
}

fn label_condition() -> Value {
    cond(
        "AcceleratorResolved",
        true,
        "AcceleratorLabel",
        "Accelerator H100 taken from label inference.optimization/acceleratorName",
    )
}

fn found(target: &str) -> Value {
    cond(
        "TargetResolved",
        true,
        "TargetFound",
        &format!("Scale target Deployment {target} found"),
    )
}

fn not_found(target: &str) -> Value {
    cond(
        "TargetResolved",
        false,
        "TargetNotFound",
        &format!("Scale target Deployment {target} not found"),
    )
}

fn skipped_unresolved() -> Value {
    cond(
        "OptimizationReady",
        false,
        "SkippedProcessing",
        "Skipped: scale target not resolved",
    )
}

/// The full status of a found Deployment `vllm` (spec 2) with outcome desired 3.
fn decided_status() -> Value {
    json!({
        "desiredOptimizedAlloc": {"accelerator": "H100", "numReplicas": 3, "lastRunTime": "2026-01-01T00:01:00Z"},
        "actuation": {"applied": false},
        "conditions": [
            label_condition(),
            cond("MetricsAvailable", true, "MetricsFound", "Saturation metrics data is available for scaling decisions"),
            cond("OptimizationReady", true, "OptimizationSucceeded", "Optimization loop ran: desired 3 replicas, current 2 (kv_cache_saturation)"),
            found("vllm"),
        ]
    })
}

async fn finish(verifier: tokio::task::JoinHandle<()>) {
    verifier.await.expect("verifier");
}

fn with_status(mut va: VariantAutoscaling, status: Value) -> VariantAutoscaling {
    va.status = Some(serde_json::from_value(status).unwrap());
    va
}

#[tokio::test(start_paused = true)]
async fn first_status_apply_sends_every_owned_field_with_force() {
    let a = va("va-a", "vllm", Some("H100"));
    let (_cluster, stores) = Cluster::new(vec![a.clone()], vec![deployment("vllm", 2, 2)], vec![]);
    let (client, verifier) = mock_api(vec![Expect::status_apply("va-a", decided_status())]);
    let ctx = context(client, stores, board_with("va-a", decided(3, 2)), |_| {});
    reconcile(Arc::new(a.clone()), ctx.clone()).await.unwrap();
    // The store has not seen the apply yet: the same status is not sent twice.
    reconcile(Arc::new(a), ctx).await.unwrap();
    finish(verifier).await;
}

#[tokio::test(start_paused = true)]
async fn unchanged_status_sends_no_request() {
    let a = with_status(va("va-a", "vllm", Some("H100")), decided_status());
    let (_cluster, stores) = Cluster::new(vec![a.clone()], vec![deployment("vllm", 2, 2)], vec![]);
    let (client, verifier) = mock_api(vec![]);
    let ctx = context(client, stores, board_with("va-a", decided(3, 2)), |_| {});
    reconcile(Arc::new(a.clone()), ctx.clone()).await.unwrap();
    reconcile(Arc::new(a), ctx).await.unwrap();
    finish(verifier).await;
}

#[tokio::test(start_paused = true)]
async fn missing_target_is_reported_as_target_not_found() {
    let a = va("va-a", "vllm", Some("H100"));
    let (_cluster, stores) = Cluster::new(vec![a.clone()], vec![], vec![]);
    let status =
        json!({"conditions": [label_condition(), skipped_unresolved(), not_found("vllm")]});
    let (client, verifier) = mock_api(vec![Expect::status_apply("va-a", status)]);
    let ctx = context(client, stores, OutcomeBoard::new(), |_| {});
    reconcile(Arc::new(a), ctx).await.unwrap();
    finish(verifier).await;
}

#[tokio::test(start_paused = true)]
async fn younger_va_on_a_shared_target_gets_target_conflict_and_a_warning_event() {
    let old = va("va-old", "vllm", Some("H100"));
    let mut young = va("va-young", "vllm", Some("H100"));
    young.metadata.creation_timestamp = Some(at(30));
    let (_cluster, stores) = Cluster::new(
        vec![old, young.clone()],
        vec![deployment("vllm", 2, 2)],
        vec![],
    );
    let message = "Scale target Deployment vllm is already managed by VariantAutoscaling va-old";
    let status = json!({"conditions": [
        label_condition(),
        skipped_unresolved(),
        cond("TargetResolved", false, "TargetConflict", message),
    ]});
    let (client, verifier) = mock_api(vec![
        Expect::status_apply("va-young", status),
        Expect::event(event_body(
            "va-young",
            "Warning",
            "TargetConflict",
            "Reconcile",
            message,
        )),
    ]);
    let ctx = context(client, stores, OutcomeBoard::new(), |_| {});
    reconcile(Arc::new(young), ctx).await.unwrap();
    finish(verifier).await;
}

#[tokio::test(start_paused = true)]
async fn va_created_before_its_deployment_resolves_when_the_deployment_appears() {
    let a = va("va-a", "vllm", Some("H100"));
    let (mut cluster, stores) = Cluster::new(vec![a.clone()], vec![], vec![]);
    let unresolved =
        json!({"conditions": [label_condition(), skipped_unresolved(), not_found("vllm")]});
    let resolved = json!({"conditions": [label_condition(), skipped_unresolved(), found("vllm")]});
    let (client, verifier) = mock_api(vec![
        Expect::status_apply("va-a", unresolved.clone()),
        Expect::status_apply("va-a", resolved),
    ]);
    let ctx = context(client, stores, OutcomeBoard::new(), |_| {});
    reconcile(Arc::new(a.clone()), ctx.clone()).await.unwrap();
    // The apply landed: the store now shows the unresolved status; the Deployment appears.
    let a = with_status(a, unresolved);
    cluster.vas.apply_watcher_event(&Event::Apply(a.clone()));
    cluster
        .deployments
        .apply_watcher_event(&Event::Apply(deployment("vllm", 1, 1)));
    reconcile(Arc::new(a), ctx).await.unwrap();
    finish(verifier).await;
}

#[tokio::test(start_paused = true)]
async fn deleted_then_recreated_deployment_goes_not_found_then_found() {
    let a = with_status(va("va-a", "vllm", Some("H100")), decided_status());
    let (mut cluster, stores) =
        Cluster::new(vec![a.clone()], vec![deployment("vllm", 2, 2)], vec![]);
    let mut gone = decided_status();
    gone["conditions"] = json!([
        label_condition(),
        cond(
            "MetricsAvailable",
            true,
            "MetricsFound",
            "Saturation metrics data is available for scaling decisions"
        ),
        skipped_unresolved(),
        not_found("vllm"),
    ]);
    let back = decided_status();
    let (client, verifier) = mock_api(vec![
        Expect::status_apply("va-a", gone.clone()),
        Expect::status_apply("va-a", back),
    ]);
    let ctx = context(client, stores, board_with("va-a", decided(3, 2)), |_| {});
    cluster
        .deployments
        .apply_watcher_event(&Event::Delete(deployment("vllm", 2, 2)));
    reconcile(Arc::new(a.clone()), ctx.clone()).await.unwrap();
    let a = with_status(a, gone);
    cluster.vas.apply_watcher_event(&Event::Apply(a.clone()));
    cluster
        .deployments
        .apply_watcher_event(&Event::Apply(deployment("vllm", 2, 2)));
    reconcile(Arc::new(a), ctx).await.unwrap();
    finish(verifier).await;
}

#[tokio::test(start_paused = true)]
async fn missing_accelerator_label_gives_accelerator_unknown_and_a_warning_event() {
    let a = va("va-a", "vllm", None);
    let (_cluster, stores) = Cluster::new(vec![a.clone()], vec![deployment("vllm", 2, 2)], vec![]);
    let message = "No usable accelerator label inference.optimization/acceleratorName and no GPU product in the pod template of Deployment vllm; publishing accelerator_type=\"unknown\"";
    let status = json!({"conditions": [
        cond("AcceleratorResolved", false, "AcceleratorUnknown", message),
        found("vllm"),
    ]});
    let (client, verifier) = mock_api(vec![
        Expect::status_apply("va-a", status),
        Expect::event(event_body(
            "va-a",
            "Warning",
            "AcceleratorUnknown",
            "Reconcile",
            message,
        )),
    ]);
    let ctx = context(client, stores, OutcomeBoard::new(), |_| {});
    reconcile(Arc::new(a), ctx).await.unwrap();
    finish(verifier).await;
}

#[tokio::test(start_paused = true)]
async fn invalid_variant_cost_is_optimised_at_the_default_cost_and_reconciles_normally() {
    let mut a = va("va-a", "vllm", Some("H100"));
    a.spec.variant_cost = "cheap".into();
    let (_cluster, stores) = Cluster::new(vec![a.clone()], vec![deployment("vllm", 2, 2)], vec![]);
    let (client, verifier) = mock_api(vec![Expect::status_apply("va-a", decided_status())]);
    let board = board_with("va-a", decided(3, 2));
    let inventory = KubeInventory::new(
        stores.clone(),
        Arc::new(arc_swap::ArcSwap::from_pointee(ActiveConfig::default())),
        FilterSource::new(None, None, None),
        board.clone(),
        false,
    );
    let snapshot = inventory.snapshot();
    assert_eq!(snapshot.variants[0].state.cost, 10.0);
    let ctx = context(client, stores, board, |_| {});
    reconcile(Arc::new(a), ctx).await.unwrap();
    finish(verifier).await;
}

fn idle_va(name: &str, kind: &str, api_version: &str, target: &str) -> VariantAutoscaling {
    let mut v = va(name, target, Some("H100"));
    v.spec.scale_target_ref.kind = kind.into();
    v.spec.scale_target_ref.api_version = Some(api_version.into());
    v
}

fn from_zero_body() -> Value {
    json!([
        {"op": "test", "path": "/spec/replicas", "value": 0},
        {"op": "replace", "path": "/spec/replicas", "value": 1}
    ])
}

#[tokio::test(start_paused = true)]
async fn scale_from_zero_wakes_a_deployment_with_a_tested_json_patch() {
    let a = idle_va("va-a", "Deployment", "apps/v1", "vllm");
    let (_cluster, stores) = Cluster::new(vec![a.clone()], vec![deployment("vllm", 0, 0)], vec![]);
    let (client, verifier) = mock_api(vec![
        Expect::scale(
            &format!("apps/v1/namespaces/{NS}/deployments/vllm"),
            JSON_PATCH,
            from_zero_body(),
        ),
        Expect::event(event_body(
            "va-a",
            "Normal",
            "ScaledFromZero",
            "Scale",
            "Scaled Deployment vllm from 0 to 1: pending requests for model m",
        )),
    ]);
    let board = OutcomeBoard::new();
    let ctx = context(client, stores, board.clone(), |_| {});
    let result = scale_from_zero(&ctx, &a).await.unwrap();
    assert_eq!(result, ScaleFromZero::Scaled);
    assert!(matches!(
        board.get(NS, "va-a").map(|o| o.optimization),
        Some(OptimizationOutcome::ScaledFromZero { accelerator }) if accelerator == "H100"
    ));
    finish(verifier).await;
}

#[tokio::test(start_paused = true)]
async fn scale_from_zero_wakes_a_leader_worker_set_through_its_scale_subresource() {
    let a = idle_va(
        "va-big",
        "LeaderWorkerSet",
        "leaderworkerset.x-k8s.io/v1",
        "big",
    );
    let (_cluster, stores) =
        Cluster::new(vec![a.clone()], vec![], vec![leader_worker_set("big", 0)]);
    let (client, verifier) = mock_api(vec![
        Expect::scale(
            &format!("leaderworkerset.x-k8s.io/v1/namespaces/{NS}/leaderworkersets/big"),
            JSON_PATCH,
            from_zero_body(),
        ),
        Expect::event(event_body(
            "va-big",
            "Normal",
            "ScaledFromZero",
            "Scale",
            "Scaled LeaderWorkerSet big from 0 to 1: pending requests for model m",
        )),
    ]);
    let ctx = context(client, stores, OutcomeBoard::new(), |_| {});
    assert_eq!(
        scale_from_zero(&ctx, &a).await.unwrap(),
        ScaleFromZero::Scaled
    );
    finish(verifier).await;
}

#[tokio::test(start_paused = true)]
async fn failed_test_op_means_someone_scaled_first_and_is_not_an_error() {
    let a = idle_va("va-a", "Deployment", "apps/v1", "vllm");
    let (_cluster, stores) = Cluster::new(vec![a.clone()], vec![deployment("vllm", 0, 0)], vec![]);
    let (client, verifier) = mock_api(vec![
        Expect::scale(
            &format!("apps/v1/namespaces/{NS}/deployments/vllm"),
            JSON_PATCH,
            from_zero_body(),
        )
        .fails(422, "Invalid", &["test failed: /spec/replicas is 2, not 0"]),
    ]);
    let board = OutcomeBoard::new();
    let ctx = context(client, stores, board.clone(), |_| {});
    assert_eq!(
        scale_from_zero(&ctx, &a).await.unwrap(),
        ScaleFromZero::AlreadyScaled
    );
    assert_eq!(board.get(NS, "va-a"), None, "no outcome recorded");
    finish(verifier).await;
}

#[tokio::test(start_paused = true)]
async fn direct_actuation_merge_patches_the_scale_subresource_and_reports_it() {
    let a = va("va-a", "vllm", Some("H100"));
    let (_cluster, stores) = Cluster::new(vec![a.clone()], vec![deployment("vllm", 2, 2)], vec![]);
    let (client, verifier) = mock_api(vec![
        Expect::status_apply("va-a", decided_status()),
        Expect::scale(
            &format!("apps/v1/namespaces/{NS}/deployments/vllm"),
            MERGE,
            json!({"spec": {"replicas": 3}}),
        ),
        Expect::event(event_body(
            "va-a",
            "Normal",
            "Scaled",
            "Scale",
            "Scaled Deployment vllm from 2 to 3 (kv_cache_saturation)",
        )),
    ]);
    let ctx = context(client, stores, board_with("va-a", decided(3, 2)), |s| {
        s.actuation = Actuation::Direct;
    });
    reconcile(Arc::new(a.clone()), ctx.clone()).await.unwrap();
    // A reconcile before the Deployment's watch event arrives neither scales nor reports again.
    reconcile(Arc::new(a), ctx).await.unwrap();
    finish(verifier).await;
}

#[tokio::test(start_paused = true)]
async fn other_422_is_not_retried_until_the_outcome_changes() {
    let a = va("va-a", "vllm", Some("H100"));
    let (_cluster, stores) = Cluster::new(vec![a.clone()], vec![deployment("vllm", 2, 2)], vec![]);
    let mut later = decided_status();
    later["desiredOptimizedAlloc"]["numReplicas"] = json!(4);
    later["conditions"][2] = cond(
        "OptimizationReady",
        true,
        "OptimizationSucceeded",
        "Optimization loop ran: desired 4 replicas, current 2 (kv_cache_saturation)",
    );
    let (client, verifier) = mock_api(vec![
        Expect::status_apply("va-a", decided_status()).fails(
            422,
            "Invalid",
            &["spec.x: Invalid value"],
        ),
        Expect::status_apply("va-a", later),
    ]);
    let board = board_with("va-a", decided(3, 2));
    let ctx = context(client, stores, board.clone(), |_| {});
    let va = Arc::new(a);
    let error = reconcile(va.clone(), ctx.clone()).await.unwrap_err();
    assert_eq!(
        error_policy(va.clone(), &error, ctx.clone()),
        kube::runtime::controller::Action::await_change()
    );
    // Retrying the same generation and outcome makes no request, even once a retry delay
    // would have passed.
    tokio::time::advance(Duration::from_millis(1500)).await;
    reconcile(va.clone(), ctx.clone()).await.unwrap();
    // A new outcome is worth a new try.
    board.publish(vec![((NS.to_owned(), "va-a".to_owned()), decided(4, 2))]);
    reconcile(va, ctx).await.unwrap();
    finish(verifier).await;
}

#[tokio::test(start_paused = true)]
async fn server_error_is_retried_after_the_backoff_delay() {
    let a = va("va-a", "vllm", Some("H100"));
    let (_cluster, stores) = Cluster::new(vec![a.clone()], vec![deployment("vllm", 2, 2)], vec![]);
    let (client, verifier) = mock_api(vec![
        Expect::status_apply("va-a", decided_status()).fails(500, "InternalError", &[]),
        Expect::status_apply("va-a", decided_status()),
    ]);
    let ctx = context(client, stores, board_with("va-a", decided(3, 2)), |_| {});
    let va = Arc::new(a);
    let error = reconcile(va.clone(), ctx.clone()).await.unwrap_err();
    assert!(error.to_string().contains("va-a"), "{error}");
    let action = error_policy(va.clone(), &error, ctx.clone());
    assert_ne!(action, kube::runtime::controller::Action::await_change());
    // A trigger inside the backoff window (a reconcile_all, say) makes no request.
    tokio::time::advance(Duration::from_millis(500)).await;
    reconcile(va.clone(), ctx.clone()).await.unwrap();
    // After 1 s ± 10 % the retry goes out and succeeds.
    tokio::time::advance(Duration::from_millis(700)).await;
    reconcile(va.clone(), ctx.clone()).await.unwrap();
    finish(verifier).await;
}

#[tokio::test(start_paused = true)]
async fn direct_actuation_is_skipped_with_one_event_when_an_hpa_targets_the_workload() {
    let a = va("va-a", "vllm", Some("H100"));
    let (_cluster, mut stores) =
        Cluster::new(vec![a.clone()], vec![deployment("vllm", 2, 2)], vec![]);
    stores.hpas = Some(mock::store_of(vec![mock::hpa("vllm-hpa", "vllm")]));
    let (client, verifier) = mock_api(vec![
        Expect::status_apply("va-a", decided_status()),
        Expect::event(event_body(
            "va-a",
            "Warning",
            "ConflictingAutoscaler",
            "Scale",
            "HorizontalPodAutoscaler vllm-hpa also targets Deployment vllm; direct actuation skipped",
        )),
    ]);
    let ctx = context(client, stores, board_with("va-a", decided(3, 2)), |s| {
        s.actuation = Actuation::Direct;
    });
    reconcile(Arc::new(a.clone()), ctx.clone()).await.unwrap();
    // Next reconcile (status now stored): no scale patch and no repeated Event.
    let a = with_status(a, decided_status());
    reconcile(Arc::new(a), ctx).await.unwrap();
    finish(verifier).await;
}

async fn run_with_trigger(send: impl FnOnce(&wva_k8s::handles::TriggerSenders)) {
    let a = va("va-a", "vllm", Some("H100"));
    let (_cluster, stores) = Cluster::new(vec![a], vec![deployment("vllm", 2, 2)], vec![]);
    let (client, verifier) = mock_api(vec![Expect::status_apply("va-a", decided_status())]);
    let ctx = context(client, stores, board_with("va-a", decided(3, 2)), |_| {});
    let (senders, triggers) = wva_k8s::handles::trigger_channels(16);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let controller = tokio::spawn(wva_k8s::controller::run_controller(
        ctx,
        triggers,
        async move {
            let _ = stopped.await;
        },
    ));
    send(&senders);
    finish(verifier).await;
    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(5), controller)
        .await
        .expect("controller stops on shutdown")
        .unwrap();
}

#[tokio::test(start_paused = true)]
async fn controller_reconciles_the_va_of_a_touched_deployment() {
    run_with_trigger(|s| {
        s.deployments
            .clone()
            .try_send(deployment("vllm", 2, 2))
            .unwrap();
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn controller_reconciles_the_va_owning_a_changed_pod() {
    run_with_trigger(|s| {
        let pod: k8s_openapi::api::core::v1::Pod = serde_json::from_value(json!({
            "metadata": {"name": "vllm-7d9f8-abcde", "namespace": NS,
                "labels": {"pod-template-hash": "7d9f8"},
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                    "name": "vllm-7d9f8", "uid": "rs"}]}
        }))
        .unwrap();
        s.pods.clone().try_send(pod).unwrap();
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn controller_reconciles_every_va_when_outcomes_are_published() {
    run_with_trigger(|s| s.request_reconcile_all()).await;
}

#[tokio::test(start_paused = true)]
async fn va_in_an_excluded_namespace_is_left_alone() {
    let a = va("va-a", "vllm", Some("H100"));
    let (_cluster, stores) = Cluster::new(vec![a.clone()], vec![deployment("vllm", 2, 2)], vec![]);
    let mut excluded =
        kube::api::PartialObjectMeta::<k8s_openapi::api::core::v1::Namespace>::default();
    excluded.metadata.name = Some(NS.into());
    excluded.metadata.annotations =
        Some([("wva.llmd.ai/exclude".to_owned(), "true".to_owned())].into());
    let namespaces = mock::store_of(vec![excluded]);
    let (client, verifier) = mock_api(vec![]);
    let ctx = context(client, stores, board_with("va-a", decided(3, 2)), |s| {
        s.filters = FilterSource::new(None, None, Some(namespaces));
    });
    reconcile(Arc::new(a), ctx).await.unwrap();
    finish(verifier).await;
}

#[tokio::test(start_paused = true)]
async fn unsupported_target_kind_is_reported() {
    let mut a = va("va-a", "web", Some("H100"));
    a.spec.scale_target_ref.kind = "StatefulSet".into();
    let (_cluster, stores) = Cluster::new(vec![a.clone()], vec![], vec![]);
    let status = json!({"conditions": [
        label_condition(),
        skipped_unresolved(),
        cond("TargetResolved", false, "UnsupportedTargetKind",
            "Scale target kind apps/v1/StatefulSet is not supported; supported kinds: apps/v1 Deployment, leaderworkerset.x-k8s.io/v1 LeaderWorkerSet"),
    ]});
    let (client, verifier) = mock_api(vec![Expect::status_apply("va-a", status)]);
    let ctx = context(client, stores, OutcomeBoard::new(), |_| {});
    reconcile(Arc::new(a), ctx).await.unwrap();
    finish(verifier).await;
}
