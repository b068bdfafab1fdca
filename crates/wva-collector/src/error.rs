//! The collector's error model (spec §9).

use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::model::ModelKey;

/// Everything that can go wrong while collecting. `Clone`, so single-flight can share one error;
/// causes are kept as text. No variant ever carries a bearer token.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CollectorError {
    /// Invalid configuration; `message` is the whole §6.2 line.
    #[error("{message}")]
    Config {
        /// The offending key.
        key: String,
        /// The complete one-line message.
        message: String,
    },
    /// Prometheus could not be reached (connect refused, reset, DNS).
    #[error("query {query}: cannot reach Prometheus at {base_url}: {cause}")]
    Transport {
        /// Query name.
        query: String,
        /// Base URL (user info is never accepted, so it holds no secret).
        base_url: String,
        /// Cause, as text.
        cause: String,
    },
    /// No answer within the attempt timeout.
    #[error("query {query}: no answer from Prometheus within {after:?}")]
    Timeout {
        /// Query name.
        query: String,
        /// The timeout that expired.
        after: Duration,
    },
    /// Prometheus answered with an error status.
    #[error("query {query}: Prometheus answered HTTP {status} ({error_type}): {error}")]
    Api {
        /// Query name.
        query: String,
        /// HTTP status.
        status: u16,
        /// Prometheus `errorType` (or `http`).
        error_type: String,
        /// Prometheus `error` text, or the first 256 bytes of a non-JSON body.
        error: String,
    },
    /// 401 or 403.
    #[error("query {query}: Prometheus refused the credentials (HTTP {status})")]
    Unauthorized {
        /// Query name.
        query: String,
        /// HTTP status.
        status: u16,
    },
    /// TLS handshake failure.
    #[error("TLS handshake with Prometheus failed: {cause}")]
    Tls {
        /// Cause, as text.
        cause: String,
    },
    /// The answer is not the expected JSON.
    #[error("query {query}: cannot decode the Prometheus answer: {reason}")]
    Decode {
        /// Query name.
        query: String,
        /// What was wrong.
        reason: String,
    },
    /// Not a vector result.
    #[error("query {query}: expected a vector result, got {got}")]
    UnexpectedResultType {
        /// Query name.
        query: String,
        /// The result type received.
        got: String,
    },
    /// The decoded body exceeded the cap.
    #[error("query {query}: answer larger than {limit} bytes")]
    ResponseTooLarge {
        /// Query name.
        query: String,
        /// The cap in bytes.
        limit: u64,
    },
    /// The circuit breaker is open; nothing was sent.
    #[error(
        "Prometheus circuit breaker open after {failures} consecutive failures; next attempt in {retry_in:?}"
    )]
    CircuitOpen {
        /// Consecutive failures that opened it.
        failures: u32,
        /// Time until the next probe.
        retry_in: Duration,
    },
    /// A model that cannot be queried (empty ID, too long for any selector).
    #[error("model ID {:?} in namespace {:?} cannot be queried: {reason}", key.model_id, key.namespace)]
    InvalidModel {
        /// The model.
        key: ModelKey,
        /// Why.
        reason: String,
    },
    /// The request-count query returned no series for the model.
    #[error("no values in request count result for model {model} (metrics may not be scraped yet)")]
    NoRequestCount {
        /// Model ID.
        model: String,
    },
    /// A pod scrape failed (scrape source).
    #[error("scrape of pod {pod} failed: {reason}")]
    Scrape {
        /// Pod name.
        pod: String,
        /// What went wrong.
        reason: String,
    },
    /// The bounded startup check gave up.
    #[error(
        "CRITICAL: Failed to connect to Prometheus - WVA requires Prometheus connectivity for autoscaling decisions: {last}"
    )]
    StartupCheckFailed {
        /// Attempts made.
        attempts: u32,
        /// The last error.
        last: Box<CollectorError>,
    },
    /// The collector is shutting down.
    #[error("collector is shutting down")]
    ShuttingDown,
    /// A bug (e.g. a fetch task panicked).
    #[error("internal error: {what}")]
    Internal {
        /// What happened.
        what: String,
    },
    /// An error read back from JSON (`{kind, message, retryable}`); only deserialization makes it.
    #[error("{message}")]
    Replayed {
        /// The original variant name.
        kind: String,
        /// The original message.
        message: String,
        /// Whether the original was retryable.
        retryable: bool,
    },
}

impl CollectorError {
    /// Whether a retry may succeed (spec §9, last column).
    pub fn is_retryable(&self) -> bool {
        match self {
            CollectorError::Transport { .. } | CollectorError::Timeout { .. } => true,
            CollectorError::Api { status, .. } => *status >= 500 || *status == 429,
            CollectorError::Scrape { .. } => true,
            CollectorError::Replayed { retryable, .. } => *retryable,
            _ => false,
        }
    }

    /// The variant name in snake_case, e.g. `transport`, used in stats and JSON.
    pub fn kind(&self) -> &str {
        match self {
            CollectorError::Config { .. } => "config",
            CollectorError::Transport { .. } => "transport",
            CollectorError::Timeout { .. } => "timeout",
            CollectorError::Api { .. } => "api",
            CollectorError::Unauthorized { .. } => "unauthorized",
            CollectorError::Tls { .. } => "tls",
            CollectorError::Decode { .. } => "decode",
            CollectorError::UnexpectedResultType { .. } => "unexpected_result_type",
            CollectorError::ResponseTooLarge { .. } => "response_too_large",
            CollectorError::CircuitOpen { .. } => "circuit_open",
            CollectorError::InvalidModel { .. } => "invalid_model",
            CollectorError::NoRequestCount { .. } => "no_request_count",
            CollectorError::Scrape { .. } => "scrape",
            CollectorError::StartupCheckFailed { .. } => "startup_check_failed",
            CollectorError::ShuttingDown => "shutting_down",
            CollectorError::Internal { .. } => "internal",
            CollectorError::Replayed { kind, .. } => kind,
        }
    }

    /// A configuration error with its complete message line.
    pub fn config(key: impl Into<String>, message: impl Into<String>) -> Self {
        CollectorError::Config {
            key: key.into(),
            message: message.into(),
        }
    }
}

#[derive(Serialize, Deserialize)]
struct ErrorRepr {
    kind: String,
    message: String,
    retryable: bool,
}

impl Serialize for CollectorError {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        ErrorRepr {
            kind: self.kind().to_string(),
            message: self.to_string(),
            retryable: self.is_retryable(),
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for CollectorError {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let r = ErrorRepr::deserialize(d)?;
        Ok(CollectorError::Replayed {
            kind: r.kind,
            message: r.message,
            retryable: r.retryable,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_match_the_spec_table() {
        let e = CollectorError::Timeout {
            query: "kv_cache_usage".into(),
            after: Duration::from_secs(10),
        };
        assert_eq!(
            e.to_string(),
            "query kv_cache_usage: no answer from Prometheus within 10s"
        );
        let e = CollectorError::InvalidModel {
            key: ModelKey::new("ns", ""),
            reason: "empty model ID".into(),
        };
        assert_eq!(
            e.to_string(),
            "model ID \"\" in namespace \"ns\" cannot be queried: empty model ID"
        );
        let e = CollectorError::CircuitOpen {
            failures: 5,
            retry_in: Duration::from_secs(30),
        };
        assert_eq!(
            e.to_string(),
            "Prometheus circuit breaker open after 5 consecutive failures; next attempt in 30s"
        );
    }

    #[test]
    fn retryable_only_for_transport_timeout_5xx_and_429() {
        let api = |status| CollectorError::Api {
            query: "q".into(),
            status,
            error_type: "x".into(),
            error: "y".into(),
        };
        assert!(api(500).is_retryable());
        assert!(api(503).is_retryable());
        assert!(api(429).is_retryable());
        assert!(!api(400).is_retryable());
        assert!(!api(422).is_retryable());
        assert!(
            !CollectorError::Decode {
                query: "q".into(),
                reason: "r".into()
            }
            .is_retryable()
        );
    }

    #[test]
    fn errors_serialize_as_kind_message_retryable_and_read_back() {
        let e = CollectorError::Transport {
            query: "q".into(),
            base_url: "http://127.0.0.1:1".into(),
            cause: "refused".into(),
        };
        let j = serde_json::to_value(&e).unwrap();
        assert_eq!(j["kind"], "transport");
        assert_eq!(j["retryable"], true);
        let back: CollectorError = serde_json::from_value(j).unwrap();
        assert_eq!(back.to_string(), e.to_string());
        assert!(back.is_retryable());
    }
}
