//! Hostile model IDs never break or widen a query, on a real Prometheus (spec §10.3).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers outside #[test] fns

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use test_support::{FileSdTarget, MetricsServer, Prometheus, VllmPod, vllm_text};
use wva_collector::catalogue::TrackedSet;
use wva_collector::{CatalogueConfig, ModelKey, QueryCatalogue, QueryName};

fn hostile() -> Vec<String> {
    let mut v: Vec<String> = [
        "\"",
        "\\",
        "\\\\\"",
        ".*",
        "a|b",
        ")",
        "(?i)x",
        "[",
        "{",
        "}",
        "$",
        "^",
        "line\nbreak",
        "carriage\rreturn",
        "tab\there",
        "ctl\u{1}x",
        "del\u{7f}x",
        "x\"} or vector(1) or {a=\"",
        "modèle-ünïcode",
        "emoji-🦙",
        "a.b|c\\d\"e",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    v.push("k".repeat(4096));
    v
}

const DECOYS: [&str; 5] = ["foo", "a", "b", "x", "X"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_ids_parse_and_match_only_their_own_series() {
    let Some(prom) = Prometheus::start().await else {
        return;
    };
    let server = MetricsServer::start().await;
    let all: Vec<String> = hostile()
        .into_iter()
        .chain(DECOYS.iter().map(|s| s.to_string()))
        .collect();
    let pods: Vec<VllmPod> = all
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let mut p = VllmPod::new(m.clone());
            p.extra_labels = vec![
                ("namespace".into(), "inj".into()),
                ("pod".into(), format!("pod-{i}")),
            ];
            p
        })
        .collect();
    server.set("/inj/metrics", vllm_text(&pods));
    prom.set_targets(&[FileSdTarget::bare(server.addr(), "/inj/metrics")]);
    let n = all.len() as f64;
    let ok = prom
        .wait_for(
            "count(vllm:num_requests_running)",
            Duration::from_secs(20),
            |v| v.first().map(|s| s.1) == Some(n),
        )
        .await;
    assert!(ok, "hostile fleet not scraped: {}", prom.log());
    let catalogue = QueryCatalogue::new(CatalogueConfig::default());
    let models_of = |answer: &[(std::collections::BTreeMap<String, String>, f64)]| {
        answer
            .iter()
            .map(|(l, _)| l.get("model_name").cloned().unwrap_or_default())
            .collect::<BTreeSet<String>>()
    };
    for id in hostile() {
        let key = ModelKey::new("inj", id.clone());
        let plan = catalogue.plan(&TrackedSet {
            models: [(key, None)].into_iter().collect(),
        });
        assert!(plan.invalid.is_empty(), "{id:?}");
        for q in &plan.queries {
            let answer = prom.query(&q.text).await;
            assert_eq!(
                answer["status"], "success",
                "{:?} for {id:?}: {answer}",
                q.name
            );
        }
        let q = plan
            .queries
            .iter()
            .find(|q| q.name == QueryName::ReplicaLastSample)
            .unwrap();
        let got = models_of(&prom.query_vector(&q.text).await);
        assert_eq!(got, BTreeSet::from([id.clone()]), "{id:?} matched {got:?}");
    }
    // All hostile IDs in one batch select exactly themselves, no decoy.
    let plan = catalogue.plan(&TrackedSet {
        models: hostile()
            .into_iter()
            .map(|id| (ModelKey::new("inj", id), None))
            .collect(),
    });
    let q = &plan.queries[0];
    assert_eq!(q.name, QueryName::ReplicaLastSample);
    let got = models_of(&prom.query_vector(&q.text).await);
    assert_eq!(got, hostile().into_iter().collect::<BTreeSet<_>>());
    // The empty ID is rejected, never rendered as `=~""`.
    let plan = catalogue.plan(&TrackedSet {
        models: [(ModelKey::new("inj", ""), None)].into_iter().collect(),
    });
    assert!(plan.queries.is_empty());
    assert_eq!(plan.invalid.len(), 1);
}
