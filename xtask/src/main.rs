//! Project automation: `cargo xtask ci | e2e | bench | codegen`.
//!
//! Plain `std` only, so that `cargo xtask` builds in seconds on a fresh machine.

use std::env;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

mod bench;
mod ci;
mod cluster_e2e;
mod codegen;
mod e2e;
mod validate;

/// A failed step: what ran and why it failed.
#[derive(Debug)]
pub struct StepError(String);

impl std::fmt::Display for StepError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Result of one xtask step.
pub type StepResult = Result<(), StepError>;

const USAGE: &str = "usage: cargo xtask <command>

commands:
  codegen   write the CRD generated from the Rust types into deploy/ (--check: fail if stale)
  ci        install what the tests need when missing, then fmt check, clippy -D warnings, all tests,
            the CRD check and `validate`
  validate  build every kustomization under deploy/ and check it with kubernetes-validate --strict,
            and the VariantAutoscaling samples against the CRD schema [--deploy DIR]
  e2e       end-to-end scenarios on the real Prometheus and wva-manager [--scenario S] [--release] [--parallel N];
            with --kubeconfig PATH [--context C] [--image IMG] [--keep]: against a real cluster (docs/e2e.md)
  bench     whole-process measurements spliced into docs/performance.md [--models 10,100,1000] [--no-build]
";

fn main() -> ExitCode {
    let args: Vec<String> = env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("ci") => ci::run(&args[1..]),
        Some("codegen") => codegen::run(&args[1..]),
        Some("e2e") => e2e::run(&args[1..]),
        Some("validate") => validate::run(&args[1..]),
        Some("bench") => bench::run(&args[1..]),
        Some("-h" | "--help" | "help") => {
            print!("{USAGE}");
            Ok(())
        }
        other => {
            eprint!("unknown command {other:?}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The workspace root (the parent of this crate's directory).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// Runs a command in the workspace root, echoing it first; fails on a non-zero exit.
pub fn run_step(program: &str, args: &[&str], envs: &[(&str, &str)]) -> StepResult {
    let line = format!("{program} {}", args.join(" "));
    eprintln!("==> {line}");
    let status = Command::new(program)
        .args(args)
        .envs(envs.iter().copied())
        .current_dir(workspace_root())
        .status()
        .map_err(|e| StepError(format!("cannot start `{line}`: {e}")))?;
    if status.success() {
        Ok(())
    } else {
        Err(StepError(format!("`{line}` failed ({status})")))
    }
}

/// True when `program` is found on `PATH`.
pub fn on_path(program: &str) -> bool {
    env::var_os("PATH")
        .map(|paths| env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
        .unwrap_or(false)
}
