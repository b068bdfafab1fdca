//! In-cluster mode of `wva-manager run` (spec/k8s.md §6.6): the Kubernetes client and API
//! discovery ([`client`]) and the wiring of reflectors, ConfigMap reload, leader election,
//! controller and engine ([`wiring`]).

pub mod client;
pub mod wiring;
