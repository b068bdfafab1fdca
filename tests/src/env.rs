//! One scenario's environment: artifact dir `target/e2e/<scenario>/`, fleet, Prometheus,
//! manager, observer and (optionally) the HPA emulator; and the failure dump.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use wva_sim::{FleetConfig, FleetHandle};

use crate::assert::Check;
use crate::fleet::{self, FleetFiles};
use crate::hpa::{HpaLoop, e2e_hpa};
use crate::manager::{ManagerChild, ManagerOptions};
use crate::observe::Observer;
use crate::proc::artifacts_root;
use crate::prom::{PromChild, PromTargets, prometheus_or_skip};
use crate::{Result, err, http};

/// How a scenario starts.
#[derive(Debug, Clone)]
pub struct Setup {
    /// The fleet.
    pub fleet: FleetConfig,
    /// Scale-to-zero config: `None` → not configured (disabled).
    pub scale_to_zero: Option<(bool, String)>,
    /// HPA emulator minimum; `None` runs no emulator.
    pub hpa_min: Option<u32>,
}

/// A running scenario.
#[derive(Debug)]
pub struct Env {
    /// Scenario name.
    pub name: String,
    /// Artifact directory.
    pub dir: PathBuf,
    /// The in-process fleet.
    pub fleet: FleetHandle,
    /// The fleet's files.
    pub files: FleetFiles,
    /// Prometheus.
    pub prom: PromChild,
    /// The manager.
    pub manager: ManagerChild,
    /// Observer of the fleet and the manager.
    pub observer: Observer,
    /// The HPA emulator, when enabled.
    pub hpa: Option<HpaLoop>,
    started: Instant,
}

impl Env {
    /// Starts everything; `None` (after a loud SKIP) when Prometheus is not installed.
    /// Panics when a component cannot start.
    pub async fn start(name: &str, setup: Setup) -> Option<Env> {
        let bin = prometheus_or_skip(&format!("e2e scenario {name}"))?;
        match Self::try_start(name, setup, bin).await {
            Ok(env) => Some(env),
            Err(e) => panic!("scenario {name}: setup failed: {e}"),
        }
    }

    async fn try_start(name: &str, setup: Setup, bin: PathBuf) -> Result<Env> {
        let started = Instant::now();
        let dir = artifacts_root().join(name);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|e| err(format!("{}: {e}", dir.display())))?;
        let (fleet, files) = fleet::start(setup.fleet, &dir).await?;
        let manager_addr = http::free_addr().map_err(|e| err(format!("free port: {e}")))?;
        let prom = PromChild::start(
            bin,
            &dir.join("prometheus"),
            &PromTargets {
                pods_sd: files.pods_sd.clone(),
                gateway_sd: files.gateway_sd.clone(),
                fleet: fleet.control_addr(),
                manager: manager_addr,
                scrape_interval: Duration::from_secs(1),
                query_log: None,
            },
        )
        .await?;
        wait_scraped(&prom, &fleet).await?;
        let mut opts = ManagerOptions::e2e(files.inventory.clone(), prom.url());
        opts.scale_to_zero = setup.scale_to_zero;
        let manager = ManagerChild::start(&dir, manager_addr, &opts).await?;
        let observer = Observer::start(fleet.clone(), manager.metrics);
        let hpa = setup
            .hpa_min
            .map(|min| HpaLoop::start(fleet.clone(), prom.addr(), fleet::NAMESPACE, e2e_hpa(min)));
        Ok(Env {
            name: name.to_string(),
            dir,
            fleet,
            files,
            prom,
            manager,
            observer,
            hpa,
            started,
        })
    }

    /// Seconds since the scenario started.
    pub fn elapsed(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    /// Writes the last `/debug/cycle`, the fleet snapshot, its events, key PromQL results, the
    /// observer's samples and the log tails into the artifact dir.
    pub async fn dump(&self, failure: &str) {
        let write = |file: &str, text: String| {
            let _ = std::fs::write(self.dir.join(file), text);
        };
        write("failure.txt", failure.to_string());
        if let Ok(Some(c)) = self.manager.last_cycle().await {
            write(
                "debug-cycle.json",
                serde_json::to_string_pretty(&c).unwrap_or_default(),
            );
        }
        write(
            "fleet.json",
            serde_json::to_string_pretty(&self.fleet.snapshot()).unwrap_or_default(),
        );
        let events: Vec<String> = self
            .fleet
            .events_since(0)
            .iter()
            .map(|e| e.to_json_line())
            .collect();
        write("events.jsonl", events.join("\n"));
        let mut promql = String::new();
        for q in [
            "up",
            "inferno_desired_replicas",
            "inferno_current_replicas",
            "vllm:kv_cache_usage_perc",
            "vllm:num_requests_waiting",
            "kube_deployment_status_replicas",
        ] {
            let answer = match self.prom.query(q).await {
                Ok(v) => format!("{v:?}"),
                Err(e) => format!("error: {e}"),
            };
            promql.push_str(&format!("# {q}\n{answer}\n"));
        }
        write("promql.txt", promql);
        let samples: Vec<String> = self
            .observer
            .samples()
            .iter()
            .map(|s| {
                format!(
                    "{:.2} fleet={:?} desired={:?} up={}",
                    s.t, s.fleet, s.desired, s.manager_up
                )
            })
            .collect();
        write("samples.txt", samples.join("\n"));
        if let Some(h) = &self.hpa {
            write("hpa-resizes.txt", format!("{:#?}", h.resizes()));
        }
        write(
            "tails.txt",
            format!(
                "== manager ==\n{}\n== prometheus ==\n{}\n",
                self.manager.log_tail(40),
                self.prom.log_tail(20)
            ),
        );
    }

    /// Ends the scenario: on failure or timeout dumps the artifacts and panics with the first
    /// unmet expectation; then stops every child.
    pub async fn finish(
        self,
        outcome: std::result::Result<Check, tokio::time::error::Elapsed>,
        budget: Duration,
    ) {
        let failure = match outcome {
            Ok(Ok(())) => None,
            Ok(Err(message)) => Some(message),
            Err(_) => Some(format!("timed out after {} s", budget.as_secs())),
        };
        let took = self.elapsed();
        if let Some(f) = &failure {
            self.dump(f).await;
        }
        let q = crate::observe::quality(&self.observer.samples());
        let _ = std::fs::write(
            self.dir.join("quality.json"),
            serde_json::json!({
                "scenario": self.name,
                "seconds": q.seconds,
                "saturated_s": q.saturated_s,
                "replica_minutes": q.replica_minutes,
                "cost_minutes": q.cost_minutes,
                "static_peak_cost_minutes": q.static_peak_cost_minutes,
            })
            .to_string(),
        );
        let _ = std::fs::write(
            self.dir.join("result.txt"),
            format!(
                "{} {:.1}s\n",
                if failure.is_none() { "ok" } else { "FAILED" },
                took
            ),
        );
        eprintln!(
            "e2e {}: {} in {took:.1} s",
            self.name,
            if failure.is_none() { "ok" } else { "FAILED" }
        );
        self.fleet.shutdown().await;
        let dir = self.dir.clone();
        drop(self);
        if let Some(f) = failure {
            panic!("{f} (artifacts: {})", dir.display());
        }
    }
}

/// Waits (20 s) until Prometheus holds the fleet's `kube_deployment_status_replicas` for every
/// variant and `up == 1` for every live pod, as a cluster's kube-state-metrics would be before
/// the controller starts.
pub async fn wait_scraped(prom: &PromChild, fleet: &FleetHandle) -> Result<()> {
    let variants = fleet.config().variants.len();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let pods = fleet.targets().len();
        let deployments = prom
            .query("kube_deployment_status_replicas")
            .await
            .map(|v| v.len())
            .unwrap_or(0);
        let up = prom
            .query("up{job=\"vllm\"} == 1")
            .await
            .map(|v| v.len())
            .unwrap_or(0);
        if deployments >= variants && up >= pods {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(err(format!(
                "Prometheus did not scrape the fleet within 20 s: {deployments}/{variants} deployments, {up}/{pods} pods up"
            )));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
