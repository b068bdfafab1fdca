//! Serves a fleet from a YAML file (or the built-in `demo` scenario) until Ctrl-C, printing its
//! file_sd path and control address.
//!
//! `cargo run -p wva-sim --example serve -- [FLEET.yaml|SCENARIO] [FILE_SD.json]`

use std::path::PathBuf;
use wva_sim::{Fleet, FleetOptions, Scenario};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let source = args.next().unwrap_or_else(|| "demo".to_owned());
    let file_sd = PathBuf::from(
        args.next()
            .unwrap_or_else(|| "wva-sim-targets.json".to_owned()),
    );
    let config = if source.ends_with(".yaml") || source.ends_with(".yml") {
        match Scenario::from_file(source.as_ref()) {
            Ok(s) => s.config,
            Err(_) => wva_sim::FleetConfig::from_file(source.as_ref())?,
        }
    } else {
        Scenario::load(&source)?.config
    };
    let opts = FleetOptions {
        file_sd: Some(file_sd.clone()),
        ..Default::default()
    };
    let fleet = Fleet::start_with(config, opts).await?;
    println!("file_sd: {}", file_sd.display());
    println!("control: http://{}/fleet", fleet.control_addr());
    println!("gateway: http://{}/metrics", fleet.gateway_addr());
    tokio::signal::ctrl_c().await?;
    fleet.shutdown().await;
    Ok(())
}
