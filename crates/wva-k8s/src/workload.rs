//! A uniform read-only view of a scale target (Deployment or LeaderWorkerSet) as the inventory
//! needs it: replicas, readiness and pod templates.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{PodSpec, PodTemplateSpec};
use kube::core::DynamicObject;
use serde::Deserialize;

use crate::gpu::{NonIntegerGpu, containers_gpus};

/// The parts of a target the inventory reads.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkloadView {
    /// `spec.replicas` (LeaderWorkerSet: groups); `None` when absent (counts as 1).
    pub spec_replicas: Option<i32>,
    /// `status.replicas` (absent → 0).
    pub current: i32,
    /// `status.readyReplicas` (absent → 0).
    pub ready: i32,
    /// Pod templates for accelerator derivation, in lookup order (LWS: worker, then leader).
    pub accelerator_templates: Vec<PodSpec>,
    /// The template whose containers run vLLM (LWS: leader, else worker).
    pub serving_template: Option<PodSpec>,
    /// LeaderWorkerSet group size (`None` for a Deployment).
    pub group_size: Option<i32>,
    /// The LeaderWorkerSet's leader template (`None` for a Deployment or without one).
    pub leader_template: Option<PodSpec>,
    /// The LeaderWorkerSet's worker template (`None` for a Deployment).
    pub worker_template: Option<PodSpec>,
    /// Whether the object carries a `deletionTimestamp`.
    pub deleting: bool,
}

impl WorkloadView {
    /// The view of a Deployment.
    pub fn of_deployment(deployment: &Deployment) -> WorkloadView {
        let spec = deployment.spec.as_ref();
        let status = deployment.status.as_ref();
        let template = spec.and_then(|s| s.template.spec.clone());
        WorkloadView {
            spec_replicas: spec.and_then(|s| s.replicas),
            current: status.and_then(|s| s.replicas).unwrap_or(0),
            ready: status.and_then(|s| s.ready_replicas).unwrap_or(0),
            accelerator_templates: template.iter().cloned().collect(),
            serving_template: template,
            group_size: None,
            leader_template: None,
            worker_template: None,
            deleting: deployment.metadata.deletion_timestamp.is_some(),
        }
    }

    /// The view of a LeaderWorkerSet read as a `DynamicObject`; `None` if its fields do not
    /// have the LeaderWorkerSet shape.
    pub fn of_leader_worker_set(lws: &DynamicObject) -> Option<WorkloadView> {
        let shape: LwsShape = serde_json::from_value(lws.data.clone()).ok()?;
        let template = shape.spec.leader_worker_template.unwrap_or_default();
        let worker = template.worker_template.and_then(|t| t.spec);
        let leader = template.leader_template.and_then(|t| t.spec);
        Some(WorkloadView {
            spec_replicas: shape.spec.replicas,
            current: shape.status.replicas.unwrap_or(0),
            ready: shape.status.ready_replicas.unwrap_or(0),
            accelerator_templates: worker.iter().chain(leader.iter()).cloned().collect(),
            serving_template: leader.clone().or_else(|| worker.clone()),
            group_size: Some(template.size.unwrap_or(1)),
            leader_template: leader,
            worker_template: worker,
            deleting: lws.metadata.deletion_timestamp.is_some(),
        })
    }

    /// GPUs per replica: Σ containers (request, else limit), 0 → 1. LeaderWorkerSet: leader
    /// template (or worker template) + worker template × (size − 1).
    pub fn gpus_per_replica(&self, bad: &mut Vec<NonIntegerGpu>) -> u32 {
        let total = match self.group_size {
            None => self
                .serving_template
                .as_ref()
                .map_or(0, |t| containers_gpus(t, bad)),
            Some(size) => {
                let worker = self
                    .worker_template
                    .as_ref()
                    .map_or(0, |t| containers_gpus(t, bad));
                let leader = match &self.leader_template {
                    Some(t) => containers_gpus(t, bad),
                    None => worker,
                };
                let others = u32::try_from(size.saturating_sub(1)).unwrap_or(0);
                leader.saturating_add(worker.saturating_mul(others))
            }
        };
        total.max(1)
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct LwsShape {
    spec: LwsSpec,
    status: LwsStatus,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct LwsSpec {
    replicas: Option<i32>,
    leader_worker_template: Option<LwsTemplate>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct LwsTemplate {
    size: Option<i32>,
    worker_template: Option<PodTemplateSpec>,
    leader_template: Option<PodTemplateSpec>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct LwsStatus {
    replicas: Option<i32>,
    ready_replicas: Option<i32>,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::test_fixtures::mk_deployment;

    fn lws(data: serde_json::Value) -> DynamicObject {
        serde_json::from_value(json!({
            "apiVersion": "leaderworkerset.x-k8s.io/v1",
            "kind": "LeaderWorkerSet",
            "metadata": {"name": "big", "namespace": "ns"}
        }))
        .map(|mut o: DynamicObject| {
            o.data = data;
            o
        })
        .unwrap()
    }

    fn template(gpus: &str) -> serde_json::Value {
        json!({"spec": {"containers": [{"name": "vllm", "resources": {"requests": {"nvidia.com/gpu": gpus}}}]}})
    }

    #[test]
    fn deployment_gpus_per_replica_sums_containers_and_never_reports_zero() {
        let d = WorkloadView::of_deployment(&mk_deployment("ns", "d", Some(1), 1, 1, "2"));
        assert_eq!(d.gpus_per_replica(&mut Vec::new()), 2);
        let cpu = WorkloadView::of_deployment(&mk_deployment("ns", "d", Some(1), 1, 1, "0"));
        assert_eq!(cpu.gpus_per_replica(&mut Vec::new()), 1);
    }

    #[test]
    fn lws_with_leader_counts_leader_plus_workers() {
        let view = WorkloadView::of_leader_worker_set(&lws(json!({
            "spec": {"replicas": 2, "leaderWorkerTemplate": {"size": 4, "leaderTemplate": template("1"), "workerTemplate": template("8")}},
            "status": {"replicas": 2, "readyReplicas": 1}
        })))
        .unwrap();
        assert_eq!(
            (view.spec_replicas, view.current, view.ready),
            (Some(2), 2, 1)
        );
        assert_eq!(view.gpus_per_replica(&mut Vec::new()), 1 + 8 * 3);
    }

    #[test]
    fn lws_without_leader_template_uses_the_worker_template_for_every_pod() {
        let view = WorkloadView::of_leader_worker_set(&lws(json!({
            "spec": {"leaderWorkerTemplate": {"size": 2, "workerTemplate": template("4")}}
        })))
        .unwrap();
        assert_eq!(view.gpus_per_replica(&mut Vec::new()), 8);
        assert_eq!(view.current, 0);
        assert_eq!(view.spec_replicas, None);
    }

    #[test]
    fn lws_of_the_wrong_shape_gives_no_view() {
        assert!(
            WorkloadView::of_leader_worker_set(&lws(json!({"spec": {"replicas": "two"}})))
                .is_none()
        );
    }
}
