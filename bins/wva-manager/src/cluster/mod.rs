//! In-cluster mode of `wva-manager run` (spec/k8s.md §6.6): the Kubernetes client and API
//! discovery; the wiring of reflectors, controller and engine comes here.

pub mod client;
