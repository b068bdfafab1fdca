//! The immutable per-variant snapshot and the `prometheus` collector that renders it.
//!
//! A scrape reads whichever snapshot is current, so it sees one publication or the next, never a
//! mix. Label pairs are built in the seed's order (the crate's `*Vec` types would sort them).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, PoisonError, RwLock};

use prometheus::TextEncoder;
use prometheus::core::{Collector, Desc};
use prometheus::proto::{Counter, Gauge, LabelPair, Metric, MetricFamily, MetricType};

use crate::config::MetricsNaming;
use crate::error::ExpositionError;
use crate::families::{CONTROLLER_INSTANCE_LABEL, VariantFamily};
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

/// One publication rendered once as exposition text, never mutated once stored.
///
/// Scrapes splice this text between the self-metric families instead of cloning thousands of
/// `MetricFamily` values out of a collector and re-encoding them every time.
#[derive(Debug, Default)]
pub(crate) struct Snapshot {
    /// (family name, its text-format block) in name order, empty families left out.
    rendered: Vec<(String, String)>,
    /// Total length of the rendered text.
    len: usize,
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

/// Declares the per-variant families to the registry (so that no self-metric can take their
/// names); their samples come from the snapshot's prebuilt text, not from `collect`.
pub(crate) struct VariantCollector {
    descs: Vec<Desc>,
}

impl VariantCollector {
    /// A collector declaring the families of `naming`.
    pub(crate) fn new(naming: MetricsNaming) -> Result<Self, ExpositionError> {
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
        Ok(VariantCollector { descs })
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
fn gauge_labels(key: &VariantKey, row: &GaugeRow, instance: Option<&str>) -> Vec<LabelPair> {
    let mut labels = vec![
        pair("variant_name", &key.name),
        pair("namespace", &key.namespace),
        pair("accelerator_type", &row.accelerator_type),
    ];
    with_instance(&mut labels, instance);
    labels
}

/// Appends `controller_instance` last, as `Registry::gather` does with its common labels.
fn with_instance(labels: &mut Vec<LabelPair>, instance: Option<&str>) {
    if let Some(value) = instance {
        labels.push(pair(CONTROLLER_INSTANCE_LABEL, value));
    }
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
    instance: Option<&str>,
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
                    let mut labels = vec![
                        pair("variant_name", &key.name),
                        pair("namespace", &key.namespace),
                        pair("direction", direction.as_str()),
                        pair("reason", reason.as_str()),
                    ];
                    with_instance(&mut labels, instance);
                    let mut m = Metric::from_label(labels);
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
                    gauge(gauge_labels(key, row, instance), value)
                })
                .collect()
        }
    }
}

impl Snapshot {
    /// Builds the snapshot of `gauges` and `counters` with its families under `naming`'s names,
    /// every series labelled `controller_instance` = `instance` when given, rendered as text.
    pub(crate) fn build(
        gauges: &BTreeMap<VariantKey, GaugeRow>,
        counters: &BTreeMap<(VariantKey, Direction, ScalingReason), u64>,
        naming: MetricsNaming,
        instance: Option<&str>,
    ) -> Snapshot {
        let prefixes = naming.prefixes();
        let encoder = TextEncoder::new();
        let mut rendered = Vec::with_capacity(prefixes.len() * VariantFamily::ALL.len());
        for which in VariantFamily::ALL {
            let metrics = samples(gauges, counters, which, instance);
            if metrics.is_empty() {
                continue;
            }
            let kind = if which.is_counter() {
                MetricType::COUNTER
            } else {
                MetricType::GAUGE
            };
            let mut mf = family(String::new(), which.help(), kind, metrics);
            for prefix in prefixes {
                let name = which.name(prefix);
                mf.set_name(name.clone());
                let mut text = String::new();
                if let Err(error) = encoder.encode_utf8(std::slice::from_ref(&mf), &mut text) {
                    // Only reachable with an inconsistent family, which we never build.
                    tracing::error!(%error, family = %name, "cannot encode metrics");
                    continue;
                }
                rendered.push((name, text));
            }
        }
        rendered.sort_by(|a, b| a.0.cmp(&b.0));
        let len = rendered.iter().map(|(_, t)| t.len()).sum();
        Snapshot { rendered, len }
    }

    /// Writes `families` (sorted by name, as `Registry::gather` returns them) and this
    /// snapshot's families into `out` in one name order, as one `gather()` would have.
    pub(crate) fn encode_with(&self, families: &[MetricFamily], out: &mut String) {
        out.reserve(self.len + 16 * 1024);
        let encoder = TextEncoder::new();
        let mut prebuilt = self.rendered.iter().peekable();
        for mf in families {
            while let Some((_, text)) = prebuilt.next_if(|(name, _)| name.as_str() < mf.name()) {
                out.push_str(text);
            }
            if let Err(error) = encoder.encode_utf8(std::slice::from_ref(mf), out) {
                tracing::error!(%error, family = %mf.name(), "cannot encode metrics");
            }
        }
        for (_, text) in prebuilt {
            out.push_str(text);
        }
    }
}

impl Collector for VariantCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        // The samples are spliced in as prebuilt text by `Exposition::encode`.
        Vec::new()
    }
}
