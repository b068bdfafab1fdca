//! Catalogue configuration (spec §8).

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::QueryGroup;

/// Which queries run and how selectors are built.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CatalogueConfig {
    /// Enabled groups; `Core` is always on, whether listed or not.
    pub groups: BTreeSet<QueryGroup>,
    /// Label holding the namespace (default `namespace`).
    pub namespace_label: String,
    /// Label holding the pod name (default `pod`).
    pub pod_label: String,
    /// Largest selector text before falling back to a namespace-only selector (default 8192).
    pub selector_max_bytes: usize,
}

impl Default for CatalogueConfig {
    fn default() -> Self {
        CatalogueConfig {
            groups: [
                QueryGroup::Core,
                QueryGroup::SaturationV2,
                QueryGroup::Queueing,
                QueryGroup::ScaleToZero,
            ]
            .into_iter()
            .collect(),
            namespace_label: "namespace".to_string(),
            pod_label: "pod".to_string(),
            selector_max_bytes: 8192,
        }
    }
}

impl CatalogueConfig {
    /// A config with exactly these groups (plus `Core`) and default labels and limit.
    pub fn with_groups(groups: impl IntoIterator<Item = QueryGroup>) -> Self {
        let mut groups: BTreeSet<QueryGroup> = groups.into_iter().collect();
        groups.insert(QueryGroup::Core);
        CatalogueConfig {
            groups,
            ..CatalogueConfig::default()
        }
    }

    /// Whether a group is enabled (`Core` always is).
    pub fn enabled(&self, group: QueryGroup) -> bool {
        group == QueryGroup::Core || self.groups.contains(&group)
    }
}
