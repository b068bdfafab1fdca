//! RFC 3339 timestamps in the exact form of spec/core.md §8: UTC, `Z`, fraction only if
//! non-zero (3, 6 or 9 digits).

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A point in time, serialised as RFC 3339 UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub DateTime<Utc>);

impl Timestamp {
    /// `1970-01-01T00:00:00Z`.
    pub const EPOCH: Timestamp = Timestamp(DateTime::UNIX_EPOCH);

    /// Parses RFC 3339 (any offset; converted to UTC).
    pub fn parse(text: &str) -> Result<Timestamp, chrono::ParseError> {
        DateTime::parse_from_rfc3339(text).map(|t| Timestamp(t.with_timezone(&Utc)))
    }

    /// Nanoseconds elapsed from `earlier` to `self` (negative if `earlier` is later; saturating).
    pub fn nanos_since(&self, earlier: &Timestamp) -> i128 {
        let d = self.0.signed_duration_since(earlier.0);
        i128::from(d.num_seconds()) * 1_000_000_000 + i128::from(d.subsec_nanos())
    }
}

impl std::fmt::Display for Timestamp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0.to_rfc3339_opts(SecondsFormat::AutoSi, true))
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Timestamp::parse(&text).map_err(|e| {
            serde::de::Error::custom(format!("invalid RFC 3339 timestamp \"{text}\": {e}"))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fraction_is_written_only_when_non_zero() {
        let t = |s| Timestamp::parse(s).unwrap().to_string();
        assert_eq!(t("2026-03-01T12:00:00Z"), "2026-03-01T12:00:00Z");
        assert_eq!(t("2026-03-01T12:00:00.120Z"), "2026-03-01T12:00:00.120Z");
        assert_eq!(
            t("2026-03-01T12:00:00.1234Z"),
            "2026-03-01T12:00:00.123400Z"
        );
        assert_eq!(t("2026-03-01T14:00:00+02:00"), "2026-03-01T12:00:00Z");
    }

    #[test]
    fn bad_timestamps_are_rejected() {
        assert!(Timestamp::parse("yesterday").is_err());
        assert!(Timestamp::parse("2026-03-01 12:00:00").is_err());
    }
}
