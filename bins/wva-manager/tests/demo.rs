//! `wva-manager demo`: no cluster, no Prometheus; a scale-up and a scale-down within 60 s,
//! plain lines when piped, a table on request, and `/metrics` serving `inferno_*` meanwhile.

#![allow(clippy::unwrap_used)] // test helpers panic on setup failures by design

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::Duration;

use test_support::http;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_wva-manager"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_demo_scales_up_and_down_within_a_minute_and_serves_metrics() {
    let metrics = SocketAddr::from(([127, 0, 0, 1], http::free_port()));
    let child = bin()
        .args(["demo", "--duration", "60s", "--metrics-bind-address"])
        .arg(metrics.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();

    // While it runs, /metrics serves the seed families.
    let mut served = String::new();
    for _ in 0..120 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        if let Ok(r) = http::get(metrics, "/metrics").await {
            served = r.text();
            if served.contains("inferno_desired_replicas{") {
                break;
            }
        }
    }
    for family in [
        "# TYPE inferno_current_replicas gauge",
        "# TYPE inferno_desired_replicas gauge",
        "# TYPE inferno_desired_ratio gauge",
    ] {
        assert!(served.contains(family), "missing {family} in:\n{served}");
    }

    let out = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "exit {:?}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    // Piped stdout: plain logfmt lines, no terminal control sequences.
    assert!(!stdout.contains('\x1b'), "{stdout}");
    assert!(stdout.contains("action=scale_up"), "{stdout}");
    assert!(stdout.contains("action=scale_down"), "{stdout}");
    let summary = stdout
        .lines()
        .find(|l| l.contains("decided scale-ups"))
        .unwrap();
    assert!(!summary.contains("scale-ups 0"), "{summary}");
    assert!(!summary.contains("scale-downs 0"), "{summary}");
}

#[test]
fn table_output_redraws_a_table_with_every_variant() {
    let out = bin()
        .args(["demo", "--duration", "3s", "--output", "table"])
        .args(["--metrics-bind-address", "127.0.0.1:0"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("\x1b[H\x1b[2J"), "{stdout}");
    assert!(stdout.contains("\x1b[?25h"), "cursor restored");
    assert!(stdout.contains("llama-8b-l4"), "{stdout}");
    assert!(stdout.contains("llama-8b-h100"), "{stdout}");
    assert!(stdout.contains("rdy/cur/des"), "{stdout}");
}

#[test]
fn a_taken_metrics_port_fails_with_one_line_naming_the_flag() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let out = bin()
        .args(["demo", "--duration", "3s", "--metrics-bind-address"])
        .arg(addr.to_string())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--metrics-bind-address"), "{stderr}");
}

#[test]
fn list_scenarios_names_the_default() {
    let out = bin().args(["demo", "--list-scenarios"]).output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("demo"));
}
