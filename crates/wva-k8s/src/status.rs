//! Building the `VariantAutoscaling` status (spec/k8s.md §2): a pure function of the VA, its
//! target, its accelerator, the last outcome of the engine and the time, and the comparison
//! that decides whether an apply is needed at all.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;
use serde_json::{Value, json};
use wva_core::Reason;

use crate::accelerator::{AcceleratorResolution, AcceleratorSource};
use crate::conditions::{self, ConditionValue, OWNED_TYPES};
use crate::crd::{ActuationStatus, OptimizedAlloc, VariantAutoscaling, VariantAutoscalingStatus};

/// What the reconcile found for the VA's scale target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetState {
    /// The target exists (no `deletionTimestamp`) and this VA owns it.
    Found {
        /// The target's `spec.replicas` (absent counts as 1).
        spec_replicas: u32,
    },
    /// No such object, or it is being deleted.
    NotFound,
    /// An older VA owns the target.
    Conflict {
        /// Name of the owning VA.
        owner: String,
    },
    /// The kind is not a supported one.
    Unsupported,
}

/// A model's metric availability in the cycle that produced the outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetricsState {
    /// Fresh metrics.
    Fresh,
    /// Stale metrics; `threshold` is `PROMETHEUS_METRICS_CACHE_FRESH_THRESHOLD` as configured.
    Stale {
        /// e.g. `1m`.
        threshold: String,
    },
    /// No usable metrics; `error` is the collector's error for the model, if any.
    Unavailable {
        /// The collector error's `Display`.
        error: Option<String>,
    },
    /// The cycle ended before analysing metrics (it failed): `MetricsAvailable` is carried
    /// over from the stored status.
    NotAnalysed,
}

/// What the engine did for the variant.
#[derive(Debug, Clone, PartialEq)]
pub enum OptimizationOutcome {
    /// A decision (including a hold of the previous value).
    Decided {
        /// The published accelerator.
        accelerator: String,
        /// The published desired replicas.
        desired: u32,
        /// Replicas when deciding.
        current: u32,
        /// The decision's reason.
        reason: Reason,
        /// The decision's detail.
        detail: String,
    },
    /// The scale-from-zero loop woke the variant (desired 1).
    ScaledFromZero {
        /// The published accelerator.
        accelerator: String,
    },
    /// The engine or the core failed for the model.
    Failed {
        /// The error's `Display`.
        error: String,
    },
}

/// The last outcome of the engine for one variant.
#[derive(Debug, Clone, PartialEq)]
pub struct VariantOutcome {
    /// Start of the cycle (or scale-from-zero tick) that produced it.
    pub cycle_start: Time,
    /// Metric availability of the variant's model.
    pub metrics: MetricsState,
    /// The decision or failure.
    pub optimization: OptimizationOutcome,
}

/// The status to apply for `va`. Values not recomputed here are carried over from the stored
/// status; only the four owned condition types are returned, sorted by type.
pub fn build_status(
    va: &VariantAutoscaling,
    target: &TargetState,
    accelerator: &AcceleratorResolution,
    outcome: Option<&VariantOutcome>,
    now: &Time,
) -> VariantAutoscalingStatus {
    let stored = va.status.as_ref();
    let target_ref = &va.spec.scale_target_ref;
    let generation = va.metadata.generation.unwrap_or(0);
    let now = whole_seconds(now);
    let found_replicas = match target {
        TargetState::Found { spec_replicas } => Some(*spec_replicas),
        _ => None,
    };

    let mut values: Vec<ConditionValue> = Vec::with_capacity(4);
    values.push(match target {
        TargetState::Found { .. } => conditions::target_found(target_ref),
        TargetState::NotFound => conditions::target_not_found(target_ref),
        TargetState::Conflict { owner } => conditions::target_conflict(target_ref, owner),
        TargetState::Unsupported => conditions::unsupported_target_kind(target_ref),
    });
    if found_replicas.is_some() || accelerator.source == AcceleratorSource::Label {
        values.push(conditions::accelerator(accelerator, target_ref));
    }
    if let Some(replicas) = found_replicas {
        if let Some(value) = metrics_condition(replicas, outcome) {
            values.push(value);
        }
        if let Some(value) = optimization_condition(replicas, outcome) {
            values.push(value);
        }
    } else {
        values.push(conditions::skipped_unresolved());
    }

    let mut owned: Vec<Condition> = values
        .iter()
        .map(|v| to_condition(v, stored, generation, &now))
        .collect();
    for type_ in OWNED_TYPES {
        if !owned.iter().any(|c| c.type_ == type_)
            && let Some(kept) = stored_condition(stored, type_)
        {
            owned.push(kept.clone());
        }
    }
    owned.sort_by(|a, b| a.type_.cmp(&b.type_));

    let desired_optimized_alloc = desired_alloc(stored, outcome);
    let actuation = match (&desired_optimized_alloc, found_replicas) {
        (None, _) => None,
        (Some(alloc), Some(replicas)) => Some(ActuationStatus {
            applied: replicas == alloc.num_replicas,
        }),
        (Some(_), None) => stored.and_then(|s| s.actuation.clone()),
    };
    VariantAutoscalingStatus {
        desired_optimized_alloc,
        actuation,
        conditions: owned,
    }
}

fn metrics_condition(
    spec_replicas: u32,
    outcome: Option<&VariantOutcome>,
) -> Option<ConditionValue> {
    if spec_replicas == 0 {
        return Some(conditions::metrics_missing_zero_replicas());
    }
    Some(match &outcome?.metrics {
        MetricsState::Fresh => conditions::metrics_found(),
        MetricsState::Stale { threshold } => conditions::metrics_stale(threshold),
        MetricsState::Unavailable { error: Some(error) } => conditions::prometheus_error(error),
        MetricsState::Unavailable { error: None } => conditions::metrics_missing(),
        MetricsState::NotAnalysed => return None,
    })
}

fn optimization_condition(
    spec_replicas: u32,
    outcome: Option<&VariantOutcome>,
) -> Option<ConditionValue> {
    if let Some(VariantOutcome {
        optimization: OptimizationOutcome::ScaledFromZero { .. },
        ..
    }) = outcome
    {
        return Some(conditions::scale_from_zero_mode());
    }
    if spec_replicas == 0 {
        return Some(conditions::skipped_zero_replicas());
    }
    Some(match &outcome?.optimization {
        OptimizationOutcome::Decided {
            desired,
            reason: Reason::MetricsUnavailable,
            ..
        } => conditions::metrics_unavailable(*desired),
        OptimizationOutcome::Decided {
            reason: Reason::NotConfigured,
            detail,
            ..
        } => conditions::invalid_configuration(detail),
        OptimizationOutcome::Decided {
            desired,
            current,
            reason,
            ..
        } => conditions::optimization_succeeded(*desired, *current, reason.as_str()),
        OptimizationOutcome::ScaledFromZero { .. } => conditions::scale_from_zero_mode(),
        OptimizationOutcome::Failed { error } => conditions::optimization_failed(error),
    })
}

fn desired_alloc(
    stored: Option<&VariantAutoscalingStatus>,
    outcome: Option<&VariantOutcome>,
) -> Option<OptimizedAlloc> {
    let previous = stored.and_then(|s| s.desired_optimized_alloc.clone());
    let Some(outcome) = outcome else {
        return previous;
    };
    let (accelerator, num_replicas) = match &outcome.optimization {
        OptimizationOutcome::Decided {
            accelerator,
            desired,
            ..
        } => (accelerator.clone(), *desired),
        OptimizationOutcome::ScaledFromZero { accelerator } => (accelerator.clone(), 1),
        OptimizationOutcome::Failed { .. } => return previous,
    };
    let last_run_time = match previous {
        Some(p)
            if p.accelerator == accelerator
                && p.num_replicas == num_replicas
                && p.last_run_time.is_some() =>
        {
            p.last_run_time
        }
        _ => Some(whole_seconds(&outcome.cycle_start)),
    };
    Some(OptimizedAlloc {
        accelerator,
        num_replicas,
        last_run_time,
    })
}

fn stored_condition<'a>(
    stored: Option<&'a VariantAutoscalingStatus>,
    type_: &str,
) -> Option<&'a Condition> {
    stored?.conditions.iter().find(|c| c.type_ == type_)
}

fn to_condition(
    value: &ConditionValue,
    stored: Option<&VariantAutoscalingStatus>,
    generation: i64,
    now: &Time,
) -> Condition {
    let status = value.status_str();
    let last_transition_time = stored_condition(stored, value.type_)
        .filter(|c| c.status == status)
        .map(|c| c.last_transition_time.clone())
        .unwrap_or_else(|| now.clone());
    Condition {
        type_: value.type_.to_owned(),
        status: status.to_owned(),
        reason: value.reason.to_owned(),
        message: value.message.clone(),
        last_transition_time,
        observed_generation: Some(generation),
    }
}

fn whole_seconds(time: &Time) -> Time {
    Time(Timestamp::from_second(time.0.as_second()).unwrap_or(time.0))
}

/// Whether `desired` differs from `stored` in what this manager owns: `desiredOptimizedAlloc`,
/// `actuation.applied`, and per owned condition `status`, `reason`, `message` and
/// `observedGeneration`. Equal → no request.
pub fn status_changed(
    stored: Option<&VariantAutoscalingStatus>,
    desired: &VariantAutoscalingStatus,
) -> bool {
    let empty = VariantAutoscalingStatus::default();
    let stored = stored.unwrap_or(&empty);
    if stored.desired_optimized_alloc != desired.desired_optimized_alloc
        || stored.actuation.as_ref().map(|a| a.applied)
            != desired.actuation.as_ref().map(|a| a.applied)
    {
        return true;
    }
    OWNED_TYPES.iter().any(|type_| {
        let key = |c: &Condition| {
            (
                c.status.clone(),
                c.reason.clone(),
                c.message.clone(),
                c.observed_generation,
            )
        };
        let a = stored
            .conditions
            .iter()
            .find(|c| c.type_ == *type_)
            .map(key);
        let b = desired
            .conditions
            .iter()
            .find(|c| c.type_ == *type_)
            .map(key);
        a != b
    })
}

/// The body of the server-side apply on the `status` subresource.
pub fn status_apply_body(status: &VariantAutoscalingStatus) -> Value {
    json!({
        "apiVersion": "llmd.ai/v1alpha1",
        "kind": "VariantAutoscaling",
        "status": status,
    })
}

#[cfg(test)]
mod tests;
