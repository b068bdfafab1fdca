//! `--metrics-auth kubernetes`: TokenReview + SubjectAccessReview for `/metrics` and
//! `/debug/cycle`, with verdicts cached for one minute (spec/exposition.md §8, spec/k8s.md §8.2).
//!
//! The cache is keyed by the SHA-256 of the token and the path; the raw token is never stored
//! or logged. Allow and deny verdicts alike are cached; API errors are not.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec};
use k8s_openapi::api::authorization::v1::{
    NonResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
};
use kube::api::{Api, PostParams};
use sha2::{Digest, Sha256};
use tokio::time::Instant;
use wva_exposition::{AuthorizeFuture, TokenAuthorizer, TokenVerdict};

/// How long a verdict is reused.
pub const CACHE_TTL: Duration = Duration::from_secs(60);

/// Most verdicts kept; the oldest is evicted beyond it.
pub const CACHE_CAPACITY: usize = 4096;

/// A failed review call.
#[derive(Debug, thiserror::Error)]
pub enum MetricsAuthError {
    /// `POST /apis/authentication.k8s.io/v1/tokenreviews` failed.
    #[error("TokenReview failed: {0}")]
    TokenReview(#[source] kube::Error),
    /// `POST /apis/authorization.k8s.io/v1/subjectaccessreviews` failed.
    #[error("SubjectAccessReview failed: {0}")]
    SubjectAccessReview(#[source] kube::Error),
}

/// SHA-256 of the token and the path.
type CacheKey = [u8; 32];

/// The cache key of `token` on `path`.
fn cache_key(token: &str, path: &str) -> CacheKey {
    let mut hasher = Sha256::new();
    hasher.update(token.as_bytes());
    hasher.update([0u8]);
    hasher.update(path.as_bytes());
    hasher.finalize().into()
}

/// Verdicts with their review time, bounded in size, oldest evicted first.
#[derive(Default)]
struct VerdictCache {
    entries: HashMap<CacheKey, (Instant, TokenVerdict)>,
    order: VecDeque<CacheKey>,
}

impl VerdictCache {
    /// The verdict for `key` if it was reviewed less than [`CACHE_TTL`] before `now`.
    fn get(&self, key: &CacheKey, now: Instant) -> Option<TokenVerdict> {
        self.entries
            .get(key)
            .filter(|(at, _)| now.saturating_duration_since(*at) < CACHE_TTL)
            .map(|(_, verdict)| *verdict)
    }

    /// Stores `verdict` for `key` as reviewed at `now`, evicting the oldest beyond capacity.
    fn insert(&mut self, key: CacheKey, verdict: TokenVerdict, now: Instant) {
        if self.entries.insert(key, (now, verdict)).is_some() {
            self.order.retain(|k| *k != key);
        }
        self.order.push_back(key);
        while self.entries.len() > CACHE_CAPACITY {
            match self.order.pop_front() {
                Some(oldest) => {
                    self.entries.remove(&oldest);
                }
                None => break,
            }
        }
    }
}

/// Reviews bearer tokens with the Kubernetes API; plug it in as
/// `MetricsAuth::Delegated(Arc::new(KubeTokenAuthorizer::new(client)))`.
pub struct KubeTokenAuthorizer {
    client: kube::Client,
    cache: Mutex<VerdictCache>,
}

impl fmt::Debug for KubeTokenAuthorizer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let cached = self
            .cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entries
            .len();
        f.debug_struct("KubeTokenAuthorizer")
            .field("cached", &cached)
            .finish_non_exhaustive()
    }
}

impl KubeTokenAuthorizer {
    /// An authorizer with an empty cache using `client`.
    pub fn new(client: kube::Client) -> Self {
        KubeTokenAuthorizer {
            client,
            cache: Mutex::new(VerdictCache::default()),
        }
    }

    /// The verdict on `token` for a `get` on `path`, from the cache when reviewed within
    /// [`CACHE_TTL`], otherwise from a TokenReview and, when authenticated, a SubjectAccessReview.
    pub async fn review(&self, token: &str, path: &str) -> Result<TokenVerdict, MetricsAuthError> {
        let key = cache_key(token, path);
        let cached = self
            .cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&key, Instant::now());
        if let Some(verdict) = cached {
            return Ok(verdict);
        }
        let verdict = self.ask_api(token, path).await?;
        self.cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(key, verdict, Instant::now());
        Ok(verdict)
    }

    /// TokenReview, then SubjectAccessReview for the reviewed user.
    async fn ask_api(&self, token: &str, path: &str) -> Result<TokenVerdict, MetricsAuthError> {
        let token_review = TokenReview {
            spec: TokenReviewSpec {
                token: Some(token.to_owned()),
                audiences: None,
            },
            ..TokenReview::default()
        };
        let reviewed = Api::<TokenReview>::all(self.client.clone())
            .create(&PostParams::default(), &token_review)
            .await
            .map_err(MetricsAuthError::TokenReview)?;
        let status = reviewed.status.unwrap_or_default();
        if status.authenticated != Some(true) {
            return Ok(TokenVerdict::Unauthenticated);
        }
        let user = status.user.unwrap_or_default();
        let access_review = SubjectAccessReview {
            spec: SubjectAccessReviewSpec {
                user: user.username,
                uid: user.uid,
                groups: user.groups,
                extra: user.extra,
                non_resource_attributes: Some(NonResourceAttributes {
                    path: Some(path.to_owned()),
                    verb: Some("get".to_owned()),
                }),
                resource_attributes: None,
            },
            ..SubjectAccessReview::default()
        };
        let decided = Api::<SubjectAccessReview>::all(self.client.clone())
            .create(&PostParams::default(), &access_review)
            .await
            .map_err(MetricsAuthError::SubjectAccessReview)?;
        let allowed = decided.status.is_some_and(|s| s.allowed);
        Ok(if allowed {
            TokenVerdict::Allowed
        } else {
            TokenVerdict::Forbidden
        })
    }
}

impl TokenAuthorizer for KubeTokenAuthorizer {
    fn authorize<'a>(&'a self, token: &'a str, path: &'a str) -> AuthorizeFuture<'a> {
        Box::pin(async move {
            self.review(token, path)
                .await
                .map_err(|error| error.to_string())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_key_depends_on_token_and_path() {
        let a = cache_key("token", "/metrics");
        assert_eq!(a, cache_key("token", "/metrics"));
        assert_ne!(a, cache_key("token", "/debug/cycle"));
        assert_ne!(a, cache_key("other", "/metrics"));
        assert_ne!(cache_key("ab", "c"), cache_key("a", "bc"));
    }

    #[test]
    fn verdicts_expire_after_the_ttl() {
        let now = Instant::now();
        let mut cache = VerdictCache::default();
        let key = cache_key("t", "/metrics");
        cache.insert(key, TokenVerdict::Forbidden, now);
        assert_eq!(
            cache.get(&key, now + Duration::from_secs(59)),
            Some(TokenVerdict::Forbidden)
        );
        assert_eq!(cache.get(&key, now + CACHE_TTL), None);
    }

    #[test]
    fn the_oldest_verdict_is_evicted_beyond_capacity() {
        let now = Instant::now();
        let mut cache = VerdictCache::default();
        let keys: Vec<CacheKey> = (0..=CACHE_CAPACITY)
            .map(|i| cache_key(&i.to_string(), "/metrics"))
            .collect();
        for key in &keys[..CACHE_CAPACITY] {
            cache.insert(*key, TokenVerdict::Allowed, now);
        }
        // Re-reviewing the first key makes it the newest.
        cache.insert(keys[0], TokenVerdict::Allowed, now);
        cache.insert(keys[CACHE_CAPACITY], TokenVerdict::Allowed, now);
        assert_eq!(cache.entries.len(), CACHE_CAPACITY);
        assert!(cache.get(&keys[0], now).is_some());
        assert!(cache.get(&keys[1], now).is_none());
        assert!(cache.get(&keys[CACHE_CAPACITY], now).is_some());
    }
}
