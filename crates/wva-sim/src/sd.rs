//! Service discovery and inventory outputs: Prometheus file_sd JSON and the standalone
//! VariantAutoscaling YAML, written atomically (spec/sim.md §3.4).

use crate::config::FleetConfig;
use serde::Serialize;
use std::collections::BTreeMap;
use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;

/// A scrape target: one live pod.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Target {
    /// Pod name.
    pub pod: String,
    /// Variant name.
    pub variant: String,
    /// Served model.
    pub model: String,
    /// Namespace.
    pub namespace: String,
    /// Address to connect to.
    pub addr: SocketAddr,
    /// HTTP path of the metrics (`/metrics`, or `/pods/<pod>/metrics` in shared mode).
    pub path: String,
    /// Draining (still scraped, not routable).
    pub draining: bool,
}

impl Target {
    /// `http://addr/path`.
    pub fn url(&self) -> String {
        format!("http://{}{}", self.addr, self.path)
    }
}

#[derive(Serialize)]
struct Group<'a> {
    targets: Vec<String>,
    labels: BTreeMap<&'a str, String>,
}

/// The file_sd JSON for `targets` (sorted by pod name by the caller), one group per pod.
pub fn file_sd_json(targets: &[Target], shared: bool, extra: &BTreeMap<String, String>) -> String {
    let groups: Vec<Group<'_>> = targets
        .iter()
        .map(|t| {
            let mut labels: BTreeMap<&str, String> =
                extra.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
            labels.insert("namespace", t.namespace.clone());
            labels.insert("pod", t.pod.clone());
            labels.insert("container", "vllm".to_owned());
            if shared {
                labels.insert("__metrics_path__", t.path.clone());
                labels.insert("instance", format!("{}/{}", t.addr, t.pod));
            }
            Group {
                targets: vec![t.addr.to_string()],
                labels,
            }
        })
        .collect();
    let mut s = serde_json::to_string_pretty(&groups).unwrap_or_else(|_| "[]".to_owned());
    s.push('\n');
    s
}

/// The one-target file_sd JSON of the gateway (EPP) metrics endpoint.
pub fn gateway_sd_json(addr: SocketAddr, namespace: &str) -> String {
    let mut labels = BTreeMap::new();
    labels.insert("namespace", namespace.to_owned());
    labels.insert("pod", format!("{namespace}-epp"));
    labels.insert("container", "epp".to_owned());
    let mut s = serde_json::to_string_pretty(&[Group {
        targets: vec![addr.to_string()],
        labels,
    }])
    .unwrap_or_default();
    s.push('\n');
    s
}

fn yaml_str(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".to_owned())
}

/// The standalone variants file: one `VariantAutoscaling` document per variant.
pub fn inventory_yaml(cfg: &FleetConfig) -> String {
    let mut out = String::new();
    for v in &cfg.variants {
        let cost = v.profile().cost;
        out.push_str(&format!(
            "---\napiVersion: llmd.ai/v1alpha1\nkind: VariantAutoscaling\nmetadata:\n  name: {name}\n  namespace: {ns}\n  labels:\n    inference.optimization/acceleratorName: {acc}\nspec:\n  modelID: {model}\n  variantCost: {cost}\n  scaleTargetRef:\n    apiVersion: apps/v1\n    kind: Deployment\n    name: {dep}\n",
            name = yaml_str(&v.name),
            ns = yaml_str(&cfg.namespace),
            acc = yaml_str(&v.accelerator),
            model = yaml_str(&v.model),
            cost = yaml_str(&format!("{cost:?}")),
            dep = yaml_str(&format!("{}-decode", v.name)),
        ));
    }
    out
}

/// Writes `bytes` to `path` atomically: a sibling `.<name>.tmp`, fsync, rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "out".to_owned());
    let tmp = path.with_file_name(format!(".{name}.tmp"));
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(pod: &str, path: &str) -> Target {
        Target {
            pod: pod.into(),
            variant: "cheap".into(),
            model: "m".into(),
            namespace: "ns".into(),
            addr: "127.0.0.1:9000".parse().unwrap(),
            path: path.into(),
            draining: false,
        }
    }

    #[test]
    fn per_replica_groups_carry_namespace_pod_and_container() {
        let extra = BTreeMap::from([("team".to_owned(), "x".to_owned())]);
        let j: serde_json::Value =
            serde_json::from_str(&file_sd_json(&[t("a", "/metrics")], false, &extra)).unwrap();
        assert_eq!(j[0]["targets"][0], "127.0.0.1:9000");
        assert_eq!(j[0]["labels"]["pod"], "a");
        assert_eq!(j[0]["labels"]["container"], "vllm");
        assert_eq!(j[0]["labels"]["team"], "x");
        assert!(j[0]["labels"].get("__metrics_path__").is_none());
    }

    #[test]
    fn shared_groups_set_metrics_path_and_instance() {
        let j: serde_json::Value = serde_json::from_str(&file_sd_json(
            &[t("a", "/pods/a/metrics")],
            true,
            &BTreeMap::new(),
        ))
        .unwrap();
        assert_eq!(j[0]["labels"]["__metrics_path__"], "/pods/a/metrics");
        assert_eq!(j[0]["labels"]["instance"], "127.0.0.1:9000/a");
    }

    #[test]
    fn inventory_is_multi_document_yaml_with_string_cost() {
        let cfg = crate::sim::tests::config(1.0);
        let y = inventory_yaml(&cfg);
        assert_eq!(y.matches("kind: VariantAutoscaling").count(), 2);
        assert!(y.contains("variantCost: \"10.0\""));
        assert!(y.contains("name: \"cheap-decode\""));
        assert!(y.contains("modelID: \"meta-llama/Llama-3.1-8B-Instruct\""));
    }

    #[test]
    fn atomic_write_replaces_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("targets.json");
        write_atomic(&p, b"[]").unwrap();
        write_atomic(&p, b"[1]").unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "[1]");
        assert!(!dir.path().join(".targets.json.tmp").exists());
    }
}
