//! The registry handle the engine publishes into once per cycle.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use prometheus::Registry;
use serde::Serialize;

use crate::config::{ExpositionConfig, MetricsNaming};
use crate::cycle_report::CycleReportSlot;
use crate::error::ExpositionError;
use crate::families::CONTROLLER_INSTANCE_LABEL;
use crate::probes::{Health, Readiness};
use crate::publication::{PublishSummary, Publisher};
use crate::self_metrics::SelfMetrics;
use crate::snapshot::{SharedSnapshot, VariantCollector};
use crate::variant::{PublishedVariant, VariantKey};

/// `Content-Type` of `/metrics`: the Prometheus text format 0.0.4.
pub const TEXT_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The process's exposition: one `prometheus` registry with the per-variant families and the
/// self-metrics, the last cycle report and the probe state. Cheap to clone; all clones share state.
#[derive(Clone)]
pub struct Exposition {
    inner: Arc<Inner>,
}

struct Inner {
    registry: Registry,
    naming: MetricsNaming,
    publisher: Publisher,
    snapshot: SharedSnapshot,
    self_metrics: SelfMetrics,
    cycle_report: CycleReportSlot,
    health: Health,
    readiness: Readiness,
    leader: AtomicBool,
}

impl std::fmt::Debug for Exposition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Exposition")
            .field("naming", &self.inner.naming)
            .field("leader", &self.is_leader())
            .finish_non_exhaustive()
    }
}

impl Exposition {
    /// Builds the registry: per-variant families (empty until the first publication), every
    /// self-metric, `wva_build_info` = 1 and `wva_is_leader`.
    pub fn new(config: ExpositionConfig) -> Result<Self, ExpositionError> {
        let labels = config.instance().map(|instance| {
            HashMap::from([(CONTROLLER_INSTANCE_LABEL.to_owned(), instance.to_owned())])
        });
        let registry =
            Registry::new_custom(None, labels).map_err(|source| ExpositionError::Register {
                family: CONTROLLER_INSTANCE_LABEL.to_owned(),
                source,
            })?;
        let shared = SharedSnapshot::default();
        let collector = VariantCollector::new(config.naming)?;
        registry
            .register(Box::new(collector))
            .map_err(|source| ExpositionError::Register {
                family: format!("{}_*", config.naming),
                source,
            })?;
        let self_metrics = SelfMetrics::register(&registry, &config.build_info)?;
        let leader = !config.leader_elect;
        self_metrics.set_leader(leader);
        Ok(Exposition {
            inner: Arc::new(Inner {
                registry,
                naming: config.naming,
                publisher: Publisher::new(shared.clone(), config.naming)
                    .with_instance(config.instance().map(str::to_owned)),
                snapshot: shared,
                self_metrics,
                cycle_report: CycleReportSlot::default(),
                health: Health::default(),
                readiness: Readiness::default(),
                leader: AtomicBool::new(leader),
            }),
        })
    }

    /// Publishes the complete set of variants of one cycle atomically: gauges set, the scaling
    /// counter incremented once per real change of desired replicas, and every series of a
    /// variant absent from `variants` removed (its counter baseline forgotten).
    pub fn publish(&self, variants: &[PublishedVariant]) -> PublishSummary {
        self.inner.publisher.publish(variants)
    }

    /// Publishes one variant between cycles (scale from zero) through the same lock and counter
    /// rule; other variants are left as they are.
    pub fn publish_variant(&self, variant: &PublishedVariant) -> PublishSummary {
        self.inner.publisher.publish_one(variant)
    }

    /// Removes every series of a deleted variant at once; `true` if it was published.
    pub fn remove_variant(&self, key: &VariantKey) -> bool {
        self.inner.publisher.remove(key)
    }

    /// Removes every per-variant series (followers publish none).
    pub fn clear_variants(&self) {
        self.inner.publisher.clear();
    }

    /// The `wva_*` self-metrics.
    pub fn self_metrics(&self) -> &SelfMetrics {
        &self.inner.self_metrics
    }

    /// Records a leadership change: sets `wva_is_leader`; on loss clears the per-variant series
    /// and makes `/debug/cycle` answer `not the leader`.
    pub fn set_leader(&self, leader: bool) {
        self.inner.leader.store(leader, Ordering::SeqCst);
        self.inner.self_metrics.set_leader(leader);
        if !leader {
            self.clear_variants();
        }
    }

    /// Whether this process currently leads.
    pub fn is_leader(&self) -> bool {
        self.inner.leader.load(Ordering::SeqCst)
    }

    /// Stores the last cycle report, already serialised as JSON, for `/debug/cycle`.
    pub fn set_cycle_report_json(&self, json: impl Into<String>) {
        self.inner.cycle_report.set_json(json);
    }

    /// Stores a shared handle on the last cycle report for `/debug/cycle`, which serialises it
    /// on request (no text copy is kept).
    pub fn set_cycle_report<T: Serialize + Send + Sync + 'static>(&self, report: Arc<T>) {
        self.inner.cycle_report.set(report);
    }

    /// The last cycle report as compact (or, with `pretty`, indented) JSON, if a cycle has
    /// completed.
    pub fn cycle_report_json(&self, pretty: bool) -> Option<Result<bytes::Bytes, ExpositionError>> {
        self.inner.cycle_report.render(pretty)
    }

    /// Liveness state for `/healthz`.
    pub fn health(&self) -> &Health {
        &self.inner.health
    }

    /// Readiness checks for `/readyz`.
    pub fn readiness(&self) -> &Readiness {
        &self.inner.readiness
    }

    /// The naming mode of the per-variant families.
    pub fn naming(&self) -> MetricsNaming {
        self.inner.naming
    }

    /// The underlying registry, to register a caller's own collectors next to ours.
    pub fn registry(&self) -> &Registry {
        &self.inner.registry
    }

    /// The whole registry in the Prometheus text format 0.0.4 (what `/metrics` serves).
    pub fn encode(&self) -> String {
        let families = self.inner.registry.gather();
        let mut buf = String::new();
        self.inner.snapshot.load().encode_with(&families, &mut buf);
        buf
    }
}
