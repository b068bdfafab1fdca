//! The controller wiring (spec/k8s.md §3.2): `Controller::for_stream` over the VA trigger
//! stream and store, with Deployments and LeaderWorkerSets mapped through the
//! `scaleTargetRef` index, Pods through their owning target, single-VA requests and
//! `reconcile_all` requests; concurrency 8, debounce 500 ms, graceful shutdown.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::{StreamExt, future};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use kube::api::DynamicObject;
use kube::runtime::controller::{Config, Controller};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;

use super::context::Context;
use super::reconcile::{error_policy, reconcile};
use crate::crd::VariantAutoscaling;
use crate::handles::Triggers;
use crate::target::{TargetKey, TargetKind, pod_target};

/// Reconciles running at once.
pub const CONCURRENCY: u16 = 8;
/// Trailing-edge debounce of reconcile requests per object.
pub const DEBOUNCE: Duration = Duration::from_millis(500);

fn target_of(kind: TargetKind, meta: &kube::api::ObjectMeta) -> TargetKey {
    TargetKey::of(
        kind,
        meta.namespace.as_deref().unwrap_or_default(),
        meta.name.as_deref().unwrap_or_default(),
    )
}

/// Runs the controller until `shutdown` resolves and the reconciles in flight finish. The VA
/// store in the context must be filled by its reflector (reconciles wait for its initial list).
pub fn run_controller(
    ctx: Arc<Context>,
    triggers: Triggers,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) -> impl Future<Output = ()> {
    let Triggers {
        vas,
        deployments,
        leader_worker_sets,
        pods,
        reconcile_all,
    } = triggers;
    let indexing = ctx.clone();
    let va_stream = vas.map(move |va: VariantAutoscaling| {
        indexing.index_apply(&va);
        Ok::<_, watcher::Error>(va)
    });
    let by_deployment = ctx.clone();
    let by_lws = ctx.clone();
    let by_pod = ctx.clone();
    let resetting = ctx.clone();
    let wake = ctx
        .take_wake_requests()
        .map(|rx| rx.boxed())
        .unwrap_or_else(|| futures::stream::empty::<ObjectRef<VariantAutoscaling>>().boxed());
    let controller = Controller::for_stream(va_stream, ctx.stores.vas.clone())
        .watches_stream(
            deployments.map(Ok::<Deployment, watcher::Error>),
            move |d: Deployment| {
                by_deployment.vas_for(&target_of(TargetKind::Deployment, &d.metadata))
            },
        )
        .watches_stream_with(
            leader_worker_sets.map(Ok::<DynamicObject, watcher::Error>),
            move |l: DynamicObject| {
                by_lws.vas_for(&target_of(TargetKind::LeaderWorkerSet, &l.metadata))
            },
            ctx.settings.leader_worker_set_resource.clone(),
        )
        .watches_stream(pods.map(Ok::<Pod, watcher::Error>), move |p: Pod| {
            pod_target(&p)
                .map(|key| by_pod.vas_for(&key))
                .unwrap_or_default()
        })
        .reconcile_on(wake)
        .reconcile_all_on(reconcile_all.map(move |()| resetting.rebuild_index()))
        .with_config(
            Config::default()
                .concurrency(CONCURRENCY)
                .debounce(DEBOUNCE),
        )
        .graceful_shutdown_on(shutdown);
    controller
        .run(reconcile, error_policy, ctx)
        .for_each(|result| {
            if let Err(error) = result {
                tracing::debug!(%error, "controller");
            }
            future::ready(())
        })
}
