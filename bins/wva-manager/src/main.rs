//! `wva-manager`: the Workload Variant Autoscaler binary.
//!
//! Thin wiring only: argument parsing, configuration and the subcommands. Each subcommand lives
//! in its own module and returns the process exit code.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod analyze;
mod cluster;
mod collect;
mod crd;
mod demo;
mod logging;
mod malloc;
mod run;
mod standalone;

/// The Workload Variant Autoscaler for LLM inference servers.
#[derive(Debug, Parser)]
#[command(name = "wva-manager", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Show what the autoscaler sees: per model and pod, the metrics read from Prometheus.
    Collect(collect::CollectArgs),
    /// Replay a CycleInput JSON offline and print the CycleReport.
    Analyze(analyze::AnalyzeArgs),
    /// Watch the autoscaler work on a simulated vLLM fleet: no cluster, no Prometheus needed.
    Demo(demo::DemoArgs),
    /// Run the autoscaler (`--standalone` without Kubernetes).
    Run(Box<run::RunArgs>),
    /// Print the VariantAutoscaling CustomResourceDefinition YAML.
    Crd(crd::CrdArgs),
}

fn main() -> ExitCode {
    // Before any thread exists: glibc reads the arena limit when threads first allocate.
    malloc::limit_arenas();
    // clap exits with code 2 on bad arguments, as every subcommand documents.
    let cli = Cli::parse();
    match cli.command {
        Command::Collect(args) => collect::run(args),
        Command::Analyze(args) => analyze::run(args),
        Command::Demo(args) => demo::run(args),
        Command::Run(args) => run::run(*args),
        Command::Crd(args) => crd::run(args),
    }
}
