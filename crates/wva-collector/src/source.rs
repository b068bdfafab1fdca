//! The object-safe source trait the engine holds as `Arc<dyn MetricsSource>` (spec §8).

use std::sync::Arc;

use futures::future::BoxFuture;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::model::{CollectRequest, ModelKey, ModelRequest};
use crate::snapshot::CollectedSnapshot;
use crate::stats::CollectorStats;

/// A source of per-replica vLLM metrics: Prometheus or direct pod scraping.
pub trait MetricsSource: Send + Sync {
    /// `"prometheus"` or `"scrape"`.
    fn name(&self) -> &'static str;

    /// Collects every requested model (and tracks it). Never fails or panics; returns within the
    /// source's collect timeout, with unavailable models carrying their errors.
    fn collect<'a>(&'a self, request: &'a CollectRequest) -> BoxFuture<'a, CollectedSnapshot>;

    /// Registers models for background refresh.
    fn track(&self, models: &[ModelRequest]);

    /// Stops tracking a model and drops its last-good copy.
    fn untrack(&self, key: &ModelKey);

    /// A snapshot of the counters.
    fn stats(&self) -> CollectorStats;

    /// Starts the background refresher; it stops when `shutdown` fires, within 5 s.
    fn spawn_background(self: Arc<Self>, shutdown: CancellationToken) -> JoinHandle<()>;
}
