//! Identities shared by every source: models, variants, replicas and their endpoints (spec §8).

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// A model as the autoscaler sees it: a model ID served in one namespace.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ModelKey {
    /// Kubernetes namespace of the model's variants.
    pub namespace: String,
    /// The vLLM model ID (`model_name` label).
    pub model_id: String,
}

impl ModelKey {
    /// A key from a namespace and a model ID.
    pub fn new(namespace: impl Into<String>, model_id: impl Into<String>) -> Self {
        ModelKey {
            namespace: namespace.into(),
            model_id: model_id.into(),
        }
    }
}

impl fmt::Display for ModelKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{:?}", self.namespace, self.model_id)
    }
}

impl fmt::Debug for ModelKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// A variant (one VariantAutoscaling / Deployment of a model).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct VariantRef {
    /// Namespace of the variant.
    pub namespace: String,
    /// Name of the variant.
    pub name: String,
}

impl VariantRef {
    /// A variant reference.
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> Self {
        VariantRef {
            namespace: namespace.into(),
            name: name.into(),
        }
    }
}

/// URL scheme of a scrape endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scheme {
    /// Plain HTTP.
    Http,
    /// HTTP over TLS.
    Https,
}

impl Scheme {
    /// `http` or `https`.
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }
}

/// Where a replica's metrics can be scraped directly.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Endpoint {
    /// `http` or `https`.
    pub scheme: Scheme,
    /// Socket address of the pod (or of a shared server).
    pub addr: SocketAddr,
    /// Path of the metrics page, e.g. `/metrics`.
    pub path: String,
}

impl Endpoint {
    /// An endpoint; `path` defaults to `/metrics` when empty.
    pub fn new(scheme: Scheme, addr: SocketAddr, path: impl Into<String>) -> Self {
        let path = path.into();
        let path = if path.is_empty() {
            "/metrics".to_string()
        } else {
            path
        };
        Endpoint { scheme, addr, path }
    }

    /// The full URL text, e.g. `http://10.0.0.1:8000/metrics`.
    pub fn url(&self) -> String {
        format!("{}://{}{}", self.scheme.as_str(), self.addr, self.path)
    }
}

/// A known ready pod of a model, with its variant and optional scrape endpoint.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ReplicaTarget {
    /// Pod name.
    pub pod: String,
    /// The variant owning the pod.
    pub variant: VariantRef,
    /// Where to scrape the pod, when known.
    pub endpoint: Option<Endpoint>,
}

/// One model to collect, with the optional retention window of its request count (§1.3).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ModelRequest {
    /// The model.
    pub key: ModelKey,
    /// Window of `model_request_count` (scale-to-zero); `None` skips that query for this model.
    #[serde(default, with = "crate::serde_secs::option")]
    pub retention: Option<Duration>,
}

impl ModelRequest {
    /// A request without a request-count retention.
    pub fn new(key: ModelKey) -> Self {
        ModelRequest {
            key,
            retention: None,
        }
    }

    /// A request with a scale-to-zero retention window.
    pub fn with_retention(key: ModelKey, retention: Duration) -> Self {
        ModelRequest {
            key,
            retention: Some(retention),
        }
    }
}

/// What the engine asks for in one cycle.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CollectRequest {
    /// The models to collect; each is tracked (§4.1).
    pub models: Vec<ModelRequest>,
}

impl CollectRequest {
    /// A request for these models.
    pub fn new(models: Vec<ModelRequest>) -> Self {
        CollectRequest { models }
    }
}
