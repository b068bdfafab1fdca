//! Scale targets: the supported kinds, the `scaleTargetRef` index and the pod→target rule
//! (spec/k8s.md §3.3).

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::Pod;

use crate::crd::VariantAutoscaling;
use crate::labels::{LWS_NAME_LABEL, POD_TEMPLATE_HASH_LABEL};

/// Group of `Deployment`.
pub const APPS_GROUP: &str = "apps";
/// Group of `LeaderWorkerSet`.
pub const LWS_GROUP: &str = "leaderworkerset.x-k8s.io";

/// A workload kind that wva-manager can read and scale.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TargetKind {
    /// `apps/v1` Deployment.
    Deployment,
    /// `leaderworkerset.x-k8s.io/v1` LeaderWorkerSet.
    LeaderWorkerSet,
}

impl TargetKind {
    /// The API group of the kind.
    pub fn group(self) -> &'static str {
        match self {
            TargetKind::Deployment => APPS_GROUP,
            TargetKind::LeaderWorkerSet => LWS_GROUP,
        }
    }

    /// The kind's name as written in manifests.
    pub fn as_str(self) -> &'static str {
        match self {
            TargetKind::Deployment => "Deployment",
            TargetKind::LeaderWorkerSet => "LeaderWorkerSet",
        }
    }
}

/// Identity of a scale target: `(namespace, group, kind, name)`; the version is ignored.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TargetKey {
    /// Namespace of the target (always the VA's).
    pub namespace: String,
    /// API group (`apps`, `leaderworkerset.x-k8s.io`, or whatever the VA wrote).
    pub group: String,
    /// Kind as written.
    pub kind: String,
    /// Name of the target.
    pub name: String,
}

impl TargetKey {
    /// The key of a supported kind.
    pub fn of(kind: TargetKind, namespace: &str, name: &str) -> TargetKey {
        TargetKey {
            namespace: namespace.to_owned(),
            group: kind.group().to_owned(),
            kind: kind.as_str().to_owned(),
            name: name.to_owned(),
        }
    }

    /// The supported kind this key names, if any.
    pub fn supported_kind(&self) -> Option<TargetKind> {
        [TargetKind::Deployment, TargetKind::LeaderWorkerSet]
            .into_iter()
            .find(|k| k.group() == self.group && k.as_str() == self.kind)
    }
}

/// The target key of a VA: `apiVersion` absent → the kind's default group.
pub fn target_key(va: &VariantAutoscaling) -> TargetKey {
    let target = &va.spec.scale_target_ref;
    let group = match target.api_version.as_deref().filter(|v| !v.is_empty()) {
        // `v1` (no slash) is the core group, which holds no supported kind.
        Some(api_version) => api_version
            .rsplit_once('/')
            .map(|(g, _)| g)
            .unwrap_or("")
            .to_owned(),
        None => match target.kind.as_str() {
            "Deployment" => APPS_GROUP.to_owned(),
            "LeaderWorkerSet" => LWS_GROUP.to_owned(),
            _ => String::new(),
        },
    };
    TargetKey {
        namespace: va.metadata.namespace.clone().unwrap_or_default(),
        group,
        kind: target.kind.clone(),
        name: target.name.clone(),
    }
}

/// `(namespace, name)` of an object.
pub type ObjectName = (String, String);

/// The `scaleTargetRef` index: target → VAs naming it (linkerd-style: `apply`, `delete`,
/// `reset`), so target events map to VAs without scanning.
#[derive(Debug, Default, Clone)]
pub struct TargetIndex {
    by_target: BTreeMap<TargetKey, BTreeSet<ObjectName>>,
    by_va: BTreeMap<ObjectName, TargetKey>,
}

impl TargetIndex {
    /// Records (or moves) a VA's entry.
    pub fn apply(&mut self, va: &VariantAutoscaling) {
        let id = object_name(va);
        self.delete(&id.0, &id.1);
        let key = target_key(va);
        self.by_target
            .entry(key.clone())
            .or_default()
            .insert(id.clone());
        self.by_va.insert(id, key);
    }

    /// Drops a VA's entry.
    pub fn delete(&mut self, namespace: &str, name: &str) {
        let id = (namespace.to_owned(), name.to_owned());
        if let Some(key) = self.by_va.remove(&id)
            && let Some(set) = self.by_target.get_mut(&key)
        {
            set.remove(&id);
            if set.is_empty() {
                self.by_target.remove(&key);
            }
        }
    }

    /// Rebuilds the index from a full list (on every `InitDone`).
    pub fn reset<'a>(&mut self, vas: impl IntoIterator<Item = &'a VariantAutoscaling>) {
        self.by_target.clear();
        self.by_va.clear();
        vas.into_iter().for_each(|va| self.apply(va));
    }

    /// The VAs naming `key`, in `(namespace, name)` order.
    pub fn vas_for(&self, key: &TargetKey) -> impl Iterator<Item = &ObjectName> {
        self.by_target.get(key).into_iter().flatten()
    }

    /// The target a VA names, if indexed.
    pub fn target_of(&self, namespace: &str, name: &str) -> Option<&TargetKey> {
        self.by_va.get(&(namespace.to_owned(), name.to_owned()))
    }
}

/// `(namespace, name)` of a VA.
pub fn object_name(va: &VariantAutoscaling) -> ObjectName {
    (
        va.metadata.namespace.clone().unwrap_or_default(),
        va.metadata.name.clone().unwrap_or_default(),
    )
}

/// Of several VAs naming one target, the owner: the oldest by `creationTimestamp`, then name.
pub fn conflict_owner<'a>(
    candidates: impl IntoIterator<Item = &'a VariantAutoscaling>,
) -> Option<&'a VariantAutoscaling> {
    candidates.into_iter().min_by(|a, b| {
        let ka = (
            a.metadata.creation_timestamp.as_ref().map(|t| t.0),
            a.metadata.name.as_deref(),
        );
        let kb = (
            b.metadata.creation_timestamp.as_ref().map(|t| t.0),
            b.metadata.name.as_deref(),
        );
        ka.cmp(&kb)
    })
}

/// The target owning a pod, without a ReplicaSet watch: owner ReplicaSet `R` with
/// `pod-template-hash=H` → Deployment `R` minus `-H`; label `leaderworkerset.sigs.k8s.io/name=L`
/// → LeaderWorkerSet `L`.
pub fn pod_target(pod: &Pod) -> Option<TargetKey> {
    let namespace = pod.metadata.namespace.as_deref().unwrap_or_default();
    let labels = pod.metadata.labels.as_ref();
    if let Some(lws) = labels.and_then(|l| l.get(LWS_NAME_LABEL)) {
        return Some(TargetKey::of(TargetKind::LeaderWorkerSet, namespace, lws));
    }
    let hash = labels.and_then(|l| l.get(POD_TEMPLATE_HASH_LABEL))?;
    let owner = pod
        .metadata
        .owner_references
        .as_ref()?
        .iter()
        .find(|o| o.kind == "ReplicaSet" && o.api_version.starts_with("apps/"))?;
    let deployment = owner.name.strip_suffix(hash.as_str())?.strip_suffix('-')?;
    (!deployment.is_empty()).then(|| TargetKey::of(TargetKind::Deployment, namespace, deployment))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_fixtures::{mk_pod, mk_va, with_api_version, with_created};

    #[test]
    fn deployment_without_api_version_defaults_to_apps() {
        let va = mk_va("ns", "a", "d", None);
        let key = target_key(&va);
        assert_eq!(key, TargetKey::of(TargetKind::Deployment, "ns", "d"));
        assert_eq!(key.supported_kind(), Some(TargetKind::Deployment));
    }

    #[test]
    fn version_part_of_api_version_is_ignored() {
        let va = with_api_version(mk_va("ns", "a", "d", None), "apps/v1beta2");
        assert_eq!(
            target_key(&va).supported_kind(),
            Some(TargetKind::Deployment)
        );
    }

    #[test]
    fn core_group_and_unknown_kinds_are_unsupported() {
        let core = with_api_version(mk_va("ns", "a", "d", None), "v1");
        assert_eq!(target_key(&core).group, "");
        assert_eq!(target_key(&core).supported_kind(), None);
        let mut sts = with_api_version(mk_va("ns", "b", "s", None), "apps/v1");
        sts.spec.scale_target_ref.kind = "StatefulSet".into();
        assert_eq!(target_key(&sts).supported_kind(), None);
    }

    #[test]
    fn index_maps_targets_to_vas_and_follows_edits() {
        let mut index = TargetIndex::default();
        index.apply(&mk_va("ns", "a", "d", None));
        index.apply(&mk_va("ns", "b", "d", None));
        let d = TargetKey::of(TargetKind::Deployment, "ns", "d");
        let names: Vec<_> = index.vas_for(&d).cloned().collect();
        assert_eq!(
            names,
            [("ns".into(), "a".into()), ("ns".into(), "b".into())]
        );
        index.apply(&mk_va("ns", "b", "e", None));
        assert_eq!(index.vas_for(&d).count(), 1);
        assert_eq!(
            index.target_of("ns", "b"),
            Some(&TargetKey::of(TargetKind::Deployment, "ns", "e"))
        );
        index.delete("ns", "a");
        assert_eq!(index.vas_for(&d).count(), 0);
    }

    #[test]
    fn index_reset_replaces_everything() {
        let mut index = TargetIndex::default();
        index.apply(&mk_va("ns", "gone", "x", None));
        index.reset([&mk_va("ns", "a", "d", None)]);
        assert_eq!(index.target_of("ns", "gone"), None);
        assert!(index.target_of("ns", "a").is_some());
    }

    #[test]
    fn oldest_va_owns_a_shared_target_then_name_breaks_ties() {
        let old = with_created(mk_va("ns", "zeta", "d", None), 100);
        let new = with_created(mk_va("ns", "alpha", "d", None), 200);
        assert_eq!(
            conflict_owner([&new, &old])
                .unwrap()
                .metadata
                .name
                .as_deref(),
            Some("zeta")
        );
        let same = with_created(mk_va("ns", "beta", "d", None), 100);
        assert_eq!(
            conflict_owner([&old, &same])
                .unwrap()
                .metadata
                .name
                .as_deref(),
            Some("beta")
        );
    }

    #[test]
    fn pod_of_replicaset_maps_to_its_deployment() {
        let pod = mk_pod("ns", "vllm-7d9f8-abcde", "vllm", true);
        assert_eq!(
            pod_target(&pod),
            Some(TargetKey::of(TargetKind::Deployment, "ns", "vllm"))
        );
    }

    #[test]
    fn pod_with_mismatched_hash_maps_to_nothing() {
        let mut pod = mk_pod("ns", "p", "vllm", true);
        pod.metadata
            .labels
            .as_mut()
            .unwrap()
            .insert(POD_TEMPLATE_HASH_LABEL.into(), "other".into());
        assert_eq!(pod_target(&pod), None);
    }

    #[test]
    fn pod_of_leaderworkerset_maps_by_label() {
        let mut pod = mk_pod("ns", "p", "vllm", true);
        pod.metadata.owner_references = None;
        pod.metadata.labels = Some([(LWS_NAME_LABEL.to_owned(), "big".to_owned())].into());
        assert_eq!(
            pod_target(&pod),
            Some(TargetKey::of(TargetKind::LeaderWorkerSet, "ns", "big"))
        );
    }
}
