//! Prometheus text format 0.0.4 for emulated replicas, with vLLM v1's names, types and labels.

use crate::histogram::Histogram;
use crate::metrics::{FinishReason, ReplicaMetrics};
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;

/// The `Content-Type` of every exposition the sim serves.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Which families a replica emits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MetricSet {
    /// Every family of spec/sim.md §2.5.
    #[default]
    Full,
    /// Gauges, counters and the two token histograms.
    Minimal,
}

/// How histogram buckets are emitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BucketMode {
    /// Every bucket.
    #[default]
    Full,
    /// Only `+Inf`, with `_sum` and `_count`.
    InfOnly,
}

/// The `metrics:` knobs of the fleet config.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsOptions {
    /// `full` or `minimal`.
    pub set: MetricSet,
    /// `full` or `inf_only`.
    pub buckets: BucketMode,
    /// Adds `vllm:gpu_cache_usage_perc` and `vllm:time_per_output_token_seconds`.
    pub legacy_names: bool,
    /// Adds `*_created` gauges as the Python client does.
    pub created_series: bool,
    /// Adds `namespace` and `pod` labels to the text (for scrapers without service discovery).
    pub embed_target_labels: bool,
}

/// What identifies a replica in its text.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplicaLabels {
    /// `model_name`.
    pub model_name: String,
    /// Namespace (only written with `embed_target_labels`).
    pub namespace: String,
    /// Pod name (only written with `embed_target_labels`).
    pub pod: String,
    /// `block_size` of `vllm:cache_config_info`.
    pub block_size: u32,
    /// `num_gpu_blocks` of `vllm:cache_config_info`.
    pub num_gpu_blocks: u32,
    /// `enable_prefix_caching` of `vllm:cache_config_info`.
    pub enable_prefix_caching: bool,
    /// Value of the `*_created` gauges (unix seconds).
    pub created_unix: f64,
}

/// Gauge values forced by a fault (`PUT /pods/{pod}/fault`).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GaugeOverride {
    /// Forced `vllm:kv_cache_usage_perc`.
    pub kv_cache_usage_perc: Option<f64>,
    /// Forced `vllm:num_requests_waiting`.
    pub num_requests_waiting: Option<u64>,
}

/// Formats a sample value: shortest round-trip, `.0` on integers as Python writes them, and
/// `+Inf`, `-Inf`, `NaN` spelled out.
pub fn format_float(v: f64) -> String {
    let mut s = String::new();
    push_float(&mut s, v);
    s
}

fn push_float(out: &mut String, v: f64) {
    if v.is_nan() {
        out.push_str("NaN");
    } else if v == f64::INFINITY {
        out.push_str("+Inf");
    } else if v == f64::NEG_INFINITY {
        out.push_str("-Inf");
    } else if v.fract() == 0.0 && v.abs() < 1e15 {
        let _ = write!(out, "{}.0", v as i64);
    } else {
        let _ = write!(out, "{v:?}");
    }
}

/// Escapes a label value (`\`, `"`, newline).
pub fn escape_label_value(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    push_escaped(&mut out, v);
    out
}

fn push_escaped(out: &mut String, v: &str) {
    if !v.contains(['\\', '"', '\n']) {
        out.push_str(v);
        return;
    }
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

const MAX_LABELS: usize = 12;

fn push_labels(out: &mut String, labels: &[(&str, &str)]) {
    let mut sorted: [(&str, &str); MAX_LABELS] = [("", ""); MAX_LABELS];
    let n = labels.len().min(MAX_LABELS);
    sorted[..n].copy_from_slice(&labels[..n]);
    let sorted = &mut sorted[..n];
    sorted.sort_unstable_by(|a, b| a.0.cmp(b.0));
    for (i, (k, v)) in sorted.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(k);
        out.push_str("=\"");
        push_escaped(out, v);
        out.push('"');
    }
}

/// A small text-format writer: families in call order, labels sorted by name.
#[derive(Debug, Default)]
pub struct TextWriter {
    out: String,
}

impl TextWriter {
    /// An empty writer.
    pub fn new() -> Self {
        TextWriter {
            out: String::with_capacity(8192),
        }
    }

    /// Writes the `# HELP` and `# TYPE` lines of a family.
    pub fn family(&mut self, name: &str, help: &str, kind: &str) {
        self.out.push_str("# HELP ");
        self.out.push_str(name);
        self.out.push(' ');
        if help.contains(['\\', '\n']) {
            self.out
                .push_str(&help.replace('\\', "\\\\").replace('\n', "\\n"));
        } else {
            self.out.push_str(help);
        }
        self.out.push_str("\n# TYPE ");
        self.out.push_str(name);
        self.out.push(' ');
        self.out.push_str(kind);
        self.out.push('\n');
    }

    /// Writes one sample; `labels` (at most 12) are sorted by name here.
    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.out.push_str(name);
        if !labels.is_empty() {
            self.out.push('{');
            push_labels(&mut self.out, labels);
            self.out.push('}');
        }
        self.out.push(' ');
        push_float(&mut self.out, value);
        self.out.push('\n');
    }

    /// Writes a histogram's samples (buckets per `mode`, then `_sum` and `_count`).
    pub fn histogram(
        &mut self,
        name: &str,
        labels: &[(&str, &str)],
        h: &Histogram,
        mode: BucketMode,
    ) {
        // The label text around `le` is the same for every bucket: render it once.
        let mut with_le: Vec<(&str, &str)> = labels.to_vec();
        with_le.push(("le", "\u{0}"));
        let mut lbl = String::new();
        push_labels(&mut lbl, &with_le);
        let (before, after) = lbl.split_once('\u{0}').unwrap_or((&lbl, ""));
        let bucket = |out: &mut String, le: f64, count: u64| {
            out.push_str(name);
            out.push_str("_bucket{");
            out.push_str(before);
            push_float(out, le);
            out.push_str(after);
            out.push_str("} ");
            push_float(out, count as f64);
            out.push('\n');
        };
        if mode == BucketMode::Full {
            for (b, c) in h.bounds().iter().zip(h.cumulative()) {
                bucket(&mut self.out, *b, c);
            }
        }
        bucket(&mut self.out, f64::INFINITY, h.count());
        let mut n = String::with_capacity(name.len() + 6);
        n.push_str(name);
        n.push_str("_sum");
        self.sample(&n, labels, h.sum());
        n.truncate(name.len());
        n.push_str("_count");
        self.sample(&n, labels, h.count() as f64);
    }

    /// The text written so far.
    pub fn finish(self) -> String {
        self.out
    }
}

struct Replica<'a> {
    w: TextWriter,
    base: Vec<(&'a str, &'a str)>,
    opts: &'a MetricsOptions,
    created: f64,
}

impl<'a> Replica<'a> {
    fn gauge(&mut self, name: &str, help: &str, v: f64) {
        self.w.family(name, help, "gauge");
        self.w.sample(name, &self.base, v);
    }

    fn created(&mut self, base_name: &str, label_sets: &[Vec<(&str, &str)>]) {
        if !self.opts.created_series {
            return;
        }
        let name = format!("{base_name}_created");
        self.w
            .family(&name, &format!("Created time of {base_name}"), "gauge");
        for l in label_sets {
            self.w.sample(&name, l, self.created);
        }
    }

    fn counter(&mut self, name: &str, help: &str, v: u64) {
        self.w.family(name, help, "counter");
        self.w.sample(name, &self.base, v as f64);
        let base = self.base.clone();
        self.created(name.trim_end_matches("_total"), &[base]);
    }

    fn histogram(&mut self, name: &str, help: &str, h: &Histogram) {
        self.w.family(name, help, "histogram");
        self.w.histogram(name, &self.base, h, self.opts.buckets);
        let base = self.base.clone();
        self.created(name, &[base]);
    }
}

/// Renders one replica's `/metrics` text.
pub fn render_replica(
    m: &ReplicaMetrics,
    opts: &MetricsOptions,
    id: &ReplicaLabels,
    ov: &GaugeOverride,
) -> String {
    let mut base: Vec<(&str, &str)> = vec![("engine", "0"), ("model_name", &id.model_name)];
    let mut info_base: Vec<(&str, &str)> = vec![("engine", "0")];
    if opts.embed_target_labels {
        for l in [
            ("namespace", id.namespace.as_str()),
            ("pod", id.pod.as_str()),
        ] {
            base.push(l);
            info_base.push(l);
        }
    }
    let mut r = Replica {
        w: TextWriter::new(),
        base,
        opts,
        created: id.created_unix,
    };
    let kv = ov.kv_cache_usage_perc.unwrap_or(m.kv_usage);
    r.gauge(
        "vllm:num_requests_running",
        "Number of requests in model execution batches.",
        m.running as f64,
    );
    r.gauge(
        "vllm:num_requests_waiting",
        "Number of requests waiting to be processed.",
        ov.num_requests_waiting.unwrap_or(m.waiting) as f64,
    );
    r.gauge(
        "vllm:kv_cache_usage_perc",
        "KV-cache usage. 1 means 100 percent usage.",
        kv,
    );
    if opts.legacy_names {
        r.gauge(
            "vllm:gpu_cache_usage_perc",
            "GPU KV-cache usage. 1 means 100 percent usage.",
            kv,
        );
    }
    r.w.family(
        "vllm:cache_config_info",
        "Information of the LLMEngine CacheConfig",
        "gauge",
    );
    let (bs, nb) = (id.block_size.to_string(), id.num_gpu_blocks.to_string());
    let mut info = info_base.clone();
    info.extend([
        ("block_size", bs.as_str()),
        ("cache_dtype", "auto"),
        (
            "enable_prefix_caching",
            if id.enable_prefix_caching {
                "True"
            } else {
                "False"
            },
        ),
        ("gpu_memory_utilization", "0.9"),
        ("num_gpu_blocks", nb.as_str()),
    ]);
    r.w.sample("vllm:cache_config_info", &info, 1.0);

    r.w.family(
        "vllm:request_success_total",
        "Count of successfully processed requests.",
        "counter",
    );
    let mut sets = Vec::new();
    for reason in FinishReason::ALL {
        let mut l = r.base.clone();
        l.push(("finished_reason", reason.as_str()));
        r.w.sample("vllm:request_success_total", &l, m.finished(reason) as f64);
        sets.push(l);
    }
    r.created("vllm:request_success", &sets);
    r.counter(
        "vllm:prompt_tokens_total",
        "Number of prefill tokens processed.",
        m.prompt_tokens,
    );
    r.counter(
        "vllm:generation_tokens_total",
        "Number of generation tokens processed.",
        m.generation_tokens,
    );
    r.counter(
        "vllm:num_preemptions_total",
        "Cumulative number of preemption from the engine.",
        m.preemptions,
    );
    r.counter(
        "vllm:prefix_cache_queries_total",
        "Prefix cache queries, in terms of number of queried tokens.",
        m.prefix_queries,
    );
    r.counter(
        "vllm:prefix_cache_hits_total",
        "Prefix cache hits, in terms of number of cached tokens.",
        m.prefix_hits,
    );
    r.histogram(
        "vllm:request_prompt_tokens",
        "Number of prefill tokens processed.",
        &m.prompt_tokens_hist,
    );
    r.histogram(
        "vllm:request_generation_tokens",
        "Number of generation tokens processed.",
        &m.generation_tokens_hist,
    );
    if opts.set == MetricSet::Full {
        r.histogram(
            "vllm:time_to_first_token_seconds",
            "Histogram of time to first token in seconds.",
            &m.ttft,
        );
        r.histogram(
            "vllm:inter_token_latency_seconds",
            "Histogram of inter-token latency in seconds.",
            &m.itl,
        );
        if opts.legacy_names {
            r.histogram(
                "vllm:time_per_output_token_seconds",
                "Histogram of time per output token in seconds. DEPRECATED: use vllm:inter_token_latency_seconds.",
                &m.itl,
            );
        }
        r.histogram(
            "vllm:request_time_per_output_token_seconds",
            "Histogram of time_per_output_token_seconds per request.",
            &m.tpot,
        );
        r.histogram(
            "vllm:e2e_request_latency_seconds",
            "Histogram of e2e request latency in seconds.",
            &m.e2e,
        );
        r.histogram(
            "vllm:request_queue_time_seconds",
            "Histogram of time spent in WAITING phase for request.",
            &m.queue,
        );
        r.histogram(
            "vllm:request_prefill_time_seconds",
            "Histogram of time spent in PREFILL phase for request.",
            &m.prefill,
        );
        r.histogram(
            "vllm:request_decode_time_seconds",
            "Histogram of time spent in DECODE phase for request.",
            &m.decode,
        );
        r.histogram(
            "vllm:request_inference_time_seconds",
            "Histogram of time spent in RUNNING phase for request.",
            &m.inference,
        );
        r.histogram(
            "vllm:iteration_tokens_total",
            "Histogram of number of tokens per engine_step.",
            &m.iteration_tokens,
        );
    }
    r.w.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn labels() -> ReplicaLabels {
        ReplicaLabels {
            model_name: "meta-llama/Llama-3.1-8B-Instruct".into(),
            namespace: "llm-d-sim".into(),
            pod: "cheap-decode-abc-xyz".into(),
            block_size: 16,
            num_gpu_blocks: 2048,
            enable_prefix_caching: false,
            created_unix: 1_700_000_000.0,
        }
    }

    #[test]
    fn floats_are_python_style() {
        assert_eq!(format_float(1.0), "1.0");
        assert_eq!(format_float(0.25), "0.25");
        assert_eq!(format_float(f64::INFINITY), "+Inf");
        assert_eq!(format_float(f64::NEG_INFINITY), "-Inf");
        assert_eq!(format_float(f64::NAN), "NaN");
        assert_eq!(format_float(1e-7).parse::<f64>().unwrap(), 1e-7);
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape_label_value("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }

    #[test]
    fn fresh_replica_has_every_reason_at_zero_and_types_with_total() {
        let m = ReplicaMetrics::new(4096);
        let t = render_replica(
            &m,
            &MetricsOptions::default(),
            &labels(),
            &GaugeOverride::default(),
        );
        for r in ["stop", "length", "abort", "error", "repetition"] {
            assert!(t.contains(&format!(
                "vllm:request_success_total{{engine=\"0\",finished_reason=\"{r}\",model_name=\"meta-llama/Llama-3.1-8B-Instruct\"}} 0.0"
            )));
        }
        assert!(t.contains("# TYPE vllm:request_success_total counter"));
        assert!(t.contains("# TYPE vllm:iteration_tokens_total histogram"));
        assert!(t.contains("vllm:cache_config_info{block_size=\"16\",cache_dtype=\"auto\",enable_prefix_caching=\"False\",engine=\"0\",gpu_memory_utilization=\"0.9\",num_gpu_blocks=\"2048\"} 1.0"));
        assert!(!t.contains("gpu_cache_usage_perc"));
        assert!(!t.contains("namespace="));
    }

    #[test]
    fn minimal_inf_only_is_small() {
        let m = ReplicaMetrics::new(4096);
        let opts = MetricsOptions {
            set: MetricSet::Minimal,
            buckets: BucketMode::InfOnly,
            ..Default::default()
        };
        let t = render_replica(&m, &opts, &labels(), &GaugeOverride::default());
        let samples = t.lines().filter(|l| !l.starts_with('#')).count();
        assert!(samples <= 30, "{samples} samples");
        assert!(!t.contains("time_to_first_token"));
        assert!(
            t.contains("vllm:request_prompt_tokens_bucket{engine=\"0\",le=\"+Inf\",model_name=")
        );
    }

    #[test]
    fn legacy_created_and_embedded_labels_are_opt_in() {
        let m = ReplicaMetrics::new(4096);
        let opts = MetricsOptions {
            legacy_names: true,
            created_series: true,
            embed_target_labels: true,
            ..Default::default()
        };
        let t = render_replica(
            &m,
            &opts,
            &labels(),
            &GaugeOverride {
                kv_cache_usage_perc: Some(0.95),
                num_requests_waiting: Some(30),
            },
        );
        assert!(t.contains("# TYPE vllm:gpu_cache_usage_perc gauge"));
        assert!(t.contains("# TYPE vllm:time_per_output_token_seconds histogram"));
        assert!(t.contains("# TYPE vllm:request_success_created gauge"));
        assert!(t.contains("vllm:kv_cache_usage_perc{engine=\"0\",model_name=\"meta-llama/Llama-3.1-8B-Instruct\",namespace=\"llm-d-sim\",pod=\"cheap-decode-abc-xyz\"} 0.95"));
        assert!(t.contains("vllm:num_requests_waiting{engine=\"0\",model_name=\"meta-llama/Llama-3.1-8B-Instruct\",namespace=\"llm-d-sim\",pod=\"cheap-decode-abc-xyz\"} 30.0"));
    }
}
