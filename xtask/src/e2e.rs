//! `cargo xtask e2e [--scenario S] [--release] [--parallel N]`: the end-to-end scenarios of
//! spec/sim.md §6 on the real Prometheus and the real `wva-manager` binary.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use crate::{StepError, StepResult, workspace_root};

const HINT: &str = "prometheus not found on PATH: install the Debian package (apt-get install --no-install-recommends prometheus) or set WVA_PROMETHEUS_BIN";

/// Parsed flags.
struct Flags {
    scenario: Option<String>,
    release: bool,
    parallel: String,
}

fn parse(args: &[String]) -> Result<Flags, StepError> {
    let mut flags = Flags {
        scenario: None,
        release: false,
        parallel: "2".to_string(),
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--scenario" => {
                flags.scenario = Some(
                    it.next()
                        .ok_or_else(|| StepError("--scenario needs a value".into()))?
                        .clone(),
                )
            }
            "--release" => flags.release = true,
            "--parallel" => {
                flags.parallel = it
                    .next()
                    .ok_or_else(|| StepError("--parallel needs a value".into()))?
                    .clone()
            }
            other => return Err(StepError(format!("e2e: unknown argument {other:?}"))),
        }
    }
    Ok(flags)
}

/// A binary from an environment variable or `PATH`.
pub fn find_tool(var: &str, name: &str) -> Option<PathBuf> {
    if let Some(p) = std::env::var_os(var) {
        let p = PathBuf::from(p);
        return p.is_file().then_some(p);
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(name))
            .find(|p| p.is_file())
    })
}

/// Checks Prometheus and promtool, printing the version.
pub fn check_prometheus() -> StepResult {
    let prom =
        find_tool("WVA_PROMETHEUS_BIN", "prometheus").ok_or_else(|| StepError(HINT.into()))?;
    find_tool("WVA_PROMTOOL_BIN", "promtool").ok_or_else(|| StepError(HINT.into()))?;
    if let Ok(out) = Command::new(&prom).arg("--version").output() {
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        eprintln!(
            "==> {}",
            text.lines()
                .next()
                .unwrap_or("prometheus (unknown version)")
        );
    }
    Ok(())
}

/// The target directory cargo uses.
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"))
}

/// Ends children of an earlier, killed run: the PIDs listed in `<artifacts>/pids` that are
/// still alive and whose command line starts with the program recorded there.
pub fn reap_leftovers(artifacts: &Path) {
    let list = artifacts.join("pids");
    let Ok(text) = std::fs::read_to_string(&list) else {
        return;
    };
    for line in text.lines() {
        let Some((pid, program)) = line.split_once(' ') else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        let argv0 = cmdline.split(|b| *b == 0).next().unwrap_or_default();
        if argv0 == program.as_bytes() {
            eprintln!("==> ending leftover child {pid} ({program})");
            let _ = Command::new("kill").args(["-KILL", pid]).status();
        }
    }
    let _ = std::fs::remove_file(&list);
}

/// Runs the scenarios and prints a table of scenario, result and duration; with `--kubeconfig`
/// runs the cluster mode instead.
pub fn run(args: &[String]) -> StepResult {
    if args
        .iter()
        .any(|a| a == "--kubeconfig" || a.starts_with("--kubeconfig="))
    {
        return crate::cluster_e2e::run(args);
    }
    let flags = parse(args)?;
    check_prometheus()?;
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let profile = if flags.release { "release" } else { "debug" };
    let mut build = vec!["build", "-p", "wva-manager", "--bin", "wva-manager"];
    if flags.release {
        build.push("--release");
    }
    crate::run_step(&cargo, &build, &[])?;
    let manager = target_dir().join(profile).join("wva-manager");
    let artifacts = target_dir().join("e2e");
    std::fs::create_dir_all(&artifacts)
        .map_err(|e| StepError(format!("{}: {e}", artifacts.display())))?;
    reap_leftovers(&artifacts);
    let mut test = vec!["test", "-p", "wva-e2e", "--test", "e2e"];
    if flags.release {
        test.push("--release");
    }
    test.push("--");
    if let Some(s) = &flags.scenario {
        test.push(s);
    }
    test.extend(["--test-threads", &flags.parallel]);
    let start = Instant::now();
    let manager_text = manager.display().to_string();
    let artifacts_text = artifacts.display().to_string();
    let result = crate::run_step(
        &cargo,
        &test,
        &[
            ("WVA_MANAGER_BIN", &manager_text),
            ("WVA_E2E_ARTIFACTS", &artifacts_text),
            ("WVA_REQUIRE_PROMETHEUS", "1"),
        ],
    );
    print_table(&artifacts, start.elapsed().as_secs_f64());
    reap_leftovers(&artifacts);
    result
}

fn print_table(artifacts: &Path, wall: f64) {
    let Ok(dir) = std::fs::read_dir(artifacts) else {
        return;
    };
    let mut rows: Vec<(String, String)> = dir
        .filter_map(Result::ok)
        .filter(|e| e.path().is_dir())
        .filter_map(|e| {
            let result = std::fs::read_to_string(e.path().join("result.txt")).ok()?;
            Some((
                e.file_name().to_string_lossy().into_owned(),
                result.trim().to_string(),
            ))
        })
        .collect();
    rows.sort();
    println!("\n| scenario | result | duration |\n|---|---|---|");
    for (name, result) in rows {
        let (status, took) = result.split_once(' ').unwrap_or((&result, ""));
        println!("| {name} | {status} | {took} |");
    }
    println!("\ntotal wall time (tests, build excluded): {wall:.0} s");
}
