//! PromQL collector and cache for vLLM metrics (spec/collector.md).
//!
//! Each cycle the engine asks a [`MetricsSource`] for a [`CollectedSnapshot`]: the per-replica
//! vLLM metrics of every tracked model, each value with its real age and freshness class.
//! [`PrometheusSource`] reads them from Prometheus with one batched query per metric for all
//! models, a single-flight TTL cache and a background refresher.
//!
//! The query catalogue is pure and can be used on its own; one batch covers every model:
//!
//! ```
//! use wva_collector::catalogue::TrackedSet;
//! use wva_collector::{CatalogueConfig, ModelKey, ModelRequest, QueryCatalogue, QueryName};
//!
//! let catalogue = QueryCatalogue::new(CatalogueConfig::default());
//! let tracked = TrackedSet::from_requests(&[
//!     ModelRequest::new(ModelKey::new("team-a", "meta/llama-3.1-8b")),
//!     ModelRequest::new(ModelKey::new("team-b", "a.b|c\\d\"e")),
//! ]);
//! let plan = catalogue.plan(&tracked);
//! assert_eq!(plan.batches.len(), 1);
//! assert_eq!(plan.queries.len(), 11); // one query per metric, not per model
//! let kv = plan.queries.iter().find(|q| q.name == QueryName::KvCacheUsage).unwrap();
//! assert_eq!(
//!     &*kv.text,
//!     "max by (namespace, model_name, pod) (max_over_time(vllm:kv_cache_usage_perc\
//!      {namespace=~\"team-a|team-b\",model_name=~\"a\\\\.b\\\\|c\\\\\\\\d\\\"e|meta/llama-3\\\\.1-8b\"}[1m]))"
//! );
//! ```
//!
//! A [`PrometheusSource`] is built from a [`PrometheusConfig`], a [`CatalogueConfig`], a
//! [`CacheConfig`] and the caller's [`ReplicaDirectory`]; see `examples/prometheus_collect.rs`.
#![warn(missing_docs)]

pub mod catalogue;
pub mod config;
pub mod directory;
pub mod error;
pub mod model;
pub mod observer;
pub mod prometheus;
pub mod replicas;
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
pub use replicas::Replicas;
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
