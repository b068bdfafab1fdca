//! From the pods' states to a `ModelSnapshot`, the same shape the Prometheus source gives.

use std::time::Duration;

use wva_core::{Freshness, FreshnessPolicy};

use super::pod::{Outcome, PodMap, PodState};
use crate::catalogue::{CatalogueConfig, QueryGroup, QueryName};
use crate::error::CollectorError;
use crate::model::{ModelKey, ReplicaTarget};
use crate::replicas::Replicas;
use crate::snapshot::{Availability, Field, Measured, ModelSnapshot, QueryOutcome, QueryReport};
use crate::stats::StatsCounters;

/// Reason given for a listed pod that has no endpoint.
pub(crate) const NO_ENDPOINT: &str = "no scrape endpoint";
/// Reason given for a listed pod not scraped since it appeared.
pub(crate) const NOT_SCRAPED_YET: &str = "not scraped yet";

/// Everything `assemble` reads besides the pods.
pub(crate) struct ModelView<'a> {
    pub(crate) key: &'a ModelKey,
    pub(crate) retention: Option<Duration>,
    /// The directory's current pods of the model.
    pub(crate) targets: &'a [ReplicaTarget],
    /// The source's current time.
    pub(crate) now: Duration,
    /// When the last round completed.
    pub(crate) last_round_at: Option<Duration>,
    pub(crate) policy: &'a FreshnessPolicy,
    pub(crate) catalogue: &'a CatalogueConfig,
    /// Window of the KV and queue peaks.
    pub(crate) peak_window: Duration,
}

/// Builds the model's snapshot and one report per listed pod.
pub(crate) fn assemble(
    view: &ModelView<'_>,
    pods: &PodMap,
    stats: &StatsCounters,
) -> (ModelSnapshot, Vec<QueryReport>) {
    let mut missing: Vec<(String, String)> = Vec::new();
    let mut errors: Vec<(QueryName, CollectorError)> = Vec::new();
    let mut reports = Vec::new();

    let mut targets: Vec<&ReplicaTarget> = view.targets.iter().collect();
    targets.sort_by(|a, b| a.pod.cmp(&b.pod));
    targets.dedup_by(|a, b| a.pod == b.pod);
    let mut replicas = Replicas::with_capacity(targets.len());

    for target in targets {
        let Some(endpoint) = &target.endpoint else {
            missing.push((target.pod.clone(), NO_ENDPOINT.to_owned()));
            continue;
        };
        let state = pods.get(&(view.key.clone(), target.pod.clone()));
        let mut report = QueryReport {
            name: QueryName::ReplicaLastSample,
            text: endpoint.url(),
            outcome: QueryOutcome::Hit,
            duration: Duration::ZERO,
            series: 0,
            error: None,
        };
        match state {
            None
            | Some(PodState {
                outcome: Outcome::Pending,
                ..
            }) => {
                missing.push((target.pod.clone(), NOT_SCRAPED_YET.to_owned()));
                continue;
            }
            Some(
                pod @ PodState {
                    outcome: Outcome::Failed(error),
                    ..
                },
            ) => {
                missing.push((target.pod.clone(), error.to_string()));
                errors.push((QueryName::ReplicaLastSample, error.clone()));
                report.outcome = QueryOutcome::Failed;
                report.duration = pod.last_duration;
                report.error = Some(error.clone());
            }
            Some(pod) => {
                let age = view
                    .now
                    .saturating_sub(pod.completed_at.unwrap_or_default());
                let mut record = pod.record(
                    &target.pod,
                    target.variant.clone(),
                    age,
                    view.catalogue,
                    view.peak_window,
                    stats,
                );
                record.freshness = view.policy.classify(age);
                replicas.insert(record);
                report.duration = pod.last_duration;
                report.series = pod.last_series;
            }
        }
        reports.push(report);
    }

    let age = replicas
        .values()
        .map(|r| r.sample_age)
        .max()
        .unwrap_or_else(|| {
            view.last_round_at
                .map_or(Duration::ZERO, |t| view.now.saturating_sub(t))
        });
    let freshness = view.policy.classify(age);
    let request_count = request_count(view, pods, &mut errors);

    let listed = !view.targets.is_empty();
    let lacks_core = replicas.values().any(|r| {
        r.absent.contains_key(&Field::KvCacheUsage) || r.absent.contains_key(&Field::QueueLength)
    });
    let availability = if (listed && replicas.is_empty()) || freshness == Freshness::Unavailable {
        Availability::Unavailable
    } else if !missing.is_empty() || lacks_core {
        Availability::Partial
    } else {
        Availability::Available
    };

    let mut snapshot = ModelSnapshot {
        availability,
        freshness,
        age,
        served_from_last_good: false,
        replicas,
        missing_pods: missing,
        request_count,
        scheduler_queue: None,
        errors,
    };
    snapshot.sort_errors();
    (snapshot, reports)
}

/// Requests finished over the model's retention, summed over every pod the source still
/// remembers (pods gone within the window count, as in Prometheus's `increase`).
fn request_count(
    view: &ModelView<'_>,
    pods: &PodMap,
    errors: &mut Vec<(QueryName, CollectorError)>,
) -> Option<Measured<f64>> {
    let retention = view.retention?;
    if !view.catalogue.enabled(QueryGroup::ScaleToZero) {
        return None;
    }
    let mut total: Option<f64> = None;
    let mut newest: Option<Duration> = None;
    let from = (view.key.clone(), String::new());
    for ((model, _), pod) in pods.range(from..) {
        if model != view.key {
            break;
        }
        if let Some(n) = pod.request_increase(view.now, retention) {
            total = Some(total.unwrap_or(0.0) + n);
            newest = newest.max(pod.completed_at);
        }
    }
    match total {
        Some(value) => {
            let age = view.now.saturating_sub(newest.unwrap_or_default());
            Some(Measured {
                value,
                age,
                freshness: view.policy.classify(age),
            })
        }
        None => {
            errors.push((
                QueryName::ModelRequestCount,
                CollectorError::NoRequestCount {
                    model: view.key.model_id.clone(),
                },
            ));
            None
        }
    }
}
