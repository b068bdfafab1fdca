//! PromQL collector and cache for vLLM metrics (spec/collector.md).
//!
//! Each cycle the engine asks a [`MetricsSource`] for a [`CollectedSnapshot`]: the per-replica
//! vLLM metrics of every tracked model, each value with its real age and freshness class.
//! `PrometheusSource` reads them from Prometheus with one batched query per metric for all
//! models, a single-flight TTL cache and a background refresher.
#![warn(missing_docs)]

pub mod catalogue;
pub mod config;
pub mod directory;
pub mod error;
pub mod model;
pub mod observer;
pub mod prometheus;
pub mod secret;
pub mod snapshot;
pub mod source;
pub mod stats;
pub mod tls;

mod serde_secs;

pub use catalogue::{CatalogueConfig, QueryCatalogue, QueryGroup, QueryName};
pub use config::{BreakerConfig, CacheConfig, PrometheusConfig, RetryConfig};
pub use directory::{PodNameDirectory, ReplicaDirectory};
pub use error::CollectorError;
pub use model::{
    CollectRequest, Endpoint, ModelKey, ModelRequest, ReplicaTarget, Scheme, VariantRef,
};
pub use observer::{CacheOutcome, CollectorObserver, QueryEvent};
pub use prometheus::PrometheusSource;
pub use secret::{Secret, TokenProvider, TokenSource};
pub use snapshot::{
    AbsentReason, Availability, CacheConfigInfo, CollectedSnapshot, DeploymentReplicas, Field,
    Measured, ModelSnapshot, QueryOutcome, QueryReport, ReplicaRecord, SchedulerQueue,
};
pub use source::MetricsSource;
pub use stats::{BreakerState, CollectorStats, DroppedSamples, QueryStats};
pub use tls::TlsOptions;
pub use wva_core::{Freshness, FreshnessPolicy};

pub mod parse;
pub use parse::parse_exposition;
pub mod scrape;
pub use scrape::{ScrapeClient, ScrapeConfig, ScrapeSource};
