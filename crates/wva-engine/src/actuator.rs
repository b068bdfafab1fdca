//! What the engine does with a cycle's decisions besides publishing them.

use futures::future::BoxFuture;
use wva_core::{CycleReport, VariantState};

/// A failure to act on one variant; reported, never fatal to the cycle.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot actuate variant {namespace}/{variant}: {message}")]
pub struct ActuationError {
    /// Namespace of the variant.
    pub namespace: String,
    /// Variant name.
    pub variant: String,
    /// What went wrong.
    pub message: String,
}

/// Applies a cycle's decisions: status writes and scaling in Kubernetes, fleet resizes in the
/// demo. Errors are per variant and never abort the cycle.
pub trait Actuator: Send + Sync {
    /// Acts on the report's decisions.
    fn apply<'a>(&'a self, report: &'a CycleReport) -> BoxFuture<'a, Vec<ActuationError>>;

    /// Told when a cycle ended without decisions because the core rejected its input (an
    /// inventory bug): `variants` are the variants the cycle covered, `error` says why. Nothing
    /// was published, so every variant keeps its last decision. The default does nothing; the
    /// Kubernetes actuator reports `OptimizationReady=False/OptimizationFailed`.
    fn cycle_failed(&self, _variants: &[VariantState], _error: &str) {}
}

/// Publishes metrics only (`--actuation metrics`, standalone mode): HPA or KEDA act on them.
#[derive(Debug, Clone, Copy, Default)]
pub struct MetricsOnly;

impl Actuator for MetricsOnly {
    fn apply<'a>(&'a self, _report: &'a CycleReport) -> BoxFuture<'a, Vec<ActuationError>> {
        Box::pin(async { Vec::new() })
    }
}
