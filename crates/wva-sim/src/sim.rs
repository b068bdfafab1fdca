//! The whole fleet as a pure state machine: ticks, arrivals, routing, the gateway queue, replica
//! lifecycle and the event log. No I/O and no clock: `crate::fleet` drives it.

use crate::capacity;
use crate::config::{Action, Fault, FleetConfig, ModelConfig, ScheduledEvent, VariantConfig};
use crate::dist::{SizeDist, poisson};
use crate::engine::{EngineParams, PrefixParams, ReplicaEngine, Request, RequestRecord};
use crate::events::{Event, EventKind, EventLog, values};
use crate::exposition::{GaugeOverride, ReplicaLabels, render_replica};
use crate::load::{LoadProfile, Trace};
use crate::metrics::{FinishReason, ReplicaMetrics};
use crate::profile::ReplicaProfile;
use crate::rng::{SimRng, below, stream, unit};
use crate::router::{Candidate, pick};
use serde::Serialize;
use serde_json::json;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashSet, VecDeque};
use std::sync::Arc;

/// Errors of fleet operations.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SimError {
    /// No such variant.
    #[error("unknown variant {0:?}")]
    UnknownVariant(String),
    /// No such model.
    #[error("unknown model {0:?}")]
    UnknownModel(String),
    /// No such live pod.
    #[error("unknown pod {0:?}")]
    UnknownPod(String),
    /// A replica count above `max_replicas`.
    #[error("replicas {requested} exceeds max_replicas {max}")]
    TooManyReplicas {
        /// Requested.
        requested: u64,
        /// Allowed maximum.
        max: u32,
    },
    /// A load profile that does not validate.
    #[error("invalid profile: {0}")]
    InvalidProfile(String),
}

/// Lifecycle state of a pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum PodState {
    /// Created; not listening, not routable, not in service discovery.
    Starting,
    /// Listening, routable, in service discovery.
    Ready,
    /// Not routable; finishing in-flight work; still scraped.
    Draining,
    /// Gone.
    Terminated,
}

impl PodState {
    /// True while the pod is a scrape target (Ready or Draining).
    pub fn is_live(self) -> bool {
        matches!(self, PodState::Ready | PodState::Draining)
    }
}

/// Replica counts of a variant (spec/sim.md §3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct ReplicaCounts {
    /// The Deployment's `spec.replicas`.
    pub spec_replicas: u32,
    /// Starting + Ready (`status.replicas`).
    pub current: u32,
    /// Ready.
    pub ready: u32,
    /// Starting.
    pub starting: u32,
    /// Draining.
    pub draining: u32,
}

/// Request totals of a model (the conservation law of spec/sim.md §8 holds over them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct RequestTotals {
    /// Arrivals offered.
    pub arrivals: u64,
    /// Finished with `stop` or `length`.
    pub completed: u64,
    /// Aborted at drain timeout.
    pub aborted: u64,
    /// Rejected (prompt ≥ max_model_len).
    pub rejected: u64,
    /// Dropped from the gateway queue after `queue_timeout`.
    pub gateway_timeout: u64,
    /// Lost with a killed pod.
    pub lost: u64,
    /// Could not be scheduled (`error`).
    pub errored: u64,
}

/// A finished request with its placement, kept when record keeping is on.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct PlacedRecord {
    /// Model index in the config.
    pub model: usize,
    /// Variant index in the config.
    pub variant: usize,
    /// Original arrival at the gateway (µs).
    pub gateway_arrival_us: u64,
    /// The replica's record.
    pub record: RequestRecord,
}

#[derive(Debug, Clone)]
struct GatewayReq {
    req: Request,
}

#[derive(Debug)]
struct ModelState {
    cfg: ModelConfig,
    prompt: SizeDist,
    output: SizeDist,
    load: LoadProfile,
    load_origin_us: u64,
    trace: Option<Arc<Trace>>,
    arrivals: SimRng,
    next_id: u64,
    gateway: VecDeque<GatewayReq>,
    rr: u64,
    zipf_cdf: Vec<f64>,
    totals: RequestTotals,
    offered_last_tick: u64,
    gateway_arrival: BTreeMap<u64, u64>,
}

#[derive(Debug)]
struct VariantState {
    cfg: VariantConfig,
    model: usize,
    profile: ReplicaProfile,
    spec: u32,
    ordinal: u64,
    template_hash: String,
    ewma_load: f64,
    ewma_tokens: f64,
    routed_tick: u64,
}

/// One pod.
#[derive(Debug)]
struct Pod {
    variant: usize,
    state: PodState,
    created_us: u64,
    ready_at_us: u64,
    since_us: u64,
    drain_deadline_us: u64,
    engine: ReplicaEngine,
    fault: Option<(Fault, Option<u64>)>,
    last_gen_tokens: u64,
}

/// What a scrape of one pod reads: the snapshot at the last tick end.
#[derive(Debug, Clone)]
pub struct PodPublish {
    /// Pod name.
    pub name: String,
    /// Variant name.
    pub variant: String,
    /// Model name.
    pub model: String,
    /// State.
    pub state: PodState,
    /// Metric state.
    pub metrics: ReplicaMetrics,
    /// Identity labels.
    pub labels: ReplicaLabels,
    /// Active fault.
    pub fault: Option<Fault>,
    /// `max_model_len` (for `/v1/models`).
    pub max_model_len: u32,
}

impl PodPublish {
    /// The `/metrics` text (fault overrides applied).
    pub fn render(&self, opts: &crate::exposition::MetricsOptions) -> String {
        let ov = self.fault.map(|f| f.gauges).unwrap_or_default();
        render_replica(&self.metrics, opts, &self.labels, &ov)
    }
}

/// Status of one pod.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PodStatus {
    /// Name.
    pub name: String,
    /// Variant.
    pub variant: String,
    /// State.
    pub state: PodState,
    /// Since when (virtual s).
    pub since_s: f64,
    /// KV usage.
    pub kv: f64,
    /// Waiting.
    pub waiting: u64,
    /// Running.
    pub running: u64,
}

/// Status of one variant.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VariantStatus {
    /// Name.
    pub name: String,
    /// Model.
    pub model: String,
    /// Accelerator.
    pub accelerator: String,
    /// Cost per replica-hour.
    pub cost: f64,
    /// GPUs per replica.
    pub gpus_per_replica: u32,
    /// Counts.
    #[serde(flatten)]
    pub counts: ReplicaCounts,
    /// Routed load (req/s, 10 s EWMA).
    pub load_rps: f64,
    /// Mean KV usage over ready pods.
    pub kv_avg: f64,
    /// Max KV usage over ready pods.
    pub kv_max: f64,
    /// Waiting summed over pods.
    pub waiting: u64,
    /// Running summed over pods.
    pub running: u64,
    /// Generated tokens/s (10 s EWMA).
    pub tokens_per_s: f64,
    /// Per-replica capacity (req/s) at the model's mean sizes.
    pub max_rate_per_replica: f64,
    /// The replica profile in force.
    pub profile: ReplicaProfile,
}

/// Status of one model.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelStatus {
    /// Name.
    pub name: String,
    /// Offered rate λ(now) (req/s).
    pub offered_rate: f64,
    /// Time of the next load change (virtual s), for piecewise-constant profiles.
    pub next_change_s: Option<f64>,
    /// Requests in the gateway queue.
    pub gateway_queue: u64,
    /// Request totals.
    pub totals: RequestTotals,
    /// Mean prompt tokens of the configured distribution.
    pub mean_prompt_tokens: f64,
    /// Mean output tokens of the configured distribution.
    pub mean_output_tokens: f64,
}

/// A status snapshot of the whole fleet (`GET /fleet`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FleetSnapshot {
    /// Virtual time (s).
    pub time_s: f64,
    /// Tick length (s).
    pub tick_s: f64,
    /// How far the tick loop is behind its clock (s); set by the driver.
    pub lag_s: f64,
    /// Last event sequence number.
    pub last_event_seq: u64,
    /// Namespace.
    pub namespace: String,
    /// Models.
    pub models: Vec<ModelStatus>,
    /// Variants.
    pub variants: Vec<VariantStatus>,
    /// Pods (not terminated), sorted by name.
    pub pods: Vec<PodStatus>,
}

const NAME_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

fn alphabet_string(bytes: &[u8], n: usize) -> String {
    bytes
        .iter()
        .take(n)
        .map(|b| NAME_ALPHABET[*b as usize % NAME_ALPHABET.len()] as char)
        .collect()
}

/// The fleet simulation.
#[derive(Debug)]
pub struct Simulation {
    cfg: FleetConfig,
    now_us: u64,
    tick_us: u64,
    wall_ms: u64,
    models: Vec<ModelState>,
    variants: Vec<VariantState>,
    pods: BTreeMap<String, Pod>,
    used_names: HashSet<String>,
    log: EventLog,
    route_rng: SimRng,
    schedule: Vec<ScheduledEvent>,
    next_scheduled: usize,
    keep_records: bool,
    records: Vec<PlacedRecord>,
    epoch_unix: f64,
    live_version: u64,
}

impl Simulation {
    /// Builds the fleet at virtual time 0 and creates the configured replicas.
    /// The config must be valid ([`FleetConfig::validate`]); trace files are read here.
    pub fn new(cfg: FleetConfig) -> Result<Self, SimError> {
        let mut models = Vec::new();
        for m in &cfg.models {
            let trace = m.load.load_trace().map_err(SimError::InvalidProfile)?;
            let zipf_cdf = if m.prefix_cache.enabled {
                let w: Vec<f64> = (1..=m.prefix_cache.groups)
                    .map(|k| 1.0 / f64::from(k).powf(m.prefix_cache.zipf_s))
                    .collect();
                let total: f64 = w.iter().sum();
                w.iter()
                    .scan(0.0, |acc, x| {
                        *acc += x / total;
                        Some(*acc)
                    })
                    .collect()
            } else {
                Vec::new()
            };
            models.push(ModelState {
                prompt: m.prompt_dist(),
                output: m.output_dist(),
                load: m.load.clone(),
                load_origin_us: 0,
                trace,
                arrivals: stream(cfg.seed, &format!("arrivals/{}", m.name)),
                next_id: 0,
                gateway: VecDeque::new(),
                rr: 0,
                zipf_cdf,
                totals: RequestTotals::default(),
                offered_last_tick: 0,
                gateway_arrival: BTreeMap::new(),
                cfg: m.clone(),
            });
        }
        let mut variants = Vec::new();
        for v in &cfg.variants {
            let model = cfg
                .models
                .iter()
                .position(|m| m.name == v.model)
                .ok_or_else(|| SimError::UnknownModel(v.model.clone()))?;
            let h: [u8; 32] = Sha256::digest(
                format!("{}/{}/{}", cfg.namespace, v.name, v.accelerator).as_bytes(),
            )
            .into();
            variants.push(VariantState {
                cfg: v.clone(),
                model,
                profile: v.profile(),
                spec: v.replicas,
                ordinal: 0,
                template_hash: alphabet_string(&h, 10),
                ewma_load: 0.0,
                ewma_tokens: 0.0,
                routed_tick: 0,
            });
        }
        let mut schedule = cfg.events.clone();
        schedule.sort_by_key(|e| e.at);
        let mut sim = Simulation {
            tick_us: cfg.tick.as_micros() as u64,
            now_us: 0,
            wall_ms: 0,
            models,
            variants,
            pods: BTreeMap::new(),
            used_names: HashSet::new(),
            log: EventLog::default(),
            route_rng: stream(cfg.seed, "route"),
            schedule,
            next_scheduled: 0,
            keep_records: false,
            records: Vec::new(),
            epoch_unix: 0.0,
            live_version: 0,
            cfg,
        };
        for vi in 0..sim.variants.len() {
            sim.reconcile(vi);
        }
        // The configured replicas exist before the fleet starts (like a deployed Deployment):
        // they are Ready at time 0; only pods created later go through the startup delay.
        let initial: Vec<(String, usize)> = sim
            .pods
            .iter()
            .map(|(n, p)| (n.clone(), p.variant))
            .collect();
        for (name, vi) in initial {
            if let Some(p) = sim.pods.get_mut(&name) {
                p.state = PodState::Ready;
                p.ready_at_us = 0;
                p.engine = ReplicaEngine::new(*p.engine.params(), 0);
            }
            let vname = sim.variants[vi].cfg.name.clone();
            sim.event(
                EventKind::PodReady,
                Some(&vname),
                Some(&name),
                BTreeMap::new(),
            );
        }
        sim.live_version += 1;
        Ok(sim)
    }

    /// The configuration.
    pub fn config(&self) -> &FleetConfig {
        &self.cfg
    }

    /// Virtual time (µs).
    pub fn now_us(&self) -> u64 {
        self.now_us
    }

    /// Tick length (µs).
    pub fn tick_us(&self) -> u64 {
        self.tick_us
    }

    /// Sets the wall time stamped on the next events (unix ms).
    pub fn set_wall_ms(&mut self, ms: u64) {
        self.wall_ms = ms;
    }

    /// Sets the unix time of virtual 0 (value of the `*_created` gauges).
    pub fn set_epoch_unix(&mut self, secs: f64) {
        self.epoch_unix = secs;
    }

    /// Keeps per-request records for [`Simulation::take_records`].
    pub fn keep_records(&mut self, on: bool) {
        self.keep_records = on;
    }

    /// Takes the kept request records.
    pub fn take_records(&mut self) -> Vec<PlacedRecord> {
        std::mem::take(&mut self.records)
    }

    /// Increments whenever the set of live pods (Ready or Draining) changes.
    pub fn live_version(&self) -> u64 {
        self.live_version
    }

    /// Events with `seq > since`.
    pub fn events_since(&self, since: u64) -> &[Event] {
        self.log.since(since)
    }

    fn event(
        &mut self,
        kind: EventKind,
        variant: Option<&str>,
        pod: Option<&str>,
        v: BTreeMap<String, serde_json::Value>,
    ) {
        self.log
            .push(self.now_us, self.wall_ms, kind, variant, pod, v);
    }

    fn variant_index(&self, name: &str) -> Result<usize, SimError> {
        self.variants
            .iter()
            .position(|v| v.cfg.name == name)
            .ok_or_else(|| SimError::UnknownVariant(name.to_owned()))
    }

    /// Counts of a variant.
    pub fn counts(&self, variant: &str) -> Result<ReplicaCounts, SimError> {
        let vi = self.variant_index(variant)?;
        Ok(self.counts_of(vi))
    }

    fn counts_of(&self, vi: usize) -> ReplicaCounts {
        let mut c = ReplicaCounts {
            spec_replicas: self.variants[vi].spec,
            ..Default::default()
        };
        for p in self.pods.values().filter(|p| p.variant == vi) {
            match p.state {
                PodState::Starting => c.starting += 1,
                PodState::Ready => c.ready += 1,
                PodState::Draining => c.draining += 1,
                PodState::Terminated => {}
            }
        }
        c.current = c.starting + c.ready;
        c
    }

    /// Sets a variant's `spec.replicas` and reconciles at once (new pods Start, victims drain).
    pub fn set_replicas(&mut self, variant: &str, n: u64) -> Result<ReplicaCounts, SimError> {
        let vi = self.variant_index(variant)?;
        if n > u64::from(self.cfg.max_replicas) {
            return Err(SimError::TooManyReplicas {
                requested: n,
                max: self.cfg.max_replicas,
            });
        }
        let n = n as u32;
        let from = self.variants[vi].spec;
        if from != n {
            self.variants[vi].spec = n;
            self.event(
                EventKind::ResizeRequested,
                Some(variant),
                None,
                values([("from", json!(from)), ("to", json!(n))]),
            );
        }
        self.reconcile(vi);
        Ok(self.counts_of(vi))
    }

    fn reconcile(&mut self, vi: usize) {
        let c = self.counts_of(vi);
        let spec = self.variants[vi].spec;
        if c.current < spec {
            for _ in c.current..spec {
                self.create_pod(vi);
            }
        } else if c.current > spec {
            let mut victims: Vec<(u8, std::cmp::Reverse<u64>, String)> = self
                .pods
                .iter()
                .filter(|(_, p)| {
                    p.variant == vi && matches!(p.state, PodState::Starting | PodState::Ready)
                })
                .map(|(n, p)| {
                    (
                        u8::from(p.state != PodState::Starting),
                        std::cmp::Reverse(p.created_us),
                        n.clone(),
                    )
                })
                .collect();
            victims.sort();
            for (_, _, name) in victims.into_iter().take((c.current - spec) as usize) {
                self.remove_or_drain(&name);
            }
        }
    }

    fn remove_or_drain(&mut self, name: &str) {
        let grace = self.cfg.termination_grace.as_micros() as u64;
        let now = self.now_us;
        let Some(pod) = self.pods.get_mut(name) else {
            return;
        };
        let vname = self.variants[pod.variant].cfg.name.clone();
        if pod.state == PodState::Starting {
            self.pods.remove(name);
            self.event(
                EventKind::PodTerminated,
                Some(&vname),
                Some(name),
                values([("reason", json!("scaled_down_before_ready"))]),
            );
        } else {
            pod.state = PodState::Draining;
            pod.since_us = now;
            pod.drain_deadline_us = now + grace;
            self.event(
                EventKind::PodDraining,
                Some(&vname),
                Some(name),
                values([("grace_s", json!(grace as f64 / 1e6))]),
            );
        }
    }

    fn create_pod(&mut self, vi: usize) {
        let (name, jitter_unit) = loop {
            let v = &mut self.variants[vi];
            let ord = v.ordinal;
            v.ordinal += 1;
            let mut rng = stream(self.cfg.seed, &format!("pod/{}/{}", v.cfg.name, ord));
            let bytes: Vec<u8> = (0..5).map(|_| below(&mut rng, 256) as u8).collect();
            let name = format!(
                "{}-decode-{}-{}",
                v.cfg.name,
                v.template_hash,
                alphabet_string(&bytes, 5)
            );
            let j = unit(&mut rng);
            if self.used_names.insert(name.clone()) {
                break (name, j);
            }
        };
        let delay = self.cfg.startup_delay.as_micros() as f64
            + (2.0 * jitter_unit - 1.0) * self.cfg.startup_jitter.as_micros() as f64;
        let target = self.now_us + delay.max(0.0).round() as u64;
        let ready_at = target.div_ceil(self.tick_us) * self.tick_us;
        let v = &self.variants[vi];
        let m = &self.models[v.model];
        let params = EngineParams {
            profile: v.profile,
            preemption: v.cfg.preemption,
            max_model_len: m.cfg.max_model_len,
            prefix: m.cfg.prefix_cache.enabled.then_some(PrefixParams {
                prefix_tokens: m.cfg.prefix_cache.prefix_tokens,
                resident_groups: m.cfg.prefix_cache.resident_groups as usize,
            }),
        };
        let vname = v.cfg.name.clone();
        self.pods.insert(
            name.clone(),
            Pod {
                variant: vi,
                state: PodState::Starting,
                created_us: self.now_us,
                ready_at_us: ready_at,
                since_us: self.now_us,
                drain_deadline_us: u64::MAX,
                engine: ReplicaEngine::new(params, ready_at),
                fault: None,
                last_gen_tokens: 0,
            },
        );
        self.event(
            EventKind::PodCreated,
            Some(&vname),
            Some(&name),
            values([("ready_at_s", json!(ready_at as f64 / 1e6))]),
        );
    }

    /// Kills a pod at once (in-flight requests are lost); the variant creates a replacement
    /// unless it is being scaled down.
    pub fn kill(&mut self, pod: &str) -> Result<(), SimError> {
        let p = self
            .pods
            .remove(pod)
            .ok_or_else(|| SimError::UnknownPod(pod.to_owned()))?;
        let vi = p.variant;
        let lost = p.engine.in_flight();
        self.models[self.variants[vi].model].totals.lost += lost;
        if p.state.is_live() {
            self.live_version += 1;
        }
        let vname = self.variants[vi].cfg.name.clone();
        self.event(
            EventKind::PodKilled,
            Some(&vname),
            Some(pod),
            values([("lost_requests", json!(lost))]),
        );
        self.reconcile(vi);
        Ok(())
    }

    /// Sets (or clears, with the default `Fault`) a fault on a pod.
    pub fn fault(&mut self, pod: &str, fault: Fault) -> Result<(), SimError> {
        let now = self.now_us;
        let p = self
            .pods
            .get_mut(pod)
            .ok_or_else(|| SimError::UnknownPod(pod.to_owned()))?;
        let until = fault.duration.map(|d| now + d.as_micros() as u64);
        p.fault = if fault == Fault::default() {
            None
        } else {
            Some((fault, until))
        };
        let vname = self.variants[p.variant].cfg.name.clone();
        let v = serde_json::to_value(fault).unwrap_or_default();
        self.event(
            EventKind::FaultSet,
            Some(&vname),
            Some(pod),
            values([("fault", v)]),
        );
        Ok(())
    }

    /// Replaces a model's load profile from the next tick on; profile time starts now.
    pub fn set_load(&mut self, model: &str, profile: LoadProfile) -> Result<(), SimError> {
        profile.validate().map_err(SimError::InvalidProfile)?;
        let trace = profile.load_trace().map_err(SimError::InvalidProfile)?;
        let mi = self
            .models
            .iter()
            .position(|m| m.cfg.name == model)
            .ok_or_else(|| SimError::UnknownModel(model.to_owned()))?;
        let now = self.now_us;
        let m = &mut self.models[mi];
        m.load = profile.clone();
        m.trace = trace;
        m.load_origin_us = now;
        let rate = profile.rate_at(0.0);
        self.event(
            EventKind::LoadChanged,
            None,
            None,
            values([
                ("rate", json!(rate)),
                (
                    "profile",
                    serde_json::to_value(&profile).unwrap_or_default(),
                ),
            ]),
        );
        self.log.set_last_model(model);
        Ok(())
    }

    /// Current offered rate per model (req/s).
    pub fn load(&self) -> BTreeMap<String, f64> {
        self.models
            .iter()
            .map(|m| (m.cfg.name.clone(), self.rate_now(m)))
            .collect()
    }

    fn rate_now(&self, m: &ModelState) -> f64 {
        let t = self.now_us.saturating_sub(m.load_origin_us) as f64 / 1e6;
        if m.trace.is_some() {
            return m.offered_last_tick as f64 / (self.tick_us as f64 / 1e6);
        }
        m.load.rate_at(t)
    }

    fn apply_scheduled(&mut self) {
        while self.next_scheduled < self.schedule.len()
            && self.schedule[self.next_scheduled].at.as_micros() as u64 <= self.now_us
        {
            let ev = self.schedule[self.next_scheduled].clone();
            self.next_scheduled += 1;
            // A scheduled action that no longer applies (a pod index past the end) is skipped.
            let _ = match ev.action {
                Action::SetLoad { model, profile } => self.set_load(&model, profile),
                Action::Resize { variant, replicas } => {
                    self.set_replicas(&variant, u64::from(replicas)).map(|_| ())
                }
                Action::KillPod { variant, index } => match self.nth_pod(&variant, index) {
                    Some(p) => self.kill(&p),
                    None => Ok(()),
                },
                Action::Fault {
                    variant,
                    index,
                    fault,
                } => match self.nth_pod(&variant, index) {
                    Some(p) => self.fault(&p, fault),
                    None => Ok(()),
                },
            };
        }
    }

    /// The `index`-th non-draining pod of a variant, pods sorted by name.
    pub fn nth_pod(&self, variant: &str, index: usize) -> Option<String> {
        let vi = self.variant_index(variant).ok()?;
        self.pods
            .iter()
            .filter(|(_, p)| {
                p.variant == vi && matches!(p.state, PodState::Starting | PodState::Ready)
            })
            .nth(index)
            .map(|(n, _)| n.clone())
    }

    /// Advances one tick.
    pub fn tick(&mut self) {
        let t0 = self.now_us;
        let t1 = t0 + self.tick_us;
        self.apply_scheduled();
        // Faults expire; Starting pods become Ready.
        let mut became_ready = Vec::new();
        for (name, p) in self.pods.iter_mut() {
            if let Some((_, Some(until))) = p.fault
                && until <= t0
            {
                p.fault = None;
            }
            if p.state == PodState::Starting && p.ready_at_us <= t0 {
                p.state = PodState::Ready;
                p.since_us = t0;
                became_ready.push((name.clone(), p.variant));
            }
        }
        if !became_ready.is_empty() {
            self.live_version += 1;
        }
        for (name, vi) in became_ready {
            let vname = self.variants[vi].cfg.name.clone();
            self.event(
                EventKind::PodReady,
                Some(&vname),
                Some(&name),
                BTreeMap::new(),
            );
        }
        for v in &mut self.variants {
            v.routed_tick = 0;
        }
        for mi in 0..self.models.len() {
            self.arrivals_and_routing(mi, t0, t1);
        }
        // Engines.
        let keep = self.keep_records;
        let mut finished: Vec<(usize, Vec<RequestRecord>)> = Vec::new();
        for p in self.pods.values_mut() {
            if p.state.is_live() {
                p.engine.run_until(t1);
                let recs = p.engine.take_records();
                if !recs.is_empty() {
                    finished.push((p.variant, recs));
                }
            }
        }
        // Drains.
        let mut terminated = Vec::new();
        for (name, p) in self.pods.iter_mut() {
            if p.state != PodState::Draining {
                continue;
            }
            if p.engine.in_flight() == 0 {
                terminated.push((name.clone(), p.variant, "drained", 0));
            } else if p.drain_deadline_us <= t1 {
                p.engine.abort_all(t1);
                let recs = p.engine.take_records();
                let n = recs.len() as u64;
                finished.push((p.variant, recs));
                terminated.push((name.clone(), p.variant, "grace_expired", n));
            }
        }
        for (vi, recs) in finished {
            let mi = self.variants[vi].model;
            for r in recs {
                let m = &mut self.models[mi];
                match r.reason {
                    FinishReason::Stop | FinishReason::Length | FinishReason::Repetition => {
                        m.totals.completed += 1
                    }
                    FinishReason::Abort => m.totals.aborted += 1,
                    FinishReason::Error => m.totals.errored += 1,
                }
                let gw = m.gateway_arrival.remove(&r.id).unwrap_or(r.arrival_us);
                if keep {
                    self.records.push(PlacedRecord {
                        model: mi,
                        variant: vi,
                        gateway_arrival_us: gw,
                        record: r,
                    });
                }
            }
        }
        self.now_us = t1;
        if !terminated.is_empty() {
            self.live_version += 1;
        }
        for (name, vi, reason, aborted) in terminated {
            self.pods.remove(&name);
            let vname = self.variants[vi].cfg.name.clone();
            self.event(
                EventKind::PodTerminated,
                Some(&vname),
                Some(&name),
                values([("reason", json!(reason)), ("aborted", json!(aborted))]),
            );
        }
        // EWMAs over 10 s.
        let dt = self.tick_us as f64 / 1e6;
        let a = 1.0 - (-dt / 10.0).exp();
        let mut tokens = vec![0u64; self.variants.len()];
        for p in self.pods.values_mut() {
            let g = p.engine.metrics().generation_tokens;
            tokens[p.variant] += g - p.last_gen_tokens;
            p.last_gen_tokens = g;
        }
        for (v, tok) in self.variants.iter_mut().zip(tokens) {
            v.ewma_load += a * (v.routed_tick as f64 / dt - v.ewma_load);
            v.ewma_tokens += a * (tok as f64 / dt - v.ewma_tokens);
        }
    }

    fn arrivals_and_routing(&mut self, mi: usize, t0: u64, t1: u64) {
        let tick_us = self.tick_us;
        let seed = self.cfg.seed;
        // New arrivals of this tick.
        let mut arrivals: Vec<(u64, Option<u32>, Option<u32>)> = Vec::new();
        {
            let m = &mut self.models[mi];
            let origin = m.load_origin_us;
            if let Some(trace) = &m.trace {
                for (at, e) in trace.between(t0.saturating_sub(origin), t1.saturating_sub(origin)) {
                    arrivals.push((origin + at, e.prompt_tokens, e.output_tokens));
                }
            } else {
                let a = t0.saturating_sub(origin) as f64 / 1e6;
                let b = t1.saturating_sub(origin) as f64 / 1e6;
                let lambda = m.load.integral(a, b);
                let n = poisson(&mut m.arrivals, lambda);
                let mut offs: Vec<u64> = (0..n)
                    .map(|_| (unit(&mut m.arrivals) * tick_us as f64) as u64)
                    .collect();
                offs.sort_unstable();
                arrivals.extend(offs.into_iter().map(|o| (t0 + o, None, None)));
            }
            m.offered_last_tick = arrivals.len() as u64;
        }
        let mut new_reqs = Vec::with_capacity(arrivals.len());
        for (at, pi, po) in arrivals {
            let m = &mut self.models[mi];
            let id = m.next_id;
            m.next_id += 1;
            m.totals.arrivals += 1;
            let mut rng = stream(seed, &format!("request/{}/{}", m.cfg.name, id));
            let i = pi.unwrap_or_else(|| m.prompt.sample(&mut rng)).max(1);
            let o_want = po.unwrap_or_else(|| m.output.sample(&mut rng)).max(1);
            if i >= m.cfg.max_model_len {
                m.totals.rejected += 1;
                continue;
            }
            let cap = m.cfg.max_tokens.min(m.cfg.max_model_len - i).max(1);
            let group = if m.zipf_cdf.is_empty() {
                None
            } else {
                let u = unit(&mut rng);
                Some(
                    m.zipf_cdf
                        .partition_point(|&c| c < u)
                        .min(m.zipf_cdf.len() - 1) as u32,
                )
            };
            new_reqs.push(Request {
                id,
                arrival_us: at,
                prompt_tokens: i,
                output_tokens: o_want.min(cap),
                capped: o_want > cap,
                prefix_group: group,
            });
        }
        // Candidates: ready pods of every variant of the model, sorted by name.
        let mut names: Vec<String> = Vec::new();
        let mut cands: Vec<Candidate> = Vec::new();
        for (n, p) in &self.pods {
            if p.state == PodState::Ready && self.variants[p.variant].model == mi {
                names.push(n.clone());
                let e = &p.engine;
                cands.push(Candidate {
                    waiting: e.waiting(),
                    kv: e.kv_usage(),
                    running: e.running(),
                    max_num_seqs: e.params().profile.max_num_seqs,
                    routed: 0,
                });
            }
        }
        let timeout = self.cfg.gateway.queue_timeout.as_micros() as u64;
        let flow = self.cfg.gateway.flow_control;
        let policy = self.cfg.routing;
        // Gateway queue first (FIFO), dropping what waited too long, then the new arrivals.
        let mut queue: VecDeque<GatewayReq> = std::mem::take(&mut self.models[mi].gateway);
        let mut held = VecDeque::new();
        let mut holding = false;
        let mut route_one = |sim: &mut Simulation,
                             mut g: GatewayReq,
                             held: &mut VecDeque<GatewayReq>,
                             holding: &mut bool| {
            if *holding || cands.is_empty() || (flow && cands.iter().all(Candidate::saturated)) {
                *holding = true;
                held.push_back(g);
                return;
            }
            let m = &mut sim.models[mi];
            let Some(k) = pick(policy, &cands, &mut m.rr, &mut sim.route_rng) else {
                held.push_back(g);
                return;
            };
            cands[k].routed += 1;
            let gw = g.req.arrival_us;
            g.req.arrival_us = gw.max(t0);
            if gw != g.req.arrival_us {
                m.gateway_arrival.insert(g.req.id, gw);
            }
            if let Some(p) = sim.pods.get_mut(&names[k]) {
                sim.variants[p.variant].routed_tick += 1;
                p.engine.enqueue(g.req);
            }
        };
        while let Some(g) = queue.pop_front() {
            if t0.saturating_sub(g.req.arrival_us) > timeout {
                self.models[mi].totals.gateway_timeout += 1;
                continue;
            }
            route_one(self, g, &mut held, &mut holding);
        }
        for r in new_reqs {
            route_one(self, GatewayReq { req: r }, &mut held, &mut holding);
        }
        self.models[mi].gateway = held;
    }

    /// Per-model status.
    pub fn model_status(&self) -> Vec<ModelStatus> {
        self.models
            .iter()
            .map(|m| {
                let t = self.now_us.saturating_sub(m.load_origin_us) as f64 / 1e6;
                ModelStatus {
                    name: m.cfg.name.clone(),
                    offered_rate: self.rate_now(m),
                    next_change_s: m
                        .load
                        .next_change(t)
                        .map(|x| x + m.load_origin_us as f64 / 1e6),
                    gateway_queue: m.gateway.len() as u64,
                    totals: m.totals,
                    mean_prompt_tokens: m.prompt.mean(),
                    mean_output_tokens: m.output.mean(),
                }
            })
            .collect()
    }

    /// In-flight requests of a model: gateway queue plus every pod's pending, waiting and running.
    pub fn in_flight(&self, model: usize) -> u64 {
        let pods: u64 = self
            .pods
            .values()
            .filter(|p| self.variants[p.variant].model == model)
            .map(|p| p.engine.in_flight())
            .sum();
        pods + self.models.get(model).map_or(0, |m| m.gateway.len() as u64)
    }

    /// The status snapshot (lag 0; the driver fills it in).
    pub fn snapshot(&self) -> FleetSnapshot {
        let mut variants = Vec::new();
        for (vi, v) in self.variants.iter().enumerate() {
            let mut kv_sum = 0.0;
            let mut kv_max: f64 = 0.0;
            let mut ready = 0;
            let (mut waiting, mut running) = (0, 0);
            for p in self.pods.values().filter(|p| p.variant == vi) {
                if p.state == PodState::Ready {
                    kv_sum += p.engine.kv_usage();
                    kv_max = kv_max.max(p.engine.kv_usage());
                    ready += 1;
                }
                if p.state.is_live() {
                    waiting += p.engine.waiting();
                    running += p.engine.running();
                }
            }
            let m = &self.models[v.model];
            variants.push(VariantStatus {
                name: v.cfg.name.clone(),
                model: v.cfg.model.clone(),
                accelerator: v.cfg.accelerator.clone(),
                cost: v.profile.cost,
                gpus_per_replica: v.cfg.gpus_per_replica,
                counts: self.counts_of(vi),
                load_rps: v.ewma_load,
                kv_avg: if ready > 0 {
                    kv_sum / f64::from(ready)
                } else {
                    0.0
                },
                kv_max,
                waiting,
                running,
                tokens_per_s: v.ewma_tokens,
                max_rate_per_replica: capacity::max_rate(
                    &v.profile,
                    m.prompt.mean(),
                    m.output.mean(),
                ),
                profile: v.profile,
            });
        }
        let pods = self
            .pods
            .iter()
            .map(|(n, p)| PodStatus {
                name: n.clone(),
                variant: self.variants[p.variant].cfg.name.clone(),
                state: p.state,
                since_s: p.since_us as f64 / 1e6,
                kv: p.engine.kv_usage(),
                waiting: p.engine.waiting(),
                running: p.engine.running(),
            })
            .collect();
        FleetSnapshot {
            time_s: self.now_us as f64 / 1e6,
            tick_s: self.tick_us as f64 / 1e6,
            lag_s: 0.0,
            last_event_seq: self.log.last_seq(),
            namespace: self.cfg.namespace.clone(),
            models: self.model_status(),
            variants,
            pods,
        }
    }

    /// Scrape snapshots of the live pods (Ready or Draining), by name.
    pub fn publish(&self) -> BTreeMap<String, Arc<PodPublish>> {
        self.pods
            .iter()
            .filter(|(_, p)| p.state.is_live())
            .map(|(n, p)| {
                let v = &self.variants[p.variant];
                let m = &self.models[v.model];
                let publish = PodPublish {
                    name: n.clone(),
                    variant: v.cfg.name.clone(),
                    model: m.cfg.name.clone(),
                    state: p.state,
                    metrics: p.engine.metrics().clone(),
                    labels: ReplicaLabels {
                        model_name: m.cfg.name.clone(),
                        namespace: self.cfg.namespace.clone(),
                        pod: n.clone(),
                        block_size: v.profile.kv.block_size,
                        num_gpu_blocks: v.profile.kv.num_gpu_blocks,
                        enable_prefix_caching: m.cfg.prefix_cache.enabled,
                        created_unix: self.epoch_unix + p.created_us as f64 / 1e6,
                    },
                    fault: p.fault.map(|f| f.0),
                    max_model_len: m.cfg.max_model_len,
                };
                (n.clone(), Arc::new(publish))
            })
            .collect()
    }

    /// Gateway queue per model: (model, requests, prompt tokens).
    pub fn gateway_queues(&self) -> Vec<(String, u64, u64)> {
        self.models
            .iter()
            .map(|m| {
                (
                    m.cfg.name.clone(),
                    m.gateway.len() as u64,
                    m.gateway
                        .iter()
                        .map(|g| u64::from(g.req.prompt_tokens))
                        .sum(),
                )
            })
            .collect()
    }

    /// SHA-256 over every live pod's `/metrics` text and the event log without wall times: the
    /// determinism contract of spec/sim.md §2.1.
    pub fn digest(&self) -> String {
        let mut h = Sha256::new();
        h.update(self.now_us.to_le_bytes());
        for (n, p) in self.publish() {
            h.update(n.as_bytes());
            h.update(p.render(&self.cfg.metrics).as_bytes());
        }
        for e in self.log.since(0) {
            h.update(e.deterministic_line().as_bytes());
        }
        let out: [u8; 32] = h.finalize().into();
        out.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Gauge override helper for tests: the fault of a pod.
    pub fn pod_fault(&self, pod: &str) -> Option<GaugeOverride> {
        self.pods.get(pod).and_then(|p| p.fault.map(|f| f.0.gauges))
    }
}

#[cfg(test)]
#[path = "sim_tests.rs"]
pub(crate) mod tests;
