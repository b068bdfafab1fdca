//! `build_inventory` over 1000 VAs, 1000 Deployments and 4000 Pods (the per-cycle cost of the
//! Kubernetes inventory, read from reflector stores).

use std::collections::BTreeMap;
use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec, DeploymentStatus};
use k8s_openapi::api::core::v1::{
    Container, Pod, PodCondition, PodSpec, PodStatus, PodTemplateSpec, ResourceRequirements,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use wva_k8s::crd::{ScaleTargetRef, VariantAutoscaling, VariantAutoscalingSpec};
use wva_k8s::inventory::{Filters, Snapshot, build_inventory};

const VARIANTS: usize = 1000;
const PODS_PER_VARIANT: usize = 4;

fn meta(ns: &str, name: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.into()),
        namespace: Some(ns.into()),
        ..Default::default()
    }
}

fn va(i: usize) -> VariantAutoscaling {
    let mut va = VariantAutoscaling::new(
        &format!("v{i}"),
        VariantAutoscalingSpec {
            scale_target_ref: ScaleTargetRef {
                api_version: None,
                kind: "Deployment".into(),
                name: format!("d{i}"),
            },
            model_id: format!("model-{}", i % 50),
            variant_cost: "10.0".into(),
        },
    );
    va.metadata.namespace = Some(format!("ns{}", i % 20));
    va.metadata.labels = Some(BTreeMap::from([(
        "inference.optimization/acceleratorName".into(),
        "H100".into(),
    )]));
    va
}

fn deployment(i: usize) -> Deployment {
    let gpu = BTreeMap::from([("nvidia.com/gpu".to_owned(), Quantity("1".into()))]);
    let container = Container {
        name: "vllm".into(),
        command: Some(vec!["vllm".into(), "serve".into()]),
        resources: Some(ResourceRequirements {
            requests: Some(gpu),
            ..Default::default()
        }),
        ..Default::default()
    };
    Deployment {
        metadata: meta(&format!("ns{}", i % 20), &format!("d{i}")),
        spec: Some(DeploymentSpec {
            replicas: Some(PODS_PER_VARIANT as i32),
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
            replicas: Some(PODS_PER_VARIANT as i32),
            ready_replicas: Some(PODS_PER_VARIANT as i32),
            ..Default::default()
        }),
    }
}

fn pod(i: usize, j: usize) -> Pod {
    let mut metadata = meta(&format!("ns{}", i % 20), &format!("d{i}-abc12-{j}"));
    metadata.labels = Some(BTreeMap::from([(
        "pod-template-hash".into(),
        "abc12".into(),
    )]));
    metadata.owner_references = Some(vec![OwnerReference {
        api_version: "apps/v1".into(),
        kind: "ReplicaSet".into(),
        name: format!("d{i}-abc12"),
        uid: "u".into(),
        ..Default::default()
    }]);
    Pod {
        metadata,
        spec: None,
        status: Some(PodStatus {
            phase: Some("Running".into()),
            conditions: Some(vec![PodCondition {
                type_: "Ready".into(),
                status: "True".into(),
                ..Default::default()
            }]),
            ..Default::default()
        }),
    }
}

fn bench(c: &mut Criterion) {
    let vas: Vec<Arc<VariantAutoscaling>> = (0..VARIANTS).map(|i| Arc::new(va(i))).collect();
    let deployments: Vec<Arc<Deployment>> =
        (0..VARIANTS).map(|i| Arc::new(deployment(i))).collect();
    let pods: Vec<Arc<Pod>> = (0..VARIANTS)
        .flat_map(|i| (0..PODS_PER_VARIANT).map(move |j| Arc::new(pod(i, j))))
        .collect();
    let snapshot = Snapshot {
        vas: &vas,
        deployments: &deployments,
        leader_worker_sets: &[],
        pods: &pods,
    };
    let filters = Filters::default();
    assert_eq!(build_inventory(snapshot, &filters).variants.len(), VARIANTS);
    c.bench_function("build_inventory_1000_variants_4000_pods", |b| {
        b.iter(|| build_inventory(black_box(snapshot), &filters))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
