//! The text exposition: golden output, label order, naming modes, parse-back and promtool.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::{exposition, populate, variant};
use wva_core::Reason;
use wva_exposition::{MetricsNaming, ScalingReason, VariantKey};

const MODES: [MetricsNaming; 3] = [
    MetricsNaming::Inferno,
    MetricsNaming::Wva,
    MetricsNaming::Both,
];

fn golden_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name)
}

/// Compares `text` with the golden file; `WVA_UPDATE_GOLDEN=1` rewrites it instead.
fn assert_golden(name: &str, text: &str) {
    let path = golden_path(name);
    if std::env::var_os("WVA_UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, text).unwrap();
    }
    let expected = std::fs::read_to_string(&path).unwrap();
    assert_eq!(text, expected, "output differs from {}", path.display());
}

/// One parsed sample line: name, label pairs in order, value.
#[derive(Debug, Clone, PartialEq)]
struct Sample {
    name: String,
    labels: Vec<(String, String)>,
    value: f64,
}

/// A small parser of the text format 0.0.4 (only what this registry writes), failing loudly.
fn parse(text: &str) -> (BTreeMap<String, (String, String)>, Vec<Sample>) {
    let mut meta: BTreeMap<String, (String, String)> = BTreeMap::new();
    let mut samples = Vec::new();
    assert!(
        text.is_empty() || text.ends_with('\n'),
        "body must end with a newline"
    );
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').unwrap();
            meta.entry(name.into()).or_default().0 = help.into();
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            meta.entry(name.into()).or_default().1 = kind.into();
            continue;
        }
        let (series, value) = line.rsplit_once(' ').unwrap();
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            v => v.parse().unwrap(),
        };
        let (name, labels) = match series.split_once('{') {
            None => (series.to_owned(), Vec::new()),
            Some((name, rest)) => {
                let body = rest.strip_suffix('}').unwrap();
                let mut labels = Vec::new();
                let mut chars = body.chars().peekable();
                while chars.peek().is_some() {
                    let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
                    assert_eq!(chars.next(), Some('"'));
                    let mut value = String::new();
                    loop {
                        match chars.next().unwrap() {
                            '\\' => match chars.next().unwrap() {
                                'n' => value.push('\n'),
                                c => value.push(c),
                            },
                            '"' => break,
                            c => value.push(c),
                        }
                    }
                    labels.push((key, value));
                    if chars.peek() == Some(&',') {
                        chars.next();
                    }
                }
                (name.to_owned(), labels)
            }
        };
        samples.push(Sample {
            name,
            labels,
            value,
        });
    }
    (meta, samples)
}

fn label_names(s: &Sample) -> Vec<&str> {
    s.labels.iter().map(|(k, _)| k.as_str()).collect()
}

fn find<'a>(samples: &'a [Sample], name: &str, variant_name: &str) -> Vec<&'a Sample> {
    samples
        .iter()
        .filter(|s| {
            s.name == name
                && s.labels
                    .iter()
                    .any(|(k, v)| k == "variant_name" && v == variant_name)
        })
        .collect()
}

#[test]
fn golden_output_with_controller_instance() {
    let e = exposition(MetricsNaming::Inferno, Some("x"));
    populate(&e);
    assert_golden("inferno_instance.prom", &e.encode());
}

#[test]
fn golden_output_in_both_naming_modes_without_instance() {
    let e = exposition(MetricsNaming::Both, None);
    populate(&e);
    assert_golden("both_no_instance.prom", &e.encode());
}

#[test]
fn seed_families_have_exact_help_type_and_label_order() {
    let e = exposition(MetricsNaming::Inferno, None);
    populate(&e);
    let (meta, samples) = parse(&e.encode());
    let gauge_labels = ["variant_name", "namespace", "accelerator_type"];
    for (name, help) in [
        (
            "inferno_current_replicas",
            "Current number of replicas for each variant",
        ),
        (
            "inferno_desired_replicas",
            "Desired number of replicas for each variant",
        ),
        (
            "inferno_desired_ratio",
            "Ratio of the desired number of replicas and the current number of replicas for each variant",
        ),
    ] {
        assert_eq!(meta[name], (help.to_owned(), "gauge".to_owned()));
        for s in samples.iter().filter(|s| s.name == name) {
            assert_eq!(label_names(s), gauge_labels);
        }
    }
    assert_eq!(
        meta["inferno_replica_scaling_total"],
        (
            "Total number of replica scaling operations".to_owned(),
            "counter".to_owned()
        )
    );
    let counters: Vec<_> = samples
        .iter()
        .filter(|s| s.name == "inferno_replica_scaling_total")
        .collect();
    assert_eq!(counters.len(), 2);
    for s in counters {
        assert_eq!(
            label_names(s),
            ["variant_name", "namespace", "direction", "reason"]
        );
    }
}

#[test]
fn controller_instance_is_the_last_label_of_every_series_and_precedes_le() {
    let e = exposition(MetricsNaming::Both, Some("shard-a"));
    populate(&e);
    let (_, samples) = parse(&e.encode());
    assert!(!samples.is_empty());
    for s in &samples {
        let names = label_names(s);
        if s.name.ends_with("_bucket") {
            assert_eq!(
                names[names.len() - 2..],
                ["controller_instance", "le"],
                "{s:?}"
            );
        } else {
            assert_eq!(names.last(), Some(&"controller_instance"), "{s:?}");
        }
        assert_eq!(
            names
                .iter()
                .filter(|n| **n == "controller_instance")
                .count(),
            1
        );
    }
}

#[test]
fn unset_instance_adds_no_label() {
    let e = exposition(MetricsNaming::Inferno, None);
    populate(&e);
    assert!(!e.encode().contains("controller_instance"));
}

#[test]
fn values_parse_back_as_published() {
    let e = exposition(MetricsNaming::Inferno, None);
    populate(&e);
    let (_, samples) = parse(&e.encode());
    let value = |name: &str, variant: &str| find(&samples, name, variant)[0].value;
    assert_eq!(value("inferno_current_replicas", "vllm-llama-a100"), 3.0);
    assert_eq!(value("inferno_desired_replicas", "vllm-llama-a100"), 2.0);
    assert_eq!(value("inferno_desired_ratio", "vllm-llama-a100"), 2.0 / 3.0);
    assert_eq!(value("inferno_desired_ratio", "vllm-llama-h100"), 2.0);
    let up = find(&samples, "inferno_replica_scaling_total", "vllm-llama-h100");
    assert_eq!(up.len(), 1);
    assert_eq!(up[0].labels[2], ("direction".into(), "scale_up".into()));
    assert_eq!(
        up[0].labels[3],
        ("reason".into(), "kv_cache_saturation".into())
    );
    assert_eq!(up[0].value, 1.0);
    let age = samples
        .iter()
        .find(|s| s.name == "wva_metric_age_seconds" && s.labels[0].1.starts_with("odd"))
        .unwrap();
    assert_eq!(age.labels[0].1, "odd\"model\\name\nx");
}

#[test]
fn ratio_uses_desired_when_current_is_zero() {
    let e = exposition(MetricsNaming::Inferno, None);
    e.publish(&[
        variant("woken", "H100", 0, 3, Reason::CapacityRequired),
        variant("idle", "H100", 0, 0, Reason::ScaleToZero),
    ]);
    let (_, samples) = parse(&e.encode());
    assert_eq!(
        find(&samples, "inferno_desired_ratio", "woken")[0].value,
        3.0
    );
    assert_eq!(
        find(&samples, "inferno_desired_ratio", "idle")[0].value,
        0.0
    );
    assert!(
        samples
            .iter()
            .all(|s| s.value.is_finite() || s.name.ends_with("_bucket"))
    );
}

#[test]
fn wva_naming_replaces_the_inferno_families_with_identical_series() {
    let inferno = exposition(MetricsNaming::Inferno, None);
    let wva = exposition(MetricsNaming::Wva, None);
    populate(&inferno);
    populate(&wva);
    let inferno_text = inferno.encode();
    let wva_text = wva.encode();
    assert!(!wva_text.contains("inferno_"));
    let renamed = inferno_text.replace("inferno_", "wva_");
    for family in [
        "current_replicas",
        "desired_replicas",
        "desired_ratio",
        "replica_scaling_total",
    ] {
        let lines = |text: &str| -> Vec<String> {
            text.lines()
                .filter(|l| l.contains(&format!("wva_{family}")))
                .map(str::to_owned)
                .collect()
        };
        assert_eq!(lines(&wva_text), lines(&renamed));
        assert!(!lines(&wva_text).is_empty());
    }
}

#[test]
fn both_naming_publishes_both_sets_from_one_publication() {
    let e = exposition(MetricsNaming::Both, None);
    populate(&e);
    let (meta, samples) = parse(&e.encode());
    for prefix in ["inferno", "wva"] {
        for family in [
            "current_replicas",
            "desired_replicas",
            "desired_ratio",
            "replica_scaling_total",
        ] {
            let name = format!("{prefix}_{family}");
            assert!(meta.contains_key(&name), "{name} missing");
            assert_eq!(
                samples.iter().filter(|s| s.name == name).count(),
                2,
                "{name}"
            );
        }
    }
}

#[test]
fn empty_families_are_omitted_except_build_info_and_is_leader() {
    let e = exposition(MetricsNaming::Both, None);
    let (meta, samples) = parse(&e.encode());
    assert_eq!(
        meta.keys().collect::<Vec<_>>(),
        ["wva_build_info", "wva_is_leader"]
    );
    assert_eq!(samples.len(), 2);
    assert_eq!(
        label_names(&samples[0]),
        ["git_commit", "rustc_version", "version"]
    );
}

#[test]
fn removed_variant_vanishes_from_every_family() {
    let e = exposition(MetricsNaming::Both, None);
    populate(&e);
    e.publish(&[variant("vllm-llama-a100", "A100", 2, 2, Reason::Steady)]);
    let text = e.encode();
    assert!(!text.contains("vllm-llama-h100"));
    assert!(text.contains("vllm-llama-a100"));
    assert!(e.remove_variant(&VariantKey::new("llm-d-sim", "vllm-llama-a100")));
    let text = e.encode();
    assert!(!text.contains("variant_name"));
    assert!(!text.contains("inferno_") && !text.contains("wva_replica_scaling_total"));
}

#[test]
fn accelerator_change_leaves_no_gauge_with_the_old_label() {
    let e = exposition(MetricsNaming::Inferno, None);
    e.publish(&[variant("v", "H100", 1, 1, Reason::Steady)]);
    e.publish(&[variant("v", "A100", 1, 1, Reason::Steady)]);
    let text = e.encode();
    assert!(!text.contains("H100"));
    assert_eq!(text.matches("accelerator_type=\"A100\"").count(), 3);
}

#[test]
fn output_is_independent_of_publication_order() {
    let a = exposition(MetricsNaming::Both, Some("i"));
    let b = exposition(MetricsNaming::Both, Some("i"));
    let vs = [
        variant("z", "H100", 1, 2, Reason::KvCacheSaturation),
        variant("a", "L4", 2, 1, Reason::SpareCapacity),
        variant("m", "", 0, 0, Reason::ScaleToZero),
    ];
    let mut reversed = vs.clone();
    reversed.reverse();
    a.publish(&vs);
    b.publish(&reversed);
    assert_eq!(a.encode(), b.encode());
    let (_, samples) = parse(&a.encode());
    let current: Vec<_> = samples
        .iter()
        .filter(|s| s.name == "inferno_current_replicas")
        .map(|s| s.labels[0].1.as_str())
        .collect();
    assert_eq!(current, ["a", "m", "z"]);
    assert!(
        a.encode()
            .contains("variant_name=\"m\",namespace=\"llm-d-sim\",accelerator_type=\"unknown\"")
    );
}

/// Path of `promtool`, when installed.
fn promtool() -> Option<PathBuf> {
    let candidates = std::env::var_os("PATH")
        .map(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join("promtool"))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    candidates
        .into_iter()
        .chain([PathBuf::from("/usr/bin/promtool")])
        .find(|p| p.is_file())
}

/// Runs `promtool check metrics` on `text`: (exit success, combined output).
fn promtool_check(promtool: &Path, text: &str) -> (bool, String) {
    let mut child = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let mut all = String::from_utf8_lossy(&out.stdout).into_owned();
    all.push_str(&String::from_utf8_lossy(&out.stderr));
    (out.status.success(), all)
}

#[test]
fn promtool_check_metrics_is_clean_in_every_mode() {
    let Some(promtool) = promtool() else {
        eprintln!("promtool not installed; skipping the promtool lint");
        return;
    };
    for mode in MODES {
        for instance in [None, Some("x")] {
            let e = exposition(mode, instance);
            populate(&e);
            let (ok, output) = promtool_check(&promtool, &e.encode());
            assert!(
                ok && output.trim().is_empty(),
                "{mode} {instance:?}: {output}"
            );
            let (ok, output) = promtool_check(&promtool, &exposition(mode, instance).encode());
            assert!(
                ok && output.trim().is_empty(),
                "{mode} {instance:?} empty: {output}"
            );
        }
    }
    for golden in ["inferno_instance.prom", "both_no_instance.prom"] {
        let text = std::fs::read_to_string(golden_path(golden)).unwrap();
        let (ok, output) = promtool_check(&promtool, &text);
        assert!(ok && output.trim().is_empty(), "{golden}: {output}");
    }
}

#[test]
fn promtool_detects_a_lint_problem() {
    // Guards the check above against a promtool that accepts anything.
    let Some(promtool) = promtool() else {
        return;
    };
    let (ok, output) = promtool_check(
        &promtool,
        "# HELP bad_count x\n# TYPE bad_count counter\nbad_count 1\n",
    );
    assert!(!ok || !output.trim().is_empty());
}

#[test]
fn documented_reason_list_matches_the_enum_plus_scale_from_zero() {
    let doc = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/metrics-reference.md"),
    )
    .unwrap();
    let section = doc
        .split("<!-- reasons:begin -->")
        .nth(1)
        .and_then(|rest| rest.split("<!-- reasons:end -->").next())
        .expect("docs/metrics-reference.md has a reasons section");
    let documented: Vec<&str> = section
        .lines()
        .filter_map(|l| l.trim().strip_prefix("| `"))
        .filter_map(|l| l.split('`').next())
        .collect();
    let expected: Vec<&str> = ScalingReason::all().map(ScalingReason::as_str).collect();
    assert_eq!(documented, expected);
}
