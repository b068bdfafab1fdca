//! Checks of `deploy/`: every kustomization references only existing local paths, and (when
//! `kubectl` is on `PATH`) builds offline with `kubectl kustomize`, with the key content of
//! spec/k8s.md §8 in the output.

use std::path::{Path, PathBuf};
use std::process::Command;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use serde_json::{Value, json};
use wva_k8s::crd::{CRD_FILE, VariantAutoscaling, crd};

const KUSTOMIZATIONS: [&str; 8] = [
    "crd",
    "base",
    "monitoring",
    "samples",
    "overlays/default",
    "overlays/secure-metrics",
    "overlays/direct-actuation",
    "overlays/e2e",
];

fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy")
}

fn read_yaml(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn referenced_paths(kustomization: &Value) -> Vec<String> {
    let mut paths: Vec<String> = Vec::new();
    for field in ["resources", "components", "crds"] {
        for item in kustomization[field].as_array().into_iter().flatten() {
            paths.push(item.as_str().expect("paths are strings").to_owned());
        }
    }
    for patch in kustomization["patches"].as_array().into_iter().flatten() {
        if let Some(path) = patch["path"].as_str() {
            paths.push(path.to_owned());
        }
    }
    paths
}

#[test]
fn every_kustomization_references_existing_local_paths_only() {
    let deploy = deploy_dir();
    for dir in KUSTOMIZATIONS {
        let kustomization = read_yaml(&deploy.join(dir).join("kustomization.yaml"));
        for key in [
            "helmCharts",
            "configMapGenerator",
            "secretGenerator",
            "namePrefix",
            "nameSuffix",
        ] {
            assert!(kustomization.get(key).is_none(), "{dir} uses {key}");
        }
        let paths = referenced_paths(&kustomization);
        assert!(!paths.is_empty(), "{dir} references nothing");
        for path in paths {
            assert!(!path.contains("://"), "{dir} references remote {path}");
            let full = deploy.join(dir).join(&path);
            assert!(full.exists(), "{dir} references missing {path}");
            let canonical = full.canonicalize().unwrap();
            assert!(
                canonical.starts_with(deploy.canonicalize().unwrap()),
                "{dir}: {path} leaves deploy/"
            );
        }
    }
}

#[test]
fn sample_va_matches_the_crd_types() {
    let va: VariantAutoscaling = serde_saphyr::from_str(
        &std::fs::read_to_string(deploy_dir().join("samples/variantautoscaling.yaml")).unwrap(),
    )
    .unwrap();
    assert_eq!(va.metadata.name.as_deref(), Some("vllm-llama-h100"));
    assert_eq!(va.metadata.namespace.as_deref(), Some("llm-d-sim"));
    assert_eq!(va.spec.model_id, "unsloth/Meta-Llama-3.1-8B");
    assert_eq!(va.spec.parsed_cost(), Some(30.0));
    assert_eq!(
        va.spec.scale_target_ref.api_version.as_deref(),
        Some("apps/v1")
    );
}

/// `kubectl kustomize deploy/<dir>` as a list of documents, or `None` without kubectl.
fn kustomize(dir: &str) -> Option<Vec<Value>> {
    let output = match Command::new("kubectl")
        .arg("kustomize")
        .arg(deploy_dir().join(dir))
        .output()
    {
        Ok(output) => output,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => panic!("cannot run kubectl: {e}"),
    };
    assert!(
        output.status.success(),
        "kubectl kustomize deploy/{dir} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8(output.stdout).expect("kubectl prints UTF-8");
    Some(serde_saphyr::from_multiple(&text).expect("kubectl prints YAML documents"))
}

fn find<'a>(docs: &'a [Value], kind: &str, name: &str) -> &'a Value {
    docs.iter()
        .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name}"))
}

#[test]
fn every_kustomization_builds_offline_with_kubectl() {
    for dir in KUSTOMIZATIONS {
        let Some(docs) = kustomize(dir) else {
            eprintln!("kubectl not on PATH; skipping kustomize builds");
            return;
        };
        assert!(!docs.is_empty(), "{dir} built nothing");
    }
}

#[test]
fn default_overlay_ships_the_seed_service_monitor_exactly() {
    let Some(docs) = kustomize("overlays/default") else {
        return;
    };
    let expected = json!({
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": {
            "name": "workload-variant-autoscaler",
            "namespace": "workload-variant-autoscaler-system",
            "labels": {"release": "kube-prometheus-stack"}
        },
        "spec": {
            "selector": {"matchLabels": {"control-plane": "controller-manager"}},
            "endpoints": [{"port": "http", "scheme": "http", "interval": "30s", "path": "/metrics"}]
        }
    });
    assert_eq!(
        find(&docs, "ServiceMonitor", "workload-variant-autoscaler"),
        &expected
    );
}

#[test]
fn default_overlay_contains_the_generated_crd() {
    let Some(docs) = kustomize("overlays/default") else {
        return;
    };
    let built = find(
        &docs,
        "CustomResourceDefinition",
        "variantautoscalings.llmd.ai",
    );
    // Typed equality: `minimum` is an f64, so `0` in YAML and `0.0` differ only as JSON values.
    let built: CustomResourceDefinition = serde_json::from_value(built.clone()).unwrap();
    assert_eq!(built, crd(), "{CRD_FILE} differs from the types");
}

#[test]
fn default_overlay_service_and_deployment_follow_the_spec() {
    let Some(docs) = kustomize("overlays/default") else {
        return;
    };
    let service = find(
        &docs,
        "Service",
        "workload-variant-autoscaler-controller-manager-metrics-service",
    );
    assert_eq!(
        service["spec"]["ports"],
        json!([{"name": "http", "port": 8080, "targetPort": "http", "protocol": "TCP"}])
    );
    let deployment = find(
        &docs,
        "Deployment",
        "workload-variant-autoscaler-controller-manager",
    );
    assert_eq!(
        deployment["metadata"]["namespace"],
        "workload-variant-autoscaler-system"
    );
    assert_eq!(deployment["spec"]["replicas"], 2);
    let pod = &deployment["spec"]["template"]["spec"];
    assert_eq!(pod["terminationGracePeriodSeconds"], 10);
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(pod["securityContext"]["runAsUser"], 65532);
    assert_eq!(
        pod["securityContext"]["seccompProfile"]["type"],
        "RuntimeDefault"
    );
    let container = &pod["containers"][0];
    assert_eq!(container["name"], "manager");
    assert_eq!(
        container["args"],
        json!([
            "run",
            "--leader-elect=true",
            "--metrics-bind-address=:8080",
            "--health-probe-bind-address=:8081",
            "--config-file=/etc/wva/config.yaml",
            "--log-format=json"
        ])
    );
    assert_eq!(
        container["livenessProbe"]["httpGet"],
        json!({"path": "/healthz", "port": "health"})
    );
    assert_eq!(
        container["readinessProbe"]["httpGet"],
        json!({"path": "/readyz", "port": "health"})
    );
    assert_eq!(
        container["resources"]["limits"],
        json!({"cpu": "500m", "memory": "128Mi"})
    );
    assert_eq!(container["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(
        container["securityContext"]["capabilities"]["drop"],
        json!(["ALL"])
    );
    assert_eq!(container["volumeMounts"][0]["mountPath"], "/etc/wva");
    assert!(container["volumeMounts"][0].get("subPath").is_none());
    for name in [
        "wva-variantautoscaling-config",
        "wva-saturation-scaling-config",
        "wva-model-scale-to-zero-config",
    ] {
        find(&docs, "ConfigMap", name);
    }
}

#[test]
fn manager_role_grants_exactly_the_documented_rules() {
    let Some(docs) = kustomize("overlays/default") else {
        return;
    };
    let role = find(
        &docs,
        "ClusterRole",
        "workload-variant-autoscaler-manager-role",
    );
    let mut got: Vec<(String, String, String)> = Vec::new();
    for rule in role["rules"].as_array().unwrap() {
        for group in rule["apiGroups"].as_array().unwrap() {
            for resource in rule["resources"].as_array().unwrap() {
                for verb in rule["verbs"].as_array().unwrap() {
                    got.push((
                        group.as_str().unwrap().into(),
                        resource.as_str().unwrap().into(),
                        verb.as_str().unwrap().into(),
                    ));
                }
            }
        }
    }
    got.sort();
    let mut want: Vec<(String, String, String)> = [
        ("llmd.ai", "variantautoscalings", "list"),
        ("llmd.ai", "variantautoscalings", "watch"),
        ("llmd.ai", "variantautoscalings/status", "patch"),
        ("apps", "deployments", "list"),
        ("apps", "deployments", "watch"),
        ("apps", "deployments/scale", "patch"),
        ("leaderworkerset.x-k8s.io", "leaderworkersets", "list"),
        ("leaderworkerset.x-k8s.io", "leaderworkersets", "watch"),
        (
            "leaderworkerset.x-k8s.io",
            "leaderworkersets/scale",
            "patch",
        ),
        ("", "pods", "list"),
        ("", "pods", "watch"),
        ("", "configmaps", "list"),
        ("", "configmaps", "watch"),
        ("", "namespaces", "list"),
        ("", "namespaces", "watch"),
        ("", "nodes", "list"),
        ("", "nodes", "watch"),
        ("", "services", "get"),
        ("inference.networking.x-k8s.io", "inferencepools", "list"),
        ("inference.networking.x-k8s.io", "inferencepools", "watch"),
        ("inference.networking.k8s.io", "inferencepools", "list"),
        ("inference.networking.k8s.io", "inferencepools", "watch"),
        ("events.k8s.io", "events", "create"),
        ("events.k8s.io", "events", "patch"),
    ]
    .into_iter()
    .map(|(g, r, v)| (g.to_owned(), r.to_owned(), v.to_owned()))
    .collect();
    want.sort();
    assert_eq!(got, want);
    let lease = find(
        &docs,
        "Role",
        "workload-variant-autoscaler-leader-election-role",
    );
    assert_eq!(
        lease["rules"],
        json!([{"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["get", "create", "patch"]}])
    );
    let serialized = serde_json::to_string(&docs).unwrap();
    for forbidden in [
        "\"secrets\"",
        "\"update\"",
        "\"delete\"",
        "\"*\"",
        "finalizers",
    ] {
        assert!(
            !serialized.contains(forbidden),
            "default overlay grants {forbidden}"
        );
    }
}

#[test]
fn secure_metrics_overlay_switches_to_https_8443() {
    let Some(docs) = kustomize("overlays/secure-metrics") else {
        return;
    };
    let service = find(
        &docs,
        "Service",
        "workload-variant-autoscaler-controller-manager-metrics-service",
    );
    assert_eq!(service["spec"]["ports"][0]["name"], "https");
    assert_eq!(service["spec"]["ports"][0]["port"], 8443);
    let deployment = find(
        &docs,
        "Deployment",
        "workload-variant-autoscaler-controller-manager",
    );
    let container = &deployment["spec"]["template"]["spec"]["containers"][0];
    let args: Vec<&str> = container["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert!(args.contains(&"--metrics-bind-address=:8443"));
    assert!(args.contains(&"--metrics-secure=true"));
    assert!(!args.contains(&"--metrics-bind-address=:8080"));
    assert_eq!(
        container["ports"][0],
        json!({"name": "https", "containerPort": 8443, "protocol": "TCP"})
    );
    let monitor = find(&docs, "ServiceMonitor", "workload-variant-autoscaler");
    let endpoint = &monitor["spec"]["endpoints"][0];
    assert_eq!(endpoint["scheme"], "https");
    assert_eq!(
        endpoint["bearerTokenFile"],
        "/var/run/secrets/kubernetes.io/serviceaccount/token"
    );
    assert_eq!(endpoint["tlsConfig"]["insecureSkipVerify"], true);
    let reader = find(
        &docs,
        "ClusterRoleBinding",
        "workload-variant-autoscaler-metrics-reader-rolebinding",
    );
    assert_eq!(
        reader["subjects"],
        json!([{"kind": "ServiceAccount", "name": "kube-prometheus-stack-prometheus", "namespace": "workload-variant-autoscaler-monitoring"}])
    );
    find(
        &docs,
        "ClusterRole",
        "workload-variant-autoscaler-metrics-auth-role",
    );
}

#[test]
fn direct_actuation_overlay_adds_the_flag_and_hpa_read_access() {
    let Some(docs) = kustomize("overlays/direct-actuation") else {
        return;
    };
    let deployment = find(
        &docs,
        "Deployment",
        "workload-variant-autoscaler-controller-manager",
    );
    let args = &deployment["spec"]["template"]["spec"]["containers"][0]["args"];
    assert!(
        args.as_array()
            .unwrap()
            .contains(&json!("--actuation=direct"))
    );
    let role = find(
        &docs,
        "ClusterRole",
        "workload-variant-autoscaler-hpa-reader-role",
    );
    assert_eq!(
        role["rules"],
        json!([{"apiGroups": ["autoscaling"], "resources": ["horizontalpodautoscalers"], "verbs": ["list", "watch"]}])
    );
}

#[test]
fn samples_kustomization_holds_the_va_and_the_hpa_only() {
    let Some(docs) = kustomize("samples") else {
        return;
    };
    let kinds: Vec<&str> = docs.iter().map(|d| d["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds.len(), 2);
    assert!(kinds.contains(&"VariantAutoscaling") && kinds.contains(&"HorizontalPodAutoscaler"));
    let hpa = find(&docs, "HorizontalPodAutoscaler", "vllm-llama-h100");
    assert_eq!(
        hpa["spec"]["metrics"][0]["external"]["metric"]["name"],
        "inferno_desired_replicas"
    );
    assert_eq!(
        hpa["spec"]["metrics"][0]["external"]["target"],
        json!({"type": "AverageValue", "averageValue": "1"})
    );
}
