//! The two ConfigMaps the core reads: saturation scaling (§2.1–2.2) and scale-to-zero (§2.3).
//!
//! Both share the entry kinds (global `default`, namespace default, model entry), the
//! duplicate rule and the five-step selection; those live here.

mod number;
pub mod queueing;
pub mod saturation;
pub mod scale_to_zero;

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;

/// A rejected (or warned-about) ConfigMap entry: `(key, message)`.
pub type ConfigIssue = (String, String);

/// The key of the global default entry.
pub const DEFAULT_KEY: &str = "default";

/// What an entry applies to, from its key and its `model_id` / `namespace` fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum EntryKind {
    /// The `default` key.
    Global,
    /// Only `namespace` set.
    NamespaceDefault(String),
    /// `model_id` set, namespace optional.
    Model(String, Option<String>),
}

/// Classifies a non-`default` entry; `None` when it sets neither field.
pub(crate) fn classify(
    key: &str,
    model_id: Option<&str>,
    namespace: Option<&str>,
) -> Option<EntryKind> {
    if key == DEFAULT_KEY {
        return Some(EntryKind::Global);
    }
    let model_id = model_id.filter(|m| !m.is_empty());
    let namespace = namespace.filter(|n| !n.is_empty());
    match (model_id, namespace) {
        (Some(m), ns) => Some(EntryKind::Model(m.to_string(), ns.map(str::to_string))),
        (None, Some(ns)) => Some(EntryKind::NamespaceDefault(ns.to_string())),
        (None, None) => None,
    }
}

/// Message for a non-`default` entry that selects nothing.
pub(crate) const NO_SELECTOR: &str = "entry must set model_id or namespace";

/// Accepted entries indexed for the five-step selection of §2.1.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct EntryIndex<T> {
    pub(crate) default: Option<T>,
    pub(crate) namespace_defaults: BTreeMap<String, T>,
    /// model_id -> namespace -> entry.
    pub(crate) model_in_namespace: BTreeMap<String, BTreeMap<String, T>>,
    pub(crate) model_anywhere: BTreeMap<String, T>,
}

impl<T> Default for EntryIndex<T> {
    fn default() -> Self {
        EntryIndex {
            default: None,
            namespace_defaults: BTreeMap::new(),
            model_in_namespace: BTreeMap::new(),
            model_anywhere: BTreeMap::new(),
        }
    }
}

impl<T> EntryIndex<T> {
    /// Entries matching (model, namespace), most specific first (selection steps 1–4).
    pub(crate) fn chain<'a>(&'a self, model_id: &str, namespace: &str) -> Vec<&'a T> {
        let mut out = Vec::with_capacity(4);
        if let Some(e) = self
            .model_in_namespace
            .get(model_id)
            .and_then(|m| m.get(namespace))
        {
            out.push(e);
        }
        if let Some(e) = self.namespace_defaults.get(namespace) {
            out.push(e);
        }
        if let Some(e) = self.model_anywhere.get(model_id) {
            out.push(e);
        }
        if let Some(e) = &self.default {
            out.push(e);
        }
        out
    }

    /// Stores an entry under its identity.
    pub(crate) fn insert(&mut self, kind: EntryKind, value: T) {
        match kind {
            EntryKind::Global => self.default = Some(value),
            EntryKind::NamespaceDefault(ns) => {
                self.namespace_defaults.insert(ns, value);
            }
            EntryKind::Model(m, Some(ns)) => {
                self.model_in_namespace
                    .entry(m)
                    .or_default()
                    .insert(ns, value);
            }
            EntryKind::Model(m, None) => {
                self.model_anywhere.insert(m, value);
            }
        }
    }
}

/// Parses one ConfigMap value (a YAML document whose top level is a mapping; an empty
/// document is an empty mapping) into an entry type. Messages follow §2.2:
/// `unknown field "<name>"` or `invalid entry: <parser message>`.
pub(crate) fn parse_yaml_entry<T: DeserializeOwned + Default>(text: &str) -> Result<T, String> {
    let has_content = text.lines().any(|line| {
        let t = line.trim();
        !t.is_empty() && !t.starts_with('#') && t != "---" && t != "..."
    });
    if !has_content {
        return Ok(T::default());
    }
    let mut options = serde_saphyr::Options::default();
    options.with_snippet = false;
    serde_saphyr::from_str_with_options(text, options).map_err(|e| yaml_message(&e.to_string()))
}

/// Rewrites a YAML parser error into the §2.2 wording, on one line.
fn yaml_message(raw: &str) -> String {
    let line = one_line(raw);
    let line = line.strip_prefix("error: ").unwrap_or(&line);
    if let Some(at) = line.find("unknown field `") {
        let rest = &line[at + "unknown field `".len()..];
        let name = rest.split('`').next().unwrap_or_default();
        return format!("unknown field \"{name}\"");
    }
    format!("invalid entry: {line}")
}

/// Collapses a multi-line parser message to its first non-empty line.
fn one_line(message: &str) -> String {
    message
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("unreadable")
        .to_string()
}
