//! One HTTP attempt of one query: POST form, gzip, body cap, error classification (spec §1.4).

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::config::PrometheusConfig;
use crate::error::CollectorError;
use crate::secret::TokenProvider;

use super::decode::{DecodedResult, body_excerpt, decode, error_answer};

/// The failure of one attempt, with a server-requested delay (`Retry-After`) if any.
#[derive(Debug)]
pub(crate) struct AttemptError {
    pub err: CollectorError,
    pub retry_after: Option<Duration>,
}

impl From<CollectorError> for AttemptError {
    fn from(err: CollectorError) -> Self {
        AttemptError {
            err,
            retry_after: None,
        }
    }
}

/// A Prometheus HTTP API client (no retries here).
pub(crate) struct PromClient {
    http: reqwest::Client,
    base_url: String,
    query_url: String,
    pub(crate) token: TokenProvider,
    attempt_timeout: Duration,
    max_bytes: u64,
    keep: Vec<String>,
    plain_to_remote: bool,
    warned_plain: AtomicBool,
}

/// Text of an error and its sources, for `Transport`/`Tls` causes (never holds headers).
fn cause_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = Vec::new();
    let mut cur = e.source();
    while let Some(s) = cur {
        parts.push(s.to_string());
        cur = s.source();
    }
    if parts.is_empty() {
        e.to_string()
    } else {
        parts.join(": ")
    }
}

fn is_tls(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = cur {
        if s.downcast_ref::<rustls::Error>().is_some() {
            return true;
        }
        if let Some(io) = s.downcast_ref::<std::io::Error>()
            && io
                .get_ref()
                .is_some_and(|inner| inner.downcast_ref::<rustls::Error>().is_some())
        {
            return true;
        }
        cur = s.source();
    }
    false
}

impl PromClient {
    /// A client for this configuration; `labels` are the labels kept from answers.
    pub(crate) fn new(cfg: &PrometheusConfig, labels: Vec<String>) -> Result<Self, CollectorError> {
        let http = crate::tls::build_http_client(&cfg.tls, cfg.is_https())?;
        let token = TokenProvider::new(cfg.token.clone())?;
        let host_is_loopback = url::Url::parse(&cfg.base_url)
            .ok()
            .and_then(|u| u.host().map(|h| crate::config::is_loopback_host(&h)))
            .unwrap_or(false);
        Ok(PromClient {
            http,
            base_url: cfg.base_url.clone(),
            query_url: format!("{}/api/v1/query", cfg.base_url),
            token,
            attempt_timeout: cfg.query_timeout,
            max_bytes: cfg.max_response_bytes,
            keep: labels,
            plain_to_remote: !cfg.is_https() && !host_is_loopback,
            warned_plain: AtomicBool::new(false),
        })
    }

    fn transport(&self, query: &str, e: &reqwest::Error) -> CollectorError {
        if e.is_timeout() {
            return CollectorError::Timeout {
                query: query.to_string(),
                after: self.attempt_timeout,
            };
        }
        if is_tls(e) {
            return CollectorError::Tls {
                cause: cause_chain(e),
            };
        }
        CollectorError::Transport {
            query: query.to_string(),
            base_url: self.base_url.clone(),
            cause: cause_chain(e),
        }
    }

    /// One attempt, bounded by the attempt timeout (connect, headers and body).
    pub(crate) async fn attempt(
        &self,
        query: &str,
        text: &str,
    ) -> Result<DecodedResult, AttemptError> {
        match tokio::time::timeout(self.attempt_timeout, self.attempt_inner(query, text)).await {
            Ok(r) => r,
            Err(_) => Err(CollectorError::Timeout {
                query: query.to_string(),
                after: self.attempt_timeout,
            }
            .into()),
        }
    }

    async fn attempt_inner(&self, query: &str, text: &str) -> Result<DecodedResult, AttemptError> {
        let timeout_param = format!("{}ms", self.attempt_timeout.as_millis());
        let mut req = self
            .http
            .post(&self.query_url)
            .header(reqwest::header::ACCEPT, "application/json")
            .form(&[("query", text), ("timeout", timeout_param.as_str())]);
        if let Some(secret) = self.token.current().await
            && let Some(h) = secret.bearer_header()
        {
            if self.plain_to_remote && !self.warned_plain.swap(true, Ordering::Relaxed) {
                tracing::warn!(
                    base_url = %self.base_url,
                    "sending the bearer token over plain HTTP to a non-loopback host"
                );
            }
            req = req.header(reqwest::header::AUTHORIZATION, h);
        }
        let mut resp = req.send().await.map_err(|e| self.transport(query, &e))?;
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let mut body: Vec<u8> = Vec::new();
        loop {
            match resp.chunk().await {
                Ok(Some(chunk)) => {
                    if body.len() as u64 + chunk.len() as u64 > self.max_bytes {
                        return Err(CollectorError::ResponseTooLarge {
                            query: query.to_string(),
                            limit: self.max_bytes,
                        }
                        .into());
                    }
                    body.extend_from_slice(&chunk);
                }
                Ok(None) => break,
                Err(e) => {
                    if e.is_decode() {
                        return Err(CollectorError::Decode {
                            query: query.to_string(),
                            reason: cause_chain(&e),
                        }
                        .into());
                    }
                    return Err(self.transport(query, &e).into());
                }
            }
        }
        if status == 401 || status == 403 {
            return Err(CollectorError::Unauthorized {
                query: query.to_string(),
                status,
            }
            .into());
        }
        if !(200..300).contains(&status) {
            let (error_type, error) =
                error_answer(&body).unwrap_or_else(|| ("http".to_string(), body_excerpt(&body)));
            return Err(AttemptError {
                err: CollectorError::Api {
                    query: query.to_string(),
                    status,
                    error_type,
                    error,
                },
                retry_after,
            });
        }
        let keep: Vec<&str> = self.keep.iter().map(String::as_str).collect();
        decode(query, &body, &keep).map_err(Into::into)
    }
}
