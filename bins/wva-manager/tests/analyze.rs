//! End-to-end tests of `wva-manager analyze` on JSON files: the built binary, real files,
//! stdin, exit codes and the one-line errors.

// Test helpers outside #[test] functions unwrap too; failures are test failures.
#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_wva-manager"))
}

fn example(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../docs/examples")
        .join(name)
}

fn analyze_file(path: &std::path::Path) -> Output {
    bin()
        .args(["analyze", "--input"])
        .arg(path)
        .output()
        .unwrap()
}

fn analyze_stdin(text: &str) -> Output {
    let mut child = bin()
        .args(["analyze", "--input", "-"])
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
    child.wait_with_output().unwrap()
}

fn report(out: &Output) -> serde_json::Value {
    assert_eq!(
        out.status.code(),
        Some(0),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn stderr_line(out: &Output) -> String {
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    let text = String::from_utf8(out.stderr.clone()).unwrap();
    assert_eq!(text.lines().count(), 1, "{text}");
    text.trim_end().to_string()
}

#[test]
fn every_example_prints_its_committed_report() {
    for entry in std::fs::read_dir(example("")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.to_string_lossy().to_string();
        let Some(stem) = name.strip_suffix(".input.json") else {
            continue;
        };
        let report_path = PathBuf::from(format!("{stem}.report.json"));
        let out = analyze_file(&path);
        if report_path.exists() {
            let expected: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(&report_path).unwrap()).unwrap();
            assert_eq!(report(&out), expected, "{name}");
        } else {
            let expected = std::fs::read_to_string(format!("{stem}.error.txt")).unwrap();
            assert_eq!(
                stderr_line(&out),
                format!("analyze: invalid input: {}", expected.trim_end())
            );
        }
    }
}

#[test]
fn queue_trigger_example_scales_the_cheap_variant() {
    let r = report(&analyze_file(&example("v1-queue-scale-up.input.json")));
    let d = &r["decisions"];
    assert_eq!(d[0]["variant"], "llama-a");
    assert_eq!(d[0]["targetReplicas"], 2);
    assert_eq!(d[1]["variant"], "llama-b");
    assert_eq!(d[1]["targetReplicas"], 2);
    assert_eq!(d[1]["action"], "scale_up");
    assert_eq!(d[1]["reason"], "queue_saturation");
    assert_eq!(d[1]["detail"], "queue spare Saturation low (2.5 < 3.0)");
    assert!(r.get("timings").is_none());
}

#[test]
fn stdin_input_and_other_thresholds_replay() {
    let text = std::fs::read_to_string(example("v1-safe-scale-down.input.json")).unwrap();
    let r = report(&analyze_stdin(&text));
    assert_eq!(r["decisions"][0]["targetReplicas"], 2);
    assert_eq!(r["decisions"][0]["reason"], "spare_capacity");
    // "What would happen with a higher queue spare trigger?" – the scale-down becomes unsafe.
    let stricter = text.replace(
        "\"config\": {}",
        "\"config\": {\"default\": {\"queueSpareTrigger\": 4}}",
    );
    let r = report(&analyze_stdin(&stricter));
    assert_eq!(r["decisions"][0]["targetReplicas"], 3);
}

#[test]
fn the_report_input_replays_to_the_same_report() {
    let first = report(&analyze_file(&example("v2-scale-up.input.json")));
    let again = report(&analyze_stdin(&first["input"].to_string()));
    assert_eq!(first, again);
}

#[test]
fn invalid_config_names_the_key_value_and_range() {
    let line = stderr_line(&analyze_file(&example("invalid-config.input.json")));
    assert_eq!(
        line,
        "analyze: invalid input: config[\"default\"]: kvCacheThreshold (0.05) should be >= kvSpareTrigger (0.10)"
    );
    let line = stderr_line(&analyze_stdin(
        r#"{"config": {"m": {"model_id": "m", "analyzerName": "v9"}}, "variants": [], "replicas": []}"#,
    ));
    assert_eq!(
        line,
        "analyze: invalid input: config[\"m\"]: analyzerName must be one of \"\", \"saturation\", \"queueing-model\", got \"v9\""
    );
}

#[test]
fn unknown_field_is_named_with_its_json_path() {
    let line = stderr_line(&analyze_file(&example("invalid-field.input.json")));
    assert!(
        line.starts_with("analyze: invalid input: variants[0].curentReplicas: unknown field `curentReplicas`, expected one of `name`"),
        "{line}"
    );
}

#[test]
fn bad_values_and_unreadable_files_exit_2() {
    let line = stderr_line(&analyze_stdin(
        r#"{"config": {}, "variants": [{"name": "v", "namespace": "n", "modelID": "m", "accelerator": "", "cost": -3, "currentReplicas": 1, "readyReplicas": 1, "desiredReplicas": 1, "gpusPerReplica": 1}], "replicas": []}"#,
    ));
    assert_eq!(
        line,
        "analyze: invalid input: variants[0].cost: must be a finite number >= 0, got -3"
    );
    let line = stderr_line(&analyze_stdin("{not json"));
    assert!(line.starts_with("analyze: invalid input: "), "{line}");
    let line = stderr_line(&analyze_file(std::path::Path::new(
        "/nonexistent/cycle.json",
    )));
    assert!(
        line.starts_with("analyze: reading /nonexistent/cycle.json: "),
        "{line}"
    );
}

#[test]
fn scale_to_zero_warnings_go_to_stderr_without_failing() {
    let out = analyze_stdin(
        r#"{"config": {}, "scaleToZero": {"default": {"retention_period": "soon"}}, "variants": [], "replicas": []}"#,
    );
    report(&out);
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(
        err.trim_end(),
        "analyze: warning: scaleToZero[\"default\"]: invalid duration format: soon"
    );
}
