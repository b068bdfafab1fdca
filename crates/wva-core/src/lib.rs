//! Pure decision logic of the Workload Variant Autoscaler (WVA).
//!
//! `wva-core` holds the domain types and the decision logic: no I/O, no async runtime, no clock
//! reads. Time is always an argument, so every decision can be replayed offline.
//!
//! The entry point is [`plan`]: it takes a [`CycleInput`] (variants, per-pod metrics,
//! configuration, learned state) and returns a [`CycleReport`] (one [`Decision`] per variant,
//! the per-model analysis and the updated [`CoreState`]).
//!
//! ```
//! let input = wva_core::CycleInput::from_json(r#"{
//!   "config": {},
//!   "variants": [{"name": "llama-a100", "namespace": "team-a", "modelID": "llama",
//!                 "accelerator": "A100", "cost": 10, "currentReplicas": 1, "readyReplicas": 1,
//!                 "desiredReplicas": 1, "gpusPerReplica": 1}],
//!   "replicas": [{"pod": "llama-a100-0", "namespace": "team-a", "variant": "llama-a100",
//!                 "kvCacheUsage": 0.95, "queueLength": 0}]
//! }"#).unwrap();
//! let report = wva_core::plan(&input).unwrap();
//! assert_eq!(report.decisions[0].target_replicas, 2);
//! assert_eq!(report.decisions[0].reason, wva_core::Reason::KvCacheSaturation);
//! ```

pub mod config;
pub mod decision;
pub mod duration;
mod enforcer;
pub mod freshness;
pub mod go_duration;
pub mod input;
pub mod limiter;
mod model;
mod optimizer;
mod plan;
pub mod replica;
pub mod report;
pub mod state;
#[cfg(test)]
mod testkit;
pub mod timestamp;
mod v1;
mod v2;
pub mod variant;
pub mod vllm_args;

pub use config::ConfigIssue;
pub use config::queueing::{QueueingModelEntry, ServiceClass, ServiceTarget, VariantPerformance};
pub use config::saturation::{AnalyzerKind, SaturationConfig, SaturationEntry, SaturationSettings};
pub use config::scale_to_zero::{ScaleToZeroConfig, ScaleToZeroEntry, ScaleToZeroPolicy};
pub use decision::{Action, Decision, Reason};
pub use duration::format_prometheus_duration;
pub use freshness::{Freshness, FreshnessPolicy, FreshnessPolicyError};
pub use go_duration::parse_go_duration;
pub use input::{CycleInput, InputError};
pub use limiter::normalize_accelerator;
pub use plan::{plan, plan_owned};
pub use replica::ReplicaMetrics;
pub use report::{Availability, CycleReport, ModelAnalysis, ModelReport, ReportError};
pub use state::{CapacityRecord, CapacityStore, CoreState, History, HistoryEntry, LearnedFrom};
pub use timestamp::Timestamp;
pub use variant::VariantState;
pub use vllm_args::VllmParams;
