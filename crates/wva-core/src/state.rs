//! State carried from one cycle to the next: the V2 capacity store and the k2 history
//! (spec/core.md §5.5). Explicit values, passed in and returned by `plan`.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::timestamp::Timestamp;
use crate::vllm_args::VllmParams;

/// Capacity records older than this are evicted (7 days).
pub const CAPACITY_EVICTION_NANOS: i128 = 7 * 86_400 * 1_000_000_000;
/// History keys not updated for this long are evicted (24 hours).
pub const HISTORY_EVICTION_NANOS: i128 = 86_400 * 1_000_000_000;
/// Values kept per history key.
pub const HISTORY_WINDOW: usize = 10;

/// Where a capacity record was learned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LearnedFrom {
    /// From running replicas' metrics.
    Live,
    /// From the Deployment's vLLM arguments.
    Deployment,
}

/// The key of a capacity record: (namespace, modelID, variant).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CapacityKey {
    /// Namespace.
    pub namespace: String,
    /// Model.
    pub model_id: String,
    /// Variant name.
    pub variant: String,
}

/// A learned per-replica capacity of one variant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CapacityRecord {
    /// Namespace.
    pub namespace: String,
    /// Model.
    #[serde(rename = "modelID")]
    pub model_id: String,
    /// Variant name.
    pub variant: String,
    /// Accelerator string of the variant.
    pub accelerator: String,
    /// GPUs per replica (0 read as 1).
    pub gpu_count: u32,
    /// KV-cache blocks.
    pub num_gpu_blocks: i64,
    /// Tokens per block.
    pub block_size: i64,
    /// `numGpuBlocks × blockSize`.
    pub total_kv_capacity_tokens: i64,
    /// Tokens one replica can hold before saturating.
    pub effective_capacity: i64,
    /// Parsed vLLM parameters, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vllm_params: Option<VllmParams>,
    /// Source of the record.
    pub learned_from: LearnedFrom,
    /// When it was written.
    pub learned_at: Timestamp,
}

impl CapacityRecord {
    /// The record's key.
    pub fn key(&self) -> CapacityKey {
        CapacityKey {
            namespace: self.namespace.clone(),
            model_id: self.model_id.clone(),
            variant: self.variant.clone(),
        }
    }
}

type CompatKey = (String, String, u32);

/// Capacity records keyed by (namespace, modelID, variant), with an index by
/// (modelID, accelerator, gpuCount) for the compatible-record lookup. Hash maps keep each
/// access O(1); every iteration that can reach an output is sorted.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CapacityStore {
    records: HashMap<CapacityKey, CapacityRecord>,
    index: HashMap<CompatKey, BTreeSet<CapacityKey>>,
}

impl CapacityStore {
    /// The record for a variant.
    pub fn get(&self, namespace: &str, model_id: &str, variant: &str) -> Option<&CapacityRecord> {
        // BTreeMap lookups need an owned key; the strings are short.
        self.records.get(&CapacityKey {
            namespace: namespace.to_string(),
            model_id: model_id.to_string(),
            variant: variant.to_string(),
        })
    }

    /// Writes (overwrites) a record.
    pub fn insert(&mut self, record: CapacityRecord) {
        let key = record.key();
        self.remove(&key);
        self.index
            .entry((
                record.model_id.clone(),
                record.accelerator.clone(),
                record.gpu_count,
            ))
            .or_default()
            .insert(key.clone());
        self.records.insert(key, record);
    }

    /// Removes a record.
    pub fn remove(&mut self, key: &CapacityKey) -> Option<CapacityRecord> {
        let old = self.records.remove(key)?;
        let ck = (old.model_id.clone(), old.accelerator.clone(), old.gpu_count);
        if let Some(set) = self.index.get_mut(&ck) {
            set.remove(key);
            if set.is_empty() {
                self.index.remove(&ck);
            }
        }
        Some(old)
    }

    /// Drops records with `now − learnedAt > max_age`.
    pub fn evict_older_than(&mut self, now: &Timestamp, max_age_nanos: i128) {
        let old: Vec<CapacityKey> = self
            .records
            .iter()
            .filter(|(_, r)| now.nanos_since(&r.learned_at) > max_age_nanos)
            .map(|(k, _)| k.clone())
            .collect();
        for k in old {
            self.remove(&k);
        }
    }

    /// The compatible-record lookup of §5.5: same modelID, accelerator and gpuCount, params
    /// present and capacity-compatible, some capacity known; live first, then smallest key.
    pub fn find_compatible(
        &self,
        model_id: &str,
        accelerator: &str,
        gpu_count: u32,
        params: &VllmParams,
    ) -> Option<&CapacityRecord> {
        let keys = self
            .index
            .get(&(model_id.to_string(), accelerator.to_string(), gpu_count))?;
        let mut first_deployment = None;
        for key in keys {
            let Some(r) = self.records.get(key) else {
                continue;
            };
            let usable = r
                .vllm_params
                .as_ref()
                .is_some_and(|p| p.capacity_compatible(params))
                && (r.effective_capacity > 0 || r.total_kv_capacity_tokens > 0);
            if !usable {
                continue;
            }
            if r.learned_from == LearnedFrom::Live {
                return Some(r);
            }
            first_deployment.get_or_insert(r);
        }
        first_deployment
    }

    /// Records in key order.
    pub fn records(&self) -> impl Iterator<Item = &CapacityRecord> {
        let mut sorted: Vec<(&CapacityKey, &CapacityRecord)> = self.records.iter().collect();
        sorted.sort_unstable_by(|a, b| a.0.cmp(b.0));
        sorted.into_iter().map(|(_, r)| r)
    }

    /// Number of records.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether the store is empty.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }
}

/// One history key's recent k2 observations.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HistoryEntry {
    /// `modelID|accelerator|bucket`.
    pub key: String,
    /// Up to the last 10 values, oldest first.
    pub values: VecDeque<i64>,
    /// When a value was last pushed.
    pub updated_at: Timestamp,
}

/// The k2 history: key → last ≤ 10 observed values.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct History {
    entries: BTreeMap<String, HistoryEntry>,
}

impl History {
    /// Appends a value (evicting the oldest beyond the window) and stamps `now`.
    pub fn push(&mut self, key: &str, value: i64, now: Timestamp) {
        let entry = self
            .entries
            .entry(key.to_string())
            .or_insert_with(|| HistoryEntry {
                key: key.to_string(),
                values: VecDeque::new(),
                updated_at: now,
            });
        entry.values.push_back(value);
        while entry.values.len() > HISTORY_WINDOW {
            entry.values.pop_front();
        }
        entry.updated_at = now;
    }

    /// Mean of the key's values (sum left to right in insertion order), 0 if none.
    pub fn mean(&self, key: &str) -> f64 {
        match self.entries.get(key) {
            Some(e) if !e.values.is_empty() => {
                let mut sum = 0.0;
                for v in &e.values {
                    sum += *v as f64;
                }
                sum / e.values.len() as f64
            }
            _ => 0.0,
        }
    }

    /// Drops keys with `now − updatedAt > max_age`.
    pub fn evict_older_than(&mut self, now: &Timestamp, max_age_nanos: i128) {
        self.entries
            .retain(|_, e| now.nanos_since(&e.updated_at) <= max_age_nanos);
    }

    /// Entries in key order.
    pub fn entries(&self) -> impl Iterator<Item = &HistoryEntry> {
        self.entries.values()
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are no keys.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// All state that survives a cycle.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CoreState {
    /// V2 capacity store.
    pub capacity: CapacityStore,
    /// V2 k2 history.
    pub history: History,
}

/// Why a state document was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StateError {
    /// Two capacity records with one key.
    #[error("duplicate capacity record for {namespace}/{model_id}/{variant}")]
    DuplicateCapacity {
        /// Namespace.
        namespace: String,
        /// Model.
        model_id: String,
        /// Variant.
        variant: String,
    },
    /// Two history entries with one key.
    #[error("duplicate history key \"{0}\"")]
    DuplicateHistory(String),
}

/// The JSON shape of [`CoreState`]: two sorted lists.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StateDocument {
    /// Capacity records.
    #[serde(default)]
    pub capacity: Vec<CapacityRecord>,
    /// History entries.
    #[serde(default)]
    pub history: Vec<HistoryEntry>,
}

impl CoreState {
    /// Builds state from its document form, in any order; duplicates are errors and history
    /// lists longer than the window keep their newest values.
    pub fn from_document(doc: &StateDocument) -> Result<CoreState, StateError> {
        let mut state = CoreState::default();
        for r in &doc.capacity {
            if state.capacity.records.contains_key(&r.key()) {
                return Err(StateError::DuplicateCapacity {
                    namespace: r.namespace.clone(),
                    model_id: r.model_id.clone(),
                    variant: r.variant.clone(),
                });
            }
            state.capacity.insert(r.clone());
        }
        for h in &doc.history {
            if state.history.entries.contains_key(&h.key) {
                return Err(StateError::DuplicateHistory(h.key.clone()));
            }
            let mut h = h.clone();
            while h.values.len() > HISTORY_WINDOW {
                h.values.pop_front();
            }
            state.history.entries.insert(h.key.clone(), h);
        }
        Ok(state)
    }

    /// The sorted document form.
    pub fn to_document(&self) -> StateDocument {
        StateDocument {
            capacity: self.capacity.records().cloned().collect(),
            history: self.history.entries().cloned().collect(),
        }
    }

    /// The latest timestamp anywhere in the state.
    pub fn latest_timestamp(&self) -> Option<Timestamp> {
        let c = self.capacity.records.values().map(|r| r.learned_at);
        let h = self.history.entries().map(|e| e.updated_at);
        c.chain(h).max()
    }

    /// §5.1 eviction: capacity after 7 days, history after 24 hours.
    pub fn evict(&mut self, now: &Timestamp) {
        self.capacity.evict_older_than(now, CAPACITY_EVICTION_NANOS);
        self.history.evict_older_than(now, HISTORY_EVICTION_NANOS);
    }
}

impl Serialize for CoreState {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_document().serialize(s)
    }
}

impl<'de> Deserialize<'de> for CoreState {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let doc = StateDocument::deserialize(d)?;
        CoreState::from_document(&doc).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests;
