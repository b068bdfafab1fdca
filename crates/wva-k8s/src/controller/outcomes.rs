//! The hand-off from the engine to the reconciles (spec/k8s.md §3.2): the [`OutcomeBoard`] holds
//! each variant's last outcome and the fingerprint the last cycle saw, and [`KubeActuator`]
//! fills it from a `CycleReport` without any API call, then asks for a `reconcile_all`.

use std::collections::HashMap;
use std::sync::Arc;

use arc_swap::ArcSwap;
use futures::future::BoxFuture;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::runtime::reflector::ObjectRef;
use wva_collector::{Availability as CollectedAvailability, CollectedSnapshot, QueryName};
use wva_core::{Availability, CycleReport, VariantState};
use wva_engine::{ActuationError, Actuator};

use crate::crd::VariantAutoscaling;
use crate::inventory::Fingerprint;
use crate::status::{MetricsState, OptimizationOutcome, VariantOutcome};
use crate::target::ObjectName;

/// The key of a VA on the board.
pub fn va_ref(namespace: &str, name: &str) -> ObjectRef<VariantAutoscaling> {
    ObjectRef::new(name).within(namespace)
}

type OutcomeMap = HashMap<ObjectRef<VariantAutoscaling>, VariantOutcome>;
type SeenMap = HashMap<ObjectRef<VariantAutoscaling>, Option<Fingerprint>>;

/// (namespace, model ID) → why Prometheus gave no data for the model, as the collector said it.
pub type MetricErrors = HashMap<(String, String), String>;

#[derive(Default)]
struct Board {
    outcomes: ArcSwap<OutcomeMap>,
    seen: ArcSwap<SeenMap>,
    metric_errors: ArcSwap<MetricErrors>,
}

/// Shared, lock-free board of the engine's last outcome per VA and of what the last cycle saw
/// of each VA (its inventory fingerprint, `None` while unresolved). Cheap to clone.
#[derive(Clone, Default)]
pub struct OutcomeBoard {
    board: Arc<Board>,
}

impl std::fmt::Debug for OutcomeBoard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutcomeBoard")
            .field("outcomes", &self.board.outcomes.load().len())
            .field("seen", &self.board.seen.load().len())
            .finish()
    }
}

impl OutcomeBoard {
    /// An empty board.
    pub fn new() -> OutcomeBoard {
        OutcomeBoard::default()
    }

    /// The last outcome of a VA.
    pub fn get(&self, namespace: &str, name: &str) -> Option<VariantOutcome> {
        self.board
            .outcomes
            .load()
            .get(&va_ref(namespace, name))
            .cloned()
    }

    /// Stores outcomes, replacing those of the same VAs and keeping the others.
    pub fn publish(&self, outcomes: Vec<(ObjectName, VariantOutcome)>) {
        if outcomes.is_empty() {
            return;
        }
        self.board.outcomes.rcu(|current| {
            let mut next = OutcomeMap::clone(current);
            for ((namespace, name), outcome) in &outcomes {
                next.insert(va_ref(namespace, name), outcome.clone());
            }
            next
        });
    }

    /// Records what a cycle's inventory saw: every tracked VA with its fingerprint (`None`
    /// while its target is unresolved). Replaces the previous record.
    pub fn record_seen(&self, seen: Vec<(ObjectName, Option<Fingerprint>)>) {
        let map: SeenMap = seen
            .into_iter()
            .map(|((namespace, name), fp)| (va_ref(&namespace, &name), fp))
            .collect();
        self.board.seen.store(Arc::new(map));
    }

    /// Records the current cycle's metric errors (see [`metric_errors`]), replacing the last.
    pub fn record_metric_errors(&self, errors: MetricErrors) {
        self.board.metric_errors.store(Arc::new(errors));
    }

    /// The current cycle's metric errors.
    pub fn metric_errors(&self) -> Arc<MetricErrors> {
        self.board.metric_errors.load_full()
    }

    /// Whether a reconcile that sees `current` must request a cycle: the VA was never seen by
    /// a cycle, or its fingerprint moved since (spec/k8s.md §3.4).
    pub fn cycle_needed(&self, namespace: &str, name: &str, current: Option<&Fingerprint>) -> bool {
        match self.board.seen.load().get(&va_ref(namespace, name)) {
            None => true,
            Some(recorded) => recorded.as_ref() != current,
        }
    }

    /// Drops everything known about a VA (deleted, or left the instance selector).
    pub fn remove(&self, namespace: &str, name: &str) {
        let key = va_ref(namespace, name);
        self.board.outcomes.rcu(|current| {
            let mut next = OutcomeMap::clone(current);
            next.remove(&key);
            next
        });
        self.board.seen.rcu(|current| {
            let mut next = SeenMap::clone(current);
            next.remove(&key);
            next
        });
    }
}

/// The models of a collection that Prometheus could not answer for: the model is unavailable
/// and its liveness query (which decides whether anything is known of it) failed. The message is
/// the collector error's text, which names the query and the cause.
pub fn metric_errors(collected: &CollectedSnapshot) -> MetricErrors {
    collected
        .models
        .iter()
        .filter(|(_, m)| m.availability == CollectedAvailability::Unavailable)
        .filter_map(|(key, m)| {
            let (_, error) = m
                .errors
                .iter()
                .find(|(query, _)| *query == QueryName::ReplicaLastSample)?;
            Some((
                (key.namespace.clone(), key.model_id.clone()),
                error.to_string(),
            ))
        })
        .collect()
}

/// Converts a cycle's report into one outcome per decided variant: the model's availability
/// gives [`MetricsState`] (`stale_threshold` names `PROMETHEUS_METRICS_CACHE_FRESH_THRESHOLD`
/// in the `MetricsStale` message; an unavailable model listed in `errors` carries its
/// Prometheus error), the decision gives [`OptimizationOutcome::Decided`].
pub fn outcomes_from_report(
    report: &CycleReport,
    stale_threshold: &str,
    errors: &MetricErrors,
) -> Vec<(ObjectName, VariantOutcome)> {
    let cycle_start = report
        .input
        .now
        .map(|t| core_time(&t))
        .unwrap_or_else(|| Time(Timestamp::now()));
    let availability: HashMap<(&str, &str), Availability> = report
        .models
        .iter()
        .map(|m| {
            (
                (m.namespace.as_str(), m.model_id.as_str()),
                m.analysis.availability(),
            )
        })
        .collect();
    report
        .decisions
        .iter()
        .map(|d| {
            let metrics = match availability.get(&(d.namespace.as_str(), d.model_id.as_str())) {
                Some(Availability::Fresh) => MetricsState::Fresh,
                Some(Availability::Stale) => MetricsState::Stale {
                    threshold: stale_threshold.to_owned(),
                },
                Some(Availability::Unavailable) | None => MetricsState::Unavailable {
                    error: errors
                        .get(&(d.namespace.clone(), d.model_id.clone()))
                        .cloned(),
                },
            };
            let outcome = VariantOutcome {
                cycle_start: cycle_start.clone(),
                metrics,
                optimization: OptimizationOutcome::Decided {
                    accelerator: d.accelerator.clone(),
                    desired: d.target_replicas,
                    current: d.current_replicas,
                    reason: d.reason,
                    detail: d.detail.clone(),
                },
            };
            ((d.namespace.clone(), d.variant.clone()), outcome)
        })
        .collect()
}

fn core_time(t: &wva_core::Timestamp) -> Time {
    let nanos = i32::try_from(t.0.timestamp_subsec_nanos()).unwrap_or(0);
    Time(Timestamp::new(t.0.timestamp(), nanos).unwrap_or_else(|_| Timestamp::now()))
}

/// The engine-facing actuator of Kubernetes mode: makes no API call inside a cycle. It stores
/// the cycle's outcomes on the board and fires `on_published` (a `reconcile_all` request); the
/// reconciles then apply status and, in direct mode, scale, each with its own backoff.
pub struct KubeActuator {
    board: OutcomeBoard,
    stale_threshold: String,
    on_published: Box<dyn Fn() + Send + Sync>,
}

impl std::fmt::Debug for KubeActuator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeActuator")
            .field("board", &self.board)
            .field("stale_threshold", &self.stale_threshold)
            .finish_non_exhaustive()
    }
}

impl KubeActuator {
    /// An actuator writing to `board`; `stale_threshold` is the configured
    /// `PROMETHEUS_METRICS_CACHE_FRESH_THRESHOLD` as written (e.g. `1m`); `on_published` is
    /// called after each cycle's outcomes are stored (typically
    /// `TriggerSenders::request_reconcile_all`).
    pub fn new(
        board: OutcomeBoard,
        stale_threshold: impl Into<String>,
        on_published: impl Fn() + Send + Sync + 'static,
    ) -> KubeActuator {
        KubeActuator {
            board,
            stale_threshold: stale_threshold.into(),
            on_published: Box::new(on_published),
        }
    }
}

impl Actuator for KubeActuator {
    fn apply<'a>(&'a self, report: &'a CycleReport) -> BoxFuture<'a, Vec<ActuationError>> {
        let errors = self.board.metric_errors();
        self.board
            .publish(outcomes_from_report(report, &self.stale_threshold, &errors));
        (self.on_published)();
        Box::pin(async { Vec::new() })
    }

    /// Marks every variant of the failed cycle `OptimizationReady=False/OptimizationFailed`
    /// (their desired allocation and `MetricsAvailable` stay as stored) and asks for the
    /// reconciles that write it.
    fn cycle_failed(&self, variants: &[VariantState], error: &str) {
        let cycle_start = Time(Timestamp::now());
        self.board.publish(
            variants
                .iter()
                .map(|v| {
                    let outcome = VariantOutcome {
                        cycle_start: cycle_start.clone(),
                        metrics: MetricsState::NotAnalysed,
                        optimization: OptimizationOutcome::Failed {
                            error: error.to_owned(),
                        },
                    };
                    ((v.namespace.clone(), v.name.clone()), outcome)
                })
                .collect(),
        );
        (self.on_published)();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use std::time::Duration;

    use serde_json::json;
    use wva_collector::{CollectorError, ModelKey, ModelSnapshot};
    use wva_core::Reason;

    use super::*;

    fn liveness_timeout() -> CollectorError {
        CollectorError::Timeout {
            query: "replica_last_sample".into(),
            after: Duration::from_secs(5),
        }
    }

    #[test]
    fn only_unavailable_models_whose_liveness_query_failed_have_a_prometheus_error() {
        let mut collected = CollectedSnapshot::empty("prometheus");
        let mut add = |model: &str, snapshot: ModelSnapshot| {
            collected
                .models
                .insert(ModelKey::new("ns", model), snapshot);
        };
        add(
            "gone",
            ModelSnapshot::unavailable(vec![(QueryName::ReplicaLastSample, liveness_timeout())]),
        );
        // No pods report: nothing failed, the metrics are missing.
        add("quiet", ModelSnapshot::unavailable(vec![]));
        // Unavailable, but only a model-level query failed.
        add(
            "no-count",
            ModelSnapshot::unavailable(vec![(
                QueryName::ModelRequestCount,
                CollectorError::NoRequestCount {
                    model: "no-count".into(),
                },
            )]),
        );
        // Served from last-good after a liveness failure: usable, so not unavailable.
        let mut partial =
            ModelSnapshot::unavailable(vec![(QueryName::ReplicaLastSample, liveness_timeout())]);
        partial.availability = CollectedAvailability::Partial;
        add("partial", partial);

        assert_eq!(
            metric_errors(&collected),
            MetricErrors::from([(
                ("ns".to_owned(), "gone".to_owned()),
                "query replica_last_sample: no answer from Prometheus within 5s".to_owned()
            )])
        );
    }

    fn report() -> CycleReport {
        serde_json::from_value(json!({
            "input": {
                "now": "2026-01-02T03:04:05.500Z",
                "config": {},
                "variants": [],
                "replicas": []
            },
            "models": [
                {"modelID": "m", "namespace": "ns", "analyzer": "saturation-v1",
                 "analysis": {"availability": "stale"}},
                {"modelID": "gone", "namespace": "ns", "analyzer": "saturation-v1",
                 "analysis": {"availability": "unavailable"}}
            ],
            "decisions": [
                {"variant": "a", "namespace": "ns", "modelID": "m", "accelerator": "H100",
                 "currentReplicas": 2, "targetReplicas": 3, "action": "scale_up",
                 "reason": "kv_cache_saturation", "detail": "kv"},
                {"variant": "b", "namespace": "ns", "modelID": "gone", "accelerator": "A100",
                 "currentReplicas": 1, "targetReplicas": 1, "action": "no_change",
                 "reason": "metrics_unavailable", "detail": "no data"}
            ],
            "state": {}
        }))
        .unwrap()
    }

    #[test]
    fn report_becomes_one_outcome_per_decision_with_its_model_availability() {
        let outcomes = outcomes_from_report(&report(), "1m", &MetricErrors::new());
        assert_eq!(outcomes.len(), 2);
        let (id, a) = &outcomes[0];
        assert_eq!(id, &("ns".to_owned(), "a".to_owned()));
        assert_eq!(
            a.metrics,
            MetricsState::Stale {
                threshold: "1m".into()
            }
        );
        assert_eq!(
            a.optimization,
            OptimizationOutcome::Decided {
                accelerator: "H100".into(),
                desired: 3,
                current: 2,
                reason: Reason::KvCacheSaturation,
                detail: "kv".into()
            }
        );
        assert_eq!(a.cycle_start.0.to_string(), "2026-01-02T03:04:05.5Z");
        assert_eq!(
            outcomes[1].1.metrics,
            MetricsState::Unavailable { error: None }
        );
    }

    #[tokio::test]
    async fn actuator_stores_outcomes_and_requests_a_reconcile_of_every_va() {
        let board = OutcomeBoard::new();
        let fired = Arc::new(AtomicUsize::new(0));
        let counter = fired.clone();
        let actuator = KubeActuator::new(board.clone(), "1m", move || {
            counter.fetch_add(1, Ordering::SeqCst);
        });
        board.publish(vec![(
            ("ns".into(), "untouched".into()),
            outcomes_from_report(&report(), "1m", &MetricErrors::new())[0]
                .1
                .clone(),
        )]);
        board.record_metric_errors(MetricErrors::from([(
            ("ns".to_owned(), "gone".to_owned()),
            liveness_timeout().to_string(),
        )]));
        let errors = actuator.apply(&report()).await;
        assert!(errors.is_empty());
        assert_eq!(
            board.get("ns", "b").map(|o| o.metrics),
            Some(MetricsState::Unavailable {
                error: Some(
                    "query replica_last_sample: no answer from Prometheus within 5s".into()
                )
            }),
            "the unavailable model's variant carries the recorded Prometheus error"
        );
        assert_eq!(
            board.get("ns", "a").map(|o| o.metrics),
            Some(MetricsState::Stale {
                threshold: "1m".into()
            })
        );
        assert_eq!(fired.load(Ordering::SeqCst), 1);
        assert!(board.get("ns", "a").is_some());
        assert!(board.get("ns", "b").is_some());
        assert!(board.get("ns", "untouched").is_some(), "other VAs are kept");
        board.remove("ns", "a");
        assert!(board.get("ns", "a").is_none());

        // A cycle the core rejected: its variants are marked failed, nothing else is touched.
        let covered = [VariantState {
            name: "b".into(),
            namespace: "ns".into(),
            model_id: "gone".into(),
            accelerator: "A100".into(),
            cost: 1.0,
            current_replicas: 1,
            ready_replicas: 1,
            desired_replicas: 1,
            gpus_per_replica: 1,
            vllm_args: None,
        }];
        actuator.cycle_failed(&covered, "the core rejected the cycle input: boom");
        assert_eq!(fired.load(Ordering::SeqCst), 2, "reconciles are requested");
        let b = board.get("ns", "b").unwrap();
        assert_eq!(b.metrics, MetricsState::NotAnalysed);
        assert_eq!(
            b.optimization,
            OptimizationOutcome::Failed {
                error: "the core rejected the cycle input: boom".into()
            }
        );
        assert!(board.get("ns", "untouched").is_some());
    }

    #[test]
    fn cycle_is_needed_for_unseen_vas_and_moved_fingerprints_only() {
        let board = OutcomeBoard::new();
        let fp = Fingerprint {
            generation: 1,
            spec_replicas: 1,
            all_ready: true,
            accelerator: "H100".into(),
            gpus_per_replica: 1,
        };
        assert!(board.cycle_needed("ns", "a", Some(&fp)));
        board.record_seen(vec![
            (("ns".into(), "a".into()), Some(fp.clone())),
            (("ns".into(), "u".into()), None),
        ]);
        assert!(!board.cycle_needed("ns", "a", Some(&fp)));
        assert!(!board.cycle_needed("ns", "u", None), "still unresolved");
        assert!(board.cycle_needed("ns", "u", Some(&fp)), "target appeared");
        let moved = Fingerprint {
            all_ready: false,
            ..fp
        };
        assert!(board.cycle_needed("ns", "a", Some(&moved)));
        assert!(board.cycle_needed("ns", "a", None), "target disappeared");
    }
}
