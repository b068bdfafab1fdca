//! `wva-manager run`: the controller. Configuration comes from flags, the environment and the
//! config file (spec/k8s.md §6, via `wva_k8s::config::load`). This release runs it standalone
//! (`--standalone`): variants from a file, metrics from Prometheus, decisions published as
//! metrics.

use std::collections::BTreeMap;
use std::net::ToSocketAddrs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use crate::cluster;
use crate::standalone::{
    DesiredMemory, RememberTargets, StandaloneDirectory, StandaloneFiles, StandaloneInventory,
};
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;
use wva_collector::{
    CacheConfig, CatalogueConfig, MetricsSource, PrometheusConfig, PrometheusSource, QueryGroup,
};
use wva_engine::{Engine, Schedule, SelfMetricsObserver};
use wva_exposition::{
    BindAddress, Exposition, ExpositionConfig, MetricsAuth, MetricsNaming, ServerConfig,
    StaticToken, TlsConfig,
};
use wva_k8s::config::{
    self, BindAddress as ConfigBindAddress, ConfigError, ConfigErrors, ConfigFileText, KEYS, Key,
    Loaded, LogFormat, ManagerConfig, MetricsAuth as ConfigMetricsAuth,
    MetricsNaming as ConfigMetricsNaming, RawConfig,
};

/// Arguments of `run`: every key of spec/k8s.md §6.2 as an optional raw string, recorded only
/// when given on the command line. Validation, the environment and the config file are the
/// loader's (`wva_k8s::config::load`), so precedence is flag > environment > file > default.
#[derive(Debug, Clone, Default)]
pub struct RunArgs {
    /// Flags given: name without `--` → value (boolean flags without a value read `true`).
    pub flags: BTreeMap<String, String>,
    /// `--once`: run one cycle, print its CycleReport JSON on stdout and exit.
    pub once: bool,
}

/// Older flag names still accepted: alias → spec name.
const FLAG_ALIASES: &[(&str, &str)] = &[
    ("saturation-config-file", "saturation-config"),
    ("scale-to-zero-config-file", "scale-to-zero-config"),
];

/// One-line meaning of a flag for `--help` (spec/k8s.md §6.2; docs/configuration.md).
fn meaning(flag: &str) -> &'static str {
    match flag {
        "config-file" => "YAML file of KEY: value (environment names)",
        "kubeconfig" => "kubeconfig file; unset: in-cluster, else ~/.kube/config",
        "metrics-bind-address" => "/metrics listener: HOST:PORT, :PORT or 0 (off)",
        "health-probe-bind-address" => "/healthz and /readyz listener: HOST:PORT, :PORT or 0",
        "metrics-secure" => "TLS on the metrics listener",
        "metrics-cert-path" => "directory of the metrics certificate and key",
        "metrics-cert-name" => "certificate file name in --metrics-cert-path",
        "metrics-cert-key" => "key file name in --metrics-cert-path",
        "metrics-auth" => "none, kubernetes or static (default kubernetes when secure)",
        "metrics-auth-token-file" => "bearer token file for --metrics-auth static",
        "enable-http2" => "HTTP/2 on the metrics listener",
        "metrics-naming" => "per-variant family names: inferno, wva or both",
        "controller-instance" => "instance label value; adds controller_instance to every series",
        "leader-elect" => "elect a leader through a Lease",
        "leader-election-id" => "Lease name stem",
        "leader-election-lease-duration" => "Lease duration (whole seconds)",
        "leader-election-renew-deadline" => "renew deadline (whole seconds)",
        "leader-election-retry-period" => "delay after a Lease API error (whole seconds)",
        "watch-namespace" => "watch this namespace only",
        "interval" => "cycle period (Go duration)",
        "event-debounce" => "quiet time after a watch event before a cycle",
        "min-cycle-gap" => "minimum time between cycles",
        "actuation" => "metrics (for an HPA or KEDA) or direct (scale subresource)",
        "scale-from-zero" => "wake variants at zero replicas on pending requests",
        "scale-from-zero-interval" => "scale-from-zero poll period",
        "scale-from-zero-max-concurrency" => "concurrent scale-from-zero checks (> 0)",
        "scale-to-zero" => "whether models no scale-to-zero entry mentions may scale to zero",
        "limited-mode" => "log the GPU inventory every cycle",
        "gpu-node-selector" => "label selector of GPU nodes",
        "pool-group" => "InferencePool API group",
        "namespace-overrides" => "honour namespace-local ConfigMaps",
        "saturation-config-file" => "saturation scaling ConfigMap file (re-read on change)",
        "scale-to-zero-config-file" => "scale-to-zero ConfigMap file (re-read on change)",
        "rest-client-timeout" => "bound of every non-watch API call",
        "log-format" => "text or json",
        "log-level" => "tracing filter (else RUST_LOG, else info)",
        "standalone" => "run without Kubernetes: variants from --variants",
        "variants" => "multi-document YAML of VariantAutoscaling objects (standalone)",
        "prometheus-url" => "Prometheus base URL (other PROMETHEUS_* keys: environment or file)",
        _ => "see docs/configuration.md",
    }
}

/// True for keys whose value is a boolean: the flag may be given without a value.
fn is_boolean(key: &Key) -> bool {
    matches!(key.default, Some("true" | "false"))
}

impl clap::Args for RunArgs {
    fn augment_args(mut cmd: clap::Command) -> clap::Command {
        for key in KEYS {
            let Some(flag) = key.flag else { continue };
            let help = match key.default {
                Some(default) => format!("{} [env {}] [default {default}]", meaning(flag), key.env),
                None => format!("{} [env {}]", meaning(flag), key.env),
            };
            let mut arg = clap::Arg::new(flag)
                .long(flag)
                .help(help)
                .action(clap::ArgAction::Set)
                .value_name("VALUE");
            if is_boolean(key) {
                arg = arg.num_args(0..=1).default_missing_value("true");
            }
            for (name, alias) in FLAG_ALIASES {
                if *name == flag {
                    arg = arg.alias(*alias);
                }
            }
            cmd = cmd.arg(arg);
        }
        cmd.arg(
            clap::Arg::new("once")
                .long("once")
                .help("Run one cycle, print its CycleReport JSON on stdout and exit 0")
                .action(clap::ArgAction::SetTrue),
        )
    }

    fn augment_args_for_update(cmd: clap::Command) -> clap::Command {
        Self::augment_args(cmd)
    }
}

impl clap::FromArgMatches for RunArgs {
    fn from_arg_matches(matches: &clap::ArgMatches) -> Result<Self, clap::Error> {
        let mut args = RunArgs::default();
        args.update_from_arg_matches(matches)?;
        Ok(args)
    }

    fn update_from_arg_matches(&mut self, matches: &clap::ArgMatches) -> Result<(), clap::Error> {
        for key in KEYS {
            let Some(flag) = key.flag else { continue };
            let given = matches.value_source(flag) == Some(clap::parser::ValueSource::CommandLine);
            if given && let Some(value) = matches.get_one::<String>(flag) {
                self.flags.insert(flag.to_owned(), value.clone());
            }
        }
        self.once |= matches.get_flag("once");
        Ok(())
    }
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

/// Runs `run`: loads the configuration (exit 2 on the first error, spec/k8s.md §6.3), sets up
/// logging, then runs standalone or (not in this build) in the cluster.
pub fn run(args: RunArgs) -> ExitCode {
    let env = process_env();
    let loaded = match load_config(&args.flags, &env) {
        Ok(loaded) => loaded,
        Err(errors) => {
            eprintln!("error: {errors}");
            return ExitCode::from(2);
        }
    };
    init_logging(&loaded.config);
    for warning in &loaded.warnings {
        tracing::warn!("{warning}");
    }
    let config = loaded.config;
    if !config.standalone {
        return run_in_cluster(config, args.once);
    }
    let Some(variants) = config.variants_file.clone() else {
        eprintln!("error: --standalone needs --variants FILE");
        return ExitCode::from(2);
    };
    let files = match StandaloneFiles::load(
        Path::new(&variants),
        config.saturation_config_file.as_deref().map(Path::new),
        config.scale_to_zero_config_file.as_deref().map(Path::new),
    ) {
        Ok(f) => Arc::new(f),
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let (prometheus, cache) = match collector_config(&config) {
        Ok(pair) => pair,
        Err(code) => return code,
    };
    let once = args.once;
    let runtime = match runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    runtime.block_on(standalone(config, once, files, prometheus, cache))
}

/// The Prometheus client and cache settings from the `PROMETHEUS_*` keys (exit 2 on an error,
/// printed as spec/collector.md words it).
fn collector_config(config: &ManagerConfig) -> Result<(PrometheusConfig, CacheConfig), ExitCode> {
    match (
        PrometheusConfig::from_map(&config.prometheus),
        CacheConfig::from_map(&config.prometheus),
    ) {
        (Ok(p), Ok(c)) => Ok((p, c)),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("error: {e}");
            Err(ExitCode::from(2))
        }
    }
}

/// The manager's runtime: two worker threads (the work is I/O bound; fewer threads keep fewer
/// malloc arenas).
fn runtime() -> Result<tokio::runtime::Runtime, ExitCode> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| {
            eprintln!("error: cannot start the async runtime: {e}");
            ExitCode::FAILURE
        })
}

/// `--once`: runs one cycle and prints its `CycleReport` JSON on stdout.
pub async fn print_one_cycle(engine: &Engine) -> ExitCode {
    match engine.run_cycle(std::time::SystemTime::now()).await {
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
    }
}

/// The in-cluster mode: everything that can be checked without the API server is checked here
/// (exit 2), the rest happens in [`cluster::wiring::run`].
fn run_in_cluster(config: ManagerConfig, once: bool) -> ExitCode {
    let (prometheus, cache) = match collector_config(&config) {
        Ok(pair) => pair,
        Err(code) => return code,
    };
    let servers = match server_config(&config) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let exposition = ExpositionConfig {
        naming: naming(config.metrics_naming),
        controller_instance: config.controller_instance.clone(),
        ..ExpositionConfig::default()
    };
    let runtime = match runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    runtime.block_on(cluster::wiring::run(cluster::wiring::ClusterArgs {
        config,
        servers,
        exposition,
        prometheus,
        cache,
        once,
    }))
}

/// The process environment; variables that are not valid UTF-8 are skipped.
fn process_env() -> BTreeMap<String, String> {
    std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .collect()
}

/// Reads the config file (`--config-file`, else `WVA_CONFIG_FILE`) and loads the configuration
/// from the given flags, the environment and that file (spec/k8s.md §6.1).
pub fn load_config(
    flags: &BTreeMap<String, String>,
    env: &BTreeMap<String, String>,
) -> Result<Loaded, ConfigErrors> {
    let path = config::config_file_path(flags, env);
    let contents = match &path {
        Some(path) => match std::fs::read_to_string(path) {
            Ok(text) => Some(text),
            Err(e) => return Err(ConfigErrors(vec![ConfigError::cannot_read(path, &e)])),
        },
        None => None,
    };
    let file = match (&path, &contents) {
        (Some(path), Some(contents)) => Some(ConfigFileText { path, contents }),
        _ => None,
    };
    config::load(RawConfig { flags, env, file })
}

/// Installs the global subscriber with `--log-level` (else `RUST_LOG`, else `info`).
fn init_logging(config: &ManagerConfig) {
    let (filter, bad_level) = match EnvFilter::try_new(&config.log_level) {
        Ok(filter) => (filter, false),
        Err(_) => (EnvFilter::new("info"), true),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    let _ = match config.log_format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
    if bad_level {
        tracing::warn!(
            level = %config.log_level,
            "LOG_LEVEL is not a valid tracing filter; logging at info"
        );
    }
}

/// The exposition's listener address for a configured one (host names are resolved).
fn listen_address(address: &ConfigBindAddress) -> Result<BindAddress, String> {
    match address {
        ConfigBindAddress::Disabled => Ok(BindAddress::Disabled),
        ConfigBindAddress::Listen { host, port } => (host.as_str(), *port)
            .to_socket_addrs()
            .map_err(|e| e.to_string())?
            .next()
            .map(BindAddress::Addr)
            .ok_or_else(|| format!("{host} has no address")),
    }
}

/// The exposition's server settings from the configuration (standalone: `kubernetes`
/// authentication needs the API server, so the listener stays open with a WARN).
fn server_config(config: &ManagerConfig) -> Result<ServerConfig, String> {
    let bind = |address: &ConfigBindAddress, what: &str| {
        listen_address(address).map_err(|e| format!("cannot bind {address} for {what}: {e}"))
    };
    let auth = match config.metrics_auth {
        ConfigMetricsAuth::None => MetricsAuth::None,
        ConfigMetricsAuth::Static => {
            let path = config.metrics_auth_token_file.clone().unwrap_or_default();
            MetricsAuth::Static(StaticToken::load(&path).map_err(|e| e.to_string())?)
        }
        // In a cluster, `cluster::wiring` installs the TokenReview authorizer once it has a
        // client; standalone has no API server to ask.
        ConfigMetricsAuth::Kubernetes if config.standalone => {
            tracing::warn!(
                "--metrics-auth kubernetes needs a cluster; in standalone mode /metrics is not authenticated"
            );
            MetricsAuth::None
        }
        ConfigMetricsAuth::Kubernetes => MetricsAuth::None,
    };
    let tls = (config.metrics_secure || config.metrics_cert_path.is_some()).then(|| TlsConfig {
        cert_dir: config.metrics_cert_path.as_ref().map(PathBuf::from),
        cert_name: config.metrics_cert_name.clone(),
        key_name: config.metrics_cert_key.clone(),
        self_signed_names: std::iter::once("localhost".to_owned())
            .chain(config.pod_name.clone())
            .collect(),
        ..TlsConfig::default()
    });
    Ok(ServerConfig {
        metrics: bind(&config.metrics_bind_address, "metrics")?,
        probes: bind(&config.health_probe_bind_address, "health probes")?,
        enable_http2: config.enable_http2,
        auth,
        tls,
        ..ServerConfig::default()
    })
}

/// The exposition's family naming for the configured one.
fn naming(naming: ConfigMetricsNaming) -> MetricsNaming {
    match naming {
        ConfigMetricsNaming::Inferno => MetricsNaming::Inferno,
        ConfigMetricsNaming::Wva => MetricsNaming::Wva,
        ConfigMetricsNaming::Both => MetricsNaming::Both,
    }
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
    config: ManagerConfig,
    once: bool,
    files: Arc<StandaloneFiles>,
    prometheus: PrometheusConfig,
    cache: CacheConfig,
) -> ExitCode {
    let exposition = match Exposition::new(ExpositionConfig {
        naming: naming(config.metrics_naming),
        controller_instance: config.controller_instance.clone(),
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
        config.scale_to_zero,
    ));
    let engine = Engine::new(
        inventory,
        source.clone(),
        exposition.clone(),
        Arc::new(RememberTargets::new(desired)),
    )
    .with_schedule(Schedule {
        interval: config.interval,
        ..Schedule::default()
    });

    if once {
        return print_one_cycle(&engine).await;
    }

    let server = match server_config(&config) {
        Ok(server) => server,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let shutdown = CancellationToken::new();
    let servers = match exposition.serve(server, shutdown.clone()).await {
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
    tracing::info!(interval = ?config.interval, "standalone autoscaler started");
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

#[cfg(test)]
mod tests {
    use clap::{Args as _, FromArgMatches as _};

    use super::*;

    fn parse(argv: &[&str]) -> RunArgs {
        let cmd = RunArgs::augment_args(clap::Command::new("run").no_binary_name(true));
        RunArgs::from_arg_matches(&cmd.try_get_matches_from(argv).unwrap()).unwrap()
    }

    #[test]
    fn only_flags_given_on_the_command_line_are_recorded() {
        let args = parse(&["--interval", "15s", "--leader-elect", "--once"]);
        let expected: BTreeMap<String, String> = [("interval", "15s"), ("leader-elect", "true")]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        assert_eq!(args.flags, expected);
        assert!(args.once);
        assert!(parse(&[]).flags.is_empty());
    }

    #[test]
    fn old_file_flag_names_record_the_spec_names() {
        let args = parse(&[
            "--saturation-config",
            "s.yaml",
            "--scale-to-zero-config=z.yaml",
        ]);
        assert_eq!(args.flags["saturation-config-file"], "s.yaml");
        assert_eq!(args.flags["scale-to-zero-config-file"], "z.yaml");
    }

    #[test]
    fn boolean_flags_take_an_explicit_value() {
        let args = parse(&["--scale-to-zero", "false", "--standalone=true"]);
        assert_eq!(args.flags["scale-to-zero"], "false");
        assert_eq!(args.flags["standalone"], "true");
    }

    #[test]
    fn every_flag_has_a_help_line() {
        for key in KEYS {
            let flag = key.flag.unwrap_or_default();
            assert_ne!(meaning(flag), meaning(""), "--{flag} has no help line");
        }
    }
}
