//! The pod-scraping source: vLLM metrics read straight from the pods (spec/collector.md §7).
//!
//! [`ScrapeClient`] fetches one metrics page (`Accept: text/plain;version=0.0.4`, 5 s
//! timeout, 16 MiB cap, optional bearer token); [`ScrapeSource`] scrapes every pod the
//! [`ReplicaDirectory`](crate::ReplicaDirectory) lists, keeps per-pod windows and implements
//! [`MetricsSource`](crate::MetricsSource) with the same snapshot shapes as the Prometheus
//! source. Use [`RoundMode::Stepped`] and [`ScrapeSource::scrape_round`] to drive it from a
//! virtual clock.

mod assemble;
mod client;
mod config;
mod extract;
mod family;
mod pod;
mod source;
mod window;

pub use client::{ACCEPT_TEXT_0_0_4, ScrapeClient, ScrapeError};
pub use config::{
    DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_CONCURRENT_SCRAPES, DEFAULT_SCRAPE_INTERVAL,
    DEFAULT_SCRAPE_TIMEOUT, DEFAULT_TRACKING_IDLE_TIMEOUT, RoundMode, ScrapeClientConfig,
    ScrapeConfig,
};
pub use source::{RoundSummary, ScrapeSource};
