//! The Prometheus child of a scenario: the five e2e jobs (`vllm`, `epp`, `fleet`, `wva`,
//! `prometheus`), 1 s scrapes, readiness on `/-/ready`, SIGKILL and restart on the same port
//! and data directory.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use crate::http;
use crate::proc::{INSTALL_HINT, ProcessGuard, find_binary, prometheus_required};
use crate::{Result, err};

/// What Prometheus scrapes.
#[derive(Debug, Clone)]
pub struct PromTargets {
    /// file_sd file of the fleet's pods.
    pub pods_sd: PathBuf,
    /// file_sd file of the gateway.
    pub gateway_sd: PathBuf,
    /// The fleet's control address (`/metrics`: `kube_deployment_*`).
    pub fleet: SocketAddr,
    /// The manager's metrics address.
    pub manager: SocketAddr,
    /// Scrape interval.
    pub scrape_interval: Duration,
    /// Prometheus's query log file (`global.query_log_file`), if wanted.
    pub query_log: Option<PathBuf>,
}

/// One instant-vector element.
pub type Element = (BTreeMap<String, String>, f64);

/// A Prometheus child process.
#[derive(Debug)]
pub struct PromChild {
    bin: PathBuf,
    dir: PathBuf,
    addr: SocketAddr,
    config: PathBuf,
    guard: Mutex<Option<ProcessGuard>>,
    starts: AtomicU32,
}

/// The `prometheus` binary, or `None` after a loud SKIP line (a panic with
/// `WVA_REQUIRE_PROMETHEUS=1`).
pub fn prometheus_or_skip(what: &str) -> Option<PathBuf> {
    match find_binary("WVA_PROMETHEUS_BIN", "prometheus") {
        Some(p) => Some(p),
        None if prometheus_required() => panic!("WVA_REQUIRE_PROMETHEUS=1: {INSTALL_HINT}"),
        None => {
            eprintln!("\n*** SKIPPED {what}: {INSTALL_HINT} ***\n");
            None
        }
    }
}

fn config_text(t: &PromTargets, self_addr: SocketAddr) -> String {
    let si = t.scrape_interval.as_millis().max(1000);
    let timeout = si.saturating_sub(100);
    format!(
        "global:
  scrape_interval: {si}ms
  scrape_timeout: {timeout}ms
  evaluation_interval: {si}ms
{query_log}scrape_configs:
  - job_name: vllm
    honor_labels: true
    file_sd_configs:
      - files: ['{pods}']
        refresh_interval: 1s
  - job_name: epp
    honor_labels: true
    file_sd_configs:
      - files: ['{gw}']
        refresh_interval: 1s
  - job_name: fleet
    honor_labels: true
    static_configs:
      - targets: ['{fleet}']
  - job_name: wva
    static_configs:
      - targets: ['{manager}']
        labels:
          namespace: wva-system
          pod: wva-controller-0
  - job_name: prometheus
    static_configs:
      - targets: ['{self_addr}']
",
        pods = t.pods_sd.display(),
        gw = t.gateway_sd.display(),
        fleet = t.fleet,
        manager = t.manager,
        query_log = t
            .query_log
            .as_ref()
            .map(|p| format!("  query_log_file: {}\n", p.display()))
            .unwrap_or_default(),
    )
}

impl PromChild {
    /// Writes the config under `dir` and starts Prometheus on a free port; waits for `/-/ready`.
    pub async fn start(bin: PathBuf, dir: &Path, targets: &PromTargets) -> Result<PromChild> {
        std::fs::create_dir_all(dir).map_err(|e| err(format!("{}: {e}", dir.display())))?;
        let addr = http::free_addr().map_err(|e| err(format!("free port: {e}")))?;
        let config = dir.join("prometheus.yml");
        std::fs::write(&config, config_text(targets, addr))
            .map_err(|e| err(format!("{}: {e}", config.display())))?;
        let p = PromChild {
            bin,
            dir: dir.to_path_buf(),
            addr,
            config,
            guard: Mutex::new(None),
            starts: AtomicU32::new(0),
        };
        p.launch().await?;
        Ok(p)
    }

    async fn launch(&self) -> Result<()> {
        let mut cmd = Command::new(&self.bin);
        cmd.arg(format!("--config.file={}", self.config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                self.dir.join("data").display()
            ))
            .arg(format!("--web.listen-address={}", self.addr))
            .arg("--web.enable-lifecycle")
            .arg("--storage.tsdb.retention.time=2h")
            .arg("--log.level=warn");
        let log_dir = self.dir.parent().unwrap_or(&self.dir).to_path_buf();
        let starts = self.starts.fetch_add(1, Ordering::SeqCst) + 1;
        let name = if starts == 1 {
            "prometheus".to_string()
        } else {
            format!("prometheus-{starts}")
        };
        let mut guard = ProcessGuard::spawn(&name, cmd, &log_dir)?;
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if !guard.is_running() {
                return Err(err(format!(
                    "prometheus exited at start; log:\n{}",
                    guard.log_tail(20)
                )));
            }
            if let Ok(r) = http::get(self.addr, "/-/ready").await
                && r.status == 200
            {
                break;
            }
            if Instant::now() > deadline {
                return Err(err(format!(
                    "prometheus not ready on {} within 20 s; log:\n{}",
                    self.addr,
                    guard.log_tail(20)
                )));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        if let Ok(mut slot) = self.guard.lock() {
            *slot = Some(guard);
        }
        Ok(())
    }

    /// SIGKILLs Prometheus (an outage).
    pub fn kill(&self) {
        let guard = self.guard.lock().ok().and_then(|mut g| g.take());
        if let Some(mut g) = guard {
            g.kill_now();
        }
    }

    /// Starts Prometheus again on the same port and data directory; fails when the port is
    /// still busy after 5 s.
    pub async fn restart(&self) -> Result<()> {
        self.kill();
        let deadline = Instant::now() + Duration::from_secs(5);
        while std::net::TcpListener::bind(self.addr).is_err() {
            if Instant::now() > deadline {
                return Err(err(format!(
                    "prometheus port {} still busy 5 s after the kill",
                    self.addr
                )));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        self.launch().await
    }

    /// The listen address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://<addr>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// PID of the running child (0 when stopped).
    pub fn pid(&self) -> u32 {
        self.guard
            .lock()
            .ok()
            .and_then(|g| g.as_ref().map(ProcessGuard::pid))
            .unwrap_or(0)
    }

    /// Last lines of the current child's log.
    pub fn log_tail(&self, lines: usize) -> String {
        self.guard
            .lock()
            .ok()
            .and_then(|g| g.as_ref().map(|g| g.log_tail(lines)))
            .unwrap_or_default()
    }

    /// An instant query; an error answer or a transport failure is an `Err`.
    pub async fn query(&self, expr: &str) -> Result<Vec<Element>> {
        query_at(self.addr, expr).await
    }

    /// `prometheus_http_requests_total` summed over the handlers matching `handler`
    /// (a prefix or exact path), read from Prometheus's own `/metrics` (not a query).
    pub async fn http_requests(&self, handlers: &[&str]) -> Result<f64> {
        let r = http::get(self.addr, "/metrics")
            .await
            .map_err(|e| err(format!("prometheus /metrics: {e}")))?;
        Ok(crate::expo::parse(&r.text())
            .into_iter()
            .filter(|s| s.name == "prometheus_http_requests_total")
            .filter(|s| {
                s.labels
                    .get("handler")
                    .is_some_and(|h| handlers.contains(&h.as_str()))
            })
            .map(|s| s.value)
            .sum())
    }

    /// The version line of `prometheus --version`.
    pub fn version(&self) -> String {
        Command::new(&self.bin)
            .arg("--version")
            .output()
            .map(|o| {
                let text = format!(
                    "{}{}",
                    String::from_utf8_lossy(&o.stdout),
                    String::from_utf8_lossy(&o.stderr)
                );
                text.lines().next().unwrap_or("").to_string()
            })
            .unwrap_or_default()
    }
}

/// An instant query against the Prometheus at `addr`.
pub async fn query_at(addr: SocketAddr, expr: &str) -> Result<Vec<Element>> {
    let form = format!("query={}", http::form_encode(expr));
    let r = http::post_form(addr, "/api/v1/query", &form)
        .await
        .map_err(|e| err(format!("query {expr}: {e}")))?;
    let v: serde_json::Value = serde_json::from_slice(&r.body)
        .map_err(|e| err(format!("query {expr}: {e}: {}", r.text())))?;
    if v["status"] != "success" {
        return Err(err(format!("query {expr}: {v}")));
    }
    Ok(v["data"]["result"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|s| {
                    let labels = s["metric"]
                        .as_object()
                        .map(|m| {
                            m.iter()
                                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
                                .collect()
                        })
                        .unwrap_or_default();
                    let value = s["value"][1]
                        .as_str()
                        .and_then(|t| t.parse().ok())
                        .unwrap_or(f64::NAN);
                    (labels, value)
                })
                .collect()
        })
        .unwrap_or_default())
}
