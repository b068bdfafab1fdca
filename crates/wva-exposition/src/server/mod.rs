//! The HTTP servers: metrics (`/metrics`, `/debug/cycle`) and probes (`/healthz`, `/readyz`).

mod auth;
mod bind;
mod listener;
mod routes;
mod tls;

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use auth::{
    AuthorizeFuture, DELEGATED_AUTH_TIMEOUT, MetricsAuth, StaticToken, TOKEN_POLL_INTERVAL,
    TokenAuthorizer, TokenVerdict,
};
pub use bind::BindAddress;
pub use tls::TlsConfig;

use crate::error::ExpositionError;
use crate::exposition::Exposition;
use listener::{ConnectionContext, ListenerSettings};
use routes::ListenerKind;
use tls::MetricsTls;

/// Configuration of both listeners.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// `--metrics-bind-address` (default `0.0.0.0:8080`).
    pub metrics: BindAddress,
    /// `--health-probe-bind-address` (default `0.0.0.0:8081`).
    pub probes: BindAddress,
    /// `--enable-http2`: offer HTTP/2 on the listeners.
    pub enable_http2: bool,
    /// Protection of the metrics listener.
    pub auth: MetricsAuth,
    /// TLS on the metrics listener (`--metrics-secure` or `--metrics-cert-path`); `None` is plain HTTP.
    pub tls: Option<TlsConfig>,
    /// Time allowed to send request headers (10 s).
    pub header_read_timeout: Duration,
    /// Concurrent connections per listener (256).
    pub max_connections: usize,
    /// Drain time for in-flight requests on shutdown (2 s).
    pub drain_timeout: Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            metrics: BindAddress::default_metrics(),
            probes: BindAddress::default_probes(),
            enable_http2: false,
            auth: MetricsAuth::None,
            tls: None,
            header_read_timeout: Duration::from_secs(10),
            max_connections: 256,
            drain_timeout: Duration::from_secs(2),
        }
    }
}

/// The running servers.
#[derive(Debug)]
pub struct Servers {
    metrics_addr: Option<SocketAddr>,
    probes_addr: Option<SocketAddr>,
    tasks: Vec<JoinHandle<()>>,
}

impl Servers {
    /// Where the metrics listener is bound, `None` when disabled.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_addr
    }

    /// Where the probes listener is bound, `None` when disabled.
    pub fn probes_addr(&self) -> Option<SocketAddr> {
        self.probes_addr
    }

    /// Waits until every listener has stopped (after the shutdown token was cancelled).
    pub async fn wait(self) {
        for task in self.tasks {
            if let Err(error) = task.await {
                tracing::error!(%error, "HTTP server task failed");
            }
        }
    }
}

/// Binds `address` for the listener `kind`, with the address actually bound; `None` when disabled.
async fn bind(
    address: BindAddress,
    kind: ListenerKind,
) -> Result<Option<(TcpListener, SocketAddr)>, ExpositionError> {
    let BindAddress::Addr(address) = address else {
        return Ok(None);
    };
    let wrap = |source| ExpositionError::Bind {
        address,
        listener: kind.name(),
        source,
    };
    let listener = TcpListener::bind(address).await.map_err(wrap)?;
    let bound = listener.local_addr().map_err(wrap)?;
    Ok(Some((listener, bound)))
}

impl Exposition {
    /// Binds both listeners and serves them until `shutdown` is cancelled; then stops accepting
    /// and lets in-flight requests finish within the drain timeout. A bind failure is returned
    /// before anything is served.
    pub async fn serve(
        &self,
        config: ServerConfig,
        shutdown: CancellationToken,
    ) -> Result<Servers, ExpositionError> {
        let tls = match (&config.tls, config.metrics) {
            (Some(tls), BindAddress::Addr(_)) => Some(MetricsTls::new(tls, config.enable_http2)?),
            _ => None,
        };
        let metrics = bind(config.metrics, ListenerKind::Metrics).await?;
        let probes = bind(config.probes, ListenerKind::Probes).await?;
        let settings = ListenerSettings {
            enable_http2: config.enable_http2,
            header_read_timeout: config.header_read_timeout,
            max_connections: config.max_connections.max(1),
            drain_timeout: config.drain_timeout,
        };
        let mut servers = Servers {
            metrics_addr: None,
            probes_addr: None,
            tasks: Vec::new(),
        };
        if let MetricsAuth::Static(token) = &config.auth {
            servers.tasks.push(token.spawn_reloader(shutdown.clone()));
        }
        if let Some(reloader) = tls
            .as_ref()
            .and_then(|t| t.spawn_reloader(shutdown.clone()))
        {
            servers.tasks.push(reloader);
        }
        for (listener, kind) in [
            (metrics, ListenerKind::Metrics),
            (probes, ListenerKind::Probes),
        ] {
            let Some((listener, addr)) = listener else {
                continue;
            };
            match kind {
                ListenerKind::Metrics => servers.metrics_addr = Some(addr),
                ListenerKind::Probes => servers.probes_addr = Some(addr),
            }
            tracing::info!(listener = kind.name(), %addr, "serving");
            let context = ConnectionContext {
                kind,
                exposition: self.clone(),
                auth: match kind {
                    ListenerKind::Metrics => config.auth.clone(),
                    ListenerKind::Probes => MetricsAuth::None,
                },
                tls: match kind {
                    ListenerKind::Metrics => tls.clone(),
                    ListenerKind::Probes => None,
                },
            };
            servers.tasks.push(tokio::spawn(listener::run(
                listener,
                context,
                settings.clone(),
                shutdown.clone(),
            )));
        }
        Ok(servers)
    }
}
