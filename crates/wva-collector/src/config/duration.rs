//! Go `time.ParseDuration` syntax (spec §6.1): `ns us µs μs ms s m h`, e.g. `1h30m`, `1.5s`.

use std::time::Duration;

/// Parses a Go duration. Negative values and overflow are rejected; a bare `0` is zero.
pub fn parse_go_duration(text: &str) -> Option<Duration> {
    let s = text.strip_prefix('+').unwrap_or(text);
    if s == "0" {
        return Some(Duration::ZERO);
    }
    if s.is_empty() || s.starts_with('-') {
        return None;
    }
    let mut rest = s;
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let num = &rest[..num_end];
        if num.is_empty() || num == "." || num.matches('.').count() > 1 {
            return None;
        }
        rest = &rest[num_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = &rest[..unit_end];
        rest = &rest[unit_end..];
        let nanos_per: u128 = match unit {
            "ns" => 1,
            "us" | "\u{b5}s" | "\u{3bc}s" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => return None,
        };
        let (int, frac) = num.split_once('.').unwrap_or((num, ""));
        let int: u128 = if int.is_empty() { 0 } else { int.parse().ok()? };
        total = total.checked_add(int.checked_mul(nanos_per)?)?;
        if !frac.is_empty() {
            // Exact decimal fraction of the unit, truncated to whole nanoseconds.
            let digits = frac.len().min(30) as u32;
            let f: u128 = frac[..digits as usize].parse().ok()?;
            let scale = 10u128.checked_pow(digits)?;
            total = total.checked_add(f.checked_mul(nanos_per)? / scale)?;
        }
    }
    let secs = u64::try_from(total / 1_000_000_000).ok()?;
    // Go durations are int64 nanoseconds.
    if total > i64::MAX as u128 {
        return None;
    }
    Some(Duration::new(secs, (total % 1_000_000_000) as u32))
}

/// Formats a duration in Go's style for messages (`30s`, `1m30s`, `1.5s`, `500ms`).
pub fn format_go_duration(d: Duration) -> String {
    if d.is_zero() {
        return "0s".to_string();
    }
    let nanos = d.as_nanos();
    if nanos < 1_000 {
        return format!("{nanos}ns");
    }
    if nanos < 1_000_000 {
        return format!("{}µs", trim_frac(nanos as f64 / 1e3));
    }
    if nanos < 1_000_000_000 {
        return format!("{}ms", trim_frac(nanos as f64 / 1e6));
    }
    let total = d.as_secs();
    let (h, m) = (total / 3600, (total % 3600) / 60);
    let s = (total % 60) as f64 + f64::from(d.subsec_nanos()) / 1e9;
    let mut out = String::new();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if h > 0 || m > 0 {
        out.push_str(&format!("{m}m"));
    }
    out.push_str(&format!("{}s", trim_frac(s)));
    out
}

fn trim_frac(v: f64) -> String {
    format!("{v}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_units_and_compounds_parse() {
        let p = |s| parse_go_duration(s);
        assert_eq!(p("30s"), Some(Duration::from_secs(30)));
        assert_eq!(p("1h30m"), Some(Duration::from_secs(5400)));
        assert_eq!(p("1.5s"), Some(Duration::from_millis(1500)));
        assert_eq!(p("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(p("10\u{b5}s"), Some(Duration::from_micros(10)));
        assert_eq!(p("10\u{3bc}s"), Some(Duration::from_micros(10)));
        assert_eq!(p("7ns"), Some(Duration::from_nanos(7)));
        assert_eq!(p(".5m"), Some(Duration::from_secs(30)));
        assert_eq!(p("0"), Some(Duration::ZERO));
    }

    #[test]
    fn invalid_go_durations_are_rejected() {
        for s in ["", "30", "-1s", "1d", "s", "1.2.3s", "1 s", "3000000h"] {
            assert_eq!(parse_go_duration(s), None, "{s}");
        }
    }

    #[test]
    fn formats_like_go() {
        assert_eq!(format_go_duration(Duration::from_secs(30)), "30s");
        assert_eq!(format_go_duration(Duration::from_secs(90)), "1m30s");
        assert_eq!(format_go_duration(Duration::from_secs(300)), "5m0s");
        assert_eq!(format_go_duration(Duration::from_millis(500)), "500ms");
    }
}
