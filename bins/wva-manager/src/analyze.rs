//! `wva-manager analyze` (owned by the core work; issue 3).

use std::process::ExitCode;

/// Arguments of `analyze`.
#[derive(Debug, clap::Args)]
pub struct AnalyzeArgs {}

/// Runs `analyze`.
pub fn run(_args: AnalyzeArgs) -> ExitCode {
    eprintln!("analyze: not built yet");
    ExitCode::from(1)
}
