//! `wva-manager collect`: an operator's view of what the autoscaler sees.
//!
//! Prints, per model and pod, KV usage, queue length, running requests, token averages,
//! freshness and age, then the number of PromQL queries sent. Exit 0 on success, 1 when
//! Prometheus cannot be reached (one line, within `--timeout`), 2 on bad arguments.
//!
//! **Discovery.** Without `--model`, one query lists the `(namespace, model_name)` pairs of live
//! pods: `count by (namespace, model_name) (vllm:num_requests_running{…})`, restricted to the
//! `--namespace`s when given. With `--model` but no `--namespace`, the same query finds the
//! namespaces serving those models. With both, the cross product is collected as is.
//!
//! **Variants.** Without Kubernetes there is no owner chain: a pod belongs to the longest
//! `--variant` name that, followed by `-`, prefixes the pod name; otherwise the variant is named
//! after the pod itself.
//!
//! Connection settings come from the `PROMETHEUS_*` environment variables (token, TLS, …);
//! `--prometheus-url` overrides `PROMETHEUS_BASE_URL`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use wva_collector::config::{format_go_duration, parse_go_duration};
use wva_collector::{
    CacheConfig, CatalogueConfig, CollectRequest, CollectedSnapshot, CollectorError, MetricsSource,
    ModelKey, ModelRequest, ModelSnapshot, PodNameDirectory, PrometheusConfig, PrometheusSource,
    QueryName,
};

/// Arguments of `collect`.
#[derive(Debug, clap::Args)]
pub struct CollectArgs {
    /// Prometheus base URL (https, or http for a loopback host); overrides PROMETHEUS_BASE_URL.
    #[arg(long, value_name = "URL")]
    pub prometheus_url: Option<String>,
    /// Namespace to collect (repeatable); all namespaces when absent.
    #[arg(long = "namespace", value_name = "NS")]
    pub namespaces: Vec<String>,
    /// Model ID to collect (repeatable); discovered from live vLLM series when absent.
    #[arg(long = "model", value_name = "ID")]
    pub models: Vec<String>,
    /// Variant name used as a pod-name prefix (repeatable); else a pod is its own variant.
    #[arg(long = "variant", value_name = "NAME")]
    pub variants: Vec<String>,
    /// Print the collected snapshot as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Overall time budget (Go duration), e.g. 10s.
    #[arg(long, default_value = "10s", value_name = "DURATION")]
    pub timeout: String,
}

/// Exit codes.
const EXIT_UNREACHABLE: u8 = 1;
const EXIT_BAD_ARGS: u8 = 2;

/// Runs `collect`.
pub fn run(args: CollectArgs) -> ExitCode {
    let budget = match parse_go_duration(&args.timeout) {
        Some(d) if d >= Duration::from_millis(100) => d,
        _ => {
            eprintln!(
                "error: --timeout=\"{}\" is not a valid duration of at least 100ms: use a number with a unit (ms, s, m, h), e.g. 10s",
                args.timeout
            );
            return ExitCode::from(EXIT_BAD_ARGS);
        }
    };
    let mut env: BTreeMap<String, String> = std::env::vars()
        .filter(|(k, _)| k.starts_with("PROMETHEUS_"))
        .collect();
    if let Some(url) = &args.prometheus_url {
        env.insert("PROMETHEUS_BASE_URL".to_string(), url.clone());
    }
    let mut cfg = match PrometheusConfig::from_map(&env) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(EXIT_BAD_ARGS);
        }
    };
    // One attempt of half the budget plus one retry fits in the budget.
    cfg.query_timeout = budget / 2;
    cfg.query_deadline = budget;
    cfg.collect_timeout = budget;
    cfg.retry.max_attempts = 2;
    cfg.retry.initial_backoff = Duration::from_millis(200);
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(EXIT_UNREACHABLE);
        }
    };
    runtime.block_on(collect(args, cfg, budget))
}

fn unreachable(e: &CollectorError) -> ExitCode {
    eprintln!("error: {e}");
    ExitCode::from(EXIT_UNREACHABLE)
}

async fn collect(args: CollectArgs, cfg: PrometheusConfig, budget: Duration) -> ExitCode {
    let directory = Arc::new(PodNameDirectory::new(args.variants.clone()));
    let src = match PrometheusSource::new(
        cfg,
        CatalogueConfig::default(),
        CacheConfig::default(),
        directory,
        None,
    ) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(EXIT_BAD_ARGS);
        }
    };
    let mut discovery_queries = 0u64;
    let keys: Vec<ModelKey> = if !args.models.is_empty() && !args.namespaces.is_empty() {
        args.namespaces
            .iter()
            .flat_map(|ns| args.models.iter().map(move |m| ModelKey::new(ns, m)))
            .collect()
    } else {
        discovery_queries = 1;
        let found =
            tokio::time::timeout(budget, src.discover_models(&args.namespaces, &args.models)).await;
        match found {
            Ok(Ok(k)) => k,
            Ok(Err(e)) => return unreachable(&e),
            Err(_) => {
                return unreachable(&CollectorError::Timeout {
                    query: "discover_models".to_string(),
                    after: budget,
                });
            }
        }
    };
    let request = CollectRequest::new(keys.iter().cloned().map(ModelRequest::new).collect());
    let snapshot = if keys.is_empty() {
        CollectedSnapshot::empty("prometheus")
    } else {
        src.collect(&request).await
    };
    // Every model's liveness query failed: nothing was read.
    let liveness_errors: Vec<&CollectorError> = snapshot
        .models
        .values()
        .filter_map(|m| {
            m.errors
                .iter()
                .find(|(n, _)| *n == QueryName::ReplicaLastSample)
                .map(|(_, e)| e)
        })
        .collect();
    if !keys.is_empty()
        && liveness_errors.len() == snapshot.models.len()
        && let Some(e) = liveness_errors.first()
    {
        return unreachable(e);
    }
    let stats = src.stats();
    let sent = stats.total_sent() + discovery_queries;
    let attempts: u64 =
        stats.queries.values().map(|q| q.http_attempts).sum::<u64>() + discovery_queries;
    if args.json {
        let out = serde_json::json!({
            "snapshot": snapshot,
            "promql_queries_sent": sent,
            "http_attempts": attempts,
        });
        match serde_json::to_string_pretty(&out) {
            Ok(s) => println!("{s}"),
            Err(e) => {
                eprintln!("error: cannot encode the snapshot: {e}");
                return ExitCode::from(EXIT_UNREACHABLE);
            }
        }
    } else {
        print!("{}", render_table(&snapshot));
        println!("PromQL queries sent: {sent} (HTTP attempts: {attempts})");
    }
    ExitCode::SUCCESS
}

fn opt(v: Option<f64>, f: impl Fn(f64) -> String) -> String {
    v.map(f).unwrap_or_else(|| "-".to_string())
}

fn secs(d: Duration) -> String {
    format_go_duration(Duration::from_millis(d.as_millis() as u64))
}

fn render_model(out: &mut String, key: &ModelKey, m: &ModelSnapshot) {
    let _ = writeln!(
        out,
        "model {key}  availability={:?}  freshness={}  age={}{}",
        m.availability,
        m.freshness,
        secs(m.age),
        if m.served_from_last_good {
            "  (last good copy)"
        } else {
            ""
        }
    );
    if !m.replicas.is_empty() {
        let _ = writeln!(
            out,
            "  {:<32} {:<24} {:>7} {:>6} {:>8} {:>8} {:>8} {:<9} {:>8}",
            "POD", "VARIANT", "KV", "QUEUE", "RUNNING", "AVG_IN", "AVG_OUT", "FRESHNESS", "AGE"
        );
    }
    for r in m.replicas.values() {
        let _ = writeln!(
            out,
            "  {:<32} {:<24} {:>7} {:>6} {:>8} {:>8} {:>8} {:<9} {:>8}",
            r.pod,
            r.variant.name,
            opt(r.kv_cache_usage, |v| format!("{:.1}%", v * 100.0)),
            opt(r.queue_length, |v| format!("{v}")),
            opt(r.running_requests, |v| format!("{v}")),
            opt(r.avg_input_tokens, |v| format!("{v:.1}")),
            opt(r.avg_output_tokens, |v| format!("{v:.1}")),
            r.freshness,
            secs(r.sample_age),
        );
    }
    for (pod, reason) in &m.missing_pods {
        let _ = writeln!(out, "  missing pod {pod}: {reason}");
    }
    for (q, e) in &m.errors {
        let _ = writeln!(out, "  error in {q}: {e}");
    }
}

fn render_table(s: &CollectedSnapshot) -> String {
    let mut out = String::new();
    if s.models.is_empty() {
        out.push_str("no models found\n");
    }
    for (k, m) in &s.models {
        render_model(&mut out, k, m);
    }
    out
}
