//! The Events wva-manager publishes (spec/k8s.md §2.4): type, reason, action and the exact note.
//! Each is published through a fresh `Recorder` so that repeats are never merged.

use crate::conditions::{self, ConditionValue};
use crate::crd::ScaleTargetRef;

/// Reporting controller of every Event.
pub const REPORTER: &str = "wva-manager";
/// Longest note the API server accepts, in bytes.
pub const NOTE_BYTES: usize = 1024;

/// Event type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    /// `Normal`.
    Normal,
    /// `Warning`.
    Warning,
}

impl EventType {
    /// The API's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Normal => "Normal",
            EventType::Warning => "Warning",
        }
    }
}

/// One Event's content; the regarding object is supplied by the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventNote {
    /// `Normal` or `Warning`.
    pub type_: EventType,
    /// CamelCase reason.
    pub reason: &'static str,
    /// The action taken.
    pub action: &'static str,
    /// The note, at most 1024 bytes.
    pub note: String,
}

impl EventNote {
    fn new(type_: EventType, reason: &'static str, action: &'static str, note: String) -> Self {
        EventNote {
            type_,
            reason,
            action,
            note: cut_bytes(note, NOTE_BYTES),
        }
    }
}

/// `InvalidConfiguration` on a ConfigMap: every rejected key with its message. `first_version`:
/// the ConfigMap had no last good version, so its accepted entries are used.
pub fn invalid_configuration(
    namespace: &str,
    name: &str,
    rejections: &[(String, String)],
    first_version: bool,
) -> EventNote {
    let listed: Vec<String> = rejections
        .iter()
        .map(|(key, message)| format!("{key}: {message}"))
        .collect();
    let outcome = if first_version {
        "using the accepted entries"
    } else {
        "keeping the last good configuration"
    };
    EventNote::new(
        EventType::Warning,
        "InvalidConfiguration",
        "LoadConfig",
        format!(
            "Rejected {namespace}/{name}: {}; {outcome}",
            listed.join("; ")
        ),
    )
}

/// `TargetConflict` on a VA, on transition to the condition.
pub fn target_conflict(target: &ScaleTargetRef, owner: &str) -> EventNote {
    from_condition(
        EventType::Warning,
        "TargetConflict",
        conditions::target_conflict(target, owner),
    )
}

/// `AcceleratorUnknown` on a VA, on transition to the condition.
pub fn accelerator_unknown(condition: ConditionValue) -> EventNote {
    from_condition(EventType::Warning, "AcceleratorUnknown", condition)
}

fn from_condition(type_: EventType, reason: &'static str, condition: ConditionValue) -> EventNote {
    EventNote::new(type_, reason, "Reconcile", condition.message)
}

/// `ScaledFromZero` on a VA.
pub fn scaled_from_zero(target: &ScaleTargetRef, model_id: &str) -> EventNote {
    let ScaleTargetRef { kind, name, .. } = target;
    EventNote::new(
        EventType::Normal,
        "ScaledFromZero",
        "Scale",
        format!("Scaled {kind} {name} from 0 to 1: pending requests for model {model_id}"),
    )
}

/// `Scaled` on a VA (direct actuation).
pub fn scaled(target: &ScaleTargetRef, old: u32, new: u32, reason: &str) -> EventNote {
    let ScaleTargetRef { kind, name, .. } = target;
    EventNote::new(
        EventType::Normal,
        "Scaled",
        "Scale",
        format!("Scaled {kind} {name} from {old} to {new} ({reason})"),
    )
}

/// `ScaleFailed` on a VA.
pub fn scale_failed(target: &ScaleTargetRef, replicas: u32, error: &str) -> EventNote {
    let ScaleTargetRef { kind, name, .. } = target;
    EventNote::new(
        EventType::Warning,
        "ScaleFailed",
        "Scale",
        format!("Scaling {kind} {name} to {replicas} failed: {error}"),
    )
}

/// `ConflictingAutoscaler` on a VA: an HPA also targets the workload.
pub fn conflicting_autoscaler(target: &ScaleTargetRef, hpa: &str) -> EventNote {
    let ScaleTargetRef { kind, name, .. } = target;
    EventNote::new(
        EventType::Warning,
        "ConflictingAutoscaler",
        "Scale",
        format!(
            "HorizontalPodAutoscaler {hpa} also targets {kind} {name}; direct actuation skipped"
        ),
    )
}

/// `text` cut to at most `max` bytes on a char boundary.
pub fn cut_bytes(mut text: String, max: usize) -> String {
    if text.len() > max {
        let mut end = max;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::accelerator::{AcceleratorResolution, AcceleratorSource};

    fn deployment() -> ScaleTargetRef {
        ScaleTargetRef {
            api_version: Some("apps/v1".into()),
            kind: "Deployment".into(),
            name: "vllm".into(),
        }
    }

    #[test]
    fn rejected_edit_lists_every_key_and_keeps_the_last_good_version() {
        let rejections = vec![
            (
                "default".to_owned(),
                "kvCacheThreshold must be between 0 and 1, got 1.50".to_owned(),
            ),
            ("llama".to_owned(), "unknown field \"kvCache\"".to_owned()),
        ];
        let event =
            invalid_configuration("ops", "wva-saturation-scaling-config", &rejections, false);
        assert_eq!(
            (event.type_, event.reason, event.action),
            (EventType::Warning, "InvalidConfiguration", "LoadConfig")
        );
        assert_eq!(
            event.note,
            "Rejected ops/wva-saturation-scaling-config: default: kvCacheThreshold must be between 0 and 1, got 1.50; llama: unknown field \"kvCache\"; keeping the last good configuration"
        );
        let first = invalid_configuration("ops", "c", &rejections[..1], true);
        assert!(first.note.ends_with("; using the accepted entries"));
    }

    #[test]
    fn scaling_notes() {
        let t = deployment();
        assert_eq!(
            scaled_from_zero(&t, "m").note,
            "Scaled Deployment vllm from 0 to 1: pending requests for model m"
        );
        assert_eq!(
            scaled(&t, 2, 3, "kv_cache_saturation").note,
            "Scaled Deployment vllm from 2 to 3 (kv_cache_saturation)"
        );
        assert_eq!(
            scale_failed(&t, 3, "forbidden").note,
            "Scaling Deployment vllm to 3 failed: forbidden"
        );
        assert_eq!(scale_failed(&t, 3, "x").type_.as_str(), "Warning");
        assert_eq!(
            conflicting_autoscaler(&t, "vllm-hpa").note,
            "HorizontalPodAutoscaler vllm-hpa also targets Deployment vllm; direct actuation skipped"
        );
    }

    #[test]
    fn transition_events_carry_the_condition_message() {
        let t = deployment();
        assert_eq!(
            target_conflict(&t, "old").note,
            "Scale target Deployment vllm is already managed by VariantAutoscaling old"
        );
        let unknown = AcceleratorResolution {
            name: "unknown".into(),
            source: AcceleratorSource::Unknown,
        };
        let event = accelerator_unknown(conditions::accelerator(&unknown, &t));
        assert_eq!(
            (event.reason, event.action),
            ("AcceleratorUnknown", "Reconcile")
        );
    }

    #[test]
    fn notes_are_cut_to_1024_bytes_on_a_char_boundary() {
        let long = vec![("k".to_owned(), "€".repeat(600))];
        let note = invalid_configuration("ns", "c", &long, false).note;
        assert!(note.len() <= NOTE_BYTES && note.len() > NOTE_BYTES - 3);
        assert!(note.is_char_boundary(note.len()));
        assert_eq!(cut_bytes("short".into(), 1024), "short");
    }
}
