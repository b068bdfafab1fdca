//! The running fleet: drives a [`Simulation`] from a clock, serves every pod over HTTP on
//! loopback, writes service discovery files and serves the control API.

use crate::clock::{Clock, ManualClock, RealClock, ScaledClock};
use crate::config::{ConfigError, Fault, FleetConfig, ListenMode};
use crate::events::Event;
use crate::histogram::Histogram;
use crate::load::LoadProfile;
use crate::sd::{Target, file_sd_json, gateway_sd_json, inventory_yaml, write_atomic};
use crate::sim::{FleetSnapshot, PlacedRecord, PodPublish, ReplicaCounts, SimError, Simulation};
use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio_util::sync::CancellationToken;

/// Errors of the running fleet.
#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A fleet operation failed.
    #[error(transparent)]
    Sim(#[from] SimError),
    /// A listener could not be bound.
    #[error("cannot bind {what} on {addr}: {source}")]
    Bind {
        /// Which listener.
        what: &'static str,
        /// The address.
        addr: SocketAddr,
        /// The error.
        source: std::io::Error,
    },
    /// An output file could not be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: String,
        /// The error.
        source: std::io::Error,
    },
    /// `step_to` needs a fleet started with [`ClockMode::Manual`].
    #[error("step_to needs a fleet started with ClockMode::Manual")]
    NotManual,
    /// The fleet has been shut down.
    #[error("the fleet is shut down")]
    ShutDown,
}

/// Which clock drives the fleet.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum ClockMode {
    /// Virtual time = wall time; a background thread ticks.
    #[default]
    Real,
    /// Virtual time = factor × wall time; a background thread ticks.
    Scaled(f64),
    /// Lockstep: nothing moves until [`FleetHandle::step_to`].
    Manual,
}

/// Runtime options that are not part of the YAML config.
#[derive(Debug, Clone, Default)]
pub struct FleetOptions {
    /// Clock.
    pub clock: ClockMode,
    /// Write the pods' file_sd JSON here (rewritten when it changes).
    pub file_sd: Option<PathBuf>,
    /// Write the gateway's one-target file_sd JSON here.
    pub file_sd_gateway: Option<PathBuf>,
    /// Write the standalone variants file (VariantAutoscaling YAML) here.
    pub inventory: Option<PathBuf>,
    /// Control API address (default `<listen.host>:0`).
    pub control_addr: Option<SocketAddr>,
    /// Keep per-request records for [`FleetHandle::take_records`].
    pub keep_records: bool,
}

#[derive(Debug)]
pub(crate) struct PodListener {
    pub addr: SocketAddr,
    cancel: CancellationToken,
}

/// What scrapes and the control API read: the state at the last tick end.
#[derive(Debug, Default)]
pub(crate) struct Published {
    pub pods: BTreeMap<String, Arc<PodPublish>>,
    pub starting: BTreeSet<String>,
    pub addrs: BTreeMap<String, SocketAddr>,
    pub gateway: Vec<(String, u64, u64)>,
    pub snapshot: Option<Arc<FleetSnapshot>>,
}

#[derive(Debug)]
pub(crate) struct Inner {
    pub sim: Mutex<Simulation>,
    pub published: Arc<RwLock<Arc<Published>>>,
    listeners: Mutex<BTreeMap<String, PodListener>>,
    pub shared_addr: Option<SocketAddr>,
    pub host: IpAddr,
    rt: tokio::runtime::Handle,
    pub cancel: CancellationToken,
    pub clock: Arc<dyn Clock>,
    manual: Option<Arc<ManualClock>>,
    opts: FleetOptions,
    pub cfg: FleetConfig,
    pub control_addr: SocketAddr,
    pub gateway_addr: SocketAddr,
    pub scrapes: Arc<AtomicU64>,
    pub tick_hist: Mutex<Histogram>,
    pub lag_us: AtomicU64,
    last_sd: Mutex<(u64, String)>,
    ticker: Mutex<Option<std::thread::JoinHandle<()>>>,
    stopped: AtomicBool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn wall_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Entry point: `Fleet::start(config)`.
#[derive(Debug)]
pub struct Fleet;

impl Fleet {
    /// Starts a fleet with real time and default options (no files written).
    pub async fn start(config: FleetConfig) -> Result<FleetHandle, FleetError> {
        Self::start_with(config, FleetOptions::default()).await
    }

    /// Starts a fleet: validates the config, binds the control, gateway (and shared) listeners,
    /// writes the inventory and starts ticking (except with [`ClockMode::Manual`]).
    pub async fn start_with(
        config: FleetConfig,
        opts: FleetOptions,
    ) -> Result<FleetHandle, FleetError> {
        config.validate()?;
        match rlimit::increase_nofile_limit(u64::MAX) {
            Ok(n) => tracing::info!(nofile = n, "raised the soft RLIMIT_NOFILE"),
            Err(e) => tracing::warn!(error = %e, "could not raise RLIMIT_NOFILE"),
        }
        let mut sim = Simulation::new(config.clone())?;
        let epoch = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        sim.set_epoch_unix(epoch);
        sim.set_wall_ms(wall_ms());
        sim.keep_records(opts.keep_records);
        let host = config.listen.host;
        let total: u32 = config.variants.iter().map(|v| v.replicas).sum();
        let shared = match config.listen.mode {
            ListenMode::PerReplica => false,
            ListenMode::Shared => true,
            ListenMode::Auto => total > 256,
        };
        let bind = |what: &'static str, addr: SocketAddr| async move {
            tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|source| FleetError::Bind { what, addr, source })
        };
        let control = bind(
            "control API",
            opts.control_addr.unwrap_or(SocketAddr::new(host, 0)),
        )
        .await?;
        let gateway = bind("gateway metrics", SocketAddr::new(host, 0)).await?;
        let shared_listener = if shared {
            Some(bind("shared pod listener", SocketAddr::new(host, 0)).await?)
        } else {
            None
        };
        let addr_of = |l: &tokio::net::TcpListener, what: &'static str| {
            l.local_addr().map_err(|source| FleetError::Bind {
                what,
                addr: SocketAddr::new(host, 0),
                source,
            })
        };
        let control_addr = addr_of(&control, "control API")?;
        let gateway_addr = addr_of(&gateway, "gateway metrics")?;
        let shared_addr = match &shared_listener {
            Some(l) => Some(addr_of(l, "shared pod listener")?),
            None => None,
        };
        let (clock, manual): (Arc<dyn Clock>, Option<Arc<ManualClock>>) = match opts.clock {
            ClockMode::Real => (Arc::new(RealClock::new()), None),
            ClockMode::Scaled(k) => (Arc::new(ScaledClock::new(k)), None),
            ClockMode::Manual => {
                let m = Arc::new(ManualClock::new());
                (m.clone(), Some(m))
            }
        };
        if let Some(path) = &opts.inventory {
            write_atomic(path, inventory_yaml(&config).as_bytes()).map_err(|source| {
                FleetError::Write {
                    path: path.display().to_string(),
                    source,
                }
            })?;
        }
        if let Some(path) = &opts.file_sd_gateway {
            write_atomic(
                path,
                gateway_sd_json(gateway_addr, &config.namespace).as_bytes(),
            )
            .map_err(|source| FleetError::Write {
                path: path.display().to_string(),
                source,
            })?;
        }
        let inner = Arc::new(Inner {
            sim: Mutex::new(sim),
            published: Arc::new(RwLock::new(Arc::new(Published::default()))),
            listeners: Mutex::new(BTreeMap::new()),
            shared_addr,
            host,
            rt: tokio::runtime::Handle::current(),
            cancel: CancellationToken::new(),
            clock,
            manual,
            opts,
            cfg: config,
            control_addr,
            gateway_addr,
            scrapes: Arc::new(AtomicU64::new(0)),
            tick_hist: Mutex::new(Histogram::new(
                [
                    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
                ][..]
                    .into(),
            )),
            lag_us: AtomicU64::new(0),
            last_sd: Mutex::new((u64::MAX, String::new())),
            ticker: Mutex::new(None),
            stopped: AtomicBool::new(false),
        });
        inner.after_ticks()?;
        tokio::spawn(crate::control::serve_control(control, inner.clone()));
        tokio::spawn(crate::pods::serve_gateway(gateway, inner.clone()));
        if let Some(l) = shared_listener {
            tokio::spawn(crate::pods::serve_shared(l, inner.clone()));
        }
        if inner.manual.is_none() {
            let weak = Arc::downgrade(&inner);
            let handle = std::thread::Builder::new()
                .name("wva-sim-ticker".into())
                .spawn(move || ticker(weak))
                .map_err(|source| FleetError::Write {
                    path: "ticker thread".into(),
                    source,
                })?;
            *lock(&inner.ticker) = Some(handle);
        }
        Ok(FleetHandle { inner })
    }
}

fn ticker(weak: std::sync::Weak<Inner>) {
    loop {
        let Some(inner) = weak.upgrade() else { return };
        if inner.cancel.is_cancelled() {
            return;
        }
        let target = inner.clock.now().as_micros() as u64;
        let next_due = inner.run_ticks_until(target, 50);
        let speed = inner.clock.speed().unwrap_or(1.0);
        let now = inner.clock.now().as_micros() as u64;
        drop(inner);
        let wait_us = (next_due.saturating_sub(now) as f64 / speed) as u64;
        std::thread::sleep(Duration::from_micros(wait_us.clamp(200, 20_000)));
    }
}

impl Inner {
    /// Runs ticks while a whole tick fits before `target_us` (at most `max` ticks), publishes,
    /// and returns the virtual time at which the next tick is due.
    fn run_ticks_until(&self, target_us: u64, max: u32) -> u64 {
        let started = Instant::now();
        let mut ran = 0;
        let (now, tick) = {
            let mut sim = lock(&self.sim);
            sim.set_wall_ms(wall_ms());
            while sim.now_us() + sim.tick_us() <= target_us && ran < max {
                sim.tick();
                ran += 1;
            }
            (sim.now_us(), sim.tick_us())
        };
        self.lag_us
            .store(target_us.saturating_sub(now), Ordering::Relaxed);
        if ran > 0 {
            if let Err(e) = self.after_ticks() {
                tracing::warn!(error = %e, "fleet outputs not updated");
            }
            let per_tick = started.elapsed().as_secs_f64() / f64::from(ran);
            lock(&self.tick_hist).observe_n(per_tick, u64::from(ran));
        }
        now + tick
    }

    /// Publishes the snapshot, opens and closes pod listeners and rewrites file_sd.
    pub(crate) fn after_ticks(&self) -> Result<(), FleetError> {
        let (pods, starting, gateway, mut snapshot, version) = {
            let sim = lock(&self.sim);
            let pods = sim.publish();
            let snap = sim.snapshot();
            let starting = snap
                .pods
                .iter()
                .filter(|p| p.state == crate::sim::PodState::Starting)
                .map(|p| p.name.clone())
                .collect();
            (
                pods,
                starting,
                sim.gateway_queues(),
                snap,
                sim.live_version(),
            )
        };
        snapshot.lag_s = self.lag_us.load(Ordering::Relaxed) as f64 / 1e6;
        let addrs = self.sync_listeners(&pods);
        let published = Arc::new(Published {
            pods,
            starting,
            addrs,
            gateway,
            snapshot: Some(Arc::new(snapshot)),
        });
        *self
            .published
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = published.clone();
        if let Some(path) = &self.opts.file_sd {
            let mut last = lock(&self.last_sd);
            if last.0 != version || last.1.is_empty() {
                let json = self.file_sd_of(&published);
                if json != last.1 {
                    write_atomic(path, json.as_bytes()).map_err(|source| FleetError::Write {
                        path: path.display().to_string(),
                        source,
                    })?;
                    last.1 = json;
                }
                last.0 = version;
            }
        }
        Ok(())
    }

    fn sync_listeners(
        &self,
        pods: &BTreeMap<String, Arc<PodPublish>>,
    ) -> BTreeMap<String, SocketAddr> {
        if let Some(addr) = self.shared_addr {
            return pods.keys().map(|k| (k.clone(), addr)).collect();
        }
        let mut ls = lock(&self.listeners);
        let gone: Vec<String> = ls
            .keys()
            .filter(|k| !pods.contains_key(*k))
            .cloned()
            .collect();
        for k in gone {
            if let Some(l) = ls.remove(&k) {
                l.cancel.cancel();
            }
        }
        for name in pods.keys() {
            if ls.contains_key(name) {
                continue;
            }
            let bound = std::net::TcpListener::bind(SocketAddr::new(self.host, 0)).and_then(|l| {
                l.set_nonblocking(true)?;
                let addr = l.local_addr()?;
                let _guard = self.rt.enter();
                Ok((tokio::net::TcpListener::from_std(l)?, addr))
            });
            match bound {
                Ok((listener, addr)) => {
                    let cancel = self.cancel.child_token();
                    self.rt.spawn(crate::pods::serve_pod(
                        listener,
                        name.clone(),
                        self.published_reader(),
                        cancel.clone(),
                    ));
                    ls.insert(name.clone(), PodListener { addr, cancel });
                }
                Err(e) => tracing::warn!(pod = %name, error = %e, "cannot bind pod listener"),
            }
        }
        ls.iter().map(|(k, l)| (k.clone(), l.addr)).collect()
    }

    pub(crate) fn published_reader(&self) -> crate::pods::Reader {
        crate::pods::Reader::new(self)
    }

    pub(crate) fn published(&self) -> Arc<Published> {
        self.published
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    pub(crate) fn targets_of(&self, p: &Published) -> Vec<Target> {
        p.pods
            .values()
            .filter_map(|pod| {
                let addr = *p.addrs.get(&pod.name)?;
                Some(Target {
                    pod: pod.name.clone(),
                    variant: pod.variant.clone(),
                    model: pod.model.clone(),
                    namespace: self.cfg.namespace.clone(),
                    addr,
                    path: if self.shared_addr.is_some() {
                        format!("/pods/{}/metrics", pod.name)
                    } else {
                        "/metrics".to_owned()
                    },
                    draining: pod.state == crate::sim::PodState::Draining,
                })
            })
            .collect()
    }

    pub(crate) fn file_sd_of(&self, p: &Published) -> String {
        file_sd_json(
            &self.targets_of(p),
            self.shared_addr.is_some(),
            &self.cfg.extra_target_labels,
        )
    }

    /// Applies a mutation to the simulation and republishes.
    pub(crate) fn mutate<T>(
        &self,
        f: impl FnOnce(&mut Simulation) -> Result<T, SimError>,
    ) -> Result<T, FleetError> {
        if self.stopped.load(Ordering::SeqCst) {
            return Err(FleetError::ShutDown);
        }
        let out = {
            let mut sim = lock(&self.sim);
            sim.set_wall_ms(wall_ms());
            f(&mut sim)?
        };
        self.after_ticks()?;
        Ok(out)
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

/// A handle on a running fleet (`Clone`, `Send + Sync`). Dropping the last handle stops the
/// fleet's listeners and ticker too; [`FleetHandle::shutdown`] does it explicitly and waits.
#[derive(Debug, Clone)]
pub struct FleetHandle {
    inner: Arc<Inner>,
}

impl FleetHandle {
    /// The status snapshot at the last tick end (what `GET /fleet` answers).
    pub fn snapshot(&self) -> FleetSnapshot {
        let p = self.inner.published();
        match &p.snapshot {
            Some(s) => (**s).clone(),
            None => lock(&self.inner.sim).snapshot(),
        }
    }

    /// Sets a variant's replicas (`spec.replicas`); idempotent. Returns the new counts.
    pub fn set_replicas(&self, variant: &str, n: u32) -> Result<ReplicaCounts, FleetError> {
        self.inner.mutate(|s| s.set_replicas(variant, u64::from(n)))
    }

    /// The counts of a variant.
    pub fn counts(&self, variant: &str) -> Result<ReplicaCounts, FleetError> {
        Ok(lock(&self.inner.sim).counts(variant)?)
    }

    /// Kills a pod (a replacement starts unless the variant is scaling down).
    pub fn kill(&self, pod: &str) -> Result<(), FleetError> {
        self.inner.mutate(|s| s.kill(pod))
    }

    /// Replaces a model's load profile from the next tick on.
    pub fn set_load(&self, model: &str, profile: LoadProfile) -> Result<(), FleetError> {
        self.inner.mutate(|s| s.set_load(model, profile))
    }

    /// Current offered rate per model (req/s).
    pub fn load(&self) -> BTreeMap<String, f64> {
        lock(&self.inner.sim).load()
    }

    /// Sets a fault on a pod (`Fault::default()` clears it).
    pub fn fault(&self, pod: &str, fault: Fault) -> Result<(), FleetError> {
        self.inner.mutate(|s| s.fault(pod, fault))
    }

    /// Events with `seq > since`.
    pub fn events_since(&self, since: u64) -> Vec<Event> {
        lock(&self.inner.sim).events_since(since).to_vec()
    }

    /// The live pods (Ready or Draining) as scrape targets, sorted by pod name.
    pub fn targets(&self) -> Vec<Target> {
        let p = self.inner.published();
        self.inner.targets_of(&p)
    }

    /// The file_sd JSON of the live pods (what `--file-sd` holds and `GET /targets` answers).
    pub fn file_sd_json(&self) -> String {
        let p = self.inner.published();
        self.inner.file_sd_of(&p)
    }

    /// The gateway (EPP flow-control) metrics address.
    pub fn gateway_addr(&self) -> SocketAddr {
        self.inner.gateway_addr
    }

    /// The control API address.
    pub fn control_addr(&self) -> SocketAddr {
        self.inner.control_addr
    }

    /// The shared listener's address, when the fleet runs in shared mode.
    pub fn shared_addr(&self) -> Option<SocketAddr> {
        self.inner.shared_addr
    }

    /// The fleet's clock.
    pub fn clock(&self) -> Arc<dyn Clock> {
        self.inner.clock.clone()
    }

    /// The simulation's virtual time (end of the last tick).
    pub fn now(&self) -> Duration {
        Duration::from_micros(lock(&self.inner.sim).now_us())
    }

    /// The configuration the fleet runs.
    pub fn config(&self) -> &FleetConfig {
        &self.inner.cfg
    }

    /// Takes the kept request records (needs `FleetOptions::keep_records`).
    pub fn take_records(&self) -> Vec<PlacedRecord> {
        lock(&self.inner.sim).take_records()
    }

    /// Lockstep: runs whole ticks until the virtual time reaches `at` (rounded up to a tick),
    /// then publishes, so that scrapes and `snapshot()` see the state at that time. Only with
    /// [`ClockMode::Manual`]; runs on a blocking thread.
    pub async fn step_to(&self, at: Duration) -> Result<Duration, FleetError> {
        let manual = self.inner.manual.clone().ok_or(FleetError::NotManual)?;
        if self.inner.stopped.load(Ordering::SeqCst) {
            return Err(FleetError::ShutDown);
        }
        let inner = self.inner.clone();
        let at_us = at.as_micros() as u64;
        let now = tokio::task::spawn_blocking(move || {
            let tick = lock(&inner.sim).tick_us();
            let target = at_us.div_ceil(tick) * tick;
            manual.set(Duration::from_micros(target));
            loop {
                inner.run_ticks_until(target, 1000);
                if lock(&inner.sim).now_us() >= target {
                    break;
                }
            }
            lock(&inner.sim).now_us()
        })
        .await
        .map_err(|_| FleetError::ShutDown)?;
        Ok(Duration::from_micros(now))
    }

    /// Stops ticking and closes every listener; bounded to 5 s.
    pub async fn shutdown(&self) {
        self.inner.stopped.store(true, Ordering::SeqCst);
        self.inner.cancel.cancel();
        let handle = lock(&self.inner.ticker).take();
        if let Some(h) = handle {
            let _ = tokio::time::timeout(
                Duration::from_secs(5),
                tokio::task::spawn_blocking(move || h.join()),
            )
            .await;
        }
    }
}
