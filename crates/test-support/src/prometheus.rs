//! A real Prometheus as a child process (Debian package `prometheus`).
//!
//! Started on `127.0.0.1:<free port>` with a temporary TSDB, `scrape_interval: 1s` and file_sd
//! targets (`refresh_interval: 1s`, `honor_labels: true`). The child is killed on drop, also when
//! the test panics. When the binary is missing, [`Prometheus::start`] returns `None` after printing
//! a loud SKIP line, or panics with an install hint when `WVA_REQUIRE_PROMETHEUS=1`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::http;

/// One file_sd target: address, metrics path and target labels.
#[derive(Debug, Clone, PartialEq)]
pub struct FileSdTarget {
    /// `host:port` to scrape.
    pub addr: SocketAddr,
    /// Metrics path (`__metrics_path__`).
    pub path: String,
    /// Labels attached to every series of the target (e.g. `namespace`, `pod`).
    pub labels: BTreeMap<String, String>,
}

impl FileSdTarget {
    /// A target with `namespace` and `pod` labels.
    pub fn pod(addr: SocketAddr, path: &str, namespace: &str, pod: &str) -> Self {
        let mut labels = BTreeMap::new();
        labels.insert("namespace".to_string(), namespace.to_string());
        labels.insert("pod".to_string(), pod.to_string());
        FileSdTarget {
            addr,
            path: path.to_string(),
            labels,
        }
    }

    /// A target without labels (series carry their own, `honor_labels: true`).
    pub fn bare(addr: SocketAddr, path: &str) -> Self {
        FileSdTarget {
            addr,
            path: path.to_string(),
            labels: BTreeMap::new(),
        }
    }
}

/// A running Prometheus child process.
pub struct Prometheus {
    child: Child,
    addr: SocketAddr,
    dir: tempfile::TempDir,
    sd_file: PathBuf,
}

/// Install hint printed when the binary is missing.
pub const INSTALL_HINT: &str =
    "install it with: apt-get update && apt-get install -y --no-install-recommends prometheus";

/// The `prometheus` binary on PATH, if any.
pub fn binary() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join("prometheus"))
        .find(|p| p.is_file())
}

fn required() -> bool {
    std::env::var("WVA_REQUIRE_PROMETHEUS").is_ok_and(|v| v == "1" || v == "true")
}

impl Prometheus {
    /// Starts Prometheus and waits for `/-/ready`; `None` (loudly) when the binary is missing.
    pub async fn start() -> Option<Prometheus> {
        let Some(bin) = binary() else {
            if required() {
                panic!(
                    "WVA_REQUIRE_PROMETHEUS=1 but no `prometheus` binary on PATH; {INSTALL_HINT}"
                );
            }
            eprintln!(
                "\n*** SKIPPED: real-Prometheus test — no `prometheus` binary on PATH; {INSTALL_HINT} ***\n"
            );
            return None;
        };
        Some(Self::start_binary(&bin).await)
    }

    async fn start_binary(bin: &Path) -> Prometheus {
        let dir = tempfile::tempdir().expect("tempdir");
        let sd_file = dir.path().join("targets.json");
        std::fs::write(&sd_file, "[]").expect("write targets");
        let config = format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: vllm\n    honor_labels: true\n    file_sd_configs:\n      - files: ['{}']\n        refresh_interval: 1s\n",
            sd_file.display()
        );
        let config_file = dir.path().join("prometheus.yml");
        std::fs::write(&config_file, config).expect("write config");
        let log = std::fs::File::create(dir.path().join("prometheus.log")).expect("log file");
        let addr = SocketAddr::from(([127, 0, 0, 1], http::free_port()));
        let child = Command::new(bin)
            .arg(format!("--config.file={}", config_file.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .arg("--log.level=warn")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("spawn prometheus");
        let mut p = Prometheus {
            child,
            addr,
            dir,
            sd_file,
        };
        if !p.wait_ready(Duration::from_secs(30)).await {
            panic!(
                "prometheus ({}) did not become ready on {addr}; its log:\n{}",
                bin.display(),
                p.log()
            );
        }
        p
    }

    async fn wait_ready(&mut self, within: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + within;
        while tokio::time::Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return false;
            }
            if let Ok(r) = http::get(self.addr, "/-/ready").await
                && r.status == 200
            {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        false
    }

    /// The listen address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:<port>`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Prometheus's own log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("prometheus.log")).unwrap_or_default()
    }

    /// Replaces the file_sd targets (written atomically).
    pub fn set_targets(&self, targets: &[FileSdTarget]) {
        let groups: Vec<serde_json::Value> = targets
            .iter()
            .map(|t| {
                let mut labels = serde_json::Map::new();
                labels.insert("__metrics_path__".into(), t.path.clone().into());
                for (k, v) in &t.labels {
                    labels.insert(k.clone(), v.clone().into());
                }
                serde_json::json!({ "targets": [t.addr.to_string()], "labels": labels })
            })
            .collect();
        let tmp = self.sd_file.with_extension("tmp");
        std::fs::write(&tmp, serde_json::to_vec(&groups).expect("json")).expect("write sd");
        std::fs::rename(&tmp, &self.sd_file).expect("rename sd");
    }

    /// Runs an instant query through the HTTP API and returns the whole JSON answer.
    pub async fn query(&self, expr: &str) -> serde_json::Value {
        let body = format!("query={}", http::form_encode(expr));
        let r = http::request(self.addr, "POST", "/api/v1/query", Some(&body))
            .await
            .expect("query prometheus");
        serde_json::from_slice(&r.body).unwrap_or_else(
            |_| serde_json::json!({"status": "error", "errorType": "harness", "error": r.text()}),
        )
    }

    /// An instant vector as (labels, value) pairs; panics on an error answer.
    pub async fn query_vector(&self, expr: &str) -> Vec<(BTreeMap<String, String>, f64)> {
        let v = self.query(expr).await;
        assert_eq!(v["status"], "success", "query {expr:?} failed: {v}");
        v["data"]["result"]
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
            .unwrap_or_default()
    }

    /// Polls `expr` every 250 ms until `done` holds for its vector; false after `within`.
    pub async fn wait_for(
        &self,
        expr: &str,
        within: Duration,
        done: impl Fn(&[(BTreeMap<String, String>, f64)]) -> bool,
    ) -> bool {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if done(&self.query_vector(expr).await) {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// `prometheus_http_requests_total{handler="/api/v1/query"}`, read from Prometheus's own
    /// `/metrics` page (which is not a query, so it does not count itself).
    pub async fn api_query_requests(&self) -> f64 {
        let r = http::get(self.addr, "/metrics").await.expect("metrics");
        r.text()
            .lines()
            .filter(|l| {
                l.starts_with("prometheus_http_requests_total{")
                    && l.contains("handler=\"/api/v1/query\"")
            })
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
