//! The runtime side of wva-k8s: reflectors with stripped projections, ConfigMap hot reload and
//! leader election (spec/k8s.md §3.1, §6.4, §6.5).

pub mod config_reload;
pub mod config_watch;
pub mod leader;
pub mod reflectors;
pub mod strip;
