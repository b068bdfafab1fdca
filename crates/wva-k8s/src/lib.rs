//! Kubernetes glue of the Workload Variant Autoscaler.

pub mod crd;
