//! The parser on realistic vLLM exposition text (spec/sim.md §2.5–2.6).
#![allow(clippy::unwrap_used)] // helpers outside #[test] fns unwrap too

use wva_collector::parse::{MetricType, Sample};
use wva_collector::parse_exposition;

const LLAMA: &str = include_str!("fixtures/vllm_0_10_llama_8b.txt");
const MODEL: &str = "meta-llama/Llama-3.1-8B-Instruct";

fn find<'a>(samples: &'a [Sample<'a>], name: &str, extra: &[(&str, &str)]) -> &'a Sample<'a> {
    samples
        .iter()
        .find(|s| s.name == name && extra.iter().all(|(k, v)| s.label(k) == Some(*v)))
        .unwrap_or_else(|| panic!("no sample {name} {extra:?}"))
}

#[test]
fn every_sample_line_of_the_vllm_fixture_is_parsed() {
    let e = parse_exposition(LLAMA).unwrap();
    let sample_lines = LLAMA
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .count();
    assert_eq!(e.samples.len(), sample_lines);
    let vllm = e
        .samples
        .iter()
        .filter(|s| s.name.starts_with("vllm:"))
        .count();
    let vllm_lines = LLAMA.lines().filter(|l| l.starts_with("vllm:")).count();
    assert_eq!(vllm, vllm_lines);
    assert!(vllm > 250, "only {vllm} vllm: samples");
}

#[test]
fn vllm_gauges_keep_their_colon_names_and_labels() {
    let e = parse_exposition(LLAMA).unwrap();
    let running = find(&e.samples, "vllm:num_requests_running", &[]);
    assert_eq!(running.value, 7.0);
    assert_eq!(running.label("model_name"), Some(MODEL));
    assert_eq!(running.label("engine"), Some("0"));
    assert_eq!(
        find(&e.samples, "vllm:num_requests_waiting", &[]).value,
        2.0
    );
    assert_eq!(
        find(&e.samples, "vllm:kv_cache_usage_perc", &[]).value,
        0.4183
    );
    assert_eq!(
        e.metric_type("vllm:kv_cache_usage_perc"),
        Some(MetricType::Gauge)
    );
}

#[test]
fn cache_config_info_carries_its_data_in_labels_without_model_name() {
    let e = parse_exposition(LLAMA).unwrap();
    let info = find(&e.samples, "vllm:cache_config_info", &[]);
    assert_eq!(info.label("model_name"), None);
    assert_eq!(info.label("num_gpu_blocks"), Some("27264"));
    assert_eq!(info.label("block_size"), Some("16"));
    assert_eq!(info.label("num_cpu_blocks"), Some("None"));
    assert_eq!(info.value, 1.0);
}

#[test]
fn counters_are_named_with_total_in_type_and_samples() {
    let e = parse_exposition(LLAMA).unwrap();
    assert_eq!(
        e.metric_type("vllm:prefix_cache_hits_total"),
        Some(MetricType::Counter)
    );
    assert_eq!(
        find(&e.samples, "vllm:prefix_cache_hits_total", &[]).value,
        513216.0
    );
    assert_eq!(
        find(&e.samples, "vllm:prefix_cache_queries_total", &[]).value,
        1284731.0
    );
    let stop = find(
        &e.samples,
        "vllm:request_success_total",
        &[("finished_reason", "stop")],
    );
    assert_eq!(stop.value, 1410.0);
    // Python's client adds `_created` gauges with exponent notation.
    let created = find(&e.samples, "vllm:request_success_created", &[]);
    assert!((created.value - 1_764_280_047.621_132_1).abs() < 1e-3);
}

#[test]
fn histogram_buckets_are_cumulative_and_end_at_count() {
    let e = parse_exposition(LLAMA).unwrap();
    for family in [
        "vllm:time_to_first_token_seconds",
        "vllm:inter_token_latency_seconds",
        "vllm:request_prompt_tokens",
        "vllm:request_generation_tokens",
        "vllm:e2e_request_latency_seconds",
    ] {
        assert_eq!(e.metric_type(family), Some(MetricType::Histogram));
        let bucket = format!("{family}_bucket");
        let buckets: Vec<&Sample> = e.samples.iter().filter(|s| s.name == bucket).collect();
        assert!(buckets.len() > 10, "{family}");
        assert!(buckets.windows(2).all(|w| w[0].value <= w[1].value));
        let last = buckets.last().unwrap();
        assert_eq!(last.label("le"), Some("+Inf"));
        let count = find(&e.samples, &format!("{family}_count"), &[]);
        assert_eq!(last.value, count.value, "{family}");
        let sum = find(&e.samples, &format!("{family}_sum"), &[]);
        assert!(sum.value > 0.0);
    }
}

#[test]
fn ttft_mean_from_sum_and_count_is_plausible() {
    let e = parse_exposition(LLAMA).unwrap();
    let sum = find(&e.samples, "vllm:time_to_first_token_seconds_sum", &[]).value;
    let count = find(&e.samples, "vllm:time_to_first_token_seconds_count", &[]).value;
    let mean = sum / count;
    assert!((0.02..1.8).contains(&mean), "{mean}");
}

#[test]
fn legacy_aliases_parse_beside_the_new_names() {
    let e = parse_exposition(LLAMA).unwrap();
    assert_eq!(
        find(&e.samples, "vllm:gpu_cache_usage_perc", &[]).value,
        0.4183
    );
    let new = find(&e.samples, "vllm:inter_token_latency_seconds_count", &[]).value;
    let old = find(&e.samples, "vllm:time_per_output_token_seconds_count", &[]).value;
    assert_eq!(new, old);
}

#[test]
fn two_engines_on_one_pod_are_separate_series() {
    let text = "\
# HELP vllm:num_requests_running Number of requests in model execution batches.
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{model_name=\"m\",engine=\"0\"} 3.0
vllm:num_requests_running{model_name=\"m\",engine=\"1\"} 4.0";
    let e = parse_exposition(text).unwrap();
    let engines: Vec<(Option<&str>, f64)> = e
        .samples
        .iter()
        .map(|s| (s.label("engine"), s.value))
        .collect();
    assert_eq!(engines, vec![(Some("0"), 3.0), (Some("1"), 4.0)]);
}

#[test]
fn special_values_and_timestamps_from_other_exporters_parse() {
    let text = "\
vllm:kv_cache_usage_perc{model_name=\"m\"} NaN
vllm:num_requests_waiting{model_name=\"m\"} +Inf 1764280047000
vllm:num_requests_running{model_name=\"m\"} -inf
x Infinity
y -1.5e-3
";
    let e = parse_exposition(text).unwrap();
    assert!(e.samples[0].value.is_nan());
    assert_eq!(e.samples[1].value, f64::INFINITY);
    assert_eq!(e.samples[1].timestamp_ms, Some(1_764_280_047_000));
    assert_eq!(e.samples[2].value, f64::NEG_INFINITY);
    assert_eq!(e.samples[3].value, f64::INFINITY);
    assert_eq!(e.samples[4].value, -0.0015);
}

#[test]
fn a_truncated_vllm_body_is_rejected_with_its_line_number() {
    // A body cut in the middle of a label set, as a dropped connection leaves it.
    let cut = LLAMA.find("engine=\"0\",le=\"0.5\"").unwrap();
    let truncated = &LLAMA[..cut + 10];
    let err = parse_exposition(truncated).unwrap_err();
    assert_eq!(err.line, truncated.lines().count());
    assert!(err.to_string().starts_with(&format!("line {}: ", err.line)));
}

#[test]
fn missing_final_newline_is_accepted() {
    let trimmed = LLAMA.trim_end_matches('\n');
    let a = parse_exposition(trimmed).unwrap();
    let b = parse_exposition(LLAMA).unwrap();
    assert_eq!(a.samples.len(), b.samples.len());
}
