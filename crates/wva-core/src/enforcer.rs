//! The scale-to-zero / minimum-replica enforcer and the stale guard (spec/core.md §6.2, §3).

use crate::config::scale_to_zero::ScaleToZeroPolicy;
use crate::model::{Outcome, VariantView, cheapest};
use crate::report::Availability;
use crate::{Reason, format_prometheus_duration};

/// Applies §6.2 to one non-`unavailable` model. `request_count` is the model's entry of
/// `requestCounts`, `None` when unknown.
pub(crate) fn enforce(
    variants: &[VariantView<'_>],
    outcomes: &mut [Outcome],
    policy: &ScaleToZeroPolicy,
    availability: Availability,
    request_count: Option<f64>,
) {
    let idle_proven = request_count == Some(0.0) && availability == Availability::Fresh;
    if policy.enabled && idle_proven {
        let detail = format!(
            "no requests in the last {}",
            format_prometheus_duration(policy.retention)
        );
        let already_zero = variants
            .iter()
            .zip(outcomes.iter())
            .all(|(v, o)| o.target == 0 && v.state.current_replicas == 0);
        for (v, o) in variants.iter().zip(outcomes.iter_mut()) {
            // A model already entirely at zero is held there by this rule: say so on every
            // variant, so the floor (minimum replicas) visibly did not apply.
            if o.target != 0 || v.state.current_replicas != 0 || already_zero {
                *o = Outcome::new(0, Reason::ScaleToZero, detail.clone());
            }
        }
        return;
    }
    let sum: u64 = outcomes.iter().map(|o| u64::from(o.target)).sum();
    if sum == 0
        && let Some(c) = cheapest(variants)
    {
        outcomes[c] = Outcome::new(
            1,
            Reason::MinimumReplicas,
            "all targets were 0; keeping 1 replica on the cheapest variant",
        );
    }
}

/// §3 rule 2: on stale metrics no variant goes below `hold(v)`.
pub(crate) fn stale_guard(variants: &[VariantView<'_>], outcomes: &mut [Outcome]) {
    for (v, o) in variants.iter().zip(outcomes.iter_mut()) {
        let hold = v.state.hold();
        if o.target < hold {
            let detail = format!(
                "metrics stale or incomplete: scale-down to {} suppressed",
                o.target
            );
            *o = Outcome::new(hold, Reason::MetricsStale, detail);
        }
    }
}
