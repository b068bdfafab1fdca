//! The fleet's event log (`GET /events`): what happened, when, to which variant or pod.

use serde::Serialize;
use std::collections::BTreeMap;

/// Kinds of events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// A model's load profile changed.
    LoadChanged,
    /// A variant was resized.
    ResizeRequested,
    /// A pod was created (Starting).
    PodCreated,
    /// A pod became Ready.
    PodReady,
    /// A pod started draining.
    PodDraining,
    /// A pod terminated (drained, grace expired, or removed before ready).
    PodTerminated,
    /// A pod was killed.
    PodKilled,
    /// A fault was set on a pod.
    FaultSet,
}

/// One event.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    /// Sequence number, from 1.
    pub seq: u64,
    /// Virtual time (s).
    pub t: f64,
    /// Wall time (unix ms); excluded from the determinism contract.
    pub wall_ms: u64,
    /// Kind.
    pub kind: EventKind,
    /// Variant, when the event concerns one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    /// Model, for load changes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Pod, when the event concerns one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pod: Option<String>,
    /// Other values (counts, rates, reasons).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub values: BTreeMap<String, serde_json::Value>,
}

impl Event {
    /// The event as one JSON line.
    pub fn to_json_line(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// The event without its wall time, for determinism hashes.
    pub fn deterministic_line(&self) -> String {
        let mut e = self.clone();
        e.wall_ms = 0;
        e.to_json_line()
    }
}

/// Appends events with increasing sequence numbers.
#[derive(Debug, Clone, Default)]
pub struct EventLog {
    events: Vec<Event>,
}

impl EventLog {
    /// Appends an event; returns its sequence number.
    pub fn push(
        &mut self,
        t_us: u64,
        wall_ms: u64,
        kind: EventKind,
        variant: Option<&str>,
        pod: Option<&str>,
        values: BTreeMap<String, serde_json::Value>,
    ) -> u64 {
        let seq = self.events.len() as u64 + 1;
        self.events.push(Event {
            seq,
            t: t_us as f64 / 1e6,
            wall_ms,
            kind,
            variant: variant.map(str::to_owned),
            model: None,
            pod: pod.map(str::to_owned),
            values,
        });
        seq
    }

    /// Sets the model of the last event.
    pub fn set_last_model(&mut self, model: &str) {
        if let Some(e) = self.events.last_mut() {
            e.model = Some(model.to_owned());
        }
    }

    /// Events with `seq > since`.
    pub fn since(&self, since: u64) -> &[Event] {
        let start = (since as usize).min(self.events.len());
        &self.events[start..]
    }

    /// Sequence number of the last event (0 when empty).
    pub fn last_seq(&self) -> u64 {
        self.events.len() as u64
    }
}

/// Builds a values map from pairs.
pub fn values<const N: usize>(
    pairs: [(&str, serde_json::Value); N],
) -> BTreeMap<String, serde_json::Value> {
    pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}
