//! From one parsed body to what one (model, pod) keeps of it (spec §7, "Identity").

use std::collections::HashMap;

use super::family::{Counter, Gauge, Kept, classify};
use super::window::nan_max;
use crate::parse::{Exposition, Sample};

/// Labels that identify a series inside one pod and family: all but `model_name`,
/// `namespace` and `pod` (the latter two come from the target), sorted.
pub(crate) type SeriesLabels = Vec<(String, String)>;

/// Labels never part of a series identity here.
const IDENTITY_LABELS: [&str; 3] = ["model_name", "namespace", "pod"];

/// What one scrape says about one model on one pod.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Observation {
    /// Per gauge: running is the sum over series, waiting and KV the NaN-skipping max.
    pub(crate) gauges: [Option<f64>; 3],
    /// Per counter: the raw value of every series.
    pub(crate) counters: [Vec<(SeriesLabels, f64)>; 13],
    /// `(num_gpu_blocks, block_size)` label values of every `vllm:cache_config_info` series.
    pub(crate) cache_config: Vec<(Option<String>, Option<String>)>,
    /// Samples of kept families.
    pub(crate) kept: usize,
    /// Samples of kept families that belong to another model (`untracked`).
    pub(crate) other_model: usize,
}

fn series_labels(sample: &Sample<'_>) -> SeriesLabels {
    let mut labels: SeriesLabels = sample
        .labels
        .iter()
        .filter(|(k, _)| !IDENTITY_LABELS.contains(k))
        .map(|(k, v)| ((*k).to_owned(), v.to_string()))
        .collect();
    labels.sort();
    labels
}

/// Extracts the catalogue families of `model_id` from a parsed body. Only series whose
/// `model_name` is the model are kept; `vllm:cache_config_info` has no `model_name` on real
/// vLLM and is kept when it has none (or the same one). A series written twice keeps its first
/// sample, as Prometheus does.
pub(crate) fn observe(exposition: &Exposition<'_>, model_id: &str) -> Observation {
    let mut obs = Observation::default();
    let mut gauge_series: [HashMap<SeriesLabels, f64>; 3] = Default::default();
    let mut counter_series: [HashMap<SeriesLabels, f64>; 13] = Default::default();
    for sample in &exposition.samples {
        let Some(kept) = classify(sample.name) else {
            continue;
        };
        let model = sample.label("model_name");
        let ours = match kept {
            Kept::CacheConfig => model.is_none_or(|m| m == model_id),
            _ => model == Some(model_id),
        };
        if !ours {
            obs.other_model += 1;
            continue;
        }
        obs.kept += 1;
        match kept {
            Kept::Gauge(g) => {
                gauge_series[g.index()]
                    .entry(series_labels(sample))
                    .or_insert(sample.value);
            }
            Kept::Counter(c) => {
                counter_series[c.index()]
                    .entry(series_labels(sample))
                    .or_insert(sample.value);
            }
            Kept::CacheConfig => obs.cache_config.push((
                sample.label("num_gpu_blocks").map(str::to_owned),
                sample.label("block_size").map(str::to_owned),
            )),
        }
    }
    for g in Gauge::ALL {
        let values = gauge_series[g.index()].values().copied();
        obs.gauges[g.index()] = match g {
            Gauge::Running => values.fold(None, |acc, v| Some(acc.unwrap_or(0.0) + v)),
            Gauge::Waiting | Gauge::KvUsage => values.fold(None, nan_max),
        };
    }
    for c in Counter::ALL {
        let mut series: Vec<(SeriesLabels, f64)> = std::mem::take(&mut counter_series[c.index()])
            .into_iter()
            .collect();
        series.sort_by(|a, b| a.0.cmp(&b.0));
        obs.counters[c.index()] = series;
    }
    obs
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse_exposition;

    #[test]
    fn engines_are_summed_for_running_and_maxed_for_kv() {
        let text = "\
vllm:num_requests_running{model_name=\"m\",engine=\"0\"} 3
vllm:num_requests_running{model_name=\"m\",engine=\"1\"} 4
vllm:kv_cache_usage_perc{model_name=\"m\",engine=\"0\"} 0.5
vllm:kv_cache_usage_perc{model_name=\"m\",engine=\"1\"} NaN
vllm:num_requests_waiting{model_name=\"other\",engine=\"0\"} 9
";
        let e = parse_exposition(text).unwrap();
        let o = observe(&e, "m");
        assert_eq!(o.gauges[Gauge::Running.index()], Some(7.0));
        assert_eq!(o.gauges[Gauge::KvUsage.index()], Some(0.5));
        assert_eq!(o.gauges[Gauge::Waiting.index()], None);
        assert_eq!(o.kept, 4);
        assert_eq!(o.other_model, 1);
    }

    #[test]
    fn target_labels_in_the_text_do_not_split_or_claim_series() {
        let text = "\
vllm:request_success_total{model_name=\"m\",pod=\"someone-else\",namespace=\"x\",finished_reason=\"stop\"} 5
vllm:request_success_total{model_name=\"m\",finished_reason=\"stop\"} 6
";
        let e = parse_exposition(text).unwrap();
        let o = observe(&e, "m");
        let success = &o.counters[Counter::Success.index()];
        assert_eq!(success.len(), 1);
        assert_eq!(
            success[0],
            (vec![("finished_reason".into(), "stop".into())], 5.0)
        );
    }

    #[test]
    fn cache_config_info_without_model_name_is_kept() {
        let text =
            "vllm:cache_config_info{block_size=\"16\",engine=\"0\",num_gpu_blocks=\"100\"} 1\n";
        let e = parse_exposition(text).unwrap();
        let o = observe(&e, "m");
        assert_eq!(
            o.cache_config,
            vec![(Some("100".to_owned()), Some("16".to_owned()))]
        );
    }
}
