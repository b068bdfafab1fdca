//! `ScrapeSource` in stepped mode: windows, ages, failures and identity, on virtual time.
#![allow(clippy::unwrap_used)] // helpers outside #[test] fns unwrap too

mod scrape_support;

use std::sync::Arc;
use std::time::Duration;

use scrape_support::{FakeVllm, MapDirectory, MetricsServer, Page, escape};
use wva_collector::{
    AbsentReason, Availability, CatalogueConfig, CollectRequest, CollectedSnapshot, CollectorError,
    Field, Freshness, MetricsSource, ModelKey, ModelRequest, ModelSnapshot, QueryGroup, QueryName,
    ScrapeConfig, ScrapeSource,
};

const NS: &str = "llm";

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn key(model: &str) -> ModelKey {
    ModelKey::new(NS, model)
}

struct Rig {
    server: MetricsServer,
    directory: Arc<MapDirectory>,
    source: Arc<ScrapeSource>,
}

impl Rig {
    async fn new(catalogue: CatalogueConfig) -> Rig {
        let server = MetricsServer::start().await;
        let directory = MapDirectory::new();
        let source =
            ScrapeSource::new(ScrapeConfig::stepped(), catalogue, directory.clone(), None).unwrap();
        Rig {
            server,
            directory,
            source,
        }
    }

    /// Lists `pod` for `model` at `/<pod>` and serves `body` there.
    fn pod(&self, model: &str, pod: &str, body: String) {
        let path = format!("/{pod}");
        self.server.set_body(&path, body);
        self.directory
            .add(&key(model), pod, "v1", Some(self.server.endpoint(&path)));
    }

    async fn collect(&self, models: &[(&str, Option<Duration>)]) -> CollectedSnapshot {
        let request = CollectRequest::new(
            models
                .iter()
                .map(|(m, r)| ModelRequest {
                    key: key(m),
                    retention: *r,
                })
                .collect(),
        );
        self.source.collect(&request).await
    }

    async fn model(&self, model: &str) -> ModelSnapshot {
        let mut snap = self.collect(&[(model, None)]).await;
        snap.models.remove(&key(model)).unwrap()
    }
}

fn track(rig: &Rig, model: &str, retention: Option<Duration>) {
    rig.source.track(&[ModelRequest {
        key: key(model),
        retention,
    }]);
}

#[tokio::test]
async fn windows_give_peaks_means_and_rates_on_virtual_time() {
    let rig = Rig::new(CatalogueConfig::default()).await;
    track(&rig, "m", Some(secs(600)));
    let mut pod = FakeVllm::new("m");
    pod.running = 5.0;
    for t in 1..=61u64 {
        pod.kv = if t == 30 { 0.9 } else { 0.3 };
        pod.waiting = if t == 50 { 3.0 } else { 1.0 };
        if t > 1 {
            pod.finish(2.0, 100.0, 11.0, 0.2, 0.05);
        }
        if t == 1 {
            rig.pod("m", "p1", pod.render());
        } else {
            rig.server.set_body("/p1", pod.render());
        }
        rig.source.scrape_round(secs(t)).await;
    }
    let snap = rig.collect(&[("m", Some(secs(600)))]).await;
    let m = &snap.models[&key("m")];
    assert_eq!(m.availability, Availability::Available, "{m:#?}");
    assert_eq!(m.freshness, Freshness::Fresh);
    let r = &m.replicas["p1"];
    assert_eq!(r.variant.name, "v1");
    assert_eq!(r.sample_age, Duration::ZERO);
    assert_eq!(r.kv_cache_usage, Some(0.9));
    assert_eq!(r.queue_length, Some(3.0));
    assert_eq!(r.running_requests, Some(5.0));
    assert_eq!(r.avg_input_tokens, Some(100.0));
    assert_eq!(r.avg_output_tokens, Some(11.0));
    assert_eq!(r.prefix_cache_hit_rate, Some(0.25));
    // 60 one-second intervals inside [1 s, 61 s], 2 requests each, over a 60 s window.
    assert_eq!(r.request_rate, Some(2.0));
    assert!((r.ttft_mean_seconds.unwrap() - 0.2).abs() < 1e-9);
    assert!((r.itl_mean_seconds.unwrap() - 0.05).abs() < 1e-9);
    let cache = r.cache_config.unwrap();
    assert_eq!((cache.num_gpu_blocks, cache.block_size), (1000, 16));
    assert!(r.absent.is_empty(), "{:?}", r.absent);
    assert_eq!(m.request_count.as_ref().map(|c| c.value), Some(120.0));

    // Later, with no traffic and one more scrape: peaks come from the new window only and the
    // rates have no interval inside their window: None, never 0.
    rig.source.scrape_round(secs(130)).await;
    let m = rig.model("m").await;
    let r = &m.replicas["p1"];
    assert_eq!(r.kv_cache_usage, Some(0.3));
    assert_eq!(r.queue_length, Some(1.0));
    assert_eq!(r.request_rate, None);
    assert_eq!(r.absent[&Field::RequestRate], AbsentReason::NoSeries);
    assert_eq!(r.absent[&Field::TtftMeanSeconds], AbsentReason::NoSeries);
    // The 5-minute token means still cover the busy minute.
    assert_eq!(r.avg_input_tokens, Some(100.0));
}

#[tokio::test]
async fn no_traffic_gives_nan_means_reported_as_non_finite_not_zero() {
    let rig = Rig::new(CatalogueConfig::default()).await;
    track(&rig, "m", None);
    rig.pod("m", "p1", FakeVllm::new("m").render());
    rig.source.scrape_round(secs(1)).await;
    rig.source.scrape_round(secs(2)).await;
    let m = rig.model("m").await;
    let r = &m.replicas["p1"];
    assert_eq!(r.avg_input_tokens, None);
    assert_eq!(r.absent[&Field::AvgInputTokens], AbsentReason::NonFinite);
    assert_eq!(r.request_rate, Some(0.0), "a rate of zero is a real zero");
    assert!(rig.source.stats().dropped.non_finite > 0);
}

#[tokio::test]
async fn a_failed_scrape_hides_the_pod_and_names_the_error() {
    let rig = Rig::new(CatalogueConfig::default()).await;
    track(&rig, "m", None);
    rig.pod("m", "p1", FakeVllm::new("m").render());
    rig.pod("m", "p2", FakeVllm::new("m").render());
    rig.source.scrape_round(secs(1)).await;
    assert_eq!(rig.model("m").await.replicas.len(), 2);

    rig.server.set("/p2", Page::status(500));
    let round = rig.source.scrape_round(secs(2)).await;
    assert_eq!((round.scraped, round.failed), (2, 1));
    let m = rig.model("m").await;
    assert_eq!(m.availability, Availability::Partial);
    assert_eq!(m.replicas.keys().collect::<Vec<_>>(), vec!["p1"]);
    let url = rig.server.endpoint("/p2").url();
    let reason = format!("scrape of pod p2 failed: {url} answered HTTP 500");
    assert_eq!(m.missing_pods, vec![("p2".to_owned(), reason.clone())]);
    assert_eq!(m.errors.len(), 1);
    assert_eq!(m.errors[0].0, QueryName::ReplicaLastSample);
    assert!(matches!(&m.errors[0].1, CollectorError::Scrape { pod, .. } if pod == "p2"));
    assert_eq!(m.errors[0].1.to_string(), reason);

    rig.server.set_body("/p2", FakeVllm::new("m").render());
    rig.source.scrape_round(secs(3)).await;
    let m = rig.model("m").await;
    assert_eq!(m.availability, Availability::Available);
    assert_eq!(m.replicas.len(), 2);
    let stats = rig.source.stats();
    assert_eq!((stats.scrapes_ok, stats.scrapes_failed), (5, 1));
}

#[tokio::test]
async fn every_listed_pod_failing_makes_the_model_unavailable() {
    let rig = Rig::new(CatalogueConfig::default()).await;
    track(&rig, "m", None);
    rig.pod("m", "p1", String::new());
    rig.server.set("/p1", Page::status(503));
    rig.source.scrape_round(secs(1)).await;
    let m = rig.model("m").await;
    assert_eq!(m.availability, Availability::Unavailable);
    assert!(m.replicas.is_empty());
    assert_eq!(m.missing_pods.len(), 1);
}

#[tokio::test]
async fn one_malformed_line_rejects_the_scrape_with_its_line_number() {
    let rig = Rig::new(CatalogueConfig::default()).await;
    track(&rig, "m", None);
    let body = "# TYPE vllm:num_requests_running gauge\n\
                vllm:num_requests_running{model_name=\"m\"} 1\n\
                vllm:kv_cache_usage_perc{model_name=\"m\" 0.5\n";
    rig.pod("m", "p1", body.to_owned());
    rig.source.scrape_round(secs(1)).await;
    let m = rig.model("m").await;
    assert!(m.replicas.is_empty());
    let (pod, reason) = &m.missing_pods[0];
    assert_eq!(pod, "p1");
    assert!(
        reason.starts_with("scrape of pod p1 failed: line 3: "),
        "{reason}"
    );
}

#[tokio::test]
async fn a_counter_reset_counts_the_new_value_as_in_prometheus() {
    let rig = Rig::new(CatalogueConfig::default()).await;
    track(&rig, "m", Some(secs(600)));
    let mut pod = FakeVllm::new("m");
    for (t, success) in [(1, 0.0), (2, 10.0), (3, 20.0), (4, 5.0), (5, 15.0)] {
        pod.success = success;
        rig.server.set_body("/p1", pod.render());
        if t == 1 {
            rig.pod("m", "p1", pod.render());
        }
        rig.source.scrape_round(secs(t)).await;
    }
    let snap = rig.collect(&[("m", Some(secs(600)))]).await;
    let m = &snap.models[&key("m")];
    assert_eq!(m.request_count.as_ref().unwrap().value, 35.0);
    assert_eq!(m.replicas["p1"].request_rate, Some(35.0 / 60.0));
}

#[tokio::test]
async fn only_the_targets_model_is_kept_and_identity_comes_from_the_target() {
    let rig = Rig::new(CatalogueConfig::default()).await;
    track(&rig, "m", None);
    let body = "\
vllm:num_requests_running{model_name=\"m\",engine=\"0\",pod=\"someone-else\",namespace=\"kube-system\"} 2
vllm:num_requests_running{model_name=\"m\",engine=\"1\"} 3
vllm:num_requests_running{model_name=\"other\",engine=\"0\"} 40
vllm:kv_cache_usage_perc{model_name=\"other\",engine=\"0\"} 0.99
vllm:kv_cache_usage_perc{model_name=\"m\",engine=\"0\"} 0.5
vllm:num_requests_waiting{model_name=\"m\",engine=\"0\"} 1
";
    rig.pod("m", "p1", body.to_owned());
    rig.source.scrape_round(secs(1)).await;
    let snap = rig.collect(&[("m", None)]).await;
    assert_eq!(snap.models.len(), 1);
    let m = &snap.models[&key("m")];
    assert_eq!(m.replicas.keys().collect::<Vec<_>>(), vec!["p1"]);
    let r = &m.replicas["p1"];
    assert_eq!(
        r.running_requests,
        Some(5.0),
        "engines summed, other model ignored"
    );
    assert_eq!(r.kv_cache_usage, Some(0.5));
    assert_eq!(r.variant.namespace, NS);
    assert_eq!(rig.source.stats().dropped.untracked, 2);
}

#[tokio::test]
async fn hostile_model_ids_match_only_their_own_series() {
    let rig = Rig::new(CatalogueConfig::default()).await;
    let hostile = [
        "a\"b\\c\nd",
        ".*",
        "a|b",
        "x\"} or vector(1) or {a=\"",
        "ünï ✓",
    ];
    let mut body = String::new();
    for (i, id) in hostile.iter().enumerate() {
        body.push_str(&format!(
            "vllm:num_requests_running{{model_name=\"{}\"}} {}\n",
            escape(id),
            i + 1
        ));
    }
    body.push_str("vllm:num_requests_running{model_name=\"a\"} 100\n");
    for id in hostile {
        track(&rig, id, None);
        rig.pod(id, "shared", body.clone());
    }
    rig.source.scrape_round(secs(1)).await;
    let models: Vec<(&str, Option<Duration>)> = hostile.iter().map(|m| (*m, None)).collect();
    let snap = rig.collect(&models).await;
    for (i, id) in hostile.iter().enumerate() {
        let r = &snap.models[&key(id)].replicas["shared"];
        assert_eq!(r.running_requests, Some((i + 1) as f64), "{id:?}");
    }
    // One endpoint listed by five models is fetched once per round.
    assert_eq!(rig.server.seen().len(), 1);
}

#[tokio::test]
async fn a_pod_without_endpoint_is_missing_and_not_scraped() {
    let rig = Rig::new(CatalogueConfig::default()).await;
    track(&rig, "m", None);
    rig.pod("m", "p1", FakeVllm::new("m").render());
    rig.directory.add(&key("m"), "p2", "v1", None);
    let round = rig.source.scrape_round(secs(1)).await;
    assert_eq!((round.targets, round.without_endpoint), (2, 1));
    let m = rig.model("m").await;
    assert_eq!(m.availability, Availability::Partial);
    assert_eq!(
        m.missing_pods,
        vec![("p2".to_owned(), "no scrape endpoint".to_owned())]
    );
}

#[tokio::test]
async fn a_pod_listed_after_the_last_round_is_not_scraped_yet() {
    let rig = Rig::new(CatalogueConfig::default()).await;
    track(&rig, "m", None);
    rig.pod("m", "p1", FakeVllm::new("m").render());
    rig.source.scrape_round(secs(1)).await;
    rig.pod("m", "p2", FakeVllm::new("m").render());
    let m = rig.model("m").await;
    assert_eq!(
        m.missing_pods,
        vec![("p2".to_owned(), "not scraped yet".to_owned())]
    );
}

#[tokio::test]
async fn a_model_with_no_pods_is_available_and_its_request_count_is_unknown_not_zero() {
    let rig = Rig::new(CatalogueConfig::default()).await;
    track(&rig, "m", Some(secs(600)));
    rig.source.scrape_round(secs(1)).await;
    let snap = rig.collect(&[("m", Some(secs(600)))]).await;
    let m = &snap.models[&key("m")];
    assert_eq!(m.availability, Availability::Available);
    assert!(m.replicas.is_empty());
    assert_eq!(m.request_count, None);
    assert_eq!(
        m.errors,
        vec![(
            QueryName::ModelRequestCount,
            CollectorError::NoRequestCount { model: "m".into() }
        )]
    );
}

#[tokio::test]
async fn disabled_groups_leave_their_fields_absent_with_that_reason() {
    let rig = Rig::new(CatalogueConfig::with_groups([QueryGroup::Core])).await;
    track(&rig, "m", None);
    rig.pod("m", "p1", FakeVllm::new("m").render());
    rig.source.scrape_round(secs(1)).await;
    let r = rig.model("m").await.replicas["p1"].clone();
    for f in [
        Field::AvgInputTokens,
        Field::CacheConfig,
        Field::RequestRate,
        Field::ItlMeanSeconds,
    ] {
        assert_eq!(r.absent[&f], AbsentReason::GroupDisabled, "{f:?}");
    }
    assert_eq!(r.cache_config, None);
    assert_eq!(r.running_requests, Some(0.0));
}

#[tokio::test]
async fn nan_and_out_of_range_gauges_are_dropped_and_the_model_is_partial() {
    let rig = Rig::new(CatalogueConfig::default()).await;
    track(&rig, "m", None);
    let body = "vllm:kv_cache_usage_perc{model_name=\"m\"} NaN\n\
                vllm:num_requests_waiting{model_name=\"m\"} -1\n\
                vllm:num_requests_running{model_name=\"m\"} 1\n";
    rig.pod("m", "p1", body.to_owned());
    rig.source.scrape_round(secs(1)).await;
    let m = rig.model("m").await;
    let r = &m.replicas["p1"];
    assert_eq!(r.kv_cache_usage, None);
    assert_eq!(r.absent[&Field::KvCacheUsage], AbsentReason::NonFinite);
    assert_eq!(r.queue_length, None);
    assert_eq!(r.absent[&Field::QueueLength], AbsentReason::OutOfRange);
    assert_eq!(m.availability, Availability::Partial);
}

#[tokio::test]
async fn ages_count_from_the_last_successful_scrape_on_the_callers_clock() {
    let rig = Rig::new(CatalogueConfig::default()).await;
    track(&rig, "m", None);
    track(&rig, "keepalive", None);
    rig.pod("m", "p1", FakeVllm::new("m").render());
    rig.source.scrape_round(secs(10)).await;
    // p1 drops out of the directory for a while; rounds go on for the other model.
    rig.directory.remove(&key("m"), "p1");
    rig.source.scrape_round(secs(40)).await;
    rig.source.scrape_round(secs(75)).await;
    let endpoint = rig.server.endpoint("/p1");
    rig.directory.add(&key("m"), "p1", "v1", Some(endpoint));
    let m = rig.model("m").await;
    let r = &m.replicas["p1"];
    assert_eq!(r.sample_age, secs(65));
    assert_eq!(r.freshness, Freshness::Stale);
    assert_eq!(m.age, secs(65));
    assert_eq!(m.freshness, Freshness::Stale);
    // A time going backwards is raised to the latest one.
    assert_eq!(rig.source.scrape_round(secs(5)).await.at, secs(75));
}

#[tokio::test]
async fn itl_falls_back_to_the_deprecated_histogram_per_pod() {
    let rig = Rig::new(CatalogueConfig::default()).await;
    track(&rig, "m", None);
    let page = |n: f64| {
        format!(
            "vllm:num_requests_running{{model_name=\"m\"}} 1\n\
             vllm:time_per_output_token_seconds_sum{{model_name=\"m\"}} {}\n\
             vllm:time_per_output_token_seconds_count{{model_name=\"m\"}} {}\n",
            n * 0.04,
            n
        )
    };
    rig.pod("m", "p1", page(10.0));
    rig.source.scrape_round(secs(1)).await;
    rig.server.set_body("/p1", page(30.0));
    rig.source.scrape_round(secs(2)).await;
    let r = rig.model("m").await.replicas["p1"].clone();
    assert!((r.itl_mean_seconds.unwrap() - 0.04).abs() < 1e-12);
}

#[tokio::test]
async fn the_vllm_fixture_fills_every_instant_field() {
    let rig = Rig::new(CatalogueConfig::default()).await;
    let model = "meta-llama/Llama-3.1-8B-Instruct";
    track(&rig, model, None);
    rig.pod(
        model,
        "llama-8b-0",
        include_str!("fixtures/vllm_0_10_llama_8b.txt").to_owned(),
    );
    rig.source.scrape_round(secs(1)).await;
    let m = rig.model(model).await;
    let r = &m.replicas["llama-8b-0"];
    assert_eq!(r.kv_cache_usage, Some(0.4183));
    assert_eq!(r.queue_length, Some(2.0));
    assert_eq!(r.running_requests, Some(7.0));
    let cache = r.cache_config.unwrap();
    assert_eq!((cache.num_gpu_blocks, cache.block_size), (27264, 16));
    // One scrape is not enough for a rate.
    assert_eq!(r.absent[&Field::RequestRate], AbsentReason::NoSeries);
    assert_eq!(m.availability, Availability::Available);
}

#[tokio::test]
async fn untrack_forgets_the_model_and_its_pods() {
    let rig = Rig::new(CatalogueConfig::default()).await;
    track(&rig, "m", None);
    rig.pod("m", "p1", FakeVllm::new("m").render());
    rig.source.scrape_round(secs(1)).await;
    assert_eq!(rig.source.stats().tracked_models, 1);
    rig.source.untrack(&key("m"));
    let stats = rig.source.stats();
    assert_eq!((stats.tracked_models, stats.cache_entries), (0, 0));
    let before = rig.server.seen().len();
    rig.source.scrape_round(secs(2)).await;
    assert_eq!(
        rig.server.seen().len(),
        before,
        "untracked models are not scraped"
    );
}

#[tokio::test]
async fn idle_models_stop_being_scraped_after_the_idle_timeout() {
    let rig = Rig::new(CatalogueConfig::default()).await;
    track(&rig, "m", None);
    rig.pod("m", "p1", FakeVllm::new("m").render());
    rig.source.scrape_round(secs(1)).await;
    rig.source.scrape_round(secs(299)).await;
    assert_eq!(rig.server.seen().len(), 2);
    rig.source.scrape_round(secs(301)).await;
    assert_eq!(rig.server.seen().len(), 2);
    assert_eq!(rig.source.stats().tracked_models, 0);
}

#[tokio::test]
async fn at_most_ten_scrapes_run_at_once() {
    let rig = Rig::new(CatalogueConfig::default()).await;
    track(&rig, "m", None);
    for i in 0..25 {
        let pod = format!("p{i}");
        rig.pod("m", &pod, FakeVllm::new("m").render());
        let mut page = Page::ok(FakeVllm::new("m").render());
        page.delay = Duration::from_millis(100);
        rig.server.set(&format!("/{pod}"), page);
    }
    let round = rig.source.scrape_round(secs(1)).await;
    assert_eq!((round.scraped, round.failed), (25, 0));
    assert_eq!(rig.server.max_in_flight(), 10);
    assert_eq!(rig.model("m").await.replicas.len(), 25);
}

/// Runs a small scripted scenario on a fresh source and returns the snapshots' models as JSON.
async fn scripted_run() -> Vec<String> {
    let rig = Rig::new(CatalogueConfig::default()).await;
    track(&rig, "m", Some(secs(600)));
    let mut pods = [FakeVllm::new("m"), FakeVllm::new("m")];
    let mut out = Vec::new();
    for t in 1..=40u64 {
        for (i, pod) in pods.iter_mut().enumerate() {
            pod.kv = ((t * 7 + i as u64 * 3) % 10) as f64 / 10.0;
            pod.waiting = ((t + i as u64) % 4) as f64;
            pod.finish((t % 3) as f64, 50.0 + t as f64, 20.0, 0.1, 0.02);
            let name = format!("p{i}");
            if t == 1 {
                rig.pod("m", &name, pod.render());
            } else {
                rig.server.set_body(&format!("/{name}"), pod.render());
            }
        }
        rig.source.scrape_round(secs(t)).await;
        if t % 5 == 0 {
            let snap = rig.collect(&[("m", Some(secs(600)))]).await;
            let models: Vec<_> = snap.models.values().collect();
            out.push(serde_json::to_string(&models).unwrap());
        }
    }
    out
}

#[tokio::test]
async fn lockstep_runs_with_the_same_inputs_give_identical_snapshots() {
    let first = scripted_run().await;
    let second = scripted_run().await;
    assert_eq!(first.len(), 8);
    assert_eq!(first, second);
}
