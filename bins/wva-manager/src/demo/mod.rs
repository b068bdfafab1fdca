//! `wva-manager demo`: the autoscaler on a simulated vLLM fleet, no cluster and no Prometheus
//! needed. The real engine, collector (scraping the emulated pods), core and exposition run;
//! only the fleet is simulated.

mod adapters;
mod view;

use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use wva_collector::{CatalogueConfig, MetricsSource, QueryGroup, ScrapeConfig, ScrapeSource};
use wva_engine::{Engine, Schedule, SelfMetricsObserver};
use wva_exposition::{BindAddress, Exposition, ExpositionConfig, ServerConfig};
use wva_sim::{ClockMode, Fleet, FleetOptions, HpaConfig, Scenario};

use self::adapters::{FleetActuator, FleetDirectory, FleetInventory, Published};
use self::view::{Output, TerminalGuard, Tracker};
use crate::logging::{self, LogFormat};
use crate::run::parse_duration;

/// Window of the KV and queue peaks in the demo.
const DEMO_PEAK_WINDOW: Duration = Duration::from_secs(5);

/// Arguments of `demo`.
#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Built-in scenario name or a scenario YAML file.
    #[arg(long, default_value = "demo")]
    pub scenario: String,
    /// How long to run (default: the scenario's own duration).
    #[arg(long, value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// Seed of every random stream of the fleet.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Engine cycle interval.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub interval: Duration,
    /// Pod startup delay.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub startup_delay: Duration,
    /// Address of /metrics (`0` disables).
    #[arg(long, default_value = "0.0.0.0:8080")]
    pub metrics_bind_address: BindAddress,
    /// table (terminal default), lines (default when piped) or json.
    #[arg(long, value_enum)]
    pub output: Option<Output>,
    /// Scale-down stabilisation window of the emulated HPA; `0s` applies decisions directly.
    #[arg(long, default_value = "30s", value_parser = parse_hpa_window)]
    pub hpa_down_window: Duration,
    /// Print the built-in scenarios and exit.
    #[arg(long)]
    pub list_scenarios: bool,
}

fn parse_hpa_window(text: &str) -> Result<Duration, String> {
    if text == "0" || text == "0s" {
        return Ok(Duration::ZERO);
    }
    parse_duration(text)
}

/// Runs `demo`.
pub fn run(args: DemoArgs) -> ExitCode {
    if args.list_scenarios {
        for (name, description) in Scenario::list() {
            println!("{name:<16} {description}");
        }
        return ExitCode::SUCCESS;
    }
    let output = args.output.unwrap_or(if std::io::stdout().is_terminal() {
        Output::Table
    } else {
        Output::Lines
    });
    // In table mode logs would tear the table: only warnings and errors.
    let level = if output == Output::Table {
        "warn"
    } else {
        "info"
    };
    logging::init(LogFormat::Text, level);
    let mut scenario = match Scenario::load(&args.scenario) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: --scenario {}: {e}", args.scenario);
            return ExitCode::from(2);
        }
    };
    scenario.config.seed = args.seed;
    scenario.config.startup_delay = args.startup_delay;
    let duration = args.duration.unwrap_or(scenario.duration);
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
    runtime.block_on(demo(args, scenario, duration, output))
}

async fn demo(args: DemoArgs, scenario: Scenario, duration: Duration, output: Output) -> ExitCode {
    let name = scenario.name.clone();
    let fleet = match Fleet::start_with(
        scenario.config,
        FleetOptions {
            clock: ClockMode::Real,
            ..FleetOptions::default()
        },
    )
    .await
    {
        Ok(f) => f,
        Err(e) => {
            eprintln!("error: cannot start the simulated fleet: {e}");
            return ExitCode::FAILURE;
        }
    };
    let exposition = match Exposition::new(ExpositionConfig::default()) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let shutdown = CancellationToken::new();
    let servers = match exposition
        .serve(
            ServerConfig {
                metrics: args.metrics_bind_address,
                probes: BindAddress::Disabled,
                ..ServerConfig::default()
            },
            shutdown.clone(),
        )
        .await
    {
        Ok(s) => s,
        Err(e) => {
            eprintln!(
                "error: {e}; choose another address with --metrics-bind-address (e.g. 127.0.0.1:0)"
            );
            fleet.shutdown().await;
            return ExitCode::FAILURE;
        }
    };

    // Peaks over 5 s instead of Prometheus's minute, so that a scale-down shows within the
    // one-minute default scenario (its load drops at 35 s).
    let scrape = ScrapeConfig {
        scrape_interval: Duration::from_secs(1),
        peak_window: DEMO_PEAK_WINDOW,
        ..ScrapeConfig::default()
    };
    let source = match ScrapeSource::new(
        scrape,
        CatalogueConfig::with_groups([QueryGroup::Core, QueryGroup::SaturationV2]),
        Arc::new(FleetDirectory::new(fleet.clone())),
        Some(Arc::new(SelfMetricsObserver::new(exposition.clone()))),
    ) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let published = Published::default();
    let hpa = (!args.hpa_down_window.is_zero()).then(|| HpaConfig {
        down_window: args.hpa_down_window,
        ..HpaConfig::default()
    });
    let engine = Arc::new(
        Engine::new(
            Arc::new(FleetInventory::new(fleet.clone(), published.clone())),
            source.clone(),
            exposition.clone(),
            Arc::new(FleetActuator::new(fleet.clone(), published, hpa)),
        )
        .with_schedule(Schedule {
            interval: args.interval,
            ..Schedule::default()
        }),
    );
    let refresher = source.clone().spawn_background(shutdown.child_token());
    let engine_task = tokio::spawn({
        let engine = engine.clone();
        let token = shutdown.child_token();
        async move { engine.run(token).await }
    });
    if let Some(addr) = servers.metrics_addr() {
        eprintln!("serving /metrics on http://{addr}/metrics");
    }

    let guard = (output == Output::Table).then(TerminalGuard::install);
    let mut tracker = Tracker::default();
    let started = tokio::time::Instant::now();
    let end = started + duration;
    let mut ticker = tokio::time::interval(Duration::from_secs(1));
    let interrupted = loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break true,
            _ = ticker.tick() => {}
        }
        let snap = fleet.snapshot();
        tracker.sample(&snap);
        let fresh = engine.last_report().filter(|r| tracker.observe(r));
        let mut stdout = std::io::stdout();
        match output {
            Output::Table => {
                let text = view::table(&name, duration.as_secs_f64(), args.seed, &snap, &tracker);
                let _ = write!(stdout, "\x1b[H\x1b[2J{text}");
            }
            Output::Lines => {
                if let Some(r) = fresh {
                    let _ = write!(stdout, "{}", view::lines(&r, &snap));
                }
            }
            Output::Json => {
                if let Some(r) = fresh {
                    let _ = write!(stdout, "{}", view::json_lines(&r, &snap));
                }
            }
        }
        let _ = stdout.flush();
        if tokio::time::Instant::now() >= end {
            break false;
        }
    };
    drop(guard);
    shutdown.cancel();
    let snap = fleet.snapshot();
    tracker.sample(&snap);
    if interrupted {
        println!("\ninterrupted");
    }
    print!(
        "\n{}",
        view::summary(&snap, &tracker, duration.as_secs_f64())
    );
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        let _ = engine_task.await;
        let _ = refresher.await;
        servers.wait().await;
        fleet.shutdown().await;
    })
    .await;
    ExitCode::SUCCESS
}
