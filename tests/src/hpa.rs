//! The HPA emulator loop: every second one query reads `inferno_desired_replicas` back from
//! Prometheus (as prometheus-adapter would), each variant's value feeds a
//! `wva_sim::HpaEmulator`, and a different recommendation resizes the fleet. A failed query or a
//! missing series changes nothing.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use wva_sim::{FleetHandle, HpaConfig, HpaEmulator};

use crate::prom::query_at;

/// One resize the emulator requested.
#[derive(Debug, Clone, PartialEq)]
pub struct Resize {
    /// Seconds since the loop started.
    pub t: f64,
    /// Variant.
    pub variant: String,
    /// Replicas before.
    pub from: u32,
    /// Replicas requested.
    pub to: u32,
}

/// A running emulator; stops on drop.
#[derive(Debug)]
pub struct HpaLoop {
    task: tokio::task::JoinHandle<()>,
    resizes: Arc<Mutex<Vec<Resize>>>,
    queries: Arc<AtomicU64>,
}

/// The e2e HPA settings: tolerance 0.1, up window 0 s, down window 5 s, min 1 (or 0), max 10.
pub fn e2e_hpa(min: u32) -> HpaConfig {
    HpaConfig {
        tolerance: 0.1,
        up_window: Duration::ZERO,
        down_window: Duration::from_secs(5),
        min,
        max: 10,
        allow_zero: min == 0,
        ..HpaConfig::default()
    }
}

impl HpaLoop {
    /// Starts the loop against the Prometheus at `prom` for the fleet's namespace.
    pub fn start(fleet: FleetHandle, prom: SocketAddr, namespace: &str, cfg: HpaConfig) -> HpaLoop {
        let resizes = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&resizes);
        let queries = Arc::new(AtomicU64::new(0));
        let counter = Arc::clone(&queries);
        let expr = format!(
            "sum by (variant_name) (inferno_desired_replicas{{exported_namespace=\"{namespace}\"}})"
        );
        let task = tokio::spawn(async move {
            let start = Instant::now();
            let mut emulators: BTreeMap<String, HpaEmulator> = BTreeMap::new();
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tick.tick().await;
                counter.fetch_add(1, Ordering::SeqCst);
                let Ok(vector) = query_at(prom, &expr).await else {
                    continue;
                };
                let now = start.elapsed();
                for (labels, value) in vector {
                    let Some(variant) = labels.get("variant_name") else {
                        continue;
                    };
                    let Ok(counts) = fleet.counts(variant) else {
                        continue;
                    };
                    let emulator = emulators
                        .entry(variant.clone())
                        .or_insert_with(|| HpaEmulator::new(cfg));
                    let current = counts.spec_replicas;
                    let next = emulator.recommend(now, current, Some(value));
                    if next != current
                        && fleet.set_replicas(variant, next).is_ok()
                        && let Ok(mut l) = log.lock()
                    {
                        l.push(Resize {
                            t: now.as_secs_f64(),
                            variant: variant.clone(),
                            from: current,
                            to: next,
                        });
                    }
                }
            }
        });
        HpaLoop {
            task,
            resizes,
            queries,
        }
    }

    /// PromQL queries sent so far.
    pub fn queries(&self) -> u64 {
        self.queries.load(Ordering::SeqCst)
    }

    /// The resizes so far.
    pub fn resizes(&self) -> Vec<Resize> {
        self.resizes.lock().map(|l| l.clone()).unwrap_or_default()
    }
}

impl Drop for HpaLoop {
    fn drop(&mut self) {
        self.task.abort();
    }
}
