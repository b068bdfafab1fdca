//! Small object builders for the index-style tests (`mk_va`, `mk_deployment`, `mk_pod`, …).

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec, DeploymentStatus};
use k8s_openapi::api::core::v1::{
    Container, Node, NodeCondition, NodeSpec, NodeStatus, Pod, PodCondition, PodSpec, PodStatus,
    PodTemplateSpec, ResourceRequirements,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{
    LabelSelector, ObjectMeta, OwnerReference, Time,
};
use k8s_openapi::jiff::Timestamp;

use crate::crd::{ScaleTargetRef, VariantAutoscaling, VariantAutoscalingSpec};
use crate::labels::{ACCELERATOR_LABEL, POD_TEMPLATE_HASH_LABEL};

/// The pod-template hash every `mk_pod` pod carries.
pub const HASH: &str = "7d9f8";

/// A time `secs` after the epoch.
pub fn at(secs: i64) -> Time {
    Time(Timestamp::from_second(secs).unwrap())
}

/// A VA in `ns` named `name` targeting Deployment `target`, model `m`, generation 1.
pub fn mk_va(ns: &str, name: &str, target: &str, accelerator: Option<&str>) -> VariantAutoscaling {
    let mut va = VariantAutoscaling::new(
        name,
        VariantAutoscalingSpec {
            scale_target_ref: ScaleTargetRef {
                api_version: None,
                kind: "Deployment".into(),
                name: target.into(),
            },
            model_id: "m".into(),
            variant_cost: "10.0".into(),
        },
    );
    va.metadata.namespace = Some(ns.into());
    va.metadata.generation = Some(1);
    va.metadata.creation_timestamp = Some(at(1_000));
    if let Some(acc) = accelerator {
        va.metadata.labels = Some(BTreeMap::from([(
            ACCELERATOR_LABEL.to_owned(),
            acc.to_owned(),
        )]));
    }
    va
}

/// `va` with `scaleTargetRef.apiVersion` set.
pub fn with_api_version(mut va: VariantAutoscaling, api_version: &str) -> VariantAutoscaling {
    va.spec.scale_target_ref.api_version = Some(api_version.into());
    va
}

/// `va` created `secs` after the epoch.
pub fn with_created(mut va: VariantAutoscaling, secs: i64) -> VariantAutoscaling {
    va.metadata.creation_timestamp = Some(at(secs));
    va
}

/// `n` GPUs of `resource` as a requests map.
pub fn gpus(resource: &str, n: &str) -> BTreeMap<String, Quantity> {
    BTreeMap::from([(resource.to_owned(), Quantity(n.to_owned()))])
}

/// A container `name` with the given GPU requests.
pub fn mk_container(name: &str, requests: BTreeMap<String, Quantity>) -> Container {
    Container {
        name: name.into(),
        resources: Some(ResourceRequirements {
            requests: Some(requests),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// A Deployment with `spec.replicas`, `status.replicas`, `status.readyReplicas` and one vLLM
/// container requesting `gpus_per_pod` NVIDIA GPUs.
pub fn mk_deployment(
    ns: &str,
    name: &str,
    spec_replicas: Option<i32>,
    current: i32,
    ready: i32,
    gpus_per_pod: &str,
) -> Deployment {
    let mut container = mk_container("vllm", gpus("nvidia.com/gpu", gpus_per_pod));
    container.command = Some(vec!["vllm".into(), "serve".into()]);
    container.args = Some(vec!["--model".into(), "m".into()]);
    Deployment {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some(ns.into()),
            ..Default::default()
        },
        spec: Some(DeploymentSpec {
            replicas: spec_replicas,
            selector: LabelSelector::default(),
            template: PodTemplateSpec {
                metadata: None,
                spec: Some(PodSpec {
                    containers: vec![container],
                    ..Default::default()
                }),
            },
            ..Default::default()
        }),
        status: Some(DeploymentStatus {
            replicas: Some(current),
            ready_replicas: Some(ready),
            ..Default::default()
        }),
    }
}

/// A pod of Deployment `deployment` (via ReplicaSet `{deployment}-7d9f8`), Running, with the
/// Ready condition `ready`.
pub fn mk_pod(ns: &str, name: &str, deployment: &str, ready: bool) -> Pod {
    Pod {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some(ns.into()),
            labels: Some(BTreeMap::from([(
                POD_TEMPLATE_HASH_LABEL.to_owned(),
                HASH.to_owned(),
            )])),
            owner_references: Some(vec![OwnerReference {
                api_version: "apps/v1".into(),
                kind: "ReplicaSet".into(),
                name: format!("{deployment}-{HASH}"),
                uid: "uid".into(),
                ..Default::default()
            }]),
            ..Default::default()
        },
        spec: Some(PodSpec::default()),
        status: Some(PodStatus {
            phase: Some("Running".into()),
            conditions: Some(vec![PodCondition {
                type_: "Ready".into(),
                status: if ready { "True" } else { "False" }.into(),
                ..Default::default()
            }]),
            ..Default::default()
        }),
    }
}

/// `pod` scheduled on `node` with one container requesting `n` GPUs of `resource`.
pub fn on_node(mut pod: Pod, node: &str, resource: &str, n: &str) -> Pod {
    pod.spec = Some(PodSpec {
        node_name: Some(node.into()),
        containers: vec![mk_container("c", gpus(resource, n))],
        ..Default::default()
    });
    pod
}

/// A Ready, schedulable node with `labels` and `allocatable` GPUs of `resource`.
pub fn mk_node(name: &str, labels: &[(&str, &str)], resource: &str, allocatable: &str) -> Node {
    Node {
        metadata: ObjectMeta {
            name: Some(name.into()),
            labels: Some(
                labels
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect(),
            ),
            ..Default::default()
        },
        spec: Some(NodeSpec::default()),
        status: Some(NodeStatus {
            allocatable: Some(gpus(resource, allocatable)),
            conditions: Some(vec![NodeCondition {
                type_: "Ready".into(),
                status: "True".into(),
                ..Default::default()
            }]),
            ..Default::default()
        }),
    }
}
