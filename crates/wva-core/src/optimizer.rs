//! The cost-aware optimizer for V2 models (spec/core.md §6.1).

use std::cmp::Ordering;

use crate::Reason;
use crate::model::{Outcome, VariantView};
use crate::report::V2Analysis;

/// Turns a V2 analysis into targets: add the cheapest capacity under `requiredCapacity`,
/// remove the most expensive under `spareCapacity`.
pub(crate) fn cost_aware(variants: &[VariantView<'_>], analysis: &V2Analysis) -> Vec<Outcome> {
    let n = variants.len();
    let mut target: Vec<u32> = variants.iter().map(|v| v.state.current_replicas).collect();
    let cap: Vec<i64> = analysis
        .variants
        .iter()
        .map(|a| a.per_replica_capacity)
        .collect();
    let cost = |i: usize| variants[i].state.cost;
    let name = |i: usize| variants[i].state.name.as_str();

    if analysis.required_capacity > 0.0 {
        let ratio = |i: usize| {
            if cap[i] <= 0 {
                f64::INFINITY
            } else {
                cost(i) / cap[i] as f64
            }
        };
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_by(|&a, &b| {
            ratio(a)
                .total_cmp(&ratio(b))
                .then_with(|| name(a).cmp(name(b)))
        });
        let mut remaining = analysis.required_capacity;
        for i in order {
            if remaining <= 0.0 {
                break;
            }
            if cap[i] <= 0 {
                continue;
            }
            let c = cap[i] as f64;
            let add = (remaining / c).ceil();
            let add_u = if add >= f64::from(u32::MAX) {
                u32::MAX
            } else {
                add as u32
            };
            target[i] = target[i].saturating_add(add_u);
            remaining -= f64::from(add_u) * c;
        }
    } else if analysis.spare_capacity > 0.0 {
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_by(|&a, &b| {
            cost(b)
                .total_cmp(&cost(a))
                .then_with(|| name(b).cmp(name(a)))
        });
        let cheapest = (0..n).min_by(|&a, &b| {
            cost(a)
                .total_cmp(&cost(b))
                .then_with(|| name(a).cmp(name(b)))
        });
        let mut remaining = analysis.spare_capacity;
        for i in order {
            if remaining <= 0.0 {
                break;
            }
            if cap[i] <= 0 {
                continue;
            }
            let others_up = (0..n).any(|j| j != i && target[j] > 0);
            let min = if Some(i) == cheapest && !others_up {
                1
            } else {
                0
            };
            let removable = i64::from(target[i]) - min;
            if removable <= 0 {
                continue;
            }
            let c = cap[i] as f64;
            let fit = (remaining / c).floor();
            let remove = if fit >= removable as f64 {
                removable
            } else {
                fit as i64
            };
            if remove <= 0 {
                continue;
            }
            target[i] -= u32::try_from(remove).unwrap_or(0);
            remaining -= remove as f64 * c;
        }
    }

    variants
        .iter()
        .zip(target)
        .map(|(v, t)| match t.cmp(&v.state.current_replicas) {
            Ordering::Greater => Outcome::new(
                t,
                Reason::CapacityRequired,
                format!(
                    "V2 scale-up (optimizer: cost-aware, required: {:.0})",
                    analysis.required_capacity
                ),
            ),
            Ordering::Less => Outcome::new(
                t,
                Reason::SpareCapacity,
                format!(
                    "V2 scale-down (optimizer: cost-aware, spare: {:.0})",
                    analysis.spare_capacity
                ),
            ),
            Ordering::Equal => Outcome::new(t, Reason::Steady, "V2 steady state"),
        })
        .collect()
}
