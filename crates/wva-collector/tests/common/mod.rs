//! Helpers shared by the collector's integration tests.
#![allow(dead_code, clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use wva_collector::{
    CacheConfig, CatalogueConfig, CollectRequest, ModelKey, ModelRequest, PrometheusConfig,
    PrometheusSource, ReplicaDirectory, ReplicaTarget, VariantRef,
};

/// A test directory: pod → variant per model, plus the listed replicas.
#[derive(Default)]
pub struct MapDirectory {
    pub pods: Mutex<BTreeMap<(ModelKey, String), VariantRef>>,
    pub listed: Mutex<BTreeMap<ModelKey, Vec<String>>>,
}

impl MapDirectory {
    pub fn map(&self, key: &ModelKey, pod: &str, variant: &str) {
        self.pods.lock().unwrap().insert(
            (key.clone(), pod.to_string()),
            VariantRef::new(key.namespace.clone(), variant),
        );
    }

    pub fn list(&self, key: &ModelKey, pods: &[&str]) {
        self.listed
            .lock()
            .unwrap()
            .insert(key.clone(), pods.iter().map(|p| p.to_string()).collect());
    }
}

impl ReplicaDirectory for MapDirectory {
    fn variant_of(&self, model: &ModelKey, pod: &str) -> Option<VariantRef> {
        self.pods
            .lock()
            .unwrap()
            .get(&(model.clone(), pod.to_string()))
            .cloned()
    }

    fn replicas(&self, model: &ModelKey) -> Vec<ReplicaTarget> {
        let listed = self.listed.lock().unwrap();
        listed
            .get(model)
            .map(|pods| {
                pods.iter()
                    .map(|p| ReplicaTarget {
                        pod: p.clone(),
                        variant: self
                            .variant_of(model, p)
                            .unwrap_or_else(|| VariantRef::new(model.namespace.clone(), "unknown")),
                        endpoint: None,
                    })
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// Fast retries for tests.
pub fn fast_config(base_url: &str) -> PrometheusConfig {
    let mut cfg = PrometheusConfig::new(base_url).unwrap();
    cfg.retry.initial_backoff = Duration::from_millis(10);
    cfg.query_timeout = Duration::from_secs(5);
    cfg
}

pub fn source(
    cfg: PrometheusConfig,
    catalogue: CatalogueConfig,
    cache: CacheConfig,
    dir: Arc<dyn ReplicaDirectory>,
) -> Arc<PrometheusSource> {
    PrometheusSource::new(cfg, catalogue, cache, dir, None).unwrap()
}

pub fn request(keys: &[ModelKey]) -> CollectRequest {
    CollectRequest::new(keys.iter().cloned().map(ModelRequest::new).collect())
}
