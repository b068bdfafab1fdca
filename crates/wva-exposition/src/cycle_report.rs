//! The last cycle report served at `/debug/cycle`, kept as serialised JSON.

use std::sync::{Arc, PoisonError, RwLock};

use serde::Serialize;

use crate::error::ExpositionError;

/// Holds the JSON of the last `CycleReport`, swapped once per cycle. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct CycleReportSlot {
    json: Arc<RwLock<Option<Arc<str>>>>,
}

impl CycleReportSlot {
    /// Stores an already-serialised report (compact JSON).
    pub fn set_json(&self, json: impl Into<Arc<str>>) {
        *self.json.write().unwrap_or_else(PoisonError::into_inner) = Some(json.into());
    }

    /// Serialises `report` once and stores it.
    pub fn set<T: Serialize + ?Sized>(&self, report: &T) -> Result<(), ExpositionError> {
        let json = serde_json::to_string(report)
            .map_err(|source| ExpositionError::SerialiseReport { source })?;
        self.set_json(json);
        Ok(())
    }

    /// The last stored report, if a cycle has completed.
    pub fn get(&self) -> Option<Arc<str>> {
        self.json
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// Indents compact or loose JSON with two spaces, keeping key order and number text as they are.
pub(crate) fn pretty(json: &str) -> String {
    let mut out = String::with_capacity(json.len() * 2);
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    let mut chars = json.chars().peekable();
    let newline = |out: &mut String, depth: usize| {
        out.push('\n');
        out.extend(std::iter::repeat_n("  ", depth));
    };
    while let Some(c) = chars.next() {
        if in_string {
            out.push(c);
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => {
                in_string = true;
                out.push(c);
            }
            '{' | '[' => {
                out.push(c);
                while chars.peek().is_some_and(|n| n.is_whitespace()) {
                    chars.next();
                }
                if chars.peek().is_some_and(|n| *n == '}' || *n == ']') {
                    if let Some(close) = chars.next() {
                        out.push(close);
                    }
                } else {
                    depth += 1;
                    newline(&mut out, depth);
                }
            }
            '}' | ']' => {
                depth = depth.saturating_sub(1);
                newline(&mut out, depth);
                out.push(c);
            }
            ',' => {
                out.push(c);
                newline(&mut out, depth);
            }
            ':' => out.push_str(": "),
            c if c.is_whitespace() => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slot_is_empty_until_a_report_is_stored() {
        let slot = CycleReportSlot::default();
        assert!(slot.get().is_none());
        slot.set(&serde_json::json!({"decisions": []})).unwrap();
        assert_eq!(slot.get().as_deref(), Some("{\"decisions\":[]}"));
    }

    #[test]
    fn pretty_indents_json_keeping_key_order() {
        assert_eq!(
            pretty(r#"{"b":[1,2.5],"a":{},"c":"x,{:\"}"}"#),
            "{\n  \"b\": [\n    1,\n    2.5\n  ],\n  \"a\": {},\n  \"c\": \"x,{:\\\"}\"\n}"
        );
    }

    #[test]
    fn pretty_output_parses_to_the_same_value() {
        let compact =
            r#"{"decisions":[{"variant":"a","targetReplicas":3}],"timings":{"decide":12}}"#;
        let a: serde_json::Value = serde_json::from_str(compact).unwrap();
        let b: serde_json::Value = serde_json::from_str(&pretty(compact)).unwrap();
        assert_eq!(a, b);
    }
}
