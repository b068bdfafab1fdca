//! The control API over loopback: status codes, idempotence and one-line reasons (spec/sim.md §3.5).
#![allow(clippy::unwrap_used)]

mod common;

use common::{MODEL, call, config};
use std::time::Duration;
use wva_sim::{ClockMode, Fleet, FleetOptions};

async fn manual_fleet() -> wva_sim::FleetHandle {
    let opts = FleetOptions {
        clock: ClockMode::Manual,
        ..Default::default()
    };
    Fleet::start_with(config(4.0, "per_replica"), opts)
        .await
        .unwrap()
}

fn one_line_error(body: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(body).unwrap();
    let e = v["error"].as_str().unwrap().to_owned();
    assert!(!e.is_empty() && !e.contains('\n'), "{e:?}");
    e
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_replicas_is_idempotent_and_validates_its_body() {
    let fleet = manual_fleet().await;
    let a = fleet.control_addr();
    let r1 = call(a, "PUT", "/variants/cheap/replicas", r#"{"replicas": 3}"#).await;
    let r2 = call(a, "PUT", "/variants/cheap/replicas", r#"{"replicas": 3}"#).await;
    assert_eq!((r1.status, r2.status), (200, 200));
    assert_eq!(r1.body, r2.body);
    let counts: serde_json::Value = serde_json::from_str(&r1.body).unwrap();
    assert_eq!(counts["spec_replicas"], 3);
    assert_eq!(counts["current"], 3);
    let get = call(a, "GET", "/variants/cheap/replicas", "").await;
    assert_eq!(get.status, 200);
    assert_eq!(get.body, r1.body);
    for bad in [
        r#"{"replicas": -1}"#,
        r#"{"replicas": 1.5}"#,
        r#"{"replicas": 20000}"#,
        r#"{"n": 1}"#,
        "nope",
    ] {
        let r = call(a, "PUT", "/variants/cheap/replicas", bad).await;
        assert_eq!(r.status, 400, "{bad}");
        one_line_error(&r.body);
    }
    assert_eq!(
        call(a, "PUT", "/variants/nope/replicas", r#"{"replicas": 1}"#)
            .await
            .status,
        404
    );
    assert_eq!(
        call(a, "GET", "/variants/nope/replicas", "").await.status,
        404
    );
    assert_eq!(
        call(a, "DELETE", "/variants/cheap/replicas", "")
            .await
            .status,
        405
    );
    assert_eq!(call(a, "GET", "/nowhere", "").await.status, 404);
    fleet.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_kill_fault_events_targets_and_metrics() {
    let fleet = manual_fleet().await;
    let a = fleet.control_addr();
    assert_eq!(call(a, "GET", "/healthz", "").await.status, 200);
    fleet.step_to(Duration::from_secs(3)).await.unwrap();

    let load = call(a, "GET", "/load", "").await;
    assert_eq!(load.status, 200);
    assert!(load.body.contains(MODEL));
    let body = format!(r#"{{"model": "{MODEL}", "profile": {{"type": "constant", "rate": 9}}}}"#);
    assert_eq!(call(a, "PUT", "/load", &body).await.status, 200);
    assert_eq!(fleet.load()[MODEL], 9.0);
    let r = call(
        a,
        "PUT",
        "/load",
        r#"{"model": "other", "profile": {"type": "constant", "rate": 1}}"#,
    )
    .await;
    assert_eq!(r.status, 404);
    let r = call(
        a,
        "PUT",
        "/load",
        &format!(r#"{{"model": "{MODEL}", "profile": {{"type": "constant", "rate": -1}}}}"#),
    )
    .await;
    assert_eq!(r.status, 400);
    one_line_error(&r.body);

    let targets = call(a, "GET", "/targets", "").await;
    let groups: serde_json::Value = serde_json::from_str(&targets.body).unwrap();
    assert_eq!(groups.as_array().unwrap().len(), 3);
    let pod = groups[0]["labels"]["pod"].as_str().unwrap().to_owned();

    let f = r#"{"scrape": "ok", "override": {"kv_cache_usage_perc": 0.95, "num_requests_waiting": 30}, "for": "10s"}"#;
    assert_eq!(
        call(a, "PUT", &format!("/pods/{pod}/fault"), f)
            .await
            .status,
        200
    );
    assert_eq!(
        call(
            a,
            "PUT",
            &format!("/pods/{pod}/fault"),
            r#"{"scrape": "sometimes"}"#
        )
        .await
        .status,
        400
    );
    assert_eq!(call(a, "PUT", "/pods/nope/fault", f).await.status, 404);
    let t = fleet.targets().into_iter().find(|t| t.pod == pod).unwrap();
    let scrape = call(t.addr, "GET", &t.path, "").await;
    assert!(scrape.body.contains(
        r#"vllm:kv_cache_usage_perc{engine="0",model_name="meta-llama/Llama-3.1-8B-Instruct"} 0.95"#
    ));

    assert_eq!(
        call(a, "POST", &format!("/pods/{pod}/kill"), "")
            .await
            .status,
        200
    );
    assert_eq!(
        call(a, "POST", &format!("/pods/{pod}/kill"), "")
            .await
            .status,
        404
    );

    let ev = call(a, "GET", "/events?since=0", "").await;
    assert_eq!(ev.status, 200);
    let kinds: Vec<String> = ev
        .body
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["kind"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    for k in [
        "pod_created",
        "pod_ready",
        "load_changed",
        "fault_set",
        "pod_killed",
    ] {
        assert!(kinds.iter().any(|x| x == k), "{k} in {kinds:?}");
    }
    let last = fleet.events_since(0).len() as u64;
    assert_eq!(
        call(a, "GET", &format!("/events?since={last}"), "")
            .await
            .body,
        ""
    );
    assert_eq!(call(a, "GET", "/events?since=x", "").await.status, 400);

    let m = call(a, "GET", "/metrics", "").await;
    assert!(
        m.header("content-type")
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    assert!(m.body.contains(
        r#"kube_deployment_spec_replicas{deployment="cheap-decode",namespace="llm-d-sim"} 2.0"#
    ));
    assert!(
        m.body
            .contains("# TYPE wva_sim_tick_duration_seconds histogram")
    );
    let fleet_json: serde_json::Value =
        serde_json::from_str(&call(a, "GET", "/fleet", "").await.body).unwrap();
    assert_eq!(fleet_json["variants"].as_array().unwrap().len(), 2);
    fleet.shutdown().await;
}
