//! `wva-manager analyze`: replays a `CycleInput` JSON offline and prints the `CycleReport`.
//!
//! Exit codes: 0 on success; 2 when the input cannot be read or is invalid (one line on
//! stderr naming the field or config key, the bad value and what is allowed); 1 if the report
//! itself cannot be written (a bug).

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `analyze`.
#[derive(Debug, clap::Args)]
pub struct AnalyzeArgs {
    /// The CycleInput JSON file (`-` reads standard input).
    #[arg(long, value_name = "FILE|-")]
    pub input: PathBuf,
}

fn read_input(path: &PathBuf) -> Result<String, String> {
    if path.as_os_str() == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|e| format!("reading standard input: {e}"))?;
        Ok(text)
    } else {
        std::fs::read_to_string(path).map_err(|e| format!("reading {}: {e}", path.display()))
    }
}

/// Runs `analyze`.
pub fn run(args: AnalyzeArgs) -> ExitCode {
    let text = match read_input(&args.input) {
        Ok(text) => text,
        Err(message) => {
            eprintln!("analyze: {message}");
            return ExitCode::from(2);
        }
    };
    let input = match wva_core::CycleInput::from_json(&text) {
        Ok(input) => input,
        Err(e) => {
            eprintln!("analyze: invalid input: {e}");
            return ExitCode::from(2);
        }
    };
    if let Ok(warnings) = input.config_warnings() {
        for (key, message) in warnings {
            eprintln!("analyze: warning: scaleToZero[\"{key}\"]: {message}");
        }
    }
    let report = match wva_core::plan(&input) {
        Ok(report) => report,
        Err(e) => {
            eprintln!("analyze: invalid input: {e}");
            return ExitCode::from(2);
        }
    };
    let json = match report.to_json_pretty() {
        Ok(json) => json,
        Err(e) => {
            eprintln!("analyze: {e}");
            return ExitCode::from(1);
        }
    };
    let mut out = std::io::stdout().lock();
    if writeln!(out, "{json}").and_then(|()| out.flush()).is_err() {
        return ExitCode::from(1);
    }
    ExitCode::SUCCESS
}
