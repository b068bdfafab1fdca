//! End-to-end harness of wva-rs (spec/sim.md §6): a real Prometheus child, an in-process
//! `wva-sim` fleet, the real `wva-manager run --standalone` binary, an HPA emulator that reads
//! `inferno_desired_replicas` back from Prometheus, and observers that record what happened.
//!
//! - [`proc`]: [`proc::ProcessGuard`], a child process killed on drop (panics included).
//! - [`prom`]: the Prometheus child with the five e2e scrape jobs; stop and restart.
//! - [`manager`]: the `wva-manager` child and its endpoints.
//! - [`fleet`]: the default e2e fleet (model, `cheap` and `fast` variants) and capacity helpers.
//! - [`hpa`]: the HPA emulator loop.
//! - [`observe`]: 250 ms samplers of the fleet, the manager and Prometheus.
//! - [`env`]: one scenario's environment, its artifact directory and failure dumps.
//! - [`assert`]: checks that return the first unmet expectation with its last observed value.
//! - [`http`]: a minimal loopback HTTP/1.1 client.
//! - [`expo`]: a small parser of the Prometheus text format.

pub mod assert;
pub mod env;
pub mod expo;
pub mod fleet;
pub mod hpa;
pub mod http;
pub mod manager;
pub mod observe;
pub mod proc;
pub mod prom;

/// Why the harness could not set a scenario up.
#[derive(Debug)]
pub struct HarnessError(pub String);

impl std::fmt::Display for HarnessError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for HarnessError {}

/// Result of a harness operation.
pub type Result<T> = std::result::Result<T, HarnessError>;

/// Builds a [`HarnessError`] from anything printable.
pub fn err(message: impl std::fmt::Display) -> HarnessError {
    HarnessError(message.to_string())
}
