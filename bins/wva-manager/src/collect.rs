//! `wva-manager collect` (owned by the collector work; issue 2).

use std::process::ExitCode;

/// Arguments of `collect`.
#[derive(Debug, clap::Args)]
pub struct CollectArgs {}

/// Runs `collect`.
pub fn run(_args: CollectArgs) -> ExitCode {
    eprintln!("collect: not built yet");
    ExitCode::from(1)
}
