//! Kubernetes glue of the Workload Variant Autoscaler (WVA).
//!
//! The `VariantAutoscaling` CRD types and manifest ([`crd`]), and the pure functions the
//! controller is built from: accelerator resolution ([`accelerator`]), scale targets and the
//! `scaleTargetRef` index ([`target`]), status and conditions ([`status`]), the inventory over
//! store snapshots ([`inventory`]), the GPU inventory for the limiter ([`gpu`]), Event notes
//! ([`events`]), trigger rules ([`triggers`]), scale-from-zero candidates ([`scale_from_zero`]),
//! leader-election parameters ([`lease`]) and the configuration of `wva-manager run`
//! ([`config`]). None of them performs I/O. [`metrics_auth`] reviews `/metrics` bearer tokens
//! with TokenReview + SubjectAccessReview.
//!
//! ```
//! let yaml = wva_k8s::crd::crd_yaml();
//! assert!(yaml.contains("name: variantautoscalings.llmd.ai"));
//! ```

pub mod accelerator;
pub mod conditions;
pub mod config;
pub mod controller;
pub mod crd;
pub mod events;
pub mod gpu;
pub mod handles;
pub mod inventory;
pub mod labels;
pub mod lease;
pub mod metrics_auth;
pub mod runtime;
pub mod scale_from_zero;
pub mod status;
pub mod target;
pub mod triggers;
pub mod workload;

#[cfg(test)]
mod test_fixtures;
