//! The Prometheus source: HTTP client, cache, refresher and assembly (spec §1–§6).

mod assemble;
mod breaker;
mod cache;
mod client;
mod decode;
mod discover;
mod fetch;
mod refresher;
mod source;
mod startup;

pub use source::PrometheusSource;
