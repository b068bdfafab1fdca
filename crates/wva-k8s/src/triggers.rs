//! What triggers work (spec/k8s.md §3.2, §3.4): which Pod changes are forwarded to the
//! controller, and when a reconcile must request a cycle.

use k8s_openapi::api::core::v1::Pod;

use crate::inventory::Fingerprint;

/// Whether a Pod change is forwarded: creation, deletion (including a new
/// `deletionTimestamp`), a Ready flip or a phase change. Other updates are dropped.
pub fn pod_change_matters(previous: Option<&Pod>, current: Option<&Pod>) -> bool {
    match (previous, current) {
        (None, _) | (_, None) => true,
        (Some(old), Some(new)) => {
            old.metadata.deletion_timestamp.is_some() != new.metadata.deletion_timestamp.is_some()
                || ready(old) != ready(new)
                || phase(old) != phase(new)
        }
    }
}

fn ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

fn phase(pod: &Pod) -> Option<&str> {
    pod.status.as_ref().and_then(|s| s.phase.as_deref())
}

/// Whether a reconcile must request a cycle: the variant's entry differs from the fingerprint
/// recorded with its last outcome (or it has none yet).
pub fn cycle_needed(recorded: Option<&Fingerprint>, current: &Fingerprint) -> bool {
    recorded != Some(current)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_fixtures::{at, mk_pod};

    fn fingerprint(spec_replicas: u32, all_ready: bool) -> Fingerprint {
        Fingerprint {
            generation: 1,
            spec_replicas,
            all_ready,
            accelerator: "H100".into(),
            gpus_per_replica: 1,
        }
    }

    #[test]
    fn creation_and_deletion_matter() {
        let pod = mk_pod("ns", "p", "d", false);
        assert!(pod_change_matters(None, Some(&pod)));
        assert!(pod_change_matters(Some(&pod), None));
        let mut leaving = pod.clone();
        leaving.metadata.deletion_timestamp = Some(at(1));
        assert!(pod_change_matters(Some(&pod), Some(&leaving)));
    }

    #[test]
    fn ready_flip_and_phase_change_matter_but_label_edits_do_not() {
        let pending = mk_pod("ns", "p", "d", false);
        let ready = mk_pod("ns", "p", "d", true);
        assert!(pod_change_matters(Some(&pending), Some(&ready)));
        let mut failed = ready.clone();
        failed.status.as_mut().unwrap().phase = Some("Failed".into());
        assert!(pod_change_matters(Some(&ready), Some(&failed)));
        let mut relabelled = ready.clone();
        relabelled
            .metadata
            .labels
            .as_mut()
            .unwrap()
            .insert("x".into(), "y".into());
        relabelled.metadata.resource_version = Some("2".into());
        assert!(!pod_change_matters(Some(&ready), Some(&relabelled)));
    }

    #[test]
    fn cycle_is_requested_when_the_fingerprint_moved() {
        assert!(cycle_needed(None, &fingerprint(1, true)));
        assert!(!cycle_needed(
            Some(&fingerprint(1, true)),
            &fingerprint(1, true)
        ));
        assert!(
            cycle_needed(Some(&fingerprint(1, false)), &fingerprint(1, true)),
            "pending dropped to 0"
        );
        assert!(
            cycle_needed(Some(&fingerprint(1, true)), &fingerprint(0, true)),
            "spec.replicas changed"
        );
    }
}
