//! `wva-manager run`: the controller. This release runs it standalone (`--standalone`):
//! variants from a file, metrics from Prometheus, decisions published as metrics.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use wva_collector::{
    CacheConfig, CatalogueConfig, MetricsSource, PrometheusConfig, PrometheusSource, QueryGroup,
};
use wva_engine::{Engine, Schedule, SelfMetricsObserver};
use wva_exposition::{BindAddress, Exposition, ExpositionConfig, MetricsNaming, ServerConfig};

use crate::logging::{self, LogFormat};
use crate::standalone::{
    DesiredMemory, RememberTargets, StandaloneDirectory, StandaloneFiles, StandaloneInventory,
};

/// Arguments of `run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Run without Kubernetes: variants from --variants, replica counts from Prometheus.
    #[arg(long)]
    pub standalone: bool,
    /// Multi-document YAML of VariantAutoscaling objects (standalone mode); re-read on change.
    #[arg(long, value_name = "FILE")]
    pub variants: Option<PathBuf>,
    /// Prometheus base URL (overrides PROMETHEUS_BASE_URL).
    #[arg(long, value_name = "URL")]
    pub prometheus_url: Option<String>,
    /// Interval between periodic cycles (Go duration).
    #[arg(long, env = "WVA_INTERVAL", default_value = "30s", value_parser = parse_duration)]
    pub interval: Duration,
    /// Address of /metrics and /debug/cycle (`0` disables).
    #[arg(long, env = "METRICS_BIND_ADDRESS", default_value = "0.0.0.0:8080")]
    pub metrics_bind_address: BindAddress,
    /// Address of /healthz and /readyz (`0` disables).
    #[arg(
        long,
        env = "HEALTH_PROBE_BIND_ADDRESS",
        default_value = "0.0.0.0:8081"
    )]
    pub health_probe_bind_address: BindAddress,
    /// Run one cycle, print its CycleReport JSON on stdout and exit.
    #[arg(long)]
    pub once: bool,
    /// The saturation scaling ConfigMap (manifest or key → YAML mapping); re-read on change.
    #[arg(long, env = "WVA_SATURATION_CONFIG_FILE", value_name = "FILE")]
    pub saturation_config: Option<PathBuf>,
    /// The scale-to-zero ConfigMap (manifest or key → YAML mapping); re-read on change.
    #[arg(long, env = "WVA_SCALE_TO_ZERO_CONFIG_FILE", value_name = "FILE")]
    pub scale_to_zero_config: Option<PathBuf>,
    /// Whether models no scale-to-zero entry mentions may scale to zero.
    #[arg(long, env = "WVA_SCALE_TO_ZERO", default_value_t = false, action = clap::ArgAction::Set, value_parser = clap::builder::BoolishValueParser::new())]
    pub scale_to_zero: bool,
    /// Adds `controller_instance` to every series.
    #[arg(long, env = "CONTROLLER_INSTANCE")]
    pub controller_instance: Option<String>,
    /// Names of the per-variant families: inferno, wva or both.
    #[arg(long, env = "WVA_METRICS_NAMING", default_value = "inferno")]
    pub metrics_naming: MetricsNaming,
    /// Log format.
    #[arg(long, env = "WVA_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

/// Parses a Go duration (`30s`, `1m30s`) into a positive `Duration`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let nanos = wva_core::parse_go_duration(text).map_err(|_| {
        format!(
            "{text:?} is not a valid duration: use a number with a unit (ms, s, m, h), e.g. 30s"
        )
    })?;
    match u64::try_from(nanos) {
        Ok(n) if n > 0 => Ok(Duration::from_nanos(n)),
        _ => Err(format!("{text:?} must be positive")),
    }
}

/// Runs `run`.
pub fn run(args: RunArgs) -> ExitCode {
    logging::init(args.log_format, "info");
    if !args.standalone {
        eprintln!(
            "error: in-cluster mode is not available in this build; use `wva-manager run --standalone --variants FILE`"
        );
        return ExitCode::from(2);
    }
    let Some(variants) = args.variants.clone() else {
        eprintln!("error: --standalone needs --variants FILE");
        return ExitCode::from(2);
    };
    let files = match StandaloneFiles::load(
        &variants,
        args.saturation_config.as_deref(),
        args.scale_to_zero_config.as_deref(),
    ) {
        Ok(f) => Arc::new(f),
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let mut keys: BTreeMap<String, String> = std::env::vars()
        .filter(|(k, _)| k.starts_with("PROMETHEUS_"))
        .collect();
    if let Some(url) = &args.prometheus_url {
        keys.insert("PROMETHEUS_BASE_URL".into(), url.clone());
    }
    let (prometheus, cache) = match (
        PrometheusConfig::from_map(&keys),
        CacheConfig::from_map(&keys),
    ) {
        (Ok(p), Ok(c)) => (p, c),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(standalone(args, files, prometheus, cache))
}

/// The query groups standalone mode needs: the core set, scale-to-zero, the replica pair, and
/// the V2 token group when any configured model uses the token-based analyzer.
fn catalogue_for(files: &StandaloneFiles) -> CatalogueConfig {
    let mut groups = vec![
        QueryGroup::Core,
        QueryGroup::ScaleToZero,
        QueryGroup::Standalone,
    ];
    let uses_v2 = files.saturation.as_ref().is_some_and(|f| {
        let config = f.current().0;
        config
            .entries()
            .values()
            .any(|e| e.analyzer_name.as_deref() == Some("saturation"))
    });
    if uses_v2 {
        groups.push(QueryGroup::SaturationV2);
    }
    CatalogueConfig::with_groups(groups)
}

async fn standalone(
    args: RunArgs,
    files: Arc<StandaloneFiles>,
    prometheus: PrometheusConfig,
    cache: CacheConfig,
) -> ExitCode {
    let exposition = match Exposition::new(ExpositionConfig {
        naming: args.metrics_naming,
        controller_instance: args.controller_instance.clone(),
        ..ExpositionConfig::default()
    }) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let config_check = exposition.readiness().add_check("config", "loading");
    config_check.set_ready();

    let directory = Arc::new(StandaloneDirectory::new(files.clone()));
    let observer = Arc::new(SelfMetricsObserver::new(exposition.clone()));
    let source = match PrometheusSource::new(
        prometheus,
        catalogue_for(&files),
        cache,
        directory,
        Some(observer),
    ) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let desired: DesiredMemory = Arc::default();
    let inventory = Arc::new(StandaloneInventory::new(
        files.clone(),
        desired.clone(),
        args.scale_to_zero,
    ));
    let engine = Engine::new(
        inventory,
        source.clone(),
        exposition.clone(),
        Arc::new(RememberTargets::new(desired)),
    )
    .with_schedule(Schedule {
        interval: args.interval,
        ..Schedule::default()
    });

    if args.once {
        return match engine.run_cycle(std::time::SystemTime::now()).await {
            Ok(report) => match report.to_json_pretty() {
                Ok(json) => {
                    println!("{json}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            },
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        };
    }

    let shutdown = CancellationToken::new();
    let servers = match exposition
        .serve(
            ServerConfig {
                metrics: args.metrics_bind_address,
                probes: args.health_probe_bind_address,
                ..ServerConfig::default()
            },
            shutdown.clone(),
        )
        .await
    {
        Ok(s) => s,
        Err(e) => {
            eprintln!(
                "error: {e} (choose another address with --metrics-bind-address or --health-probe-bind-address)"
            );
            return ExitCode::FAILURE;
        }
    };
    let refresher = source.clone().spawn_background(shutdown.child_token());
    let watcher = StandaloneInventory::spawn_file_watch(
        files,
        engine.requester(),
        Duration::from_secs(1),
        shutdown.child_token(),
    );
    tokio::spawn(signal_shutdown(shutdown.clone()));
    tracing::info!(interval = ?args.interval, "standalone autoscaler started");
    engine.run(shutdown.clone()).await;
    let _ = tokio::time::timeout(Duration::from_secs(4), async {
        let _ = refresher.await;
        let _ = watcher.await;
        servers.wait().await;
    })
    .await;
    tracing::info!("stopped");
    ExitCode::SUCCESS
}

/// Cancels `shutdown` on SIGTERM or Ctrl-C.
pub async fn signal_shutdown(shutdown: CancellationToken) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
    tracing::info!("shutdown requested");
    shutdown.cancel();
}
