//! `wva-bench`: whole-process measurements for `cargo xtask bench` (spec/sim.md §7).
//!
//! Per row (10, 100, 1000 models; one L4 variant with one replica per model, `set: minimal`,
//! `buckets: inf_only`, 5 s scrapes, 5 s cycles): a real Prometheus with a query log, the fleet,
//! the release `wva-manager` and the HPA emulator. Measures PromQL queries per cycle (from
//! Prometheus's own `prometheus_http_requests_total`, minus the HPA emulator's), cycle time vs
//! the raw time of the same queries sent directly, manager RSS and CPU, and the reaction time
//! from a 3× load step to a decision, a resize and a ready pod. Writes
//! `target/bench/<date>-<commit>.json` and `target/bench/latest.md`, and prints the table.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use wva_e2e::hpa::{HpaLoop, e2e_hpa};
use wva_e2e::manager::{ManagerChild, ManagerOptions, proc_cpu_ticks, proc_memory_kib};
use wva_e2e::observe::{self, Observer};
use wva_e2e::prom::{PromChild, PromTargets, prometheus_or_skip, query_at};
use wva_e2e::{Result, err, expo, fleet, http};
use wva_sim::{EventKind, FleetConfig, FleetHandle, LoadProfile};

const CYCLE_S: u64 = 5;

fn bench_config(models: usize, rate: f64) -> Result<FleetConfig> {
    let mut y = String::from(
        "seed: 42\nnamespace: bench\nstartup_delay: 2s\ntermination_grace: 3s\nmetrics: {set: minimal, buckets: inf_only}\nmodels:\n",
    );
    for i in 0..models {
        let _ = writeln!(
            y,
            "  - name: bench/model-{i:04}\n    load: {{type: constant, rate: {rate}}}"
        );
    }
    y.push_str("variants:\n");
    for i in 0..models {
        let _ = writeln!(
            y,
            "  - {{name: m{i:04}, model: bench/model-{i:04}, accelerator: L4, cost: 10, replicas: 1}}"
        );
    }
    FleetConfig::from_yaml_str(&y).map_err(|e| err(format!("bench fleet: {e}")))
}

#[derive(Debug, Default, Clone)]
struct Row {
    models: usize,
    pods: usize,
    variants: usize,
    cycles: f64,
    queries_per_cycle: f64,
    manager_queries_per_cycle: f64,
    upstream_per_cycle: f64,
    cycle_ms_mean: f64,
    raw_queries_ms: f64,
    distinct_queries: usize,
    rss_mib_median: f64,
    rss_mib_peak: f64,
    cpu_pct: f64,
    cpu_ms_per_cycle: f64,
    decide_s: (f64, f64),
    actuate_s: (f64, f64),
    ready_s: (f64, f64),
    reacted: usize,
    sim_lag_s_max: f64,
}

fn p50_max(mut v: Vec<f64>) -> (f64, f64) {
    if v.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    v.sort_by(f64::total_cmp);
    (v[v.len() / 2], v[v.len() - 1])
}

async fn manager_counter(m: &ManagerChild, name: &str) -> f64 {
    m.metrics()
        .await
        .map(|s| expo::sum(&s, name))
        .unwrap_or(f64::NAN)
}

async fn wait_scraped(prom: &PromChild, fleet: &FleetHandle, within: Duration) -> Result<()> {
    let deadline = Instant::now() + within;
    let want = fleet.targets().len();
    loop {
        let up = prom
            .query("up{job=\"vllm\"} == 1")
            .await
            .map(|v| v.len())
            .unwrap_or(0);
        let dep = prom
            .query("kube_deployment_status_replicas")
            .await
            .map(|v| v.len())
            .unwrap_or(0);
        if up >= want && dep >= fleet.config().variants.len() {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(err(format!(
                "fleet not scraped: {up}/{want} pods up, {dep} deployments"
            )));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Distinct query strings of the query log, the HPA emulator's excluded.
fn logged_queries(log: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let mut seen = BTreeMap::new();
    for line in text.lines() {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        if let Some(q) = v["params"]["query"].as_str()
            && !q.contains("inferno_desired_replicas")
        {
            *seen.entry(q.to_string()).or_insert(0u32) += 1;
        }
    }
    seen.into_keys().collect()
}

async fn row(bin: PathBuf, models: usize, dir: &Path) -> Result<Row> {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).map_err(|e| err(format!("{}: {e}", dir.display())))?;
    let max_rate = fleet::replica_max_rate(&bench_config(1, 0.0)?, "m0000");
    let config = bench_config(models, 0.4 * max_rate)?;
    let (fleet_handle, files) = fleet::start(config, dir).await?;
    let manager_addr = http::free_addr().map_err(|e| err(e.to_string()))?;
    let query_log = dir.join("prometheus").join("queries.log");
    let prom = PromChild::start(
        bin,
        &dir.join("prometheus"),
        &PromTargets {
            pods_sd: files.pods_sd.clone(),
            gateway_sd: files.gateway_sd.clone(),
            fleet: fleet_handle.control_addr(),
            manager: manager_addr,
            scrape_interval: Duration::from_secs(5),
            query_log: Some(query_log.clone()),
        },
    )
    .await?;
    wait_scraped(&prom, &fleet_handle, Duration::from_secs(60)).await?;
    let mut opts = ManagerOptions::e2e(files.inventory.clone(), prom.url());
    opts.interval = format!("{CYCLE_S}s");
    opts.cache = ("5s".into(), "15s".into(), "45s".into());
    let manager = ManagerChild::start(dir, manager_addr, &opts).await?;
    let hpa = HpaLoop::start(fleet_handle.clone(), prom.addr(), "bench", e2e_hpa(1));
    let observer = Observer::start(fleet_handle.clone(), manager.metrics);
    let pid = manager.pid();
    let clk_tck = 100.0;

    // Warm-up: two cycles.
    tokio::time::sleep(Duration::from_secs(2 * CYCLE_S + 1)).await;
    // Query window: K = 10 cycles.
    let q_handlers = ["/api/v1/query", "/api/v1/query_range", "/api/v1/series"];
    let prom_before = prom.http_requests(&q_handlers).await?;
    let hpa_before = hpa.queries();
    let cycles_before = manager_counter(&manager, "wva_cycle_duration_seconds_count").await;
    let sum_before = manager_counter(&manager, "wva_cycle_duration_seconds_sum").await;
    let mq_before = manager_counter(&manager, "wva_prometheus_query_duration_seconds_count").await;
    let cpu_before = proc_cpu_ticks(pid).unwrap_or(0);
    let started = Instant::now();
    let mut rss = Vec::new();
    let mut lag_max: f64 = 0.0;
    while started.elapsed() < Duration::from_secs(10 * CYCLE_S) {
        if let Some((r, _)) = proc_memory_kib(pid) {
            rss.push(r as f64 / 1024.0);
        }
        lag_max = lag_max.max(fleet_handle.snapshot().lag_s);
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let window = started.elapsed().as_secs_f64();
    let prom_after = prom.http_requests(&q_handlers).await?;
    let hpa_after = hpa.queries();
    let cycles_after = manager_counter(&manager, "wva_cycle_duration_seconds_count").await;
    let sum_after = manager_counter(&manager, "wva_cycle_duration_seconds_sum").await;
    let mq_after = manager_counter(&manager, "wva_prometheus_query_duration_seconds_count").await;
    let cpu_after = proc_cpu_ticks(pid).unwrap_or(0);
    let cycles = cycles_after - cycles_before;
    let harness = (hpa_after - hpa_before) as f64;

    // Raw time of the same queries, sent directly one after the other (median of 3 passes).
    let queries = logged_queries(&query_log);
    let mut passes = Vec::new();
    for _ in 0..3 {
        let t = Instant::now();
        for q in &queries {
            let _ = query_at(prom.addr(), q).await;
        }
        passes.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    let raw_ms = p50_max(passes).0;

    // Reaction: a 3× step on every model.
    let seq0 = fleet_handle.events_since(0).last().map_or(0, |e| e.seq);
    let cycles_seen = observer.cycles().len();
    let before_targets = observer
        .cycles()
        .last()
        .map(|c| observe::targets(&c.report))
        .unwrap_or_default();
    for i in 0..models {
        fleet_handle
            .set_load(
                &format!("bench/model-{i:04}"),
                LoadProfile::Constant {
                    rate: 1.2 * max_rate,
                },
            )
            .map_err(|e| err(e.to_string()))?;
    }
    let step_deadline = Instant::now() + Duration::from_secs(45);
    let mut decide: BTreeMap<String, f64> = BTreeMap::new();
    let mut actuate: BTreeMap<String, f64> = BTreeMap::new();
    let mut ready: BTreeMap<String, f64> = BTreeMap::new();
    let mut step_ms: BTreeMap<String, u64> = BTreeMap::new();
    while Instant::now() < step_deadline && ready.len() < models {
        tokio::time::sleep(Duration::from_millis(500)).await;
        for e in fleet_handle.events_since(seq0) {
            let Some(variant) = e.variant.clone().or_else(|| {
                e.model
                    .as_ref()
                    .map(|m| format!("m{}", m.trim_start_matches("bench/model-")))
            }) else {
                continue;
            };
            match e.kind {
                EventKind::LoadChanged => {
                    step_ms.entry(variant).or_insert(e.wall_ms);
                }
                EventKind::ResizeRequested => {
                    if let Some(s) = step_ms.get(&variant) {
                        actuate
                            .entry(variant)
                            .or_insert((e.wall_ms.saturating_sub(*s)) as f64 / 1000.0);
                    }
                }
                EventKind::PodReady => {
                    if let Some(s) = step_ms.get(&variant)
                        && actuate.contains_key(&variant)
                    {
                        ready
                            .entry(variant)
                            .or_insert((e.wall_ms.saturating_sub(*s)) as f64 / 1000.0);
                    }
                }
                _ => {}
            }
        }
        for c in observer.cycles().iter().skip(cycles_seen) {
            let Some(now) = observe::cycle_now_ms(&c.report) else {
                continue;
            };
            let took_ms = c.report["timings"]
                .as_object()
                .map(|m| {
                    m.values()
                        .filter_map(serde_json::Value::as_u64)
                        .sum::<u64>()
                        / 1000
                })
                .unwrap_or(0);
            for (v, target) in observe::targets(&c.report) {
                if before_targets.get(&v).is_some_and(|b| *b != target)
                    && let Some(s) = step_ms.get(&v)
                    && now + took_ms >= *s
                {
                    decide
                        .entry(v)
                        .or_insert((now + took_ms - s) as f64 / 1000.0);
                }
            }
        }
    }
    let mem = proc_memory_kib(pid).unwrap_or((0, 0));
    let half = rss.len() / 2;
    let rss_median = p50_max(rss[half..].to_vec()).0;
    let variants = fleet_handle.config().variants.len();
    let pods = fleet_handle
        .config()
        .variants
        .iter()
        .map(|v| v.replicas as usize)
        .sum();
    let row = Row {
        models,
        pods,
        variants,
        cycles,
        queries_per_cycle: (prom_after - prom_before - harness) / cycles,
        manager_queries_per_cycle: (mq_after - mq_before) / cycles,
        upstream_per_cycle: 6.0 * models as f64,
        cycle_ms_mean: (sum_after - sum_before) / cycles * 1000.0,
        raw_queries_ms: raw_ms,
        distinct_queries: queries.len(),
        rss_mib_median: rss_median,
        rss_mib_peak: mem.1 as f64 / 1024.0,
        cpu_pct: (cpu_after - cpu_before) as f64 / clk_tck / window * 100.0,
        cpu_ms_per_cycle: (cpu_after - cpu_before) as f64 / clk_tck * 1000.0 / cycles,
        decide_s: p50_max(decide.into_values().collect()),
        actuate_s: p50_max(actuate.into_values().collect()),
        ready_s: p50_max(ready.clone().into_values().collect()),
        reacted: ready.len(),
        sim_lag_s_max: lag_max,
    };
    drop(observer);
    drop(hpa);
    drop(manager);
    drop(prom);
    fleet_handle.shutdown().await;
    Ok(row)
}

fn commit() -> String {
    std::process::Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

fn machine() -> (usize, String, String) {
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_default();
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .next()
                .map(|l| l.split_whitespace().nth(1).unwrap_or("0").to_string())
        })
        .and_then(|kb| kb.parse::<f64>().ok())
        .map(|kb| format!("{:.1} GiB", kb / 1024.0 / 1024.0))
        .unwrap_or_default();
    (cores, cpu, mem)
}

fn f(v: f64, digits: usize) -> String {
    if v.is_finite() {
        format!("{v:.digits$}")
    } else {
        "–".into()
    }
}

fn markdown(rows: &[Row], version: &str, command: &str) -> String {
    let (cores, cpu, mem) = machine();
    let mut md = String::new();
    let _ = writeln!(
        md,
        "Measured by `{command}` at commit `{}` on {} ({cores} cores, {mem}), {version}; manager cycle {CYCLE_S} s, scrape interval 5 s, one L4 variant with one replica per model, `set: minimal`, `buckets: inf_only`. Reaction floor (scrape + cycle interval): {} s.\n",
        commit(),
        if cpu.is_empty() {
            "this machine".into()
        } else {
            cpu
        },
        5 + CYCLE_S
    );
    md.push_str("| models | variants | pods | PromQL queries/cycle (Prometheus) | manager's own count | upstream 6 × models | cycle ms (mean) | same queries sent directly, ms | RSS MiB median / peak | CPU % | CPU ms/cycle | reaction s decide p50/max | actuate p50/max | ready p50/max | sim lag max s |\n");
    md.push_str("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for r in rows {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {} | {} ({} distinct) | {} / {} | {} | {} | {} / {} | {} / {} | {} / {} ({} of {}) | {} |",
            r.models,
            r.variants,
            r.pods,
            f(r.queries_per_cycle, 1),
            f(r.manager_queries_per_cycle, 1),
            f(r.upstream_per_cycle, 0),
            f(r.cycle_ms_mean, 1),
            f(r.raw_queries_ms, 1),
            r.distinct_queries,
            f(r.rss_mib_median, 1),
            f(r.rss_mib_peak, 1),
            f(r.cpu_pct, 1),
            f(r.cpu_ms_per_cycle, 1),
            f(r.decide_s.0, 1),
            f(r.decide_s.1, 1),
            f(r.actuate_s.0, 1),
            f(r.actuate_s.1, 1),
            f(r.ready_s.0, 1),
            f(r.ready_s.1, 1),
            r.reacted,
            r.models,
            f(r.sim_lag_s_max, 2),
        );
    }
    md.push_str(&quality_table());
    md
}

/// Decision quality per e2e scenario, from the `quality.json` files of the last e2e run.
fn quality_table() -> String {
    let root = wva_e2e::proc::artifacts_root();
    let mut rows: Vec<serde_json::Value> = std::fs::read_dir(&root)
        .map(|d| {
            d.filter_map(std::result::Result::ok)
                .filter_map(|e| std::fs::read(e.path().join("quality.json")).ok())
                .filter_map(|b| serde_json::from_slice(&b).ok())
                .collect()
        })
        .unwrap_or_default();
    if rows.is_empty() {
        return String::new();
    }
    rows.sort_by(|a, b| a["scenario"].as_str().cmp(&b["scenario"].as_str()));
    let mut md = String::from(
        "\nDecision quality per end-to-end scenario (from the last `cargo xtask e2e` run: fleet sampled every 250 ms; saturated = some pod at KV ≥ 0.8; the static fleet is sized at the run's peak cost rate for the whole run):\n\n| scenario | observed s | time saturated s | replica-minutes | cost-minutes | static peak fleet cost-minutes | saving |\n|---|---:|---:|---:|---:|---:|---:|\n",
    );
    for r in rows {
        let num = |k: &str| r[k].as_f64().unwrap_or(f64::NAN);
        let saving = 1.0 - num("cost_minutes") / num("static_peak_cost_minutes");
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {}% |",
            r["scenario"].as_str().unwrap_or(""),
            f(num("seconds"), 0),
            f(num("saturated_s"), 1),
            f(num("replica_minutes"), 2),
            f(num("cost_minutes"), 1),
            f(num("static_peak_cost_minutes"), 1),
            f(saving * 100.0, 0),
        );
    }
    md
}

fn json(rows: &[Row], version: &str, command: &str) -> serde_json::Value {
    let (cores, cpu, mem) = machine();
    serde_json::json!({
        "commit": commit(),
        "date": chrono::Utc::now().to_rfc3339(),
        "command": command,
        "machine": {"cores": cores, "cpu": cpu, "mem": mem},
        "prometheus_version": version,
        "rows": rows.iter().map(|r| serde_json::json!({
            "fleet": format!("bench-{}-models", r.models), "pods": r.pods, "models": r.models,
            "variants": r.variants, "cycle_s": CYCLE_S,
            "reaction_s": {
                "decide": {"p50": r.decide_s.0, "max": r.decide_s.1},
                "actuate": {"p50": r.actuate_s.0, "max": r.actuate_s.1},
                "ready": {"p50": r.ready_s.0, "max": r.ready_s.1},
            },
            "queries_per_cycle": r.queries_per_cycle,
            "manager_queries_per_cycle": r.manager_queries_per_cycle,
            "upstream_queries_per_cycle": r.upstream_per_cycle,
            "cycles_measured": r.cycles,
            "cycle_ms": {"mean": r.cycle_ms_mean},
            "raw_queries_ms": r.raw_queries_ms,
            "rss_mib": {"median": r.rss_mib_median, "peak": r.rss_mib_peak},
            "cpu_pct": r.cpu_pct, "cpu_ms_per_cycle": r.cpu_ms_per_cycle,
            "sim_lag_s_max": r.sim_lag_s_max,
        })).collect::<Vec<_>>(),
    })
}

fn main() -> std::process::ExitCode {
    let models: Vec<usize> = std::env::var("WVA_BENCH_MODELS")
        .ok()
        .map(|s| s.split(',').filter_map(|x| x.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![10, 100, 1000]);
    let command = std::env::var("WVA_BENCH_COMMAND").unwrap_or_else(|_| "cargo xtask bench".into());
    let Some(bin) = prometheus_or_skip("bench") else {
        return std::process::ExitCode::FAILURE;
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("bench: runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let out_dir = wva_e2e::proc::artifacts_root()
        .parent()
        .map(|p| p.join("bench"))
        .unwrap_or_else(|| PathBuf::from("target/bench"));
    let result: Result<(Vec<Row>, String)> = runtime.block_on(async {
        let mut rows = Vec::new();
        let mut version = String::new();
        for m in models {
            eprintln!("bench: {m} models …");
            let r = row(bin.clone(), m, &out_dir.join(format!("models-{m}"))).await?;
            eprintln!("bench: {r:?}");
            rows.push(r);
        }
        if let Some(p) = wva_e2e::proc::find_binary("WVA_PROMETHEUS_BIN", "prometheus") {
            version = std::process::Command::new(p)
                .arg("--version")
                .output()
                .map(|o| {
                    String::from_utf8_lossy(&o.stdout)
                        .lines()
                        .next()
                        .unwrap_or("")
                        .to_string()
                })
                .unwrap_or_default();
        }
        Ok((rows, version))
    });
    match result {
        Ok((rows, version)) => {
            let md = markdown(&rows, &version, &command);
            let _ = std::fs::create_dir_all(&out_dir);
            let name = format!(
                "{}-{}.json",
                chrono::Utc::now().format("%Y-%m-%d"),
                commit()
            );
            let _ = std::fs::write(
                out_dir.join(name),
                serde_json::to_string_pretty(&json(&rows, &version, &command)).unwrap_or_default(),
            );
            let _ = std::fs::write(out_dir.join("latest.md"), &md);
            println!("{md}");
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("bench: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
