//! `cargo xtask codegen [--check]`: writes the CRD generated from the Rust types into `deploy/`,
//! or (with `--check`) fails when the committed file is stale.

use std::process::Command;

use crate::{StepError, StepResult, workspace_root};

/// The committed CRD, relative to the workspace root.
pub const CRD_FILE: &str = "deploy/crd/variantautoscalings.llmd.ai.yaml";

/// Runs `codegen`.
pub fn run(args: &[String]) -> StepResult {
    let check = args.iter().any(|a| a == "--check");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    eprintln!("==> {cargo} run -q -p wva-manager -- crd");
    let out = Command::new(&cargo)
        .args(["run", "-q", "-p", "wva-manager", "--", "crd"])
        .current_dir(workspace_root())
        .output()
        .map_err(|e| StepError(format!("cannot run wva-manager crd: {e}")))?;
    if !out.status.success() {
        return Err(StepError(format!(
            "wva-manager crd failed: {}",
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    let path = workspace_root().join(CRD_FILE);
    if check {
        let committed = std::fs::read(&path).unwrap_or_default();
        if committed != out.stdout {
            return Err(StepError(format!(
                "{CRD_FILE} is stale; run cargo xtask codegen"
            )));
        }
        eprintln!("{CRD_FILE} is up to date");
        return Ok(());
    }
    std::fs::write(&path, &out.stdout)
        .map_err(|e| StepError(format!("cannot write {CRD_FILE}: {e}")))?;
    eprintln!("wrote {CRD_FILE}");
    Ok(())
}
