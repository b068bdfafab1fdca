//! `cargo xtask e2e --kubeconfig PATH [--context C] [--image IMG] [--keep]`: the cluster mode
//! of spec/k8s.md §9 (not run in CI here). Builds the image and loads it into kind or k3d
//! (unless `--image` names one the cluster can pull), applies `deploy/overlays/e2e`, then checks
//! target resolution through the VA status and that the manager's logs hold no `Forbidden`.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use crate::{StepError, StepResult, on_path, run_step, workspace_root};

const SYSTEM_NS: &str = "workload-variant-autoscaler-system";
const MANAGER: &str = "workload-variant-autoscaler-controller-manager";
const TEST_NS: &str = "wva-e2e";
const OVERLAY_IMAGE: &str = "wva-manager:e2e";

/// Parsed flags of the cluster mode.
struct Flags {
    kubeconfig: PathBuf,
    context: Option<String>,
    image: Option<String>,
    keep: bool,
}

fn parse(args: &[String]) -> Result<Flags, StepError> {
    let mut kubeconfig = None;
    let mut flags = Flags {
        kubeconfig: PathBuf::new(),
        context: None,
        image: None,
        keep: false,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let (name, inline) = match a.split_once('=') {
            Some((n, v)) => (n, Some(v.to_owned())),
            None => (a.as_str(), None),
        };
        let mut value = || {
            inline
                .clone()
                .or_else(|| it.next().cloned())
                .ok_or_else(|| StepError(format!("{name} needs a value")))
        };
        match name {
            "--kubeconfig" => kubeconfig = Some(PathBuf::from(value()?)),
            "--context" => flags.context = Some(value()?),
            "--image" => flags.image = Some(value()?),
            "--keep" => flags.keep = true,
            other => {
                return Err(StepError(format!(
                    "e2e --kubeconfig: unknown argument {other:?}"
                )));
            }
        }
    }
    flags.kubeconfig = kubeconfig.ok_or_else(|| StepError("--kubeconfig is required".into()))?;
    Ok(flags)
}

/// `kubectl` bound to the kubeconfig and context.
struct Kubectl {
    base: Vec<String>,
}

impl Kubectl {
    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("kubectl");
        cmd.args(&self.base).args(args);
        cmd
    }

    /// Runs and returns stdout; fails with stderr.
    fn output(&self, args: &[&str]) -> Result<String, StepError> {
        let out = self
            .command(args)
            .output()
            .map_err(|e| StepError(format!("cannot start kubectl: {e}")))?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(StepError(format!(
                "kubectl {} failed: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            )))
        }
    }

    /// Runs with `input` on stdin.
    fn with_input(&self, args: &[&str], input: &str) -> StepResult {
        eprintln!("==> kubectl {}", args.join(" "));
        let mut child = self
            .command(args)
            .stdin(Stdio::piped())
            .spawn()
            .map_err(|e| StepError(format!("cannot start kubectl: {e}")))?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin
                .write_all(input.as_bytes())
                .map_err(|e| StepError(format!("kubectl stdin: {e}")))?;
        }
        let status = child
            .wait()
            .map_err(|e| StepError(format!("kubectl: {e}")))?;
        if status.success() {
            Ok(())
        } else {
            Err(StepError(format!(
                "kubectl {} failed ({status})",
                args.join(" ")
            )))
        }
    }

    /// Runs, echoing; fails on a non-zero exit.
    fn step(&self, args: &[&str]) -> StepResult {
        let mut all: Vec<&str> = self.base.iter().map(String::as_str).collect();
        all.extend_from_slice(args);
        run_step("kubectl", &all, &[])
    }
}

/// Runs the cluster mode.
pub fn run(args: &[String]) -> StepResult {
    let flags = parse(args)?;
    if !on_path("kubectl") {
        return Err(StepError("kubectl is not on PATH".into()));
    }
    let mut base = vec![format!("--kubeconfig={}", flags.kubeconfig.display())];
    if let Some(c) = &flags.context {
        base.push(format!("--context={c}"));
    }
    let kubectl = Kubectl { base };
    let context = match &flags.context {
        Some(c) => c.clone(),
        None => kubectl
            .output(&["config", "current-context"])?
            .trim()
            .to_owned(),
    };
    let image = match &flags.image {
        Some(image) => image.clone(),
        None => build_and_load(&context)?,
    };
    let manifests = kubectl
        .output(&[
            "kustomize",
            &workspace_root()
                .join("deploy/overlays/e2e")
                .display()
                .to_string(),
        ])?
        .replace(
            &format!("image: {OVERLAY_IMAGE}"),
            &format!("image: {image}"),
        );
    let result = deploy_and_check(&kubectl, &manifests);
    if let Err(e) = &result {
        eprintln!("==> e2e failed: {e}");
        if let Ok(logs) = manager_logs(&kubectl) {
            eprintln!("==> manager logs (last 50 lines):");
            for line in logs.lines().rev().take(50).collect::<Vec<_>>().iter().rev() {
                eprintln!("{line}");
            }
        }
    }
    if flags.keep {
        eprintln!("==> --keep: leaving namespace {TEST_NS} and the installation in place");
    } else {
        let _ = kubectl.step(&[
            "delete",
            "namespace",
            TEST_NS,
            "--ignore-not-found",
            "--wait=false",
        ]);
        let _ = kubectl.with_input(&["delete", "--ignore-not-found", "-f", "-"], &manifests);
    }
    if result.is_ok() {
        println!("cluster e2e on context {context}: all checks passed");
    }
    result
}

/// Builds `wva-manager:e2e` with docker and loads it into kind (`kind-NAME`) or k3d
/// (`k3d-NAME`), chosen from the context name.
fn build_and_load(context: &str) -> Result<String, StepError> {
    let root = workspace_root().display().to_string();
    run_step(
        "docker",
        &[
            "build",
            "-f",
            "deploy/Dockerfile",
            "-t",
            OVERLAY_IMAGE,
            &root,
        ],
        &[("DOCKER_BUILDKIT", "1")],
    )?;
    if let Some(cluster) = context.strip_prefix("kind-") {
        run_step(
            "kind",
            &["load", "docker-image", OVERLAY_IMAGE, "--name", cluster],
            &[],
        )?;
    } else if let Some(cluster) = context.strip_prefix("k3d-") {
        run_step(
            "k3d",
            &["image", "import", OVERLAY_IMAGE, "-c", cluster],
            &[],
        )?;
    } else {
        return Err(StepError(format!(
            "context {context:?} is neither kind-* nor k3d-*: push an image the cluster can pull and pass --image"
        )));
    }
    Ok(OVERLAY_IMAGE.to_owned())
}

/// The test workloads: a Deployment, a VA on it and a VA on a missing Deployment.
fn workloads() -> String {
    format!(
        r#"apiVersion: v1
kind: Namespace
metadata:
  name: {TEST_NS}
---
{deployment}---
apiVersion: llmd.ai/v1alpha1
kind: VariantAutoscaling
metadata:
  name: e2e-present
  namespace: {TEST_NS}
  labels:
    inference.optimization/acceleratorName: H100
spec:
  modelID: e2e/model-present
  variantCost: "10"
  scaleTargetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: e2e-target
---
apiVersion: llmd.ai/v1alpha1
kind: VariantAutoscaling
metadata:
  name: e2e-missing
  namespace: {TEST_NS}
  labels:
    inference.optimization/acceleratorName: H100
spec:
  modelID: e2e/model-missing
  variantCost: "10"
  scaleTargetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: e2e-absent
"#,
        deployment = target_deployment()
    )
}

/// Deployment `e2e-target` (a pause container).
fn target_deployment() -> String {
    format!(
        r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: e2e-target
  namespace: {TEST_NS}
spec:
  replicas: 1
  selector:
    matchLabels:
      app: e2e-target
  template:
    metadata:
      labels:
        app: e2e-target
    spec:
      containers:
        - name: pause
          image: registry.k8s.io/pause:3.10
"#
    )
}

fn deploy_and_check(kubectl: &Kubectl, manifests: &str) -> StepResult {
    kubectl.with_input(&["apply", "--server-side", "-f", "-"], manifests)?;
    kubectl.step(&[
        "wait",
        "--for=condition=established",
        "crd/variantautoscalings.llmd.ai",
        "--timeout=60s",
    ])?;
    kubectl.step(&[
        "-n",
        SYSTEM_NS,
        "rollout",
        "status",
        &format!("deployment/{MANAGER}"),
        "--timeout=180s",
    ])?;
    kubectl.with_input(&["apply", "-f", "-"], &workloads())?;
    check("VA on an existing Deployment resolves", || {
        wait_reason(
            kubectl,
            "e2e-present",
            "TargetFound",
            Duration::from_secs(60),
        )
    })?;
    check("VA on a missing Deployment reports TargetNotFound", || {
        wait_reason(
            kubectl,
            "e2e-missing",
            "TargetNotFound",
            Duration::from_secs(60),
        )
    })?;
    check(
        "deleting the Deployment gives TargetNotFound within 10 s",
        || {
            kubectl.step(&[
                "-n",
                TEST_NS,
                "delete",
                "deployment",
                "e2e-target",
                "--wait=false",
            ])?;
            wait_reason(
                kubectl,
                "e2e-present",
                "TargetNotFound",
                Duration::from_secs(10),
            )
        },
    )?;
    check("recreating it gives TargetFound within 10 s", || {
        kubectl.with_input(&["apply", "-f", "-"], &target_deployment())?;
        wait_reason(
            kubectl,
            "e2e-present",
            "TargetFound",
            Duration::from_secs(10),
        )
    })?;
    check("the manager's logs hold no Forbidden", || {
        let logs = manager_logs(kubectl)?;
        match logs.lines().find(|l| l.contains("Forbidden")) {
            Some(line) => Err(StepError(format!("RBAC gap: {line}"))),
            None => Ok(()),
        }
    })
}

/// Runs one named check, printing its result.
fn check(name: &str, body: impl FnOnce() -> StepResult) -> StepResult {
    let start = Instant::now();
    let result = body();
    let verdict = if result.is_ok() { "ok" } else { "FAILED" };
    println!(
        "| {name} | {verdict} | {:.1} s |",
        start.elapsed().as_secs_f64()
    );
    result
}

/// Polls the `TargetResolved` reason of VA `name` until it equals `reason`.
fn wait_reason(kubectl: &Kubectl, name: &str, reason: &str, within: Duration) -> StepResult {
    let path = r#"jsonpath={.status.conditions[?(@.type=="TargetResolved")].reason}"#;
    let deadline = Instant::now() + within;
    let mut last = String::new();
    while Instant::now() < deadline {
        if let Ok(out) =
            kubectl.output(&["-n", TEST_NS, "get", "variantautoscaling", name, "-o", path])
        {
            last = out.trim().to_owned();
            if last == reason {
                return Ok(());
            }
        }
        sleep(Duration::from_millis(500));
    }
    Err(StepError(format!(
        "VariantAutoscaling {TEST_NS}/{name}: TargetResolved reason is {last:?}, expected {reason} within {within:?}"
    )))
}

/// The logs of every manager pod.
fn manager_logs(kubectl: &Kubectl) -> Result<String, StepError> {
    kubectl.output(&[
        "-n",
        SYSTEM_NS,
        "logs",
        "-l",
        "control-plane=controller-manager",
        "--tail=-1",
        "--prefix",
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn flags_take_separate_or_inline_values() {
        let flags = parse(&args(&[
            "--kubeconfig=/k",
            "--context",
            "kind-wva",
            "--image",
            "r/wva:1",
            "--keep",
        ]))
        .unwrap();
        assert_eq!(flags.kubeconfig, PathBuf::from("/k"));
        assert_eq!(flags.context.as_deref(), Some("kind-wva"));
        assert_eq!(flags.image.as_deref(), Some("r/wva:1"));
        assert!(flags.keep);
    }

    #[test]
    fn kubeconfig_is_required_and_unknown_flags_fail() {
        assert!(parse(&args(&["--keep"])).is_err());
        assert!(parse(&args(&["--kubeconfig", "/k", "--scenario", "x"])).is_err());
        assert!(parse(&args(&["--kubeconfig"])).is_err());
    }

    #[test]
    fn workloads_name_the_test_namespace_and_both_targets() {
        let text = workloads();
        assert_eq!(text.matches("kind: VariantAutoscaling").count(), 2);
        assert!(text.contains("name: e2e-absent"));
        assert!(text.contains(&format!("namespace: {TEST_NS}")));
    }
}
