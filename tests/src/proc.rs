//! Child processes that cannot outlive their test: [`ProcessGuard`] sends SIGTERM on drop
//! (panic unwinding included), waits 3 s, then SIGKILLs and reaps.
//!
//! Every child's PID and program are appended to `<artifacts>/pids`, so that `cargo xtask e2e`
//! can end leftovers of a SIGKILLed test binary (PR_SET_PDEATHSIG needs `unsafe`, which the
//! workspace forbids).

use std::fs::OpenOptions;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{Result, err};

/// A running child with its log file; terminated on drop.
#[derive(Debug)]
pub struct ProcessGuard {
    name: String,
    child: Option<Child>,
    log: PathBuf,
}

impl ProcessGuard {
    /// Spawns `cmd` with stdout and stderr appended to `<dir>/<name>.log`.
    pub fn spawn(name: &str, mut cmd: Command, dir: &Path) -> Result<ProcessGuard> {
        std::fs::create_dir_all(dir).map_err(|e| err(format!("{}: {e}", dir.display())))?;
        let log = dir.join(format!("{name}.log"));
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .map_err(|e| err(format!("{}: {e}", log.display())))?;
        let file2 = file
            .try_clone()
            .map_err(|e| err(format!("{}: {e}", log.display())))?;
        let program = cmd.get_program().to_string_lossy().into_owned();
        let child = cmd
            .stdin(Stdio::null())
            .stdout(file)
            .stderr(file2)
            .spawn()
            .map_err(|e| err(format!("cannot start {name} ({program}): {e}")))?;
        record_pid(child.id(), &program);
        Ok(ProcessGuard {
            name: name.to_string(),
            child: Some(child),
            log,
        })
    }

    /// The child's PID (0 once reaped).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// The process name given at spawn.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// True while the child has not exited.
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// The log file.
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// The last `lines` lines of the log.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// Sends a signal by name (`TERM`, `KILL`) through `kill(1)`.
    pub fn signal(&self, signal: &str) -> bool {
        let pid = self.pid();
        pid != 0
            && Command::new("kill")
                .arg(format!("-{signal}"))
                .arg(pid.to_string())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
    }

    /// SIGKILL now and reap.
    pub fn kill_now(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM, wait up to `grace`, then SIGKILL; returns the exit code if it exited by itself.
    pub fn terminate(&mut self, grace: Duration) -> Option<i32> {
        let mut child = self.child.take()?;
        if let Ok(Some(status)) = child.try_wait() {
            return status.code();
        }
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
        None
    }
}

impl Drop for ProcessGuard {
    fn drop(&mut self) {
        self.terminate(Duration::from_secs(3));
    }
}

/// The directory of all e2e artifacts: `WVA_E2E_ARTIFACTS`, else `<workspace>/target/e2e`.
pub fn artifacts_root() -> PathBuf {
    std::env::var_os("WVA_E2E_ARTIFACTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .parent()
                .unwrap_or_else(|| Path::new("."))
                .join("target")
                .join("e2e")
        })
}

fn record_pid(pid: u32, program: &str) {
    let root = artifacts_root();
    let _ = std::fs::create_dir_all(&root);
    if let Ok(mut f) = OpenOptions::new()
        .create(true)
        .append(true)
        .open(root.join("pids"))
    {
        let _ = writeln!(f, "{pid} {program}");
    }
}

/// Finds an executable: the environment variable `var` when set, else `name` on `PATH`.
pub fn find_binary(var: &str, name: &str) -> Option<PathBuf> {
    if let Some(p) = std::env::var_os(var) {
        let p = PathBuf::from(p);
        return p.is_file().then_some(p);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// True when `WVA_REQUIRE_PROMETHEUS=1`: a missing Prometheus fails instead of skipping.
pub fn prometheus_required() -> bool {
    std::env::var("WVA_REQUIRE_PROMETHEUS").is_ok_and(|v| v == "1" || v == "true")
}

/// The hint printed when Prometheus is missing.
pub const INSTALL_HINT: &str = "prometheus not found on PATH: install the Debian package (apt-get install --no-install-recommends prometheus) or set WVA_PROMETHEUS_BIN";

/// The `wva-manager` binary: `WVA_MANAGER_BIN`, else next to this test executable (built by
/// `cargo test --workspace`), else built with `cargo build -p wva-manager`.
pub fn manager_binary() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("WVA_MANAGER_BIN") {
        return Ok(PathBuf::from(p));
    }
    let exe = std::env::current_exe().map_err(|e| err(format!("current_exe: {e}")))?;
    // target/<profile>/deps/<test> or target/<profile>/<bin>
    let profile_dir = exe
        .ancestors()
        .find(|a| a.join("wva-manager").is_file())
        .map(Path::to_path_buf);
    if let Some(dir) = profile_dir {
        return Ok(dir.join("wva-manager"));
    }
    let target = exe
        .ancestors()
        .find(|a| a.file_name().is_some_and(|n| n == "deps"))
        .and_then(|deps| deps.parent()?.parent().map(Path::to_path_buf))
        .ok_or_else(|| err("cannot locate the target directory; set WVA_MANAGER_BIN"))?;
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let status = Command::new(cargo)
        .args([
            "build",
            "-p",
            "wva-manager",
            "--bin",
            "wva-manager",
            "--target-dir",
        ])
        .arg(&target)
        .status()
        .map_err(|e| err(format!("cargo build -p wva-manager: {e}")))?;
    let bin = target.join("debug").join("wva-manager");
    if status.success() && bin.is_file() {
        Ok(bin)
    } else {
        Err(err("cannot build wva-manager; set WVA_MANAGER_BIN"))
    }
}
