//! Demultiplexing batched answers into per-model snapshots (spec §2).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::Ordering;
use std::time::Duration;

use wva_core::{Freshness, FreshnessPolicy};

use crate::catalogue::{PlannedQuery, QueryCatalogue, QueryGroup, QueryName};
use crate::directory::ReplicaDirectory;
use crate::error::CollectorError;
use crate::model::ModelKey;
use crate::replicas::Replicas;
use crate::snapshot::{
    AbsentReason, Availability, CacheConfigInfo, DeploymentReplicas, Field, Measured,
    ModelSnapshot, ReplicaRecord, SchedulerQueue,
};
use crate::stats::{StatsCounters, bump};

use super::cache::Ready;
use super::decode::Sample;

/// Per-replica values of one answer: (namespace, model, pod) → sample.
type ReplicaIndex<'a> = HashMap<(&'a str, &'a str, &'a str), &'a Sample>;

/// Live pods of each (namespace, model): pod name and its liveness sample.
type LiveIndex<'a> = HashMap<(&'a str, &'a str), Vec<(&'a str, &'a Sample)>>;

/// One read of the plan with its result.
pub(crate) struct Read<'a> {
    pub query: &'a PlannedQuery,
    pub result: Result<Ready, CollectorError>,
}

/// The indexed answers of one collect.
pub(crate) struct Assembler<'a> {
    catalogue: &'a QueryCatalogue,
    directory: &'a dyn ReplicaDirectory,
    policy: FreshnessPolicy,
    stats: &'a StatsCounters,
    reads: &'a [Read<'a>],
    /// Per read: the per-replica index (for per-replica queries).
    replica_idx: Vec<ReplicaIndex<'a>>,
    /// Per read: cache_config candidates by (namespace, pod).
    cache_idx: Vec<HashMap<(&'a str, &'a str), Vec<&'a Sample>>>,
    /// Per read: model-level values by (namespace, model) or model.
    model_idx: Vec<HashMap<(&'a str, &'a str), f64>>,
    /// Per read: the live pods of each (namespace, model), from liveness reads.
    live_idx: Vec<LiveIndex<'a>>,
}

/// What a model's assembly gives: a snapshot, or the liveness failure to serve last-good for.
pub(crate) enum Assembled {
    /// A complete (possibly partial) snapshot.
    Ok(ModelSnapshot),
    /// `replica_last_sample` failed for the model's batch.
    LivenessFailed {
        /// Errors of this cycle (liveness first).
        errors: Vec<(QueryName, CollectorError)>,
    },
}

impl<'a> Assembler<'a> {
    /// Indexes every successful answer once; counts unlabelled, untracked and not-live samples.
    pub(crate) fn new(
        catalogue: &'a QueryCatalogue,
        directory: &'a dyn ReplicaDirectory,
        policy: FreshnessPolicy,
        stats: &'a StatsCounters,
        tracked: &BTreeSet<ModelKey>,
        reads: &'a [Read<'a>],
        warn_unlabelled: &dyn Fn(QueryName),
    ) -> Self {
        let ns_l = catalogue.config().namespace_label.as_str();
        let pod_l = catalogue.config().pod_label.as_str();
        let is_tracked = |ns: &str, m: &str| tracked.contains(&ModelKey::new(ns, m));
        let mut replica_idx = Vec::with_capacity(reads.len());
        let mut cache_idx = Vec::with_capacity(reads.len());
        let mut model_idx = Vec::with_capacity(reads.len());
        let mut live: BTreeSet<(&str, &str, &str)> = BTreeSet::new();
        for read in reads {
            let mut r_idx: ReplicaIndex<'a> = HashMap::new();
            let mut c_idx: HashMap<(&str, &str), Vec<&Sample>> = HashMap::new();
            let mut m_idx: HashMap<(&str, &str), f64> = HashMap::new();
            if let Ok(ready) = &read.result {
                let name = read.query.name;
                let mut unlabelled = 0u64;
                for s in &ready.result.samples {
                    match name {
                        QueryName::CacheConfigInfo => match (s.label(ns_l), s.label(pod_l)) {
                            (Some(ns), Some(pod)) => c_idx.entry((ns, pod)).or_default().push(s),
                            _ => unlabelled += 1,
                        },
                        QueryName::ModelRequestCount => {
                            if let (Some(ns), Some(m)) = (s.label(ns_l), s.label("model_name")) {
                                m_idx.insert((ns, m), s.v);
                            }
                        }
                        QueryName::SchedulerQueueSize | QueryName::SchedulerQueueBytes => {
                            if let Some(m) = s.label("target_model_name") {
                                m_idx.insert(("", m), s.v);
                            }
                        }
                        QueryName::DeploymentReplicas | QueryName::DeploymentReadyReplicas => {
                            if let (Some(ns), Some(d)) = (s.label(ns_l), s.label("deployment")) {
                                m_idx.insert((ns, d), s.v);
                            }
                        }
                        _ => match (s.label(ns_l), s.label("model_name"), s.label(pod_l)) {
                            (Some(ns), Some(m), Some(pod)) => {
                                if !is_tracked(ns, m) {
                                    bump(&stats.untracked);
                                    continue;
                                }
                                if name == QueryName::ReplicaLastSample {
                                    live.insert((ns, m, pod));
                                }
                                r_idx.insert((ns, m, pod), s);
                            }
                            _ => unlabelled += 1,
                        },
                    }
                }
                if unlabelled > 0 {
                    stats.unlabelled.fetch_add(unlabelled, Ordering::Relaxed);
                    warn_unlabelled(name);
                }
            }
            replica_idx.push(r_idx);
            cache_idx.push(c_idx);
            model_idx.push(m_idx);
        }
        // Pods seen only by range queries are not live.
        for (read, idx) in reads.iter().zip(&replica_idx) {
            let n = read.query.name;
            if n != QueryName::ReplicaLastSample
                && n.field().is_some()
                && n != QueryName::CacheConfigInfo
            {
                let dead = idx.keys().filter(|k| !live.contains(*k)).count();
                stats.not_live.fetch_add(dead as u64, Ordering::Relaxed);
            }
        }
        let live_idx = reads
            .iter()
            .zip(&replica_idx)
            .map(|(read, idx)| {
                let mut by_model: LiveIndex<'a> = HashMap::new();
                if read.query.name == QueryName::ReplicaLastSample {
                    for ((ns, m, pod), s) in idx {
                        by_model.entry((*ns, *m)).or_default().push((*pod, *s));
                    }
                }
                by_model
            })
            .collect();
        Assembler {
            live_idx,
            catalogue,
            directory,
            policy,
            stats,
            reads,
            replica_idx,
            cache_idx,
            model_idx,
        }
    }

    /// The read of `name` whose batch covers `key` (and, for request counts, its retention).
    fn read_for(
        &self,
        name: QueryName,
        key: &ModelKey,
        retention: Option<Duration>,
    ) -> Option<usize> {
        self.reads.iter().position(|r| {
            r.query.name == name
                && (name != QueryName::ModelRequestCount || r.query.retention == retention)
                && r.query.batch.keys.binary_search(key).is_ok()
        })
    }

    /// Assembles one model.
    pub(crate) fn model(
        &self,
        key: &ModelKey,
        retention: Option<Duration>,
        unmapped: &dyn Fn(&ModelKey, &str),
    ) -> Assembled {
        let mut errors: Vec<(QueryName, CollectorError)> = Vec::new();
        let Some(li) = self.read_for(QueryName::ReplicaLastSample, key, None) else {
            return Assembled::LivenessFailed {
                errors: vec![(
                    QueryName::ReplicaLastSample,
                    CollectorError::Internal {
                        what: format!("no liveness query planned for {key}"),
                    },
                )],
            };
        };
        let liveness = match &self.reads[li].result {
            Ok(r) => r,
            Err(e) => {
                errors.push((QueryName::ReplicaLastSample, e.clone()));
                return Assembled::LivenessFailed { errors };
            }
        };
        let fetch_age = liveness.fetched.elapsed();
        let ns = key.namespace.as_str();
        let model = key.model_id.as_str();
        let mut live_pods: Vec<(&str, &Sample)> = self.live_idx[li]
            .get(&(ns, model))
            .cloned()
            .unwrap_or_default();
        live_pods.sort_by(|a, b| a.0.cmp(b.0));
        let mut replicas = Replicas::with_capacity(live_pods.len());
        for (pod, sample) in &live_pods {
            let Some(variant) = self.directory.variant_of(key, pod) else {
                bump(&self.stats.unmapped);
                unmapped(key, pod);
                continue;
            };
            let mut at_fetch = sample.t - sample.v;
            if !at_fetch.is_finite() || at_fetch < 0.0 {
                bump(&self.stats.clock_skew);
                at_fetch = 0.0;
            }
            let age = Duration::try_from_secs_f64(at_fetch).unwrap_or(Duration::ZERO) + fetch_age;
            let mut rec = ReplicaRecord::new(*pod, variant, age);
            rec.freshness = self.policy.classify(age);
            replicas.insert(rec);
        }
        let mut failed_other = false;
        for name in QueryName::PER_REPLICA {
            let Some(field) = name.field() else { continue };
            if !self.catalogue.enabled(name) {
                for r in replicas.values_mut() {
                    r.mark_absent(field, AbsentReason::GroupDisabled);
                }
                continue;
            }
            let Some(i) = self.read_for(name, key, None) else {
                continue;
            };
            match &self.reads[i].result {
                Err(e) => {
                    failed_other = true;
                    errors.push((name, e.clone()));
                    for r in replicas.values_mut() {
                        r.mark_absent(field, AbsentReason::QueryFailed);
                    }
                }
                Ok(_) if name == QueryName::CacheConfigInfo => {
                    for r in replicas.values_mut() {
                        self.fill_cache_config(i, ns, r);
                    }
                }
                Ok(_) => {
                    for r in replicas.values_mut() {
                        if let Some(s) = self.replica_idx[i].get(&(ns, model, r.pod.as_str())) {
                            match r.set(field, s.v) {
                                Ok(()) => {}
                                Err(AbsentReason::NonFinite) => bump(&self.stats.non_finite),
                                Err(_) => bump(&self.stats.out_of_range),
                            }
                        }
                    }
                }
            }
        }
        let live_set: BTreeSet<&str> = live_pods.iter().map(|(p, _)| *p).collect();
        let listed = self.directory.replicas(key);
        let mut missing_pods: Vec<(String, String)> = listed
            .iter()
            .filter(|t| !live_set.contains(t.pod.as_str()))
            .map(|t| (t.pod.clone(), "no live series".to_string()))
            .collect();
        missing_pods.sort();
        missing_pods.dedup();
        let mut request_count = None;
        if let Some(r) = retention
            && self.catalogue.config().enabled(QueryGroup::ScaleToZero)
            && let Some(i) = self.read_for(QueryName::ModelRequestCount, key, Some(r))
        {
            match &self.reads[i].result {
                Err(e) => {
                    failed_other = true;
                    errors.push((QueryName::ModelRequestCount, e.clone()));
                }
                Ok(ready) => match self.model_idx[i].get(&(ns, model)) {
                    Some(v) if v.is_finite() && *v >= 0.0 => {
                        let age = ready.fetched.elapsed();
                        request_count = Some(Measured {
                            value: *v,
                            age,
                            freshness: self.policy.classify(age),
                        });
                    }
                    _ => errors.push((
                        QueryName::ModelRequestCount,
                        CollectorError::NoRequestCount {
                            model: key.model_id.clone(),
                        },
                    )),
                },
            }
        }
        let mut scheduler_queue = None;
        if self.catalogue.config().enabled(QueryGroup::SchedulerQueue) {
            let mut q = SchedulerQueue {
                size: None,
                bytes: None,
                namespace_ambiguous: true,
            };
            let mut oldest: Option<Duration> = None;
            for name in [
                QueryName::SchedulerQueueSize,
                QueryName::SchedulerQueueBytes,
            ] {
                let Some(i) = self.read_for(name, key, None) else {
                    continue;
                };
                match &self.reads[i].result {
                    Err(e) => {
                        failed_other = true;
                        errors.push((name, e.clone()));
                    }
                    Ok(ready) => {
                        let v = self.model_idx[i]
                            .get(&("", model))
                            .copied()
                            .filter(|v| v.is_finite() && *v >= 0.0);
                        if v.is_some() {
                            let age = ready.fetched.elapsed();
                            oldest = Some(oldest.map_or(age, |o| o.max(age)));
                        }
                        if name == QueryName::SchedulerQueueSize {
                            q.size = v;
                        } else {
                            q.bytes = v;
                        }
                    }
                }
            }
            if let Some(age) = oldest {
                scheduler_queue = Some(Measured {
                    value: q,
                    age,
                    freshness: self.policy.classify(age),
                });
            }
        }
        let age = replicas
            .values()
            .map(|r| r.sample_age)
            .max()
            .unwrap_or(fetch_age);
        let freshness = self.policy.classify(age);
        let lacks_core = replicas
            .values()
            .any(|r| r.kv_cache_usage.is_none() || r.queue_length.is_none());
        let availability =
            if (!listed.is_empty() && live_set.is_empty()) || freshness == Freshness::Unavailable {
                Availability::Unavailable
            } else if failed_other || !missing_pods.is_empty() || lacks_core {
                Availability::Partial
            } else {
                Availability::Available
            };
        let mut snap = ModelSnapshot {
            availability,
            freshness,
            age,
            served_from_last_good: false,
            replicas,
            missing_pods,
            request_count,
            scheduler_queue,
            errors,
        };
        snap.sort_errors();
        Assembled::Ok(snap)
    }

    fn fill_cache_config(&self, read: usize, ns: &str, rec: &mut ReplicaRecord) {
        let Some(cands) = self.cache_idx[read].get(&(ns, rec.pod.as_str())) else {
            return;
        };
        let parse = |v: Option<&str>| v.and_then(|t| t.parse::<u64>().ok()).filter(|n| *n > 0);
        let mut valid: Vec<CacheConfigInfo> = cands
            .iter()
            .filter_map(|s| {
                Some(CacheConfigInfo {
                    num_gpu_blocks: parse(s.label("num_gpu_blocks"))?,
                    block_size: parse(s.label("block_size"))?,
                })
            })
            .collect();
        valid.sort_by_key(|c| {
            (
                c.num_gpu_blocks.saturating_mul(c.block_size),
                c.num_gpu_blocks,
            )
        });
        valid.dedup();
        match valid.first() {
            Some(best) => {
                if valid.len() > 1 {
                    bump(&self.stats.conflicting_cache_config);
                }
                rec.set_cache_config(*best);
            }
            None => {
                bump(&self.stats.unparsable);
                rec.mark_absent(Field::CacheConfig, AbsentReason::Unparsable);
            }
        }
    }

    /// kube-state-metrics Deployment counts from every standalone read, sorted.
    pub(crate) fn deployments(&self) -> Vec<DeploymentReplicas> {
        let mut out: BTreeMap<(String, String), DeploymentReplicas> = BTreeMap::new();
        for (i, read) in self.reads.iter().enumerate() {
            let ready = match (&read.query.name, &read.result) {
                (QueryName::DeploymentReplicas | QueryName::DeploymentReadyReplicas, Ok(_)) => i,
                _ => continue,
            };
            for ((ns, d), v) in &self.model_idx[ready] {
                let e = out
                    .entry((ns.to_string(), d.to_string()))
                    .or_insert_with(|| DeploymentReplicas {
                        namespace: ns.to_string(),
                        deployment: d.to_string(),
                        replicas: None,
                        ready_replicas: None,
                    });
                let v = Some(*v).filter(|v| v.is_finite() && *v >= 0.0);
                if read.query.name == QueryName::DeploymentReplicas {
                    e.replicas = v;
                } else {
                    e.ready_replicas = v;
                }
            }
        }
        out.into_values().collect()
    }
}

/// Serves a last-good copy: ages grow by `elapsed`, every class is at least `Stale`, the model is
/// `Partial` and carries this cycle's errors. `None` once the copy reached the threshold.
pub(crate) fn from_last_good(
    copy: &ModelSnapshot,
    elapsed: Duration,
    policy: &FreshnessPolicy,
    errors: Vec<(QueryName, CollectorError)>,
) -> Option<ModelSnapshot> {
    let age = copy.age + elapsed;
    if age >= policy.unavailable() {
        return None;
    }
    let mut s = copy.clone();
    s.age = age;
    s.freshness = policy.classify(age).worst(Freshness::Stale);
    s.served_from_last_good = true;
    s.availability = Availability::Partial;
    for r in s.replicas.values_mut() {
        r.sample_age += elapsed;
        r.freshness = policy.classify(r.sample_age).worst(Freshness::Stale);
    }
    if let Some(m) = &mut s.request_count {
        m.age += elapsed;
        m.freshness = policy.classify(m.age).worst(Freshness::Stale);
    }
    if let Some(m) = &mut s.scheduler_queue {
        m.age += elapsed;
        m.freshness = policy.classify(m.age).worst(Freshness::Stale);
    }
    s.errors = errors;
    s.sort_errors();
    Some(s)
}
