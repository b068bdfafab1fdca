use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::EnvVar;
use kube::runtime::reflector::store::Writer;
use kube::runtime::watcher::Event;
use serde_json::json;

use super::*;
use crate::accelerator::AcceleratorSource;
use crate::crd::{OptimizedAlloc, VariantAutoscalingStatus};
use crate::test_fixtures::{
    at, mk_container, mk_deployment, mk_pod, mk_va, with_api_version, with_created,
};

/// Owned store contents, as `Store::state()` returns them.
#[derive(Default)]
struct Stores {
    vas: Vec<Arc<VariantAutoscaling>>,
    deployments: Vec<Arc<Deployment>>,
    lws: Vec<Arc<DynamicObject>>,
    pods: Vec<Arc<Pod>>,
}

impl Stores {
    fn va(mut self, va: VariantAutoscaling) -> Self {
        self.vas.push(Arc::new(va));
        self
    }
    fn deployment(mut self, d: Deployment) -> Self {
        self.deployments.push(Arc::new(d));
        self
    }
    fn pod(mut self, p: Pod) -> Self {
        self.pods.push(Arc::new(p));
        self
    }
    fn snapshot(&self) -> Snapshot<'_> {
        Snapshot {
            vas: &self.vas,
            deployments: &self.deployments,
            leader_worker_sets: &self.lws,
            pods: &self.pods,
        }
    }
    fn build(&self) -> Inventory {
        build_inventory(self.snapshot(), &Filters::default())
    }
}

fn names(inv: &Inventory) -> Vec<&str> {
    inv.variants.iter().map(|v| v.name.as_str()).collect()
}

#[test]
fn resolved_variant_reports_replicas_pending_and_gpus() {
    let stores = Stores::default()
        .va(mk_va("ns", "a", "vllm", Some("H100")))
        .deployment(mk_deployment("ns", "vllm", Some(3), 3, 2, "2"))
        .pod(mk_pod("ns", "vllm-7d9f8-aaaaa", "vllm", true))
        .pod(mk_pod("ns", "vllm-7d9f8-bbbbb", "vllm", false));
    let inv = stores.build();
    assert!(inv.unresolved.is_empty());
    let v = &inv.variants[0];
    assert_eq!(
        (v.current, v.ready, v.pending, v.spec_replicas, v.active),
        (3, 2, 1, 3, true)
    );
    assert_eq!(v.gpus_per_replica, 2);
    assert_eq!(v.accelerator.name, "H100");
    assert_eq!(v.model_id, "m");
    assert_eq!((v.cost, v.cost_valid), (10.0, true));
    assert_eq!(v.kind, TargetKind::Deployment);
    assert_eq!(
        v.pods,
        [
            PodEntry {
                name: "vllm-7d9f8-aaaaa".into(),
                ready: true
            },
            PodEntry {
                name: "vllm-7d9f8-bbbbb".into(),
                ready: false
            }
        ]
    );
    assert_eq!(
        v.fingerprint,
        Fingerprint {
            generation: 1,
            spec_replicas: 3,
            all_ready: false,
            accelerator: "H100".into(),
            gpus_per_replica: 2
        }
    );
}

#[test]
fn absent_status_counts_zero_and_absent_spec_replicas_counts_one() {
    let mut d = mk_deployment("ns", "vllm", None, 0, 0, "1");
    d.status = None;
    let inv = Stores::default()
        .va(mk_va("ns", "a", "vllm", None))
        .deployment(d)
        .build();
    let v = &inv.variants[0];
    assert_eq!(
        (v.current, v.ready, v.pending, v.spec_replicas, v.active),
        (0, 0, 0, 1, true)
    );
}

#[test]
fn scaled_to_zero_target_is_listed_inactive() {
    let inv = Stores::default()
        .va(mk_va("ns", "a", "vllm", None))
        .deployment(mk_deployment("ns", "vllm", Some(0), 0, 0, "1"))
        .build();
    assert!(!inv.variants[0].active);
    assert_eq!(inv.variants[0].spec_replicas, 0);
}

#[test]
fn previous_desired_comes_from_the_status() {
    let mut va = mk_va("ns", "a", "vllm", None);
    va.status = Some(VariantAutoscalingStatus {
        desired_optimized_alloc: Some(OptimizedAlloc {
            accelerator: "H100".into(),
            num_replicas: 4,
            last_run_time: Some(at(1)),
        }),
        ..Default::default()
    });
    let inv = Stores::default()
        .va(va)
        .deployment(mk_deployment("ns", "vllm", Some(1), 1, 1, "1"))
        .build();
    assert_eq!(inv.variants[0].previous_desired, 4);
    let fresh = Stores::default()
        .va(mk_va("ns", "a", "vllm", None))
        .deployment(mk_deployment("ns", "vllm", Some(1), 1, 1, "1"))
        .build();
    assert_eq!(fresh.variants[0].previous_desired, 0);
}

#[test]
fn va_created_before_its_deployment_is_unresolved_until_it_appears() {
    let before = Stores::default().va(mk_va("ns", "a", "vllm", None));
    let inv = before.build();
    assert!(inv.variants.is_empty());
    assert_eq!(
        inv.unresolved,
        [UnresolvedVariant {
            namespace: "ns".into(),
            name: "a".into(),
            model_id: "m".into(),
            state: TargetState::NotFound
        }]
    );
    let after = before.deployment(mk_deployment("ns", "vllm", Some(1), 1, 1, "1"));
    assert_eq!(names(&after.build()), ["a"]);
}

#[test]
fn deployment_being_deleted_counts_as_not_found() {
    let mut d = mk_deployment("ns", "vllm", Some(1), 1, 1, "1");
    d.metadata.deletion_timestamp = Some(at(5));
    let inv = Stores::default()
        .va(mk_va("ns", "a", "vllm", None))
        .deployment(d)
        .build();
    assert_eq!(inv.unresolved[0].state, TargetState::NotFound);
}

#[test]
fn deployment_in_another_namespace_does_not_resolve() {
    let inv = Stores::default()
        .va(mk_va("ns", "a", "vllm", None))
        .deployment(mk_deployment("other", "vllm", Some(1), 1, 1, "1"))
        .build();
    assert_eq!(inv.unresolved[0].state, TargetState::NotFound);
}

#[test]
fn second_va_on_one_deployment_gets_conflict_and_is_left_out() {
    let inv = Stores::default()
        .va(with_created(mk_va("ns", "newer", "vllm", None), 2_000))
        .va(with_created(mk_va("ns", "older", "vllm", None), 1_000))
        .deployment(mk_deployment("ns", "vllm", Some(1), 1, 1, "1"))
        .build();
    assert_eq!(names(&inv), ["older"]);
    assert_eq!(inv.unresolved[0].name, "newer");
    assert_eq!(
        inv.unresolved[0].state,
        TargetState::Conflict {
            owner: "older".into()
        }
    );
}

#[test]
fn unsupported_kind_is_reported() {
    let mut va = with_api_version(mk_va("ns", "a", "db", None), "apps/v1");
    va.spec.scale_target_ref.kind = "StatefulSet".into();
    let inv = Stores::default().va(va).build();
    assert_eq!(inv.unresolved[0].state, TargetState::Unsupported);
}

#[test]
fn other_instances_and_excluded_namespaces_are_absent() {
    let mut theirs = mk_va("ns", "theirs", "b", None);
    theirs.metadata.labels = Some(BTreeMap::from([(
        CONTROLLER_INSTANCE_LABEL.to_owned(),
        "x".to_owned(),
    )]));
    let stores = Stores::default()
        .va(mk_va("ns", "mine", "a", None))
        .va(theirs)
        .va(mk_va("quiet", "hidden", "c", None))
        .deployment(mk_deployment("ns", "a", Some(1), 1, 1, "1"))
        .deployment(mk_deployment("ns", "b", Some(1), 1, 1, "1"))
        .deployment(mk_deployment("quiet", "c", Some(1), 1, 1, "1"));
    let filters = Filters {
        excluded_namespaces: BTreeSet::from(["quiet".to_owned()]),
        ..Default::default()
    };
    let inv = build_inventory(stores.snapshot(), &filters);
    assert_eq!(names(&inv), ["mine"]);
    assert!(inv.unresolved.is_empty());

    let instance_x = Filters {
        controller_instance: Some("x".into()),
        ..Default::default()
    };
    assert_eq!(
        names(&build_inventory(stores.snapshot(), &instance_x)),
        ["theirs"]
    );
}

#[test]
fn watch_namespace_is_never_excluded() {
    let filters = Filters {
        excluded_namespaces: BTreeSet::from(["ns".to_owned()]),
        watch_namespace: Some("ns".into()),
        ..Default::default()
    };
    assert!(filters.tracks(&mk_va("ns", "a", "d", None)));
}

#[test]
fn other_instance_va_does_not_cause_a_conflict() {
    let mut theirs = with_created(mk_va("ns", "theirs", "vllm", None), 1);
    theirs.metadata.labels = Some(BTreeMap::from([(
        CONTROLLER_INSTANCE_LABEL.to_owned(),
        "x".to_owned(),
    )]));
    let inv = Stores::default()
        .va(theirs)
        .va(mk_va("ns", "mine", "vllm", None))
        .deployment(mk_deployment("ns", "vllm", Some(1), 1, 1, "1"))
        .build();
    assert_eq!(names(&inv), ["mine"]);
}

#[test]
fn variants_are_in_namespace_then_name_order() {
    let inv = Stores::default()
        .va(mk_va("b", "x", "d", None))
        .va(mk_va("a", "z", "d", None))
        .va(mk_va("a", "y", "e", None))
        .deployment(mk_deployment("b", "d", Some(1), 1, 1, "1"))
        .deployment(mk_deployment("a", "d", Some(1), 1, 1, "1"))
        .deployment(mk_deployment("a", "e", Some(1), 1, 1, "1"))
        .build();
    let order: Vec<(&str, &str)> = inv
        .variants
        .iter()
        .map(|v| (v.namespace.as_str(), v.name.as_str()))
        .collect();
    assert_eq!(order, [("a", "y"), ("a", "z"), ("b", "x")]);
}

#[test]
fn terminating_pods_and_pods_of_other_deployments_are_not_listed() {
    let mut leaving = mk_pod("ns", "vllm-7d9f8-old", "vllm", true);
    leaving.metadata.deletion_timestamp = Some(at(9));
    let inv = Stores::default()
        .va(mk_va("ns", "a", "vllm", None))
        .deployment(mk_deployment("ns", "vllm", Some(1), 1, 1, "1"))
        .pod(leaving)
        .pod(mk_pod("ns", "vllm-b-7d9f8-x", "vllm-b", true))
        .build();
    assert!(inv.variants[0].pods.is_empty());
}

#[test]
fn unparsable_cost_uses_ten_and_is_flagged() {
    let mut va = mk_va("ns", "a", "vllm", None);
    va.spec.variant_cost = "cheap".into();
    let inv = Stores::default()
        .va(va)
        .deployment(mk_deployment("ns", "vllm", Some(1), 1, 1, "1"))
        .build();
    assert_eq!(
        (inv.variants[0].cost, inv.variants[0].cost_valid),
        (10.0, false)
    );
}

#[test]
fn accelerator_is_derived_from_the_deployment_template() {
    let mut d = mk_deployment("ns", "vllm", Some(1), 1, 1, "1");
    let template = d.spec.as_mut().unwrap().template.spec.as_mut().unwrap();
    template.node_selector = Some(BTreeMap::from([(
        "nvidia.com/gpu.product".to_owned(),
        "NVIDIA-A100-SXM4-80GB".to_owned(),
    )]));
    let inv = Stores::default()
        .va(mk_va("ns", "a", "vllm", None))
        .deployment(d)
        .build();
    assert_eq!(inv.variants[0].accelerator.name, "A100");
    assert!(matches!(
        inv.variants[0].accelerator.source,
        AcceleratorSource::Derived { .. }
    ));
}

#[test]
fn missing_accelerator_label_still_yields_a_variant_named_unknown() {
    let inv = Stores::default()
        .va(mk_va("ns", "a", "vllm", None))
        .deployment(mk_deployment("ns", "vllm", Some(1), 1, 1, "1"))
        .build();
    assert_eq!(inv.variants[0].accelerator.name, "unknown");
    assert_eq!(inv.variants[0].fingerprint.accelerator, "unknown");
}

#[test]
fn leader_worker_set_counts_groups_and_group_gpus() {
    let va = with_api_version(
        {
            let mut va = mk_va("ns", "big", "big", Some("H100"));
            va.spec.scale_target_ref.kind = "LeaderWorkerSet".into();
            va
        },
        "leaderworkerset.x-k8s.io/v1",
    );
    let lws: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "leaderworkerset.x-k8s.io/v1",
        "kind": "LeaderWorkerSet",
        "metadata": {"name": "big", "namespace": "ns"},
        "spec": {"replicas": 2, "leaderWorkerTemplate": {"size": 2,
            "workerTemplate": {"spec": {"containers": [{"name": "w", "resources": {"limits": {"nvidia.com/gpu": "8"}}}]}}}},
        "status": {"replicas": 2, "readyReplicas": 2}
    }))
    .unwrap();
    let mut stores = Stores::default().va(va);
    stores.lws.push(Arc::new(lws));
    let inv = stores.build();
    let v = &inv.variants[0];
    assert_eq!(
        (
            v.kind,
            v.current,
            v.ready,
            v.spec_replicas,
            v.gpus_per_replica
        ),
        (TargetKind::LeaderWorkerSet, 2, 2, 2, 16)
    );
}

#[test]
fn vllm_container_is_found_by_its_command() {
    let mut sidecar = mk_container("proxy", BTreeMap::new());
    sidecar.command = Some(vec!["envoy".into()]);
    let mut server = mk_container("server", BTreeMap::new());
    server.command = Some(vec![
        "python3".into(),
        "-m".into(),
        "vllm.entrypoints.openai.api_server".into(),
    ]);
    server.args = Some(vec!["--max-num-seqs=64".into()]);
    server.env = Some(vec![EnvVar {
        name: "VLLM_USE_V1".into(),
        value: Some("1".into()),
        ..Default::default()
    }]);
    let spec = PodSpec {
        containers: vec![sidecar, server],
        ..Default::default()
    };
    assert_eq!(
        vllm_args(&spec),
        [
            "VLLM_USE_V1=1",
            "python3",
            "-m",
            "vllm.entrypoints.openai.api_server",
            "--max-num-seqs=64"
        ]
    );
}

#[test]
fn vllm_container_falls_back_to_the_gpu_container_then_the_first() {
    let mut first = mk_container("a", BTreeMap::new());
    first.args = Some(vec!["--first".into()]);
    let mut gpu = mk_container("b", crate::test_fixtures::gpus("nvidia.com/gpu", "1"));
    gpu.args = Some(vec!["--gpu".into()]);
    let both = PodSpec {
        containers: vec![first.clone(), gpu],
        ..Default::default()
    };
    assert_eq!(vllm_args(&both), ["--gpu"]);
    let only = PodSpec {
        containers: vec![first],
        ..Default::default()
    };
    assert_eq!(vllm_args(&only), ["--first"]);
    assert!(vllm_args(&PodSpec::default()).is_empty());
}

#[test]
fn inventory_reads_reflector_stores_filled_by_watcher_events() {
    let mut vas: Writer<VariantAutoscaling> = Writer::default();
    let mut deployments: Writer<Deployment> = Writer::default();
    vas.apply_watcher_event(&Event::Init);
    vas.apply_watcher_event(&Event::InitApply(mk_va("ns", "a", "vllm", Some("H100"))));
    vas.apply_watcher_event(&Event::InitDone);
    deployments.apply_watcher_event(&Event::Init);
    deployments.apply_watcher_event(&Event::InitDone);
    let (va_store, deployment_store) = (vas.as_reader(), deployments.as_reader());
    let (va_state, empty) = (va_store.state(), deployment_store.state());
    let snapshot = Snapshot {
        vas: &va_state,
        deployments: &empty,
        leader_worker_sets: &[],
        pods: &[],
    };
    assert_eq!(
        build_inventory(snapshot, &Filters::default())
            .unresolved
            .len(),
        1
    );

    deployments.apply_watcher_event(&Event::Apply(mk_deployment(
        "ns",
        "vllm",
        Some(2),
        2,
        2,
        "1",
    )));
    let with_target = deployment_store.state();
    let snapshot = Snapshot {
        deployments: &with_target,
        ..snapshot
    };
    assert_eq!(
        names(&build_inventory(snapshot, &Filters::default())),
        ["a"]
    );

    deployments.apply_watcher_event(&Event::Delete(mk_deployment(
        "ns",
        "vllm",
        Some(2),
        2,
        2,
        "1",
    )));
    let gone = deployment_store.state();
    let snapshot = Snapshot {
        deployments: &gone,
        ..snapshot
    };
    assert_eq!(
        build_inventory(snapshot, &Filters::default()).unresolved[0].state,
        TargetState::NotFound
    );
}

#[test]
fn namespace_metadata_flags() {
    let meta = ObjectMeta {
        annotations: Some(BTreeMap::from([(
            EXCLUDE_ANNOTATION.to_owned(),
            "true".to_owned(),
        )])),
        labels: Some(BTreeMap::from([(
            CONFIG_ENABLED_LABEL.to_owned(),
            "false".to_owned(),
        )])),
        ..Default::default()
    };
    assert!(namespace_excluded(&meta));
    assert!(!namespace_config_enabled(&meta));
    assert!(!namespace_excluded(&ObjectMeta::default()));
}
