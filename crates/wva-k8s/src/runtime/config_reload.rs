//! ConfigMap hot reload (spec/k8s.md §6.4) as a pure state machine: the last good version of
//! every saturation / scale-to-zero ConfigMap, global and namespace-local, and their merge into
//! the configuration in force. The watching task is in [`crate::runtime::config_watch`].

use std::collections::BTreeMap;
use std::sync::Arc;

use wva_core::{
    ConfigIssue, SaturationConfig, SaturationEntry, ScaleToZeroConfig, ScaleToZeroEntry,
};
use wva_exposition::ConfigMapKind;

use crate::handles::ActiveConfig;

/// The key of the built-in default entry.
const DEFAULT_KEY: &str = "default";

/// One kind of hot-reloaded ConfigMap: how its data parses and how local entries are scoped.
trait Kind {
    /// The entry type as written.
    type Entry: Clone + PartialEq + std::fmt::Debug;
    /// Parses whole ConfigMap data: accepted entries, rejections, warnings.
    fn parse(
        data: &BTreeMap<String, String>,
    ) -> (
        BTreeMap<String, Self::Entry>,
        Vec<ConfigIssue>,
        Vec<ConfigIssue>,
    );
    /// Structural and completion checks of decoded entries: the rejections.
    fn check(entries: &BTreeMap<String, Self::Entry>) -> Vec<ConfigIssue>;
    /// The entry's `namespace` field.
    fn namespace(entry: &Self::Entry) -> Option<&str>;
    /// Sets `namespace` and, for a namespace default, clears `model_id`.
    fn scope(entry: &mut Self::Entry, namespace: &str, namespace_default: bool);
}

struct Saturation;
struct ScaleToZero;

impl Kind for Saturation {
    type Entry = SaturationEntry;
    fn parse(
        data: &BTreeMap<String, String>,
    ) -> (
        BTreeMap<String, SaturationEntry>,
        Vec<ConfigIssue>,
        Vec<ConfigIssue>,
    ) {
        let (config, rejected) = SaturationConfig::parse_configmap(data);
        (config.entries().clone(), rejected, Vec::new())
    }
    fn check(entries: &BTreeMap<String, SaturationEntry>) -> Vec<ConfigIssue> {
        SaturationConfig::from_entries(entries).1
    }
    fn namespace(entry: &SaturationEntry) -> Option<&str> {
        entry.namespace.as_deref()
    }
    fn scope(entry: &mut SaturationEntry, namespace: &str, namespace_default: bool) {
        entry.namespace = Some(namespace.to_owned());
        if namespace_default {
            entry.model_id = None;
        }
    }
}

impl Kind for ScaleToZero {
    type Entry = ScaleToZeroEntry;
    fn parse(
        data: &BTreeMap<String, String>,
    ) -> (
        BTreeMap<String, ScaleToZeroEntry>,
        Vec<ConfigIssue>,
        Vec<ConfigIssue>,
    ) {
        let (config, rejected, warnings) = ScaleToZeroConfig::parse_configmap(data);
        (config.entries().clone(), rejected, warnings)
    }
    fn check(entries: &BTreeMap<String, ScaleToZeroEntry>) -> Vec<ConfigIssue> {
        ScaleToZeroConfig::from_entries(entries).1
    }
    fn namespace(entry: &ScaleToZeroEntry) -> Option<&str> {
        entry.namespace.as_deref()
    }
    fn scope(entry: &mut ScaleToZeroEntry, namespace: &str, namespace_default: bool) {
        entry.namespace = Some(namespace.to_owned());
        if namespace_default {
            entry.model_id = None;
        }
    }
}

/// The rejection of a local entry that names another namespace.
pub fn foreign_namespace_message(namespace: &str) -> String {
    format!("namespace must be \"{namespace}\" in a namespace-local ConfigMap")
}

/// One evaluated version: accepted entries (local ones already scoped as `N/K`), rejections
/// and warnings, keyed by the ConfigMap's own keys.
struct Evaluated<E> {
    entries: BTreeMap<String, E>,
    rejected: Vec<ConfigIssue>,
    warnings: Vec<ConfigIssue>,
}

fn evaluate_global<K: Kind>(data: &BTreeMap<String, String>) -> Evaluated<K::Entry> {
    let (entries, rejected, warnings) = K::parse(data);
    Evaluated {
        entries,
        rejected,
        warnings,
    }
}

/// A local ConfigMap in `namespace`: each key is decoded alone (as a `default` document, so
/// the core's wording applies), scoped to `N/default` or `N/K`, then the scoped set is checked.
fn evaluate_local<K: Kind>(
    namespace: &str,
    data: &BTreeMap<String, String>,
) -> Evaluated<K::Entry> {
    let mut rejected = Vec::new();
    let mut warnings = Vec::new();
    let mut entries = BTreeMap::new();
    let mut origin = BTreeMap::new();
    for (key, text) in data {
        let single = BTreeMap::from([(DEFAULT_KEY.to_owned(), text.clone())]);
        let (mut decoded, issues, warns) = K::parse(&single);
        rejected.extend(issues.into_iter().map(|(_, m)| (key.clone(), m)));
        warnings.extend(warns.into_iter().map(|(_, m)| (key.clone(), m)));
        let Some(mut entry) = decoded.remove(DEFAULT_KEY) else {
            continue;
        };
        if K::namespace(&entry).is_some_and(|ns| !ns.is_empty() && ns != namespace) {
            rejected.push((key.clone(), foreign_namespace_message(namespace)));
            continue;
        }
        K::scope(&mut entry, namespace, key == DEFAULT_KEY);
        let scoped = format!("{namespace}/{key}");
        origin.insert(scoped.clone(), key.clone());
        entries.insert(scoped, entry);
    }
    for (scoped, message) in K::check(&entries) {
        entries.remove(&scoped);
        let key = origin.get(&scoped).cloned().unwrap_or(scoped);
        rejected.push((key, message));
    }
    rejected.sort();
    rejected.dedup();
    warnings.sort();
    Evaluated {
        entries,
        rejected,
        warnings,
    }
}

/// What happened to one ConfigMap version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReloadOutcome {
    /// Which configuration the ConfigMap feeds.
    pub kind: ConfigMapKind,
    /// Whether the configuration in force changed (rebuild, swap, request a cycle).
    pub changed: bool,
    /// Rejected keys with their messages (empty: `result="ok"`).
    pub rejected: Vec<ConfigIssue>,
    /// Accepted entries with an unusable setting (WARN log only).
    pub warnings: Vec<ConfigIssue>,
    /// The version had no last good one, so its accepted entries are used despite rejections.
    pub first_version: bool,
}

/// Last good versions per ConfigMap of one kind: the global one and the local ones.
struct KindState<E> {
    global: Option<BTreeMap<String, E>>,
    locals: BTreeMap<String, BTreeMap<String, E>>,
    last_data: BTreeMap<String, BTreeMap<String, String>>,
}

impl<E> Default for KindState<E> {
    fn default() -> Self {
        KindState {
            global: None,
            locals: BTreeMap::new(),
            last_data: BTreeMap::new(),
        }
    }
}

impl<E: Clone + PartialEq> KindState<E> {
    fn apply(&mut self, global: bool, namespace: &str, version: Evaluated<E>) -> (bool, bool) {
        let previous = if global {
            self.global.as_ref()
        } else {
            self.locals.get(namespace)
        };
        let first_version = previous.is_none();
        if !version.rejected.is_empty() && !first_version {
            return (false, false);
        }
        let changed = previous != Some(&version.entries);
        if global {
            self.global = Some(version.entries);
        } else {
            self.locals.insert(namespace.to_owned(), version.entries);
        }
        (changed, first_version)
    }

    fn delete(&mut self, global: bool, namespace: &str) -> bool {
        self.last_data.remove(namespace);
        if global {
            self.global.take().is_some()
        } else {
            self.locals.remove(namespace).is_some()
        }
    }

    fn merged(&self, eligible: &dyn Fn(&str) -> bool) -> BTreeMap<String, E> {
        let mut all = self.global.clone().unwrap_or_default();
        for (namespace, entries) in &self.locals {
            if eligible(namespace) {
                all.extend(entries.iter().map(|(k, e)| (k.clone(), e.clone())));
            }
        }
        all
    }
}

/// The hot-reload state machine of §6.4. ConfigMaps in `pod_namespace` are global; the same
/// names elsewhere are namespace-local overrides.
pub struct ConfigReloader {
    pod_namespace: String,
    saturation: KindState<SaturationEntry>,
    scale_to_zero: KindState<ScaleToZeroEntry>,
}

impl ConfigReloader {
    /// A reloader with no ConfigMap seen yet (built-in defaults).
    pub fn new(pod_namespace: impl Into<String>) -> Self {
        ConfigReloader {
            pod_namespace: pod_namespace.into(),
            saturation: KindState::default(),
            scale_to_zero: KindState::default(),
        }
    }

    /// Takes a new version of the `kind` ConfigMap in `namespace`. `None` when its data equals
    /// the last version seen (a relist or a metadata-only edit): nothing to report.
    pub fn apply(
        &mut self,
        kind: ConfigMapKind,
        namespace: &str,
        data: &BTreeMap<String, String>,
    ) -> Option<ReloadOutcome> {
        let global = namespace == self.pod_namespace;
        match kind {
            ConfigMapKind::Saturation => {
                Self::apply_kind::<Saturation>(&mut self.saturation, kind, global, namespace, data)
            }
            ConfigMapKind::ScaleToZero => Self::apply_kind::<ScaleToZero>(
                &mut self.scale_to_zero,
                kind,
                global,
                namespace,
                data,
            ),
        }
    }

    fn apply_kind<K: Kind>(
        state: &mut KindState<K::Entry>,
        kind: ConfigMapKind,
        global: bool,
        namespace: &str,
        data: &BTreeMap<String, String>,
    ) -> Option<ReloadOutcome> {
        if state.last_data.get(namespace) == Some(data) {
            return None;
        }
        state.last_data.insert(namespace.to_owned(), data.clone());
        let version = if global {
            evaluate_global::<K>(data)
        } else {
            evaluate_local::<K>(namespace, data)
        };
        let rejected = version.rejected.clone();
        let warnings = version.warnings.clone();
        let (changed, first_version) = state.apply(global, namespace, version);
        Some(ReloadOutcome {
            kind,
            changed,
            rejected,
            warnings,
            first_version,
        })
    }

    /// The `kind` ConfigMap in `namespace` was deleted: a local one's override is dropped, a
    /// global one reverts that kind to the built-in defaults. Returns whether anything changed.
    pub fn delete(&mut self, kind: ConfigMapKind, namespace: &str) -> bool {
        let global = namespace == self.pod_namespace;
        match kind {
            ConfigMapKind::Saturation => self.saturation.delete(global, namespace),
            ConfigMapKind::ScaleToZero => self.scale_to_zero.delete(global, namespace),
        }
    }

    /// The configuration in force: the global entries plus those of every local ConfigMap whose
    /// namespace is `eligible`; also returns the issues the merge itself raised (e.g. an entry
    /// invalid under another ConfigMap's parent), which leave that entry out.
    pub fn build(&self, eligible: &dyn Fn(&str) -> bool) -> (ActiveConfig, Vec<ConfigIssue>) {
        let (saturation, mut issues) =
            SaturationConfig::from_entries(&self.saturation.merged(eligible));
        let (scale_to_zero, rejected, _) =
            ScaleToZeroConfig::from_entries(&self.scale_to_zero.merged(eligible));
        issues.extend(rejected);
        (
            ActiveConfig {
                saturation: Arc::new(saturation),
                scale_to_zero: Arc::new(scale_to_zero),
            },
            issues,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    const SAT: ConfigMapKind = ConfigMapKind::Saturation;
    const STZ: ConfigMapKind = ConfigMapKind::ScaleToZero;

    fn all(_: &str) -> bool {
        true
    }

    #[test]
    fn valid_global_version_replaces_the_config() {
        let mut r = ConfigReloader::new("wva");
        let out = r
            .apply(SAT, "wva", &data(&[("default", "kvCacheThreshold: 0.7")]))
            .unwrap();
        assert!(out.changed && out.rejected.is_empty() && out.first_version);
        let (config, issues) = r.build(&all);
        assert!(issues.is_empty());
        assert_eq!(config.saturation.global().kv_cache_threshold, 0.7);
        let out = r
            .apply(SAT, "wva", &data(&[("default", "kvCacheThreshold: 0.6")]))
            .unwrap();
        assert!(out.changed && !out.first_version);
        assert_eq!(r.build(&all).0.saturation.global().kv_cache_threshold, 0.6);
    }

    #[test]
    fn rejected_edit_keeps_the_last_good_version_whole() {
        let mut r = ConfigReloader::new("wva");
        r.apply(
            SAT,
            "wva",
            &data(&[
                ("default", "kvCacheThreshold: 0.7"),
                ("m", "model_id: m\nqueueLengthThreshold: 3"),
            ]),
        );
        let out = r
            .apply(
                SAT,
                "wva",
                &data(&[("default", "kvCacheThreshold: 0.5"), ("m", "bogus: 1")]),
            )
            .unwrap();
        assert!(!out.changed && !out.first_version);
        assert_eq!(
            out.rejected,
            vec![("m".into(), "unknown field \"bogus\"".into())]
        );
        let (config, _) = r.build(&all);
        assert_eq!(config.saturation.global().kv_cache_threshold, 0.7);
        assert!(config.saturation.entries().contains_key("m"));
    }

    #[test]
    fn first_version_uses_its_accepted_entries() {
        let mut r = ConfigReloader::new("wva");
        let out = r
            .apply(
                SAT,
                "wva",
                &data(&[
                    ("default", "kvCacheThreshold: 0.8"),
                    ("bad", "kvCacheThreshold: ["),
                ]),
            )
            .unwrap();
        assert!(out.first_version && out.changed);
        assert_eq!(out.rejected.len(), 1);
        assert_eq!(out.rejected[0].0, "bad");
        assert_eq!(r.build(&all).0.saturation.global().kv_cache_threshold, 0.8);
    }

    #[test]
    fn an_unchanged_version_reports_nothing() {
        let mut r = ConfigReloader::new("wva");
        let d = data(&[("default", "kvCacheThreshold: 0.8")]);
        assert!(r.apply(SAT, "wva", &d).is_some());
        assert!(r.apply(SAT, "wva", &d).is_none());
    }

    #[test]
    fn local_configmap_is_scoped_to_its_namespace() {
        let mut r = ConfigReloader::new("wva");
        let out = r
            .apply(
                STZ,
                "team",
                &data(&[
                    ("default", "model_id: ignored\nenable_scale_to_zero: true"),
                    ("m", "model_id: m\nenable_scale_to_zero: false"),
                ]),
            )
            .unwrap();
        assert!(out.rejected.is_empty(), "{:?}", out.rejected);
        let (config, _) = r.build(&all);
        let keys: Vec<&String> = config.scale_to_zero.entries().keys().collect();
        assert_eq!(keys, ["team/default", "team/m"]);
        let default = &config.scale_to_zero.entries()["team/default"];
        assert_eq!(default.namespace.as_deref(), Some("team"));
        assert_eq!(default.model_id, None);
        assert!(config.scale_to_zero.resolve("x", "team", false).enabled);
        assert!(!config.scale_to_zero.resolve("m", "team", true).enabled);
        assert!(!config.scale_to_zero.resolve("x", "other", false).enabled);
        let (ineligible, _) = r.build(&|ns| ns != "team");
        assert!(ineligible.scale_to_zero.entries().is_empty());
    }

    #[test]
    fn local_entry_naming_another_namespace_is_rejected() {
        let mut r = ConfigReloader::new("wva");
        let out = r
            .apply(
                SAT,
                "team",
                &data(&[("m", "model_id: m\nnamespace: other")]),
            )
            .unwrap();
        assert_eq!(
            out.rejected,
            vec![(
                "m".into(),
                "namespace must be \"team\" in a namespace-local ConfigMap".into()
            )]
        );
    }

    #[test]
    fn deleting_a_local_drops_only_it_and_deleting_the_global_reverts_to_builtins() {
        let mut r = ConfigReloader::new("wva");
        r.apply(SAT, "wva", &data(&[("default", "kvCacheThreshold: 0.7")]));
        r.apply(SAT, "team", &data(&[("default", "kvCacheThreshold: 0.9")]));
        assert_eq!(
            r.build(&all)
                .0
                .saturation
                .resolve("m", "team")
                .kv_cache_threshold,
            0.9
        );
        assert!(r.delete(SAT, "team"));
        let (config, _) = r.build(&all);
        assert_eq!(
            config.saturation.resolve("m", "team").kv_cache_threshold,
            0.7
        );
        assert!(r.delete(SAT, "wva"));
        assert!(!r.delete(SAT, "wva"));
        assert_eq!(
            r.build(&all).0.saturation.global(),
            ActiveConfig::default().saturation.global()
        );
    }
}
