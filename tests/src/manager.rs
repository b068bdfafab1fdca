//! The `wva-manager run --standalone` child of a scenario and its endpoints.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::proc::{ProcessGuard, manager_binary};
use crate::{Result, err, expo, http};

/// How to start the manager.
#[derive(Debug, Clone)]
pub struct ManagerOptions {
    /// The fleet's inventory file (VariantAutoscaling YAML).
    pub variants: PathBuf,
    /// Prometheus base URL.
    pub prometheus_url: String,
    /// Cycle interval (Go duration).
    pub interval: String,
    /// Scale-to-zero: `None` disabled (no config file), `Some((enabled, retention))`.
    pub scale_to_zero: Option<(bool, String)>,
    /// Cache TTL, fresh and unavailable thresholds (Go durations).
    pub cache: (String, String, String),
    /// Extra environment.
    pub env: Vec<(String, String)>,
}

impl ManagerOptions {
    /// The e2e defaults: 2 s cycle, TTL 1 s, fresh 5 s, unavailable 15 s.
    pub fn e2e(variants: PathBuf, prometheus_url: String) -> ManagerOptions {
        ManagerOptions {
            variants,
            prometheus_url,
            interval: "2s".into(),
            scale_to_zero: None,
            cache: ("1s".into(), "5s".into(), "15s".into()),
            env: Vec::new(),
        }
    }
}

/// The saturation ConfigMap written for every scenario (the documented defaults).
pub const SATURATION_CONFIG: &str = "default: |
  kvCacheThreshold: 0.80
  queueLengthThreshold: 5
  kvSpareTrigger: 0.10
  queueSpareTrigger: 3
";

/// A running manager.
#[derive(Debug)]
pub struct ManagerChild {
    guard: ProcessGuard,
    /// `/metrics` and `/debug/cycle`.
    pub metrics: SocketAddr,
    /// `/healthz` and `/readyz`.
    pub probes: SocketAddr,
}

impl ManagerChild {
    /// Writes the config files under `dir`, starts the manager on the given addresses and waits
    /// for `/readyz` 200 (20 s).
    pub async fn start(
        dir: &Path,
        metrics: SocketAddr,
        opts: &ManagerOptions,
    ) -> Result<ManagerChild> {
        let bin = manager_binary()?;
        let probes = http::free_addr().map_err(|e| err(format!("free port: {e}")))?;
        let saturation = dir.join("saturation-config.yaml");
        std::fs::write(&saturation, SATURATION_CONFIG)
            .map_err(|e| err(format!("{}: {e}", saturation.display())))?;
        let mut cmd = Command::new(bin);
        cmd.args(["run", "--standalone", "--log-format", "json"])
            .arg("--variants")
            .arg(&opts.variants)
            .args(["--prometheus-url", &opts.prometheus_url])
            .args(["--interval", &opts.interval])
            .args(["--metrics-bind-address", &metrics.to_string()])
            .args(["--health-probe-bind-address", &probes.to_string()])
            .arg("--saturation-config")
            .arg(&saturation)
            .env("PROMETHEUS_METRICS_CACHE_TTL", &opts.cache.0)
            .env("PROMETHEUS_METRICS_CACHE_FETCH_INTERVAL", &opts.cache.0)
            .env("PROMETHEUS_METRICS_CACHE_FRESH_THRESHOLD", &opts.cache.1)
            .env(
                "PROMETHEUS_METRICS_CACHE_UNAVAILABLE_THRESHOLD",
                &opts.cache.2,
            )
            .env("RUST_LOG", "info");
        match &opts.scale_to_zero {
            Some((enabled, retention)) => {
                let file = dir.join("scale-to-zero-config.yaml");
                let text = format!(
                    "default: |\n  enable_scale_to_zero: {enabled}\n  retention_period: {retention}\n"
                );
                std::fs::write(&file, text).map_err(|e| err(format!("{}: {e}", file.display())))?;
                cmd.arg("--scale-to-zero-config")
                    .arg(&file)
                    .args(["--scale-to-zero", if *enabled { "true" } else { "false" }]);
            }
            None => {
                cmd.args(["--scale-to-zero", "false"]);
            }
        }
        cmd.envs(opts.env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        let mut guard = ProcessGuard::spawn("manager", cmd, dir)?;
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if !guard.is_running() {
                return Err(err(format!(
                    "manager exited at start; log:\n{}",
                    guard.log_tail(20)
                )));
            }
            if let Ok(r) = http::get(probes, "/readyz").await
                && r.status == 200
            {
                break;
            }
            if Instant::now() > deadline {
                return Err(err(format!(
                    "manager /readyz not 200 within 20 s; log:\n{}",
                    guard.log_tail(20)
                )));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(ManagerChild {
            guard,
            metrics,
            probes,
        })
    }

    /// The child's PID.
    pub fn pid(&self) -> u32 {
        self.guard.pid()
    }

    /// Last lines of its log.
    pub fn log_tail(&self, lines: usize) -> String {
        self.guard.log_tail(lines)
    }

    /// SIGTERM and wait up to `grace`; the exit code when it exited in time.
    pub fn terminate(&mut self, grace: Duration) -> Option<i32> {
        self.guard.terminate(grace)
    }

    /// `/metrics` fetched with `Accept: text/plain`.
    pub async fn metrics_text(&self) -> Result<String> {
        let r = http::send(
            self.metrics,
            "GET",
            "/metrics",
            &[("Accept", "text/plain")],
            None,
        )
        .await
        .map_err(|e| err(format!("manager /metrics: {e}")))?;
        if r.status != 200 {
            return Err(err(format!("manager /metrics: HTTP {}", r.status)));
        }
        Ok(r.text())
    }

    /// `/metrics` parsed.
    pub async fn metrics(&self) -> Result<Vec<expo::Sample>> {
        Ok(expo::parse(&self.metrics_text().await?))
    }

    /// The last `CycleReport` from `/debug/cycle` (`None` before the first cycle).
    pub async fn last_cycle(&self) -> Result<Option<serde_json::Value>> {
        let r = http::get(self.metrics, "/debug/cycle")
            .await
            .map_err(|e| err(format!("manager /debug/cycle: {e}")))?;
        if r.status != 200 {
            return Ok(None);
        }
        serde_json::from_slice(&r.body)
            .map(Some)
            .map_err(|e| err(format!("manager /debug/cycle: {e}")))
    }

    /// `(VmRSS, VmHWM)` in KiB from `/proc/<pid>/status`.
    pub fn memory_kib(&self) -> Option<(u64, u64)> {
        proc_memory_kib(self.pid())
    }
}

/// `(VmRSS, VmHWM)` in KiB of any process.
pub fn proc_memory_kib(pid: u32) -> Option<(u64, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| -> Option<u64> {
        text.lines()
            .find(|l| l.starts_with(name))?
            .split_whitespace()
            .nth(1)?
            .parse()
            .ok()
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

/// utime + stime of a process, in clock ticks.
pub fn proc_cpu_ticks(pid: u32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &text[text.rfind(')')? + 2..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    // state is field 3 → index 0 here; utime is field 14 → index 11; stime index 12.
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}
