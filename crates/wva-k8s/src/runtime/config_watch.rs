//! The ConfigMap hot-reload task (spec/k8s.md §6.4): field-selected watchers on the saturation
//! and scale-to-zero ConfigMaps feed a [`ConfigReloader`]; every change of the configuration in
//! force is swapped into the [`ConfigHandle`] and requests a cycle; rejected edits are logged
//! (one ERROR per key), counted and reported with a Warning Event `InvalidConfiguration`.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{Api, PartialObjectMeta};
use kube::runtime::WatchStreamExt;
use kube::runtime::events::{Event as KubeEvent, EventType as KubeEventType, Recorder, Reporter};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher::{self, Event};
use kube::{Client, Resource, ResourceExt};
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;
use wva_exposition::{ConfigMapKind, ReloadResult, SelfMetrics};

use crate::events::{EventType, REPORTER, invalid_configuration};
use crate::handles::{ConfigHandle, Stores};
use crate::inventory::{namespace_config_enabled, namespace_excluded};
use crate::runtime::config_reload::{ConfigReloader, ReloadOutcome};

/// Where the hot-reloaded ConfigMaps live and what they are called.
#[derive(Debug, Clone)]
pub struct ConfigReloadOptions {
    /// `POD_NAMESPACE`: home of the global ConfigMaps.
    pub pod_namespace: String,
    /// `POD_NAME`: the reporting instance of Events.
    pub pod_name: Option<String>,
    /// `WATCH_NAMESPACE`: when set, only it and `POD_NAMESPACE` are watched.
    pub watch_namespace: Option<String>,
    /// `--namespace-overrides`: namespace-local ConfigMaps apply.
    pub namespace_overrides: bool,
    /// `SATURATION_CONFIG_MAP_NAME`.
    pub saturation_name: String,
    /// `SCALE_TO_ZERO_CONFIG_MAP_NAME`.
    pub scale_to_zero_name: String,
}

/// Called after every successful change of the configuration in force (requests a cycle).
pub type OnReloaded = Arc<dyn Fn() + Send + Sync>;

/// The running reload task; aborted on drop.
pub struct ConfigReload {
    ready: watch::Receiver<bool>,
    task: JoinHandle<()>,
}

impl ConfigReload {
    /// Resolves once every ConfigMap watcher has listed once and the global ConfigMaps were
    /// parsed (absent = built-ins); `false` if the task ended first.
    pub async fn wait_until_ready(&self) -> bool {
        let mut ready = self.ready.clone();
        ready.wait_for(|r| *r).await.is_ok()
    }

    /// Whether the configuration has been loaded.
    pub fn is_ready(&self) -> bool {
        *self.ready.borrow()
    }
}

impl Drop for ConfigReload {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The namespaces watched: `None` = cluster-wide.
fn watch_scopes(opts: &ConfigReloadOptions) -> Vec<Option<String>> {
    match (&opts.watch_namespace, opts.namespace_overrides) {
        (Some(w), _) if *w != opts.pod_namespace => {
            vec![Some(opts.pod_namespace.clone()), Some(w.clone())]
        }
        (Some(_), _) | (None, false) => vec![Some(opts.pod_namespace.clone())],
        (None, true) => vec![None],
    }
}

/// The field selector of one hot-reloaded ConfigMap watcher.
pub fn name_selector(name: &str) -> String {
    format!("metadata.name={name}")
}

/// Starts the reload task. The handle is swapped once all watchers have listed, then on every
/// change; `namespaces_changed` (from the reflectors) re-merges the local ConfigMaps.
pub fn start_config_reload(
    client: Client,
    opts: ConfigReloadOptions,
    handle: ConfigHandle,
    stores: Stores,
    namespaces_changed: Arc<Notify>,
    metrics: Option<SelfMetrics>,
    on_reloaded: OnReloaded,
) -> ConfigReload {
    let (ready_tx, ready) = watch::channel(false);
    let mut streams = Vec::new();
    for scope in watch_scopes(&opts) {
        for (kind, name) in [
            (ConfigMapKind::Saturation, &opts.saturation_name),
            (ConfigMapKind::ScaleToZero, &opts.scale_to_zero_name),
        ] {
            let api: Api<ConfigMap> = match &scope {
                Some(ns) => Api::namespaced(client.clone(), ns),
                None => Api::all(client.clone()),
            };
            let index = streams.len();
            let config = watcher::Config::default().fields(&name_selector(name));
            streams.push(
                watcher::watcher(api, config)
                    .default_backoff()
                    .map(move |item| (index, kind, item))
                    .boxed(),
            );
        }
    }
    let mut state = TaskState {
        reloader: ConfigReloader::new(opts.pod_namespace.clone()),
        watchers: vec![WatcherState::default(); streams.len()],
        client,
        opts,
        handle,
        stores,
        metrics,
        on_reloaded,
        ready: ready_tx,
    };
    let task = tokio::spawn(async move {
        let mut merged = futures::stream::select_all(streams);
        loop {
            tokio::select! {
                item = merged.next() => match item {
                    None => break,
                    Some((_, kind, Err(error))) => {
                        tracing::warn!(configmap = kind.as_str(), "ConfigMap watch failed; retrying: {error}");
                    }
                    Some((index, kind, Ok(event))) => state.on_event(index, kind, event),
                },
                () = namespaces_changed.notified() => {
                    if *state.ready.borrow() {
                        state.swap(false);
                    }
                }
            }
        }
    });
    ConfigReload { ready, task }
}

#[derive(Debug, Clone, Default)]
struct WatcherState {
    listed: bool,
    known: HashSet<String>,
    relisted: HashSet<String>,
}

struct TaskState {
    reloader: ConfigReloader,
    watchers: Vec<WatcherState>,
    client: Client,
    opts: ConfigReloadOptions,
    handle: ConfigHandle,
    stores: Stores,
    metrics: Option<SelfMetrics>,
    on_reloaded: OnReloaded,
    ready: watch::Sender<bool>,
}

impl TaskState {
    fn on_event(&mut self, index: usize, kind: ConfigMapKind, event: Event<ConfigMap>) {
        let Some(watcher) = self.watchers.get_mut(index) else {
            return;
        };
        let mut changed = false;
        match event {
            Event::Init => watcher.relisted.clear(),
            Event::InitApply(cm) | Event::Apply(cm) => {
                let namespace = cm.namespace().unwrap_or_default();
                watcher.relisted.insert(namespace.clone());
                watcher.known.insert(namespace.clone());
                let data: BTreeMap<String, String> = cm.data.clone().unwrap_or_default();
                if let Some(outcome) = self.reloader.apply(kind, &namespace, &data) {
                    changed = outcome.changed;
                    self.report(&cm, &outcome);
                }
            }
            Event::Delete(cm) => {
                let namespace = cm.namespace().unwrap_or_default();
                watcher.known.remove(&namespace);
                changed = self.deleted(kind, &namespace, &cm.name_any());
            }
            Event::InitDone => {
                let gone: Vec<String> = watcher
                    .known
                    .difference(&watcher.relisted)
                    .cloned()
                    .collect();
                watcher.known = std::mem::take(&mut watcher.relisted);
                watcher.listed = true;
                let name = match kind {
                    ConfigMapKind::Saturation => self.opts.saturation_name.clone(),
                    ConfigMapKind::ScaleToZero => self.opts.scale_to_zero_name.clone(),
                };
                for namespace in gone {
                    changed |= self.deleted(kind, &namespace, &name);
                }
            }
        }
        let all_listed = self.watchers.iter().all(|w| w.listed);
        if !all_listed {
            return;
        }
        if !*self.ready.borrow() {
            self.swap(false);
            self.ready.send_replace(true);
        } else if changed {
            self.swap(true);
        }
    }

    fn deleted(&mut self, kind: ConfigMapKind, namespace: &str, name: &str) -> bool {
        let changed = self.reloader.delete(kind, namespace);
        if changed && namespace == self.opts.pod_namespace {
            tracing::info!(configmap = %format!("{namespace}/{name}"), "global ConfigMap deleted; {} reverts to the built-in defaults", kind.as_str());
        } else if changed {
            tracing::info!(configmap = %format!("{namespace}/{name}"), "namespace-local ConfigMap deleted; its override is dropped");
        }
        changed
    }

    fn eligible(&self, namespace: &str) -> bool {
        if !self.opts.namespace_overrides {
            return false;
        }
        let watched = self.opts.watch_namespace.as_deref() == Some(namespace);
        let meta = self.stores.namespaces.as_ref().and_then(|store| {
            store.get(&ObjectRef::<PartialObjectMeta<Namespace>>::new(namespace))
        });
        if !watched
            && meta
                .as_ref()
                .is_some_and(|m| namespace_excluded(&m.metadata))
        {
            return false;
        }
        meta.as_ref()
            .is_some_and(|m| namespace_config_enabled(&m.metadata))
            || self
                .stores
                .vas
                .state()
                .iter()
                .any(|va| va.metadata.namespace.as_deref() == Some(namespace))
    }

    /// Rebuilds the configuration in force, swaps it in and, when asked, requests a cycle.
    fn swap(&self, request_cycle: bool) {
        let (config, issues) = self.reloader.build(&|ns| self.eligible(ns));
        for (key, message) in issues {
            tracing::error!(key = %key, "configuration entry left out when merging ConfigMaps: {message}");
        }
        self.handle.store(Arc::new(config));
        if request_cycle {
            (self.on_reloaded)();
        }
    }

    fn report(&self, cm: &ConfigMap, outcome: &ReloadOutcome) {
        let namespace = cm.namespace().unwrap_or_default();
        let name = cm.name_any();
        for (key, message) in &outcome.warnings {
            tracing::warn!(configmap = %format!("{namespace}/{name}"), key = %key, "{message}");
        }
        let result = if outcome.rejected.is_empty() {
            ReloadResult::Ok
        } else {
            ReloadResult::Rejected
        };
        if let Some(metrics) = &self.metrics {
            metrics.record_config_reload(outcome.kind, result);
        }
        if outcome.rejected.is_empty() {
            tracing::info!(configmap = %format!("{namespace}/{name}"), "configuration reloaded");
            return;
        }
        for (key, message) in &outcome.rejected {
            tracing::error!(configmap = %format!("{namespace}/{name}"), key = %key, "configuration entry rejected: {message}");
        }
        let note =
            invalid_configuration(&namespace, &name, &outcome.rejected, outcome.first_version);
        let event = KubeEvent {
            type_: match note.type_ {
                EventType::Normal => KubeEventType::Normal,
                EventType::Warning => KubeEventType::Warning,
            },
            reason: note.reason.to_owned(),
            note: Some(note.note),
            action: note.action.to_owned(),
            secondary: None,
        };
        let reference = cm.object_ref(&());
        let recorder = Recorder::new(
            self.client.clone(),
            Reporter {
                controller: REPORTER.to_owned(),
                instance: self.opts.pod_name.clone(),
            },
        );
        tokio::spawn(async move {
            if let Err(error) = recorder.publish(&event, &reference).await {
                tracing::warn!("publishing the InvalidConfiguration Event failed: {error}");
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(watch: Option<&str>, overrides: bool) -> ConfigReloadOptions {
        ConfigReloadOptions {
            pod_namespace: "wva".into(),
            pod_name: None,
            watch_namespace: watch.map(str::to_owned),
            namespace_overrides: overrides,
            saturation_name: "s".into(),
            scale_to_zero_name: "z".into(),
        }
    }

    #[test]
    fn scopes_follow_the_watch_namespace_and_overrides() {
        assert_eq!(watch_scopes(&opts(None, true)), vec![None]);
        assert_eq!(watch_scopes(&opts(None, false)), vec![Some("wva".into())]);
        assert_eq!(
            watch_scopes(&opts(Some("app"), true)),
            vec![Some("wva".into()), Some("app".into())]
        );
        assert_eq!(
            watch_scopes(&opts(Some("wva"), true)),
            vec![Some("wva".into())]
        );
        assert_eq!(name_selector("s"), "metadata.name=s");
    }
}
