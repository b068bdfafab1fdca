//! Every `docs/examples/*.input.json` still produces its committed `*.report.json`
//! (`*.error.txt` for inputs that must be rejected). Set `WVA_BLESS=1` to rewrite them after
//! an intended change, then review the diff.

// Test helpers outside #[test] functions unwrap too; failures are test failures.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

use wva_core::{CycleInput, plan};

fn examples_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/examples")
}

fn outcome(text: &str) -> Result<String, String> {
    let input = CycleInput::from_json(text).map_err(|e| e.to_string())?;
    let report = plan(&input).map_err(|e| e.to_string())?;
    report.to_json_pretty().map_err(|e| e.to_string())
}

#[test]
fn documented_examples_produce_their_committed_reports() {
    let bless = std::env::var_os("WVA_BLESS").is_some();
    let mut inputs: Vec<PathBuf> = std::fs::read_dir(examples_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".input.json"))
        .collect();
    inputs.sort();
    assert!(inputs.len() >= 8, "examples missing: {inputs:?}");
    for input_path in inputs {
        let stem = input_path
            .to_string_lossy()
            .trim_end_matches(".input.json")
            .to_string();
        let text = std::fs::read_to_string(&input_path).unwrap();
        let (expected_path, actual) = match outcome(&text) {
            Ok(json) => (
                PathBuf::from(format!("{stem}.report.json")),
                format!("{json}\n"),
            ),
            Err(message) => (
                PathBuf::from(format!("{stem}.error.txt")),
                format!("{message}\n"),
            ),
        };
        if bless {
            std::fs::write(&expected_path, &actual).unwrap();
            continue;
        }
        let expected = std::fs::read_to_string(&expected_path)
            .unwrap_or_else(|e| panic!("{}: {e}", expected_path.display()));
        assert_eq!(actual, expected, "{} changed", input_path.display());
    }
}
