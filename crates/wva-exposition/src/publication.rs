//! Atomic per-cycle publication of the per-variant families and the scaling-counter rule (§2, §3).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, PoisonError};

use crate::config::MetricsNaming;
use crate::snapshot::{GaugeRow, SharedSnapshot, Snapshot};
use crate::variant::{Direction, PublishedVariant, ScalingReason, VariantKey};

/// One increment of the scaling counter made by a publication.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScalingEvent {
    /// The variant whose desired replicas changed.
    pub key: VariantKey,
    /// Up or down.
    pub direction: Direction,
    /// The decision's reason.
    pub reason: ScalingReason,
    /// Desired replicas before the change.
    pub from: u32,
    /// Desired replicas after the change.
    pub to: u32,
}

/// What one publication changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PublishSummary {
    /// Counter increments, in publication order.
    pub scaling_events: Vec<ScalingEvent>,
    /// Variants whose series were all removed, sorted.
    pub removed: Vec<VariantKey>,
}

/// The mutable side of the registry, only touched under the publication lock.
#[derive(Debug, Default)]
struct PublicationState {
    /// Last desired value published per variant (the counter rule's `prev`).
    last_desired: BTreeMap<VariantKey, u32>,
    /// Gauge rows of variants with a resolved target.
    gauges: BTreeMap<VariantKey, GaugeRow>,
    /// Cumulative counter values.
    counters: BTreeMap<(VariantKey, Direction, ScalingReason), u64>,
}

impl PublicationState {
    /// Applies one variant: counter rule, then gauges (or their removal when unresolved).
    fn apply(&mut self, variant: &PublishedVariant, events: &mut Vec<ScalingEvent>) {
        if !variant.target_resolved {
            self.gauges.remove(&variant.key);
            return;
        }
        let desired = variant.desired_replicas;
        let previous = self
            .last_desired
            .insert(variant.key.clone(), desired)
            .or(variant.baseline);
        if let Some(from) = previous
            && let Some(direction) = Direction::of_change(from, desired)
        {
            *self
                .counters
                .entry((variant.key.clone(), direction, variant.reason))
                .or_insert(0) += 1;
            events.push(ScalingEvent {
                key: variant.key.clone(),
                direction,
                reason: variant.reason,
                from,
                to: desired,
            });
        }
        self.gauges.insert(
            variant.key.clone(),
            GaugeRow {
                accelerator_type: variant.accelerator_label().to_owned(),
                current: variant.current_replicas,
                desired,
            },
        );
    }

    /// Forgets everything about `key`; `true` if anything was known.
    fn remove(&mut self, key: &VariantKey) -> bool {
        let had_desired = self.last_desired.remove(key).is_some();
        let had_gauges = self.gauges.remove(key).is_some();
        let before = self.counters.len();
        self.counters.retain(|(k, _, _), _| k != key);
        had_desired || had_gauges || before != self.counters.len()
    }

    /// Every variant the state knows of.
    fn known_keys(&self) -> BTreeSet<VariantKey> {
        self.last_desired
            .keys()
            .chain(self.gauges.keys())
            .chain(self.counters.keys().map(|(k, _, _)| k))
            .cloned()
            .collect()
    }

    /// The immutable view that scrapes read.
    fn snapshot(&self, naming: MetricsNaming, instance: Option<&str>) -> Snapshot {
        Snapshot::build(&self.gauges, &self.counters, naming, instance)
    }
}

/// Serialises publications and swaps each result in as one snapshot.
#[derive(Debug)]
pub(crate) struct Publisher {
    state: Mutex<PublicationState>,
    shared: SharedSnapshot,
    naming: MetricsNaming,
    /// `controller_instance` label value, when set.
    instance: Option<String>,
}

impl Publisher {
    /// A publisher that stores its snapshots, with families named per `naming`, into `shared`.
    pub(crate) fn new(shared: SharedSnapshot, naming: MetricsNaming) -> Self {
        Publisher {
            state: Mutex::new(PublicationState::default()),
            shared,
            naming,
            instance: None,
        }
    }

    /// Labels every published series with `controller_instance` = `instance`.
    pub(crate) fn with_instance(mut self, instance: Option<String>) -> Self {
        self.instance = instance;
        self
    }

    /// Runs `change` under the publication lock, then swaps in the new snapshot.
    fn with_state<T>(&self, change: impl FnOnce(&mut PublicationState) -> T) -> T {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let out = change(&mut state);
        self.shared.store(Arc::new(
            state.snapshot(self.naming, self.instance.as_deref()),
        ));
        out
    }

    /// The complete set of variants of a cycle: absent variants lose all their series.
    pub(crate) fn publish(&self, variants: &[PublishedVariant]) -> PublishSummary {
        self.with_state(|state| {
            let present: BTreeSet<&VariantKey> = variants.iter().map(|v| &v.key).collect();
            let removed: Vec<VariantKey> = state
                .known_keys()
                .into_iter()
                .filter(|key| !present.contains(key))
                .collect();
            for key in &removed {
                state.remove(key);
            }
            let mut scaling_events = Vec::new();
            for variant in variants {
                state.apply(variant, &mut scaling_events);
            }
            PublishSummary {
                scaling_events,
                removed,
            }
        })
    }

    /// One variant between cycles (scale from zero); the others are untouched.
    pub(crate) fn publish_one(&self, variant: &PublishedVariant) -> PublishSummary {
        self.with_state(|state| {
            let mut scaling_events = Vec::new();
            state.apply(variant, &mut scaling_events);
            PublishSummary {
                scaling_events,
                removed: Vec::new(),
            }
        })
    }

    /// Removes every series of `key` and forgets its counter baseline.
    pub(crate) fn remove(&self, key: &VariantKey) -> bool {
        self.with_state(|state| state.remove(key))
    }

    /// Removes every per-variant series (leadership lost).
    pub(crate) fn clear(&self) {
        self.with_state(|state| *state = PublicationState::default());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wva_core::Reason;

    fn publisher() -> Publisher {
        Publisher::new(SharedSnapshot::default(), MetricsNaming::Inferno)
    }

    fn variant(name: &str, current: u32, desired: u32, reason: Reason) -> PublishedVariant {
        PublishedVariant::new(
            VariantKey::new("ns", name),
            "H100",
            current,
            desired,
            reason,
        )
    }

    fn counter(p: &Publisher, name: &str, direction: Direction, reason: Reason) -> Option<u64> {
        let snap = p.state.lock().unwrap();
        snap.counters
            .get(&(VariantKey::new("ns", name), direction, reason.into()))
            .copied()
    }

    #[test]
    fn first_publication_without_baseline_counts_nothing() {
        let p = publisher();
        let summary = p.publish(&[variant("a", 1, 3, Reason::KvCacheSaturation)]);
        assert!(summary.scaling_events.is_empty());
        assert!(p.state.lock().unwrap().counters.is_empty());
    }

    #[test]
    fn first_publication_counts_against_the_baseline() {
        let p = publisher();
        let summary = p.publish(&[variant("a", 1, 3, Reason::KvCacheSaturation).with_baseline(1)]);
        assert_eq!(summary.scaling_events.len(), 1);
        assert_eq!(summary.scaling_events[0].from, 1);
        assert_eq!(summary.scaling_events[0].to, 3);
        assert_eq!(
            counter(&p, "a", Direction::ScaleUp, Reason::KvCacheSaturation),
            Some(1)
        );
    }

    #[test]
    fn first_publication_equal_to_baseline_counts_nothing() {
        let p = publisher();
        p.publish(&[variant("a", 2, 2, Reason::Steady).with_baseline(2)]);
        assert!(p.state.lock().unwrap().counters.is_empty());
    }

    #[test]
    fn counter_grows_once_per_real_change_whatever_its_size() {
        let p = publisher();
        p.publish(&[variant("a", 1, 1, Reason::Steady).with_baseline(1)]);
        p.publish(&[variant("a", 1, 5, Reason::CapacityRequired).with_baseline(1)]);
        p.publish(&[variant("a", 5, 5, Reason::Steady).with_baseline(1)]);
        p.publish(&[variant("a", 5, 5, Reason::Steady).with_baseline(1)]);
        assert_eq!(
            counter(&p, "a", Direction::ScaleUp, Reason::CapacityRequired),
            Some(1)
        );
        assert_eq!(p.state.lock().unwrap().counters.len(), 1);
    }

    #[test]
    fn decrease_counts_scale_down_with_the_decision_reason() {
        let p = publisher();
        p.publish(&[variant("a", 3, 3, Reason::Steady)]);
        let summary = p.publish(&[variant("a", 3, 2, Reason::SpareCapacity)]);
        assert_eq!(summary.scaling_events[0].direction, Direction::ScaleDown);
        assert_eq!(
            counter(&p, "a", Direction::ScaleDown, Reason::SpareCapacity),
            Some(1)
        );
    }

    #[test]
    fn baseline_is_ignored_after_the_first_publication() {
        let p = publisher();
        p.publish(&[variant("a", 3, 3, Reason::Steady).with_baseline(3)]);
        let summary = p.publish(&[variant("a", 3, 3, Reason::Steady).with_baseline(1)]);
        assert!(summary.scaling_events.is_empty());
    }

    #[test]
    fn accelerator_change_replaces_gauges_without_counting() {
        let p = publisher();
        p.publish(&[variant("a", 2, 2, Reason::Steady)]);
        let mut moved = variant("a", 2, 2, Reason::Steady);
        moved.accelerator_type = "A100".into();
        let summary = p.publish(&[moved]);
        assert!(summary.scaling_events.is_empty());
        let snap = p.state.lock().unwrap();
        assert_eq!(snap.gauges.len(), 1);
        assert_eq!(
            snap.gauges[&VariantKey::new("ns", "a")].accelerator_type,
            "A100"
        );
    }

    #[test]
    fn variant_absent_from_a_publication_loses_all_series_and_baseline() {
        let p = publisher();
        p.publish(&[
            variant("a", 1, 1, Reason::Steady),
            variant("b", 1, 1, Reason::Steady),
        ]);
        p.publish(&[
            variant("a", 1, 2, Reason::KvCacheSaturation),
            variant("b", 1, 1, Reason::Steady),
        ]);
        let summary = p.publish(&[variant("b", 1, 1, Reason::Steady)]);
        assert_eq!(summary.removed, vec![VariantKey::new("ns", "a")]);
        {
            let snap = p.state.lock().unwrap();
            assert!(!snap.gauges.contains_key(&VariantKey::new("ns", "a")));
            assert!(snap.counters.is_empty());
        }
        // Re-created: the first publication is judged against the new baseline only.
        let summary = p.publish(&[
            variant("a", 0, 2, Reason::Steady).with_baseline(2),
            variant("b", 1, 1, Reason::Steady),
        ]);
        assert!(summary.scaling_events.is_empty());
    }

    #[test]
    fn unresolved_target_drops_gauges_but_keeps_counters() {
        let p = publisher();
        p.publish(&[variant("a", 1, 1, Reason::Steady)]);
        p.publish(&[variant("a", 1, 2, Reason::KvCacheSaturation)]);
        let summary = p.publish(&[variant("a", 1, 3, Reason::KvCacheSaturation).unresolved()]);
        assert!(summary.scaling_events.is_empty());
        assert!(summary.removed.is_empty());
        let snap = p.state.lock().unwrap();
        assert!(snap.gauges.is_empty());
        assert_eq!(snap.counters.len(), 1);
    }

    #[test]
    fn publish_one_leaves_other_variants_alone() {
        let p = publisher();
        p.publish(&[
            variant("a", 0, 0, Reason::ScaleToZero),
            variant("b", 1, 1, Reason::Steady),
        ]);
        let mut woken = variant("a", 0, 1, Reason::Steady);
        woken.reason = ScalingReason::ScaleFromZero;
        let summary = p.publish_one(&woken);
        assert_eq!(summary.scaling_events.len(), 1);
        assert_eq!(
            summary.scaling_events[0].reason,
            ScalingReason::ScaleFromZero
        );
        assert_eq!(p.state.lock().unwrap().gauges.len(), 2);
    }

    #[test]
    fn remove_forgets_the_variant() {
        let p = publisher();
        p.publish(&[variant("a", 1, 1, Reason::Steady)]);
        assert!(p.remove(&VariantKey::new("ns", "a")));
        assert!(!p.remove(&VariantKey::new("ns", "a")));
        assert!(p.state.lock().unwrap().gauges.is_empty());
    }

    #[test]
    fn clear_removes_everything() {
        let p = publisher();
        p.publish(&[variant("a", 1, 1, Reason::Steady)]);
        p.publish(&[variant("a", 1, 2, Reason::KvCacheSaturation)]);
        p.clear();
        let snap = p.state.lock().unwrap();
        assert!(snap.gauges.is_empty() && snap.counters.is_empty());
    }
}
