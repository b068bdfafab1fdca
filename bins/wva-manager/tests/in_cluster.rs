//! `wva-manager run` in cluster mode, end to end against a fake Kubernetes API server (HTTP on
//! loopback, served through a kubeconfig) and a real Prometheus: the startup errors of
//! spec/k8s.md §6.3 and one `--once` cycle over the reflectors' stores.

#![allow(clippy::unwrap_used)] // test helpers panic on setup failures by design

use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use test_support::{FakeApi, FakeResponse, Prometheus, RecordedRequest, http};

const NS: &str = "team-a";

fn kubeconfig(dir: &std::path::Path, server: &str) -> std::path::PathBuf {
    let path = dir.join("kubeconfig");
    let text = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: {server}\ncontexts:\n- name: fake\n  context:\n    cluster: fake\n    user: fake\ncurrent-context: fake\nusers:\n- name: fake\n  user: {{}}\n"
    );
    std::fs::write(&path, text).unwrap();
    path
}

fn list(api_version: &str, kind: &str, items: Vec<Value>) -> FakeResponse {
    FakeResponse::json(
        200,
        json!({"apiVersion": api_version, "kind": kind,
               "metadata": {"resourceVersion": "1"}, "items": items})
        .to_string(),
    )
}

fn not_found() -> FakeResponse {
    FakeResponse::json(
        404,
        json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
               "reason": "NotFound", "code": 404, "message": "the server could not find the requested resource"})
        .to_string(),
    )
}

fn va_discovery() -> FakeResponse {
    FakeResponse::json(
        200,
        json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": "llmd.ai/v1alpha1",
               "resources": [{"name": "variantautoscalings", "singularName": "variantautoscaling",
                              "namespaced": true, "kind": "VariantAutoscaling",
                              "verbs": ["get", "list", "watch", "patch"]},
                             {"name": "variantautoscalings/status", "singularName": "",
                              "namespaced": true, "kind": "VariantAutoscaling",
                              "verbs": ["get", "patch"]}]})
        .to_string(),
    )
}

fn variant() -> Value {
    json!({
        "apiVersion": "llmd.ai/v1alpha1", "kind": "VariantAutoscaling",
        "metadata": {"name": "llama-h100", "namespace": NS, "generation": 1, "uid": "va-1",
                     "resourceVersion": "1", "creationTimestamp": "2026-11-01T00:00:00Z",
                     "labels": {"inference.optimization/acceleratorName": "H100"}},
        "spec": {"modelID": "meta/llama-3-8b", "variantCost": "40",
                 "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "llama-h100"}}
    })
}

fn deployment() -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "llama-h100", "namespace": NS, "uid": "d-1", "resourceVersion": "1"},
        "spec": {"replicas": 2,
                 "selector": {"matchLabels": {"app": "llama"}},
                 "template": {"metadata": {"labels": {"app": "llama"}},
                              "spec": {"containers": [{"name": "vllm", "image": "vllm/vllm-openai",
                                                       "resources": {"requests": {"nvidia.com/gpu": "1"}}}]}}},
        "status": {"replicas": 2, "readyReplicas": 2}
    })
}

fn pod(name: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": NS, "uid": name, "resourceVersion": "1",
                     "labels": {"app": "llama", "pod-template-hash": "5d8f"},
                     "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                                          "name": "llama-h100-5d8f", "uid": "rs-1", "controller": true}]},
        "spec": {"containers": [{"name": "vllm", "image": "vllm/vllm-openai"}]},
        "status": {"phase": "Running", "podIP": "10.0.0.1",
                   "conditions": [{"type": "Ready", "status": "True"}]}
    })
}

/// Answers like an API server that serves the CRD, one VA, its Deployment with two Ready pods,
/// no ConfigMaps and no optional APIs; watches stay open and quiet.
fn cluster(req: &RecordedRequest, _: usize) -> FakeResponse {
    if req.is_watch() {
        return FakeResponse::json(200, "").stalled();
    }
    if req.method == "PATCH" && req.path.ends_with("/status") {
        let mut va = variant();
        if let Ok(body) = serde_json::from_str::<Value>(&req.body) {
            va["status"] = body["status"].clone();
        }
        return FakeResponse::json(200, va.to_string());
    }
    if req.method == "POST" && req.path == "/apis/authentication.k8s.io/v1/tokenreviews" {
        let authenticated = req.body.contains("\"good-token\"");
        return FakeResponse::json(
            201,
            json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
                   "spec": {}, "status": {"authenticated": authenticated,
                                          "user": {"username": "system:serviceaccount:monitoring:prometheus"}}})
            .to_string(),
        );
    }
    if req.method == "POST" && req.path == "/apis/authorization.k8s.io/v1/subjectaccessreviews" {
        return FakeResponse::json(
            201,
            json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
                   "spec": {}, "status": {"allowed": true}})
            .to_string(),
        );
    }
    if req.method == "POST" && req.path.ends_with("/events") {
        return FakeResponse::json(201, req.body.clone());
    }
    match req.path.as_str() {
        "/apis/llmd.ai/v1alpha1" => va_discovery(),
        "/apis/llmd.ai/v1alpha1/variantautoscalings" => list(
            "llmd.ai/v1alpha1",
            "VariantAutoscalingList",
            vec![variant()],
        ),
        "/apis/apps/v1/deployments" => list("apps/v1", "DeploymentList", vec![deployment()]),
        "/api/v1/pods" => list(
            "v1",
            "PodList",
            vec![pod("llama-h100-5d8f-a"), pod("llama-h100-5d8f-b")],
        ),
        "/api/v1/configmaps" => list("v1", "ConfigMapList", vec![]),
        "/api/v1/nodes" => list("v1", "NodeList", vec![]),
        "/api/v1/namespaces" => list("meta.k8s.io/v1", "PartialObjectMetadataList", vec![]),
        _ => not_found(),
    }
}

fn manager(args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_wva-manager"));
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("POD_NAME", "wva-test-0")
        .env("PROMETHEUS_BASE_URL", "http://127.0.0.1:9")
        .arg("run")
        .args(args);
    cmd
}

async fn output(mut cmd: Command) -> Output {
    tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap()
}

#[tokio::test]
async fn a_cluster_without_the_crd_is_refused_with_the_exact_line() {
    let api = FakeApi::start(|req, _| {
        if req.path == "/apis/llmd.ai/v1alpha1" {
            not_found()
        } else {
            FakeResponse::json(500, "{}")
        }
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = kubeconfig(dir.path(), &api.base_url());
    let out = output(manager(&[
        "--kubeconfig",
        kubeconfig.to_str().unwrap(),
        "--metrics-bind-address",
        "0",
        "--health-probe-bind-address",
        "0",
    ]))
    .await;
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.lines().any(|l| l
            == "error: the API server does not serve llmd.ai/v1alpha1 variantautoscalings; install deploy/crd first"),
        "{stderr}"
    );
}

#[tokio::test]
async fn an_unreadable_kubeconfig_is_a_client_error() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("absent");
    let out = output(manager(&["--kubeconfig", missing.to_str().unwrap()])).await;
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr
            .lines()
            .any(|l| l.starts_with("error: cannot build Kubernetes client: ")),
        "{stderr}"
    );
}

#[tokio::test]
async fn once_runs_a_cycle_over_the_reflected_cluster_state() {
    let Some(prom) = Prometheus::start().await else {
        return;
    };
    let api = Arc::new(FakeApi::start(cluster).await);
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = kubeconfig(dir.path(), &api.base_url());
    let prometheus_url = format!("http://{}", prom.addr());
    let out = output(manager(&[
        "--kubeconfig",
        kubeconfig.to_str().unwrap(),
        "--prometheus-url",
        &prometheus_url,
        "--once",
    ]))
    .await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "stderr: {stderr}");
    let report: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("stdout is not a CycleReport JSON ({e}): {out:?}"));

    let variants = report["input"]["variants"].as_array().unwrap();
    assert_eq!(variants.len(), 1, "{report:#}");
    let text = variants[0].to_string();
    for needle in ["llama-h100", "meta/llama-3-8b", "H100", NS] {
        assert!(text.contains(needle), "{needle} missing from {text}");
    }
    // No metrics in Prometheus: the variant is held at its current size (never scaled down).
    let decisions = report["decisions"].as_array().unwrap();
    assert_eq!(decisions.len(), 1, "{report:#}");
    let decision = &decisions[0];
    assert_eq!(decision["variant"], "llama-h100", "{decision}");
    assert_eq!(decision["currentReplicas"], 2, "{decision}");
    assert!(
        decision["targetReplicas"].as_u64().unwrap() >= 2,
        "scaled down without metrics: {decision}"
    );
    assert_eq!(decision["reason"], "metrics_unavailable", "{decision}");

    let requests = api.requests();
    assert!(
        requests.iter().any(|r| r.path == "/api/v1/nodes"),
        "the Node reflector (GPU inventory for the limiter) lists nodes"
    );
    let va_list = requests
        .iter()
        .find(|r| r.path == "/apis/llmd.ai/v1alpha1/variantautoscalings" && !r.is_watch())
        .expect("the VA reflector lists VAs");
    assert!(
        va_list
            .query
            .contains("labelSelector=%21wva.llmd.ai%2Fcontroller-instance"),
        "{}",
        va_list.query
    );
    assert!(
        requests
            .iter()
            .all(|r| r.method == "GET" || r.path.ends_with("/selfsubjectreviews")),
        "--once writes nothing: {:?}",
        requests
            .iter()
            .filter(|r| r.method != "GET")
            .map(|r| format!("{} {}", r.method, r.path))
            .collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn the_leader_applies_status_publishes_metrics_and_stops_on_sigterm() {
    let Some(prom) = Prometheus::start().await else {
        return;
    };
    let api = Arc::new(FakeApi::start(cluster).await);
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = kubeconfig(dir.path(), &api.base_url());
    let prometheus_url = format!("http://{}", prom.addr());
    let metrics = format!("127.0.0.1:{}", http::free_port());
    let probes = format!("127.0.0.1:{}", http::free_port());
    let mut cmd = manager(&[
        "--kubeconfig",
        kubeconfig.to_str().unwrap(),
        "--prometheus-url",
        &prometheus_url,
        "--metrics-bind-address",
        &metrics,
        "--health-probe-bind-address",
        &probes,
        "--interval",
        "2s",
    ]);
    let log = dir.path().join("manager.log");
    cmd.stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap());
    let mut child = KillOnDrop(cmd.spawn().unwrap());
    let read_log = || std::fs::read_to_string(&log).unwrap_or_default();

    // The reconcile applies the status by server-side apply as field manager wva-manager.
    let status_path =
        format!("/apis/llmd.ai/v1alpha1/namespaces/{NS}/variantautoscalings/llama-h100/status");
    let deadline = Instant::now() + Duration::from_secs(30);
    let apply = loop {
        let found = api
            .requests()
            .into_iter()
            .find(|r| r.method == "PATCH" && r.path == status_path);
        if let Some(found) = found {
            break found;
        }
        assert!(
            Instant::now() < deadline,
            "no status apply; log:\n{}",
            read_log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let query: Vec<&str> = apply.query.split('&').filter(|p| !p.is_empty()).collect();
    assert!(query.contains(&"fieldManager=wva-manager"), "{query:?}");
    assert!(query.contains(&"force=true"), "{query:?}");
    assert_eq!(
        apply.header("content-type"),
        Some("application/apply-patch+yaml")
    );
    let body: Value = serde_json::from_str(&apply.body).unwrap();
    assert_eq!(body["apiVersion"], "llmd.ai/v1alpha1");
    assert_eq!(body["kind"], "VariantAutoscaling");
    let conditions = body["status"]["conditions"].as_array().unwrap();
    let target = conditions
        .iter()
        .find(|c| c["type"] == "TargetResolved")
        .unwrap_or_else(|| panic!("no TargetResolved in {body:#}"));
    assert_eq!(target["status"], "True");
    assert_eq!(target["reason"], "TargetFound");
    assert_eq!(
        target["message"],
        "Scale target Deployment llama-h100 found"
    );

    // Ready, and the decision is published for the HPA.
    let probes_addr: std::net::SocketAddr = probes.parse().unwrap();
    let metrics_addr: std::net::SocketAddr = metrics.parse().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let ready = http::get(probes_addr, "/readyz").await.map(|r| r.status);
        let text = http::get(metrics_addr, "/metrics")
            .await
            .map(|r| r.text())
            .unwrap_or_default();
        let published = text.lines().any(|l| {
            l.starts_with("inferno_desired_replicas{")
                && l.contains("variant_name=\"llama-h100\"")
                && l.ends_with(" 2")
        });
        if matches!(ready, Ok(200)) && published {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not ready/published: {ready:?}\n{text}\nlog:\n{}",
            read_log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // SIGTERM: exit 0 within 5 s.
    let pid = child.0.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    let status = loop {
        if let Some(status) = child.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "still running 5 s after SIGTERM; log:\n{}",
            read_log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(status.code(), Some(0), "log:\n{}", read_log());
}

/// Kills the manager if a test fails before it stopped.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `GET path` with an optional bearer token; the status code of the answer (0: no listener).
async fn status_of(addr: std::net::SocketAddr, path: &str, token: Option<&str>) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Ok(mut stream) = tokio::net::TcpStream::connect(addr).await else {
        return 0;
    };
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Connection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.unwrap();
    let text = String::from_utf8_lossy(&answer);
    text.split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

#[tokio::test]
async fn metrics_auth_kubernetes_reviews_the_bearer_token_with_the_api_server() {
    let api = Arc::new(FakeApi::start(cluster).await);
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = kubeconfig(dir.path(), &api.base_url());
    let metrics = format!("127.0.0.1:{}", http::free_port());
    let probes = format!("127.0.0.1:{}", http::free_port());
    let mut cmd = manager(&[
        "--kubeconfig",
        kubeconfig.to_str().unwrap(),
        "--metrics-bind-address",
        &metrics,
        "--health-probe-bind-address",
        &probes,
        "--metrics-auth",
        "kubernetes",
        "--leader-elect=false",
    ]);
    cmd.stdout(Stdio::null()).stderr(Stdio::null());
    let _child = KillOnDrop(cmd.spawn().unwrap());
    let metrics_addr: std::net::SocketAddr = metrics.parse().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while status_of(metrics_addr, "/metrics", None).await == 0 {
        assert!(Instant::now() < deadline, "/metrics never answered");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(status_of(metrics_addr, "/metrics", None).await, 401);
    assert_eq!(
        status_of(metrics_addr, "/metrics", Some("bad-token")).await,
        401
    );
    assert_eq!(
        status_of(metrics_addr, "/metrics", Some("good-token")).await,
        200
    );
    let reviews = |path: &str| {
        api.requests()
            .iter()
            .filter(|r| r.method == "POST" && r.path == path)
            .count()
    };
    assert_eq!(reviews("/apis/authentication.k8s.io/v1/tokenreviews"), 2);
    assert_eq!(
        reviews("/apis/authorization.k8s.io/v1/subjectaccessreviews"),
        1
    );
    // A second scrape within 60 s is answered from the cache: no new review.
    assert_eq!(
        status_of(metrics_addr, "/metrics", Some("good-token")).await,
        200
    );
    assert_eq!(reviews("/apis/authentication.k8s.io/v1/tokenreviews"), 2);
}

#[tokio::test]
async fn a_deleted_va_loses_its_series_at_once() {
    let Some(prom) = Prometheus::start().await else {
        return;
    };
    // The VA watch delivers a DELETED event 6 s after it starts (after the first cycle has
    // published the variant), then stays open.
    let api = Arc::new(
        FakeApi::start(|req, n| {
            if req.is_watch() && req.path == "/apis/llmd.ai/v1alpha1/variantautoscalings" {
                let event = json!({"type": "DELETED", "object": variant()}).to_string() + "\n";
                return FakeResponse::json(200, event)
                    .delayed(Duration::from_secs(6))
                    .stalled();
            }
            cluster(req, n)
        })
        .await,
    );
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = kubeconfig(dir.path(), &api.base_url());
    let prometheus_url = format!("http://{}", prom.addr());
    let metrics = format!("127.0.0.1:{}", http::free_port());
    let mut cmd = manager(&[
        "--kubeconfig",
        kubeconfig.to_str().unwrap(),
        "--prometheus-url",
        &prometheus_url,
        "--metrics-bind-address",
        &metrics,
        "--health-probe-bind-address",
        "0",
        "--interval",
        "1m",
    ]);
    let log = dir.path().join("manager.log");
    cmd.stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap());
    let _child = KillOnDrop(cmd.spawn().unwrap());
    let read_log = || std::fs::read_to_string(&log).unwrap_or_default();
    let metrics_addr: std::net::SocketAddr = metrics.parse().unwrap();
    let series = || async {
        http::get(metrics_addr, "/metrics")
            .await
            .map(|r| r.text())
            .unwrap_or_default()
            .lines()
            .filter(|l| l.starts_with("inferno_") && l.contains("variant_name=\"llama-h100\""))
            .count()
    };

    let deadline = Instant::now() + Duration::from_secs(6);
    while series().await == 0 {
        assert!(
            Instant::now() < deadline,
            "never published; log:\n{}",
            read_log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Removed on the delete event, long before the next periodic cycle (1 m).
    let deadline = Instant::now() + Duration::from_secs(15);
    while series().await > 0 {
        assert!(
            Instant::now() < deadline,
            "series of the deleted VA still served; log:\n{}",
            read_log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// RFC 3339 with microseconds (a Lease `MicroTime`) of the current wall clock.
fn micro_time_now() -> String {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    let (secs, micros) = (since.as_secs(), since.subsec_micros());
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{micros:06}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[tokio::test]
async fn losing_the_lease_to_another_replica_exits_1_with_the_log_line() {
    let Some(prom) = Prometheus::start().await else {
        return;
    };
    const LEASE: &str =
        "/apis/coordination.k8s.io/v1/namespaces/workload-variant-autoscaler-system/leases";
    let lease_path = format!("{LEASE}/72dd1cf1.llm-d.ai");
    // A Lease that this replica gets, and that another replica holds from 8 s on.
    let stored: Arc<std::sync::Mutex<Option<Value>>> = Arc::default();
    let started = Instant::now();
    let api = Arc::new(
        FakeApi::start({
            let stored = stored.clone();
            let lease_path = lease_path.clone();
            move |req, n| {
                let mut lease = stored.lock().unwrap();
                if req.path == LEASE && req.method == "POST" {
                    let mut created: Value = serde_json::from_str(&req.body).unwrap();
                    created["metadata"]["resourceVersion"] = json!("1");
                    *lease = Some(created.clone());
                    return FakeResponse::json(201, created.to_string());
                }
                if req.path == lease_path {
                    let Some(current) = lease.as_mut() else {
                        return not_found();
                    };
                    if req.method == "PATCH" {
                        let body: Value = serde_json::from_str(&req.body).unwrap();
                        for (k, v) in body["spec"].as_object().into_iter().flatten() {
                            if v.is_null() {
                                current["spec"].as_object_mut().map(|s| s.remove(k));
                            } else {
                                current["spec"][k] = v.clone();
                            }
                        }
                    }
                    if started.elapsed() > Duration::from_secs(8) {
                        current["spec"]["holderIdentity"] = json!("wva-other-1");
                        current["spec"]["renewTime"] = json!(micro_time_now());
                        current["spec"]["leaseDurationSeconds"] = json!(3);
                    }
                    return FakeResponse::json(200, current.to_string());
                }
                cluster(req, n)
            }
        })
        .await,
    );
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = kubeconfig(dir.path(), &api.base_url());
    let prometheus_url = format!("http://{}", prom.addr());
    let metrics = format!("127.0.0.1:{}", http::free_port());
    let mut cmd = manager(&[
        "--kubeconfig",
        kubeconfig.to_str().unwrap(),
        "--prometheus-url",
        &prometheus_url,
        "--metrics-bind-address",
        &metrics,
        "--health-probe-bind-address",
        "0",
        "--leader-elect",
        "--leader-election-lease-duration",
        "3s",
        "--leader-election-renew-deadline",
        "2s",
        "--leader-election-retry-period",
        "1s",
    ]);
    let log = dir.path().join("manager.log");
    cmd.stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap());
    let mut child = KillOnDrop(cmd.spawn().unwrap());
    let read_log = || std::fs::read_to_string(&log).unwrap_or_default();
    let metrics_addr: std::net::SocketAddr = metrics.parse().unwrap();

    // Leads: the variant is published.
    let deadline = Instant::now() + Duration::from_secs(8);
    loop {
        let text = http::get(metrics_addr, "/metrics")
            .await
            .map(|r| r.text())
            .unwrap_or_default();
        if text.contains("variant_name=\"llama-h100\"") && text.contains("wva_is_leader 1") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "never led:\n{text}\nlog:\n{}",
            read_log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The Lease goes to another replica: log line, exit code 1.
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "still running after losing the lease; log:\n{}",
            read_log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(status.code(), Some(1), "log:\n{}", read_log());
    assert!(
        read_log().contains("leader election lost; exiting"),
        "{}",
        read_log()
    );
}
