//! Demultiplexing batched answers into per-model snapshots (spec §2).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::Ordering;
use std::time::Duration;

use foldhash::HashMap;

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

/// A tracked model's number within one assembly (its rank in the tracked set).
type ModelId = u32;

/// A live replica's number within one assembly (in the order the liveness answers list them).
type PodId = u32;

/// The live replicas of one assembly, numbered, with each model's pods in name order.
///
/// Liveness answers are indexed first; every other per-replica sample is then resolved to a
/// [`PodId`] once, so assembling a model reads values by position instead of hashing and
/// comparing pod names again for every field.
#[derive(Default)]
struct LivePods<'a> {
    /// Per pod: its name.
    names: Vec<&'a str>,
    /// Per pod: its liveness sample.
    samples: Vec<&'a Sample>,
    /// Per pod: the liveness read it came from.
    read: Vec<usize>,
    /// (model, pod name) → pod.
    by_name: HashMap<(ModelId, &'a str), PodId>,
    /// Pods grouped by model, each group in pod-name order.
    ordered: Vec<PodId>,
    /// Per model: its range in `ordered`.
    ranges: Vec<(u32, u32)>,
}

impl<'a> LivePods<'a> {
    /// Records a liveness sample; a repeated (model, pod) keeps the later sample.
    fn add(&mut self, model: ModelId, pod: &'a str, sample: &'a Sample, read: usize) {
        match self.by_name.get(&(model, pod)) {
            Some(&id) => self.samples[id as usize] = sample,
            None => {
                let id = self.names.len() as PodId;
                self.by_name.insert((model, pod), id);
                self.names.push(pod);
                self.samples.push(sample);
                self.read.push(read);
            }
        }
    }

    /// Groups the pods by model, in name order, once all liveness reads are in.
    fn group(&mut self, models: usize) {
        let mut order: Vec<(ModelId, &str, PodId)> = self
            .by_name
            .iter()
            .map(|(&(model, pod), &id)| (model, pod, id))
            .collect();
        order.sort_unstable();
        self.ranges = vec![(0, 0); models];
        let mut start = 0;
        while start < order.len() {
            let model = order[start].0;
            let end = start + order[start..].partition_point(|e| e.0 == model);
            self.ranges[model as usize] = (start as u32, end as u32);
            start = end;
        }
        self.ordered = order.into_iter().map(|(_, _, id)| id).collect();
    }

    /// The live pods of `model` from liveness read `read`, in name order.
    fn of(
        &self,
        model: ModelId,
        read: usize,
    ) -> impl Iterator<Item = (PodId, &'a str, &'a Sample)> {
        let (start, end) = self.ranges.get(model as usize).copied().unwrap_or_default();
        self.ordered[start as usize..end as usize]
            .iter()
            .filter(move |&&id| self.read[id as usize] == read)
            .map(|&id| (id, self.names[id as usize], self.samples[id as usize]))
    }
}

/// What a per-replica sample's labels name.
enum Resolved<'a> {
    /// A replica of a tracked model.
    Replica(ModelId, &'a str),
    /// A model that is not tracked.
    Untracked,
    /// A sample lacking the namespace, model or pod label.
    Unlabelled,
}

/// Resolves samples of one answer to tracked models, remembering the last sample's model: the
/// decoder interns label values per answer and a model's pods usually come one after another,
/// so a repeated (namespace, model) is recognised by address without hashing the names again.
struct ModelResolver<'m, 'a> {
    ids: &'m HashMap<(&'a str, &'a str), ModelId>,
    last: Option<(&'a str, &'a str, Option<ModelId>)>,
}

impl<'m, 'a> ModelResolver<'m, 'a> {
    fn new(ids: &'m HashMap<(&'a str, &'a str), ModelId>) -> Self {
        ModelResolver { ids, last: None }
    }

    fn replica(&mut self, s: &'a Sample, ns_label: &str, pod_label: &str) -> Resolved<'a> {
        let (Some(ns), Some(m), Some(pod)) =
            (s.label(ns_label), s.label("model_name"), s.label(pod_label))
        else {
            return Resolved::Unlabelled;
        };
        let id = match self.last {
            Some((lns, lm, id)) if std::ptr::eq(lns, ns) && std::ptr::eq(lm, m) => id,
            _ => {
                let id = self.ids.get(&(ns, m)).copied();
                self.last = Some((ns, m, id));
                id
            }
        };
        match id {
            Some(id) => Resolved::Replica(id, pod),
            None => Resolved::Untracked,
        }
    }
}

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
    /// The tracked models by (namespace, model); answers are indexed by these numbers so each
    /// sample's two names are hashed once, not compared along a tree for every lookup.
    ids: HashMap<(&'a str, &'a str), ModelId>,
    /// Per read: whether its batch covers each model (indexed by [`ModelId`]).
    covers: Vec<Vec<bool>>,
    /// The live replicas.
    live: LivePods<'a>,
    /// Per read: the sample of each live pod (indexed by [`PodId`]; empty for other queries).
    replica_values: Vec<Vec<Option<&'a Sample>>>,
    /// Per read: cache_config candidates by (namespace, pod).
    cache_idx: Vec<HashMap<(&'a str, &'a str), Vec<&'a Sample>>>,
    /// Per read: model-level values by (namespace, model) or model.
    model_idx: Vec<HashMap<(&'a str, &'a str), f64>>,
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
        tracked: &'a BTreeSet<ModelKey>,
        reads: &'a [Read<'a>],
        warn_unlabelled: &dyn Fn(QueryName),
    ) -> Self {
        let ns_l = catalogue.config().namespace_label.as_str();
        let pod_l = catalogue.config().pod_label.as_str();
        let mut ids: HashMap<(&str, &str), ModelId> = HashMap::default();
        ids.reserve(tracked.len());
        for (id, k) in (0..).zip(tracked) {
            ids.insert((k.namespace.as_str(), k.model_id.as_str()), id);
        }
        let covers: Vec<Vec<bool>> = reads
            .iter()
            .map(|read| {
                let mut covered = vec![false; tracked.len()];
                for k in &read.query.batch.keys {
                    if let Some(&id) = ids.get(&(k.namespace.as_str(), k.model_id.as_str())) {
                        covered[id as usize] = true;
                    }
                }
                covered
            })
            .collect();
        let mut unlabelled = vec![0u64; reads.len()];
        // Liveness first: it numbers the pods the other per-replica answers are resolved to.
        let mut live = LivePods::default();
        for (i, read) in reads.iter().enumerate() {
            let (QueryName::ReplicaLastSample, Ok(ready)) = (read.query.name, &read.result) else {
                continue;
            };
            let mut resolve = ModelResolver::new(&ids);
            for s in &ready.result.samples {
                match resolve.replica(s, ns_l, pod_l) {
                    Resolved::Replica(id, pod) if covers[i][id as usize] => live.add(id, pod, s, i),
                    // Another batch's model: that batch's own liveness read lists it.
                    Resolved::Replica(..) => {}
                    Resolved::Untracked => bump(&stats.untracked),
                    Resolved::Unlabelled => unlabelled[i] += 1,
                }
            }
        }
        live.group(tracked.len());
        let mut replica_values = Vec::with_capacity(reads.len());
        let mut cache_idx = Vec::with_capacity(reads.len());
        let mut model_idx = Vec::with_capacity(reads.len());
        for (i, read) in reads.iter().enumerate() {
            let mut values: Vec<Option<&Sample>> = Vec::new();
            let mut c_idx: HashMap<(&str, &str), Vec<&Sample>> = HashMap::default();
            let mut m_idx: HashMap<(&str, &str), f64> = HashMap::default();
            if let Ok(ready) = &read.result {
                let name = read.query.name;
                let mut resolve = ModelResolver::new(&ids);
                for s in &ready.result.samples {
                    match name {
                        QueryName::ReplicaLastSample => {}
                        QueryName::CacheConfigInfo => match (s.label(ns_l), s.label(pod_l)) {
                            (Some(ns), Some(pod)) => c_idx.entry((ns, pod)).or_default().push(s),
                            _ => unlabelled[i] += 1,
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
                        _ => match resolve.replica(s, ns_l, pod_l) {
                            Resolved::Replica(id, pod) => match live.by_name.get(&(id, pod)) {
                                Some(&pod_id) => {
                                    if values.is_empty() {
                                        values = vec![None; live.names.len()];
                                    }
                                    values[pod_id as usize] = Some(s);
                                }
                                // Pods seen only by range queries are not live.
                                None => bump(&stats.not_live),
                            },
                            Resolved::Untracked => bump(&stats.untracked),
                            Resolved::Unlabelled => unlabelled[i] += 1,
                        },
                    }
                }
            }
            replica_values.push(values);
            cache_idx.push(c_idx);
            model_idx.push(m_idx);
        }
        for (read, count) in reads.iter().zip(unlabelled) {
            if count > 0 {
                stats.unlabelled.fetch_add(count, Ordering::Relaxed);
                warn_unlabelled(read.query.name);
            }
        }
        Assembler {
            catalogue,
            directory,
            policy,
            stats,
            reads,
            ids,
            covers,
            live,
            replica_values,
            cache_idx,
            model_idx,
        }
    }

    /// The read of `name` whose batch covers model `id` (and, for request counts, `retention`).
    fn read_for(&self, name: QueryName, id: ModelId, retention: Option<Duration>) -> Option<usize> {
        self.reads
            .iter()
            .zip(&self.covers)
            .position(|(r, covered)| {
                r.query.name == name
                    && (name != QueryName::ModelRequestCount || r.query.retention == retention)
                    && covered.get(id as usize).copied().unwrap_or(false)
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
        let id = self
            .ids
            .get(&(key.namespace.as_str(), key.model_id.as_str()))
            .copied();
        let Some((id, li)) =
            id.and_then(|id| Some((id, self.read_for(QueryName::ReplicaLastSample, id, None)?)))
        else {
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
        let live_pods: Vec<(PodId, &str, &Sample)> = self.live.of(id, li).collect();
        let mut replicas = Replicas::with_capacity(live_pods.len());
        // The pod of each record, in record (pod-name) order.
        let mut record_pods: Vec<PodId> = Vec::with_capacity(live_pods.len());
        for &(pod_id, pod, sample) in &live_pods {
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
            let mut rec = ReplicaRecord::new(pod, variant, age);
            rec.freshness = self.policy.classify(age);
            replicas.insert(rec);
            record_pods.push(pod_id);
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
            let Some(i) = self.read_for(name, id, None) else {
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
                    let values = &self.replica_values[i];
                    for (r, &pod_id) in replicas.values_mut().zip(&record_pods) {
                        debug_assert_eq!(r.pod, self.live.names[pod_id as usize]);
                        if let Some(Some(s)) = values.get(pod_id as usize) {
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
        let is_live = |pod: &str| {
            live_pods
                .binary_search_by(|(_, p, _)| (*p).cmp(pod))
                .is_ok()
        };
        let listed = self.directory.replicas(key);
        let mut missing_pods: Vec<(String, String)> = listed
            .iter()
            .filter(|t| !is_live(t.pod.as_str()))
            .map(|t| (t.pod.clone(), "no live series".to_string()))
            .collect();
        missing_pods.sort();
        missing_pods.dedup();
        let mut request_count = None;
        if let Some(r) = retention
            && self.catalogue.config().enabled(QueryGroup::ScaleToZero)
            && let Some(i) = self.read_for(QueryName::ModelRequestCount, id, Some(r))
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
                let Some(i) = self.read_for(name, id, None) else {
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
        let availability = if (!listed.is_empty() && live_pods.is_empty())
            || freshness == Freshness::Unavailable
        {
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
