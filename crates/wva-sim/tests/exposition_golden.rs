//! Exposition: golden text for one pod in each metrics mode, and `promtool check metrics`
//! accepting only the lint lines real vLLM also fails (spec/sim.md §2.5, §8).
#![allow(clippy::unwrap_used)]

mod common;

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use wva_sim::exposition::{BucketMode, MetricSet, MetricsOptions};
use wva_sim::sim::Simulation;

fn modes() -> Vec<(&'static str, MetricsOptions)> {
    vec![
        ("full", MetricsOptions::default()),
        (
            "minimal",
            MetricsOptions {
                set: MetricSet::Minimal,
                ..Default::default()
            },
        ),
        (
            "inf_only",
            MetricsOptions {
                set: MetricSet::Minimal,
                buckets: BucketMode::InfOnly,
                ..Default::default()
            },
        ),
        (
            "legacy_created_embedded",
            MetricsOptions {
                legacy_names: true,
                created_series: true,
                embed_target_labels: true,
                ..Default::default()
            },
        ),
    ]
}

/// One pod's text after 30 s of 6 req/s on a seeded fleet.
fn pod_text(opts: &MetricsOptions) -> String {
    let mut sim = Simulation::new(common::config(6.0, "per_replica")).unwrap();
    for _ in 0..300 {
        sim.tick();
    }
    let pods = sim.publish();
    let (_, pod) = pods.iter().next().unwrap();
    pod.render(opts)
}

fn golden(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(format!("{name}.txt"))
}

#[test]
fn golden_text_per_metrics_mode() {
    let bless = std::env::var_os("WVA_SIM_BLESS").is_some();
    for (name, opts) in modes() {
        let text = pod_text(&opts);
        let path = golden(name);
        if bless {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &text).unwrap();
        }
        let want = std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!("{}: {e} (regenerate with WVA_SIM_BLESS=1)", path.display())
        });
        assert_eq!(
            text, want,
            "{name}: exposition changed (regenerate with WVA_SIM_BLESS=1 if intended)"
        );
    }
}

#[test]
fn text_has_vllm_names_types_and_no_pod_labels() {
    let text = pod_text(&MetricsOptions::default());
    for (family, kind) in [
        ("vllm:num_requests_running", "gauge"),
        ("vllm:num_requests_waiting", "gauge"),
        ("vllm:kv_cache_usage_perc", "gauge"),
        ("vllm:cache_config_info", "gauge"),
        ("vllm:request_success_total", "counter"),
        ("vllm:prompt_tokens_total", "counter"),
        ("vllm:generation_tokens_total", "counter"),
        ("vllm:num_preemptions_total", "counter"),
        ("vllm:prefix_cache_queries_total", "counter"),
        ("vllm:prefix_cache_hits_total", "counter"),
        ("vllm:request_prompt_tokens", "histogram"),
        ("vllm:request_generation_tokens", "histogram"),
        ("vllm:time_to_first_token_seconds", "histogram"),
        ("vllm:inter_token_latency_seconds", "histogram"),
        ("vllm:request_time_per_output_token_seconds", "histogram"),
        ("vllm:e2e_request_latency_seconds", "histogram"),
        ("vllm:request_queue_time_seconds", "histogram"),
        ("vllm:request_prefill_time_seconds", "histogram"),
        ("vllm:request_decode_time_seconds", "histogram"),
        ("vllm:request_inference_time_seconds", "histogram"),
        ("vllm:iteration_tokens_total", "histogram"),
    ] {
        assert!(
            text.contains(&format!("# TYPE {family} {kind}\n")),
            "{family} {kind}"
        );
    }
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        assert!(line.contains("engine=\"0\""), "{line}");
        assert!(
            !line.contains("namespace=") && !line.contains("pod="),
            "{line}"
        );
        if !line.starts_with("vllm:cache_config_info") {
            assert!(
                line.contains("model_name=\"meta-llama/Llama-3.1-8B-Instruct\""),
                "{line}"
            );
        } else {
            assert!(!line.contains("model_name"), "{line}");
        }
    }
    assert!(text.contains("le=\"+Inf\""));
    assert!(!text.contains("inf\"") && !text.contains(" inf"));
}

fn promtool() -> Option<PathBuf> {
    let p = std::env::var_os("WVA_PROMTOOL_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("promtool"));
    Command::new(&p)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .ok()
        .filter(|s| s.success())?;
    Some(p)
}

#[test]
fn promtool_accepts_every_mode_but_the_vllm_lint_lines() {
    let Some(bin) = promtool() else {
        eprintln!("promtool not found; skipping (set WVA_PROMTOOL_BIN)");
        return;
    };
    for (name, opts) in modes() {
        let text = pod_text(&opts);
        let mut child = Command::new(&bin)
            .args(["check", "metrics"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        let code = out.status.code().unwrap();
        let msgs = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            code == 0 || code == 3,
            "{name}: promtool exit {code}: {msgs}"
        );
        for line in msgs.lines().filter(|l| !l.trim().is_empty()) {
            let allowed = line.contains("metric names should not contain ':'")
                || (line.starts_with("vllm:iteration_tokens_total")
                    && line.contains("non-counter metrics should not have \"_total\" suffix"));
            assert!(allowed, "{name}: unexpected promtool line: {line}");
        }
    }
}

/// The determinism contract's golden hash: metrics of every pod and the event log after a scripted
/// run. Pinned to the CI target (libm precision of ln/exp/sin is platform-specific).
#[test]
fn golden_digest_of_a_scripted_run() {
    let mut sim = Simulation::new(common::config(12.0, "per_replica")).unwrap();
    for k in 0..400 {
        if k == 100 {
            sim.set_replicas("cheap", 4).unwrap();
        }
        if k == 200 {
            let p = sim.nth_pod("cheap", 0).unwrap();
            sim.kill(&p).unwrap();
        }
        if k == 300 {
            sim.set_replicas("fast", 0).unwrap();
        }
        sim.tick();
    }
    let digest = sim.digest();
    let path = golden("digest");
    if std::env::var_os("WVA_SIM_BLESS").is_some() {
        std::fs::write(&path, format!("{digest}\n")).unwrap();
    }
    let want = std::fs::read_to_string(&path).unwrap();
    assert_eq!(
        digest,
        want.trim(),
        "regenerate with WVA_SIM_BLESS=1 after an RNG crate or toolchain change"
    );
}
