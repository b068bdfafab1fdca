//! Accelerator resolution (spec/k8s.md §1.6): the VA label, else a GPU product derived from the
//! target's pod template, else `unknown`. A VA is never skipped for want of an accelerator.

use k8s_openapi::api::core::v1::{NodeSelectorTerm, PodSpec};

use crate::crd::VariantAutoscaling;
use crate::labels::ACCELERATOR_LABEL;

/// Accelerator name published when none can be resolved.
pub const UNKNOWN_ACCELERATOR: &str = "unknown";

/// Node label keys naming a GPU product, in lookup order, with whether the source writes
/// lowercase names (whose result is uppercased).
pub const PRODUCT_KEYS: [(&str, bool); 6] = [
    ("nvidia.com/gpu.product", false),
    ("amd.com/gpu.product", false),
    ("amd.com/gpu.product-name", false),
    ("intel.com/gpu.product", false),
    ("cloud.google.com/gke-accelerator", true),
    ("karpenter.k8s.aws/instance-gpu-name", true),
];

/// Where a resolved accelerator name came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AcceleratorSource {
    /// The VA's `inference.optimization/acceleratorName` label.
    Label,
    /// A product key of the pod template's node selector or required node affinity.
    Derived {
        /// The node label key, e.g. `nvidia.com/gpu.product`.
        key: String,
        /// The value as written, e.g. `NVIDIA-H100-80GB-HBM3`.
        value: String,
    },
    /// Nothing usable; the name is `unknown`.
    Unknown,
}

/// The accelerator of a variant and its provenance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcceleratorResolution {
    /// The name published as `accelerator_type`, e.g. `H100` or `unknown`.
    pub name: String,
    /// Where it came from.
    pub source: AcceleratorSource,
}

impl AcceleratorResolution {
    fn unknown() -> Self {
        AcceleratorResolution {
            name: UNKNOWN_ACCELERATOR.to_owned(),
            source: AcceleratorSource::Unknown,
        }
    }
}

/// Resolves the accelerator of `va` from its label, else from `pod_specs` in order (a
/// Deployment's template; a LeaderWorkerSet's worker then leader template), else `unknown`.
pub fn resolve_accelerator(
    va: &VariantAutoscaling,
    pod_specs: &[&PodSpec],
) -> AcceleratorResolution {
    if let Some(label) = va
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(ACCELERATOR_LABEL))
        && label.chars().count() >= 2
    {
        return AcceleratorResolution {
            name: label.clone(),
            source: AcceleratorSource::Label,
        };
    }
    pod_specs
        .iter()
        .find_map(|spec| from_node_selector(spec).or_else(|| from_affinity(spec)))
        .unwrap_or_else(AcceleratorResolution::unknown)
}

/// The GPU product named by a node's labels (first product key present), normalised.
pub fn product_of_labels(labels: &std::collections::BTreeMap<String, String>) -> Option<String> {
    PRODUCT_KEYS
        .iter()
        .find_map(|(key, lowercase)| labels.get(*key).map(|v| normalise_product(v, *lowercase)))
        .flatten()
}

fn from_node_selector(spec: &PodSpec) -> Option<AcceleratorResolution> {
    let selector = spec.node_selector.as_ref()?;
    PRODUCT_KEYS.iter().find_map(|(key, lowercase)| {
        let value = selector.get(*key)?;
        let name = normalise_product(value, *lowercase)?;
        Some(AcceleratorResolution {
            name,
            source: AcceleratorSource::Derived {
                key: (*key).to_owned(),
                value: value.clone(),
            },
        })
    })
}

/// Required node affinity counts only when every term constrains a product key with `In` and all
/// values normalise to one name.
fn from_affinity(spec: &PodSpec) -> Option<AcceleratorResolution> {
    let terms: &[NodeSelectorTerm] = &spec
        .affinity
        .as_ref()?
        .node_affinity
        .as_ref()?
        .required_during_scheduling_ignored_during_execution
        .as_ref()?
        .node_selector_terms;
    let mut found: Option<(String, String, String)> = None;
    for term in terms {
        let (key, lowercase, values) = product_expression(term)?;
        for value in values {
            let name = normalise_product(value, lowercase)?;
            match &found {
                None => found = Some((key.to_owned(), value.clone(), name)),
                Some((_, _, first)) if *first == name => {}
                Some(_) => return None,
            }
        }
    }
    let (key, value, name) = found?;
    Some(AcceleratorResolution {
        name,
        source: AcceleratorSource::Derived { key, value },
    })
}

fn product_expression(term: &NodeSelectorTerm) -> Option<(&'static str, bool, &[String])> {
    let expressions = term.match_expressions.as_deref()?;
    PRODUCT_KEYS.iter().find_map(|(key, lowercase)| {
        let expr = expressions
            .iter()
            .find(|e| e.key == *key && e.operator == "In")?;
        let values = expr.values.as_deref().filter(|v| !v.is_empty())?;
        Some((*key, *lowercase, values))
    })
}

/// Normalises a GPU product label value: `_` and spaces become `-`, a `Tesla`/`Instinct` token
/// right after an `NVIDIA`/`AMD` vendor token is dropped, then the core's accelerator
/// normalisation; lowercase sources are uppercased. Results shorter than 2 characters → `None`.
pub fn normalise_product(value: &str, lowercase_source: bool) -> Option<String> {
    let dashed: String = value
        .chars()
        .map(|c| if c == '_' || c == ' ' { '-' } else { c })
        .collect();
    let tokens: Vec<&str> = dashed.split('-').collect();
    let mut kept: Vec<&str> = Vec::with_capacity(tokens.len());
    for (i, token) in tokens.iter().enumerate() {
        let after_vendor = i > 0
            && (tokens[i - 1].eq_ignore_ascii_case("nvidia")
                || tokens[i - 1].eq_ignore_ascii_case("amd"));
        let series = token.eq_ignore_ascii_case("tesla") || token.eq_ignore_ascii_case("instinct");
        if !(after_vendor && series) {
            kept.push(token);
        }
    }
    let mut name = wva_core::normalize_accelerator(&kept.join("-"));
    if lowercase_source {
        name = name.to_uppercase();
    }
    (name.chars().count() >= 2).then_some(name)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use k8s_openapi::api::core::v1::{
        Affinity, NodeAffinity, NodeSelector, NodeSelectorRequirement, NodeSelectorTerm,
    };

    use super::*;
    use crate::test_fixtures::mk_va;

    fn spec_with_selector(key: &str, value: &str) -> PodSpec {
        PodSpec {
            node_selector: Some(BTreeMap::from([(key.to_owned(), value.to_owned())])),
            ..Default::default()
        }
    }

    fn term(key: &str, operator: &str, values: &[&str]) -> NodeSelectorTerm {
        NodeSelectorTerm {
            match_expressions: Some(vec![NodeSelectorRequirement {
                key: key.to_owned(),
                operator: operator.to_owned(),
                values: Some(values.iter().map(|v| (*v).to_owned()).collect()),
            }]),
            ..Default::default()
        }
    }

    fn spec_with_terms(terms: Vec<NodeSelectorTerm>) -> PodSpec {
        PodSpec {
            affinity: Some(Affinity {
                node_affinity: Some(NodeAffinity {
                    required_during_scheduling_ignored_during_execution: Some(NodeSelector {
                        node_selector_terms: terms,
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn product_names_normalise_per_spec_vectors() {
        let vectors = [
            ("NVIDIA-H100-80GB-HBM3", false, "H100"),
            ("NVIDIA-A100-SXM4-80GB", false, "A100"),
            ("Tesla-T4", false, "T4"),
            ("NVIDIA-Tesla-V100-SXM2-16GB", false, "V100"),
            ("AMD-MI300X-192G", false, "MI300X"),
            ("AMD_Instinct_MI300X", false, "MI300X"),
            ("Intel-Gaudi-2-96GB", false, "Gaudi-2"),
            ("nvidia-tesla-a100", true, "A100"),
            ("nvidia-h100-80gb", true, "H100"),
            ("l40s", true, "L40S"),
        ];
        for (value, lowercase, want) in vectors {
            assert_eq!(
                normalise_product(value, lowercase).as_deref(),
                Some(want),
                "{value}"
            );
        }
    }

    #[test]
    fn names_shorter_than_two_characters_are_unusable() {
        assert_eq!(normalise_product("NVIDIA-X", false), None);
        assert_eq!(normalise_product("", false), None);
    }

    #[test]
    fn label_wins_over_the_pod_template() {
        let va = mk_va("ns", "a", "d", Some("H100"));
        let spec = spec_with_selector("nvidia.com/gpu.product", "NVIDIA-A100-SXM4-80GB");
        let got = resolve_accelerator(&va, &[&spec]);
        assert_eq!(
            got,
            AcceleratorResolution {
                name: "H100".into(),
                source: AcceleratorSource::Label
            }
        );
    }

    #[test]
    fn one_character_label_falls_through_to_the_template() {
        let va = mk_va("ns", "a", "d", Some("X"));
        let spec = spec_with_selector("nvidia.com/gpu.product", "NVIDIA-A100-SXM4-80GB");
        assert_eq!(resolve_accelerator(&va, &[&spec]).name, "A100");
    }

    #[test]
    fn node_selector_derives_the_accelerator_with_its_key_and_value() {
        let va = mk_va("ns", "a", "d", None);
        let spec = spec_with_selector("cloud.google.com/gke-accelerator", "nvidia-tesla-a100");
        let got = resolve_accelerator(&va, &[&spec]);
        assert_eq!(got.name, "A100");
        assert_eq!(
            got.source,
            AcceleratorSource::Derived {
                key: "cloud.google.com/gke-accelerator".into(),
                value: "nvidia-tesla-a100".into()
            }
        );
    }

    #[test]
    fn node_selector_keys_are_tried_in_documented_order() {
        let va = mk_va("ns", "a", "d", None);
        let spec = PodSpec {
            node_selector: Some(BTreeMap::from([
                (
                    "karpenter.k8s.aws/instance-gpu-name".to_owned(),
                    "l40s".to_owned(),
                ),
                (
                    "amd.com/gpu.product".to_owned(),
                    "AMD-MI300X-192G".to_owned(),
                ),
            ])),
            ..Default::default()
        };
        assert_eq!(resolve_accelerator(&va, &[&spec]).name, "MI300X");
    }

    #[test]
    fn affinity_with_one_product_across_terms_derives_it() {
        let va = mk_va("ns", "a", "d", None);
        let spec = spec_with_terms(vec![
            term("nvidia.com/gpu.product", "In", &["NVIDIA-H100-80GB-HBM3"]),
            term("nvidia.com/gpu.product", "In", &["NVIDIA-H100-PCIe"]),
        ]);
        let got = resolve_accelerator(&va, &[&spec]);
        assert_eq!(got.name, "H100");
        assert_eq!(
            got.source,
            AcceleratorSource::Derived {
                key: "nvidia.com/gpu.product".into(),
                value: "NVIDIA-H100-80GB-HBM3".into()
            }
        );
    }

    #[test]
    fn affinity_with_two_products_is_ambiguous() {
        let va = mk_va("ns", "a", "d", None);
        let spec = spec_with_terms(vec![term(
            "nvidia.com/gpu.product",
            "In",
            &["NVIDIA-H100-80GB-HBM3", "NVIDIA-A100-SXM4-80GB"],
        )]);
        assert_eq!(
            resolve_accelerator(&va, &[&spec]),
            AcceleratorResolution::unknown()
        );
    }

    #[test]
    fn affinity_ignores_operators_other_than_in() {
        let va = mk_va("ns", "a", "d", None);
        let spec = spec_with_terms(vec![term(
            "nvidia.com/gpu.product",
            "NotIn",
            &["NVIDIA-H100"],
        )]);
        assert_eq!(resolve_accelerator(&va, &[&spec]).name, UNKNOWN_ACCELERATOR);
    }

    #[test]
    fn affinity_needs_every_term_to_constrain_a_product() {
        let va = mk_va("ns", "a", "d", None);
        let spec = spec_with_terms(vec![
            term("nvidia.com/gpu.product", "In", &["NVIDIA-H100-80GB-HBM3"]),
            term("topology.kubernetes.io/zone", "In", &["a"]),
        ]);
        assert_eq!(resolve_accelerator(&va, &[&spec]).name, UNKNOWN_ACCELERATOR);
    }

    #[test]
    fn worker_template_is_read_before_leader_template() {
        let va = mk_va("ns", "a", "d", None);
        let worker = spec_with_selector("nvidia.com/gpu.product", "NVIDIA-H100-80GB-HBM3");
        let leader = spec_with_selector("nvidia.com/gpu.product", "NVIDIA-A100-SXM4-80GB");
        assert_eq!(resolve_accelerator(&va, &[&worker, &leader]).name, "H100");
        let bare = PodSpec::default();
        assert_eq!(resolve_accelerator(&va, &[&bare, &leader]).name, "A100");
    }

    #[test]
    fn no_label_and_no_product_gives_unknown() {
        let va = mk_va("ns", "a", "d", None);
        assert_eq!(
            resolve_accelerator(&va, &[&PodSpec::default()]),
            AcceleratorResolution::unknown()
        );
        assert_eq!(
            resolve_accelerator(&va, &[]).source,
            AcceleratorSource::Unknown
        );
    }
}
