//! `wva-manager crd`: prints the `VariantAutoscaling` CustomResourceDefinition generated from the
//! Rust types (the same YAML as the committed `deploy/crd/variantautoscalings.llmd.ai.yaml`).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `wva-manager crd`.
#[derive(Debug, clap::Args)]
pub struct CrdArgs {
    /// Write the YAML to this file instead of standard output.
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

/// Prints (or writes) the CRD YAML; exit 0 on success, 1 when it cannot be written.
pub fn run(args: CrdArgs) -> ExitCode {
    let yaml = wva_k8s::crd::crd_yaml();
    let written = match &args.output {
        Some(path) => std::fs::write(path, &yaml)
            .map_err(|e| format!("error: cannot write {}: {e}", path.display())),
        None => {
            let mut stdout = std::io::stdout().lock();
            stdout
                .write_all(yaml.as_bytes())
                .and_then(|()| stdout.flush())
                .map_err(|e| format!("error: cannot write to standard output: {e}"))
        }
    };
    match written {
        Ok(()) => ExitCode::SUCCESS,
        Err(line) => {
            eprintln!("{line}");
            ExitCode::FAILURE
        }
    }
}
