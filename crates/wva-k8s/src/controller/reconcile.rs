//! The per-VA reconcile (spec/k8s.md §3.5): cheap, reads the stores, writes only what changed
//! (status by server-side apply, transition Events, and in direct mode the scale subresource),
//! with the per-object backoff of §3.6 consulted before any API call.

use std::sync::Arc;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::runtime::controller::Action;
use kube::runtime::reflector::ObjectRef;
use tokio::time::Instant;
use wva_exposition::{Outcome, ScalePatchMode, ScalePatchResult};

use super::backoff::{Gate, RejectKey};
use super::context::{Context, deployment_resource};
use super::writes::{
    ApiFailure, apply_status, patch_from_zero, patch_replicas, publish_event,
    scale_from_zero_patch, va_reference,
};
use crate::accelerator::{AcceleratorResolution, resolve_accelerator};
use crate::conditions::{self, ACCELERATOR_RESOLVED, TARGET_RESOLVED};
use crate::crd::{VariantAutoscaling, VariantAutoscalingStatus};
use crate::events;
use crate::inventory::{Filters, Fingerprint};
use crate::status::{
    MetricsState, OptimizationOutcome, TargetState, VariantOutcome, build_status, status_changed,
};
use crate::target::{ObjectName, TargetKey, TargetKind, conflict_owner, object_name, target_key};
use crate::workload::WorkloadView;

/// Why a reconcile (or a scale from zero) failed.
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    /// The status apply failed.
    #[error("cannot apply the status of VariantAutoscaling {namespace}/{name}: {source}")]
    Status {
        /// VA namespace.
        namespace: String,
        /// VA name.
        name: String,
        /// The failure.
        #[source]
        source: ApiFailure,
    },
    /// A scale subresource patch failed.
    #[error("cannot scale {kind} {namespace}/{target} to {replicas}: {source}")]
    Scale {
        /// Target kind.
        kind: &'static str,
        /// Namespace.
        namespace: String,
        /// Target name.
        target: String,
        /// Requested replicas.
        replicas: u32,
        /// The failure.
        #[source]
        source: ApiFailure,
    },
    /// The VA's target is not a supported, existing and owned workload.
    #[error("VariantAutoscaling {namespace}/{name} has no usable scale target")]
    NoTarget {
        /// VA namespace.
        namespace: String,
        /// VA name.
        name: String,
    },
    /// The scale-from-zero JSON patch could not be built.
    #[error("cannot build the scale-from-zero patch: {0}")]
    Patch(#[source] serde_json::Error),
}

impl ReconcileError {
    /// The API failure behind the error, if any.
    pub fn api_failure(&self) -> Option<&ApiFailure> {
        match self {
            ReconcileError::Status { source, .. } | ReconcileError::Scale { source, .. } => {
                Some(source)
            }
            ReconcileError::NoTarget { .. } | ReconcileError::Patch(_) => None,
        }
    }
}

/// A found target owned by the VA.
#[derive(Debug, Clone)]
pub(crate) struct FoundTarget {
    pub(crate) key: TargetKey,
    pub(crate) kind: TargetKind,
    pub(crate) view: WorkloadView,
}

/// The VA's target and accelerator as the stores show them.
#[derive(Debug, Clone)]
pub(crate) struct Resolved {
    pub(crate) state: TargetState,
    pub(crate) accelerator: AcceleratorResolution,
    pub(crate) found: Option<FoundTarget>,
}

impl Resolved {
    /// The inventory fingerprint (spec/k8s.md §3.4), `None` while unresolved; computed exactly
    /// as `build_inventory` does.
    pub(crate) fn fingerprint(&self, va: &VariantAutoscaling) -> Option<Fingerprint> {
        let found = self.found.as_ref()?;
        let current = u32::try_from(found.view.current).unwrap_or(0);
        let ready = u32::try_from(found.view.ready).unwrap_or(0);
        Some(Fingerprint {
            generation: va.metadata.generation.unwrap_or(0),
            spec_replicas: spec_replicas(&found.view),
            all_ready: current.saturating_sub(ready) == 0,
            accelerator: self.accelerator.name.clone(),
            gpus_per_replica: found.view.gpus_per_replica(&mut Vec::new()),
        })
    }
}

fn spec_replicas(view: &WorkloadView) -> u32 {
    view.spec_replicas
        .map_or(1, |n| u32::try_from(n).unwrap_or(0))
}

/// Resolves `va`'s target from the stores: unsupported kind, not found (or being deleted),
/// conflict (an older tracked VA owns it, by the index), or found.
pub(crate) fn resolve(ctx: &Context, va: &VariantAutoscaling, filters: &Filters) -> Resolved {
    let key = target_key(va);
    let unresolved = |state| Resolved {
        state,
        accelerator: resolve_accelerator(va, &[]),
        found: None,
    };
    let Some(kind) = key.supported_kind() else {
        return unresolved(TargetState::Unsupported);
    };
    let view = match kind {
        TargetKind::Deployment => ctx
            .stores
            .deployments
            .get(&ObjectRef::new(&key.name).within(&key.namespace))
            .map(|d| WorkloadView::of_deployment(&d)),
        TargetKind::LeaderWorkerSet => ctx.stores.leader_worker_sets.as_ref().and_then(|s| {
            s.state()
                .into_iter()
                .find(|l| {
                    l.metadata.namespace.as_deref() == Some(key.namespace.as_str())
                        && l.metadata.name.as_deref() == Some(key.name.as_str())
                })
                .and_then(|l| WorkloadView::of_leader_worker_set(&l))
        }),
    };
    let Some(view) = view.filter(|v| !v.deleting) else {
        return unresolved(TargetState::NotFound);
    };
    let me = object_name(va);
    let rivals: Vec<Arc<VariantAutoscaling>> = ctx
        .vas_for(&key)
        .iter()
        .filter(|r| {
            (r.namespace.as_deref().unwrap_or_default(), r.name.as_str())
                != (me.0.as_str(), me.1.as_str())
        })
        .filter_map(|r| ctx.stores.vas.get(r))
        .filter(|other| filters.tracks(other) && target_key(other) == key)
        .collect();
    let owner = conflict_owner(rivals.iter().map(Arc::as_ref).chain([va]));
    if let Some(owner) = owner
        && object_name(owner) != me
    {
        return unresolved(TargetState::Conflict {
            owner: owner.metadata.name.clone().unwrap_or_default(),
        });
    }
    let templates: Vec<_> = view.accelerator_templates.iter().collect();
    let accelerator = resolve_accelerator(va, &templates);
    Resolved {
        state: TargetState::Found {
            spec_replicas: spec_replicas(&view),
        },
        accelerator,
        found: Some(FoundTarget { key, kind, view }),
    }
}

/// Reconciles one VA: excluded or foreign → nothing; backoff holding → requeue without an API
/// call; else resolve the target, request a cycle when the inventory moved, apply the status
/// when it changed, publish transition Events and, with `--actuation direct`, scale.
pub async fn reconcile(
    va: Arc<VariantAutoscaling>,
    ctx: Arc<Context>,
) -> Result<Action, ReconcileError> {
    let filters = ctx.filters();
    if !filters.tracks(&va) {
        return Ok(Action::await_change());
    }
    ctx.index_apply(&va);
    let id = object_name(&va);
    let outcome = ctx.board.get(&id.0, &id.1);
    let key = RejectKey::new(va.metadata.generation.unwrap_or(0), outcome.as_ref());
    match ctx.backoff.gate(&id, &key, Instant::now()) {
        Gate::Open => {}
        Gate::Wait(delay) => return Ok(Action::requeue(delay)),
        Gate::Rejected => return Ok(Action::await_change()),
    }

    let resolved = resolve(&ctx, &va, &filters);
    if ctx
        .board
        .cycle_needed(&id.0, &id.1, resolved.fingerprint(&va).as_ref())
    {
        ctx.request_cycle();
    }

    match write(&ctx, &va, &id, &resolved, outcome.as_ref()).await {
        Ok(()) => {
            ctx.backoff.clear(&id);
            Ok(Action::await_change())
        }
        Err(error) => {
            match error.api_failure() {
                Some(failure) if failure.is_invalid() => {
                    tracing::error!(namespace = %id.0, name = %id.1, %error, response = ?failure.status(), "request rejected; not retried until the VariantAutoscaling or its outcome changes");
                    ctx.backoff.rejected(&id, key);
                }
                _ => {
                    let delay = ctx.backoff.failed(&id, Instant::now());
                    tracing::warn!(namespace = %id.0, name = %id.1, %error, retry_in = ?delay, "reconcile failed");
                }
            }
            Err(error)
        }
    }
}

/// The requeue after a failed reconcile: the delay the backoff recorded, or wait for a change
/// after a 422.
pub fn error_policy(
    va: Arc<VariantAutoscaling>,
    _error: &ReconcileError,
    ctx: Arc<Context>,
) -> Action {
    match ctx.backoff.remaining(&object_name(&va), Instant::now()) {
        Some(delay) => Action::requeue(delay),
        None => Action::await_change(),
    }
}

async fn write(
    ctx: &Context,
    va: &VariantAutoscaling,
    id: &ObjectName,
    resolved: &Resolved,
    outcome: Option<&VariantOutcome>,
) -> Result<(), ReconcileError> {
    let now = Time(Timestamp::now());
    let stored = va.status.as_ref();
    let desired = build_status(va, &resolved.state, &resolved.accelerator, outcome, &now);
    if !status_changed(stored, &desired) {
        ctx.remember_status(id, None);
    } else if ctx.status_pending(id, &desired) {
        // Applied already; the VA's watch event has not reached the store yet.
    } else {
        let applied = apply_status(ctx, &id.0, &id.1, &desired).await;
        let metric = if applied.is_ok() {
            Outcome::Ok
        } else {
            Outcome::Error
        };
        if let Some(m) = ctx.self_metrics() {
            m.record_status_patch(metric);
        }
        match applied {
            Ok(()) => {}
            // The VA is gone; its delete event cleans up.
            Err(failure) if failure.is_not_found() => return Ok(()),
            Err(source) => {
                return Err(ReconcileError::Status {
                    namespace: id.0.clone(),
                    name: id.1.clone(),
                    source,
                });
            }
        }
        ctx.remember_status(id, Some(desired.clone()));
        transition_events(ctx, va, resolved, stored, &desired).await;
    }
    if ctx.settings.actuation == crate::config::Actuation::Direct {
        scale_directly(ctx, va, id, resolved, outcome).await?;
    }
    Ok(())
}

fn reason_of<'a>(status: Option<&'a VariantAutoscalingStatus>, type_: &str) -> Option<&'a str> {
    status?
        .conditions
        .iter()
        .find(|c| c.type_ == type_)
        .map(|c| c.reason.as_str())
}

async fn transition_events(
    ctx: &Context,
    va: &VariantAutoscaling,
    resolved: &Resolved,
    stored: Option<&VariantAutoscalingStatus>,
    desired: &VariantAutoscalingStatus,
) {
    let target = &va.spec.scale_target_ref;
    let entered = |type_: &str, reason: &str| {
        reason_of(Some(desired), type_) == Some(reason) && reason_of(stored, type_) != Some(reason)
    };
    let mut notes = Vec::new();
    if let TargetState::Conflict { owner } = &resolved.state
        && entered(TARGET_RESOLVED, "TargetConflict")
    {
        notes.push(events::target_conflict(target, owner));
    }
    if entered(ACCELERATOR_RESOLVED, "AcceleratorUnknown") {
        notes.push(events::accelerator_unknown(conditions::accelerator(
            &resolved.accelerator,
            target,
        )));
    }
    if notes.is_empty() {
        return;
    }
    let regarding = va_reference(va);
    for note in &notes {
        publish_event(ctx, &regarding, note).await;
    }
}

/// The HPA in the VA's namespace that targets the same workload, if any.
fn conflicting_hpa(ctx: &Context, key: &TargetKey) -> Option<String> {
    let hpas = ctx.stores.hpas.as_ref()?;
    hpas.state().into_iter().find_map(|hpa| {
        let target = &hpa.spec.as_ref()?.scale_target_ref;
        let group = target
            .api_version
            .as_deref()
            .and_then(|v| v.rsplit_once('/'))
            .map_or("", |(g, _)| g);
        let same = hpa.metadata.namespace.as_deref() == Some(key.namespace.as_str())
            && target.kind == key.kind
            && target.name == key.name
            && (target.api_version.is_none() || group == key.group);
        same.then(|| hpa.metadata.name.clone().unwrap_or_default())
    })
}

pub(crate) fn resource_of(ctx: &Context, kind: TargetKind) -> kube::api::ApiResource {
    match kind {
        TargetKind::Deployment => deployment_resource(),
        TargetKind::LeaderWorkerSet => ctx.settings.leader_worker_set_resource.clone(),
    }
}

/// `--actuation direct` (spec/k8s.md §5.2): merge-patch the scale subresource when the
/// outcome's desired count differs from `spec.replicas`, unless an HPA targets the workload.
/// An idle target (`spec.replicas == 0`) is left to scale from zero.
async fn scale_directly(
    ctx: &Context,
    va: &VariantAutoscaling,
    id: &ObjectName,
    resolved: &Resolved,
    outcome: Option<&VariantOutcome>,
) -> Result<(), ReconcileError> {
    let Some(found) = &resolved.found else {
        return Ok(());
    };
    let Some(VariantOutcome {
        optimization: OptimizationOutcome::Decided {
            desired, reason, ..
        },
        ..
    }) = outcome
    else {
        return Ok(());
    };
    let current = spec_replicas(&found.view);
    if *desired == current {
        ctx.remember_scale(id, None);
        return Ok(());
    }
    if current == 0 || ctx.scale_pending(id) == Some(*desired) {
        return Ok(());
    }
    let target = &va.spec.scale_target_ref;
    if let Some(hpa) = conflicting_hpa(ctx, &found.key) {
        if ctx.conflict_is_new(id, &hpa) {
            let note = events::conflicting_autoscaler(target, &hpa);
            publish_event(ctx, &va_reference(va), &note).await;
        }
        return Ok(());
    }
    ctx.conflict_cleared(id);
    let resource = resource_of(ctx, found.kind);
    let result = patch_replicas(ctx, &resource, &id.0, &found.key.name, *desired).await;
    let regarding = va_reference(va);
    match result {
        Ok(()) => {
            ctx.remember_scale(id, Some(*desired));
            if let Some(m) = ctx.self_metrics() {
                m.record_scale_patch(ScalePatchMode::Direct, ScalePatchResult::Ok);
            }
            let note = events::scaled(target, current, *desired, reason.as_str());
            publish_event(ctx, &regarding, &note).await;
            Ok(())
        }
        Err(source) => {
            if let Some(m) = ctx.self_metrics() {
                m.record_scale_patch(ScalePatchMode::Direct, ScalePatchResult::Error);
            }
            let note = events::scale_failed(target, *desired, &source.to_string());
            publish_event(ctx, &regarding, &note).await;
            Err(ReconcileError::Scale {
                kind: found.kind.as_str(),
                namespace: id.0.clone(),
                target: found.key.name.clone(),
                replicas: *desired,
                source,
            })
        }
    }
}

/// What a scale from zero did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScaleFromZero {
    /// The target went from 0 to 1 replica.
    Scaled,
    /// The `test` op failed: someone else scaled the target first (not an error).
    AlreadyScaled,
}

/// Wakes `va`'s idle target (spec/k8s.md §5.3, after the caller published desired = 1): JSON
/// patch `test` 0 / `replace` 1 of the scale subresource; on success records a
/// `ScaledFromZero` outcome, publishes the `ScaledFromZero` Event and requests the VA's
/// reconcile. A 422 from the failed `test` is [`ScaleFromZero::AlreadyScaled`].
pub async fn scale_from_zero(
    ctx: &Context,
    va: &VariantAutoscaling,
) -> Result<ScaleFromZero, ReconcileError> {
    let id = object_name(va);
    let filters = ctx.filters();
    let resolved = resolve(ctx, va, &filters);
    let Some(found) = &resolved.found else {
        return Err(ReconcileError::NoTarget {
            namespace: id.0,
            name: id.1,
        });
    };
    let patch = scale_from_zero_patch().map_err(ReconcileError::Patch)?;
    let resource = resource_of(ctx, found.kind);
    let result = patch_from_zero(ctx, &resource, &id.0, &found.key.name, patch).await;
    let record = |result| {
        if let Some(m) = ctx.self_metrics() {
            m.record_scale_patch(ScalePatchMode::ScaleFromZero, result);
        }
    };
    match result {
        Ok(()) => {
            record(ScalePatchResult::Ok);
            let metrics = ctx
                .board
                .get(&id.0, &id.1)
                .map_or(MetricsState::Unavailable { error: None }, |o| o.metrics);
            ctx.board.publish(vec![(
                id.clone(),
                VariantOutcome {
                    cycle_start: Time(Timestamp::now()),
                    metrics,
                    optimization: OptimizationOutcome::ScaledFromZero {
                        accelerator: resolved.accelerator.name.clone(),
                    },
                },
            )]);
            let note = events::scaled_from_zero(&va.spec.scale_target_ref, &va.spec.model_id);
            publish_event(ctx, &va_reference(va), &note).await;
            ctx.request_reconcile(&id.0, &id.1);
            Ok(ScaleFromZero::Scaled)
        }
        Err(failure) if failure.is_failed_test() => {
            record(ScalePatchResult::Conflict);
            Ok(ScaleFromZero::AlreadyScaled)
        }
        Err(source) => {
            record(ScalePatchResult::Error);
            Err(ReconcileError::Scale {
                kind: found.kind.as_str(),
                namespace: id.0,
                target: found.key.name.clone(),
                replicas: 1,
                source,
            })
        }
    }
}
