//! One planning cycle: the order of stages of spec/core.md §6.4.

use std::collections::HashMap;

use crate::config::saturation::{AnalyzerKind, SaturationSettings};
use crate::config::scale_to_zero::ScaleToZeroPolicy;
use crate::input::InputError;
use crate::limiter::{LimiterItem, limit};
use crate::model::{Outcome, Record, VariantView, availability};
use crate::report::{Availability, BareAnalysis, ModelAnalysis, ModelReport};
use crate::{
    Action, CoreState, CycleInput, CycleReport, Decision, Reason, ReplicaMetrics, Timestamp,
    VariantState,
};
use crate::{enforcer, optimizer, v1, v2};

/// Detail of decisions held because the queueing model is not part of this release.
pub const QUEUEING_NOT_BUILT: &str =
    "queueing-model: not built in this release; holding previous target";

/// Detail of decisions held for lack of metrics.
pub const HOLD_UNAVAILABLE: &str = "no usable replica metrics; holding previous target";

struct ModelWork<'a> {
    namespace: &'a str,
    model_id: &'a str,
    settings: &'a SaturationSettings,
    policy: ScaleToZeroPolicy,
    variants: Vec<VariantView<'a>>,
    availability: Availability,
    analysis: ModelAnalysis,
    outcomes: Vec<Outcome>,
}

/// Plans one cycle: validates the input, runs every stage and returns the report with the
/// updated state. Pure and deterministic: permuting the input's lists changes nothing.
pub fn plan(input: &CycleInput) -> Result<CycleReport, InputError> {
    plan_owned(input.clone())
}

/// [`plan`] for a caller that hands the input over (the engine builds a fresh one each
/// cycle): the report takes the input without copying it.
pub fn plan_owned(mut input: CycleInput) -> Result<CycleReport, InputError> {
    let (models, decisions, state, now) = decide(&input)?;
    input.now = Some(now);
    Ok(CycleReport {
        input,
        models,
        decisions,
        state,
        timings: None,
    })
}

type Decided = (Vec<ModelReport>, Vec<Decision>, CoreState, Timestamp);

fn decide(input: &CycleInput) -> Result<Decided, InputError> {
    let valid = input.validated()?;
    let now = valid.now;
    let mut state = input.state.clone().unwrap_or_default();

    // Group replicas by (namespace, variant) and variants by model with hash maps (lookups
    // only, so their order never reaches the output), then sort the models canonically.
    let mut by_variant: HashMap<(&str, &str), Vec<&ReplicaMetrics>> =
        HashMap::with_capacity(input.variants.len());
    for r in &input.replicas {
        by_variant
            .entry((r.namespace.as_str(), r.variant.as_str()))
            .or_default()
            .push(r);
    }
    let mut by_model: HashMap<(&str, &str), Vec<&VariantState>> =
        HashMap::with_capacity(input.variants.len());
    for v in &input.variants {
        by_model
            .entry((v.namespace.as_str(), v.model_id.as_str()))
            .or_default()
            .push(v);
    }
    let mut by_model: Vec<((&str, &str), Vec<&VariantState>)> = by_model.into_iter().collect();
    by_model.sort_unstable_by(|a, b| a.0.cmp(&b.0));

    let mut models: Vec<ModelWork<'_>> = Vec::with_capacity(by_model.len());
    for ((ns, model_id), mut vs) in by_model {
        vs.sort_unstable_by(|a, b| a.name.cmp(&b.name));
        let variants = vs
            .into_iter()
            .map(|v| {
                let mut recs: Vec<&ReplicaMetrics> = by_variant
                    .remove(&(ns, v.name.as_str()))
                    .unwrap_or_default();
                recs.sort_unstable_by(|a, b| a.pod.cmp(&b.pod));
                VariantView {
                    state: v,
                    records: recs.into_iter().map(Record::ingest).collect(),
                }
            })
            .collect();
        let settings = valid.saturation.resolve(model_id, ns);
        models.push(ModelWork {
            namespace: ns,
            model_id,
            settings,
            policy: valid.scale_to_zero.resolve(model_id, ns, false),
            variants,
            availability: Availability::Unavailable,
            analysis: ModelAnalysis::Bare(BareAnalysis {
                availability: Availability::Unavailable,
            }),
            outcomes: Vec::new(),
        });
    }

    // §5.1: eviction, then deployment records of V2 models.
    state.evict(&now);
    for m in &models {
        if m.settings.analyzer == AnalyzerKind::TokenBased {
            for v in &m.variants {
                v2::write_deployment_record(&mut state, v.state, now);
            }
        }
    }

    // Per model: availability, analyzer, optimizer.
    for m in &mut models {
        let kind = m.settings.analyzer;
        m.availability = availability(kind, &m.variants);
        if m.availability == Availability::Unavailable {
            m.outcomes = m
                .variants
                .iter()
                .map(|v| Outcome::new(v.state.hold(), Reason::MetricsUnavailable, HOLD_UNAVAILABLE))
                .collect();
            m.analysis = ModelAnalysis::Bare(BareAnalysis {
                availability: m.availability,
            });
            continue;
        }
        match kind {
            AnalyzerKind::SaturationV1 => {
                let (analysis, outcomes) = v1::analyze(m.settings, &m.variants, m.availability);
                m.analysis = ModelAnalysis::V1(analysis);
                m.outcomes = outcomes;
            }
            AnalyzerKind::TokenBased => {
                let analysis =
                    v2::analyze(m.settings, &m.variants, m.availability, &mut state, now);
                m.outcomes = optimizer::cost_aware(&m.variants, &analysis);
                m.analysis = ModelAnalysis::V2(analysis);
            }
            AnalyzerKind::QueueingModel => {
                m.outcomes = m
                    .variants
                    .iter()
                    .map(|v| {
                        Outcome::new(v.state.hold(), Reason::NotConfigured, QUEUEING_NOT_BUILT)
                    })
                    .collect();
                m.analysis = ModelAnalysis::Bare(BareAnalysis {
                    availability: m.availability,
                });
            }
        }
    }

    // Enforcer, then the stale guard.
    for m in &mut models {
        if m.availability == Availability::Unavailable {
            continue;
        }
        let count = valid
            .request_counts
            .get(&(m.namespace.to_string(), m.model_id.to_string()))
            .copied();
        enforcer::enforce(
            &m.variants,
            &mut m.outcomes,
            &m.policy,
            m.availability,
            count,
        );
        if m.availability == Availability::Stale {
            enforcer::stale_guard(&m.variants, &mut m.outcomes);
        }
    }

    // GPU limiter.
    if valid.saturation.global().enable_limiter
        && let Some(inventory) = &input.gpu_inventory
    {
        let mut items = Vec::new();
        for m in &mut models {
            let kind = m.settings.analyzer;
            let unavailable = m.availability == Availability::Unavailable;
            let spare: Vec<Option<f64>> = match &m.analysis {
                ModelAnalysis::V1(a) if !unavailable && kind == AnalyzerKind::SaturationV1 => a
                    .variants
                    .iter()
                    .map(|v| Some(v.avg_spare_kv_capacity))
                    .collect(),
                _ => vec![None; m.variants.len()],
            };
            for ((v, o), s) in m.variants.iter().zip(m.outcomes.iter_mut()).zip(spare) {
                // Deliberate difference from the reference (and spec/core.md §6.3, which exempts
                // `minimum_replicas`): the floor is limited too. Exempt, a model at 0 replicas
                // with no GPUs left flips 0 → 1 → 0 between cycles (floored while its previous
                // target is 0, cut while it is 1), so its published target flaps.
                let eligible = o.reason != Reason::MetricsUnavailable;
                items.push(LimiterItem {
                    accelerator: &v.state.accelerator,
                    gpus: v.state.gpus(),
                    current: v.state.current_replicas,
                    target: &mut o.target,
                    reason: &mut o.reason,
                    detail: &mut o.detail,
                    queueing: kind == AnalyzerKind::QueueingModel,
                    candidate: s.filter(|_| eligible),
                    cost: v.state.cost,
                    sort_key: (m.namespace, m.model_id, &v.state.name),
                });
            }
        }
        limit(&mut items, inventory);
    }

    // Decisions and model reports, in canonical order.
    let mut decisions = Vec::with_capacity(input.variants.len());
    let mut reports = Vec::with_capacity(models.len());
    for m in models {
        for (v, o) in m.variants.iter().zip(m.outcomes) {
            let s = v.state;
            decisions.push(Decision {
                variant: s.name.clone(),
                namespace: s.namespace.clone(),
                model_id: s.model_id.clone(),
                accelerator: s.accelerator.clone(),
                current_replicas: s.current_replicas,
                target_replicas: o.target,
                action: Action::between(s.current_replicas, o.target),
                reason: o.reason,
                detail: o.detail,
            });
        }
        reports.push(ModelReport {
            model_id: m.model_id.to_string(),
            namespace: m.namespace.to_string(),
            analyzer: m.settings.analyzer.report_name().to_string(),
            analysis: m.analysis,
        });
    }

    Ok((reports, decisions, state, now))
}

#[cfg(test)]
mod tests;
