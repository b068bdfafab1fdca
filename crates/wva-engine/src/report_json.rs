//! The cycle report's compact JSON for `/debug/cycle`, written without building a JSON tree.
//!
//! `CycleReport::to_json` proves the report finite by first converting it into a
//! `serde_json::Value` (hundreds of thousands of small allocations at 1,000 variants, several
//! MiB at peak, every cycle). Here the report is written once as text and the text is scanned
//! for `null` (what serde_json writes for NaN and infinities) by a streaming pass that allocates
//! nothing; only a report that fails the scan goes through `to_json` to name the bad field.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use wva_core::{CycleReport, ReportError};

/// The report's compact JSON, or why it cannot be written (a non-finite number).
pub fn report_json(report: &CycleReport) -> Result<String, ReportError> {
    let json = serde_json::to_string(report)?;
    if serde_json::from_str::<NoNull>(&json).is_ok() {
        Ok(json)
    } else {
        // Rare: let the core name the path of the offending number.
        report.to_json()
    }
}

/// Any JSON value that holds no `null` anywhere.
struct NoNull;

impl<'de> Deserialize<'de> for NoNull {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(NoNullVisitor)
    }
}

struct NoNullVisitor;

impl<'de> Visitor<'de> for NoNullVisitor {
    type Value = NoNull;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value without null")
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<NoNull, E> {
        Ok(NoNull)
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<NoNull, E> {
        Ok(NoNull)
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<NoNull, E> {
        Ok(NoNull)
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<NoNull, E> {
        Ok(NoNull)
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<NoNull, E> {
        Ok(NoNull)
    }
    fn visit_unit<E: de::Error>(self) -> Result<NoNull, E> {
        Err(E::custom("null"))
    }
    fn visit_none<E: de::Error>(self) -> Result<NoNull, E> {
        Err(E::custom("null"))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<NoNull, A::Error> {
        while seq.next_element::<NoNull>()?.is_some() {}
        Ok(NoNull)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<NoNull, A::Error> {
        while map.next_key::<IgnoredAny>()?.is_some() {
            map.next_value::<NoNull>()?;
        }
        Ok(NoNull)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_null(text: &str) -> bool {
        serde_json::from_str::<NoNull>(text).is_ok()
    }

    #[test]
    fn null_anywhere_is_found_but_the_word_in_a_string_is_not() {
        assert!(no_null(
            r#"{"a":[1,2.5,{"b":"null","null":true}],"c":"x\"null"}"#
        ));
        assert!(!no_null(r#"{"a":[1,{"b":null}]}"#));
        assert!(!no_null(r#"[1,null]"#));
        assert!(!no_null("null"));
    }
}
