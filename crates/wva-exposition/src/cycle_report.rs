//! The last cycle report served at `/debug/cycle`.
//!
//! The slot keeps a shared handle on the report the engine retains anyway and writes its JSON
//! only when `/debug/cycle` is first asked for after a cycle; later requests for the same report
//! share that text. At 1,000 variants the text is over 1 MiB: writing it every cycle whether or
//! not anyone reads it (plus a copy into the slot) used to set the process's heap peak.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock, PoisonError, RwLock};

use bytes::Bytes;
use serde::Serialize;

use crate::error::ExpositionError;

/// Something `/debug/cycle` can render as JSON.
trait ReportJson: Send + Sync {
    /// Compact or pretty (two-space) JSON; a fresh text starts with a `capacity`-byte buffer.
    fn render(&self, pretty: bool, capacity: usize) -> Result<Bytes, serde_json::Error>;
}

/// Already-serialised compact JSON.
struct RawJson(Bytes);

impl ReportJson for RawJson {
    fn render(&self, pretty_print: bool, _capacity: usize) -> Result<Bytes, serde_json::Error> {
        Ok(if pretty_print {
            Bytes::from(pretty(&String::from_utf8_lossy(&self.0)))
        } else {
            self.0.clone()
        })
    }
}

/// A typed report, serialised on request; the compact text is kept once written.
struct Typed<T> {
    report: Arc<T>,
    compact: OnceLock<Bytes>,
}

impl<T: Serialize + Send + Sync> ReportJson for Typed<T> {
    fn render(&self, pretty: bool, capacity: usize) -> Result<Bytes, serde_json::Error> {
        if !pretty && let Some(text) = self.compact.get() {
            return Ok(text.clone());
        }
        let mut out = Vec::with_capacity(capacity);
        if pretty {
            serde_json::to_writer_pretty(&mut out, &*self.report)?;
            return Ok(Bytes::from(out));
        }
        serde_json::to_writer(&mut out, &*self.report)?;
        // Two requests racing both write the text; either copy serves.
        Ok(self.compact.get_or_init(|| Bytes::from(out)).clone())
    }
}

/// Holds the last `CycleReport`, swapped once per cycle. Cheap to clone.
#[derive(Clone, Default)]
pub struct CycleReportSlot {
    report: Arc<RwLock<Option<Arc<dyn ReportJson>>>>,
    /// Length of the last compact and pretty rendering: the next one starts with a buffer a
    /// little larger instead of doubling its way up (a 1 MiB report would peak at 2 MiB).
    last_len: Arc<[AtomicUsize; 2]>,
}

impl std::fmt::Debug for CycleReportSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CycleReportSlot")
            .field("set", &self.current().is_some())
            .finish()
    }
}

impl CycleReportSlot {
    fn store(&self, report: Arc<dyn ReportJson>) {
        *self.report.write().unwrap_or_else(PoisonError::into_inner) = Some(report);
    }

    fn current(&self) -> Option<Arc<dyn ReportJson>> {
        self.report
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Stores an already-serialised report (compact JSON).
    pub fn set_json(&self, json: impl Into<String>) {
        self.store(Arc::new(RawJson(Bytes::from(json.into()))));
    }

    /// Stores a shared handle on `report`; it is serialised only when asked for.
    pub fn set<T: Serialize + Send + Sync + 'static>(&self, report: Arc<T>) {
        self.store(Arc::new(Typed {
            report,
            compact: OnceLock::new(),
        }));
    }

    /// The last stored report as compact (or, with `pretty`, indented) JSON, if a cycle has
    /// completed.
    pub fn render(&self, pretty: bool) -> Option<Result<Bytes, ExpositionError>> {
        let report = self.current()?;
        let last_len = &self.last_len[usize::from(pretty)];
        let previous = last_len.load(Ordering::Relaxed);
        let rendered = report.render(pretty, previous + previous / 16);
        if let Ok(text) = &rendered {
            last_len.store(text.len(), Ordering::Relaxed);
        }
        Some(rendered.map_err(|source| ExpositionError::SerialiseReport { source }))
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
        assert!(slot.render(false).is_none());
        slot.set(Arc::new(serde_json::json!({"decisions": [1]})));
        let first = slot.render(false).unwrap().unwrap();
        assert_eq!(&first[..], b"{\"decisions\":[1]}");
        // The same report again: the text written the first time, not a new one.
        let second = slot.render(false).unwrap().unwrap();
        assert_eq!(first.as_ptr(), second.as_ptr());
        assert_eq!(
            &slot.render(true).unwrap().unwrap()[..],
            b"{\n  \"decisions\": [\n    1\n  ]\n}"
        );
        slot.set(Arc::new(serde_json::json!({"decisions": [2]})));
        assert_eq!(
            &slot.render(false).unwrap().unwrap()[..],
            b"{\"decisions\":[2]}"
        );
        slot.set_json("{\"a\":[]}");
        assert_eq!(
            &slot.render(true).unwrap().unwrap()[..],
            b"{\n  \"a\": []\n}"
        );
    }

    #[test]
    fn a_report_that_cannot_be_serialised_is_an_error_not_a_panic() {
        struct Refuses;
        impl Serialize for Refuses {
            fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
                Err(serde::ser::Error::custom("refused"))
            }
        }
        let slot = CycleReportSlot::default();
        slot.set(Arc::new(Refuses));
        let err = slot.render(false).unwrap().unwrap_err().to_string();
        assert!(
            err.contains("cannot serialise the cycle report") && err.contains("refused"),
            "{err}"
        );
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
