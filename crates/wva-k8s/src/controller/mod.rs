//! The controller side of wva-k8s: the per-VA reconcile, status apply, Events, actuation, and the
//! engine's `Inventory`/`Actuator` implementations over the reflector stores (spec/k8s.md §2–§5).
//!
//! Wiring (leader only): one [`OutcomeBoard`] shared by [`KubeInventory`] (records what each
//! cycle saw), [`KubeActuator`] (stores each cycle's outcomes and requests a `reconcile_all`)
//! and the [`Context`] of the reconciles, which [`run_controller`] drives.

pub mod backoff;
pub mod context;
pub mod kube_inventory;
pub mod outcomes;
pub mod reconcile;
pub mod run;
pub mod wake;
pub mod writes;

pub use context::{Context, FilterSource, Settings};
pub use kube_inventory::{KubeDirectory, KubeInventory};
pub use outcomes::{KubeActuator, OutcomeBoard};
pub use reconcile::{ReconcileError, ScaleFromZero, error_policy, reconcile, scale_from_zero};
pub use run::run_controller;
pub use wake::{WakeOptions, start_scale_from_zero};
pub use writes::scale_from_zero_patch;
