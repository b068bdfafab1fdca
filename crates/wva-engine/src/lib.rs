//! The control loop of the Workload Variant Autoscaler.
//!
//! One cycle: the [`Inventory`] says which variants exist → the collector
//! ([`wva_collector::MetricsSource`]) reads their metrics → [`wva_core::plan`] decides →
//! [`wva_exposition::Exposition`] publishes `inferno_*` → the [`Actuator`] acts. The engine
//! knows no Kubernetes types: wva-k8s, the standalone mode and the demo each implement the two
//! small traits.

pub mod actuator;
pub mod clock;
pub mod engine;
pub mod input;
pub mod inventory;
pub mod observer;
pub mod report_json;
pub mod trigger;

pub use actuator::{ActuationError, Actuator, MetricsOnly};
pub use clock::{Clock, TokioClock};
pub use engine::{Engine, EngineError};
pub use inventory::{Inventory, InventorySnapshot, InventoryVariant};
pub use observer::SelfMetricsObserver;
pub use trigger::{CycleRequester, Schedule};
