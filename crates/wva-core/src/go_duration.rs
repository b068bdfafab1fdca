//! Go-style duration strings (`1h30m`, `90s`, `1.5m`) as used by the scale-to-zero config
//! (spec/core.md §2.3).

/// Why a duration string was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid duration format: {0}")]
pub struct DurationError(pub String);

/// Parses a Go duration into signed nanoseconds.
///
/// Grammar: optional sign, then one or more `<number><unit>` pairs, number = digits with an
/// optional fraction, unit ∈ `ns us µs μs ms s m h`; the bare string `0` is allowed. A count that
/// overflows an `i64` of nanoseconds is invalid.
pub fn parse_go_duration(text: &str) -> Result<i64, DurationError> {
    let err = || DurationError(text.to_string());
    let (negative, mut rest) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    if rest == "0" {
        return Ok(0);
    }
    if rest.is_empty() {
        return Err(err());
    }
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let int_len = rest.bytes().take_while(u8::is_ascii_digit).count();
        let int_part = &rest[..int_len];
        rest = &rest[int_len..];
        let mut frac_part = "";
        if let Some(after_dot) = rest.strip_prefix('.') {
            let frac_len = after_dot.bytes().take_while(u8::is_ascii_digit).count();
            frac_part = &after_dot[..frac_len];
            rest = &after_dot[frac_len..];
        }
        if int_part.is_empty() && frac_part.is_empty() {
            return Err(err());
        }
        let unit_len = rest
            .char_indices()
            .find(|(_, c)| *c == '.' || c.is_ascii_digit())
            .map_or(rest.len(), |(i, _)| i);
        let unit: u128 = match &rest[..unit_len] {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => return Err(err()),
        };
        rest = &rest[unit_len..];
        let whole = parse_digits(int_part).ok_or_else(err)?;
        let mut value = whole.checked_mul(unit).ok_or_else(err)?;
        if !frac_part.is_empty() {
            // Only the digits that can still matter at nanosecond resolution are kept.
            let kept = &frac_part[..frac_part.len().min(20)];
            let numerator = parse_digits(kept).ok_or_else(err)?;
            let scale = 10u128.pow(u32::try_from(kept.len()).map_err(|_| err())?);
            value = value
                .checked_add(numerator.checked_mul(unit).ok_or_else(err)? / scale)
                .ok_or_else(err)?;
        }
        total = total.checked_add(value).ok_or_else(err)?;
        if total > 1u128 << 63 {
            return Err(err());
        }
    }
    if negative {
        i64::try_from(total).map(|v| -v).or_else(|_| {
            if total == 1u128 << 63 {
                Ok(i64::MIN)
            } else {
                Err(err())
            }
        })
    } else {
        i64::try_from(total).map_err(|_| err())
    }
}

fn parse_digits(digits: &str) -> Option<u128> {
    if digits.is_empty() {
        return Some(0);
    }
    if digits.len() > 30 {
        return None;
    }
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000_000;

    #[test]
    fn parses_compound_durations() {
        assert_eq!(parse_go_duration("1h30m"), Ok(5400 * S));
        assert_eq!(parse_go_duration("10m"), Ok(600 * S));
        assert_eq!(parse_go_duration("1.5s"), Ok(1_500_000_000));
        assert_eq!(parse_go_duration(".5s"), Ok(500_000_000));
        assert_eq!(parse_go_duration("2h45m10.25s"), Ok(9910 * S + 250_000_000));
        assert_eq!(parse_go_duration("300ms"), Ok(300_000_000));
        assert_eq!(parse_go_duration("7us"), Ok(7_000));
        assert_eq!(parse_go_duration("7µs"), Ok(7_000));
        assert_eq!(parse_go_duration("7ns"), Ok(7));
    }

    #[test]
    fn bare_zero_and_signs_are_allowed() {
        assert_eq!(parse_go_duration("0"), Ok(0));
        assert_eq!(parse_go_duration("-5m"), Ok(-300 * S));
        assert_eq!(parse_go_duration("+5m"), Ok(300 * S));
        assert_eq!(parse_go_duration("0s"), Ok(0));
    }

    #[test]
    fn rejects_missing_units_and_garbage() {
        for bad in [
            "", "10", "m", "1x", "1h 2m", "1..5s", "-", "1.s5", "abc", "5 m", "0.0",
        ] {
            assert!(parse_go_duration(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn overflow_of_i64_nanoseconds_is_invalid() {
        assert!(parse_go_duration("2562047h").is_ok());
        assert!(parse_go_duration("2562048h").is_err());
        assert!(parse_go_duration("99999999999999999999999999999999h").is_err());
    }
}
