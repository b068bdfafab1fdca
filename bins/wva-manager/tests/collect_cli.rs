//! `wva-manager collect` end to end: real Prometheus, unreachable Prometheus, bad arguments.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers outside #[test] fns

use std::process::Command;
use std::time::{Duration, Instant};

use test_support::{FileSdTarget, MetricsServer, Prometheus, VllmPod, vllm_text};

fn manager() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_wva-manager"));
    // Keep the developer's environment out of the test.
    for (k, _) in std::env::vars() {
        if k.starts_with("PROMETHEUS_") {
            c.env_remove(k);
        }
    }
    c
}

#[test]
fn bad_arguments_exit_2() {
    for args in [
        vec!["collect", "--bogus"],
        vec!["collect"],
        vec!["collect", "--prometheus-url", "http://prom.example:9090"],
        vec![
            "collect",
            "--prometheus-url",
            "http://127.0.0.1:9",
            "--timeout",
            "soon",
        ],
    ] {
        let out = manager().args(&args).output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let out = manager().args(["collect"]).output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        "error: prometheus configuration is required but not found. set PROMETHEUS_BASE_URL in config file or environment variable"
    );
}

#[test]
fn stopped_prometheus_exits_1_with_one_clear_line_within_the_timeout() {
    let addr = test_support::http::closed_port_addr();
    let t0 = Instant::now();
    let out = manager()
        .args([
            "collect",
            "--prometheus-url",
            &format!("http://{addr}"),
            "--timeout",
            "3s",
        ])
        .env("RUST_BACKTRACE", "1")
        .output()
        .unwrap();
    assert!(t0.elapsed() < Duration::from_secs(4), "{:?}", t0.elapsed());
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with(&format!(
            "error: query discover_models: cannot reach Prometheus at http://{addr}: "
        )),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked") && !stderr.contains("backtrace"));
    // With models and namespaces given, no discovery: the liveness query reports it.
    let out = manager()
        .args([
            "collect",
            "--prometheus-url",
            &format!("http://{addr}"),
            "--timeout",
            "2s",
        ])
        .args(["--namespace", "ns", "--model", "m"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("query replica_last_sample: cannot reach Prometheus"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn collect_prints_pods_and_the_query_count_from_a_real_prometheus() {
    let Some(prom) = Prometheus::start().await else {
        return;
    };
    let server = MetricsServer::start().await;
    let mut pod = VllmPod::new("meta/llama-3");
    pod.kv_cache_usage = 0.42;
    pod.waiting = 5.0;
    server.set("/a/metrics", vllm_text(std::slice::from_ref(&pod)));
    server.set("/b/metrics", vllm_text(&[VllmPod::new("other-model")]));
    prom.set_targets(&[
        FileSdTarget::pod(server.addr(), "/a/metrics", "team-a", "llama-a100-0"),
        FileSdTarget::pod(server.addr(), "/b/metrics", "team-b", "other-0"),
    ]);
    let ok = prom
        .wait_for("vllm:num_requests_running", Duration::from_secs(20), |v| {
            v.len() == 2
        })
        .await;
    assert!(ok);
    let url = prom.base_url();
    let out = tokio::task::spawn_blocking(move || {
        manager()
            .args(["collect", "--prometheus-url", &url, "--namespace", "team-a"])
            .args(["--variant", "llama-a100"])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("model team-a/\"meta/llama-3\""), "{stdout}");
    assert!(stdout.contains("llama-a100-0"), "{stdout}");
    assert!(stdout.contains("42.0%"), "{stdout}");
    assert!(!stdout.contains("other-model"), "{stdout}");
    // 1 discovery query + the 11 per-replica queries of one batch.
    assert!(stdout.contains("PromQL queries sent: 12 "), "{stdout}");

    let url = prom.base_url();
    let out = tokio::task::spawn_blocking(move || {
        manager()
            .args(["collect", "--prometheus-url", &url, "--json"])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let models = v["snapshot"]["models"].as_array().unwrap();
    assert_eq!(models.len(), 2);
    assert_eq!(v["promql_queries_sent"], 12);
    let first = &models[0]["snapshot"]["replicas"]["llama-a100-0"];
    assert_eq!(first["kv_cache_usage"], 0.42);
    assert_eq!(first["queue_length"], 5.0);
    assert_eq!(first["variant"]["name"], "llama-a100-0");
}
