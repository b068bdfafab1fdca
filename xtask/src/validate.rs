//! `cargo xtask validate [--deploy DIR]` (also part of `cargo xtask ci`): every kustomization
//! under `deploy/` is built offline (`kubectl kustomize`, else `kustomize build`) and checked
//! with `kubernetes-validate --strict` (PyPI); the VariantAutoscaling documents are checked
//! against the generated CRD's `openAPIV3Schema` with the `jsonschema` PyPI package, which
//! `kubernetes-validate` depends on.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{StepError, StepResult, on_path, workspace_root};

/// Checks each VariantAutoscaling document of the given files against the CRD schema.
/// Unknown fields are rejected (`additionalProperties: false` wherever a schema lists
/// `properties` and does not preserve unknown fields), as `kubectl apply --validate=strict`.
const VA_SCHEMA_CHECK: &str = r#"
import sys, yaml, jsonschema
crd = yaml.safe_load(open(sys.argv[1]))
version = next(v for v in crd["spec"]["versions"] if v["name"] == "v1alpha1")
schema = version["schema"]["openAPIV3Schema"]
def close(s):
    if isinstance(s, dict):
        if "properties" in s and "additionalProperties" not in s \
                and not s.get("x-kubernetes-preserve-unknown-fields"):
            s["additionalProperties"] = False
        for v in s.values():
            close(v)
    elif isinstance(s, list):
        for v in s:
            close(v)
# The API server supplies these at the root of every custom resource.
schema.setdefault("properties", {}).update(
    {"apiVersion": {"type": "string"}, "kind": {"type": "string"}, "metadata": {"type": "object"}})
close(schema)
validator = jsonschema.Draft7Validator(schema)
checked, failed = 0, 0
for path in sys.argv[2:]:
    for doc in yaml.safe_load_all(open(path)):
        if not doc or doc.get("kind") != "VariantAutoscaling":
            continue
        checked += 1
        name = doc.get("metadata", {}).get("name", "?")
        for e in validator.iter_errors(doc):
            failed += 1
            where = "/".join(str(p) for p in e.absolute_path) or "(root)"
            print(f"ERROR {path}: VariantAutoscaling {name}: {where}: {e.message}")
if checked == 0:
    print("ERROR no VariantAutoscaling document found in " + " ".join(sys.argv[2:]))
    sys.exit(1)
print(f"checked {checked} VariantAutoscaling document(s) against the CRD schema")
sys.exit(1 if failed else 0)
"#;

/// Runs the validation on `deploy/` (or `--deploy DIR`).
pub fn run(args: &[String]) -> StepResult {
    let mut deploy = workspace_root().join("deploy");
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--deploy" => {
                deploy = PathBuf::from(
                    it.next()
                        .ok_or_else(|| StepError("--deploy needs a value".into()))?,
                )
            }
            other => return Err(StepError(format!("validate: unknown argument {other:?}"))),
        }
    }
    ensure_kubernetes_validate()?;
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"));
    let out_dir = target.join("validate");
    std::fs::create_dir_all(&out_dir)
        .map_err(|e| StepError(format!("{}: {e}", out_dir.display())))?;
    let mut built = Vec::new();
    match kustomize_program() {
        Some(program) => {
            for dir in kustomizations(&deploy)? {
                built.push(build(&program, &deploy, &dir, &out_dir)?);
            }
        }
        None => {
            eprintln!(
                "==> neither kubectl nor kustomize on PATH: validating the plain manifests only"
            );
            for file in ["crd/variantautoscalings.llmd.ai.yaml", "samples/hpa.yaml"] {
                built.push(deploy.join(file));
            }
        }
    }
    let mut validate_args = vec!["-m".to_owned(), "kubernetes_validate".to_owned()];
    validate_args.extend(["--strict".to_owned(), "--quiet".to_owned()]);
    validate_args.extend(built.iter().map(|p| p.display().to_string()));
    run_python(&validate_args, "kubernetes-validate --strict")?;
    let mut schema_args = vec![
        "-c".to_owned(),
        VA_SCHEMA_CHECK.to_owned(),
        deploy
            .join("crd/variantautoscalings.llmd.ai.yaml")
            .display()
            .to_string(),
        deploy
            .join("samples/variantautoscaling.yaml")
            .display()
            .to_string(),
    ];
    schema_args.extend(
        built
            .iter()
            .filter(|p| p.file_name().is_some_and(|n| n == "samples.yaml"))
            .map(|p| p.display().to_string()),
    );
    run_python(&schema_args, "the VariantAutoscaling schema check")
}

/// `kubectl` (`kubectl kustomize`) or `kustomize` (`kustomize build`), if on `PATH`.
fn kustomize_program() -> Option<(String, &'static str)> {
    if on_path("kubectl") {
        Some(("kubectl".into(), "kustomize"))
    } else if on_path("kustomize") {
        Some(("kustomize".into(), "build"))
    } else {
        None
    }
}

/// Every directory under `deploy` holding a `kustomization.yaml`, relative, sorted.
fn kustomizations(deploy: &Path) -> Result<Vec<PathBuf>, StepError> {
    let mut found = Vec::new();
    let mut pending = vec![deploy.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let entries =
            std::fs::read_dir(&dir).map_err(|e| StepError(format!("{}: {e}", dir.display())))?;
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else if path.file_name().is_some_and(|n| n == "kustomization.yaml")
                && let Ok(rel) = dir.strip_prefix(deploy)
            {
                found.push(rel.to_path_buf());
            }
        }
    }
    found.sort();
    if found.is_empty() {
        return Err(StepError(format!(
            "no kustomization.yaml under {}",
            deploy.display()
        )));
    }
    Ok(found)
}

/// Builds one kustomization into `out_dir/{dir with / → -}.yaml`.
fn build(
    (program, verb): &(String, &'static str),
    deploy: &Path,
    dir: &Path,
    out_dir: &Path,
) -> Result<PathBuf, StepError> {
    let name = dir.display().to_string().replace('/', "-");
    let line = format!("{program} {verb} {}", deploy.join(dir).display());
    eprintln!("==> {line}");
    let output = Command::new(program)
        .arg(verb)
        .arg(deploy.join(dir))
        .output()
        .map_err(|e| StepError(format!("cannot start `{line}`: {e}")))?;
    if !output.status.success() {
        return Err(StepError(format!(
            "`{line}` failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    let path = out_dir.join(format!("{name}.yaml"));
    std::fs::write(&path, &output.stdout)
        .map_err(|e| StepError(format!("{}: {e}", path.display())))?;
    Ok(path)
}

/// Runs `python3 ARGS`; fails with `what` on a non-zero exit.
fn run_python(args: &[String], what: &str) -> StepResult {
    eprintln!("==> {what}");
    let status = Command::new("python3")
        .args(args)
        .current_dir(workspace_root())
        .status()
        .map_err(|e| StepError(format!("cannot start python3 for {what}: {e}")))?;
    if status.success() {
        Ok(())
    } else {
        Err(StepError(format!("{what} failed ({status})")))
    }
}

/// True when `python3 -m kubernetes_validate --version` works.
fn kubernetes_validate_available() -> bool {
    Command::new("python3")
        .args(["-m", "kubernetes_validate", "--version"])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Installs the PyPI package `kubernetes-validate` (with `jsonschema` and `PyYAML`) for the
/// current user when it is missing.
fn ensure_kubernetes_validate() -> StepResult {
    if kubernetes_validate_available() {
        return Ok(());
    }
    eprintln!("==> kubernetes-validate not found: installing it from PyPI");
    let user = [
        "-m",
        "pip",
        "install",
        "--user",
        "--quiet",
        "kubernetes-validate",
    ];
    let installed = Command::new("python3")
        .args(user)
        .status()
        .is_ok_and(|s| s.success())
        // A virtualenv refuses --user: install into it instead.
        || Command::new("python3")
            .args(["-m", "pip", "install", "--quiet", "kubernetes-validate"])
            .status()
            .is_ok_and(|s| s.success());
    if installed && kubernetes_validate_available() {
        Ok(())
    } else {
        Err(StepError(
            "cannot install kubernetes-validate: run `python3 -m pip install --user kubernetes-validate`"
                .into(),
        ))
    }
}
