//! `wva-sim`: a vLLM fleet emulator (spec/sim.md).
//!
//! Emulated vLLM replicas run a continuous-batching engine model under a load profile and serve
//! real `vllm:*` metrics (text format 0.0.4) over HTTP on loopback. The fleet has replica
//! lifecycle (startup delay, drain, kill), Prometheus file_sd output, a control API and an HPA
//! emulator. Everything random is a seeded stream, so a run is reproducible from its seed.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use wva_sim::{Fleet, FleetOptions, ClockMode, Scenario};
//! let scenario = Scenario::named("demo")?;
//! let fleet = Fleet::start_with(scenario.config, FleetOptions { clock: ClockMode::Manual, ..Default::default() }).await?;
//! fleet.step_to(std::time::Duration::from_secs(10)).await?; // lockstep: advance, then scrape
//! for t in fleet.targets() {
//!     println!("{} {}", t.pod, t.url());
//! }
//! fleet.set_replicas("llama-8b-l4", 3)?;
//! fleet.shutdown().await;
//! # Ok(()) }
//! ```
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod capacity;
pub mod clock;
pub mod config;
mod control;
pub mod dist;
pub mod duration;
pub mod engine;
pub mod events;
pub mod exposition;
pub mod fleet;
pub mod histogram;
pub mod hpa;
mod http;
pub mod load;
pub mod metrics;
mod pods;
pub mod profile;
pub mod rng;
pub mod router;
pub mod scenario;
pub mod sd;
pub mod sim;

pub use clock::{Clock, ManualClock, RealClock, ScaledClock};
pub use config::{
    Action, ConfigError, Fault, FleetConfig, ModelConfig, ScheduledEvent, ScrapeFault,
    VariantConfig,
};
pub use events::{Event, EventKind};
pub use fleet::{ClockMode, Fleet, FleetError, FleetHandle, FleetOptions};
pub use hpa::{HpaConfig, HpaEmulator};
pub use load::LoadProfile;
pub use scenario::{Scenario, ScenarioError};
pub use sd::Target;
pub use sim::{
    FleetSnapshot, ModelStatus, PodState, PodStatus, ReplicaCounts, RequestTotals, SimError,
    Simulation, VariantStatus,
};
