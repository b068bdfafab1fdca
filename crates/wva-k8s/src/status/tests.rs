use super::*;
use crate::accelerator::UNKNOWN_ACCELERATOR;
use crate::test_fixtures::{at, mk_va};

fn label(name: &str) -> AcceleratorResolution {
    AcceleratorResolution {
        name: name.into(),
        source: AcceleratorSource::Label,
    }
}

fn unknown() -> AcceleratorResolution {
    AcceleratorResolution {
        name: UNKNOWN_ACCELERATOR.into(),
        source: AcceleratorSource::Unknown,
    }
}

fn decided(desired: u32, current: u32, reason: Reason, metrics: MetricsState) -> VariantOutcome {
    VariantOutcome {
        cycle_start: at(5_000),
        metrics,
        optimization: OptimizationOutcome::Decided {
            accelerator: "H100".into(),
            desired,
            current,
            reason,
            detail: "d".into(),
        },
    }
}

fn found(spec_replicas: u32) -> TargetState {
    TargetState::Found { spec_replicas }
}

fn cond<'a>(status: &'a VariantAutoscalingStatus, type_: &str) -> Option<&'a Condition> {
    status.conditions.iter().find(|c| c.type_ == type_)
}

fn row<'a>(status: &'a VariantAutoscalingStatus, type_: &str) -> (&'a str, &'a str, &'a str) {
    let c = cond(status, type_).unwrap_or_else(|| panic!("no {type_}"));
    (c.status.as_str(), c.reason.as_str(), c.message.as_str())
}

/// `va` whose stored status is what `build_status` produced.
fn stored(mut va: VariantAutoscaling, status: VariantAutoscalingStatus) -> VariantAutoscaling {
    va.status = Some(status);
    va
}

#[test]
fn first_status_has_all_four_conditions_sorted_and_the_allocation() {
    let va = mk_va("ns", "a", "vllm", Some("H100"));
    let outcome = decided(2, 2, Reason::Steady, MetricsState::Fresh);
    let status = build_status(&va, &found(2), &label("H100"), Some(&outcome), &at(6_000));
    let types: Vec<&str> = status.conditions.iter().map(|c| c.type_.as_str()).collect();
    assert_eq!(
        types,
        [
            "AcceleratorResolved",
            "MetricsAvailable",
            "OptimizationReady",
            "TargetResolved"
        ]
    );
    assert!(
        status
            .conditions
            .iter()
            .all(|c| c.observed_generation == Some(1) && c.last_transition_time == at(6_000))
    );
    assert_eq!(
        row(&status, "TargetResolved"),
        ("True", "TargetFound", "Scale target Deployment vllm found")
    );
    assert_eq!(row(&status, "MetricsAvailable").1, "MetricsFound");
    assert_eq!(
        row(&status, "OptimizationReady"),
        (
            "True",
            "OptimizationSucceeded",
            "Optimization loop ran (no scaling change needed)"
        )
    );
    assert_eq!(
        status.desired_optimized_alloc,
        Some(OptimizedAlloc {
            accelerator: "H100".into(),
            num_replicas: 2,
            last_run_time: Some(at(5_000))
        })
    );
    assert_eq!(status.actuation, Some(ActuationStatus { applied: true }));
}

#[test]
fn scale_up_decision_names_desired_current_and_reason() {
    let va = mk_va("ns", "a", "vllm", Some("H100"));
    let outcome = decided(3, 2, Reason::KvCacheSaturation, MetricsState::Fresh);
    let status = build_status(&va, &found(2), &label("H100"), Some(&outcome), &at(6_000));
    assert_eq!(
        row(&status, "OptimizationReady").2,
        "Optimization loop ran: desired 3 replicas, current 2 (kv_cache_saturation)"
    );
    assert_eq!(status.actuation, Some(ActuationStatus { applied: false }));
}

#[test]
fn missing_target_skips_optimization_and_carries_metrics_and_accelerator_over() {
    let va = mk_va("ns", "a", "vllm", None);
    let derived = AcceleratorResolution {
        name: "A100".into(),
        source: AcceleratorSource::Derived {
            key: "nvidia.com/gpu.product".into(),
            value: "NVIDIA-A100".into(),
        },
    };
    let before = build_status(
        &va,
        &found(1),
        &derived,
        Some(&decided(1, 1, Reason::Steady, MetricsState::Fresh)),
        &at(6_000),
    );
    let va = stored(va, before.clone());
    let after = build_status(&va, &TargetState::NotFound, &unknown(), None, &at(7_000));
    assert_eq!(
        row(&after, "TargetResolved"),
        (
            "False",
            "TargetNotFound",
            "Scale target Deployment vllm not found"
        )
    );
    assert_eq!(
        row(&after, "OptimizationReady"),
        (
            "False",
            "SkippedProcessing",
            "Skipped: scale target not resolved"
        )
    );
    assert_eq!(
        cond(&after, "MetricsAvailable"),
        cond(&before, "MetricsAvailable")
    );
    assert_eq!(
        cond(&after, "AcceleratorResolved"),
        cond(&before, "AcceleratorResolved")
    );
    assert_eq!(
        after.desired_optimized_alloc,
        before.desired_optimized_alloc
    );
    assert_eq!(after.actuation, before.actuation);
}

#[test]
fn unresolved_target_still_reports_an_accelerator_label() {
    let va = mk_va("ns", "a", "vllm", Some("H100"));
    let status = build_status(
        &va,
        &TargetState::NotFound,
        &label("H100"),
        None,
        &at(7_000),
    );
    assert_eq!(row(&status, "AcceleratorResolved").1, "AcceleratorLabel");
    assert!(cond(&status, "MetricsAvailable").is_none());
}

#[test]
fn conflict_and_unsupported_kind_rows() {
    let va = mk_va("ns", "b", "vllm", None);
    let conflict = build_status(
        &va,
        &TargetState::Conflict { owner: "a".into() },
        &unknown(),
        None,
        &at(1),
    );
    assert_eq!(row(&conflict, "TargetResolved").1, "TargetConflict");
    assert_eq!(
        row(&conflict, "TargetResolved").2,
        "Scale target Deployment vllm is already managed by VariantAutoscaling a"
    );
    let unsupported = build_status(&va, &TargetState::Unsupported, &unknown(), None, &at(1));
    assert_eq!(
        row(&unsupported, "TargetResolved").1,
        "UnsupportedTargetKind"
    );
}

#[test]
fn unknown_accelerator_is_reported_not_skipped() {
    let va = mk_va("ns", "a", "vllm", None);
    let status = build_status(&va, &found(1), &unknown(), None, &at(1));
    assert_eq!(row(&status, "AcceleratorResolved").0, "False");
    assert_eq!(row(&status, "AcceleratorResolved").1, "AcceleratorUnknown");
}

#[test]
fn zero_replica_target_reports_missing_metrics_and_skipped_processing() {
    let va = mk_va("ns", "a", "vllm", Some("H100"));
    let outcome = decided(
        0,
        0,
        Reason::ScaleToZero,
        MetricsState::Unavailable { error: None },
    );
    let status = build_status(&va, &found(0), &label("H100"), Some(&outcome), &at(1));
    assert_eq!(
        row(&status, "MetricsAvailable"),
        (
            "False",
            "MetricsMissing",
            "No saturation metrics available - scale target has zero replicas"
        )
    );
    assert_eq!(
        row(&status, "OptimizationReady"),
        (
            "True",
            "SkippedProcessing",
            "Skipped: scale target has zero replicas; waiting for scale from zero"
        )
    );
}

#[test]
fn scale_from_zero_outcome_reports_scale_from_zero_mode() {
    let va = mk_va("ns", "a", "vllm", Some("H100"));
    let outcome = VariantOutcome {
        cycle_start: at(10),
        metrics: MetricsState::Unavailable { error: None },
        optimization: OptimizationOutcome::ScaledFromZero {
            accelerator: "H100".into(),
        },
    };
    let status = build_status(&va, &found(0), &label("H100"), Some(&outcome), &at(11));
    assert_eq!(row(&status, "OptimizationReady").1, "ScaleFromZeroMode");
    assert_eq!(status.desired_optimized_alloc.unwrap().num_replicas, 1);
    assert_eq!(status.actuation, Some(ActuationStatus { applied: false }));
}

#[test]
fn metrics_availability_maps_to_its_reason() {
    let va = mk_va("ns", "a", "vllm", Some("H100"));
    let cases = [
        (
            MetricsState::Stale {
                threshold: "1m".into(),
            },
            "MetricsStale",
            "Saturation metrics are older than the freshness threshold (1m)",
        ),
        (
            MetricsState::Unavailable {
                error: Some("connection refused".into()),
            },
            "PrometheusError",
            "Prometheus query failed: connection refused",
        ),
        (
            MetricsState::Unavailable { error: None },
            "MetricsMissing",
            "No saturation metrics available - pods may not be ready or metrics not yet scraped",
        ),
    ];
    for (metrics, reason, message) in cases {
        let outcome = decided(1, 1, Reason::MetricsUnavailable, metrics);
        let status = build_status(&va, &found(1), &label("H100"), Some(&outcome), &at(1));
        assert_eq!(row(&status, "MetricsAvailable"), ("False", reason, message));
    }
}

#[test]
fn held_decision_reports_metrics_unavailable_with_the_kept_count() {
    let va = mk_va("ns", "a", "vllm", Some("H100"));
    let outcome = decided(
        4,
        3,
        Reason::MetricsUnavailable,
        MetricsState::Unavailable { error: None },
    );
    let status = build_status(&va, &found(3), &label("H100"), Some(&outcome), &at(1));
    assert_eq!(
        row(&status, "OptimizationReady"),
        (
            "False",
            "MetricsUnavailable",
            "Metrics unavailable; keeping previous desired replicas (4)"
        )
    );
}

#[test]
fn not_configured_reports_invalid_configuration_with_the_detail() {
    let va = mk_va("ns", "a", "vllm", Some("H100"));
    let mut outcome = decided(1, 1, Reason::NotConfigured, MetricsState::Fresh);
    if let OptimizationOutcome::Decided { detail, .. } = &mut outcome.optimization {
        *detail = "no SLO for service class".into();
    }
    let status = build_status(&va, &found(1), &label("H100"), Some(&outcome), &at(1));
    assert_eq!(
        row(&status, "OptimizationReady"),
        (
            "False",
            "InvalidConfiguration",
            "Invalid configuration: no SLO for service class"
        )
    );
}

#[test]
fn a_failed_cycle_keeps_the_stored_metrics_condition_and_allocation() {
    let va = mk_va("ns", "a", "vllm", Some("H100"));
    let first = build_status(
        &va,
        &found(2),
        &label("H100"),
        Some(&decided(2, 2, Reason::Steady, MetricsState::Fresh)),
        &at(6_000),
    );
    let va = stored(va, first.clone());
    let failed = VariantOutcome {
        cycle_start: at(9_000),
        metrics: MetricsState::NotAnalysed,
        optimization: OptimizationOutcome::Failed {
            error: "the core rejected the cycle input: variants[1].cost: must be >= 0".into(),
        },
    };
    let status = build_status(&va, &found(2), &label("H100"), Some(&failed), &at(9_001));
    assert_eq!(
        row(&status, "OptimizationReady"),
        (
            "False",
            "OptimizationFailed",
            "Optimization failed: the core rejected the cycle input: variants[1].cost: must be >= 0"
        )
    );
    assert_eq!(
        cond(&status, "MetricsAvailable"),
        cond(&first, "MetricsAvailable"),
        "not analysed: the stored condition stands, transition time included"
    );
    assert_eq!(
        status.desired_optimized_alloc,
        first.desired_optimized_alloc
    );
}

#[test]
fn last_transition_time_is_kept_while_status_is_unchanged() {
    let va = mk_va("ns", "a", "vllm", Some("H100"));
    let first = build_status(
        &va,
        &found(2),
        &label("H100"),
        Some(&decided(2, 2, Reason::Steady, MetricsState::Fresh)),
        &at(6_000),
    );
    let va = stored(va, first);
    let second = build_status(
        &va,
        &found(2),
        &label("H100"),
        Some(&decided(3, 2, Reason::QueueSaturation, MetricsState::Fresh)),
        &at(7_000),
    );
    let ready = cond(&second, "OptimizationReady").unwrap();
    assert_eq!(
        ready.last_transition_time,
        at(6_000),
        "True → True keeps the time though the message changed"
    );
    let va = stored(va, second);
    let third = build_status(
        &va,
        &TargetState::NotFound,
        &label("H100"),
        None,
        &at(8_000),
    );
    assert_eq!(
        cond(&third, "OptimizationReady")
            .unwrap()
            .last_transition_time,
        at(8_000)
    );
    assert_eq!(
        cond(&third, "TargetResolved").unwrap().last_transition_time,
        at(8_000)
    );
    assert_eq!(
        cond(&third, "AcceleratorResolved")
            .unwrap()
            .last_transition_time,
        at(6_000)
    );
}

#[test]
fn times_are_whole_seconds() {
    let va = mk_va("ns", "a", "vllm", Some("H100"));
    let now = Time(k8s_openapi::jiff::Timestamp::new(6_000, 750_000_000).unwrap());
    let mut outcome = decided(1, 1, Reason::Steady, MetricsState::Fresh);
    outcome.cycle_start = Time(k8s_openapi::jiff::Timestamp::new(5_000, 1).unwrap());
    let status = build_status(&va, &found(1), &label("H100"), Some(&outcome), &now);
    assert_eq!(status.conditions[0].last_transition_time, at(6_000));
    assert_eq!(
        status.desired_optimized_alloc.unwrap().last_run_time,
        Some(at(5_000))
    );
}

#[test]
fn last_run_time_changes_only_with_the_decision() {
    let va = mk_va("ns", "a", "vllm", Some("H100"));
    let first = build_status(
        &va,
        &found(2),
        &label("H100"),
        Some(&decided(2, 2, Reason::Steady, MetricsState::Fresh)),
        &at(6_000),
    );
    let va = stored(va, first);
    let mut same = decided(2, 2, Reason::Steady, MetricsState::Fresh);
    same.cycle_start = at(5_030);
    let steady = build_status(&va, &found(2), &label("H100"), Some(&same), &at(6_030));
    assert_eq!(
        steady
            .desired_optimized_alloc
            .as_ref()
            .unwrap()
            .last_run_time,
        Some(at(5_000))
    );
    assert!(
        !status_changed(va.status.as_ref(), &steady),
        "steady state causes no write"
    );
    let mut up = decided(3, 2, Reason::KvCacheSaturation, MetricsState::Fresh);
    up.cycle_start = at(5_060);
    let changed = build_status(&va, &found(2), &label("H100"), Some(&up), &at(6_060));
    assert_eq!(
        changed
            .desired_optimized_alloc
            .as_ref()
            .unwrap()
            .last_run_time,
        Some(at(5_060))
    );
    assert!(status_changed(va.status.as_ref(), &changed));
}

#[test]
fn no_decision_yet_means_no_allocation_and_no_actuation() {
    let va = mk_va("ns", "a", "vllm", Some("H100"));
    let status = build_status(&va, &found(1), &label("H100"), None, &at(1));
    assert_eq!(status.desired_optimized_alloc, None);
    assert_eq!(status.actuation, None);
    assert!(cond(&status, "MetricsAvailable").is_none());
    assert!(cond(&status, "OptimizationReady").is_none());
}

#[test]
fn actuation_follows_the_target_spec_replicas() {
    let va = mk_va("ns", "a", "vllm", Some("H100"));
    let first = build_status(
        &va,
        &found(2),
        &label("H100"),
        Some(&decided(3, 2, Reason::QueueSaturation, MetricsState::Fresh)),
        &at(1),
    );
    assert_eq!(first.actuation, Some(ActuationStatus { applied: false }));
    let va = stored(va, first.clone());
    let scaled = build_status(
        &va,
        &found(3),
        &label("H100"),
        Some(&decided(3, 2, Reason::QueueSaturation, MetricsState::Fresh)),
        &at(2),
    );
    assert_eq!(scaled.actuation, Some(ActuationStatus { applied: true }));
    assert!(status_changed(Some(&first), &scaled));
}

#[test]
fn new_generation_alone_requires_an_apply() {
    let va = mk_va("ns", "a", "vllm", Some("H100"));
    let outcome = decided(1, 1, Reason::Steady, MetricsState::Fresh);
    let first = build_status(&va, &found(1), &label("H100"), Some(&outcome), &at(1));
    let mut va = stored(va, first.clone());
    assert!(!status_changed(
        Some(&first),
        &build_status(&va, &found(1), &label("H100"), Some(&outcome), &at(2))
    ));
    va.metadata.generation = Some(2);
    assert!(status_changed(
        Some(&first),
        &build_status(&va, &found(1), &label("H100"), Some(&outcome), &at(3))
    ));
}

#[test]
fn foreign_conditions_are_ignored_by_the_comparison_and_not_sent() {
    let va = mk_va("ns", "a", "vllm", Some("H100"));
    let outcome = decided(1, 1, Reason::Steady, MetricsState::Fresh);
    let mut first = build_status(&va, &found(1), &label("H100"), Some(&outcome), &at(1));
    first.conditions.push(Condition {
        type_: "Ready".into(),
        status: "True".into(),
        reason: "Other".into(),
        message: "someone else's".into(),
        last_transition_time: at(1),
        observed_generation: None,
    });
    let va = stored(va, first.clone());
    let next = build_status(&va, &found(1), &label("H100"), Some(&outcome), &at(2));
    assert!(!status_changed(Some(&first), &next));
    assert!(cond(&next, "Ready").is_none());
}

#[test]
fn apply_body_names_the_kind_and_carries_the_status() {
    let status = VariantAutoscalingStatus {
        desired_optimized_alloc: Some(OptimizedAlloc {
            accelerator: "H100".into(),
            num_replicas: 2,
            last_run_time: Some(at(0)),
        }),
        actuation: Some(ActuationStatus { applied: true }),
        conditions: vec![],
    };
    assert_eq!(
        status_apply_body(&status),
        json!({
            "apiVersion": "llmd.ai/v1alpha1",
            "kind": "VariantAutoscaling",
            "status": {
                "desiredOptimizedAlloc": {"accelerator": "H100", "numReplicas": 2, "lastRunTime": "1970-01-01T00:00:00Z"},
                "actuation": {"applied": true},
                "conditions": []
            }
        })
    );
}
