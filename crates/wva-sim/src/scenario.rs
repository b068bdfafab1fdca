//! Scenarios: a complete fleet config plus a duration, built in by name or read from YAML
//! (spec/sim.md §4).

use crate::config::{ConfigError, FleetConfig};
use crate::duration::parse_duration;
use std::path::Path;
use std::time::Duration;

/// A scenario.
#[derive(Debug, Clone, PartialEq)]
pub struct Scenario {
    /// Name (built-in name or file stem).
    pub name: String,
    /// One-line description.
    pub description: String,
    /// How long it runs.
    pub duration: Duration,
    /// The fleet (its `events` are the scenario's actions).
    pub config: FleetConfig,
}

/// Errors loading a scenario.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// Neither a built-in name nor a readable file.
    #[error("unknown scenario {0:?}; built-ins: {1}")]
    Unknown(String, String),
    /// The file's config is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// `duration` is missing or invalid.
    #[error("duration: {0}")]
    Duration(String),
}

/// The demo's model.
pub const DEMO_MODEL: &str = "meta-llama/Llama-3.1-8B-Instruct";

const BUILTINS: [(&str, &str); 10] = [
    (
        "demo",
        "L4 + H100 variants; 4 req/s for 10 s, 30 req/s for 25 s, then 2 req/s; 60 s",
    ),
    ("constant", "the demo fleet at a constant 8 req/s; 120 s"),
    (
        "step",
        "the demo fleet, 4 req/s stepping to 30 req/s at 20 s; 120 s",
    ),
    (
        "ramp",
        "the demo fleet, a ramp from 2 to 30 req/s over 60 s from 10 s; 120 s",
    ),
    (
        "diurnal",
        "the demo fleet, a 60 s sine between 2 and 22 req/s; 120 s",
    ),
    (
        "burst",
        "the demo fleet, 3 req/s with 15 s bursts of 30 req/s every 45 s; 120 s",
    ),
    (
        "idle-then-burst",
        "the demo fleet idle for 30 s, then 2 req/s (scale to and from zero); 90 s",
    ),
    (
        "bench-10",
        "10 pods: 1 model x 2 variants x 5; minimal metrics, +Inf buckets; 180 s",
    ),
    (
        "bench-100",
        "100 pods: 10 models x 2 variants x 5; minimal metrics, +Inf buckets; 180 s",
    ),
    (
        "bench-1000",
        "1000 pods: 100 models x 2 variants x 5; minimal metrics, +Inf buckets; 180 s",
    ),
];

fn demo_fleet(load_yaml: &str) -> String {
    format!(
        "seed: 42
startup_delay: 5s
termination_grace: 30s
models:
  - name: {DEMO_MODEL}
    load: {load_yaml}
variants:
  - {{name: llama-8b-l4, model: {DEMO_MODEL}, accelerator: L4, cost: 0.8, replicas: 1}}
  - {{name: llama-8b-h100, model: {DEMO_MODEL}, accelerator: H100, cost: 4.0, replicas: 1}}
"
    )
}

fn bench_fleet(models: usize) -> String {
    let mut y = String::from("seed: 42\nmetrics: {set: minimal, buckets: inf_only}\nmodels:\n");
    for i in 0..models {
        y.push_str(&format!(
            "  - name: bench/model-{i:03}\n    load: {{type: step, steps: [{{at: 0s, rate: 10}}, {{at: 60s, rate: 30}}, {{at: 120s, rate: 5}}]}}\n"
        ));
    }
    y.push_str("variants:\n");
    for i in 0..models {
        y.push_str(&format!(
            "  - {{name: m{i:03}-cheap, model: bench/model-{i:03}, accelerator: L4, cost: 10, replicas: 5}}\n  - {{name: m{i:03}-fast, model: bench/model-{i:03}, accelerator: H100, cost: 40, replicas: 5}}\n"
        ));
    }
    y
}

impl Scenario {
    /// Built-in names with a one-line description each.
    pub fn list() -> Vec<(&'static str, &'static str)> {
        BUILTINS.to_vec()
    }

    /// A built-in scenario by name.
    pub fn named(name: &str) -> Result<Scenario, ScenarioError> {
        let (yaml, secs) = match name {
            "demo" => (
                demo_fleet(
                    "{type: step, steps: [{at: 0s, rate: 4}, {at: 10s, rate: 30}, {at: 35s, rate: 2}]}",
                ),
                60,
            ),
            "constant" => (demo_fleet("{type: constant, rate: 8}"), 120),
            "step" => (
                demo_fleet("{type: step, before: 4, after: 30, at: 20s}"),
                120,
            ),
            "ramp" => (
                demo_fleet("{type: ramp, from: 2, to: 30, start: 10s, duration: 60s}"),
                120,
            ),
            "diurnal" => (
                demo_fleet("{type: diurnal, mean: 12, amplitude: 10, period: 60s}"),
                120,
            ),
            "burst" => (
                demo_fleet(
                    "{type: burst, base: 3, peak: 30, start: 10s, duration: 15s, every: 45s}",
                ),
                120,
            ),
            "idle-then-burst" => (
                demo_fleet("{type: idle_then_burst, idle: 30s, rate: 2}"),
                90,
            ),
            "bench-10" => (bench_fleet(1), 180),
            "bench-100" => (bench_fleet(10), 180),
            "bench-1000" => (bench_fleet(100), 180),
            _ => {
                let names: Vec<&str> = BUILTINS.iter().map(|b| b.0).collect();
                return Err(ScenarioError::Unknown(name.to_owned(), names.join(", ")));
            }
        };
        let config = FleetConfig::from_yaml_str(&yaml)?;
        let description = BUILTINS
            .iter()
            .find(|b| b.0 == name)
            .map(|b| b.1.to_owned())
            .unwrap_or_default();
        Ok(Scenario {
            name: name.to_owned(),
            description,
            duration: Duration::from_secs(secs),
            config,
        })
    }

    /// A built-in name, or else a YAML file path.
    pub fn load(name_or_path: &str) -> Result<Scenario, ScenarioError> {
        if BUILTINS.iter().any(|b| b.0 == name_or_path) {
            return Self::named(name_or_path);
        }
        let path = Path::new(name_or_path);
        if path.is_file() {
            return Self::from_file(path);
        }
        Self::named(name_or_path)
    }

    /// Reads a scenario file: a fleet config with `duration` (and optional `name`, `description`).
    pub fn from_file(path: &Path) -> Result<Scenario, ScenarioError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.display().to_string(),
            source,
        })?;
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        Self::from_yaml_str(&text, &stem, &path.display().to_string())
    }

    /// Parses scenario YAML; `default_name` names it when it has no `name`.
    pub fn from_yaml_str(
        text: &str,
        default_name: &str,
        source_name: &str,
    ) -> Result<Scenario, ScenarioError> {
        let parse = |message: String| ConfigError::Parse {
            source_name: source_name.to_owned(),
            message,
        };
        let mut v: serde_json::Value =
            serde_saphyr::from_str(text).map_err(|e| parse(e.to_string()))?;
        let obj = v
            .as_object_mut()
            .ok_or_else(|| parse("a scenario is a mapping".into()))?;
        let duration = match obj.remove("duration") {
            Some(serde_json::Value::String(s)) => {
                parse_duration(&s).map_err(ScenarioError::Duration)?
            }
            Some(serde_json::Value::Number(n)) => {
                parse_duration(&n.to_string()).map_err(ScenarioError::Duration)?
            }
            Some(other) => {
                return Err(ScenarioError::Duration(format!(
                    "{other} is not a duration"
                )));
            }
            None => {
                return Err(ScenarioError::Duration(
                    "missing; e.g. duration: 60s".into(),
                ));
            }
        };
        let name = obj
            .remove("name")
            .and_then(|n| n.as_str().map(str::to_owned))
            .unwrap_or_else(|| default_name.to_owned());
        let description = obj
            .remove("description")
            .and_then(|n| n.as_str().map(str::to_owned))
            .unwrap_or_default();
        let config: FleetConfig = serde_json::from_value(v).map_err(|e| parse(e.to_string()))?;
        config.validate()?;
        Ok(Scenario {
            name,
            description,
            duration,
            config,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capacity::max_rate;
    use crate::exposition::{BucketMode, MetricSet};

    #[test]
    fn every_builtin_loads_and_validates() {
        for (name, _) in Scenario::list() {
            let s = Scenario::named(name).unwrap();
            assert_eq!(s.name, name);
            assert!(s.duration >= Duration::from_secs(60));
        }
        assert!(matches!(
            Scenario::named("nope"),
            Err(ScenarioError::Unknown(..))
        ));
    }

    #[test]
    fn demo_step_overloads_the_fleet_then_underloads_it() {
        let s = Scenario::named("demo").unwrap();
        let m = &s.config.models[0];
        let (i, o) = (m.prompt_dist().mean(), m.output_dist().mean());
        let cap: f64 = s
            .config
            .variants
            .iter()
            .map(|v| max_rate(&v.profile(), i, o))
            .sum();
        assert!(
            m.load.rate_at(20.0) > 1.2 * cap,
            "30 req/s must exceed {cap}"
        );
        assert!(m.load.rate_at(40.0) < 0.2 * cap);
        assert_eq!(s.config.startup_delay, Duration::from_secs(5));
    }

    #[test]
    fn demo_saturates_during_the_step_and_a_variant_recovers_by_the_end() {
        let s = Scenario::named("demo").unwrap();
        let mut sim = crate::sim::Simulation::new(s.config).unwrap();
        let saturated = |sim: &crate::sim::Simulation| {
            let snap = sim.snapshot();
            snap.models[0].gateway_queue > 0
                || snap
                    .variants
                    .iter()
                    .any(|v| v.kv_max >= 0.8 || v.waiting >= 5)
        };
        let mut during = false;
        let mut after_quiet = true;
        for k in 0..600u32 {
            sim.tick();
            let t = f64::from(k + 1) / 10.0;
            if (15.0..35.0).contains(&t) {
                during |= saturated(&sim);
            }
            if t >= 59.0 {
                after_quiet &= sim
                    .snapshot()
                    .variants
                    .iter()
                    .any(|v| v.waiting == 0 && v.kv_max < 0.8);
            }
        }
        assert!(during, "30 req/s must saturate the 1+1 fleet");
        assert!(
            after_quiet,
            "at 2 req/s at least one variant is idle again by the end"
        );
    }

    #[test]
    fn bench_scenarios_have_the_pod_counts_of_their_name() {
        for (name, pods) in [("bench-10", 10), ("bench-100", 100), ("bench-1000", 1000)] {
            let s = Scenario::named(name).unwrap();
            assert_eq!(
                s.config.variants.iter().map(|v| v.replicas).sum::<u32>(),
                pods
            );
            assert_eq!(s.config.metrics.set, MetricSet::Minimal);
            assert_eq!(s.config.metrics.buckets, BucketMode::InfOnly);
        }
    }

    #[test]
    fn yaml_scenario_needs_a_duration_and_keeps_events() {
        let y = "name: mine\nduration: 30s\nmodels:\n  - name: m\nvariants:\n  - {name: a, model: m, accelerator: L4}\nevents:\n  - {at: 5s, action: {resize: {variant: a, replicas: 2}}}\n";
        let s = Scenario::from_yaml_str(y, "x", "<test>").unwrap();
        assert_eq!(
            (s.name.as_str(), s.duration, s.config.events.len()),
            ("mine", Duration::from_secs(30), 1)
        );
        let e = Scenario::from_yaml_str("models: []\nvariants: []\n", "x", "<test>").unwrap_err();
        assert!(e.to_string().starts_with("duration:"), "{e}");
    }
}
