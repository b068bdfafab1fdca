//! Builders for vLLM exposition text (`vllm:*` families, as vLLM v1 exposes them).

use std::fmt::Write;

/// The values one pod exposes for one model.
#[derive(Debug, Clone, PartialEq)]
pub struct VllmPod {
    /// `model_name` label.
    pub model: String,
    /// Extra labels on every series (e.g. `namespace`, `pod` for an `honor_labels` target).
    pub extra_labels: Vec<(String, String)>,
    /// `vllm:kv_cache_usage_perc`.
    pub kv_cache_usage: f64,
    /// `vllm:num_requests_waiting`.
    pub waiting: f64,
    /// `vllm:num_requests_running`.
    pub running: f64,
    /// `vllm:request_prompt_tokens_sum` / `_count`.
    pub prompt_tokens: (f64, f64),
    /// `vllm:request_generation_tokens_sum` / `_count`.
    pub generation_tokens: (f64, f64),
    /// `vllm:request_success_total`.
    pub success_total: f64,
    /// `vllm:cache_config_info` `num_gpu_blocks`, `block_size` (no `model_name`, as real vLLM).
    pub cache_config: Option<(String, String)>,
}

impl VllmPod {
    /// A pod of `model` with small default values.
    pub fn new(model: impl Into<String>) -> Self {
        VllmPod {
            model: model.into(),
            extra_labels: Vec::new(),
            kv_cache_usage: 0.25,
            waiting: 1.0,
            running: 2.0,
            prompt_tokens: (0.0, 0.0),
            generation_tokens: (0.0, 0.0),
            success_total: 0.0,
            cache_config: Some(("1000".to_string(), "16".to_string())),
        }
    }
}

/// Escapes a label value for the text format.
pub fn escape_label_value(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn labels(pod: &VllmPod, with_model: bool) -> String {
    let mut parts = Vec::new();
    for (k, v) in &pod.extra_labels {
        parts.push(format!("{k}=\"{}\"", escape_label_value(v)));
    }
    if with_model {
        parts.push(format!("model_name=\"{}\"", escape_label_value(&pod.model)));
    }
    parts.join(",")
}

fn num(v: f64) -> String {
    if v.is_nan() {
        "NaN".to_string()
    } else if v == f64::INFINITY {
        "+Inf".to_string()
    } else if v == f64::NEG_INFINITY {
        "-Inf".to_string()
    } else {
        format!("{v}")
    }
}

/// The exposition text of several pods' series (TYPE lines once per family).
pub fn vllm_text(pods: &[VllmPod]) -> String {
    let mut out = String::new();
    let gauge = |out: &mut String, name: &str, f: &dyn Fn(&VllmPod) -> f64| {
        let _ = writeln!(out, "# TYPE {name} gauge");
        for p in pods {
            let _ = writeln!(out, "{name}{{{}}} {}", labels(p, true), num(f(p)));
        }
    };
    gauge(&mut out, "vllm:kv_cache_usage_perc", &|p| p.kv_cache_usage);
    gauge(&mut out, "vllm:num_requests_waiting", &|p| p.waiting);
    gauge(&mut out, "vllm:num_requests_running", &|p| p.running);
    let _ = writeln!(out, "# TYPE vllm:request_success_total counter");
    for p in pods {
        let _ = writeln!(
            out,
            "vllm:request_success_total{{{}}} {}",
            labels(p, true),
            num(p.success_total)
        );
    }
    for (family, pick) in [
        (
            "vllm:request_prompt_tokens",
            (&|p: &VllmPod| p.prompt_tokens) as &dyn Fn(&VllmPod) -> (f64, f64),
        ),
        ("vllm:request_generation_tokens", &|p: &VllmPod| {
            p.generation_tokens
        }),
    ] {
        let _ = writeln!(out, "# TYPE {family} histogram");
        for p in pods {
            let (sum, count) = pick(p);
            let l = labels(p, true);
            let _ = writeln!(out, "{family}_bucket{{{l},le=\"+Inf\"}} {}", num(count));
            let _ = writeln!(out, "{family}_sum{{{l}}} {}", num(sum));
            let _ = writeln!(out, "{family}_count{{{l}}} {}", num(count));
        }
    }
    let _ = writeln!(out, "# TYPE vllm:cache_config_info gauge");
    for p in pods {
        if let Some((blocks, size)) = &p.cache_config {
            let l = labels(p, false);
            let sep = if l.is_empty() { "" } else { "," };
            let _ = writeln!(
                out,
                "vllm:cache_config_info{{{l}{sep}block_size=\"{}\",num_gpu_blocks=\"{}\"}} 1",
                escape_label_value(size),
                escape_label_value(blocks)
            );
        }
    }
    out
}
