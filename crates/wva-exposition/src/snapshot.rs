//! The immutable per-variant snapshot and the `prometheus` collector that renders it.
//!
//! A scrape reads whichever snapshot is current, so it sees one publication or the next, never a
//! mix. Label pairs are built in the seed's order (the crate's `*Vec` types would sort them).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, PoisonError, RwLock};

use prometheus::core::{Collector, Desc};
use prometheus::proto::{Counter, Gauge, LabelPair, Metric, MetricFamily, MetricType};

use crate::config::MetricsNaming;
use crate::error::ExpositionError;
use crate::families::VariantFamily;
use crate::variant::{Direction, ScalingReason, VariantKey, desired_ratio};

/// Gauge values of one variant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct GaugeRow {
    /// `accelerator_type` label value.
    pub(crate) accelerator_type: String,
    /// `*_current_replicas`.
    pub(crate) current: u32,
    /// `*_desired_replicas`.
    pub(crate) desired: u32,
}

/// One publication's values, never mutated once stored.
#[derive(Debug, Default)]
pub(crate) struct Snapshot {
    /// Gauge rows by variant.
    pub(crate) gauges: BTreeMap<VariantKey, GaugeRow>,
    /// Cumulative scaling counters.
    pub(crate) counters: BTreeMap<(VariantKey, Direction, ScalingReason), u64>,
}

/// The current snapshot, swapped with a single store.
#[derive(Debug, Clone, Default)]
pub(crate) struct SharedSnapshot(Arc<RwLock<Arc<Snapshot>>>);

impl SharedSnapshot {
    /// The current snapshot.
    pub(crate) fn load(&self) -> Arc<Snapshot> {
        Arc::clone(&self.0.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// Replaces the current snapshot.
    pub(crate) fn store(&self, next: Arc<Snapshot>) {
        *self.0.write().unwrap_or_else(PoisonError::into_inner) = next;
    }
}

/// Renders the snapshot as the per-variant families of the configured naming mode.
pub(crate) struct VariantCollector {
    shared: SharedSnapshot,
    prefixes: &'static [&'static str],
    descs: Vec<Desc>,
}

impl VariantCollector {
    /// A collector over `shared` publishing under the names of `naming`.
    pub(crate) fn new(
        shared: SharedSnapshot,
        naming: MetricsNaming,
    ) -> Result<Self, ExpositionError> {
        let prefixes = naming.prefixes();
        let mut descs = Vec::new();
        for prefix in prefixes {
            for family in VariantFamily::ALL {
                let name = family.name(prefix);
                let labels = family.labels().iter().map(|l| (*l).to_owned()).collect();
                let desc = Desc::new(
                    name.clone(),
                    family.help().to_owned(),
                    labels,
                    HashMap::new(),
                )
                .map_err(|source| ExpositionError::Register {
                    family: name,
                    source,
                })?;
                descs.push(desc);
            }
        }
        Ok(VariantCollector {
            shared,
            prefixes,
            descs,
        })
    }
}

/// A label pair from borrowed name and value.
fn pair(name: &str, value: &str) -> LabelPair {
    let mut label = LabelPair::default();
    label.set_name(name.to_owned());
    label.set_value(value.to_owned());
    label
}

/// The seed's gauge labels of one variant.
fn gauge_labels(key: &VariantKey, row: &GaugeRow) -> Vec<LabelPair> {
    vec![
        pair("variant_name", &key.name),
        pair("namespace", &key.namespace),
        pair("accelerator_type", &row.accelerator_type),
    ]
}

/// A gauge sample.
fn gauge(labels: Vec<LabelPair>, value: f64) -> Metric {
    let mut g = Gauge::default();
    g.set_value(value);
    let mut m = Metric::from_label(labels);
    m.set_gauge(g);
    m
}

/// A family of the given type, name and help holding `metrics`.
fn family(name: String, help: &str, kind: MetricType, metrics: Vec<Metric>) -> MetricFamily {
    let mut mf = MetricFamily::default();
    mf.set_name(name);
    mf.set_help(help.to_owned());
    mf.set_field_type(kind);
    mf.set_metric(metrics);
    mf
}

/// The samples of one family from one snapshot.
fn samples(snapshot: &Snapshot, which: VariantFamily) -> Vec<Metric> {
    match which {
        VariantFamily::ReplicaScalingTotal => snapshot
            .counters
            .iter()
            .map(|((key, direction, reason), value)| {
                let mut c = Counter::default();
                // Counter values stay far below 2^53, where u64 -> f64 is exact.
                c.set_value(*value as f64);
                let mut m = Metric::from_label(vec![
                    pair("variant_name", &key.name),
                    pair("namespace", &key.namespace),
                    pair("direction", direction.as_str()),
                    pair("reason", reason.as_str()),
                ]);
                m.set_counter(c);
                m
            })
            .collect(),
        gauge_family => snapshot
            .gauges
            .iter()
            .map(|(key, row)| {
                let value = match gauge_family {
                    VariantFamily::CurrentReplicas => f64::from(row.current),
                    VariantFamily::DesiredReplicas => f64::from(row.desired),
                    _ => desired_ratio(row.current, row.desired),
                };
                gauge(gauge_labels(key, row), value)
            })
            .collect(),
    }
}

impl Collector for VariantCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let snapshot = self.shared.load();
        let mut out = Vec::with_capacity(self.prefixes.len() * VariantFamily::ALL.len());
        for prefix in self.prefixes {
            for which in VariantFamily::ALL {
                let metrics = samples(&snapshot, which);
                if metrics.is_empty() {
                    continue;
                }
                let kind = if which.is_counter() {
                    MetricType::COUNTER
                } else {
                    MetricType::GAUGE
                };
                out.push(family(which.name(prefix), which.help(), kind, metrics));
            }
        }
        out
    }
}
