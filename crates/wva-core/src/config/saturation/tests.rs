use super::*;

fn parse(pairs: &[(&str, &str)]) -> (SaturationConfig, Vec<ConfigIssue>) {
    let data: BTreeMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    SaturationConfig::parse_configmap(&data)
}

fn issue(config: &[(&str, &str)]) -> String {
    let (_, issues) = parse(config);
    assert_eq!(issues.len(), 1, "{issues:?}");
    issues[0].1.clone()
}

#[test]
fn built_in_defaults_apply_without_entries() {
    let (c, issues) = parse(&[]);
    assert!(issues.is_empty());
    let s = c.resolve("m", "ns");
    assert_eq!(*s, SaturationSettings::default());
    assert_eq!(
        (
            s.kv_cache_threshold,
            s.queue_length_threshold,
            s.kv_spare_trigger,
            s.queue_spare_trigger
        ),
        (0.8, 5.0, 0.1, 3.0)
    );
    assert_eq!((s.scale_up_threshold, s.scale_down_boundary), (0.85, 0.70));
    assert_eq!(s.analyzer, AnalyzerKind::SaturationV1);
    assert!(!s.enable_limiter);
}

#[test]
fn default_entry_omitting_fields_is_completed_from_built_ins() {
    let (c, issues) = parse(&[("default", "kvCacheThreshold: 0.9")]);
    assert!(issues.is_empty());
    let s = c.global();
    assert_eq!(s.kv_cache_threshold, 0.9);
    assert_eq!(s.queue_length_threshold, 5.0);
}

#[test]
fn model_entry_inherits_from_default_and_is_honoured() {
    let (c, issues) = parse(&[
        ("default", "queueLengthThreshold: 8\nkvSpareTrigger: 0.2"),
        ("llama", "model_id: llama\nkvCacheThreshold: 0.7"),
    ]);
    assert!(issues.is_empty(), "{issues:?}");
    let s = c.resolve("llama", "any");
    assert_eq!(
        (
            s.kv_cache_threshold,
            s.queue_length_threshold,
            s.kv_spare_trigger
        ),
        (0.7, 8.0, 0.2)
    );
    assert_eq!(c.resolve("other", "any").kv_cache_threshold, 0.8);
}

#[test]
fn selection_order_prefers_model_in_namespace_then_namespace_default() {
    let (c, issues) = parse(&[
        ("a-global-model", "model_id: m\nkvCacheThreshold: 0.71"),
        (
            "b-ns-default",
            "namespace: team\nkvCacheThreshold: 0.72\nqueueLengthThreshold: 9",
        ),
        (
            "c-model-in-ns",
            "model_id: m\nnamespace: team\nkvCacheThreshold: 0.73",
        ),
        ("default", "kvCacheThreshold: 0.74"),
    ]);
    assert!(issues.is_empty(), "{issues:?}");
    let s = c.resolve("m", "team");
    assert_eq!(s.kv_cache_threshold, 0.73);
    // The namespaced model entry completes from its namespace default.
    assert_eq!(s.queue_length_threshold, 9.0);
    // A namespace default shadows a global model entry.
    assert_eq!(c.resolve("x", "team").kv_cache_threshold, 0.72);
    assert_eq!(c.resolve("m", "elsewhere").kv_cache_threshold, 0.71);
    assert_eq!(c.resolve("x", "elsewhere").kv_cache_threshold, 0.74);
}

#[test]
fn analyzer_is_resolved_per_model() {
    let (c, issues) = parse(&[("v2", "model_id: m\nanalyzerName: saturation")]);
    assert!(issues.is_empty());
    assert_eq!(c.resolve("m", "ns").analyzer, AnalyzerKind::TokenBased);
    assert_eq!(c.resolve("n", "ns").analyzer, AnalyzerKind::SaturationV1);
    assert_eq!(
        AnalyzerKind::TokenBased.report_name(),
        "saturation-token-based"
    );
}

#[test]
fn validation_runs_after_completion() {
    let (_, issues) = parse(&[("default", "analyzerName: saturation")]);
    assert!(issues.is_empty());
    // The child fails only after inheriting kvSpareTrigger 0.5 from the default.
    assert_eq!(
        issue(&[
            ("default", "kvSpareTrigger: 0.5"),
            ("m", "model_id: m\nkvCacheThreshold: 0.4")
        ]),
        "kvCacheThreshold (0.40) should be >= kvSpareTrigger (0.50)"
    );
}

#[test]
fn value_checks_have_exact_messages() {
    let cases = [
        (
            "kvCacheThreshold: 1.2",
            "kvCacheThreshold must be between 0 and 1, got 1.20",
        ),
        (
            "kvCacheThreshold: -0.001",
            "kvCacheThreshold must be between 0 and 1, got -0.00",
        ),
        (
            "queueLengthThreshold: -1",
            "queueLengthThreshold must be >= 0, got -1.0",
        ),
        (
            "kvSpareTrigger: 1.5",
            "kvSpareTrigger must be between 0 and 1, got 1.50",
        ),
        (
            "queueSpareTrigger: -0.25",
            "queueSpareTrigger must be >= 0, got -0.2",
        ),
        (
            "kvCacheThreshold: 0.05",
            "kvCacheThreshold (0.05) should be >= kvSpareTrigger (0.10)",
        ),
        (
            "analyzerName: saturation\nscaleUpThreshold: 0",
            "scaleUpThreshold must be in (0, 1], got 0.00",
        ),
        (
            "analyzerName: saturation\nscaleDownBoundary: 1.01",
            "scaleDownBoundary must be in (0, 1], got 1.01",
        ),
        (
            "analyzerName: saturation\nscaleUpThreshold: 0.7",
            "scaleUpThreshold (0.70) must be > scaleDownBoundary (0.70)",
        ),
        (
            "analyzerName: v3",
            "analyzerName must be one of \"\", \"saturation\", \"queueing-model\", got \"v3\"",
        ),
    ];
    for (text, message) in cases {
        assert_eq!(issue(&[("default", text)]), message, "{text}");
    }
}

#[test]
fn non_finite_values_are_rejected() {
    assert!(issue(&[("default", "queueLengthThreshold: .inf")]).starts_with("invalid entry: "));
    let s = SaturationSettings {
        queue_length_threshold: f64::INFINITY,
        ..Default::default()
    };
    assert_eq!(
        s.validate().unwrap_err(),
        "queueLengthThreshold must be >= 0, got inf"
    );
    let s = SaturationSettings {
        kv_cache_threshold: f64::NAN,
        ..Default::default()
    };
    assert_eq!(
        s.validate().unwrap_err(),
        "kvCacheThreshold must be between 0 and 1, got NaN"
    );
}

#[test]
fn boundaries_are_inclusive_where_the_spec_says_so() {
    for text in [
        "kvCacheThreshold: 1\nkvSpareTrigger: 1",
        "kvCacheThreshold: 0\nkvSpareTrigger: 0",
        "queueLengthThreshold: 0\nqueueSpareTrigger: 0",
        "analyzerName: saturation\nscaleUpThreshold: 1\nscaleDownBoundary: 0.99",
    ] {
        let (_, issues) = parse(&[("default", text)]);
        assert!(issues.is_empty(), "{text}: {issues:?}");
    }
}

#[test]
fn v2_thresholds_are_not_checked_for_v1() {
    let (_, issues) = parse(&[("default", "scaleUpThreshold: 0.5")]);
    assert!(issues.is_empty());
}

#[test]
fn structural_errors_have_their_own_wording() {
    assert_eq!(
        issue(&[("default", "kvCacheThresold: 0.8")]),
        "unknown field \"kvCacheThresold\""
    );
    assert_eq!(
        issue(&[("default", "queueingModel:\n  foo: 1")]),
        "unknown field \"foo\""
    );
    assert_eq!(
        issue(&[("x", "kvCacheThreshold: 0.8")]),
        "entry must set model_id or namespace"
    );
    assert_eq!(
        issue(&[("x", "model_id: m\nenableLimiter: true")]),
        "enableLimiter is only allowed in the default entry"
    );
    assert_eq!(
        issue(&[(
            "x",
            "namespace: n\nqueueingModel:\n  saturationPolicy: None"
        )]),
        "queueingModel.saturationPolicy is only allowed in the default entry"
    );
    let m = issue(&[("default", "kvCacheThreshold: [1")]);
    assert!(m.starts_with("invalid entry: "), "{m}");
    assert!(!m.contains('\n'));
}

#[test]
fn quoted_numbers_are_type_errors_and_integers_are_accepted() {
    let m = issue(&[("default", "kvCacheThreshold: \"0.8\"")]);
    assert!(
        m.starts_with("invalid entry: ") && m.contains("a number"),
        "{m}"
    );
    let (c, issues) = parse(&[("default", "queueLengthThreshold: 7\nkvCacheThreshold: 1")]);
    assert!(issues.is_empty());
    assert_eq!(c.global().queue_length_threshold, 7.0);
}

#[test]
fn plain_scalars_that_look_like_other_types_are_strings_for_string_fields() {
    let (c, issues) = parse(&[
        ("n", "model_id: n\nkvCacheThreshold: 0.9"),
        ("num", "model_id: 123\nkvCacheThreshold: 0.95"),
    ]);
    assert!(issues.is_empty(), "{issues:?}");
    assert_eq!(c.resolve("n", "ns").kv_cache_threshold, 0.9);
    assert_eq!(c.resolve("123", "ns").kv_cache_threshold, 0.95);
}

#[test]
fn duplicates_keep_the_smaller_key() {
    let (c, issues) = parse(&[
        ("b", "model_id: m\nnamespace: n\nkvCacheThreshold: 0.9"),
        ("a", "model_id: m\nnamespace: n\nkvCacheThreshold: 0.7"),
        ("ns2", "namespace: n2"),
        ("ns1", "namespace: n2"),
    ]);
    assert_eq!(
        issues,
        vec![
            ("b".to_string(), "duplicate of entry \"a\"".to_string()),
            ("ns2".to_string(), "duplicate of entry \"ns1\"".to_string()),
        ]
    );
    assert_eq!(c.resolve("m", "n").kv_cache_threshold, 0.7);
}

#[test]
fn rejected_default_leaves_built_ins_for_the_rest() {
    let (c, issues) = parse(&[
        ("default", "kvCacheThreshold: 2"),
        ("m", "model_id: m\nqueueLengthThreshold: 4"),
    ]);
    assert_eq!(issues.len(), 1);
    assert_eq!(c.global().kv_cache_threshold, 0.8);
    let s = c.resolve("m", "ns");
    assert_eq!((s.kv_cache_threshold, s.queue_length_threshold), (0.8, 4.0));
    assert!(!c.entries().contains_key("default"));
}

#[test]
fn empty_document_is_an_empty_mapping() {
    let (c, issues) = parse(&[("default", ""), ("m", "# only a comment\n")]);
    assert_eq!(
        issues,
        vec![(
            "m".to_string(),
            "entry must set model_id or namespace".to_string()
        )]
    );
    assert!(c.entries().contains_key("default"));
}

#[test]
fn default_ignores_its_model_id_and_namespace() {
    let (c, issues) = parse(&[(
        "default",
        "model_id: m\nnamespace: n\nkvCacheThreshold: 0.9",
    )]);
    assert!(issues.is_empty());
    assert_eq!(c.resolve("other", "other").kv_cache_threshold, 0.9);
}

#[test]
fn queueing_model_config_is_validated_and_inherited() {
    let default = "analyzerName: queueing-model\nqueueingModel:\n  saturationPolicy: None\n  serviceClasses:\n    - name: Premium\n      priority: 1\n      targets:\n        - {modelID: m, ttft: 500, itl: 40}\n";
    let team = "model_id: m\nnamespace: a\nqueueingModel:\n  serviceClass: Premium\n  variants:\n    h100: {alpha: 5.0, beta: 0.03, gamma: 0.004, maxBatchSize: 256}\n";
    let (c, issues) = parse(&[("default", default), ("team", team)]);
    assert!(issues.is_empty(), "{issues:?}");
    let s = c.resolve("m", "a");
    assert_eq!(s.analyzer, AnalyzerKind::QueueingModel);
    let q = s.queueing_model.as_ref().unwrap();
    assert_eq!(q.service_class.as_deref(), Some("Premium"));
    assert_eq!(q.saturation_policy.as_deref(), Some("None"));
    assert_eq!(q.service_classes.as_ref().unwrap().len(), 1);
    let bad = "model_id: m\nqueueingModel:\n  variants:\n    h100: {alpha: 0, beta: 0.03, gamma: 0.004, maxBatchSize: 256}\n";
    assert_eq!(
        issue(&[("bad", bad)]),
        "queueingModel.variants.h100.alpha must be > 0, got 0"
    );
    assert_eq!(
        issue(&[("default", "queueingModel:\n  saturationPolicy: Greedy")]),
        "queueingModel.saturationPolicy must be one of None, PriorityExhaustive, PriorityRoundRobin, RoundRobin, got \"Greedy\""
    );
}

#[test]
fn json_entries_use_the_same_rules() {
    let entries: BTreeMap<String, SaturationEntry> = serde_json::from_str(
        r#"{"default": {"kvCacheThreshold": 0.9}, "m": {"model_id": "m", "queueSpareTrigger": 1}}"#,
    )
    .unwrap();
    let (c, issues) = SaturationConfig::from_entries(&entries);
    assert!(issues.is_empty());
    assert_eq!(c.resolve("m", "x").queue_spare_trigger, 1.0);
    assert_eq!(c.resolve("m", "x").kv_cache_threshold, 0.9);
    assert!(serde_json::from_str::<SaturationEntry>(r#"{"kvCacheThreshold": "0.9"}"#).is_err());
}
