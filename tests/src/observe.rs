//! Observers: every 250 ms, the fleet snapshot, the manager's own `/metrics` (parsed directly)
//! and `/debug/cycle`, each sample stamped with wall time. Distinct cycles are kept in order.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use wva_sim::FleetHandle;

use crate::{expo, http};

/// Replica counts of one variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counts {
    /// Desired by the fleet's "Deployment".
    pub spec: u32,
    /// Live pods (starting + ready + draining).
    pub current: u32,
    /// Ready pods.
    pub ready: u32,
}

/// One observation.
#[derive(Debug, Clone)]
pub struct Sample {
    /// Seconds since the observer started.
    pub t: f64,
    /// Wall clock, ms since the epoch.
    pub wall_ms: u64,
    /// Fleet counts by variant.
    pub fleet: BTreeMap<String, Counts>,
    /// `inferno_desired_replicas` by variant from the manager's `/metrics` (empty if unreachable).
    pub desired: BTreeMap<String, f64>,
    /// Whether the manager's `/metrics` answered.
    pub manager_up: bool,
    /// Highest KV usage of any pod.
    pub kv_max: f64,
    /// Σ live pods × variant cost.
    pub cost_rate: f64,
}

/// One distinct cycle report, with when it was first seen.
#[derive(Debug, Clone)]
pub struct SeenCycle {
    /// Seconds since the observer started.
    pub t: f64,
    /// Wall clock, ms since the epoch.
    pub wall_ms: u64,
    /// The report.
    pub report: Arc<serde_json::Value>,
}

#[derive(Debug, Default)]
struct Recorded {
    samples: Vec<Sample>,
    cycles: Vec<SeenCycle>,
}

/// A running observer; stops on drop.
#[derive(Debug)]
pub struct Observer {
    task: tokio::task::JoinHandle<()>,
    data: Arc<Mutex<Recorded>>,
    start: Instant,
}

/// Wall clock in ms since the epoch.
pub fn wall_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl Observer {
    /// Starts sampling the fleet and the manager at `metrics`.
    pub fn start(fleet: FleetHandle, metrics: SocketAddr) -> Observer {
        let data = Arc::new(Mutex::new(Recorded::default()));
        let shared = Arc::clone(&data);
        let start = Instant::now();
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(250));
            loop {
                tick.tick().await;
                let snapshot = fleet.snapshot();
                let kv_max = snapshot
                    .variants
                    .iter()
                    .map(|v| v.kv_max)
                    .fold(0.0, f64::max);
                let cost_rate = snapshot
                    .variants
                    .iter()
                    .map(|v| f64::from(v.counts.current) * v.cost)
                    .sum();
                let fleet_counts = snapshot
                    .variants
                    .iter()
                    .map(|v| {
                        (
                            v.name.clone(),
                            Counts {
                                spec: v.counts.spec_replicas,
                                current: v.counts.current,
                                ready: v.counts.ready,
                            },
                        )
                    })
                    .collect();
                let metrics_text = http::send(
                    metrics,
                    "GET",
                    "/metrics",
                    &[("Accept", "text/plain")],
                    None,
                )
                .await
                .ok()
                .filter(|r| r.status == 200)
                .map(|r| r.text());
                let desired = metrics_text
                    .as_deref()
                    .map(|t| {
                        expo::by_label(&expo::parse(t), "inferno_desired_replicas", "variant_name")
                    })
                    .unwrap_or_default();
                let cycle = http::get(metrics, "/debug/cycle")
                    .await
                    .ok()
                    .filter(|r| r.status == 200)
                    .and_then(|r| serde_json::from_slice::<serde_json::Value>(&r.body).ok());
                let t = start.elapsed().as_secs_f64();
                let wall = wall_ms();
                let Ok(mut d) = shared.lock() else { return };
                if let Some(c) = cycle {
                    let new = d
                        .cycles
                        .last()
                        .is_none_or(|last| last.report["input"]["now"] != c["input"]["now"]);
                    if new {
                        d.cycles.push(SeenCycle {
                            t,
                            wall_ms: wall,
                            report: Arc::new(c),
                        });
                    }
                }
                d.samples.push(Sample {
                    t,
                    wall_ms: wall,
                    fleet: fleet_counts,
                    desired,
                    manager_up: metrics_text.is_some(),
                    kv_max,
                    cost_rate,
                });
            }
        });
        Observer { task, data, start }
    }

    /// Seconds since the observer started.
    pub fn now(&self) -> f64 {
        self.start.elapsed().as_secs_f64()
    }

    /// All samples so far.
    pub fn samples(&self) -> Vec<Sample> {
        self.data
            .lock()
            .map(|d| d.samples.clone())
            .unwrap_or_default()
    }

    /// Samples taken at or after `t`.
    pub fn samples_since(&self, t: f64) -> Vec<Sample> {
        self.data
            .lock()
            .map(|d| d.samples.iter().filter(|s| s.t >= t).cloned().collect())
            .unwrap_or_default()
    }

    /// Distinct cycles so far.
    pub fn cycles(&self) -> Vec<SeenCycle> {
        self.data
            .lock()
            .map(|d| d.cycles.clone())
            .unwrap_or_default()
    }

    /// The latest sample.
    pub fn last(&self) -> Option<Sample> {
        self.data
            .lock()
            .ok()
            .and_then(|d| d.samples.last().cloned())
    }

    /// Waits until `pred` holds for the latest sample, polling every 250 ms, up to `within`;
    /// returns that sample, or the last one observed in `Err`.
    pub async fn wait_for(
        &self,
        within: Duration,
        pred: impl Fn(&Sample) -> bool,
    ) -> Result<Sample, Option<Sample>> {
        let deadline = Instant::now() + within;
        let mut seen = self.samples().len();
        loop {
            let new: Vec<Sample> = self
                .data
                .lock()
                .map(|d| d.samples[seen.min(d.samples.len())..].to_vec())
                .unwrap_or_default();
            seen += new.len();
            if let Some(s) = new.into_iter().find(|s| pred(s)) {
                return Ok(s);
            }
            if Instant::now() >= deadline {
                return Err(self.last());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits for a new cycle (first seen after now) for which `pred` holds, up to `within`.
    pub async fn wait_cycle(
        &self,
        within: Duration,
        pred: impl Fn(&serde_json::Value) -> bool,
    ) -> Result<SeenCycle, Option<SeenCycle>> {
        let deadline = Instant::now() + within;
        let mut seen = self.cycles().len();
        loop {
            let new: Vec<SeenCycle> = self
                .data
                .lock()
                .map(|d| d.cycles[seen.min(d.cycles.len())..].to_vec())
                .unwrap_or_default();
            seen += new.len();
            if let Some(c) = new.into_iter().find(|c| pred(&c.report)) {
                return Ok(c);
            }
            if Instant::now() >= deadline {
                return Err(self.cycles().last().cloned());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Observer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// `targetReplicas` by variant of a cycle report.
pub fn targets(report: &serde_json::Value) -> BTreeMap<String, u64> {
    report["decisions"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|d| {
                    Some((
                        d["variant"].as_str()?.to_string(),
                        d["targetReplicas"].as_u64()?,
                    ))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The model's availability in a cycle report (`fresh`, `stale`, `unavailable`).
pub fn availability(report: &serde_json::Value, model: &str) -> Option<String> {
    report["models"].as_array()?.iter().find_map(|m| {
        (m["modelID"] == model)
            .then(|| m["analysis"]["availability"].as_str().map(str::to_string))?
    })
}

/// The cycle's `input.now` as ms since the epoch.
pub fn cycle_now_ms(report: &serde_json::Value) -> Option<u64> {
    let text = report["input"]["now"].as_str()?;
    let t = chrono::DateTime::parse_from_rfc3339(text).ok()?;
    u64::try_from(t.timestamp_millis()).ok()
}

/// Decisions of a cycle as `(variant, action, reason, current, target)`.
pub fn decisions(report: &serde_json::Value) -> Vec<(String, String, String, u64, u64)> {
    report["decisions"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|d| {
                    Some((
                        d["variant"].as_str()?.to_string(),
                        d["action"].as_str()?.to_string(),
                        d["reason"].as_str()?.to_string(),
                        d["currentReplicas"].as_u64()?,
                        d["targetReplicas"].as_u64()?,
                    ))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Decision-quality figures of a run (spec/sim.md §7).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Quality {
    /// Seconds observed.
    pub seconds: f64,
    /// Seconds with some pod at KV ≥ 0.8 (saturated by the default threshold).
    pub saturated_s: f64,
    /// ∫ live pods dt, in replica-minutes.
    pub replica_minutes: f64,
    /// ∫ Σ pods × cost dt, in cost-minutes.
    pub cost_minutes: f64,
    /// The same for a static fleet sized at the observed peak cost rate.
    pub static_peak_cost_minutes: f64,
}

/// Integrates the samples into [`Quality`].
pub fn quality(samples: &[Sample]) -> Quality {
    let mut q = Quality::default();
    let mut peak: f64 = 0.0;
    for w in samples.windows(2) {
        let dt = w[1].t - w[0].t;
        q.seconds += dt;
        if w[0].kv_max >= 0.8 {
            q.saturated_s += dt;
        }
        let pods: u32 = w[0].fleet.values().map(|c| c.current).sum();
        q.replica_minutes += f64::from(pods) * dt / 60.0;
        q.cost_minutes += w[0].cost_rate * dt / 60.0;
        peak = peak.max(w[0].cost_rate);
    }
    q.static_peak_cost_minutes = peak * q.seconds / 60.0;
    q
}
