//! `cargo xtask bench [--models 10,100,1000] [--no-build]`: whole-process measurements (spec/sim.md §7) by
//! the `bench` binary of `wva-e2e` against the release `wva-manager`, spliced into
//! `docs/performance.md` between `<!-- xtask-bench:start -->` and `<!-- xtask-bench:end -->`.

use std::path::Path;

use crate::e2e::{check_prometheus, target_dir};
use crate::{StepError, StepResult, run_step, workspace_root};

const START: &str = "<!-- xtask-bench:start -->";
const END: &str = "<!-- xtask-bench:end -->";

/// Builds, runs the bench and updates the docs.
pub fn run(args: &[String]) -> StepResult {
    let mut models = "10,100,1000".to_string();
    let mut build = true;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--models" => {
                models = it
                    .next()
                    .ok_or_else(|| StepError("--models needs a value".into()))?
                    .clone()
            }
            "--no-build" => build = false,
            other => return Err(StepError(format!("bench: unknown argument {other:?}"))),
        }
    }
    check_prometheus()?;
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    if build {
        run_step(
            &cargo,
            &[
                "build",
                "--release",
                "-p",
                "wva-manager",
                "--bin",
                "wva-manager",
            ],
            &[],
        )?;
        run_step(
            &cargo,
            &["build", "--release", "-p", "wva-e2e", "--bin", "bench"],
            &[],
        )?;
    }
    let target = target_dir();
    let manager = target
        .join("release")
        .join("wva-manager")
        .display()
        .to_string();
    let artifacts = target.join("e2e").display().to_string();
    let command = if models == "10,100,1000" {
        "cargo xtask bench".to_string()
    } else {
        format!("cargo xtask bench --models {models}")
    };
    let bench = target.join("release").join("bench").display().to_string();
    run_step(
        &bench,
        &[],
        &[
            ("WVA_MANAGER_BIN", &manager),
            ("WVA_E2E_ARTIFACTS", &artifacts),
            ("WVA_BENCH_MODELS", &models),
            ("WVA_BENCH_COMMAND", &command),
        ],
    )?;
    let table = std::fs::read_to_string(target.join("bench").join("latest.md"))
        .map_err(|e| StepError(format!("bench table: {e}")))?;
    splice(
        &workspace_root().join("docs").join("performance.md"),
        &table,
    )
}

/// Replaces the text between the markers (appending a marked section when absent).
fn splice(doc: &Path, table: &str) -> StepResult {
    let old = std::fs::read_to_string(doc).unwrap_or_else(|_| "# Performance\n".to_string());
    let section = format!(
        "{START}\n## Whole-process measurements (`cargo xtask bench`)\n\n{}\n{END}",
        table.trim_end()
    );
    let new = match (old.find(START), old.find(END)) {
        (Some(s), Some(e)) if e > s => {
            format!("{}{section}{}", &old[..s], &old[e + END.len()..])
        }
        _ => format!("{}\n{section}\n", old.trim_end()),
    };
    std::fs::write(doc, new).map_err(|e| StepError(format!("{}: {e}", doc.display())))?;
    eprintln!("==> updated {}", doc.display());
    Ok(())
}
