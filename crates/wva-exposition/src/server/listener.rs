//! One HTTP listener: bounded accept loop, hyper connections, graceful drain on shutdown.

use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::exposition::Exposition;
use crate::server::auth::MetricsAuth;
use crate::server::routes::{ListenerKind, handle};
use crate::server::tls::MetricsTls;

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

/// What every connection of a listener shares.
#[derive(Clone)]
pub(crate) struct ConnectionContext {
    /// Which listener.
    pub(crate) kind: ListenerKind,
    /// The registry and probe state.
    pub(crate) exposition: Exposition,
    /// Bearer-token protection.
    pub(crate) auth: MetricsAuth,
    /// TLS, when on.
    pub(crate) tls: Option<MetricsTls>,
}

/// Serves one connection over `io` until it ends or the graceful shutdown closes it.
async fn serve_io<I>(
    builder: &Builder<TokioExecutor>,
    io: I,
    context: &ConnectionContext,
    watcher: Watcher,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>>
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let exposition = context.exposition.clone();
    let auth = context.auth.clone();
    let kind = context.kind;
    let service =
        service_fn(move |request| handle(exposition.clone(), kind, auth.clone(), request));
    watcher
        .watch(builder.serve_connection(TokioIo::new(io), service))
        .await
}

/// Serves `listener` until `shutdown`, then drains connections for at most the drain timeout.
pub(crate) async fn run(
    listener: TcpListener,
    context: ConnectionContext,
    settings: ListenerSettings,
    shutdown: CancellationToken,
) {
    let kind = context.kind;
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
        let context = context.clone();
        let builder = Arc::clone(&builder);
        let watcher = graceful.watcher();
        let handshake_timeout = settings.header_read_timeout;
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            let served = match &context.tls {
                None => serve_io(&builder, stream, &context, watcher).await,
                Some(tls) => {
                    let handshake =
                        tokio::time::timeout(handshake_timeout, tls.acceptor().accept(stream));
                    let tls_stream = tokio::select! {
                        _ = shutdown.cancelled() => return,
                        done = handshake => match done {
                            Ok(Ok(tls_stream)) => tls_stream,
                            Ok(Err(error)) => {
                                tracing::debug!(listener = kind.name(), %peer, %error, "TLS handshake failed");
                                return;
                            }
                            Err(_) => {
                                tracing::debug!(listener = kind.name(), %peer, "TLS handshake timed out");
                                return;
                            }
                        },
                    };
                    serve_io(&builder, tls_stream, &context, watcher).await
                }
            };
            if let Err(error) = served {
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
