//! `cargo xtask ci`: what CI and a new developer run — everything, in one command.

use crate::{StepError, StepResult, on_path, run_step};

/// Installs missing test dependencies, then runs fmt, clippy, the whole test suite, the CRD
/// freshness check and the manifest validation.
pub fn run(_args: &[String]) -> StepResult {
    ensure_prometheus()?;
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    run_step(&cargo, &["fmt", "--all", "--", "--check"], &[])?;
    run_step(
        &cargo,
        &[
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ],
        &[],
    )?;
    run_step(
        &cargo,
        &["test", "--workspace", "--all-targets"],
        &[("WVA_REQUIRE_PROMETHEUS", "1")],
    )?;
    run_step(
        &cargo,
        &["test", "--workspace", "--doc"],
        &[("WVA_REQUIRE_PROMETHEUS", "1")],
    )?;
    crate::codegen::run(&["--check".to_string()])?;
    crate::validate::run(&[])
}

/// The integration tests talk to a real Prometheus (Debian package `prometheus`).
/// Install it with apt when it is missing and we may (root); otherwise say how.
fn ensure_prometheus() -> StepResult {
    if on_path("prometheus") && on_path("promtool") {
        return Ok(());
    }
    let is_root = std::process::Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false);
    if !is_root || !on_path("apt-get") {
        return Err(StepError(
            "the tests need a real Prometheus: install it with \
             `sudo apt-get install -y --no-install-recommends prometheus` (Debian/Ubuntu) \
             or put a `prometheus` and `promtool` binary on PATH"
                .to_string(),
        ));
    }
    eprintln!("==> prometheus not found: installing the Debian package");
    run_step(
        "apt-get",
        &["update", "-q"],
        &[("DEBIAN_FRONTEND", "noninteractive")],
    )?;
    run_step(
        "apt-get",
        &[
            "install",
            "-y",
            "-q",
            "--no-install-recommends",
            "prometheus",
        ],
        &[("DEBIAN_FRONTEND", "noninteractive")],
    )?;
    // The package starts a system service; the tests start their own instances.
    let _ = std::process::Command::new("sh")
        .args(["-c", "command -v systemctl >/dev/null && systemctl stop prometheus 2>/dev/null; pkill -x prometheus 2>/dev/null; true"])
        .status();
    Ok(())
}
