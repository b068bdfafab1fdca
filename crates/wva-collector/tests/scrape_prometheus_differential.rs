//! Differential test of the exposition parser against a real Prometheus (spec §10.1): the same
//! bodies are scraped by Prometheus and parsed by `parse_exposition`; both must accept the same
//! bodies and read the same series and values, hostile label values included.
#![allow(clippy::unwrap_used)] // helpers outside #[test] fns unwrap too

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use test_support::{FileSdTarget, MetricsServer, Prometheus};
use wva_collector::catalogue::escape_promql_string;
use wva_collector::{
    CatalogueConfig, CollectRequest, Endpoint, MetricsSource, ModelKey, ModelRequest,
    ReplicaDirectory, ReplicaTarget, Scheme, ScrapeConfig, ScrapeSource, VariantRef,
    parse_exposition,
};

/// Model IDs / label values that break naive parsers and naive PromQL.
const HOSTILE: [&str; 13] = [
    "quote\"inside",
    "back\\slash",
    "new\nline",
    "tab\there",
    "unknown \\x escape kept",
    "a.b|c\\d\"e",
    "x\"} or vector(1) or {a=\"",
    "=,{}#",
    ".*",
    "(?i)X",
    "ünïcødé ✓ 🚀",
    "cr\rinside",
    " leading and trailing ",
];

/// Bodies both parsers must accept, with everything the text format allows.
fn valid_bodies() -> Vec<String> {
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis();
    let mut hostile_body = String::from(
        "# HELP vllm:num_requests_running Hostile \\\\ help \\n text.\n# TYPE vllm:num_requests_running gauge\n",
    );
    for (i, v) in HOSTILE.iter().enumerate() {
        let escaped = v
            .replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace('\n', "\\n");
        let escaped = escaped.replace("\\\\x", "\\x"); // keep one unknown escape as written
        hostile_body.push_str(&format!(
            "vllm:num_requests_running{{model_name=\"{escaped}\",engine=\"{i}\"}} {i}\n"
        ));
    }
    let mut bodies = vec![
        include_str!("fixtures/vllm_0_10_llama_8b.txt").to_owned(),
        hostile_body,
        // Comments, blank lines and blank-only lines; no final newline.
        "# a free comment\n#no space comment\n\n\t  \n# TYPE g gauge\ng 1".to_owned(),
        format!("lenient:ts{{v=\"with timestamp\"}} 42 {}\n", now_ms - 1000),
        "_under:score_ 1\n:colon:first 2\n".to_owned(),
    ];
    // One feature per body, so that a disagreement names it.
    for line in [
        "g{a=\"1\",b=\"2\",} 1",
        "g { a = \"2\" , b = \"2\" } 2",
        "g{a=\"3\" b=\"2\"} 3",
        "g{a=\"4\"}\t4\t",
        "  # an indented comment\ng 4",
        "g{a=\"5\"}5",
        "g{} 6",
        "g 1e3",
        "g .5",
        "g 1.",
        "g -2.5E-3",
        "g +Inf",
        "g -inf",
        "g Infinity",
        "g -INFINITY",
        "g NaN",
        "g nan",
        "g +7",
        "g 1e-400",
        "g 1.7976931348623157e308",
        "# TYPE g counter\ng 9",
        "# TYPE g\tcounter\ng 9",
        "# HELP g\ng 9",
    ] {
        bodies.push(format!("{line}\n"));
    }
    bodies
}

/// Bodies with one malformed line each: both must reject them whole.
fn invalid_bodies() -> Vec<&'static str> {
    vec![
        "ok 1\nm{a=\"unterminated} 1\n",
        "ok 1\nm{a=1} 1\n",
        "m{a=\"1\",a=\"2\"} 1\n",
        "m 1 2 3\n",
        "m +nan\n",
        "m 1e999\n",
        "# TYPE m counters\nm 1\n",
        "{a=\"1\"} 1\n",
        "m{,} 1\n",
        "m{a=\"1\",,} 1\n",
        "m{a:b=\"1\"} 1\n",
        "m 1\r\n",
        "m 0x1p3\n",
        "m 1_000\n",
        "m\n",
        "1m 1\n",
        "m one\n",
        "# HELP \n",
        "m 1 1.5\n",
        // Prometheus keeps leading blanks in the name, which is then invalid.
        " m 1\n",
        "\tm 1\n",
    ]
}

/// Series as (name + labels without empty values) → value, as Prometheus stores them.
type Series = BTreeMap<BTreeMap<String, String>, f64>;

fn ours(body: &str) -> Series {
    let e = parse_exposition(body).unwrap();
    let mut out = Series::new();
    for s in e.samples {
        let mut labels: BTreeMap<String, String> = s
            .labels
            .iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, v)| ((*k).to_owned(), v.to_string()))
            .collect();
        labels.insert("__name__".into(), s.name.to_owned());
        out.entry(labels).or_insert(s.value);
    }
    out
}

fn same(a: f64, b: f64) -> bool {
    (a.is_nan() && b.is_nan()) || a == b
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_and_the_parser_accept_the_same_bodies_and_read_the_same_series() {
    let Some(prom) = Prometheus::start().await else {
        return;
    };
    let server = MetricsServer::start().await;
    let valid = valid_bodies();
    let invalid = invalid_bodies();
    let mut targets = Vec::new();
    let mut cases: Vec<(String, String)> = Vec::new();
    for (i, body) in valid.iter().enumerate() {
        cases.push((format!("valid{i}"), body.clone()));
    }
    for (i, body) in invalid.iter().enumerate() {
        cases.push((format!("invalid{i}"), (*body).to_owned()));
    }
    for (case, body) in &cases {
        let path = format!("/{case}");
        server.set(&path, body.clone());
        let mut t = FileSdTarget::bare(server.addr(), &path);
        t.labels.insert("wva_case".into(), case.clone());
        targets.push(t);
    }
    prom.set_targets(&targets);
    let n = cases.len() as f64;
    let all_up_reported = prom
        .wait_for("count(up)", Duration::from_secs(30), |v| {
            v.first().is_some_and(|(_, c)| *c == n)
        })
        .await;
    assert!(
        all_up_reported,
        "not every target scraped; log:\n{}",
        prom.log()
    );

    let mut mismatches = Vec::new();
    for (case, body) in &cases {
        let up = prom
            .query_vector(&format!("up{{wva_case=\"{case}\"}}"))
            .await;
        let prom_ok = up.first().map(|(_, v)| *v) == Some(1.0);
        let parsed = parse_exposition(body);
        if prom_ok != parsed.is_ok() {
            mismatches.push(format!(
                "case {case}: Prometheus up={prom_ok} ({}), parser {:?}, body {body:?}",
                last_error(&prom, case).await,
                parsed.err()
            ));
            continue;
        }
        if !prom_ok {
            continue;
        }
        let want = ours(body);
        let got = prom
            .query_vector(&format!(
                "{{wva_case=\"{case}\",__name__!~\"up|scrape_.+\"}}"
            ))
            .await;
        let got: Series = got
            .into_iter()
            .map(|(mut labels, v)| {
                for k in ["job", "instance", "wva_case"] {
                    labels.remove(k);
                }
                (labels, v)
            })
            .collect();
        assert_eq!(
            got.keys().collect::<Vec<_>>(),
            want.keys().collect::<Vec<_>>(),
            "case {case}: series differ"
        );
        for (labels, v) in &want {
            assert!(
                same(got[labels], *v),
                "case {case}: {labels:?} {} vs {v}",
                got[labels]
            );
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}

/// Prometheus's `lastError` for the target of `case`.
async fn last_error(prom: &Prometheus, case: &str) -> String {
    let r = test_support::http::get(prom.addr(), "/api/v1/targets")
        .await
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    v["data"]["activeTargets"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|t| t["labels"]["wva_case"] == case)
        .map(|t| t["lastError"].to_string())
        .unwrap_or_default()
}

/// Lists one shared pod for every model.
struct OnePod(Endpoint);

impl ReplicaDirectory for OnePod {
    fn variant_of(&self, model: &ModelKey, _pod: &str) -> Option<VariantRef> {
        Some(VariantRef::new(model.namespace.clone(), "v"))
    }

    fn replicas(&self, model: &ModelKey) -> Vec<ReplicaTarget> {
        vec![ReplicaTarget {
            pod: "pod-h".into(),
            variant: VariantRef::new(model.namespace.clone(), "v"),
            endpoint: Some(self.0.clone()),
        }]
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scrape_source_and_prometheus_read_the_same_values_for_hostile_model_ids() {
    let Some(prom) = Prometheus::start().await else {
        return;
    };
    let server = MetricsServer::start().await;
    let mut body = String::from(
        "vllm:cache_config_info{block_size=\"32\",engine=\"0\",num_gpu_blocks=\"4096\"} 1\n",
    );
    for (i, id) in HOSTILE.iter().enumerate() {
        let m = id
            .replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace('\n', "\\n");
        for engine in 0..2 {
            body.push_str(&format!(
                "vllm:num_requests_running{{model_name=\"{m}\",engine=\"{engine}\"}} {}\n\
                 vllm:kv_cache_usage_perc{{model_name=\"{m}\",engine=\"{engine}\"}} {}\n",
                i + engine,
                (i as f64 + engine as f64) / 100.0
            ));
        }
    }
    server.set("/hostile", body);
    prom.set_targets(&[FileSdTarget::pod(server.addr(), "/hostile", "llm", "pod-h")]);
    let scraped = prom
        .wait_for("up", Duration::from_secs(30), |v| {
            v.first().is_some_and(|(_, up)| *up == 1.0)
        })
        .await;
    assert!(scraped, "target never up; log:\n{}", prom.log());

    let endpoint = Endpoint::new(Scheme::Http, server.addr(), "/hostile");
    let source = ScrapeSource::new(
        ScrapeConfig::stepped(),
        CatalogueConfig::default(),
        std::sync::Arc::new(OnePod(endpoint)),
        None,
    )
    .unwrap();
    let request = CollectRequest::new(
        HOSTILE
            .iter()
            .map(|id| ModelRequest::new(ModelKey::new("llm", *id)))
            .collect(),
    );
    source.track(&request.models);
    source.scrape_round(Duration::from_secs(1)).await;
    let snap = source.collect(&request).await;

    for id in HOSTILE {
        let sel = format!(
            "namespace=\"llm\",pod=\"pod-h\",model_name=\"{}\"",
            escape_promql_string(id)
        );
        let running = prom
            .query_vector(&format!("sum(vllm:num_requests_running{{{sel}}})"))
            .await;
        let kv = prom
            .query_vector(&format!("max(vllm:kv_cache_usage_perc{{{sel}}})"))
            .await;
        let record = &snap.models[&ModelKey::new("llm", id)].replicas["pod-h"];
        assert_eq!(record.running_requests, Some(running[0].1), "{id:?}");
        assert_eq!(record.kv_cache_usage, Some(kv[0].1), "{id:?}");
        let cache = record.cache_config.unwrap();
        let info = prom
            .query_vector(
                "max by (num_gpu_blocks, block_size) (vllm:cache_config_info{pod=\"pod-h\"})",
            )
            .await;
        assert_eq!(
            info[0].0["num_gpu_blocks"],
            cache.num_gpu_blocks.to_string()
        );
        assert_eq!(info[0].0["block_size"], cache.block_size.to_string());
    }
}
