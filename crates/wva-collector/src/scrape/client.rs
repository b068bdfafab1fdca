//! One HTTP scrape of a metrics page: `ScrapeClient::scrape(&Endpoint)` (spec §7).

use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{ACCEPT, AUTHORIZATION, HeaderValue};

use super::config::ScrapeClientConfig;
use crate::error::CollectorError;
use crate::model::{Endpoint, Scheme};
use crate::secret::TokenProvider;
use crate::tls::{TlsOptions, build_http_client};

/// The media type asked for, so that vLLM never negotiates OpenMetrics.
pub const ACCEPT_TEXT_0_0_4: &str = "text/plain;version=0.0.4";

/// Why a scrape failed. Messages name the URL, never a token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScrapeError {
    /// Connection refused, reset or similar.
    #[error("cannot reach {url}: {cause}")]
    Transport {
        /// The URL scraped.
        url: String,
        /// The cause, as text.
        cause: String,
    },
    /// No complete answer within the timeout.
    #[error("no answer from {url} within {after:?}")]
    Timeout {
        /// The URL scraped.
        url: String,
        /// The timeout that expired.
        after: Duration,
    },
    /// A status other than 2xx (401 and 403 are [`ScrapeError::Unauthorized`]).
    #[error("{url} answered HTTP {status}")]
    Status {
        /// The URL scraped.
        url: String,
        /// The HTTP status.
        status: u16,
    },
    /// 401 or 403, after one token-file re-read where that applies.
    #[error("{url} refused the credentials (HTTP {status})")]
    Unauthorized {
        /// The URL scraped.
        url: String,
        /// The HTTP status.
        status: u16,
    },
    /// The decoded body exceeded the cap.
    #[error("body of {url} is larger than {limit} bytes")]
    TooLarge {
        /// The URL scraped.
        url: String,
        /// The cap in bytes.
        limit: usize,
    },
    /// The body is not UTF-8 text.
    #[error("body of {url} is not valid UTF-8")]
    NotUtf8 {
        /// The URL scraped.
        url: String,
    },
    /// An `https` endpoint while the client was built without TLS options.
    #[error("{url} uses https but the scrape client has no TLS options")]
    TlsNotConfigured {
        /// The URL refused.
        url: String,
    },
}

/// Fetches text-format metrics pages: `Accept: text/plain;version=0.0.4`, an optional bearer
/// token, a timeout covering connect and body, and a cap on the decoded body.
///
/// Public so that other crates (wva-k8s's scale-from-zero path, for EPP pods) scrape the same
/// way; parse the body with [`parse_exposition`](crate::parse_exposition).
#[derive(Clone)]
pub struct ScrapeClient {
    http: reqwest::Client,
    token: Arc<TokenProvider>,
    timeout: Duration,
    max_body_bytes: usize,
    https: bool,
}

impl std::fmt::Debug for ScrapeClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScrapeClient")
            .field("timeout", &self.timeout)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("https", &self.https)
            .finish_non_exhaustive()
    }
}

impl ScrapeClient {
    /// A client; fails on unreadable TLS files or an unreadable token file.
    pub fn new(config: &ScrapeClientConfig) -> Result<Self, CollectorError> {
        let token = TokenProvider::new(config.token.clone())?;
        let http = match &config.tls {
            Some(opts) => build_http_client(opts, true)?,
            None => build_http_client(&TlsOptions::default(), false)?,
        };
        Ok(ScrapeClient {
            http,
            token: Arc::new(token),
            timeout: config.timeout,
            max_body_bytes: config.max_body_bytes,
            https: config.tls.is_some(),
        })
    }

    /// The timeout of one scrape.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// GETs the endpoint and returns its body as text.
    pub async fn scrape(&self, endpoint: &Endpoint) -> Result<String, ScrapeError> {
        let url = endpoint.url();
        if endpoint.scheme == Scheme::Https && !self.https {
            return Err(ScrapeError::TlsNotConfigured { url });
        }
        let first = self.token.current().await;
        match self.attempt(&url, first.as_ref()).await {
            Err(ScrapeError::Unauthorized { status: 401, .. }) if self.token.reload().await => {
                let renewed = self.token.current().await;
                self.attempt(&url, renewed.as_ref()).await
            }
            other => other,
        }
    }

    async fn attempt(
        &self,
        url: &str,
        token: Option<&crate::secret::Secret>,
    ) -> Result<String, ScrapeError> {
        let timeout = ScrapeError::Timeout {
            url: url.to_owned(),
            after: self.timeout,
        };
        // reqwest's own timeout also covers the body; the outer one bounds everything else.
        match tokio::time::timeout(self.timeout, self.fetch(url, token)).await {
            Ok(result) => result,
            Err(_) => Err(timeout),
        }
    }

    async fn fetch(
        &self,
        url: &str,
        token: Option<&crate::secret::Secret>,
    ) -> Result<String, ScrapeError> {
        let mut request = self
            .http
            .get(url)
            .header(ACCEPT, HeaderValue::from_static(ACCEPT_TEXT_0_0_4))
            .timeout(self.timeout);
        if let Some(header) = token.and_then(|t| t.bearer_header()) {
            request = request.header(AUTHORIZATION, header);
        }
        let mut response = request
            .send()
            .await
            .map_err(|e| self.request_error(url, &e))?;
        let status = response.status().as_u16();
        if status == 401 || status == 403 {
            return Err(ScrapeError::Unauthorized {
                url: url.to_owned(),
                status,
            });
        }
        if !response.status().is_success() {
            return Err(ScrapeError::Status {
                url: url.to_owned(),
                status,
            });
        }
        let too_large = || ScrapeError::TooLarge {
            url: url.to_owned(),
            limit: self.max_body_bytes,
        };
        if response
            .content_length()
            .is_some_and(|n| n > self.max_body_bytes as u64)
        {
            return Err(too_large());
        }
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| self.request_error(url, &e))?
        {
            if body.len() + chunk.len() > self.max_body_bytes {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        String::from_utf8(body).map_err(|_| ScrapeError::NotUtf8 {
            url: url.to_owned(),
        })
    }

    fn request_error(&self, url: &str, e: &reqwest::Error) -> ScrapeError {
        if e.is_timeout() {
            return ScrapeError::Timeout {
                url: url.to_owned(),
                after: self.timeout,
            };
        }
        // reqwest's Display repeats the URL; keep the innermost cause instead.
        let mut cause = e.to_string();
        let mut source = std::error::Error::source(e);
        while let Some(s) = source {
            cause = s.to_string();
            source = s.source();
        }
        ScrapeError::Transport {
            url: url.to_owned(),
            cause,
        }
    }
}
