//! The `VariantAutoscaling` CRD: Rust types, schema and the generated manifest.

mod condition_schema;
mod generate;
mod types;

pub use generate::{CRD_FILE, CRD_HEADER, crd, crd_yaml};
pub use types::{
    ActuationStatus, DEFAULT_VARIANT_COST, OptimizedAlloc, ScaleTargetRef, VariantAutoscaling,
    VariantAutoscalingSpec, VariantAutoscalingStatus,
};
