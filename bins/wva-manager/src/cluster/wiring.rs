//! The in-cluster manager (spec/k8s.md §6.6): client → discovery → HTTP servers → reflectors and
//! ConfigMap loading → readiness → leader election → leader tasks (Prometheus check, collector
//! refresher, engine, controller). SIGTERM stops everything within 5 s with exit code 0; losing
//! the Lease clears the per-variant series and exits 1.

use std::process::ExitCode;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use arc_swap::ArcSwap;
use kube::Client;
use tokio_util::sync::CancellationToken;
use wva_collector::{
    CacheConfig, CatalogueConfig, MetricsSource, PrometheusConfig, PrometheusSource, QueryGroup,
};
use wva_engine::{CycleRequester, Engine, Schedule, SelfMetricsObserver};
use wva_exposition::{Exposition, ExpositionConfig, MetricsAuth, ServerConfig, VariantKey};
use wva_k8s::config::{Actuation, ManagerConfig, MetricsAuth as ConfigMetricsAuth};
use wva_k8s::controller::context::leader_worker_set_resource;
use wva_k8s::controller::{
    Context, FilterSource, KubeActuator, KubeInventory, OutcomeBoard, Settings, WakeOptions,
    run_controller, start_scale_from_zero,
};
use wva_k8s::handles::{
    ActiveConfig, ConfigHandle, TriggerSenders, Triggers, VaDeletedHook, trigger_channels,
};
use wva_k8s::lease::lease_params;
use wva_k8s::metrics_auth::KubeTokenAuthorizer;
use wva_k8s::runtime::config_watch::{ConfigReloadOptions, start_config_reload};
use wva_k8s::runtime::leader::{LeaderOptions, start_leader_election};
use wva_k8s::runtime::reflectors::{ReflectorOptions, start_reflectors};

use super::client::{self, OptionalApis, inference_pool_version};

/// Slots of each trigger channel between the reflectors and the controller.
const TRIGGER_CAPACITY: usize = 1024;
/// How long shutdown may take before the process exits anyway.
const SHUTDOWN_BUDGET: Duration = Duration::from_secs(4);
/// The default `PROMETHEUS_METRICS_CACHE_FRESH_THRESHOLD`, as written in conditions.
const DEFAULT_FRESH_THRESHOLD: &str = "1m";

/// Everything `run` resolved before the runtime started.
pub struct ClusterArgs {
    /// The loaded configuration.
    pub config: ManagerConfig,
    /// The exposition's listeners.
    pub servers: ServerConfig,
    /// The exposition's settings.
    pub exposition: ExpositionConfig,
    /// The Prometheus client settings.
    pub prometheus: PrometheusConfig,
    /// The collector's cache settings.
    pub cache: CacheConfig,
    /// `--once`: one cycle, its report on stdout, exit 0.
    pub once: bool,
}

/// Runs the manager in a cluster until SIGTERM (or one cycle with `--once`).
pub async fn run(args: ClusterArgs) -> ExitCode {
    let ClusterArgs {
        config,
        mut servers,
        exposition: exposition_config,
        prometheus,
        cache,
        once,
    } = args;

    let client = match client::build_client(&config).await {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{}", e.startup_line());
            return ExitCode::FAILURE;
        }
    };
    if let Err(e) = client::check_crd_served(&client).await {
        eprintln!("{}", e.startup_line());
        return ExitCode::FAILURE;
    }
    let apis = client::discover_optional(&client, &config).await;
    for (file, configmap) in [
        (
            &config.saturation_config_file,
            &config.saturation_config_map,
        ),
        (
            &config.scale_to_zero_config_file,
            &config.scale_to_zero_config_map,
        ),
    ] {
        if let Some(file) = file {
            tracing::warn!(
                %file,
                %configmap,
                "config files replace the global ConfigMaps only in standalone mode in this release; reading the ConfigMap"
            );
        }
    }
    if config.metrics_auth == ConfigMetricsAuth::Kubernetes {
        servers.auth = MetricsAuth::Delegated(Arc::new(KubeTokenAuthorizer::new(client.clone())));
    }

    let exposition = match Exposition::new(exposition_config) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let shutdown = CancellationToken::new();
    let http = if once {
        None
    } else {
        match exposition.serve(servers, shutdown.clone()).await {
            Ok(s) => Some(s),
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
        }
    };
    tokio::spawn(crate::run::signal_shutdown(shutdown.clone()));

    let code = Manager::start(client, &config, apis, exposition.clone(), prometheus, cache)
        .drive(&config, once, shutdown.clone())
        .await;
    shutdown.cancel();
    if let Some(http) = http {
        let _ = tokio::time::timeout(SHUTDOWN_BUDGET, http.wait()).await;
    }
    code
}

/// The pieces every replica runs, and what the leader adds.
struct Manager {
    client: Client,
    exposition: Exposition,
    reflectors: wva_k8s::runtime::reflectors::Reflectors,
    reload: wva_k8s::runtime::config_watch::ConfigReload,
    config_handle: ConfigHandle,
    context_cell: Arc<OnceLock<Arc<Context>>>,
    requester: Arc<OnceLock<CycleRequester>>,
    senders: TriggerSenders,
    triggers: Option<Triggers>,
    board: OutcomeBoard,
    inventory: Arc<KubeInventory>,
    prometheus: PrometheusConfig,
    cache: CacheConfig,
}

impl Manager {
    /// Starts reflectors and ConfigMap loading (every replica does, so a new leader starts
    /// with warm caches).
    fn start(
        client: Client,
        config: &ManagerConfig,
        apis: OptionalApis,
        exposition: Exposition,
        prometheus: PrometheusConfig,
        cache: CacheConfig,
    ) -> Manager {
        let (senders, triggers) = trigger_channels(TRIGGER_CAPACITY);
        let context_cell: Arc<OnceLock<Arc<Context>>> = Arc::default();
        let requester: Arc<OnceLock<CycleRequester>> = Arc::default();

        let on_va_deleted: VaDeletedHook = {
            let exposition = exposition.clone();
            let context_cell = context_cell.clone();
            Arc::new(move |va| {
                let namespace = va.metadata.namespace.clone().unwrap_or_default();
                let name = va.metadata.name.clone().unwrap_or_default();
                exposition.remove_variant(&VariantKey::new(namespace, name));
                if let Some(context) = context_cell.get() {
                    context.forget(va);
                }
            })
        };
        let reflectors = start_reflectors(
            client.clone(),
            ReflectorOptions {
                watch_namespace: config.watch_namespace.clone(),
                controller_instance: config.controller_instance.clone(),
                leader_worker_sets: apis.leader_worker_sets.then(leader_worker_set_resource),
                inference_pools: (apis.inference_pools && config.scale_from_zero)
                    .then(|| inference_pool_resource(config.pool_group.as_str())),
                hpas: apis.hpas && config.actuation == Actuation::Direct,
                // Always watched (a stripped projection): a ConfigMap edit that turns the
                // limiter on then works without a restart.
                nodes: Some(config.gpu_node_selector.clone().unwrap_or_default()),
            },
            senders.clone(),
            on_va_deleted,
        );
        let stores = reflectors.stores.clone();

        let config_handle: ConfigHandle = Arc::new(ArcSwap::from_pointee(ActiveConfig::default()));
        let reload = start_config_reload(
            client.clone(),
            ConfigReloadOptions {
                pod_namespace: config.pod_namespace.clone(),
                pod_name: config.pod_name.clone(),
                watch_namespace: config.watch_namespace.clone(),
                namespace_overrides: config.namespace_overrides,
                saturation_name: config.saturation_config_map.clone(),
                scale_to_zero_name: config.scale_to_zero_config_map.clone(),
            },
            config_handle.clone(),
            stores.clone(),
            reflectors.namespaces_changed.clone(),
            Some(exposition.self_metrics().clone()),
            {
                let requester = requester.clone();
                let senders = senders.clone();
                Arc::new(move || {
                    senders.request_reconcile_all();
                    if let Some(r) = requester.get() {
                        r.request();
                    }
                })
            },
        );

        let board = OutcomeBoard::new();
        let filters = FilterSource::new(
            config.controller_instance.clone(),
            config.watch_namespace.clone(),
            stores.namespaces.clone(),
        );
        let inventory = Arc::new(KubeInventory::new(
            stores,
            config_handle.clone(),
            filters,
            board.clone(),
            config.scale_to_zero,
        ));
        Manager {
            client,
            exposition,
            reflectors,
            reload,
            config_handle,
            context_cell,
            requester,
            senders,
            triggers: Some(triggers),
            board,
            inventory,
            prometheus,
            cache,
        }
    }

    /// Waits for readiness, leadership, then runs the leader's tasks until shutdown or the
    /// loss of the Lease.
    async fn drive(
        mut self,
        config: &ManagerConfig,
        once: bool,
        shutdown: CancellationToken,
    ) -> ExitCode {
        let readiness = self
            .exposition
            .readiness()
            .add_check("caches", "reflectors and ConfigMaps are loading");
        let ready = self.reflectors.wait_until_ready();
        tokio::select! {
            () = shutdown.cancelled() => return ExitCode::SUCCESS,
            ok = async { ready.await && self.reload.wait_until_ready().await } => {
                if !ok {
                    eprintln!("error: a watcher stopped before its initial list");
                    return ExitCode::FAILURE;
                }
            }
        }
        readiness.set_ready();
        tracing::info!("caches synced and configuration loaded");

        let leadership = start_leader_election(
            self.client.clone(),
            LeaderOptions {
                enabled: config.leader_elect && !once,
                namespace: config.pod_namespace.clone(),
                params: lease_params(
                    &config.leader_election_id,
                    config.controller_instance.as_deref(),
                    config.pod_name.as_deref().unwrap_or("wva-manager"),
                    &config.lease,
                ),
            },
            shutdown.clone(),
        );
        tokio::select! {
            () = shutdown.cancelled() => {
                leadership.finished().await;
                return ExitCode::SUCCESS;
            }
            led = leadership.wait_for_leadership() => {
                if !led {
                    return ExitCode::SUCCESS;
                }
            }
        }
        self.exposition.set_leader(true);
        tracing::info!("leading: starting the controller and the engine");

        let source = match self.collector() {
            Ok(s) => s,
            Err(line) => {
                eprintln!("{line}");
                return ExitCode::FAILURE;
            }
        };
        if let Err(e) = source.startup_check().await {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
        let threshold = config
            .prometheus
            .get("PROMETHEUS_METRICS_CACHE_FRESH_THRESHOLD")
            .cloned()
            .unwrap_or_else(|| DEFAULT_FRESH_THRESHOLD.to_owned());
        let senders = self.senders.clone();
        let actuator = KubeActuator::new(self.board.clone(), threshold, move || {
            senders.request_reconcile_all()
        });
        let engine = Engine::new(
            self.inventory.clone(),
            source.clone(),
            self.exposition.clone(),
            Arc::new(actuator),
        )
        .with_schedule(Schedule {
            interval: config.interval,
            debounce: config.event_debounce,
            min_gap: config.min_cycle_gap,
        })
        .with_leader_gate(leadership.is_leader.clone());
        let _ = self.requester.set(engine.requester());
        let context = Arc::new(
            Context::new(
                self.client.clone(),
                self.reflectors.stores.clone(),
                Settings::from_config(config, self.reflectors.stores.namespaces.clone()),
                self.board.clone(),
            )
            .with_self_metrics(self.exposition.self_metrics().clone())
            .with_cycle_requester(engine.requester()),
        );
        let _ = self.context_cell.set(context.clone());

        if once {
            return crate::run::print_one_cycle(&engine).await;
        }

        let refresher = source.clone().spawn_background(shutdown.child_token());
        let controller = self.triggers.take().map(|triggers| {
            let stop = shutdown.clone();
            tokio::spawn(run_controller(context.clone(), triggers, async move {
                stop.cancelled().await
            }))
        });
        let waker = self.reflectors.stores.inference_pools.is_some().then(|| {
            start_scale_from_zero(
                context.clone(),
                self.inventory.clone(),
                self.exposition.clone(),
                WakeOptions {
                    interval: config.scale_from_zero_interval,
                    max_concurrency: usize::try_from(config.scale_from_zero_max_concurrency)
                        .unwrap_or(1),
                    bearer_token: config.epp_bearer_token.as_ref().map(|t| t.0.clone()),
                    ..WakeOptions::default()
                },
                shutdown.child_token(),
            )
        });
        let lost = leadership.lost.clone();
        let code = tokio::select! {
            () = engine.run(shutdown.clone()) => ExitCode::SUCCESS,
            () = lost.cancelled() => {
                tracing::error!("leader election lost; exiting");
                self.exposition.clear_variants();
                self.exposition.set_leader(false);
                ExitCode::FAILURE
            }
        };
        shutdown.cancel();
        let _ = tokio::time::timeout(SHUTDOWN_BUDGET, async {
            let _ = refresher.await;
            if let Some(controller) = controller {
                let _ = controller.await;
            }
            if let Some(waker) = waker {
                let _ = waker.await;
            }
            leadership.finished().await;
        })
        .await;
        drop(self.config_handle);
        tracing::info!("stopped");
        code
    }

    /// The Prometheus collector of the leader, reading the variants' pods from the stores.
    fn collector(&self) -> Result<Arc<PrometheusSource>, String> {
        let observer = Arc::new(SelfMetricsObserver::new(self.exposition.clone()));
        let mut groups = vec![QueryGroup::Core, QueryGroup::ScaleToZero];
        if uses_token_analyzer(&self.config_handle.load()) {
            groups.push(QueryGroup::SaturationV2);
        }
        PrometheusSource::new(
            self.prometheus.clone(),
            CatalogueConfig::with_groups(groups),
            self.cache.clone(),
            Arc::new(self.inventory.directory()),
            Some(observer),
        )
        .map_err(|e| format!("error: {e}"))
    }
}

/// Whether any saturation entry in force selects the token-based (V2) analyzer; its query
/// group is then part of every batch.
fn uses_token_analyzer(active: &ActiveConfig) -> bool {
    active
        .saturation
        .entries()
        .values()
        .any(|e| e.analyzer_name.as_deref() == Some("saturation"))
}

/// The InferencePool resource of `POOL_GROUP` (scale from zero's pools).
fn inference_pool_resource(group: &str) -> kube::api::ApiResource {
    let version = inference_pool_version(group);
    kube::api::ApiResource {
        group: group.to_owned(),
        version: version.to_owned(),
        api_version: format!("{group}/{version}"),
        kind: "InferencePool".to_owned(),
        plural: "inferencepools".to_owned(),
    }
}
