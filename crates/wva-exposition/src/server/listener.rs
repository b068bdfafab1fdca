//! One HTTP listener: bounded accept loop, hyper connections, graceful drain on shutdown.

use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::exposition::Exposition;
use crate::server::auth::MetricsAuth;
use crate::server::routes::{ListenerKind, handle};

/// Tunables of a listener (spec/exposition.md §7).
#[derive(Debug, Clone)]
pub(crate) struct ListenerSettings {
    /// Offer HTTP/2 besides HTTP/1.1.
    pub(crate) enable_http2: bool,
    /// Time allowed for a client to send its request headers.
    pub(crate) header_read_timeout: Duration,
    /// Connections served at once; further accepts wait.
    pub(crate) max_connections: usize,
    /// How long in-flight requests may run on after shutdown.
    pub(crate) drain_timeout: Duration,
}

/// Pause after a failed `accept` (e.g. out of file descriptors) before trying again.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Serves `listener` until `shutdown`, then drains connections for at most the drain timeout.
pub(crate) async fn run(
    listener: TcpListener,
    kind: ListenerKind,
    exposition: Exposition,
    auth: MetricsAuth,
    settings: ListenerSettings,
    shutdown: CancellationToken,
) {
    let mut builder = Builder::new(TokioExecutor::new());
    if !settings.enable_http2 {
        builder = builder.http1_only();
    }
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(settings.header_read_timeout);
    let builder = Arc::new(builder);
    let permits = Arc::new(Semaphore::new(settings.max_connections));
    let graceful = GracefulShutdown::new();
    loop {
        let permit = tokio::select! {
            _ = shutdown.cancelled() => break,
            permit = Arc::clone(&permits).acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
        };
        let (stream, peer) = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    tracing::warn!(listener = kind.name(), %error, "accept failed");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            },
        };
        let exposition = exposition.clone();
        let auth = auth.clone();
        let service =
            service_fn(move |request| handle(exposition.clone(), kind, auth.clone(), request));
        let builder = Arc::clone(&builder);
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let connection = builder.serve_connection(TokioIo::new(stream), service);
            if let Err(error) = watcher.watch(connection).await {
                tracing::debug!(listener = kind.name(), %peer, %error, "connection ended with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    if tokio::time::timeout(settings.drain_timeout, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            listener = kind.name(),
            "in-flight requests still running after the drain timeout; closing"
        );
    }
}
