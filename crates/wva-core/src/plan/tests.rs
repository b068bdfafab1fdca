use std::collections::BTreeMap;

use crate::report::{Availability, ModelAnalysis};
use crate::testkit::{decision, mk_input, mk_replica, mk_variant, targets};
use crate::{CycleInput, Freshness, Reason, SaturationEntry, ScaleToZeroEntry, plan};

fn enable_scale_to_zero(input: &mut CycleInput) {
    input.scale_to_zero = Some(BTreeMap::from([(
        "default".to_string(),
        ScaleToZeroEntry {
            enable_scale_to_zero: Some(true),
            ..Default::default()
        },
    )]));
}

fn availability(report: &crate::CycleReport) -> Availability {
    report.models[0].analysis.availability()
}

#[test]
fn no_usable_record_holds_every_target() {
    let mut a = mk_variant("a", "m", 1.0, 2);
    a.desired_replicas = 3;
    let mut b = mk_variant("b", "m", 1.0, 1);
    b.desired_replicas = 0;
    let mut r = mk_replica("a1", "a", 0.1, 0.0);
    r.freshness = Freshness::Unavailable;
    let report = plan(&mk_input(vec![a, b], vec![r])).unwrap();
    assert_eq!(availability(&report), Availability::Unavailable);
    assert_eq!(targets(&report), vec![("a".into(), 3), ("b".into(), 1)]);
    for d in &report.decisions {
        assert_eq!(d.reason, Reason::MetricsUnavailable);
        assert_eq!(
            d.detail,
            "no usable replica metrics; holding previous target"
        );
    }
    let json = serde_json::to_value(&report.models[0].analysis).unwrap();
    assert_eq!(json, serde_json::json!({"availability": "unavailable"}));
}

#[test]
fn unavailable_model_never_scales_to_zero() {
    let mut input = mk_input(vec![mk_variant("v", "m", 1.0, 2)], vec![]);
    enable_scale_to_zero(&mut input);
    input.request_counts = Some(BTreeMap::from([("ns/m".to_string(), 0.0)]));
    let d = decision(&plan(&input).unwrap(), "v").clone();
    assert_eq!(
        (d.target_replicas, d.reason),
        (2, Reason::MetricsUnavailable)
    );
}

#[test]
fn non_finite_metrics_make_a_record_unavailable() {
    let input = mk_input(
        vec![mk_variant("v", "m", 1.0, 1)],
        vec![mk_replica("p", "v", f64::NAN, 0.0)],
    );
    let report = plan(&input).unwrap();
    assert_eq!(availability(&report), Availability::Unavailable);
}

#[test]
fn a_stale_record_suppresses_scale_down() {
    let mut records = vec![
        mk_replica("p1", "v", 0.1, 0.0),
        mk_replica("p2", "v", 0.1, 0.0),
        mk_replica("p3", "v", 0.1, 0.0),
    ];
    records[1].freshness = Freshness::Stale;
    let report = plan(&mk_input(vec![mk_variant("v", "m", 1.0, 3)], records)).unwrap();
    assert_eq!(availability(&report), Availability::Stale);
    let d = decision(&report, "v");
    assert_eq!((d.target_replicas, d.reason), (3, Reason::MetricsStale));
    assert_eq!(
        d.detail,
        "metrics stale or incomplete: scale-down to 2 suppressed"
    );
}

#[test]
fn fewer_records_than_ready_replicas_is_stale_but_scale_up_still_works() {
    let mut v = mk_variant("v", "m", 1.0, 2);
    v.desired_replicas = 0;
    let report = plan(&mk_input(vec![v], vec![mk_replica("p1", "v", 0.95, 0.0)])).unwrap();
    assert_eq!(availability(&report), Availability::Stale);
    // replicaCount 1 != current 2: in transition, target current.
    let d = decision(&report, "v");
    assert_eq!((d.target_replicas, d.reason), (2, Reason::InTransition));
}

#[test]
fn stale_scale_up_is_kept() {
    let mut r = mk_replica("p", "v", 0.95, 0.0);
    r.freshness = Freshness::Stale;
    let d = decision(
        &plan(&mk_input(vec![mk_variant("v", "m", 1.0, 1)], vec![r])).unwrap(),
        "v",
    )
    .clone();
    assert_eq!(
        (d.target_replicas, d.reason),
        (2, Reason::KvCacheSaturation)
    );
}

#[test]
fn scale_to_zero_needs_enabled_fresh_and_a_zero_count() {
    let idle = || {
        mk_input(
            vec![mk_variant("a", "m", 1.0, 1), mk_variant("b", "m", 2.0, 1)],
            vec![
                mk_replica("a1", "a", 0.0, 0.0),
                mk_replica("b1", "b", 0.0, 0.0),
            ],
        )
    };
    let mut input = idle();
    enable_scale_to_zero(&mut input);
    input.request_counts = Some(BTreeMap::from([("ns/m".to_string(), 0.0)]));
    let report = plan(&input).unwrap();
    for d in &report.decisions {
        assert_eq!((d.target_replicas, d.reason), (0, Reason::ScaleToZero));
        assert_eq!(d.detail, "no requests in the last 10m");
    }
    // Unknown count: never to zero; the floor keeps one replica.
    input.request_counts = None;
    let report = plan(&input).unwrap();
    assert!(
        report
            .decisions
            .iter()
            .all(|d| d.reason != Reason::ScaleToZero)
    );
    // Not enabled.
    let mut input = idle();
    input.request_counts = Some(BTreeMap::from([("ns/m".to_string(), 0.0)]));
    assert!(
        plan(&input)
            .unwrap()
            .decisions
            .iter()
            .all(|d| d.reason != Reason::ScaleToZero)
    );
    // A positive count.
    let mut input = idle();
    enable_scale_to_zero(&mut input);
    input.request_counts = Some(BTreeMap::from([("ns/m".to_string(), 0.5)]));
    assert!(
        plan(&input)
            .unwrap()
            .decisions
            .iter()
            .all(|d| d.reason != Reason::ScaleToZero)
    );
}

#[test]
fn scale_to_zero_never_fires_on_stale_metrics() {
    let mut r = mk_replica("p", "v", 0.0, 0.0);
    r.freshness = Freshness::Stale;
    let mut input = mk_input(vec![mk_variant("v", "m", 1.0, 1)], vec![r]);
    enable_scale_to_zero(&mut input);
    input.request_counts = Some(BTreeMap::from([("ns/m".to_string(), 0.0)]));
    let d = decision(&plan(&input).unwrap(), "v").clone();
    assert_eq!(d.target_replicas, 1);
    assert_ne!(d.reason, Reason::ScaleToZero);
}

#[test]
fn scale_to_zero_window_uses_the_model_retention() {
    let mut input = mk_input(
        vec![mk_variant("v", "m", 1.0, 1)],
        vec![mk_replica("p", "v", 0.0, 0.0)],
    );
    input.scale_to_zero = Some(BTreeMap::from([(
        "m".to_string(),
        ScaleToZeroEntry {
            model_id: Some("m".into()),
            enable_scale_to_zero: Some(true),
            retention_period: Some("2h".into()),
            namespace: None,
        },
    )]));
    input.request_counts = Some(BTreeMap::from([("ns/m".to_string(), 0.0)]));
    assert_eq!(
        decision(&plan(&input).unwrap(), "v").detail,
        "no requests in the last 2h"
    );
}

#[test]
fn minimum_replicas_raises_the_cheapest_variant_when_all_are_zero() {
    let mut a = mk_variant("a", "m", 3.0, 0);
    a.desired_replicas = 0;
    let mut b = mk_variant("b", "m", 3.0, 0);
    b.desired_replicas = 0;
    let mut c = mk_variant("c", "m", 5.0, 0);
    c.desired_replicas = 0;
    // A stale record of a variant not in the model keeps availability non-unavailable:
    // give `c` a record while its current is 0 (transition, targets stay 0).
    let report = plan(&mk_input(
        vec![a, b, c],
        vec![mk_replica("c1", "c", 0.0, 0.0)],
    ))
    .unwrap();
    let d = decision(&report, "a");
    assert_eq!((d.target_replicas, d.reason), (1, Reason::MinimumReplicas));
    assert_eq!(
        d.detail,
        "all targets were 0; keeping 1 replica on the cheapest variant"
    );
    assert_eq!(decision(&report, "b").target_replicas, 0);
}

#[test]
fn queueing_model_is_held_as_not_configured() {
    let mut input = mk_input(
        vec![mk_variant("v", "m", 1.0, 2)],
        vec![
            {
                let mut r = mk_replica("p", "v", 0.5, 0.0);
                r.request_rate = Some(0.0);
                r
            },
            {
                let mut r = mk_replica("q", "v", 0.5, 0.0);
                r.request_rate = Some(0.0);
                r
            },
        ],
    );
    input.config.insert(
        "default".into(),
        SaturationEntry {
            analyzer_name: Some("queueing-model".into()),
            ..Default::default()
        },
    );
    let report = plan(&input).unwrap();
    assert_eq!(report.models[0].analyzer, "queueing-model");
    let d = decision(&report, "v");
    assert_eq!((d.target_replicas, d.reason), (2, Reason::NotConfigured));
    assert_eq!(d.detail, crate::plan::QUEUEING_NOT_BUILT);
    assert!(matches!(report.models[0].analysis, ModelAnalysis::Bare(_)));
}

#[test]
fn queueing_model_without_request_rate_is_unavailable() {
    let mut input = mk_input(
        vec![mk_variant("v", "m", 1.0, 1)],
        vec![mk_replica("p", "v", 0.5, 0.0)],
    );
    input.config.insert(
        "default".into(),
        SaturationEntry {
            analyzer_name: Some("queueing-model".into()),
            ..Default::default()
        },
    );
    let report = plan(&input).unwrap();
    assert_eq!(availability(&report), Availability::Unavailable);
}

#[test]
fn limiter_cuts_v1_scale_ups_when_enabled() {
    let mut x = mk_variant("x", "m", 1.0, 3);
    x.gpus_per_replica = 2;
    let mut y = mk_variant("y", "n", 1.0, 1);
    y.gpus_per_replica = 2;
    y.accelerator = "NVIDIA-A100-SXM4-40GB".into();
    let sat = |p: &str, v: &str| mk_replica(p, v, 0.95, 0.0);
    let mut input = mk_input(
        vec![x, y],
        vec![
            sat("x1", "x"),
            sat("x2", "x"),
            sat("x3", "x"),
            mk_replica("y1", "y", 0.5, 0.0),
        ],
    );
    input.gpu_inventory = Some(BTreeMap::from([("A100".to_string(), 7)]));
    // Without enableLimiter the inventory is ignored.
    assert_eq!(decision(&plan(&input).unwrap(), "x").target_replicas, 4);
    input.config.insert(
        "default".into(),
        SaturationEntry {
            enable_limiter: Some(true),
            ..Default::default()
        },
    );
    let report = plan(&input).unwrap();
    let d = decision(&report, "x");
    assert_eq!((d.target_replicas, d.reason), (3, Reason::GpuLimited));
    assert_eq!(d.detail, "limited: allocated 0 GPUs for +0 replicas");
}

#[test]
fn decisions_are_sorted_by_namespace_model_variant() {
    let mut other_ns = mk_variant("a", "m", 1.0, 1);
    other_ns.namespace = "aa".into();
    let mut r = mk_replica("p0", "a", 0.2, 0.0);
    r.namespace = "aa".into();
    let input = mk_input(
        vec![
            mk_variant("z", "b-model", 1.0, 1),
            mk_variant("b", "a-model", 1.0, 1),
            other_ns,
        ],
        vec![
            mk_replica("p1", "z", 0.2, 0.0),
            mk_replica("p2", "b", 0.2, 0.0),
            r,
        ],
    );
    let report = plan(&input).unwrap();
    let keys: Vec<_> = report
        .decisions
        .iter()
        .map(|d| {
            (
                d.namespace.as_str(),
                d.model_id.as_str(),
                d.variant.as_str(),
            )
        })
        .collect();
    assert_eq!(
        keys,
        vec![
            ("aa", "m", "a"),
            ("ns", "a-model", "b"),
            ("ns", "b-model", "z")
        ]
    );
    let models: Vec<_> = report.models.iter().map(|m| m.model_id.as_str()).collect();
    assert_eq!(models, vec!["m", "a-model", "b-model"]);
}

#[test]
fn input_errors_name_the_field() {
    let base = || {
        mk_input(
            vec![mk_variant("v", "m", 1.0, 1)],
            vec![mk_replica("p", "v", 0.2, 0.0)],
        )
    };
    let mut i = base();
    i.variants[0].cost = -1.0;
    assert_eq!(
        plan(&i).unwrap_err().to_string(),
        "variants[0].cost: must be a finite number >= 0, got -1"
    );
    let mut i = base();
    i.variants.push(mk_variant("v", "m", 1.0, 1));
    assert_eq!(
        plan(&i).unwrap_err().to_string(),
        "variants[1]: duplicate variant \"ns/v\""
    );
    let mut i = base();
    i.variants[0].model_id.clear();
    assert_eq!(
        plan(&i).unwrap_err().to_string(),
        "variants[0].modelID: must not be empty"
    );
    let mut i = base();
    i.replicas.push(mk_replica("p", "v", 0.2, 0.0));
    assert_eq!(
        plan(&i).unwrap_err().to_string(),
        "replicas[1]: duplicate replica \"ns/p\""
    );
    let mut i = base();
    i.replicas[0].queue_length = -2.0;
    assert_eq!(
        plan(&i).unwrap_err().to_string(),
        "replicas[0].queueLength: must be >= 0, got -2"
    );
    let mut i = base();
    i.request_counts = Some(BTreeMap::from([("nons".to_string(), 0.0)]));
    assert_eq!(
        plan(&i).unwrap_err().to_string(),
        "requestCounts[\"nons\"]: key must be \"<namespace>/<modelID>\""
    );
    let mut i = base();
    i.config.insert(
        "default".into(),
        SaturationEntry {
            kv_cache_threshold: Some(1.5),
            ..Default::default()
        },
    );
    assert_eq!(
        plan(&i).unwrap_err().to_string(),
        "config[\"default\"]: kvCacheThreshold must be between 0 and 1, got 1.50"
    );
}

#[test]
fn json_errors_name_the_path() {
    let text = r#"{"config": {}, "variants": [{"name": "v", "namespace": "ns", "modelID": "m",
        "accelerator": "", "cost": 1, "curentReplicas": 1}], "replicas": []}"#;
    let err = CycleInput::from_json(text).unwrap_err().to_string();
    assert!(
        err.starts_with(
            "variants[0].curentReplicas: unknown field `curentReplicas`, expected one of `name`"
        ),
        "{err}"
    );
    let text =
        r#"{"config": {"default": {"kvCacheThreshold": "0.8"}}, "variants": [], "replicas": []}"#;
    let err = CycleInput::from_json(text).unwrap_err().to_string();
    assert!(
        err.starts_with("config.default.kvCacheThreshold: invalid type: string"),
        "{err}"
    );
    let text = r#"{"now": "noon", "config": {}, "variants": [], "replicas": []}"#;
    let err = CycleInput::from_json(text).unwrap_err().to_string();
    assert!(
        err.starts_with("now: invalid RFC 3339 timestamp \"noon\""),
        "{err}"
    );
    let text = r#"{"config": {}, "variants": [], "replicas": [], "state": {"capacity": [], "histry": []}}"#;
    let err = CycleInput::from_json(text).unwrap_err().to_string();
    assert!(err.starts_with("state.histry: unknown field"), "{err}");
    let text = r#"{"variants": [], "replicas": []}"#;
    let err = CycleInput::from_json(text).unwrap_err().to_string();
    assert!(err.contains("missing field `config`"), "{err}");
}

#[test]
fn now_defaults_to_the_latest_state_timestamp() {
    let text = r#"{"config": {}, "variants": [], "replicas": [],
        "state": {"capacity": [], "history": [{"key": "k", "values": [5], "updatedAt": "2026-03-01T12:00:00Z"}]}}"#;
    let input = CycleInput::from_json(text).unwrap();
    let report = plan(&input).unwrap();
    assert_eq!(
        report.input.now.unwrap().to_string(),
        "2026-03-01T12:00:00Z"
    );
    assert_eq!(report.state.history.len(), 1);
}

#[test]
fn report_round_trips_through_json() {
    let input = mk_input(
        vec![mk_variant("v", "m", 1.0, 1)],
        vec![mk_replica("p", "v", 0.95, 0.0)],
    );
    let report = plan(&input).unwrap();
    let json = report.to_json().unwrap();
    let back: crate::CycleReport = serde_json::from_str(&json).unwrap();
    assert_eq!(back, report);
    assert!(!json.contains("timings"));
}

#[test]
fn non_finite_values_are_caught_before_serialising() {
    let input = mk_input(
        vec![mk_variant("v", "m", 1.0, 1)],
        vec![mk_replica("p", "v", f64::INFINITY, 0.0)],
    );
    let report = plan(&input).unwrap();
    let err = report.to_json().unwrap_err().to_string();
    assert_eq!(
        err,
        "non-finite number in report at input.replicas[0].kvCacheUsage"
    );
}

#[test]
fn record_scale_to_zero_fallback_fills_the_default_entry_only_when_unset() {
    let mut input = mk_input(vec![], vec![]);
    input.record_scale_to_zero_fallback(true);
    assert_eq!(
        input.scale_to_zero.as_ref().unwrap()["default"].enable_scale_to_zero,
        Some(true)
    );
    input.record_scale_to_zero_fallback(false);
    assert_eq!(
        input.scale_to_zero.as_ref().unwrap()["default"].enable_scale_to_zero,
        Some(true)
    );
}

#[test]
fn a_floor_without_free_gpus_is_limited_and_stays_put_across_cycles() {
    // The case proptest found for invariant 10: current 0, previous desired 1, no GPUs left.
    // Exempting the floor from the limiter made the target flip 0 → 1 → 0 between cycles.
    let mut v = mk_variant("v", "m", 1.0, 0);
    v.desired_replicas = 1;
    let accelerator = v.accelerator.clone();
    let mut input = mk_input(vec![v], vec![mk_replica("v1", "v", 0.0, 0.0)]);
    input.gpu_inventory = Some(BTreeMap::from([(accelerator.clone(), 0)]));
    input.config.insert(
        "default".into(),
        SaturationEntry {
            enable_limiter: Some(true),
            ..Default::default()
        },
    );
    for cycle in 0..3 {
        let report = plan(&input).unwrap();
        let d = decision(&report, "v").clone();
        assert_eq!(
            (d.target_replicas, d.reason),
            (0, Reason::GpuLimited),
            "cycle {cycle}"
        );
        input.variants[0].desired_replicas = d.target_replicas;
    }
    // With a free GPU the floor is granted.
    input.gpu_inventory = Some(BTreeMap::from([(accelerator, 8)]));
    let d = decision(&plan(&input).unwrap(), "v").clone();
    assert_eq!((d.target_replicas, d.reason), (1, Reason::MinimumReplicas));
}
