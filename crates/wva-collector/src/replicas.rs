//! [`Replicas`]: one model's live replica records, keyed and ordered by pod name.
//!
//! A model usually has a handful of replicas, and the engine holds one snapshot per model (two
//! with the last-good copy). A `BTreeMap<String, ReplicaRecord>` reserves room for eleven
//! records in its first node — about 3.4 KiB per model even with one replica, 7 MiB at 1,000
//! models — so the records live in a `Vec` kept sorted by pod instead. Lookups are binary
//! searches; the JSON form is the map `{pod: record}` it always was.

use std::fmt;
use std::ops::Index;

use serde::de::{self, MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::snapshot::ReplicaRecord;

/// Live replica records of one model, unique by [`ReplicaRecord::pod`] and sorted by it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Replicas {
    records: Vec<ReplicaRecord>,
}

impl Replicas {
    /// No replicas.
    pub fn new() -> Self {
        Self::default()
    }

    /// No replicas, with room for `n` without reallocating (assemblers know the count).
    pub fn with_capacity(n: usize) -> Self {
        Replicas {
            records: Vec::with_capacity(n),
        }
    }

    /// Number of replicas.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether there are no replicas.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    fn position(&self, pod: &str) -> Result<usize, usize> {
        self.records.binary_search_by(|r| r.pod.as_str().cmp(pod))
    }

    /// The record of `pod`, if it is live.
    pub fn get(&self, pod: &str) -> Option<&ReplicaRecord> {
        self.position(pod).ok().map(|i| &self.records[i])
    }

    /// The record of `pod` to change, if it is live.
    pub fn get_mut(&mut self, pod: &str) -> Option<&mut ReplicaRecord> {
        self.position(pod).ok().map(|i| &mut self.records[i])
    }

    /// Whether `pod` has a record.
    pub fn contains_key(&self, pod: &str) -> bool {
        self.position(pod).is_ok()
    }

    /// Adds `record` under its pod, returning the record it replaces.
    pub fn insert(&mut self, record: ReplicaRecord) -> Option<ReplicaRecord> {
        // Assemblers insert in pod order: appending is the common case.
        if self
            .records
            .last()
            .is_none_or(|last| last.pod.as_str() < record.pod.as_str())
        {
            self.records.push(record);
            return None;
        }
        match self.position(&record.pod) {
            Ok(i) => Some(std::mem::replace(&mut self.records[i], record)),
            Err(i) => {
                self.records.insert(i, record);
                None
            }
        }
    }

    /// Removes and returns the record of `pod`.
    pub fn remove(&mut self, pod: &str) -> Option<ReplicaRecord> {
        self.position(pod).ok().map(|i| self.records.remove(i))
    }

    /// Pod names in order.
    pub fn keys(&self) -> impl ExactSizeIterator<Item = &str> + '_ {
        self.records.iter().map(|r| r.pod.as_str())
    }

    /// Records in pod order.
    pub fn values(&self) -> std::slice::Iter<'_, ReplicaRecord> {
        self.records.iter()
    }

    /// Records in pod order, to change in place (the pod names must not change).
    pub fn values_mut(&mut self) -> std::slice::IterMut<'_, ReplicaRecord> {
        self.records.iter_mut()
    }

    /// `(pod, record)` pairs in pod order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&str, &ReplicaRecord)> + '_ {
        self.records.iter().map(|r| (r.pod.as_str(), r))
    }
}

impl Index<&str> for Replicas {
    type Output = ReplicaRecord;

    /// The record of `pod`; panics when there is none, like `BTreeMap`'s index.
    fn index(&self, pod: &str) -> &ReplicaRecord {
        match self.get(pod) {
            Some(r) => r,
            None => panic!("no replica record for pod {pod:?}"),
        }
    }
}

impl FromIterator<ReplicaRecord> for Replicas {
    fn from_iter<I: IntoIterator<Item = ReplicaRecord>>(iter: I) -> Self {
        let mut replicas = Replicas::new();
        for r in iter {
            replicas.insert(r);
        }
        replicas
    }
}

impl<'a> IntoIterator for &'a Replicas {
    type Item = &'a ReplicaRecord;
    type IntoIter = std::slice::Iter<'a, ReplicaRecord>;

    fn into_iter(self) -> Self::IntoIter {
        self.records.iter()
    }
}

impl Serialize for Replicas {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.records.len()))?;
        for r in &self.records {
            map.serialize_entry(&r.pod, r)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for Replicas {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(ReplicasVisitor)
    }
}

struct ReplicasVisitor;

impl<'de> Visitor<'de> for ReplicasVisitor {
    type Value = Replicas;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a map from pod name to replica record")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Replicas, A::Error> {
        let mut replicas = Replicas::new();
        while let Some((pod, record)) = map.next_entry::<String, ReplicaRecord>()? {
            if record.pod != pod {
                return Err(de::Error::custom(format!(
                    "replica key {pod:?} does not match its record's pod {:?}",
                    record.pod
                )));
            }
            if replicas.insert(record).is_some() {
                return Err(de::Error::custom(format!("duplicate replica {pod:?}")));
            }
        }
        Ok(replicas)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::model::VariantRef;

    fn record(pod: &str) -> ReplicaRecord {
        ReplicaRecord::new(pod, VariantRef::new("ns", "v"), Duration::from_secs(1))
    }

    #[test]
    fn records_stay_sorted_and_unique_by_pod_whatever_the_insertion_order() {
        let mut r = Replicas::new();
        for pod in ["c", "a", "b", "a", "d"] {
            r.insert(record(pod));
        }
        assert_eq!(r.keys().collect::<Vec<_>>(), ["a", "b", "c", "d"]);
        assert_eq!(r.len(), 4);
        let mut changed = record("b");
        changed.kv_cache_usage = Some(0.5);
        let old = r.insert(changed).expect("b was there");
        assert_eq!(old.kv_cache_usage, None);
        assert_eq!(r["b"].kv_cache_usage, Some(0.5));
        assert!(r.contains_key("c") && !r.contains_key("e"));
        assert!(r.get("e").is_none());
        assert_eq!(r.remove("a").map(|x| x.pod), Some("a".to_string()));
        assert_eq!(
            r.iter().map(|(p, _)| p).collect::<Vec<_>>(),
            ["b", "c", "d"]
        );
    }

    #[test]
    fn json_is_a_map_from_pod_to_record_and_round_trips() {
        let r: Replicas = [record("p2"), record("p1")].into_iter().collect();
        let json = serde_json::to_value(&r).unwrap();
        let keys: Vec<&String> = json.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["p1", "p2"]);
        assert_eq!(json["p2"]["pod"], "p2");
        let back: Replicas = serde_json::from_value(json).unwrap();
        assert_eq!(back, r);
    }

    #[test]
    fn json_whose_key_disagrees_with_the_record_is_rejected_by_name() {
        let mut json =
            serde_json::to_value([record("p1")].into_iter().collect::<Replicas>()).unwrap();
        let rec = json["p1"].take();
        let bad = serde_json::json!({ "other": rec });
        let err = serde_json::from_value::<Replicas>(bad)
            .unwrap_err()
            .to_string();
        assert!(err.contains("\"other\"") && err.contains("\"p1\""), "{err}");
    }
}
