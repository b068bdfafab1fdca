//! Pure decision logic of the Workload Variant Autoscaler (WVA).
//!
//! `wva-core` holds the domain types and the decision logic: no I/O, no async runtime, no clock
//! reads. Time is always an argument, so every decision can be replayed offline.

pub mod decision;
pub mod duration;
pub mod freshness;
pub mod replica;

pub use decision::{Action, Decision, Reason};
pub use duration::format_prometheus_duration;
pub use freshness::{Freshness, FreshnessPolicy, FreshnessPolicyError};
pub use replica::ReplicaMetrics;
