//! The saturation analyzer V1 and its target calculation (spec/core.md §4).

use crate::Reason;
use crate::config::saturation::SaturationSettings;
use crate::model::{Outcome, VariantView};
use crate::report::{Availability, V1Analysis, V1VariantAnalysis};

/// Minimum non-saturated replicas before a scale-down is simulated.
const MIN_NON_SATURATED_FOR_SCALE_DOWN: u32 = 2;

/// Analyses one model and computes every variant's target (at most one replica of change).
pub(crate) fn analyze(
    settings: &SaturationSettings,
    variants: &[VariantView<'_>],
    availability: Availability,
) -> (V1Analysis, Vec<Outcome>) {
    let (t_kv, t_q) = (settings.kv_cache_threshold, settings.queue_length_threshold);
    let (s_kv, s_q) = (settings.kv_spare_trigger, settings.queue_spare_trigger);

    let mut per_variant = Vec::with_capacity(variants.len());
    for v in variants {
        let mut n = 0u32;
        let (mut sum_kv, mut sum_q, mut max_kv, mut max_q) = (0.0, 0.0, 0.0f64, 0.0f64);
        let mut saturated = Vec::new();
        let mut count = 0u32;
        for r in v.usable() {
            count += 1;
            max_kv = max_kv.max(r.kv);
            max_q = max_q.max(r.queue);
            if r.kv >= t_kv || r.queue >= t_q {
                saturated.push(r.metrics.pod.clone());
            } else {
                n += 1;
                sum_kv += t_kv - r.kv;
                sum_q += t_q - r.queue;
            }
        }
        let (avg_kv, avg_q) = if n > 0 {
            (sum_kv / f64::from(n), sum_q / f64::from(n))
        } else {
            (0.0, 0.0)
        };
        per_variant.push(V1VariantAnalysis {
            name: v.state.name.clone(),
            accelerator: v.state.accelerator.clone(),
            cost: v.state.cost,
            replica_count: count,
            non_saturated_count: n,
            avg_spare_kv_capacity: avg_kv,
            avg_spare_queue_length: avg_q,
            max_kv_cache_usage: max_kv,
            max_queue_length: max_q,
            saturated_replicas: saturated,
        });
    }

    let total: u32 = per_variant.iter().map(|v| v.replica_count).sum();
    let big_n: u32 = per_variant.iter().map(|v| v.non_saturated_count).sum();
    let (mut wsum_kv, mut wsum_q) = (0.0, 0.0);
    for v in &per_variant {
        wsum_kv += v.avg_spare_kv_capacity * f64::from(v.non_saturated_count);
        wsum_q += v.avg_spare_queue_length * f64::from(v.non_saturated_count);
    }
    let (avg_kv, avg_q) = if big_n > 0 {
        (wsum_kv / f64::from(big_n), wsum_q / f64::from(big_n))
    } else {
        (0.0, 0.0)
    };

    let kv_triggered = avg_kv < s_kv;
    let queue_triggered = avg_q < s_q;
    let should_scale_up = kv_triggered || queue_triggered;

    let (mut rem_kv, mut rem_q, mut scale_down_safe) = (None, None, false);
    if big_n >= MIN_NON_SATURATED_FOR_SCALE_DOWN {
        let kv_load = t_kv - avg_kv;
        let q_load = t_q - avg_q;
        let f = f64::from(big_n) / f64::from(big_n - 1);
        let rk = t_kv - kv_load * f;
        let rq = t_q - q_load * f;
        scale_down_safe = rk >= s_kv && rq >= s_q;
        rem_kv = Some(rk);
        rem_q = Some(rq);
    }

    let analysis = V1Analysis {
        availability,
        total_replicas: total,
        non_saturated_count: big_n,
        avg_spare_kv_capacity: avg_kv,
        avg_spare_queue_length: avg_q,
        should_scale_up,
        scale_down_safe,
        remaining_spare_kv: rem_kv,
        remaining_spare_queue: rem_q,
        variants: per_variant,
    };

    let trigger_text = if kv_triggered && queue_triggered {
        format!("both KV spare ({avg_kv:.3} < {s_kv:.3}) and queue spare ({avg_q:.1} < {s_q:.1})")
    } else if kv_triggered {
        format!("KV spare Saturation low ({avg_kv:.3} < {s_kv:.3})")
    } else {
        format!("queue spare Saturation low ({avg_q:.1} < {s_q:.1})")
    };
    let outcomes = targets(variants, &analysis, kv_triggered, &trigger_text, s_kv, s_q);
    (analysis, outcomes)
}

/// §4.3: transition check, then at most one replica up or down.
fn targets(
    variants: &[VariantView<'_>],
    analysis: &V1Analysis,
    kv_triggered: bool,
    trigger_text: &str,
    s_kv: f64,
    s_q: f64,
) -> Vec<Outcome> {
    let mut causes = Vec::new();
    let mut cause_a = vec![false; variants.len()];
    for (i, (v, a)) in variants.iter().zip(&analysis.variants).enumerate() {
        let s = v.state;
        if s.desired_replicas != 0 && s.desired_replicas != s.current_replicas {
            cause_a[i] = true;
            causes.push(format!(
                "{}: desired({})!=current({})",
                s.name, s.desired_replicas, s.current_replicas
            ));
        }
        if a.replica_count != s.current_replicas {
            causes.push(format!(
                "{}: metrics({})!=current({})",
                s.name, a.replica_count, s.current_replicas
            ));
        }
    }
    if !causes.is_empty() {
        let detail = format!("model in transition: {}", causes.join("; "));
        return variants
            .iter()
            .zip(&cause_a)
            .map(|(v, a)| {
                let t = if *a {
                    v.state.desired_replicas
                } else {
                    v.state.current_replicas
                };
                Outcome::new(t, Reason::InTransition, detail.clone())
            })
            .collect();
    }

    let base = |v: &VariantView<'_>| v.state.current_replicas;
    if analysis.should_scale_up {
        // Lowest cost, tie → smallest name (variants are in name order; strict < keeps the first).
        let mut chosen: Option<usize> = None;
        for (i, v) in variants.iter().enumerate() {
            if v.state.pending_replicas() != 0 {
                continue;
            }
            if chosen.is_none_or(|c| v.state.cost < variants[c].state.cost) {
                chosen = Some(i);
            }
        }
        let Some(c) = chosen else {
            let detail = "scale-up blocked: every variant has pending replicas";
            return variants
                .iter()
                .map(|v| Outcome::new(base(v), Reason::InTransition, detail))
                .collect();
        };
        let reason = if kv_triggered {
            Reason::KvCacheSaturation
        } else {
            Reason::QueueSaturation
        };
        let chosen_name = &variants[c].state.name;
        return variants
            .iter()
            .enumerate()
            .map(|(i, v)| {
                if i == c {
                    Outcome::new(base(v).saturating_add(1), reason, trigger_text)
                } else {
                    Outcome::new(
                        base(v),
                        Reason::Steady,
                        format!("model scales up via {chosen_name}"),
                    )
                }
            })
            .collect();
    }
    if analysis.scale_down_safe {
        // Highest cost, tie → largest name (>= keeps the later, larger name).
        let mut chosen: Option<usize> = None;
        for (i, v) in variants.iter().enumerate() {
            if base(v) <= 1 {
                continue;
            }
            if chosen.is_none_or(|c| v.state.cost >= variants[c].state.cost) {
                chosen = Some(i);
            }
        }
        let Some(c) = chosen else {
            let detail = "scale-down safe but no variant above 1 replica";
            return variants
                .iter()
                .map(|v| Outcome::new(base(v), Reason::Steady, detail))
                .collect();
        };
        let rem_kv = analysis.remaining_spare_kv.unwrap_or(0.0);
        let rem_q = analysis.remaining_spare_queue.unwrap_or(0.0);
        let detail = format!(
            "scale-down safe (remaining spare KV {rem_kv:.3} >= {s_kv:.3}, queue {rem_q:.1} >= {s_q:.1})"
        );
        let chosen_name = &variants[c].state.name;
        return variants
            .iter()
            .enumerate()
            .map(|(i, v)| {
                if i == c {
                    Outcome::new(base(v) - 1, Reason::SpareCapacity, detail.clone())
                } else {
                    Outcome::new(
                        base(v),
                        Reason::Steady,
                        format!("model scales down via {chosen_name}"),
                    )
                }
            })
            .collect();
    }
    variants
        .iter()
        .map(|v| Outcome::new(base(v), Reason::Steady, "no scaling signal"))
        .collect()
}

#[cfg(test)]
mod tests;
