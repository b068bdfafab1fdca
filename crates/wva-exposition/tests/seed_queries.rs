//! spec/exposition.md §9: the seed's example queries answered by a real Prometheus scraping the
//! exposition server every second, with a cluster-like `namespace` target label.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::http::get;
use common::prometheus::{PROMETHEUS_BIN, Prometheus, Series};
use common::{exposition, variant};
use tokio_util::sync::CancellationToken;
use wva_core::Reason;
use wva_exposition::{Exposition, MetricsNaming, ServerConfig};

const H100: &str = "vllm-llama-h100";
const A100: &str = "vllm-llama-a100";

/// Publishes one cycle: h100 at (current, desired, reason), a100 steady at 3.
fn cycle(e: &Exposition, current: u32, desired: u32, reason: Reason, with_a100: bool) {
    let mut vs = vec![variant(H100, "H100", current, desired, reason).with_baseline(1)];
    if with_a100 {
        vs.push(variant(A100, "A100", 3, 3, Reason::Steady).with_baseline(3));
    }
    e.publish(&vs);
}

/// Waits until Prometheus has scraped the h100 counter `direction` at `value`.
async fn wait_counter(p: &Prometheus, direction: &str, value: f64) {
    let q = format!(
        "sum(inferno_replica_scaling_total{{variant_name=\"{H100}\",direction=\"{direction}\"}})"
    );
    p.wait_for(&q, |r| r.len() == 1 && r[0].1 == value).await;
}

fn labels_without_name(s: &Series) -> BTreeMap<String, String> {
    s.0.iter()
        .filter(|(k, _)| *k != "__name__")
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_example_queries_answer_from_a_real_prometheus() {
    let e = exposition(MetricsNaming::Inferno, Some("shard-a"));
    let shutdown = CancellationToken::new();
    let config = ServerConfig {
        metrics: "127.0.0.1:0".parse().unwrap(),
        probes: "127.0.0.1:0".parse().unwrap(),
        ..ServerConfig::default()
    };
    let servers = e.serve(config, shutdown.clone()).await.unwrap();
    let target = servers.metrics_addr().unwrap();
    let Some(p) = Prometheus::start(target, &[("namespace", "wva-system")]).await else {
        eprintln!("{PROMETHEUS_BIN} not installed; skipping the real-Prometheus checks");
        return;
    };

    // 1. One series per variant, labels exactly the seed's plus the scrape's target labels.
    cycle(&e, 1, 1, Reason::Steady, true);
    let current = p
        .wait_for("inferno_current_replicas", |r| r.len() == 2)
        .await;
    for (labels, _) in &current {
        let names: BTreeSet<&str> = labels.keys().map(String::as_str).collect();
        assert_eq!(
            names,
            BTreeSet::from([
                "__name__",
                "accelerator_type",
                "controller_instance",
                "exported_namespace",
                "instance",
                "job",
                "namespace",
                "variant_name",
            ])
        );
        assert_eq!(labels["exported_namespace"], "llm-d-sim");
        assert_eq!(labels["namespace"], "wva-system");
        assert_eq!(labels["controller_instance"], "shard-a");
    }

    // 2, 3. A load ramp: desired changes twice upwards, then twice downwards.
    cycle(&e, 1, 2, Reason::KvCacheSaturation, true);
    wait_counter(&p, "scale_up", 1.0).await;
    cycle(&e, 2, 3, Reason::KvCacheSaturation, true);
    wait_counter(&p, "scale_up", 2.0).await;
    let rate = p.query("rate(inferno_replica_scaling_total[5m])").await;
    assert!(
        !rate.is_empty() && rate.iter().any(|(_, v)| *v > 0.0),
        "{rate:?}"
    );
    let up = p
        .query("rate(inferno_replica_scaling_total{direction=\"scale_up\"}[5m])")
        .await;
    assert!(up.iter().any(|(_, v)| *v > 0.0), "{up:?}");

    cycle(&e, 3, 2, Reason::SpareCapacity, true);
    wait_counter(&p, "scale_down", 1.0).await;
    cycle(&e, 2, 1, Reason::SpareCapacity, true);
    wait_counter(&p, "scale_down", 2.0).await;
    let down = p
        .query("rate(inferno_replica_scaling_total{direction=\"scale_down\"}[5m])")
        .await;
    assert!(down.iter().any(|(_, v)| *v > 0.0), "{down:?}");
    let directions: BTreeSet<String> = p
        .query("count by (direction) (inferno_replica_scaling_total)")
        .await
        .into_iter()
        .map(|(l, _)| l["direction"].clone())
        .collect();
    assert_eq!(
        directions,
        BTreeSet::from(["scale_down".to_owned(), "scale_up".to_owned()])
    );

    // 4. The fleet followed: |desired - current| is 0, one series per variant, matched one to one.
    cycle(&e, 1, 1, Reason::Steady, true);
    let diff = p
        .wait_for(
            "abs(inferno_desired_replicas - inferno_current_replicas)",
            |r| r.len() == 2 && r.iter().all(|(_, v)| *v == 0.0),
        )
        .await;
    let diff_sets: BTreeSet<_> = diff.iter().map(labels_without_name).collect();
    let current_sets: BTreeSet<_> = p
        .query("inferno_current_replicas")
        .await
        .iter()
        .map(labels_without_name)
        .collect();
    assert_eq!(diff_sets, current_sets);

    // §10 consumers: the adapter's metricsQuery and the KEDA query.
    let adapter = p
        .query(
            "max by (variant_name, exported_namespace, accelerator_type, controller_instance) \
             (inferno_desired_replicas{variant_name!=\"\",exported_namespace!=\"\"})",
        )
        .await;
    assert_eq!(adapter.len(), 2);
    let keda = p
        .query(&format!("max(inferno_desired_replicas{{variant_name=\"{H100}\",exported_namespace=\"llm-d-sim\"}})"))
        .await;
    assert_eq!(keda.len(), 1);
    assert_eq!(keda[0].1, 1.0);

    // 7. Only the four seed families carry the inferno_ prefix: no optimisation timing.
    let names: BTreeSet<String> = p
        .query("count by (__name__) ({__name__=~\"inferno_.*\"})")
        .await
        .into_iter()
        .map(|(l, _)| l["__name__"].clone())
        .collect();
    assert_eq!(
        names,
        BTreeSet::from(
            [
                "inferno_current_replicas",
                "inferno_desired_ratio",
                "inferno_desired_replicas",
                "inferno_replica_scaling_total"
            ]
            .map(str::to_owned)
        )
    );

    // 6. promtool on the captured output.
    let captured = get(target, "/metrics").await.body;
    if let Some(promtool) = ["/usr/bin/promtool"]
        .into_iter()
        .find(|p| std::path::Path::new(p).is_file())
    {
        let mut child = std::process::Command::new(promtool)
            .args(["check", "metrics"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(captured.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
            "{out:?}"
        );
    }

    // 5. Deleting a variant: gone from /metrics at once, from queries after the next scrape.
    cycle(&e, 1, 1, Reason::Steady, false);
    assert!(!get(target, "/metrics").await.body.contains(A100));
    p.wait_for(&format!("{{variant_name=\"{A100}\"}}"), |r| r.is_empty())
        .await;
    assert_eq!(
        p.query(&format!(
            "inferno_current_replicas{{variant_name=\"{H100}\"}}"
        ))
        .await
        .len(),
        1
    );

    shutdown.cancel();
    servers.wait().await;
}
