//! Strict numbers for config entries: integers are accepted where an f64 is expected, a
//! quoted number is a type error (spec/core.md §2.1). YAML parsers happily coerce `"0.8"`
//! into a float when asked for one, so these fields ask for "any" value and accept only
//! numbers.

use serde::Deserializer;
use serde::de::{Error, Visitor};

struct NumberVisitor;

impl Visitor<'_> for NumberVisitor {
    type Value = f64;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a number")
    }

    fn visit_f64<E: Error>(self, v: f64) -> Result<f64, E> {
        Ok(v)
    }

    fn visit_i64<E: Error>(self, v: i64) -> Result<f64, E> {
        Ok(v as f64)
    }

    fn visit_u64<E: Error>(self, v: u64) -> Result<f64, E> {
        Ok(v as f64)
    }
}

/// An f64 that must be written as a number.
pub(crate) fn number<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    d.deserialize_any(NumberVisitor)
}

/// An optional f64 that must be written as a number when present.
pub(crate) fn opt_number<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    d.deserialize_any(NumberVisitor).map(Some)
}
