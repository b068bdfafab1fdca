//! The per-cycle finite check of the `CycleReport`, without building its JSON.
//!
//! `CycleReport::check_finite` proves the report finite by converting it into a
//! `serde_json::Value` (hundreds of thousands of small allocations at 1,000 variants, several
//! MiB at peak, every cycle). Here the report is serialised into a writer that keeps nothing and
//! only watches for `null`, which serde_json writes for NaN and infinities and which the report
//! never holds otherwise. Outside strings, compact JSON spells letters only in `true`, `false`,
//! `null` and number exponents (`e`), so an `n` outside a string is a `null`. Only a report that
//! fails the scan goes through `check_finite` to name the offending field. `/debug/cycle`
//! renders the retained report on request instead of keeping a second copy as text.

use std::io;

use wva_core::{CycleReport, ReportError};

/// Fails, naming the field, if any number in `report` is NaN or infinite.
pub fn check_finite(report: &CycleReport) -> Result<(), ReportError> {
    let mut scan = NullScan::default();
    serde_json::to_writer(&mut scan, report)?;
    if scan.found_null {
        // Rare: let the core name the path of the offending number.
        report.check_finite()
    } else {
        Ok(())
    }
}

/// An `io::Write` sink that records whether compact JSON written to it holds a `null`.
#[derive(Debug, Default)]
struct NullScan {
    in_string: bool,
    escaped: bool,
    found_null: bool,
}

impl io::Write for NullScan {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.found_null {
            return Ok(buf.len());
        }
        for &b in buf {
            if self.in_string {
                match (self.escaped, b) {
                    (true, _) => self.escaped = false,
                    (false, b'\\') => self.escaped = true,
                    (false, b'"') => self.in_string = false,
                    _ => {}
                }
            } else if b == b'"' {
                self.in_string = true;
            } else if b == b'n' {
                self.found_null = true;
                break;
            }
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn has_null(chunks: &[&str]) -> bool {
        let mut scan = NullScan::default();
        for c in chunks {
            scan.write_all(c.as_bytes()).unwrap();
        }
        scan.found_null
    }

    #[test]
    fn null_anywhere_is_found_but_the_word_in_a_string_is_not() {
        assert!(!has_null(&[
            r#"{"a":[1,2.5e-7,true,false,{"b":"null","null":true}],"c":"x\"null"}"#
        ]));
        assert!(has_null(&[r#"{"a":[1,{"b":null}]}"#]));
        assert!(has_null(&["[1,null]"]));
        assert!(has_null(&["null"]));
    }

    #[test]
    fn strings_and_escapes_split_across_writes_are_followed() {
        // serde_json writes in pieces; an escape or a string may straddle two writes.
        assert!(!has_null(&[r#"{"a":"x\"#, r#"" null","b":1}"#]));
        assert!(has_null(&[r#"{"a":"x\\"#, r#"","b":null}"#]));
    }

    #[test]
    fn serde_json_writes_non_finite_floats_as_null_and_the_scan_sees_it() {
        let mut scan = NullScan::default();
        serde_json::to_writer(&mut scan, &[1.0, f64::NAN]).unwrap();
        assert!(scan.found_null);
        let mut scan = NullScan::default();
        serde_json::to_writer(&mut scan, &[1.0e300, -0.0, f64::MIN_POSITIVE]).unwrap();
        assert!(!scan.found_null);
    }
}
