//! One model's view of the cycle: its variants with their records (canonical order), the
//! per-variant outcome being built, and metric availability (spec/core.md §3).

use crate::config::saturation::AnalyzerKind;
use crate::report::Availability;
use crate::{Freshness, Reason, ReplicaMetrics, VariantState};

/// A replica record after ingestion: KV clamped to [0, 1], queue truncated, non-finite values
/// marked unavailable.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Record<'a> {
    pub(crate) metrics: &'a ReplicaMetrics,
    pub(crate) kv: f64,
    pub(crate) queue: f64,
    pub(crate) freshness: Freshness,
}

impl<'a> Record<'a> {
    pub(crate) fn ingest(metrics: &'a ReplicaMetrics) -> Record<'a> {
        let finite = metrics.kv_cache_usage.is_finite() && metrics.queue_length.is_finite();
        Record {
            metrics,
            kv: if finite {
                metrics.kv_cache_usage.clamp(0.0, 1.0)
            } else {
                0.0
            },
            queue: if finite {
                metrics.queue_length.trunc().max(0.0)
            } else {
                0.0
            },
            freshness: if finite {
                metrics.freshness
            } else {
                Freshness::Unavailable
            },
        }
    }

    pub(crate) fn usable(&self) -> bool {
        self.freshness != Freshness::Unavailable
    }

    /// Mean prompt tokens, `None` when absent or ≤ 0.
    pub(crate) fn avg_in(&self) -> Option<f64> {
        self.metrics
            .avg_input_tokens
            .filter(|x| *x > 0.0 && x.is_finite())
    }

    /// Mean generated tokens, `None` when absent or ≤ 0.
    pub(crate) fn avg_out(&self) -> Option<f64> {
        self.metrics
            .avg_output_tokens
            .filter(|x| *x > 0.0 && x.is_finite())
    }

    /// Prefix-cache hit rate, `None` unless finite and in [0, 1].
    pub(crate) fn prefix_hit(&self) -> Option<f64> {
        self.metrics
            .prefix_cache_hit_rate
            .filter(|x| (0.0..=1.0).contains(x))
    }

    /// Whether both KV geometry values are present and non-zero.
    pub(crate) fn has_geometry(&self) -> bool {
        self.metrics.num_gpu_blocks.unwrap_or(0) > 0 && self.metrics.block_size.unwrap_or(0) > 0
    }
}

/// A variant with its records sorted by pod name.
#[derive(Debug, Clone)]
pub(crate) struct VariantView<'a> {
    pub(crate) state: &'a VariantState,
    pub(crate) records: Vec<Record<'a>>,
}

impl<'a> VariantView<'a> {
    /// Usable records in pod order.
    pub(crate) fn usable(&self) -> impl Iterator<Item = &Record<'a>> {
        self.records.iter().filter(|r| r.usable())
    }

    pub(crate) fn usable_count(&self) -> u32 {
        u32::try_from(self.usable().count()).unwrap_or(u32::MAX)
    }
}

/// The target, reason and detail a stage assigned to a variant.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Outcome {
    pub(crate) target: u32,
    pub(crate) reason: Reason,
    pub(crate) detail: String,
}

impl Outcome {
    pub(crate) fn new(target: u32, reason: Reason, detail: impl Into<String>) -> Outcome {
        Outcome {
            target,
            reason,
            detail: detail.into(),
        }
    }
}

/// The §3 availability of a model under the given analyzer.
pub(crate) fn availability(kind: AnalyzerKind, variants: &[VariantView<'_>]) -> Availability {
    let usable = || variants.iter().flat_map(|v| v.usable());
    if usable().next().is_none() {
        return Availability::Unavailable;
    }
    if kind == AnalyzerKind::QueueingModel {
        if !usable().any(|r| r.metrics.request_rate.is_some()) {
            return Availability::Unavailable;
        }
        let mut rate = 0.0;
        for r in usable() {
            rate += r.metrics.request_rate.unwrap_or(0.0);
        }
        if rate > 0.0 && !usable().any(|r| r.avg_out().is_some()) {
            return Availability::Unavailable;
        }
    }
    let degraded_record = variants
        .iter()
        .flat_map(|v| &v.records)
        .any(|r| r.freshness != Freshness::Fresh);
    let missing_records = variants
        .iter()
        .any(|v| v.usable_count() < v.state.ready_count());
    let incomplete = match kind {
        AnalyzerKind::SaturationV1 => false,
        AnalyzerKind::TokenBased => usable().any(|r| !r.has_geometry()),
        AnalyzerKind::QueueingModel => usable().any(|r| r.metrics.request_rate.is_none()),
    };
    if degraded_record || missing_records || incomplete {
        Availability::Stale
    } else {
        Availability::Fresh
    }
}

/// Index of the cheapest variant (cost, tie → smallest name; variants are in name order).
pub(crate) fn cheapest(variants: &[VariantView<'_>]) -> Option<usize> {
    let mut best: Option<usize> = None;
    for (i, v) in variants.iter().enumerate() {
        match best {
            Some(b) if variants[b].state.cost <= v.state.cost => {}
            _ => best = Some(i),
        }
    }
    best
}
