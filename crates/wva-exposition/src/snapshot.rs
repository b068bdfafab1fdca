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

/// One publication rendered as families ready for `gather()`, never mutated once stored.
#[derive(Debug, Default)]
pub(crate) struct Snapshot {
    /// The per-variant families, empty ones left out.
    families: Vec<MetricFamily>,
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

/// Serves the prebuilt families of the current snapshot to the registry.
pub(crate) struct VariantCollector {
    shared: SharedSnapshot,
    descs: Vec<Desc>,
}

impl VariantCollector {
    /// A collector over `shared` declaring the families of `naming`.
    pub(crate) fn new(
        shared: SharedSnapshot,
        naming: MetricsNaming,
    ) -> Result<Self, ExpositionError> {
        let mut descs = Vec::new();
        for prefix in naming.prefixes() {
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
        Ok(VariantCollector { shared, descs })
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

/// The samples of one family, in the order `Registry::gather` sorts them (label values in
/// label order), so that its sort has nothing to do at scrape time.
fn samples(
    gauges: &BTreeMap<VariantKey, GaugeRow>,
    counters: &BTreeMap<(VariantKey, Direction, ScalingReason), u64>,
    which: VariantFamily,
) -> Vec<Metric> {
    match which {
        VariantFamily::ReplicaScalingTotal => {
            let mut rows: Vec<_> = counters.iter().collect();
            rows.sort_by(|((a, ad, ar), _), ((b, bd, br), _)| {
                (&a.name, &a.namespace, ad.as_str(), ar.as_str()).cmp(&(
                    &b.name,
                    &b.namespace,
                    bd.as_str(),
                    br.as_str(),
                ))
            });
            rows.into_iter()
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
                .collect()
        }
        gauge_family => {
            let mut rows: Vec<_> = gauges.iter().collect();
            rows.sort_by(|(a, _), (b, _)| (&a.name, &a.namespace).cmp(&(&b.name, &b.namespace)));
            rows.into_iter()
                .map(|(key, row)| {
                    let value = match gauge_family {
                        VariantFamily::CurrentReplicas => f64::from(row.current),
                        VariantFamily::DesiredReplicas => f64::from(row.desired),
                        _ => desired_ratio(row.current, row.desired),
                    };
                    gauge(gauge_labels(key, row), value)
                })
                .collect()
        }
    }
}

impl Snapshot {
    /// Builds the snapshot of `gauges` and `counters` with its families under `naming`'s names.
    pub(crate) fn build(
        gauges: &BTreeMap<VariantKey, GaugeRow>,
        counters: &BTreeMap<(VariantKey, Direction, ScalingReason), u64>,
        naming: MetricsNaming,
    ) -> Snapshot {
        let prefixes = naming.prefixes();
        let mut families = Vec::with_capacity(prefixes.len() * VariantFamily::ALL.len());
        for which in VariantFamily::ALL {
            let metrics = samples(gauges, counters, which);
            if metrics.is_empty() {
                continue;
            }
            let kind = if which.is_counter() {
                MetricType::COUNTER
            } else {
                MetricType::GAUGE
            };
            for prefix in prefixes {
                families.push(family(
                    which.name(prefix),
                    which.help(),
                    kind,
                    metrics.clone(),
                ));
            }
        }
        Snapshot { families }
    }
}

impl Collector for VariantCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        self.shared.load().families.clone()
    }
}
