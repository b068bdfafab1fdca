//! The projections the reflectors keep (spec/k8s.md §3.1): each drops what the inventory never
//! reads, so the stores stay small. Pure functions, applied with `WatchStreamExt::modify`.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{
    Affinity, Container, EnvVar, Node, NodeSpec, NodeStatus, Pod, PodCondition, PodSpec, PodStatus,
    PodTemplateSpec, ResourceRequirements,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::DynamicObject;

use crate::crd::VariantAutoscaling;
use crate::gpu::GPU_RESOURCES;

/// The one environment variable of a container the inventory reads.
const KEPT_ENV: &str = "VLLM_USE_V1";

/// VA: the whole object minus `managedFields`.
pub fn strip_va(va: &mut VariantAutoscaling) {
    va.metadata.managed_fields = None;
}

/// Deployment: metadata, `spec.replicas`, `spec.selector`, the template projection
/// ([`strip_pod_template`]) and `status`.
pub fn strip_deployment(deployment: &mut Deployment) {
    strip_meta(&mut deployment.metadata);
    if let Some(spec) = deployment.spec.as_mut() {
        strip_pod_template(&mut spec.template);
        spec.strategy = None;
        spec.min_ready_seconds = None;
        spec.progress_deadline_seconds = None;
        spec.revision_history_limit = None;
    }
}

/// A pod template: template labels; containers' `name`, `image`, `command`, `args`, env
/// `VLLM_USE_V1`, GPU requests/limits; `nodeSelector` and node affinity.
pub fn strip_pod_template(template: &mut PodTemplateSpec) {
    let labels = template.metadata.as_mut().and_then(|m| m.labels.take());
    template.metadata = Some(ObjectMeta {
        labels,
        ..ObjectMeta::default()
    });
    if let Some(spec) = template.spec.take() {
        template.spec = Some(PodSpec {
            containers: spec.containers.into_iter().map(strip_container).collect(),
            node_selector: spec.node_selector,
            affinity: spec.affinity.and_then(|a| {
                a.node_affinity.map(|node_affinity| Affinity {
                    node_affinity: Some(node_affinity),
                    ..Affinity::default()
                })
            }),
            ..PodSpec::default()
        });
    }
}

fn strip_container(container: Container) -> Container {
    let env: Vec<EnvVar> = container
        .env
        .unwrap_or_default()
        .into_iter()
        .filter(|e| e.name == KEPT_ENV)
        .collect();
    Container {
        name: container.name,
        image: container.image,
        command: container.command,
        args: container.args,
        env: (!env.is_empty()).then_some(env),
        resources: container.resources.map(gpu_resources),
        ..Container::default()
    }
}

fn gpu_resources(resources: ResourceRequirements) -> ResourceRequirements {
    ResourceRequirements {
        requests: resources.requests.map(gpu_only),
        limits: resources.limits.map(gpu_only),
        ..ResourceRequirements::default()
    }
}

fn gpu_only(quantities: BTreeMap<String, Quantity>) -> BTreeMap<String, Quantity> {
    quantities
        .into_iter()
        .filter(|(name, _)| GPU_RESOURCES.contains(&name.as_str()))
        .collect()
}

fn strip_meta(meta: &mut ObjectMeta) {
    meta.managed_fields = None;
}

/// Pod: name, namespace, labels, ownerReferences, deletionTimestamp, `spec.nodeName`,
/// containers' and init containers' GPU requests (and limits), `status.phase`, `status.podIP`
/// and the Ready condition.
pub fn strip_pod(pod: &mut Pod) {
    let meta = std::mem::take(&mut pod.metadata);
    pod.metadata = ObjectMeta {
        name: meta.name,
        namespace: meta.namespace,
        labels: meta.labels,
        owner_references: meta.owner_references,
        deletion_timestamp: meta.deletion_timestamp,
        resource_version: meta.resource_version,
        uid: meta.uid,
        ..ObjectMeta::default()
    };
    if let Some(spec) = pod.spec.take() {
        let gpu_only_container = |c: Container| Container {
            name: c.name,
            resources: c.resources.map(gpu_resources),
            ..Container::default()
        };
        pod.spec = Some(PodSpec {
            node_name: spec.node_name,
            containers: spec
                .containers
                .into_iter()
                .map(gpu_only_container)
                .collect(),
            init_containers: spec
                .init_containers
                .map(|cs| cs.into_iter().map(gpu_only_container).collect()),
            ..PodSpec::default()
        });
    }
    if let Some(status) = pod.status.take() {
        pod.status = Some(PodStatus {
            phase: status.phase,
            pod_ip: status.pod_ip,
            conditions: ready_only(status.conditions, |c: &PodCondition| c.type_ == "Ready"),
            ..PodStatus::default()
        });
    }
}

fn ready_only<C>(conditions: Option<Vec<C>>, is_ready: impl Fn(&C) -> bool) -> Option<Vec<C>> {
    conditions.map(|cs| cs.into_iter().filter(|c| is_ready(c)).collect())
}

/// Node: name and labels, `spec.unschedulable`, the Ready condition and GPU allocatable.
pub fn strip_node(node: &mut Node) {
    let meta = std::mem::take(&mut node.metadata);
    node.metadata = ObjectMeta {
        name: meta.name,
        labels: meta.labels,
        resource_version: meta.resource_version,
        uid: meta.uid,
        ..ObjectMeta::default()
    };
    node.spec = node.spec.take().map(|spec| NodeSpec {
        unschedulable: spec.unschedulable,
        ..NodeSpec::default()
    });
    node.status = node.status.take().map(|status| NodeStatus {
        allocatable: status.allocatable.map(gpu_only),
        conditions: ready_only(status.conditions, |c| c.type_ == "Ready"),
        ..NodeStatus::default()
    });
}

/// LeaderWorkerSet (`DynamicObject`): metadata minus `managedFields`, `spec.replicas`,
/// `spec.leaderWorkerTemplate.size`, the pod-template projection of the leader and worker
/// templates, and `status`. A template that does not decode as a pod template is dropped.
pub fn strip_leader_worker_set(lws: &mut DynamicObject) {
    strip_meta(&mut lws.metadata);
    let Some(data) = lws.data.as_object_mut() else {
        return;
    };
    let Some(spec) = data.get_mut("spec").and_then(|s| s.as_object_mut()) else {
        return;
    };
    let mut kept = serde_json::Map::new();
    if let Some(replicas) = spec.remove("replicas") {
        kept.insert("replicas".into(), replicas);
    }
    if let Some(serde_json::Value::Object(mut lwt)) = spec.remove("leaderWorkerTemplate") {
        let mut kept_lwt = serde_json::Map::new();
        if let Some(size) = lwt.remove("size") {
            kept_lwt.insert("size".into(), size);
        }
        for key in ["leaderTemplate", "workerTemplate"] {
            if let Some(template) = lwt.remove(key).and_then(project_template_value) {
                kept_lwt.insert(key.into(), template);
            }
        }
        kept.insert(
            "leaderWorkerTemplate".into(),
            serde_json::Value::Object(kept_lwt),
        );
    }
    *spec = kept;
}

fn project_template_value(value: serde_json::Value) -> Option<serde_json::Value> {
    let mut template: PodTemplateSpec = serde_json::from_value(value).ok()?;
    strip_pod_template(&mut template);
    serde_json::to_value(template).ok()
}

/// InferencePool (`DynamicObject`): metadata minus `managedFields` and, of the spec, the
/// selector and the endpoint-picker reference (`endpointPickerRef`, or `extensionRef` in the
/// older API).
pub fn strip_inference_pool(pool: &mut DynamicObject) {
    strip_meta(&mut pool.metadata);
    let Some(data) = pool.data.as_object_mut() else {
        return;
    };
    data.retain(|key, _| key == "spec");
    if let Some(spec) = data.get_mut("spec").and_then(|s| s.as_object_mut()) {
        spec.retain(|key, _| {
            matches!(
                key.as_str(),
                "selector" | "endpointPickerRef" | "extensionRef"
            )
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ManagedFieldsEntry;
    use serde_json::json;

    fn deployment() -> Deployment {
        serde_json::from_value(json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "d", "namespace": "ns", "managedFields": [{"manager": "kubectl"}]},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": {"app": "d"}},
                "strategy": {"type": "RollingUpdate"},
                "template": {
                    "metadata": {"labels": {"app": "d"}, "annotations": {"a": "b"}},
                    "spec": {
                        "serviceAccountName": "sa",
                        "nodeSelector": {"gpu": "h100"},
                        "affinity": {
                            "nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [{"matchExpressions": [{"key": "k", "operator": "In", "values": ["v"]}]}]}},
                            "podAntiAffinity": {}
                        },
                        "containers": [{
                            "name": "vllm", "image": "vllm:1", "command": ["vllm"], "args": ["--max-num-seqs=64"],
                            "env": [{"name": "VLLM_USE_V1", "value": "1"}, {"name": "HF_TOKEN", "value": "secret"}],
                            "ports": [{"containerPort": 8000}],
                            "resources": {"requests": {"nvidia.com/gpu": "2", "cpu": "4"}, "limits": {"nvidia.com/gpu": "2", "memory": "8Gi"}}
                        }]
                    }
                }
            },
            "status": {"replicas": 2, "readyReplicas": 1}
        }))
        .unwrap()
    }

    #[test]
    fn deployment_keeps_what_the_inventory_reads() {
        let mut d = deployment();
        strip_deployment(&mut d);
        let got = serde_json::to_value(&d).unwrap();
        assert_eq!(
            got,
            json!({
                "apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": "d", "namespace": "ns"},
                "spec": {
                    "replicas": 2,
                    "selector": {"matchLabels": {"app": "d"}},
                    "template": {
                        "metadata": {"labels": {"app": "d"}},
                        "spec": {
                            "nodeSelector": {"gpu": "h100"},
                            "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [{"matchExpressions": [{"key": "k", "operator": "In", "values": ["v"]}]}]}}},
                            "containers": [{
                                "name": "vllm", "image": "vllm:1", "command": ["vllm"], "args": ["--max-num-seqs=64"],
                                "env": [{"name": "VLLM_USE_V1", "value": "1"}],
                                "resources": {"requests": {"nvidia.com/gpu": "2"}, "limits": {"nvidia.com/gpu": "2"}}
                            }]
                        }
                    }
                },
                "status": {"replicas": 2, "readyReplicas": 1}
            })
        );
    }

    #[test]
    fn va_loses_only_managed_fields() {
        let mut va: VariantAutoscaling = serde_json::from_value(json!({
            "apiVersion": "llmd.ai/v1alpha1", "kind": "VariantAutoscaling",
            "metadata": {"name": "v", "namespace": "ns", "labels": {"a": "b"}},
            "spec": {"modelID": "m", "scaleTargetRef": {"kind": "Deployment", "name": "d"}}
        }))
        .unwrap();
        let expected = va.clone();
        va.metadata.managed_fields = Some(vec![ManagedFieldsEntry::default()]);
        strip_va(&mut va);
        assert_eq!(
            serde_json::to_value(&va).unwrap(),
            serde_json::to_value(&expected).unwrap()
        );
    }

    #[test]
    fn pod_keeps_identity_gpus_phase_ip_and_ready() {
        let mut pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": "p", "namespace": "ns", "labels": {"app": "d"}, "annotations": {"x": "y"},
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "d-h", "uid": "u"}]},
            "spec": {"nodeName": "n1", "serviceAccountName": "sa",
                "initContainers": [{"name": "i", "image": "x", "resources": {"requests": {"nvidia.com/gpu": "1", "cpu": "1"}}}],
                "containers": [{"name": "c", "image": "x", "args": ["--a"], "resources": {"limits": {"nvidia.com/gpu": "2"}}}]},
            "status": {"phase": "Running", "podIP": "10.0.0.1", "hostIP": "1.1.1.1",
                "conditions": [{"type": "Ready", "status": "True"}, {"type": "PodScheduled", "status": "True"}]}
        }))
        .unwrap();
        strip_pod(&mut pod);
        assert_eq!(
            serde_json::to_value(&pod).unwrap(),
            json!({
                "apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": "p", "namespace": "ns", "labels": {"app": "d"},
                    "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "d-h", "uid": "u"}]},
                "spec": {"nodeName": "n1",
                    "initContainers": [{"name": "i", "resources": {"requests": {"nvidia.com/gpu": "1"}}}],
                    "containers": [{"name": "c", "resources": {"limits": {"nvidia.com/gpu": "2"}}}]},
                "status": {"phase": "Running", "podIP": "10.0.0.1", "conditions": [{"type": "Ready", "status": "True"}]}
            })
        );
    }

    #[test]
    fn node_keeps_labels_cordon_ready_and_gpu_allocatable() {
        let mut node: Node = serde_json::from_value(json!({
            "metadata": {"name": "n", "labels": {"gpu": "h100"}, "annotations": {"a": "b"}},
            "spec": {"unschedulable": true, "podCIDR": "10.0.0.0/24"},
            "status": {"allocatable": {"nvidia.com/gpu": "8", "cpu": "64"}, "capacity": {"cpu": "64"},
                "conditions": [{"type": "Ready", "status": "True"}, {"type": "DiskPressure", "status": "False"}]}
        }))
        .unwrap();
        strip_node(&mut node);
        assert_eq!(
            serde_json::to_value(&node).unwrap(),
            json!({
                "apiVersion": "v1", "kind": "Node",
                "metadata": {"name": "n", "labels": {"gpu": "h100"}},
                "spec": {"unschedulable": true},
                "status": {"allocatable": {"nvidia.com/gpu": "8"}, "conditions": [{"type": "Ready", "status": "True"}]}
            })
        );
    }

    #[test]
    fn leader_worker_set_keeps_size_replicas_templates_and_status() {
        let template = json!({"metadata": {"labels": {"role": "x"}}, "spec": {"hostNetwork": true,
            "containers": [{"name": "c", "image": "i", "ports": [{"containerPort": 1}], "resources": {"requests": {"nvidia.com/gpu": "8", "cpu": "2"}}}]}});
        let mut lws: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "leaderworkerset.x-k8s.io/v1", "kind": "LeaderWorkerSet",
            "metadata": {"name": "l", "namespace": "ns", "managedFields": [{"manager": "m"}]},
            "spec": {"replicas": 2, "startupPolicy": "LeaderCreated",
                "leaderWorkerTemplate": {"size": 4, "restartPolicy": "Default", "leaderTemplate": template.clone(), "workerTemplate": template}},
            "status": {"replicas": 2}
        }))
        .unwrap();
        strip_leader_worker_set(&mut lws);
        let projected = json!({"metadata": {"labels": {"role": "x"}}, "spec": {
            "containers": [{"name": "c", "image": "i", "resources": {"requests": {"nvidia.com/gpu": "8"}}}]}});
        assert_eq!(
            serde_json::to_value(&lws).unwrap(),
            json!({
                "apiVersion": "leaderworkerset.x-k8s.io/v1", "kind": "LeaderWorkerSet",
                "metadata": {"name": "l", "namespace": "ns"},
                "spec": {"replicas": 2, "leaderWorkerTemplate": {"size": 4, "leaderTemplate": projected.clone(), "workerTemplate": projected}},
                "status": {"replicas": 2}
            })
        );
    }

    #[test]
    fn inference_pool_keeps_selector_and_picker() {
        let mut pool: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "inference.networking.k8s.io/v1", "kind": "InferencePool",
            "metadata": {"name": "p", "namespace": "ns"},
            "spec": {"selector": {"matchLabels": {"app": "d"}}, "targetPorts": [{"number": 8000}], "endpointPickerRef": {"name": "epp"}},
            "status": {"parents": []}
        }))
        .unwrap();
        strip_inference_pool(&mut pool);
        assert_eq!(
            serde_json::to_value(&pool).unwrap(),
            json!({
                "apiVersion": "inference.networking.k8s.io/v1", "kind": "InferencePool",
                "metadata": {"name": "p", "namespace": "ns"},
                "spec": {"selector": {"matchLabels": {"app": "d"}}, "endpointPickerRef": {"name": "epp"}}
            })
        );
    }
}
