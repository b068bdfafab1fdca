//! The engine's cycle over in-memory collaborators: what is published for what is collected.

#![allow(clippy::unwrap_used)] // test helpers panic on setup failures by design

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use futures::future::BoxFuture;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use wva_collector::{
    Availability, CollectRequest, CollectedSnapshot, CollectorStats, MetricsSource, ModelKey,
    ModelRequest, ModelSnapshot, ReplicaRecord, VariantRef,
};
use wva_core::{Freshness, Reason, VariantState};
use wva_engine::{Engine, Inventory, InventorySnapshot, InventoryVariant, MetricsOnly};
use wva_exposition::{Exposition, ExpositionConfig};

#[derive(Default)]
struct FakeInventory {
    variants: Mutex<Vec<InventoryVariant>>,
}

impl Inventory for FakeInventory {
    fn snapshot(&self) -> InventorySnapshot {
        InventorySnapshot {
            variants: self.variants.lock().unwrap().clone(),
            ..InventorySnapshot::default()
        }
    }
}

#[derive(Default)]
struct FakeSource {
    models: Mutex<BTreeMap<ModelKey, ModelSnapshot>>,
    requests: Mutex<Vec<CollectRequest>>,
    untracked: Mutex<Vec<ModelKey>>,
}

impl MetricsSource for FakeSource {
    fn name(&self) -> &'static str {
        "fake"
    }

    fn collect<'a>(&'a self, request: &'a CollectRequest) -> BoxFuture<'a, CollectedSnapshot> {
        self.requests.lock().unwrap().push(request.clone());
        let mut snap = CollectedSnapshot::empty("fake");
        let models = self.models.lock().unwrap();
        for m in &request.models {
            let model = models
                .get(&m.key)
                .cloned()
                .unwrap_or_else(|| ModelSnapshot::unavailable(Vec::new()));
            snap.models.insert(m.key.clone(), model);
        }
        Box::pin(async move { snap })
    }

    fn track(&self, _models: &[ModelRequest]) {}

    fn untrack(&self, key: &ModelKey) {
        self.untracked.lock().unwrap().push(key.clone());
    }

    fn stats(&self) -> CollectorStats {
        CollectorStats::default()
    }

    fn spawn_background(self: Arc<Self>, _shutdown: CancellationToken) -> JoinHandle<()> {
        tokio::spawn(async {})
    }
}

const NS: &str = "team-a";
const MODEL: &str = "meta-llama/Llama-3.1-8B";

fn variant(name: &str, cost: f64, current: u32, desired: u32) -> InventoryVariant {
    InventoryVariant {
        state: VariantState {
            name: name.into(),
            namespace: NS.into(),
            model_id: MODEL.into(),
            accelerator: "H100".into(),
            cost,
            current_replicas: current,
            ready_replicas: current,
            desired_replicas: desired,
            gpus_per_replica: 1,
            vllm_args: None,
        },
        active: true,
    }
}

fn record(variant: &str, pod: &str, kv: f64, queue: f64) -> ReplicaRecord {
    let mut r = ReplicaRecord::new(pod, VariantRef::new(NS, variant), Duration::from_secs(2));
    r.kv_cache_usage = Some(kv);
    r.queue_length = Some(queue);
    r.freshness = Freshness::Fresh;
    r
}

fn model_snapshot(records: Vec<ReplicaRecord>) -> ModelSnapshot {
    let mut m = ModelSnapshot::unavailable(Vec::new());
    m.availability = Availability::Available;
    m.freshness = Freshness::Fresh;
    m.age = Duration::from_secs(2);
    m.replicas = records.into_iter().collect();
    m
}

fn key() -> ModelKey {
    ModelKey::new(NS, MODEL)
}

fn engine(inv: &Arc<FakeInventory>, src: &Arc<FakeSource>) -> Engine {
    let exposition = Exposition::new(ExpositionConfig::default()).unwrap();
    Engine::new(inv.clone(), src.clone(), exposition, Arc::new(MetricsOnly))
}

fn series_value(text: &str, family: &str, variant: &str) -> Option<f64> {
    text.lines()
        .filter(|l| l.starts_with(&format!("{family}{{")))
        .find(|l| l.contains(&format!("variant_name=\"{variant}\"")))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[tokio::test]
async fn saturated_replica_publishes_a_scale_up_and_counts_it_once() {
    let inv = Arc::new(FakeInventory::default());
    *inv.variants.lock().unwrap() = vec![variant("llama-h100", 40.0, 1, 1)];
    let src = Arc::new(FakeSource::default());
    src.models.lock().unwrap().insert(
        key(),
        model_snapshot(vec![record("llama-h100", "llama-h100-abc", 0.95, 0.0)]),
    );
    let engine = engine(&inv, &src);

    let report = engine.run_cycle(SystemTime::now()).await.unwrap();
    assert_eq!(report.decisions.len(), 1);
    assert_eq!(report.decisions[0].target_replicas, 2);
    assert_eq!(report.decisions[0].reason, Reason::KvCacheSaturation);
    let text = engine.exposition().encode();
    assert_eq!(
        series_value(&text, "inferno_desired_replicas", "llama-h100"),
        Some(2.0)
    );
    assert_eq!(
        series_value(&text, "inferno_current_replicas", "llama-h100"),
        Some(1.0)
    );
    assert_eq!(
        series_value(&text, "inferno_desired_ratio", "llama-h100"),
        Some(2.0)
    );
    assert!(text.contains(
        "inferno_replica_scaling_total{variant_name=\"llama-h100\",namespace=\"team-a\",direction=\"scale_up\",reason=\"kv_cache_saturation\"} 1"
    ));

    // The same decision again is not a new change: the counter stays at 1.
    *inv.variants.lock().unwrap() = vec![variant("llama-h100", 40.0, 1, 2)];
    let report = engine.run_cycle(SystemTime::now()).await.unwrap();
    let text = engine.exposition().encode();
    assert!(text.contains("direction=\"scale_up\",reason=\"kv_cache_saturation\"} 1"));
    let json = engine
        .exposition()
        .cycle_report_json(false)
        .expect("a report after a cycle")
        .expect("serialisable");
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&json).unwrap(),
        serde_json::to_value(&*report).unwrap()
    );
}

#[tokio::test]
async fn unavailable_metrics_hold_the_previous_target() {
    let inv = Arc::new(FakeInventory::default());
    *inv.variants.lock().unwrap() = vec![variant("llama-h100", 40.0, 3, 3)];
    let src = Arc::new(FakeSource::default()); // no snapshot: the model is unavailable
    let engine = engine(&inv, &src);

    let report = engine.run_cycle(SystemTime::now()).await.unwrap();
    assert_eq!(report.decisions[0].target_replicas, 3);
    assert_eq!(report.decisions[0].reason, Reason::MetricsUnavailable);
    let text = engine.exposition().encode();
    assert_eq!(
        series_value(&text, "inferno_desired_replicas", "llama-h100"),
        Some(3.0)
    );
    assert!(!text.contains("inferno_replica_scaling_total{"));
}

#[tokio::test]
async fn a_replica_without_kv_or_queue_is_passed_as_unavailable_never_as_zero() {
    let inv = Arc::new(FakeInventory::default());
    *inv.variants.lock().unwrap() = vec![variant("llama-h100", 40.0, 2, 2)];
    let src = Arc::new(FakeSource::default());
    let mut blind = record("llama-h100", "llama-h100-b", 0.0, 0.0);
    blind.kv_cache_usage = None;
    blind.queue_length = None;
    src.models.lock().unwrap().insert(
        key(),
        model_snapshot(vec![record("llama-h100", "llama-h100-a", 0.1, 0.0), blind]),
    );
    let engine = engine(&inv, &src);

    let report = engine.run_cycle(SystemTime::now()).await.unwrap();
    let pod_b = report
        .input
        .replicas
        .iter()
        .find(|r| r.pod == "llama-h100-b")
        .unwrap();
    assert_eq!(pod_b.freshness, Freshness::Unavailable);
    // One usable record for two ready replicas: stale, so no scale-down.
    assert!(report.decisions[0].target_replicas >= 2);
    report.check_finite().unwrap();
}

#[tokio::test]
async fn a_removed_variant_loses_its_series_and_its_model_is_untracked() {
    let inv = Arc::new(FakeInventory::default());
    *inv.variants.lock().unwrap() = vec![variant("llama-h100", 40.0, 1, 1)];
    let src = Arc::new(FakeSource::default());
    src.models.lock().unwrap().insert(
        key(),
        model_snapshot(vec![record("llama-h100", "llama-h100-abc", 0.3, 0.0)]),
    );
    let engine = engine(&inv, &src);
    engine.run_cycle(SystemTime::now()).await.unwrap();
    assert!(
        engine
            .exposition()
            .encode()
            .contains("variant_name=\"llama-h100\"")
    );

    inv.variants.lock().unwrap().clear();
    engine.run_cycle(SystemTime::now()).await.unwrap();
    assert!(
        !engine
            .exposition()
            .encode()
            .contains("variant_name=\"llama-h100\"")
    );
    assert_eq!(*src.untracked.lock().unwrap(), vec![key()]);
}

#[tokio::test]
async fn one_collect_request_per_cycle_names_each_model_once() {
    let inv = Arc::new(FakeInventory::default());
    *inv.variants.lock().unwrap() = vec![
        variant("llama-h100", 40.0, 1, 1),
        variant("llama-l4", 10.0, 1, 1),
    ];
    let src = Arc::new(FakeSource::default());
    let engine = engine(&inv, &src);
    engine.run_cycle(SystemTime::now()).await.unwrap();
    let requests = src.requests.lock().unwrap();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].models.len(), 1);
    assert_eq!(requests[0].models[0].key, key());
    assert_eq!(requests[0].models[0].retention, None);
}

#[tokio::test]
async fn run_stops_promptly_on_shutdown_and_cycles_on_request() {
    let inv = Arc::new(FakeInventory::default());
    *inv.variants.lock().unwrap() = vec![variant("llama-h100", 40.0, 1, 1)];
    let src = Arc::new(FakeSource::default());
    let engine = Arc::new(engine(&inv, &src).with_schedule(wva_engine::Schedule {
        interval: Duration::from_secs(3600),
        debounce: Duration::from_millis(10),
        min_gap: Duration::from_millis(10),
    }));
    let shutdown = CancellationToken::new();
    let task = tokio::spawn({
        let engine = engine.clone();
        let shutdown = shutdown.clone();
        async move { engine.run(shutdown).await }
    });
    // The first cycle runs at once; a request gives a second one.
    for _ in 0..200 {
        if src.requests.lock().unwrap().len() == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    engine.requester().request();
    for _ in 0..200 {
        if src.requests.lock().unwrap().len() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(src.requests.lock().unwrap().len(), 2);
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("engine stops within 5 s")
        .unwrap();
}

#[tokio::test]
async fn a_variant_with_nothing_known_publishes_no_zero() {
    // First cycle, no metrics, no replica count yet: publishing desired 0 would let an HPA
    // scale the fleet down. Nothing is published until something is known.
    let inv = Arc::new(FakeInventory::default());
    *inv.variants.lock().unwrap() = vec![variant("llama-h100", 40.0, 0, 0)];
    let src = Arc::new(FakeSource::default());
    let engine = engine(&inv, &src);
    let report = engine.run_cycle(SystemTime::now()).await.unwrap();
    assert_eq!(report.decisions[0].reason, Reason::MetricsUnavailable);
    let text = engine.exposition().encode();
    assert!(!text.contains("variant_name=\"llama-h100\""), "{text}");

    // Once replicas are seen, the held value is published.
    *inv.variants.lock().unwrap() = vec![variant("llama-h100", 40.0, 2, 0)];
    engine.run_cycle(SystemTime::now()).await.unwrap();
    let text = engine.exposition().encode();
    assert_eq!(
        series_value(&text, "inferno_desired_replicas", "llama-h100"),
        Some(2.0)
    );
}

/// Records what the engine tells the actuator.
#[derive(Default)]
struct RecordingActuator {
    applied: Mutex<usize>,
    failed: Mutex<Vec<(Vec<String>, String)>>,
}

impl wva_engine::Actuator for RecordingActuator {
    fn apply<'a>(
        &'a self,
        _report: &'a wva_core::CycleReport,
    ) -> BoxFuture<'a, Vec<wva_engine::ActuationError>> {
        *self.applied.lock().unwrap() += 1;
        Box::pin(async { Vec::new() })
    }

    fn cycle_failed(&self, variants: &[VariantState], error: &str) {
        let names = variants.iter().map(|v| v.name.clone()).collect();
        self.failed.lock().unwrap().push((names, error.to_owned()));
    }
}

#[tokio::test]
async fn a_rejected_input_tells_the_actuator_and_keeps_the_published_decisions() {
    let inv = Arc::new(FakeInventory::default());
    *inv.variants.lock().unwrap() = vec![variant("llama-h100", 40.0, 1, 1)];
    let src = Arc::new(FakeSource::default());
    src.models.lock().unwrap().insert(
        key(),
        model_snapshot(vec![record("llama-h100", "llama-h100-abc", 0.95, 0.0)]),
    );
    let actuator = Arc::new(RecordingActuator::default());
    let exposition = Exposition::new(ExpositionConfig::default()).unwrap();
    let engine = Engine::new(inv.clone(), src.clone(), exposition, actuator.clone());
    engine.run_cycle(SystemTime::now()).await.unwrap();
    assert_eq!(*actuator.applied.lock().unwrap(), 1);

    // An inventory bug lets a negative cost through: the core rejects the whole input.
    *inv.variants.lock().unwrap() = vec![
        variant("llama-h100", 40.0, 2, 2),
        variant("llama-a100", -1.0, 1, 1),
    ];
    let error = engine.run_cycle(SystemTime::now()).await.unwrap_err();
    assert!(
        error.to_string().contains("variants[") && error.to_string().contains("cost"),
        "{error}"
    );
    assert_eq!(*actuator.applied.lock().unwrap(), 1, "nothing to apply");
    assert_eq!(
        *actuator.failed.lock().unwrap(),
        vec![(
            vec!["llama-h100".to_owned(), "llama-a100".to_owned()],
            error.to_string()
        )]
    );
    let text = engine.exposition().encode();
    assert_eq!(
        series_value(&text, "inferno_desired_replicas", "llama-h100"),
        Some(2.0),
        "the last published decision stands"
    );
}
