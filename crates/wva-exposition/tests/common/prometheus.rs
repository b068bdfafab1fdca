//! A real Prometheus server as a child process: free loopback port, temporary directory,
//! static 1 s scrape of one target, killed on drop.

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::http::{encode_query, get};

/// Where the Debian package installs the server.
pub const PROMETHEUS_BIN: &str = "/usr/bin/prometheus";

/// A running Prometheus.
pub struct Prometheus {
    child: Child,
    addr: SocketAddr,
    _dir: tempfile::TempDir,
}

/// One instant-vector sample: its labels and value.
pub type Series = (BTreeMap<String, String>, f64);

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Prometheus {
    /// Starts Prometheus scraping `target` every second with the extra target labels `labels`;
    /// `None` when the binary is not installed.
    pub async fn start(target: SocketAddr, labels: &[(&str, &str)]) -> Option<Prometheus> {
        if !Path::new(PROMETHEUS_BIN).is_file() {
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let target_labels: String = labels
            .iter()
            .map(|(k, v)| format!("{k}: \"{v}\", "))
            .collect();
        let config = format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: wva\n    scrape_interval: 1s\n    scrape_timeout: 1s\n    static_configs:\n      - targets: [\"{target}\"]\n        labels: {{{target_labels}}}\n"
        );
        let config_path = dir.path().join("prometheus.yml");
        std::fs::write(&config_path, config).unwrap();
        let addr: SocketAddr = ([127, 0, 0, 1], free_port()).into();
        let child = Command::new(PROMETHEUS_BIN)
            .arg(format!("--config.file={}", config_path.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .arg("--log.level=warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let prometheus = Prometheus {
            child,
            addr,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(stream) = tokio::net::TcpStream::connect(addr).await {
                drop(stream);
                if get(addr, "/-/ready").await.status == 200 {
                    break;
                }
            }
            assert!(Instant::now() < deadline, "Prometheus did not become ready");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Some(prometheus)
    }

    /// Runs an instant query; panics unless Prometheus answers `success` with a vector.
    pub async fn query(&self, promql: &str) -> Vec<Series> {
        let r = get(
            self.addr,
            &format!("/api/v1/query?query={}", encode_query(promql)),
        )
        .await;
        assert_eq!(r.status, 200, "{promql}: {}", r.body);
        let json: serde_json::Value = serde_json::from_str(&r.body).unwrap();
        assert_eq!(json["status"], "success", "{promql}: {}", r.body);
        assert_eq!(json["data"]["resultType"], "vector", "{promql}");
        json["data"]["result"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                let labels = s["metric"]
                    .as_object()
                    .unwrap()
                    .iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
                    .collect();
                let value = s["value"][1].as_str().unwrap().parse().unwrap();
                (labels, value)
            })
            .collect()
    }

    /// Polls `promql` until `accept` holds for its result (at most 30 s), returning that result.
    pub async fn wait_for(&self, promql: &str, accept: impl Fn(&[Series]) -> bool) -> Vec<Series> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let result = self.query(promql).await;
            if accept(&result) {
                return result;
            }
            assert!(
                Instant::now() < deadline,
                "{promql} never satisfied the condition; last: {result:?}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}
