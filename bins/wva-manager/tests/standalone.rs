//! `wva-manager run --standalone` against a real Prometheus: query budget, decisions,
//! published families, the scaling counter, series removal and SIGTERM.

#![allow(clippy::unwrap_used)] // test helpers panic on setup failures by design

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use test_support::http;
use test_support::{FileSdTarget, MetricsServer, Prometheus, VllmPod, vllm_text};

const NS: &str = "team-a";

/// The manager as a child process, killed on drop.
struct Manager {
    child: Child,
    metrics: SocketAddr,
    log: PathBuf,
}

impl Drop for Manager {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Manager {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    async fn metrics_text(&self) -> String {
        http::get(self.metrics, "/metrics")
            .await
            .map(|r| r.text())
            .unwrap_or_default()
    }
}

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_wva-manager"))
}

fn model(i: usize) -> String {
    format!("org/model-{i:03}")
}

/// One VariantAutoscaling per model, targeting Deployment `v<i>`.
fn variants_yaml(models: &[usize]) -> String {
    let mut out = String::new();
    for &i in models {
        let _ = write!(
            out,
            "---\napiVersion: llmd.ai/v1alpha1\nkind: VariantAutoscaling\nmetadata:\n  name: v{i}\n  namespace: {NS}\n  labels:\n    inference.optimization/acceleratorName: H100\nspec:\n  modelID: {}\n  variantCost: \"10\"\n  scaleTargetRef:\n    kind: Deployment\n    name: v{i}\n",
            model(i)
        );
    }
    out
}

/// vLLM series for `pods(i)` pods of each model, with KV usage `kv(i)`.
fn fleet_text(
    models: &[usize],
    pods: impl Fn(usize) -> usize,
    kv: impl Fn(usize) -> f64,
) -> String {
    let mut all = Vec::new();
    for &i in models {
        for p in 0..pods(i) {
            let mut pod = VllmPod::new(model(i));
            pod.extra_labels = vec![
                ("namespace".into(), NS.into()),
                ("pod".into(), format!("v{i}-7c9f-{p}")),
            ];
            pod.kv_cache_usage = kv(i);
            pod.waiting = 0.0;
            all.push(pod);
        }
    }
    vllm_text(&all)
}

fn ksm_text(models: &[usize], replicas: impl Fn(usize) -> usize) -> String {
    let mut out = String::from("# TYPE kube_deployment_status_replicas gauge\n");
    for &i in models {
        let _ = writeln!(
            out,
            "kube_deployment_status_replicas{{namespace=\"{NS}\",deployment=\"v{i}\"}} {}",
            replicas(i)
        );
    }
    out.push_str("# TYPE kube_deployment_status_replicas_ready gauge\n");
    for &i in models {
        let _ = writeln!(
            out,
            "kube_deployment_status_replicas_ready{{namespace=\"{NS}\",deployment=\"v{i}\"}} {}",
            replicas(i)
        );
    }
    out
}

async fn wait_series(prom: &Prometheus, expr: &str, n: usize) {
    assert!(
        prom.wait_for(expr, Duration::from_secs(30), |v| v.len() == n)
            .await,
        "Prometheus never returned {n} series for {expr}"
    );
}

fn write(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn once_over_100_models_stays_within_the_query_budget_and_scales_the_saturated() {
    let Some(prom) = Prometheus::start().await else {
        return;
    };
    let models: Vec<usize> = (0..100).collect();
    let server = MetricsServer::start().await;
    // Even models are saturated (KV 0.95), odd ones are not.
    let kv = |i: usize| if i.is_multiple_of(2) { 0.95 } else { 0.3 };
    server.set("/vllm", fleet_text(&models, |_| 1, kv));
    server.set("/ksm", ksm_text(&models, |_| 1));
    prom.set_targets(&[
        FileSdTarget::bare(server.addr(), "/vllm"),
        FileSdTarget::bare(server.addr(), "/ksm"),
    ]);
    wait_series(&prom, "vllm:num_requests_running", 100).await;
    wait_series(&prom, "kube_deployment_status_replicas", 100).await;

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("variants.yaml");
    write(&file, &variants_yaml(&models));
    let before = prom.api_query_requests().await;
    let out = bin()
        .args([
            "run",
            "--standalone",
            "--once",
            "--metrics-bind-address",
            "0",
        ])
        .args(["--health-probe-bind-address", "0", "--variants"])
        .arg(&file)
        .args(["--prometheus-url", &prom.base_url()])
        .output()
        .unwrap();
    let after = prom.api_query_requests().await;
    assert!(
        out.status.success(),
        "exit {:?}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let queries = after - before;
    // V1 (core: 4) + scale-to-zero request count (only when enabled: not here) + the
    // standalone replica pair (2): at most 5 + 2.
    assert!(
        (1.0..=7.0).contains(&queries),
        "{queries} PromQL queries for 100 models"
    );

    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let decisions = report["decisions"].as_array().unwrap();
    assert_eq!(decisions.len(), 100);
    for d in decisions {
        let name = d["variant"].as_str().unwrap();
        let i: usize = name[1..].parse().unwrap();
        assert_eq!(d["currentReplicas"], 1, "{d}");
        if i.is_multiple_of(2) {
            assert_eq!(d["targetReplicas"], 2, "{d}");
            assert_eq!(d["reason"], "kv_cache_saturation", "{d}");
        } else {
            assert_eq!(d["targetReplicas"], 1, "{d}");
            assert_eq!(d["action"], "no_change", "{d}");
        }
    }
    let replicas = report["input"]["replicas"].as_array().unwrap();
    assert_eq!(replicas.len(), 100, "one live pod per model");
}

fn start_manager(
    dir: &Path,
    variants: &Path,
    prometheus: &str,
    extra_env: &[(&str, &str)],
) -> Manager {
    let metrics = SocketAddr::from(([127, 0, 0, 1], http::free_port()));
    let probes = SocketAddr::from(([127, 0, 0, 1], http::free_port()));
    let log = dir.join("manager.log");
    let log_file = std::fs::File::create(&log).unwrap();
    let child = bin()
        .args(["run", "--standalone", "--interval", "1s"])
        .arg("--variants")
        .arg(variants)
        .args(["--prometheus-url", prometheus])
        .args(["--metrics-bind-address", &metrics.to_string()])
        .args(["--health-probe-bind-address", &probes.to_string()])
        .env("PROMETHEUS_METRICS_CACHE_TTL", "1s")
        .env("PROMETHEUS_METRICS_CACHE_FETCH_INTERVAL", "1s")
        .env("RUST_LOG", "info")
        .envs(extra_env.iter().copied())
        .stdin(Stdio::null())
        .stdout(log_file.try_clone().unwrap())
        .stderr(log_file)
        .spawn()
        .unwrap();
    Manager {
        child,
        metrics,
        log,
    }
}

async fn wait_metrics(
    m: &Manager,
    within: Duration,
    what: &str,
    ok: impl Fn(&str) -> bool,
) -> String {
    let deadline = Instant::now() + within;
    loop {
        let text = m.metrics_text().await;
        if ok(&text) {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "manager /metrics never showed {what}; last:\n{text}\nlog:\n{}",
            m.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn line_value(text: &str, prefix: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_running_publishes_counts_each_increase_once_removes_deleted_and_stops_on_sigterm() {
    let Some(prom) = Prometheus::start().await else {
        return;
    };
    let models = [1usize, 2];
    let server = MetricsServer::start().await;
    server.set(
        "/vllm",
        fleet_text(&models, |_| 1, |i| if i == 1 { 0.95 } else { 0.3 }),
    );
    server.set("/ksm", ksm_text(&models, |_| 1));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("variants.yaml");
    write(&file, &variants_yaml(&models));
    let manager = start_manager(dir.path(), &file, &prom.base_url(), &[]);
    prom.set_targets(&[
        FileSdTarget::bare(server.addr(), "/vllm"),
        FileSdTarget::bare(server.addr(), "/ksm"),
        FileSdTarget::bare(manager.metrics, "/metrics"),
    ]);

    // v1 is saturated at 1 replica: desired 2, one scale_up.
    let up1 = "inferno_replica_scaling_total{variant_name=\"v1\",namespace=\"team-a\",direction=\"scale_up\",reason=\"kv_cache_saturation\"}";
    let desired_v1 = "inferno_desired_replicas{variant_name=\"v1\",namespace=\"team-a\",accelerator_type=\"H100\"}";
    let text = wait_metrics(&manager, Duration::from_secs(40), "v1 desired 2", |t| {
        line_value(t, desired_v1) == Some(2.0)
    })
    .await;
    assert_eq!(line_value(&text, up1), Some(1.0));
    for family in [
        "# TYPE inferno_current_replicas gauge",
        "# TYPE inferno_desired_replicas gauge",
        "# TYPE inferno_desired_ratio gauge",
        "# TYPE inferno_replica_scaling_total counter",
    ] {
        assert!(text.contains(family), "missing {family}");
    }
    assert!(text.contains(
        "inferno_current_replicas{variant_name=\"v2\",namespace=\"team-a\",accelerator_type=\"H100\"} 1"
    ));
    assert!(text.contains(
        "inferno_desired_ratio{variant_name=\"v1\",namespace=\"team-a\",accelerator_type=\"H100\"} 2"
    ));

    // Several cycles with the same decision do not count again.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let text = manager.metrics_text().await;
    assert_eq!(line_value(&text, desired_v1), Some(2.0));
    assert_eq!(
        line_value(&text, up1),
        Some(1.0),
        "counted once per real change"
    );

    // promtool agrees with the exposition.
    let checked = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    if let Ok(mut child) = checked {
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
            "promtool: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    // The fleet follows (2 replicas, both saturated): a second real increase, to 3.
    let v1_two = |i: usize| if i == 1 { 2 } else { 1 };
    server.set(
        "/vllm",
        fleet_text(&models, v1_two, |i| if i == 1 { 0.95 } else { 0.3 }),
    );
    server.set("/ksm", ksm_text(&models, v1_two));
    let text = wait_metrics(&manager, Duration::from_secs(40), "v1 desired 3", |t| {
        line_value(t, desired_v1) == Some(3.0)
    })
    .await;
    assert_eq!(line_value(&text, up1), Some(2.0));

    // The seed's example queries answer from a Prometheus that scrapes the manager.
    assert!(
        prom.wait_for(
            "rate(inferno_replica_scaling_total{direction=\"scale_up\"}[5m])",
            Duration::from_secs(20),
            |v| v.iter().any(|(_, x)| *x > 0.0)
        )
        .await
    );
    let current = prom.query_vector("inferno_current_replicas").await;
    assert_eq!(current.len(), 2);
    for (labels, _) in &current {
        for l in ["variant_name", "namespace", "accelerator_type"] {
            assert!(labels.contains_key(l), "{labels:?}");
        }
    }
    let diff = prom
        .query_vector("abs(inferno_desired_replicas - inferno_current_replicas)")
        .await;
    assert_eq!(diff.len(), 2, "label sets match one to one");
    let directions = prom
        .query_vector("count by (direction) (inferno_replica_scaling_total)")
        .await;
    assert!(directions.iter().all(|(l, _)| {
        l.get("direction")
            .is_some_and(|d| d == "scale_up" || d == "scale_down")
    }));

    // Deleting v2 from the file removes its series.
    write(&file, &variants_yaml(&[1]));
    wait_metrics(&manager, Duration::from_secs(20), "v2 gone", |t| {
        !t.contains("variant_name=\"v2\"") && t.contains("variant_name=\"v1\"")
    })
    .await;

    // SIGTERM: exit 0 within 5 s.
    let mut manager = manager;
    let pid = manager.child.id().to_string();
    let started = Instant::now();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    loop {
        if let Some(status) = manager.child.try_wait().unwrap() {
            assert!(
                status.success(),
                "exit status {status}; log:\n{}",
                manager.log()
            );
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "still running 5 s after SIGTERM; log:\n{}",
            manager.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
