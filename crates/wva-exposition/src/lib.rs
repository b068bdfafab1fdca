//! Exposition registry of the Workload Variant Autoscaler (spec/exposition.md).
