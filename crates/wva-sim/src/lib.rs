//! vLLM fleet emulator (spec/sim.md).
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod dist;
pub mod duration;
pub mod load;
pub mod rng;
pub mod capacity;
pub mod exposition;
pub mod histogram;
pub mod metrics;
pub mod profile;
pub mod engine;
pub mod config;
pub mod router;
pub mod events;
pub mod sim;
