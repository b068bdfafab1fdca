//! The standalone variants file: multi-document YAML of `VariantAutoscaling` objects.

use std::collections::BTreeSet;

use wva_k8s::crd::VariantAutoscaling;

/// The label that names a variant's accelerator.
pub const ACCELERATOR_LABEL: &str = "inference.optimization/acceleratorName";

/// Cost per replica when `variantCost` is absent or unparsable.
const DEFAULT_COST: f64 = 10.0;

/// One variant as standalone mode needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct StandaloneVariant {
    /// Namespace (`metadata.namespace`, `default` when absent).
    pub namespace: String,
    /// `metadata.name`.
    pub name: String,
    /// `spec.modelID`.
    pub model_id: String,
    /// From the accelerator label; empty when absent or shorter than 2 characters.
    pub accelerator: String,
    /// `spec.variantCost` as a number.
    pub cost: f64,
    /// `spec.scaleTargetRef.name`: pods named `<target>-…` belong to this variant.
    pub target: String,
}

/// Why the variants file was rejected. Names the document and the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VariantsFileError {
    /// The YAML does not parse.
    #[error("{path}: invalid YAML: {message}")]
    Yaml {
        /// The file.
        path: String,
        /// The parser's message.
        message: String,
    },
    /// A document is not a valid VariantAutoscaling.
    #[error("{path}: document {index}: {message}")]
    Document {
        /// The file.
        path: String,
        /// 1-based document index.
        index: usize,
        /// What is wrong, naming the field.
        message: String,
    },
}

/// Parses the file's text. Empty documents are skipped; every other document must be a
/// `llmd.ai/v1alpha1` `VariantAutoscaling` with a unique `(namespace, name)`.
pub fn parse_variants(path: &str, text: &str) -> Result<Vec<StandaloneVariant>, VariantsFileError> {
    let docs: Vec<serde_json::Value> =
        serde_saphyr::from_multiple(text).map_err(|e| VariantsFileError::Yaml {
            path: path.to_string(),
            message: e.to_string().lines().next().unwrap_or_default().to_string(),
        })?;
    let mut out = Vec::new();
    let mut seen = BTreeSet::new();
    for (i, doc) in docs.into_iter().enumerate() {
        if doc.is_null() {
            continue;
        }
        let bad = |message: String| VariantsFileError::Document {
            path: path.to_string(),
            index: i + 1,
            message,
        };
        let api_version = doc.get("apiVersion").and_then(|v| v.as_str()).unwrap_or("");
        let kind = doc.get("kind").and_then(|v| v.as_str()).unwrap_or("");
        if api_version != "llmd.ai/v1alpha1" || kind != "VariantAutoscaling" {
            return Err(bad(format!(
                "expected apiVersion llmd.ai/v1alpha1 and kind VariantAutoscaling, got {api_version:?} {kind:?}"
            )));
        }
        let va: VariantAutoscaling = serde_path_to_error::deserialize(doc)
            .map_err(|e| bad(format!("{}: {}", e.path(), e.inner())))?;
        let variant = to_variant(&va).map_err(bad)?;
        if !seen.insert((variant.namespace.clone(), variant.name.clone())) {
            return Err(bad(format!(
                "duplicate variant {}/{}",
                variant.namespace, variant.name
            )));
        }
        out.push(variant);
    }
    out.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
    Ok(out)
}

fn to_variant(va: &VariantAutoscaling) -> Result<StandaloneVariant, String> {
    let name = va.metadata.name.clone().unwrap_or_default();
    if name.is_empty() {
        return Err("metadata.name: must not be empty".to_string());
    }
    let namespace = va
        .metadata
        .namespace
        .clone()
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "default".to_string());
    if va.spec.model_id.is_empty() {
        return Err("spec.modelID: must not be empty".to_string());
    }
    if va.spec.scale_target_ref.name.is_empty() {
        return Err("spec.scaleTargetRef.name: must not be empty".to_string());
    }
    let cost = match va.spec.variant_cost.parse::<f64>() {
        Ok(c) if c.is_finite() && c >= 0.0 => c,
        _ => {
            tracing::warn!(
                variant = %name,
                value = %va.spec.variant_cost,
                "spec.variantCost is not a non-negative decimal number; using 10.0"
            );
            DEFAULT_COST
        }
    };
    let accelerator = va
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(ACCELERATOR_LABEL))
        .filter(|a| a.chars().count() >= 2)
        .cloned()
        .unwrap_or_default();
    Ok(StandaloneVariant {
        namespace,
        name,
        model_id: va.spec.model_id.clone(),
        accelerator,
        cost,
        target: va.spec.scale_target_ref.name.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const TWO: &str = r#"
apiVersion: llmd.ai/v1alpha1
kind: VariantAutoscaling
metadata:
  name: llama-h100
  namespace: team-a
  labels:
    inference.optimization/acceleratorName: H100
spec:
  modelID: meta-llama/Llama-3.1-8B
  variantCost: "40"
  scaleTargetRef:
    kind: Deployment
    name: llama-h100
---
apiVersion: llmd.ai/v1alpha1
kind: VariantAutoscaling
metadata:
  name: llama-l4
  namespace: team-a
spec:
  modelID: meta-llama/Llama-3.1-8B
  scaleTargetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: llama-l4-deploy
"#;

    #[test]
    fn parses_every_document_with_defaults() {
        let v = parse_variants("f.yaml", TWO).unwrap();
        assert_eq!(v.len(), 2);
        assert_eq!(v[0].name, "llama-h100");
        assert_eq!(v[0].accelerator, "H100");
        assert_eq!(v[0].cost, 40.0);
        assert_eq!(v[1].accelerator, "");
        assert_eq!(v[1].cost, 10.0);
        assert_eq!(v[1].target, "llama-l4-deploy");
    }

    #[test]
    fn a_missing_model_id_names_the_document_and_field() {
        let text = TWO.replace(
            "  modelID: meta-llama/Llama-3.1-8B\n  scaleTargetRef:\n    apiVersion",
            "  scaleTargetRef:\n    apiVersion",
        );
        let err = parse_variants("f.yaml", &text).unwrap_err().to_string();
        assert!(err.starts_with("f.yaml: document 2: "), "{err}");
        assert!(err.contains("modelID"), "{err}");
    }

    #[test]
    fn duplicates_and_foreign_kinds_are_rejected() {
        let dup = format!("{TWO}---\n{}", TWO.split("---").next().unwrap());
        let err = parse_variants("f.yaml", &dup).unwrap_err().to_string();
        assert!(err.contains("duplicate variant team-a/llama-h100"), "{err}");
        let err = parse_variants("f.yaml", "apiVersion: v1\nkind: ConfigMap\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("expected apiVersion llmd.ai/v1alpha1"),
            "{err}"
        );
    }

    #[test]
    fn unparsable_cost_falls_back_to_ten() {
        let text = TWO.replace("variantCost: \"40\"", "variantCost: \"cheap\"");
        assert_eq!(parse_variants("f.yaml", &text).unwrap()[0].cost, 10.0);
    }
}
