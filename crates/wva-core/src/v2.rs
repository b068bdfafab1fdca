//! The token-based analyzer V2: per-replica capacity and demand, the capacity store writes and
//! the model's supply/demand signals (spec/core.md §5).

use crate::VariantState;
use crate::config::saturation::SaturationSettings;
use crate::model::{Record, VariantView};
use crate::report::{Availability, CapacitySource, V2Analysis, V2VariantAnalysis};
use crate::state::{CapacityRecord, CoreState, LearnedFrom};
use crate::timestamp::Timestamp;
use crate::vllm_args::{VllmParams, estimate_k2};

/// Output-length bucket of the history key.
fn bucket(avg_out: f64) -> &'static str {
    if avg_out < 100.0 {
        "short"
    } else if avg_out < 500.0 {
        "medium"
    } else {
        "long"
    }
}

/// §5.1: the deployment record for a variant with `vllmArgs`, unless its record is live.
pub(crate) fn write_deployment_record(state: &mut CoreState, v: &VariantState, now: Timestamp) {
    let Some(args) = &v.vllm_args else { return };
    if state
        .capacity
        .get(&v.namespace, &v.model_id, &v.name)
        .is_some_and(|r| r.learned_from == LearnedFrom::Live)
    {
        return;
    }
    let params = VllmParams::parse(args);
    let (blocks, block_size, total) = if params.num_gpu_blocks_override > 0 {
        let bs = params.block_size;
        (
            params.num_gpu_blocks_override,
            bs,
            params.num_gpu_blocks_override.saturating_mul(bs),
        )
    } else {
        (0, 0, 0)
    };
    state.capacity.insert(CapacityRecord {
        namespace: v.namespace.clone(),
        model_id: v.model_id.clone(),
        variant: v.name.clone(),
        accelerator: v.accelerator.clone(),
        gpu_count: v.gpus(),
        num_gpu_blocks: blocks,
        block_size,
        total_kv_capacity_tokens: total,
        effective_capacity: params.effective_max_batched_tokens(),
        vllm_params: Some(params),
        learned_from: LearnedFrom::Deployment,
        learned_at: now,
    });
}

fn params_of(state: &CoreState, v: &VariantState) -> Option<VllmParams> {
    match &v.vllm_args {
        Some(args) => Some(VllmParams::parse(args)),
        None => state
            .capacity
            .get(&v.namespace, &v.model_id, &v.name)
            .and_then(|r| r.vllm_params.clone()),
    }
}

fn to_i64(x: u64) -> i64 {
    i64::try_from(x).unwrap_or(i64::MAX)
}

/// One replica's contribution (§5.2).
struct Contribution {
    demand: i64,
    effective: i64,
    geometry: (i64, i64, i64),
}

fn median(values: &mut [i64]) -> i64 {
    values.sort_unstable();
    let n = values.len();
    if n == 0 {
        0
    } else if n % 2 == 1 {
        values[n / 2]
    } else {
        // (a + b) / 2 without overflow, truncating toward zero like integer division.
        let (a, b) = (i128::from(values[n / 2 - 1]), i128::from(values[n / 2]));
        i64::try_from((a + b) / 2).unwrap_or(i64::MAX)
    }
}

/// The model's token means over records with any token data (§5.3).
fn token_means(variants: &[VariantView<'_>]) -> (f64, f64, f64) {
    let (mut n, mut si, mut so, mut sp) = (0u32, 0.0, 0.0, 0.0);
    for r in variants.iter().flat_map(|v| v.usable()) {
        if r.avg_in().is_none() && r.avg_out().is_none() {
            continue;
        }
        n += 1;
        si += r.avg_in().unwrap_or(0.0);
        so += r.avg_out().unwrap_or(0.0);
        sp += r.prefix_hit().unwrap_or(0.0);
    }
    if n == 0 {
        (0.0, 0.0, 0.0)
    } else {
        let n = f64::from(n);
        (si / n, so / n, sp / n)
    }
}

fn contribute(
    r: &Record<'_>,
    v: &VariantState,
    params: Option<&VllmParams>,
    settings: &SaturationSettings,
    state: &mut CoreState,
    now: Timestamp,
) -> Option<Contribution> {
    let blocks = to_i64(r.metrics.num_gpu_blocks.unwrap_or(0));
    let block_size = to_i64(r.metrics.block_size.unwrap_or(0));
    let total = blocks.saturating_mul(block_size);
    if total <= 0 {
        return None;
    }
    let in_use = ((r.kv * total as f64).round() as i64).clamp(0, total);
    let queue = r.queue as i64;
    let avg_in = r.avg_in().unwrap_or(0.0);
    let avg_out = r.avg_out().unwrap_or(0.0);
    let queued_tokens = if avg_in > 0.0 {
        queue.saturating_mul(avg_in as i64)
    } else {
        0
    };
    let demand = in_use.saturating_add(queued_tokens);
    let k1 = (total as f64 * settings.kv_cache_threshold) as i64;
    let key = format!("{}|{}|{}", v.model_id, v.accelerator, bucket(avg_out));
    let k2 = if queue >= settings.queue_length_threshold as i64 && in_use > 0 {
        state.history.push(&key, in_use, now);
        in_use
    } else {
        let mean = state.history.mean(&key);
        let derived = estimate_k2(params, avg_in, avg_out);
        if mean > 0.0 {
            mean as i64
        } else if params.is_some() && derived > 0 {
            derived
        } else {
            k1
        }
    };
    Some(Contribution {
        demand,
        effective: k1.min(k2),
        geometry: (blocks, block_size, total),
    })
}

/// The stored estimate of a variant's record (§5.3).
fn stored_estimate(
    r: &CapacityRecord,
    state: &CoreState,
    settings: &SaturationSettings,
    mean_in: f64,
    mean_out: f64,
) -> i64 {
    if r.learned_from == LearnedFrom::Live {
        return r.effective_capacity;
    }
    if let Some(p) = &r.vllm_params
        && mean_out > 0.0
    {
        let mut d = estimate_k2(Some(p), mean_in, mean_out);
        if d > 0 {
            let kv_cap = (r.total_kv_capacity_tokens as f64 * settings.kv_cache_threshold) as i64;
            if kv_cap > 0 {
                d = d.min(kv_cap);
            }
            if let Some(live) =
                state
                    .capacity
                    .find_compatible(&r.model_id, &r.accelerator, r.gpu_count, p)
                && live.learned_from == LearnedFrom::Live
            {
                d = d.min(live.effective_capacity);
            }
            return d;
        }
    }
    r.effective_capacity
}

/// Analyses one V2 model, updating the capacity store and history.
pub(crate) fn analyze(
    settings: &SaturationSettings,
    variants: &[VariantView<'_>],
    availability: Availability,
    state: &mut CoreState,
    now: Timestamp,
) -> V2Analysis {
    // §5.2: per replica, variant order then pod order.
    let mut per_variant: Vec<(Vec<Contribution>, Option<VllmParams>)> =
        Vec::with_capacity(variants.len());
    for v in variants {
        let params = params_of(state, v.state);
        let mut contributions = Vec::new();
        for r in v.usable() {
            if let Some(c) = contribute(r, v.state, params.as_ref(), settings, state, now) {
                contributions.push(c);
            }
        }
        per_variant.push((contributions, params));
    }
    // Live records, one per contributing variant, with the median effective capacity.
    let mut medians = Vec::with_capacity(variants.len());
    for (v, (contributions, params)) in variants.iter().zip(&per_variant) {
        let Some(first) = contributions.first() else {
            medians.push(None);
            continue;
        };
        let mut eff: Vec<i64> = contributions.iter().map(|c| c.effective).collect();
        let m = median(&mut eff);
        medians.push(Some(m));
        let s = v.state;
        state.capacity.insert(CapacityRecord {
            namespace: s.namespace.clone(),
            model_id: s.model_id.clone(),
            variant: s.name.clone(),
            accelerator: s.accelerator.clone(),
            gpu_count: s.gpus(),
            num_gpu_blocks: first.geometry.0,
            block_size: first.geometry.1,
            total_kv_capacity_tokens: first.geometry.2,
            effective_capacity: m,
            vllm_params: params.clone(),
            learned_from: LearnedFrom::Live,
            learned_at: now,
        });
    }

    // §5.3 per variant.
    let (mean_in, mean_out, mean_prefix) = token_means(variants);
    let mut rows = Vec::with_capacity(variants.len());
    for ((v, (contributions, _)), m) in variants.iter().zip(&per_variant).zip(&medians) {
        let s = v.state;
        let (cap, demand, source) = if let Some(m) = m {
            let mut d = 0i64;
            for c in contributions {
                d = d.saturating_add(c.demand);
            }
            (*m, d, CapacitySource::Replicas)
        } else {
            match state.capacity.get(&s.namespace, &s.model_id, &s.name) {
                Some(r) if r.effective_capacity > 0 => (
                    stored_estimate(r, state, settings, mean_in, mean_out),
                    0,
                    CapacitySource::Stored,
                ),
                Some(r) if r.vllm_params.is_some() => {
                    let found = r.vllm_params.as_ref().and_then(|p| {
                        state
                            .capacity
                            .find_compatible(&s.model_id, &s.accelerator, s.gpus(), p)
                    });
                    match found {
                        Some(c) => (c.effective_capacity, 0, CapacitySource::Compatible),
                        None => (0, 0, CapacitySource::None),
                    }
                }
                _ => (0, 0, CapacitySource::None),
            }
        };
        let total = i64::from(s.ready_count()).saturating_mul(cap);
        rows.push(V2VariantAnalysis {
            name: s.name.clone(),
            accelerator: s.accelerator.clone(),
            cost: s.cost,
            ready_replicas: s.ready_count(),
            pending_replicas: s.pending_replicas(),
            per_replica_capacity: cap,
            capacity_source: source,
            total_capacity: total,
            total_demand: demand,
            utilization: if total > 0 {
                demand as f64 / total as f64
            } else {
                0.0
            },
        });
    }

    // §5.4 model signals.
    let (mut supply, mut anticipated, mut demand) = (0i64, 0i64, 0i64);
    for (v, row) in variants.iter().zip(&rows) {
        supply = supply.saturating_add(row.total_capacity);
        anticipated = anticipated.saturating_add(
            i64::from(v.state.current_replicas).saturating_mul(row.per_replica_capacity),
        );
        demand = demand.saturating_add(row.total_demand);
    }
    let d = demand as f64;
    V2Analysis {
        availability,
        total_supply: supply,
        anticipated_supply: anticipated,
        total_demand: demand,
        utilization: if supply > 0 { d / supply as f64 } else { 0.0 },
        required_capacity: (d / settings.scale_up_threshold - anticipated as f64).max(0.0),
        spare_capacity: (supply as f64 - d / settings.scale_down_boundary).max(0.0),
        avg_input_tokens: mean_in,
        avg_output_tokens: mean_out,
        prefix_cache_hit_rate: mean_prefix,
        variants: rows,
    }
}

#[cfg(test)]
mod tests;
