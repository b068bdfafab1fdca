//! Every write of the controller, each bounded by `--rest-client-timeout` (spec/k8s.md §2.1,
//! §2.4, §5.2, §5.3): the status apply, the scale subresource patches and Events.

use std::future::Future;
use std::time::Duration;

use k8s_openapi::api::core::v1::ObjectReference;
use kube::api::{Api, ApiResource, DynamicObject, Patch, PatchParams};
use kube::runtime::events::{Event, EventType as KubeEventType, Recorder, Reporter};
use serde_json::json;

use crate::crd::{VariantAutoscaling, VariantAutoscalingStatus};
use crate::events::{EventNote, EventType, REPORTER};
use crate::labels::FIELD_MANAGER;
use crate::status::status_apply_body;

use super::context::Context;

/// Why a request to the API server failed.
#[derive(Debug, thiserror::Error)]
pub enum ApiFailure {
    /// The API server or the transport answered an error.
    #[error(transparent)]
    Api(#[from] kube::Error),
    /// No answer within `--rest-client-timeout`.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
}

impl ApiFailure {
    /// The API server's status, when it answered one.
    pub fn status(&self) -> Option<&kube::core::Status> {
        match self {
            ApiFailure::Api(kube::Error::Api(status)) => Some(status),
            _ => None,
        }
    }

    /// A 404 (`NotFound`).
    pub fn is_not_found(&self) -> bool {
        self.status().is_some_and(|s| s.is_not_found())
    }

    /// A 422 (`Invalid`): retrying the same request would fail the same way.
    pub fn is_invalid(&self) -> bool {
        self.status().is_some_and(|s| s.is_invalid())
    }

    /// A 422 caused by a failed JSON-patch `test` operation (someone else scaled first).
    pub fn is_failed_test(&self) -> bool {
        self.is_invalid()
            && self
                .status()
                .and_then(|s| s.details.as_ref())
                .is_some_and(|d| d.causes.iter().any(|c| c.message.contains("test failed")))
    }
}

/// Runs `request` under `timeout`.
pub async fn bounded<T>(
    timeout: Duration,
    request: impl Future<Output = Result<T, kube::Error>>,
) -> Result<T, ApiFailure> {
    match tokio::time::timeout(timeout, request).await {
        Ok(result) => result.map_err(ApiFailure::Api),
        Err(_) => Err(ApiFailure::Timeout(timeout)),
    }
}

/// `PatchParams` of every scale patch: field manager `wva-manager`, no `force` (rejected
/// client-side for anything but an apply).
pub fn scale_patch_params() -> PatchParams {
    PatchParams {
        field_manager: Some(FIELD_MANAGER.to_owned()),
        ..PatchParams::default()
    }
}

/// Server-side apply of the status subresource with manager `wva-manager` and `force`.
pub async fn apply_status(
    ctx: &Context,
    namespace: &str,
    name: &str,
    status: &VariantAutoscalingStatus,
) -> Result<(), ApiFailure> {
    let api: Api<VariantAutoscaling> = Api::namespaced(ctx.client.clone(), namespace);
    let params = PatchParams::apply(FIELD_MANAGER).force();
    let body = status_apply_body(status);
    bounded(
        ctx.settings.rest_client_timeout,
        api.patch_status(name, &params, &Patch::Apply(&body)),
    )
    .await
    .map(|_| ())
}

/// The JSON patch that wakes an idle target only if nobody scaled it meanwhile:
/// `test` `/spec/replicas` is 0, then `replace` it with 1.
pub fn scale_from_zero_patch() -> Result<json_patch::Patch, serde_json::Error> {
    serde_json::from_value(json!([
        {"op": "test", "path": "/spec/replicas", "value": 0},
        {"op": "replace", "path": "/spec/replicas", "value": 1}
    ]))
}

/// Merge-patches the scale subresource of `name` (of `resource`) to `replicas`.
pub async fn patch_replicas(
    ctx: &Context,
    resource: &ApiResource,
    namespace: &str,
    name: &str,
    replicas: u32,
) -> Result<(), ApiFailure> {
    let api: Api<DynamicObject> = Api::namespaced_with(ctx.client.clone(), namespace, resource);
    let body = json!({"spec": {"replicas": replicas}});
    bounded(
        ctx.settings.rest_client_timeout,
        api.patch_scale(name, &scale_patch_params(), &Patch::Merge(&body)),
    )
    .await
    .map(|_| ())
}

/// JSON-patches the scale subresource of `name` from 0 to 1 ([`scale_from_zero_patch`]).
pub async fn patch_from_zero(
    ctx: &Context,
    resource: &ApiResource,
    namespace: &str,
    name: &str,
    patch: json_patch::Patch,
) -> Result<(), ApiFailure> {
    let api: Api<DynamicObject> = Api::namespaced_with(ctx.client.clone(), namespace, resource);
    bounded(
        ctx.settings.rest_client_timeout,
        api.patch_scale(name, &scale_patch_params(), &Patch::<()>::Json(patch)),
    )
    .await
    .map(|_| ())
}

/// The `ObjectReference` of a VA as Events' `regarding`.
pub fn va_reference(va: &VariantAutoscaling) -> ObjectReference {
    ObjectReference {
        api_version: Some("llmd.ai/v1alpha1".to_owned()),
        kind: Some("VariantAutoscaling".to_owned()),
        name: va.metadata.name.clone(),
        namespace: va.metadata.namespace.clone(),
        resource_version: va.metadata.resource_version.clone(),
        uid: va.metadata.uid.clone(),
        ..ObjectReference::default()
    }
}

/// Publishes one Event through a fresh `Recorder` (one `POST …/events`, never merged with an
/// earlier one). A failure is logged, never retried: Events are best effort.
pub async fn publish_event(ctx: &Context, regarding: &ObjectReference, note: &EventNote) {
    let reporter = Reporter {
        controller: REPORTER.to_owned(),
        instance: ctx.settings.reporter_instance.clone(),
    };
    let recorder = Recorder::new(ctx.client.clone(), reporter);
    let event = Event {
        type_: match note.type_ {
            EventType::Normal => KubeEventType::Normal,
            EventType::Warning => KubeEventType::Warning,
        },
        reason: note.reason.to_owned(),
        note: Some(note.note.clone()),
        action: note.action.to_owned(),
        secondary: None,
    };
    let published = tokio::time::timeout(
        ctx.settings.rest_client_timeout,
        recorder.publish(&event, regarding),
    )
    .await;
    match published {
        Ok(Ok(())) => {}
        Ok(Err(error)) => {
            tracing::warn!(reason = note.reason, %error, "cannot publish Event");
        }
        Err(_) => {
            tracing::warn!(reason = note.reason, "cannot publish Event: timed out");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scale_from_zero_patch_tests_zero_before_replacing_with_one() {
        let patch = scale_from_zero_patch().unwrap();
        assert_eq!(
            serde_json::to_value(&patch).unwrap(),
            json!([
                {"op": "test", "path": "/spec/replicas", "value": 0},
                {"op": "replace", "path": "/spec/replicas", "value": 1}
            ])
        );
    }

    #[test]
    fn failed_test_is_recognised_from_the_status_causes() {
        let status: kube::core::Status = serde_json::from_value(json!({
            "status": "Failure", "code": 422, "reason": "Invalid",
            "message": "the server rejected our request",
            "details": {"causes": [{"reason": "FieldValueInvalid", "message": "test failed: /spec/replicas"}]}
        }))
        .unwrap();
        let failure = ApiFailure::Api(kube::Error::Api(Box::new(status.clone())));
        assert!(failure.is_invalid() && failure.is_failed_test());
        let mut other = status;
        other.details = None;
        let failure = ApiFailure::Api(kube::Error::Api(Box::new(other)));
        assert!(failure.is_invalid() && !failure.is_failed_test());
        assert!(!ApiFailure::Timeout(Duration::from_secs(1)).is_invalid());
    }
}
