//! The control loop: inventory → collect → decide → publish → actuate.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, SystemTime};

use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, debug, info, info_span, warn};
use wva_collector::{MetricsSource, ModelKey};
use wva_core::{CoreState, CycleReport, InputError, Reason, Timestamp, VariantState};
use wva_exposition::{CyclePhase, CycleTrigger, Exposition, Outcome, PublishedVariant, VariantKey};

use crate::actuator::Actuator;
use crate::clock::{Clock, TokioClock};
use crate::input::{collect_request, cycle_input, models_to_untrack};
use crate::inventory::{Inventory, InventorySnapshot};
use crate::trigger::{CycleRequester, Schedule, Scheduler};

/// Why a cycle produced no report.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EngineError {
    /// The core rejected the assembled input (an inventory bug: it must pass valid variants).
    #[error("the core rejected the cycle input: {0}")]
    Plan(#[from] InputError),
    /// The report could not be serialised for `/debug/cycle`.
    #[error("cannot serialise the cycle report: {0}")]
    Report(String),
}

/// State carried from one cycle to the next.
#[derive(Debug, Default)]
struct Carried {
    core: Option<CoreState>,
    tracked: BTreeSet<ModelKey>,
}

/// The engine: owns no I/O of its own, only the order of the stages.
pub struct Engine {
    inventory: Arc<dyn Inventory>,
    source: Arc<dyn MetricsSource>,
    exposition: Exposition,
    actuator: Arc<dyn Actuator>,
    clock: Arc<dyn Clock>,
    schedule: Schedule,
    requests: CycleRequester,
    leader: Option<watch::Receiver<bool>>,
    carried: Mutex<Carried>,
    last_report: RwLock<Option<Arc<CycleReport>>>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("source", &self.source.name())
            .field("schedule", &self.schedule)
            .finish_non_exhaustive()
    }
}

impl Engine {
    /// An engine over its four collaborators, with the default schedule and the tokio clock.
    pub fn new(
        inventory: Arc<dyn Inventory>,
        source: Arc<dyn MetricsSource>,
        exposition: Exposition,
        actuator: Arc<dyn Actuator>,
    ) -> Self {
        Engine {
            inventory,
            source,
            exposition,
            actuator,
            clock: Arc::new(TokioClock),
            schedule: Schedule::default(),
            requests: CycleRequester::new(),
            leader: None,
            carried: Mutex::new(Carried::default()),
            last_report: RwLock::new(None),
        }
    }

    /// Sets the cycle schedule (interval, debounce, minimum gap).
    pub fn with_schedule(mut self, schedule: Schedule) -> Self {
        self.schedule = schedule;
        self
    }

    /// Sets the clock that stamps each cycle's `now`.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Runs cycles only while the receiver holds `true` (leader election).
    pub fn with_leader_gate(mut self, leader: watch::Receiver<bool>) -> Self {
        self.leader = Some(leader);
        self
    }

    /// Seeds the state learned by earlier cycles (V2 capacity store and history).
    pub fn with_state(self, state: CoreState) -> Self {
        self.carried
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .core = Some(state);
        self
    }

    /// A handle that requests an immediate (coalesced) cycle.
    pub fn requester(&self) -> CycleRequester {
        self.requests.clone()
    }

    /// The exposition this engine publishes into.
    pub fn exposition(&self) -> &Exposition {
        &self.exposition
    }

    /// The last report, if a cycle has completed.
    pub fn last_report(&self) -> Option<Arc<CycleReport>> {
        self.last_report
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Runs one cycle stamped `now` and returns its report. The single-cycle entry point for
    /// `run --once`, lockstep demos and tests.
    pub async fn run_cycle(&self, now: SystemTime) -> Result<Arc<CycleReport>, EngineError> {
        self.cycle(now, CycleTrigger::Periodic).await
    }

    /// Loops cycles on the schedule and on requests until `shutdown` fires. A cycle in flight
    /// is abandoned at shutdown (the collector's fetches stop with its own token).
    pub async fn run(&self, shutdown: CancellationToken) {
        let mut scheduler = Scheduler::new(self.schedule, self.requests.clone());
        let mut last_end: Option<Instant> = None;
        let mut was_leader = true;
        loop {
            let trigger = tokio::select! {
                _ = shutdown.cancelled() => break,
                t = scheduler.next(last_end) => t,
            };
            let leader = self.is_leader();
            if !leader {
                if was_leader {
                    info!("not the leader: per-variant series cleared, cycles paused");
                    self.exposition.clear_variants();
                }
                was_leader = false;
                self.exposition.set_leader(false);
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = self.wait_for_leadership() => {}
                }
                last_end = None;
                continue;
            }
            was_leader = true;
            self.exposition.set_leader(true);
            scheduler.started(Instant::now());
            let now = self.clock.now();
            tokio::select! {
                _ = shutdown.cancelled() => break,
                result = self.cycle(now, trigger) => {
                    if let Err(e) = result {
                        warn!(error = %e, "cycle failed; the next one runs on schedule");
                    }
                }
            }
            last_end = Some(Instant::now());
        }
        info!("engine stopped");
    }

    fn is_leader(&self) -> bool {
        self.leader.as_ref().is_none_or(|rx| *rx.borrow())
    }

    async fn wait_for_leadership(&self) {
        if let Some(rx) = &self.leader {
            let mut rx = rx.clone();
            let _ = rx.wait_for(|leader| *leader).await;
        }
    }

    async fn cycle(
        &self,
        now: SystemTime,
        trigger: CycleTrigger,
    ) -> Result<Arc<CycleReport>, EngineError> {
        let span = info_span!("cycle", trigger = trigger.as_str());
        let started = Instant::now();
        let result = self.stages(now).instrument(span).await;
        let metrics = self.exposition.self_metrics();
        let outcome = if result.is_ok() {
            metrics.set_last_successful_cycle(SystemTime::now());
            Outcome::Ok
        } else {
            Outcome::Error
        };
        metrics.observe_cycle(trigger, outcome, started.elapsed());
        result
    }

    async fn stages(&self, now: SystemTime) -> Result<Arc<CycleReport>, EngineError> {
        let mut timings = PhaseTimer::new(&self.exposition);

        let mut inventory = self.inventory.snapshot();
        timings.lap(CyclePhase::Inventory);

        let request = collect_request(&inventory);
        let previous = {
            let carried = self.carried.lock().unwrap_or_else(PoisonError::into_inner);
            carried.tracked.clone()
        };
        for key in models_to_untrack(&previous, &request) {
            debug!(model = %key, "model has no active variant any more: untracked");
            self.source.untrack(&key);
            self.exposition
                .self_metrics()
                .remove_metric_age(&key.namespace, &key.model_id);
        }
        let collected = self.source.collect(&request).await;
        self.inventory.observe(&mut inventory, &collected);
        timings.lap(CyclePhase::Collect);

        let state = {
            let mut carried = self.carried.lock().unwrap_or_else(PoisonError::into_inner);
            carried.tracked = request.models.iter().map(|m| m.key.clone()).collect();
            carried.core.take()
        };
        let input = cycle_input(Timestamp(now.into()), &inventory, &collected, state.clone());
        let planned = wva_core::plan(&input);
        let mut report = match planned {
            Ok(report) => report,
            Err(e) => {
                // Keep the learned state for the next cycle.
                self.carried
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .core = state;
                let error = EngineError::from(e);
                let covered: Vec<VariantState> =
                    inventory.variants.into_iter().map(|v| v.state).collect();
                self.actuator.cycle_failed(&covered, &error.to_string());
                return Err(error);
            }
        };
        timings.lap(CyclePhase::Decide);

        self.exposition.publish(&publication(&inventory, &report));
        self.exposition
            .self_metrics()
            .record_decisions(&report.decisions);
        timings.lap(CyclePhase::Publish);

        for e in self.actuator.apply(&report).await {
            warn!(error = %e, "actuation failed");
        }
        timings.lap(CyclePhase::Actuate);

        report.timings = Some(timings.into_map());
        self.carried
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .core = Some(report.state.clone());
        log_decisions(&report);
        if let Err(e) = crate::report_json::check_finite(&report) {
            return Err(EngineError::Report(e.to_string()));
        }
        let report = Arc::new(report);
        self.exposition.set_cycle_report(report.clone());
        *self
            .last_report
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Some(report.clone());
        Ok(report)
    }
}

/// What the exposition publishes for one cycle: every decision, plus the inactive variants at
/// their previous target (the core does not analyse them). A variant about which nothing is
/// known yet (metrics unavailable, no replicas seen, never published) gets no series.
fn publication(inventory: &InventorySnapshot, report: &CycleReport) -> Vec<PublishedVariant> {
    let holds: BTreeMap<(&str, &str), u32> = inventory
        .variants
        .iter()
        .map(|v| {
            (
                (v.state.namespace.as_str(), v.state.name.as_str()),
                v.state.hold(),
            )
        })
        .collect();
    let never_set: BTreeMap<(&str, &str), bool> = inventory
        .variants
        .iter()
        .map(|v| {
            (
                (v.state.namespace.as_str(), v.state.name.as_str()),
                v.state.desired_replicas == 0,
            )
        })
        .collect();
    let mut out: Vec<PublishedVariant> = report
        .decisions
        .iter()
        // Nothing known yet (no metrics, no replica count, no previous target): publish no
        // series rather than a 0 that an HPA or KEDA would read as "scale down".
        .filter(|d| {
            !(d.reason == Reason::MetricsUnavailable
                && d.target_replicas == 0
                && never_set
                    .get(&(d.namespace.as_str(), d.variant.as_str()))
                    .copied()
                    .unwrap_or(true))
        })
        .map(|d| {
            let baseline = holds
                .get(&(d.namespace.as_str(), d.variant.as_str()))
                .copied()
                .unwrap_or(d.current_replicas);
            PublishedVariant::from_decision(d, baseline)
        })
        .collect();
    for v in inventory.variants.iter().filter(|v| !v.active) {
        let s = &v.state;
        out.push(
            PublishedVariant::new(
                VariantKey::new(&s.namespace, &s.name),
                &s.accelerator,
                s.current_replicas,
                s.desired_replicas,
                Reason::Steady,
            )
            .with_baseline(s.desired_replicas),
        );
    }
    out
}

fn log_decisions(report: &CycleReport) {
    for d in &report.decisions {
        debug!(
            namespace = %d.namespace,
            variant = %d.variant,
            model = %d.model_id,
            current = d.current_replicas,
            target = d.target_replicas,
            action = d.action.as_str(),
            reason = d.reason.as_str(),
            detail = %d.detail,
            "decision"
        );
    }
    if let Some(t) = &report.timings {
        let total: u64 = t.values().sum();
        debug!(
            duration_ms = total / 1000,
            inventory_us = t.get("inventory").copied().unwrap_or(0),
            collect_us = t.get("collect").copied().unwrap_or(0),
            decide_us = t.get("decide").copied().unwrap_or(0),
            publish_us = t.get("publish").copied().unwrap_or(0),
            actuate_us = t.get("actuate").copied().unwrap_or(0),
            "cycle finished"
        );
    }
}

/// Measures consecutive phases, feeding the phase histogram and the report's timings.
struct PhaseTimer<'a> {
    exposition: &'a Exposition,
    last: Instant,
    laps: BTreeMap<String, u64>,
}

impl<'a> PhaseTimer<'a> {
    fn new(exposition: &'a Exposition) -> Self {
        PhaseTimer {
            exposition,
            last: Instant::now(),
            laps: BTreeMap::new(),
        }
    }

    fn lap(&mut self, phase: CyclePhase) {
        let now = Instant::now();
        let d: Duration = now - self.last;
        self.last = now;
        self.exposition.self_metrics().observe_phase(phase, d);
        self.laps.insert(
            phase.as_str().to_string(),
            u64::try_from(d.as_micros()).unwrap_or(u64::MAX),
        );
    }

    fn into_map(self) -> BTreeMap<String, u64> {
        self.laps
    }
}
