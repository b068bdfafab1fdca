//! The Kubernetes client and API discovery of in-cluster mode (spec/k8s.md §6.2 `--kubeconfig`,
//! §6.6 start-up order: client → discovery).

use std::time::Duration;

use kube::config::{Config, KubeConfigOptions, Kubeconfig};
use wva_k8s::config::ManagerConfig;

/// Group of the VariantAutoscaling CRD.
pub const VA_GROUP: &str = "llmd.ai";
/// Served version of the VariantAutoscaling CRD.
pub const VA_VERSION: &str = "v1alpha1";
/// Plural of the VariantAutoscaling CRD.
pub const VA_PLURAL: &str = "variantautoscalings";

/// Why the client could not be built or the API server lacks the CRD.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// `--kubeconfig` could not be read or used.
    #[error("kubeconfig {path}: {source}")]
    Kubeconfig {
        /// The configured path.
        path: String,
        /// kube's error.
        #[source]
        source: kube::config::KubeconfigError,
    },
    /// Neither the in-cluster configuration nor `~/.kube/config` is usable.
    #[error(
        "no in-cluster configuration ({in_cluster}) and no usable ~/.kube/config ({kubeconfig})"
    )]
    NoConfig {
        /// Why the in-cluster configuration failed.
        in_cluster: kube::config::InClusterError,
        /// Why the default kubeconfig failed.
        kubeconfig: kube::config::KubeconfigError,
    },
    /// The client could not be built from a valid configuration.
    #[error("{0}")]
    Build(#[source] kube::Error),
    /// The API server does not serve the VariantAutoscaling CRD.
    #[error(
        "the API server does not serve llmd.ai/v1alpha1 variantautoscalings; install deploy/crd first"
    )]
    CrdNotServed,
    /// A discovery request failed (other than 404).
    #[error("discovery of {api_version} failed: {source}")]
    Discovery {
        /// The group/version asked for.
        api_version: String,
        /// kube's error.
        #[source]
        source: kube::Error,
    },
}

impl ClientError {
    /// The start-up line printed on stderr before exiting 1 (spec/k8s.md §6.3).
    pub fn startup_line(&self) -> String {
        match self {
            ClientError::CrdNotServed | ClientError::Discovery { .. } => format!("error: {self}"),
            _ => format!("error: cannot build Kubernetes client: {self}"),
        }
    }
}

/// The kube configuration for `--kubeconfig` (spec/k8s.md §6.2): the named file if set, else
/// the in-cluster configuration, else `~/.kube/config`. `--rest-client-timeout` bounds reads
/// and writes of every request.
pub async fn client_config(config: &ManagerConfig) -> Result<Config, ClientError> {
    let options = KubeConfigOptions::default();
    let mut kube_config = match &config.kubeconfig {
        Some(path) => {
            let kubeconfig_error = |source| ClientError::Kubeconfig {
                path: path.clone(),
                source,
            };
            let file = Kubeconfig::read_from(path).map_err(kubeconfig_error)?;
            Config::from_custom_kubeconfig(file, &options)
                .await
                .map_err(kubeconfig_error)?
        }
        None => match Config::incluster() {
            Ok(c) => c,
            Err(in_cluster) => Config::from_kubeconfig(&options)
                .await
                .map_err(|kubeconfig| ClientError::NoConfig {
                    in_cluster,
                    kubeconfig,
                })?,
        },
    };
    apply_timeout(&mut kube_config, config.rest_client_timeout);
    Ok(kube_config)
}

/// Sets the read and write timeouts of every request (watches use their own server-side
/// timeout, shorter than this bound in kube-runtime's watcher).
fn apply_timeout(kube_config: &mut Config, timeout: Duration) {
    kube_config.read_timeout = Some(timeout);
    kube_config.write_timeout = Some(timeout);
}

/// Builds the Kubernetes client (spec/k8s.md §6.6, second step).
pub async fn build_client(config: &ManagerConfig) -> Result<kube::Client, ClientError> {
    let kube_config = client_config(config).await?;
    kube::Client::try_from(kube_config).map_err(ClientError::Build)
}

/// Whether the API server serves `plural` in `group/version` (`group` empty: the core API).
/// A 404 for the group/version means not served; other failures are errors.
pub async fn served(
    client: &kube::Client,
    group: &str,
    version: &str,
    plural: &str,
) -> Result<bool, ClientError> {
    let api_version = if group.is_empty() {
        version.to_owned()
    } else {
        format!("{group}/{version}")
    };
    let list = if group.is_empty() {
        client.list_core_api_resources(version).await
    } else {
        client.list_api_group_resources(&api_version).await
    };
    match list {
        Ok(list) => Ok(list.resources.iter().any(|r| r.name == plural)),
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(false),
        Err(source) => Err(ClientError::Discovery {
            api_version,
            source,
        }),
    }
}

/// Fails with [`ClientError::CrdNotServed`] unless `llmd.ai/v1alpha1 variantautoscalings` is
/// served (spec/k8s.md §6.6: the CRD is required).
pub async fn check_crd_served(client: &kube::Client) -> Result<(), ClientError> {
    if served(client, VA_GROUP, VA_VERSION, VA_PLURAL).await? {
        Ok(())
    } else {
        Err(ClientError::CrdNotServed)
    }
}

/// The optional APIs found at start-up (spec/k8s.md §6.6: LWS, InferencePool, HPA).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OptionalApis {
    /// `leaderworkerset.x-k8s.io/v1 leaderworkersets`.
    pub leader_worker_sets: bool,
    /// `{POOL_GROUP}/v1 inferencepools` (`v1alpha2` for the `x-k8s.io` group).
    pub inference_pools: bool,
    /// `autoscaling/v2 horizontalpodautoscalers`.
    pub hpas: bool,
}

/// The InferencePool version served under a pool group: `v1` for `inference.networking.k8s.io`,
/// `v1alpha2` for `inference.networking.x-k8s.io`.
pub fn inference_pool_version(pool_group: &str) -> &'static str {
    if pool_group == "inference.networking.k8s.io" {
        "v1"
    } else {
        "v1alpha2"
    }
}

/// Discovers the optional APIs; a failed discovery request counts as not served and is logged.
pub async fn discover_optional(client: &kube::Client, config: &ManagerConfig) -> OptionalApis {
    let pool_group = config.pool_group.as_str();
    let probe = |group: &'static str, version: &'static str, plural: &'static str| async move {
        match served(client, group, version, plural).await {
            Ok(true) => true,
            Ok(false) => {
                tracing::info!("{group}/{version} {plural} is not served; its feature is disabled");
                false
            }
            Err(e) => {
                tracing::warn!(error = %e, "{group}/{version} {plural} treated as not served");
                false
            }
        }
    };
    OptionalApis {
        leader_worker_sets: probe("leaderworkerset.x-k8s.io", "v1", "leaderworkersets").await,
        inference_pools: probe(
            pool_group,
            inference_pool_version(pool_group),
            "inferencepools",
        )
        .await,
        hpas: probe("autoscaling", "v2", "horizontalpodautoscalers").await,
    }
}

#[cfg(test)]
mod tests;
