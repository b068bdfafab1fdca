//! Pods over loopback: per-replica and shared listeners, lockstep stepping, real-time ticking,
//! file_sd atomicity (spec/sim.md §3.3–3.4, §8).
#![allow(clippy::unwrap_used)]

mod common;

use common::{call, config, request};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use wva_sim::{ClockMode, Fleet, FleetOptions, PodState};

fn manual() -> FleetOptions {
    FleetOptions {
        clock: ClockMode::Manual,
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lockstep_pods_serve_vllm_metrics_and_a_killed_pod_refuses() {
    let fleet = Fleet::start_with(config(6.0, "per_replica"), manual())
        .await
        .unwrap();
    assert_eq!(
        fleet.targets().len(),
        3,
        "configured replicas are Ready at start"
    );
    fleet.set_replicas("cheap", 3).unwrap();
    assert_eq!(fleet.targets().len(), 3, "Starting pods are not targets");
    let now = fleet.step_to(Duration::from_millis(2050)).await.unwrap();
    assert_eq!(now, Duration::from_millis(2100), "rounded up to a tick");
    let targets = fleet.targets();
    assert_eq!(targets.len(), 4);
    fleet.step_to(Duration::from_secs(10)).await.unwrap();
    for t in &targets {
        let r = call(t.addr, "GET", "/metrics", "").await;
        assert_eq!(r.status, 200);
        assert_eq!(
            r.header("content-type"),
            Some("text/plain; version=0.0.4; charset=utf-8")
        );
        assert!(r.body.contains("# TYPE vllm:num_requests_running gauge"));
        assert_eq!(call(t.addr, "GET", "/health", "").await.status, 200);
        let models: serde_json::Value =
            serde_json::from_str(&call(t.addr, "GET", "/v1/models", "").await.body).unwrap();
        assert_eq!(models["data"][0]["max_model_len"], 4096);
    }
    let total: f64 = fleet.snapshot().models[0].totals.completed as f64;
    assert!(total > 0.0);
    let victim = &targets[0];
    fleet.kill(&victim.pod).unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let addr = victim.addr;
    let refused = tokio::task::spawn_blocking(move || request(addr, "GET", "/metrics", ""))
        .await
        .unwrap();
    assert!(refused.is_err(), "a killed pod refuses connections");
    assert!(!fleet.targets().iter().any(|t| t.pod == victim.pod));
    fleet.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_mode_serves_every_pod_under_its_path() {
    let fleet = Fleet::start_with(config(2.0, "shared"), manual())
        .await
        .unwrap();
    let shared = fleet.shared_addr().unwrap();
    fleet.set_replicas("fast", 2).unwrap();
    let starting = fleet
        .snapshot()
        .pods
        .into_iter()
        .find(|p| p.state == PodState::Starting)
        .unwrap()
        .name;
    assert_eq!(
        call(shared, "GET", &format!("/pods/{starting}/metrics"), "")
            .await
            .status,
        503
    );
    fleet.step_to(Duration::from_secs(3)).await.unwrap();
    for t in fleet.targets() {
        assert_eq!(t.addr, shared);
        assert_eq!(t.path, format!("/pods/{}/metrics", t.pod));
        let r = call(t.addr, "GET", &t.path, "").await;
        assert_eq!(r.status, 200);
        assert!(r.body.contains("vllm:kv_cache_usage_perc"));
    }
    assert_eq!(
        call(shared, "GET", "/pods/gone-pod/metrics", "")
            .await
            .status,
        404
    );
    let sd: serde_json::Value = serde_json::from_str(&fleet.file_sd_json()).unwrap();
    assert!(
        sd[0]["labels"]["__metrics_path__"]
            .as_str()
            .unwrap()
            .starts_with("/pods/")
    );
    fleet.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_clock_ticks_by_itself_and_shuts_down_quickly() {
    let mut cfg = config(5.0, "per_replica");
    cfg.startup_delay = Duration::from_millis(200);
    let fleet = Fleet::start_with(
        cfg,
        FleetOptions {
            clock: ClockMode::Scaled(10.0),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    let snap = fleet.snapshot();
    assert!(snap.time_s >= 2.0, "scaled clock advanced {}", snap.time_s);
    assert!(snap.pods.iter().all(|p| p.state == PodState::Ready));
    let gw = call(fleet.gateway_addr(), "GET", "/metrics", "").await;
    assert!(
        gw.body
            .contains("# TYPE inference_extension_flow_control_queue_size gauge")
    );
    assert!(
        gw.body
            .contains(r#"target_model_name="meta-llama/Llama-3.1-8B-Instruct""#)
    );
    let started = std::time::Instant::now();
    fleet.shutdown().await;
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(matches!(
        fleet.set_replicas("cheap", 1),
        Err(wva_sim::FleetError::ShutDown)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_sd_readers_never_see_invalid_json_or_unknown_pods() {
    let dir = tempfile::tempdir().unwrap();
    let sd = dir.path().join("vllm.json");
    let inv = dir.path().join("variants.yaml");
    let gw = dir.path().join("epp.json");
    let opts = FleetOptions {
        clock: ClockMode::Manual,
        file_sd: Some(sd.clone()),
        inventory: Some(inv.clone()),
        file_sd_gateway: Some(gw.clone()),
        ..Default::default()
    };
    let mut cfg = config(3.0, "per_replica");
    cfg.startup_delay = Duration::ZERO;
    cfg.termination_grace = Duration::from_millis(200);
    let fleet = Fleet::start_with(cfg, opts).await.unwrap();
    assert!(
        std::fs::read_to_string(&inv)
            .unwrap()
            .contains("kind: VariantAutoscaling")
    );
    assert!(std::fs::read_to_string(&gw).unwrap().contains("epp"));
    let stop = Arc::new(AtomicBool::new(false));
    let reader = {
        let (stop, sd) = (stop.clone(), sd.clone());
        std::thread::spawn(move || {
            let mut seen = BTreeSet::new();
            let mut reads = 0u64;
            while !stop.load(Ordering::Relaxed) {
                if let Ok(text) = std::fs::read_to_string(&sd) {
                    let v: serde_json::Value =
                        serde_json::from_str(&text).expect("valid JSON at every read");
                    for g in v.as_array().unwrap() {
                        seen.insert(g["labels"]["pod"].as_str().unwrap().to_owned());
                    }
                    reads += 1;
                }
            }
            (seen, reads)
        })
    };
    let mut rng = 12345u64;
    let mut t = Duration::ZERO;
    for _ in 0..1000 {
        rng = rng
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let n = ((rng >> 33) % 6) as u32;
        let v = if (rng >> 20) & 1 == 0 {
            "cheap"
        } else {
            "fast"
        };
        fleet.set_replicas(v, n).unwrap();
        t += Duration::from_millis(100);
        fleet.step_to(t).await.unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    let (seen, reads) = reader.join().unwrap();
    assert!(reads > 0);
    let ready: BTreeSet<String> = fleet
        .events_since(0)
        .into_iter()
        .filter(|e| e.kind == wva_sim::EventKind::PodReady)
        .filter_map(|e| e.pod)
        .collect();
    for pod in &seen {
        assert!(
            ready.contains(pod),
            "{pod} appeared in file_sd without ever being ready"
        );
    }
    assert_eq!(std::fs::read_to_string(&sd).unwrap(), fleet.file_sd_json());
    let live: BTreeSet<String> = fleet
        .snapshot()
        .pods
        .into_iter()
        .filter(|p| p.state.is_live())
        .map(|p| p.name)
        .collect();
    let in_file: BTreeSet<String> = fleet.targets().into_iter().map(|t| t.pod).collect();
    assert_eq!(live, in_file);
    assert!(!dir.path().join(".vllm.json.tmp").exists());
    fleet.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_last_handle_closes_the_listeners() {
    let fleet = Fleet::start_with(config(1.0, "per_replica"), manual())
        .await
        .unwrap();
    fleet.step_to(Duration::from_secs(3)).await.unwrap();
    let control = fleet.control_addr();
    let pod = fleet.targets()[0].addr;
    drop(fleet);
    tokio::time::sleep(Duration::from_millis(100)).await;
    for addr in [control, pod] {
        let r = tokio::task::spawn_blocking(move || request(addr, "GET", "/healthz", ""))
            .await
            .unwrap();
        assert!(r.is_err(), "{addr} still accepts");
    }
}
