//! Exposition registry of the Workload Variant Autoscaler (spec/exposition.md).
//!
//! One [`Exposition`] per process holds a `prometheus` registry with
//! - the four per-variant families of the seed contract, `inferno_current_replicas`,
//!   `inferno_desired_replicas`, `inferno_desired_ratio` and `inferno_replica_scaling_total`
//!   (or their `wva_*` names, see [`MetricsNaming`]), published atomically once per cycle with
//!   [`Exposition::publish`];
//! - the `wva_*` self-metrics, fed through [`SelfMetrics`];
//! - the last cycle report for `/debug/cycle`, and the liveness and readiness state;
//!
//! and serves them over HTTP with [`Exposition::serve`]: `/metrics` and `/debug/cycle` on the
//! metrics listener (default `0.0.0.0:8080`), `/healthz` and `/readyz` on the probes listener
//! (default `0.0.0.0:8081`). The metrics listener optionally speaks TLS ([`TlsConfig`]: PEM
//! files polled for rotation, or an in-memory self-signed certificate) and requires a static
//! bearer token ([`MetricsAuth::Static`]) or one reviewed by a [`TokenAuthorizer`]
//! ([`MetricsAuth::Delegated`]).
//!
//! The crate depends on no collector or Kubernetes type: the engine adapts the collector's
//! observer callbacks onto [`SelfMetrics`] and hands over the cycle report as JSON or any
//! `serde::Serialize` value ([`Exposition::set_cycle_report`]).
//!
//! ```
//! use wva_core::Reason;
//! use wva_exposition::{Exposition, ExpositionConfig, PublishedVariant, VariantKey};
//!
//! let exposition = Exposition::new(ExpositionConfig::default())?;
//! let key = VariantKey::new("llm-d-sim", "vllm-llama-h100");
//! // First cycle: desired 1, the core's hold value was 1, nothing counted.
//! exposition.publish(&[PublishedVariant::new(key.clone(), "H100", 1, 1, Reason::Steady)
//!     .with_baseline(1)]);
//! // Next cycle: the KV cache saturates, desired goes to 2: one scale_up.
//! let summary = exposition.publish(&[PublishedVariant::new(key, "H100", 1, 2,
//!     Reason::KvCacheSaturation)]);
//! assert_eq!(summary.scaling_events.len(), 1);
//!
//! let text = exposition.encode();
//! assert!(text.contains(
//!     "inferno_desired_replicas{variant_name=\"vllm-llama-h100\",namespace=\"llm-d-sim\",accelerator_type=\"H100\"} 2\n"));
//! assert!(text.contains(
//!     "inferno_replica_scaling_total{variant_name=\"vllm-llama-h100\",namespace=\"llm-d-sim\",direction=\"scale_up\",reason=\"kv_cache_saturation\"} 1\n"));
//! # Ok::<(), wva_exposition::ExpositionError>(())
//! ```

mod config;
mod cycle_report;
mod error;
mod exposition;
mod families;
mod probes;
mod publication;
mod self_metrics;
mod server;
mod snapshot;
mod variant;

pub use config::{BuildInfo, ExpositionConfig, MetricsNaming};
pub use cycle_report::CycleReportSlot;
pub use error::ExpositionError;
pub use exposition::{Exposition, TEXT_CONTENT_TYPE};
pub use families::{CONTROLLER_INSTANCE_LABEL, VariantFamily};
pub use probes::{Health, Readiness, ReadinessCheck, ReadinessReport};
pub use publication::{PublishSummary, ScalingEvent};
pub use self_metrics::{
    AuthResult, CYCLE_BUCKETS, CacheLookup, ConfigMapKind, CyclePhase, CycleTrigger, Outcome,
    QUERY_BUCKETS, ReloadResult, ScalePatchMode, ScalePatchResult, SelfMetrics,
};
pub use server::{
    AuthorizeFuture, BindAddress, DELEGATED_AUTH_TIMEOUT, MetricsAuth, ServerConfig, Servers,
    StaticToken, TOKEN_POLL_INTERVAL, TlsConfig, TokenAuthorizer, TokenVerdict,
};
pub use variant::{
    Direction, PublishedVariant, ScalingReason, UNKNOWN_ACCELERATOR, VariantKey, desired_ratio,
};
