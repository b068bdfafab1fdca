use crate::report::ModelAnalysis;
use crate::testkit::{decision, mk_input, mk_replica, mk_variant, targets};
use crate::{Action, Reason, SaturationEntry, plan};

fn v1_analysis(report: &crate::CycleReport) -> &crate::report::V1Analysis {
    match &report.models[0].analysis {
        ModelAnalysis::V1(a) => a,
        other => panic!("not V1: {other:?}"),
    }
}

#[test]
fn example_1_queue_trigger_scales_the_cheapest_variant() {
    let input = mk_input(
        vec![mk_variant("a", "m", 30.0, 2), mk_variant("b", "m", 10.0, 1)],
        vec![
            mk_replica("a-1", "a", 0.62, 1.0),
            mk_replica("a-2", "a", 0.81, 0.0),
            mk_replica("b-1", "b", 0.55, 4.0),
        ],
    );
    let report = plan(&input).unwrap();
    let a = v1_analysis(&report);
    assert_eq!(a.non_saturated_count, 2);
    assert!((a.avg_spare_kv_capacity - 0.215).abs() < 1e-12);
    assert_eq!(a.avg_spare_queue_length, 2.5);
    assert_eq!(a.variants[0].saturated_replicas, vec!["a-2".to_string()]);
    let b = decision(&report, "b");
    assert_eq!((b.target_replicas, b.reason), (2, Reason::QueueSaturation));
    assert_eq!(b.detail, "queue spare Saturation low (2.5 < 3.0)");
    assert_eq!(b.action, Action::ScaleUp);
    let a = decision(&report, "a");
    assert_eq!((a.target_replicas, a.reason), (2, Reason::Steady));
    assert_eq!(a.detail, "model scales up via b");
}

#[test]
fn example_2_scale_down_is_safe_with_three_idle_replicas() {
    let input = mk_input(
        vec![mk_variant("v", "m", 10.0, 3)],
        vec![
            mk_replica("p1", "v", 0.40, 0.0),
            mk_replica("p2", "v", 0.30, 2.0),
            mk_replica("p3", "v", 0.20, 1.0),
        ],
    );
    let report = plan(&input).unwrap();
    let a = v1_analysis(&report);
    assert!(a.scale_down_safe);
    assert!((a.remaining_spare_kv.unwrap() - 0.35).abs() < 1e-12);
    assert_eq!(a.remaining_spare_queue, Some(3.5));
    let d = decision(&report, "v");
    assert_eq!((d.target_replicas, d.reason), (2, Reason::SpareCapacity));
    assert_eq!(
        d.detail,
        "scale-down safe (remaining spare KV 0.350 >= 0.100, queue 3.5 >= 3.0)"
    );
}

#[test]
fn example_2_with_two_replicas_is_unsafe() {
    let input = mk_input(
        vec![mk_variant("v", "m", 10.0, 2)],
        vec![
            mk_replica("p2", "v", 0.30, 2.0),
            mk_replica("p3", "v", 0.20, 1.0),
        ],
    );
    let report = plan(&input).unwrap();
    let a = v1_analysis(&report);
    assert_eq!(a.remaining_spare_queue, Some(2.0));
    assert!(!a.scale_down_safe);
    let d = decision(&report, "v");
    assert_eq!(
        (d.target_replicas, d.reason, d.detail.as_str()),
        (2, Reason::Steady, "no scaling signal")
    );
}

#[test]
fn saturation_thresholds_are_inclusive() {
    let input = mk_input(
        vec![mk_variant("v", "m", 1.0, 3)],
        vec![
            mk_replica("p1", "v", 0.80, 0.0),
            mk_replica("p2", "v", 0.1, 5.0),
            mk_replica("p3", "v", 0.79, 4.0),
        ],
    );
    let report = plan(&input).unwrap();
    let a = v1_analysis(&report);
    assert_eq!(
        a.variants[0].saturated_replicas,
        vec!["p1".to_string(), "p2".to_string()]
    );
    assert_eq!(a.non_saturated_count, 1);
}

#[test]
fn spare_triggers_are_strict() {
    // One idle replica with spare KV exactly 0.1 and spare queue exactly 3: no trigger.
    let input = mk_input(
        vec![mk_variant("v", "m", 1.0, 1)],
        vec![mk_replica("p", "v", 0.7, 2.0)],
    );
    let report = plan(&input).unwrap();
    let a = v1_analysis(&report);
    assert!((a.avg_spare_kv_capacity - 0.1).abs() < 1e-15);
    // 0.8 − 0.7 in f64 is 0.10000000000000009, not below 0.1.
    assert!(!a.should_scale_up);
    assert_eq!(decision(&report, "v").reason, Reason::Steady);
}

#[test]
fn all_saturated_means_zero_spare_and_scale_up_on_kv() {
    let input = mk_input(
        vec![mk_variant("v", "m", 1.0, 2)],
        vec![
            mk_replica("p1", "v", 0.9, 9.0),
            mk_replica("p2", "v", 0.95, 0.0),
        ],
    );
    let report = plan(&input).unwrap();
    let d = decision(&report, "v");
    assert_eq!(
        (d.target_replicas, d.reason),
        (3, Reason::KvCacheSaturation)
    );
    assert_eq!(
        d.detail,
        "both KV spare (0.000 < 0.100) and queue spare (0.0 < 3.0)"
    );
}

#[test]
fn kv_only_trigger_text() {
    let input = mk_input(
        vec![mk_variant("v", "m", 1.0, 1)],
        vec![mk_replica("p", "v", 0.75, 0.0)],
    );
    let d = decision(&plan(&input).unwrap(), "v").clone();
    assert_eq!(d.reason, Reason::KvCacheSaturation);
    assert_eq!(d.detail, "KV spare Saturation low (0.050 < 0.100)");
}

#[test]
fn desired_differing_from_current_puts_the_model_in_transition() {
    let mut a = mk_variant("a", "m", 1.0, 2);
    a.desired_replicas = 3;
    let b = mk_variant("b", "m", 2.0, 1);
    let input = mk_input(
        vec![a, b],
        vec![
            mk_replica("a1", "a", 0.9, 0.0),
            mk_replica("a2", "a", 0.9, 0.0),
        ],
    );
    let report = plan(&input).unwrap();
    assert_eq!(
        targets(&report),
        vec![("a".to_string(), 3), ("b".to_string(), 1)]
    );
    let d = decision(&report, "a");
    assert_eq!(d.reason, Reason::InTransition);
    assert_eq!(
        d.detail,
        "model in transition: a: desired(3)!=current(2); b: metrics(0)!=current(1)"
    );
}

#[test]
fn never_set_desired_is_not_a_transition() {
    let mut v = mk_variant("v", "m", 1.0, 1);
    v.desired_replicas = 0;
    let input = mk_input(vec![v], vec![mk_replica("p", "v", 0.2, 0.0)]);
    assert_eq!(decision(&plan(&input).unwrap(), "v").reason, Reason::Steady);
}

#[test]
fn pending_replicas_exclude_a_variant_from_scale_up() {
    let mut cheap = mk_variant("cheap", "m", 1.0, 2);
    cheap.ready_replicas = 1;
    let dear = mk_variant("dear", "m", 5.0, 1);
    let input = mk_input(
        vec![cheap, dear],
        vec![
            mk_replica("c1", "cheap", 0.9, 0.0),
            mk_replica("c2", "cheap", 0.9, 0.0),
            mk_replica("d1", "dear", 0.9, 0.0),
        ],
    );
    let report = plan(&input).unwrap();
    assert_eq!(decision(&report, "dear").target_replicas, 2);
    assert_eq!(
        decision(&report, "cheap").detail,
        "model scales up via dear"
    );
}

#[test]
fn every_candidate_pending_blocks_scale_up() {
    let mut v = mk_variant("v", "m", 1.0, 2);
    v.ready_replicas = 1;
    let input = mk_input(
        vec![v],
        vec![
            mk_replica("p1", "v", 0.9, 0.0),
            mk_replica("p2", "v", 0.9, 0.0),
        ],
    );
    let d = decision(&plan(&input).unwrap(), "v").clone();
    assert_eq!((d.target_replicas, d.reason), (2, Reason::InTransition));
    assert_eq!(
        d.detail,
        "scale-up blocked: every variant has pending replicas"
    );
}

#[test]
fn scale_up_cost_tie_goes_to_the_smallest_name() {
    let input = mk_input(
        vec![
            mk_variant("zeta", "m", 1.0, 1),
            mk_variant("alpha", "m", 1.0, 1),
        ],
        vec![
            mk_replica("z", "zeta", 0.9, 0.0),
            mk_replica("a", "alpha", 0.9, 0.0),
        ],
    );
    let report = plan(&input).unwrap();
    assert_eq!(decision(&report, "alpha").target_replicas, 2);
    assert_eq!(decision(&report, "zeta").target_replicas, 1);
}

#[test]
fn scale_down_takes_the_most_expensive_and_ties_go_to_the_largest_name() {
    let idle = |p: &str, v: &str| mk_replica(p, v, 0.1, 0.0);
    let input = mk_input(
        vec![
            mk_variant("a", "m", 5.0, 2),
            mk_variant("b", "m", 5.0, 2),
            mk_variant("c", "m", 1.0, 2),
        ],
        vec![
            idle("a1", "a"),
            idle("a2", "a"),
            idle("b1", "b"),
            idle("b2", "b"),
            idle("c1", "c"),
            idle("c2", "c"),
        ],
    );
    let report = plan(&input).unwrap();
    assert_eq!(
        targets(&report),
        vec![("a".into(), 2), ("b".into(), 1), ("c".into(), 2)]
    );
    assert_eq!(decision(&report, "a").detail, "model scales down via b");
}

#[test]
fn scale_down_needs_two_non_saturated_replicas() {
    let input = mk_input(
        vec![mk_variant("v", "m", 1.0, 2)],
        vec![
            mk_replica("p1", "v", 0.1, 0.0),
            mk_replica("p2", "v", 0.85, 0.0),
        ],
    );
    let report = plan(&input).unwrap();
    let a = v1_analysis(&report);
    assert_eq!(a.non_saturated_count, 1);
    assert!(!a.scale_down_safe);
    assert_eq!(a.remaining_spare_kv, None);
}

#[test]
fn safe_scale_down_with_single_replica_variants_keeps_them() {
    let input = mk_input(
        vec![mk_variant("a", "m", 1.0, 1), mk_variant("b", "m", 2.0, 1)],
        vec![
            mk_replica("a1", "a", 0.0, 0.0),
            mk_replica("b1", "b", 0.0, 0.0),
        ],
    );
    let report = plan(&input).unwrap();
    let d = decision(&report, "b");
    assert_eq!(
        (d.target_replicas, d.detail.as_str()),
        (1, "scale-down safe but no variant above 1 replica")
    );
}

#[test]
fn per_model_override_changes_thresholds() {
    let mut input = mk_input(
        vec![
            mk_variant("x", "m", 1.0, 1),
            mk_variant("y", "other", 1.0, 1),
        ],
        vec![
            mk_replica("x1", "x", 0.75, 0.0),
            mk_replica("y1", "y", 0.75, 0.0),
        ],
    );
    input.config.insert(
        "m-override".into(),
        SaturationEntry {
            model_id: Some("m".into()),
            kv_cache_threshold: Some(0.95),
            ..Default::default()
        },
    );
    let report = plan(&input).unwrap();
    assert_eq!(decision(&report, "x").reason, Reason::Steady);
    assert_eq!(decision(&report, "y").reason, Reason::KvCacheSaturation);
}

#[test]
fn empty_input_gives_an_empty_report() {
    let report = plan(&mk_input(vec![], vec![])).unwrap();
    assert!(report.decisions.is_empty() && report.models.is_empty());
    assert_eq!(report.input.now, Some(crate::Timestamp::EPOCH));
}

#[test]
fn orphan_replicas_are_ignored() {
    let input = mk_input(
        vec![mk_variant("v", "m", 1.0, 1)],
        vec![
            mk_replica("p", "v", 0.2, 0.0),
            mk_replica("q", "ghost", 0.99, 50.0),
        ],
    );
    let report = plan(&input).unwrap();
    assert_eq!(v1_analysis(&report).total_replicas, 1);
    assert_eq!(decision(&report, "v").reason, Reason::Steady);
}
