//! Rendering of durations as PromQL range windows (spec/core.md §2.3).

use std::time::Duration;

/// Renders a duration as a PromQL window: `<n>d` for whole days, else `<n>h`, `<n>m`, else
/// `<n>s` with `n = max(1, whole seconds)` (fractions truncated; anything under 1 s is `1s`).
pub fn format_prometheus_duration(d: Duration) -> String {
    const DAY: u64 = 86_400;
    let secs = d.as_secs();
    let whole = d.subsec_nanos() == 0;
    if whole && secs > 0 {
        if secs.is_multiple_of(DAY) {
            return format!("{}d", secs / DAY);
        }
        if secs.is_multiple_of(3600) {
            return format!("{}h", secs / 3600);
        }
        if secs.is_multiple_of(60) {
            return format!("{}m", secs / 60);
        }
    }
    format!("{}s", secs.max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_largest_exact_unit() {
        let f = |s| format_prometheus_duration(Duration::from_secs(s));
        assert_eq!(f(86_400), "1d");
        assert_eq!(f(168 * 3600), "7d");
        assert_eq!(f(90 * 60), "90m");
        assert_eq!(f(15 * 60), "15m");
        assert_eq!(f(7200), "2h");
        assert_eq!(f(61), "61s");
    }

    #[test]
    fn sub_second_and_zero_render_as_one_second() {
        assert_eq!(format_prometheus_duration(Duration::ZERO), "1s");
        assert_eq!(format_prometheus_duration(Duration::from_millis(999)), "1s");
        assert_eq!(
            format_prometheus_duration(Duration::from_millis(60_500)),
            "60s"
        );
    }
}
