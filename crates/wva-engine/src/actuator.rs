//! What the engine does with a cycle's decisions besides publishing them.

use futures::future::BoxFuture;
use wva_core::CycleReport;

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
}

/// Publishes metrics only (`--actuation metrics`, standalone mode): HPA or KEDA act on them.
#[derive(Debug, Clone, Copy, Default)]
pub struct MetricsOnly;

impl Actuator for MetricsOnly {
    fn apply<'a>(&'a self, _report: &'a CycleReport) -> BoxFuture<'a, Vec<ActuationError>> {
        Box::pin(async { Vec::new() })
    }
}
