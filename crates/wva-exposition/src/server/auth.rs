//! Bearer-token protection of the metrics listener: `none`, `static`, or delegated to a
//! [`TokenAuthorizer`] such as Kubernetes TokenReview + SubjectAccessReview (spec/exposition.md §8).

use std::fmt;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, SystemTime};

use http::HeaderMap;
use http::header::AUTHORIZATION;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::error::ExpositionError;

/// How often the static token file is checked for changes.
pub const TOKEN_POLL_INTERVAL: Duration = Duration::from_secs(10);

/// Longest wait for a [`TokenAuthorizer`] verdict before answering 503.
pub const DELEGATED_AUTH_TIMEOUT: Duration = Duration::from_secs(5);

/// Verdict of a [`TokenAuthorizer`] on one bearer token and path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenVerdict {
    /// Authenticated and allowed to `get` the path.
    Allowed,
    /// The token is not authenticated (401).
    Unauthenticated,
    /// Authenticated but not allowed (403).
    Forbidden,
}

/// The future returned by [`TokenAuthorizer::authorize`]; `Err` is a backend failure (503).
pub type AuthorizeFuture<'a> =
    Pin<Box<dyn Future<Output = Result<TokenVerdict, String>> + Send + 'a>>;

/// Decides whether a bearer token may `get` a path (`--metrics-auth=kubernetes`).
///
/// The server bounds each call by [`DELEGATED_AUTH_TIMEOUT`]. Implementations must never log
/// or keep the raw token, and an error message must not contain it.
pub trait TokenAuthorizer: Send + Sync {
    /// Reviews `token` for a `get` on `path` (`/metrics` or `/debug/cycle`).
    fn authorize<'a>(&'a self, token: &'a str, path: &'a str) -> AuthorizeFuture<'a>;
}

/// Authentication mode of `/metrics` and `/debug/cycle`.
#[derive(Clone, Default)]
pub enum MetricsAuth {
    /// No authentication (`--metrics-auth=none`).
    #[default]
    None,
    /// `Authorization: Bearer <token>` must match the token file (`--metrics-auth=static`).
    Static(StaticToken),
    /// The bearer token is reviewed by an authorizer (`--metrics-auth=kubernetes`).
    Delegated(Arc<dyn TokenAuthorizer>),
}

impl fmt::Debug for MetricsAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MetricsAuth::None => f.write_str("None"),
            MetricsAuth::Static(token) => f.debug_tuple("Static").field(token).finish(),
            MetricsAuth::Delegated(_) => f.write_str("Delegated(..)"),
        }
    }
}

/// Result of checking one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AuthCheck {
    /// No authentication configured.
    NotRequired,
    /// The token matched.
    Allowed,
    /// Missing or wrong token.
    Unauthenticated,
    /// Authenticated but not authorised.
    Forbidden,
    /// The authorizer failed or timed out.
    Unavailable,
}

/// The trimmed bearer token of the `Authorization` header, if any.
fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .map(str::trim)
}

impl MetricsAuth {
    /// Checks the `Authorization` header of a request for `path`.
    pub(crate) async fn check(&self, headers: &HeaderMap, path: &str) -> AuthCheck {
        match self {
            MetricsAuth::None => AuthCheck::NotRequired,
            MetricsAuth::Static(token) => match bearer_token(headers) {
                Some(presented) if token.matches(presented) => AuthCheck::Allowed,
                _ => AuthCheck::Unauthenticated,
            },
            MetricsAuth::Delegated(authorizer) => {
                let Some(token) = bearer_token(headers).filter(|t| !t.is_empty()) else {
                    return AuthCheck::Unauthenticated;
                };
                let review = authorizer.authorize(token, path);
                match tokio::time::timeout(DELEGATED_AUTH_TIMEOUT, review).await {
                    Ok(Ok(TokenVerdict::Allowed)) => AuthCheck::Allowed,
                    Ok(Ok(TokenVerdict::Unauthenticated)) => AuthCheck::Unauthenticated,
                    Ok(Ok(TokenVerdict::Forbidden)) => AuthCheck::Forbidden,
                    Ok(Err(error)) => {
                        tracing::warn!(%error, path, "metrics authentication backend failed");
                        AuthCheck::Unavailable
                    }
                    Err(_) => {
                        tracing::warn!(path, "metrics authentication backend timed out");
                        AuthCheck::Unavailable
                    }
                }
            }
        }
    }
}

/// Modification time and size of the token file when last read.
type Stamp = (Option<SystemTime>, u64);

/// The trimmed content of a token file, re-read when the file changes. Cheap to clone.
#[derive(Debug, Clone)]
pub struct StaticToken {
    path: PathBuf,
    token: Arc<RwLock<Arc<str>>>,
    stamp: Arc<Mutex<Stamp>>,
}

/// Reads `path`, returning its trimmed content and its stamp.
fn read_token(path: &Path) -> Result<(String, Stamp), ExpositionError> {
    let wrap = |source| ExpositionError::TokenFile {
        path: path.display().to_string(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(wrap)?;
    let content = std::fs::read_to_string(path).map_err(wrap)?;
    Ok((
        content.trim().to_owned(),
        (meta.modified().ok(), meta.len()),
    ))
}

/// Equality of two byte strings whose time depends on their lengths only.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a
        .iter()
        .zip(b)
        .fold(0u8, |acc, (x, y)| acc | std::hint::black_box(x ^ y));
    diff == 0
}

impl StaticToken {
    /// Reads the token file; an unreadable file is an error at start.
    pub fn load(path: impl Into<PathBuf>) -> Result<Self, ExpositionError> {
        let path = path.into();
        let (token, stamp) = read_token(&path)?;
        Ok(StaticToken {
            path,
            token: Arc::new(RwLock::new(token.into())),
            stamp: Arc::new(Mutex::new(stamp)),
        })
    }

    /// Whether `presented` equals the token; an empty token matches nothing.
    pub(crate) fn matches(&self, presented: &str) -> bool {
        let token = Arc::clone(&self.token.read().unwrap_or_else(PoisonError::into_inner));
        !token.is_empty() && constant_time_eq(token.as_bytes(), presented.as_bytes())
    }

    /// Re-reads the file if its modification time or size changed; keeps the old token on error.
    pub fn reload_if_changed(&self) {
        let changed = match std::fs::metadata(&self.path) {
            Ok(meta) => {
                let current = (meta.modified().ok(), meta.len());
                *self.stamp.lock().unwrap_or_else(PoisonError::into_inner) != current
            }
            Err(_) => false,
        };
        if !changed {
            return;
        }
        match read_token(&self.path) {
            Ok((token, stamp)) => {
                *self.token.write().unwrap_or_else(PoisonError::into_inner) = token.into();
                *self.stamp.lock().unwrap_or_else(PoisonError::into_inner) = stamp;
                tracing::info!(path = %self.path.display(), "reloaded metrics bearer token");
            }
            Err(error) => {
                tracing::error!(%error, "failed to reload metrics bearer token");
            }
        }
    }

    /// Polls the file every [`TOKEN_POLL_INTERVAL`] until `shutdown` is cancelled.
    pub(crate) fn spawn_reloader(&self, shutdown: CancellationToken) -> JoinHandle<()> {
        let token = self.clone();
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(TOKEN_POLL_INTERVAL);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = ticker.tick() => token.reload_if_changed(),
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn headers(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(AUTHORIZATION, value.parse().unwrap());
        h
    }

    #[tokio::test]
    async fn static_token_accepts_the_trimmed_file_content_only() {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        writeln!(file, "  s3cret  ").unwrap();
        let auth = MetricsAuth::Static(StaticToken::load(file.path()).unwrap());
        assert_eq!(
            auth.check(&headers("Bearer s3cret"), "/metrics").await,
            AuthCheck::Allowed
        );
        assert_eq!(
            auth.check(&headers("Bearer wrong"), "/metrics").await,
            AuthCheck::Unauthenticated
        );
        assert_eq!(
            auth.check(&HeaderMap::new(), "/metrics").await,
            AuthCheck::Unauthenticated
        );
        assert_eq!(
            auth.check(&headers("Basic s3cret"), "/metrics").await,
            AuthCheck::Unauthenticated
        );
    }

    #[tokio::test]
    async fn empty_token_file_admits_nobody() {
        let file = tempfile::NamedTempFile::new().unwrap();
        let auth = MetricsAuth::Static(StaticToken::load(file.path()).unwrap());
        assert_eq!(
            auth.check(&headers("Bearer "), "/metrics").await,
            AuthCheck::Unauthenticated
        );
    }

    #[test]
    fn changed_token_file_is_picked_up() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "old").unwrap();
        let token = StaticToken::load(&path).unwrap();
        std::fs::write(&path, "newer-token").unwrap();
        token.reload_if_changed();
        assert!(token.matches("newer-token"));
        assert!(!token.matches("old"));
    }

    #[test]
    fn unreadable_token_file_fails_at_start() {
        let err = StaticToken::load("/nonexistent/wva-token").unwrap_err();
        assert!(
            err.to_string()
                .starts_with("cannot read metrics token file /nonexistent/wva-token:")
        );
    }

    /// Counts its calls; answers `verdict`.
    struct Counting {
        calls: std::sync::atomic::AtomicUsize,
        verdict: Result<TokenVerdict, String>,
    }

    impl TokenAuthorizer for Counting {
        fn authorize<'a>(&'a self, _token: &'a str, _path: &'a str) -> AuthorizeFuture<'a> {
            self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Box::pin(std::future::ready(self.verdict.clone()))
        }
    }

    fn delegated(verdict: Result<TokenVerdict, String>) -> (Arc<Counting>, MetricsAuth) {
        let authorizer = Arc::new(Counting {
            calls: Default::default(),
            verdict,
        });
        (authorizer.clone(), MetricsAuth::Delegated(authorizer))
    }

    #[tokio::test]
    async fn delegated_auth_rejects_a_missing_or_empty_token_without_a_review() {
        let (authorizer, auth) = delegated(Ok(TokenVerdict::Allowed));
        assert_eq!(
            auth.check(&HeaderMap::new(), "/metrics").await,
            AuthCheck::Unauthenticated
        );
        assert_eq!(
            auth.check(&headers("Bearer  "), "/metrics").await,
            AuthCheck::Unauthenticated
        );
        assert_eq!(
            authorizer.calls.load(std::sync::atomic::Ordering::SeqCst),
            0
        );
        assert_eq!(
            auth.check(&headers("Bearer t"), "/metrics").await,
            AuthCheck::Allowed
        );
        assert_eq!(
            authorizer.calls.load(std::sync::atomic::Ordering::SeqCst),
            1
        );
    }

    #[tokio::test]
    async fn delegated_auth_maps_verdicts_and_backend_errors() {
        let (_, auth) = delegated(Ok(TokenVerdict::Forbidden));
        assert_eq!(
            auth.check(&headers("Bearer t"), "/metrics").await,
            AuthCheck::Forbidden
        );
        let (_, auth) = delegated(Ok(TokenVerdict::Unauthenticated));
        assert_eq!(
            auth.check(&headers("Bearer t"), "/metrics").await,
            AuthCheck::Unauthenticated
        );
        let (_, auth) = delegated(Err("boom".into()));
        assert_eq!(
            auth.check(&headers("Bearer t"), "/metrics").await,
            AuthCheck::Unavailable
        );
    }

    #[tokio::test]
    async fn no_auth_requires_nothing() {
        assert_eq!(
            MetricsAuth::None.check(&HeaderMap::new(), "/metrics").await,
            AuthCheck::NotRequired
        );
    }
}
