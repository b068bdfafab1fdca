//! The control API: HTTP/JSON on loopback, the same operations as [`crate::FleetHandle`]
//! (spec/sim.md §3.5).

use crate::config::Fault;
use crate::exposition::{BucketMode, CONTENT_TYPE, TextWriter};
use crate::fleet::{FleetError, Inner};
use crate::http::{Req, Resp, json, resp, serve, text};
use crate::load::LoadProfile;
use crate::sim::SimError;
use hyper::{Method, StatusCode};
use serde_json::json as j;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use tokio::net::TcpListener;

fn error(status: StatusCode, msg: impl Into<String>) -> Resp {
    let msg: String = msg.into();
    json(status, &j!({"error": msg.replace('\n', " ")}))
}

fn fleet_error(e: FleetError) -> Resp {
    match e {
        FleetError::Sim(
            SimError::UnknownVariant(_) | SimError::UnknownModel(_) | SimError::UnknownPod(_),
        ) => error(StatusCode::NOT_FOUND, e.to_string()),
        FleetError::Sim(_) => error(StatusCode::BAD_REQUEST, e.to_string()),
        FleetError::ShutDown => error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
        other => error(StatusCode::INTERNAL_SERVER_ERROR, other.to_string()),
    }
}

fn parse_replicas(body: &[u8], max: u32) -> Result<u64, String> {
    let v: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| format!("body is not JSON: {e}"))?;
    let r = v.get("replicas").ok_or("body needs {\"replicas\": n}")?;
    let n = r
        .as_u64()
        .ok_or_else(|| format!("replicas: {r} must be a non-negative integer"))?;
    if n > u64::from(max) {
        return Err(format!("replicas: {n} exceeds max_replicas {max}"));
    }
    Ok(n)
}

/// Routes one control request.
pub(crate) async fn handle(inner: Arc<Inner>, req: Req) -> Resp {
    let segs: Vec<&str> = req.path.trim_matches('/').split('/').collect();
    let m = &req.method;
    match (m, segs.as_slice()) {
        (&Method::GET, ["healthz"]) => text(StatusCode::OK, "ok"),
        (&Method::GET, ["fleet"]) => {
            let p = inner.published();
            match &p.snapshot {
                Some(s) => json(StatusCode::OK, &**s),
                None => error(StatusCode::SERVICE_UNAVAILABLE, "no snapshot yet"),
            }
        }
        (&Method::GET, ["targets"]) => resp(
            StatusCode::OK,
            "application/json",
            inner.file_sd_of(&inner.published()),
        ),
        (&Method::GET, ["metrics"]) => resp(StatusCode::OK, CONTENT_TYPE, self_metrics(&inner)),
        (&Method::GET, ["events"]) => {
            let since = req
                .query
                .split('&')
                .find_map(|kv| kv.strip_prefix("since="))
                .map(str::parse::<u64>)
                .transpose();
            let Ok(since) = since else {
                return error(
                    StatusCode::BAD_REQUEST,
                    "since must be a non-negative integer",
                );
            };
            let sim = inner
                .sim
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let mut body = String::new();
            for e in sim.events_since(since.unwrap_or(0)) {
                body.push_str(&e.to_json_line());
                body.push('\n');
            }
            resp(StatusCode::OK, "application/x-ndjson", body)
        }
        (&Method::GET, ["load"]) => {
            let load = inner
                .sim
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .load();
            json(StatusCode::OK, &load)
        }
        (&Method::PUT, ["load"]) => {
            #[derive(serde::Deserialize)]
            #[serde(deny_unknown_fields)]
            struct Body {
                model: String,
                profile: LoadProfile,
            }
            match serde_json::from_slice::<Body>(&req.body) {
                Err(e) => error(StatusCode::BAD_REQUEST, format!("body: {e}")),
                Ok(b) => match inner.mutate(|s| s.set_load(&b.model, b.profile)) {
                    Ok(()) => json(StatusCode::OK, &j!({"model": b.model})),
                    Err(e) => fleet_error(e),
                },
            }
        }
        (&Method::GET, ["variants", v, "replicas"]) => {
            let c = inner
                .sim
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .counts(v);
            match c {
                Ok(c) => json(StatusCode::OK, &c),
                Err(e) => fleet_error(e.into()),
            }
        }
        (&Method::PUT, ["variants", v, "replicas"]) => {
            let known = inner
                .sim
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .counts(v)
                .is_ok();
            if !known {
                return error(StatusCode::NOT_FOUND, format!("unknown variant {v:?}"));
            }
            match parse_replicas(&req.body, inner.cfg.max_replicas) {
                Err(msg) => error(StatusCode::BAD_REQUEST, msg),
                Ok(n) => match inner.mutate(|s| s.set_replicas(v, n)) {
                    Ok(c) => json(StatusCode::OK, &c),
                    Err(e) => fleet_error(e),
                },
            }
        }
        (&Method::POST, ["pods", pod, "kill"]) => match inner.mutate(|s| s.kill(pod)) {
            Ok(()) => json(StatusCode::OK, &j!({"killed": pod})),
            Err(e) => fleet_error(e),
        },
        (&Method::PUT, ["pods", pod, "fault"]) => {
            match serde_json::from_slice::<Fault>(&req.body) {
                Err(e) => error(StatusCode::BAD_REQUEST, format!("body: {e}")),
                Ok(f) => match inner.mutate(|s| s.fault(pod, f)) {
                    Ok(()) => json(StatusCode::OK, &f),
                    Err(e) => fleet_error(e),
                },
            }
        }
        (_, ["healthz" | "fleet" | "targets" | "metrics" | "events" | "load"])
        | (_, ["variants", _, "replicas"])
        | (_, ["pods", _, "kill" | "fault"]) => error(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("{m} not allowed on {}", req.path),
        ),
        _ => error(StatusCode::NOT_FOUND, format!("no route {}", req.path)),
    }
}

/// `wva_sim_*` self-metrics and the kube-state-metrics-compatible Deployment series.
fn self_metrics(inner: &Inner) -> String {
    let p = inner.published();
    let mut w = TextWriter::new();
    let hist = inner
        .tick_hist
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    w.family(
        "wva_sim_tick_duration_seconds",
        "Wall time spent per simulation tick.",
        "histogram",
    );
    w.histogram(
        "wva_sim_tick_duration_seconds",
        &[],
        &hist,
        BucketMode::Full,
    );
    w.family(
        "wva_sim_tick_lag_seconds",
        "How far the tick loop is behind its clock.",
        "gauge",
    );
    w.sample(
        "wva_sim_tick_lag_seconds",
        &[],
        inner.lag_us.load(Ordering::Relaxed) as f64 / 1e6,
    );
    w.family(
        "wva_sim_scrapes_total",
        "Pod metric scrapes served.",
        "counter",
    );
    w.sample(
        "wva_sim_scrapes_total",
        &[],
        inner.scrapes.load(Ordering::Relaxed) as f64,
    );
    let ns = inner.cfg.namespace.as_str();
    if let Some(s) = &p.snapshot {
        w.family("wva_sim_replicas", "Pods by variant and state.", "gauge");
        for v in &s.variants {
            for (state, n) in [
                ("starting", v.counts.starting),
                ("ready", v.counts.ready),
                ("draining", v.counts.draining),
            ] {
                w.sample(
                    "wva_sim_replicas",
                    &[("variant", v.name.as_str()), ("state", state)],
                    f64::from(n),
                );
            }
        }
        w.family(
            "wva_sim_requests_total",
            "Requests by model and outcome.",
            "counter",
        );
        for m in &s.models {
            let t = m.totals;
            for (outcome, n) in [
                ("arrived", t.arrivals),
                ("completed", t.completed),
                ("aborted", t.aborted),
                ("rejected", t.rejected),
                ("gateway_timeout", t.gateway_timeout),
                ("lost", t.lost),
                ("error", t.errored),
            ] {
                w.sample(
                    "wva_sim_requests_total",
                    &[("model", m.name.as_str()), ("outcome", outcome)],
                    n as f64,
                );
            }
        }
        type Pick = fn(&crate::sim::ReplicaCounts) -> u32;
        let series: [(&str, &str, Pick); 3] = [
            (
                "kube_deployment_spec_replicas",
                "Number of desired pods for a deployment.",
                |c| c.spec_replicas,
            ),
            (
                "kube_deployment_status_replicas",
                "The number of replicas per deployment.",
                |c| c.current,
            ),
            (
                "kube_deployment_status_replicas_ready",
                "The number of ready replicas per deployment.",
                |c| c.ready,
            ),
        ];
        for (name, help, f) in series {
            w.family(name, help, "gauge");
            for v in &s.variants {
                let dep = format!("{}-decode", v.name);
                w.sample(
                    name,
                    &[("namespace", ns), ("deployment", dep.as_str())],
                    f64::from(f(&v.counts)),
                );
            }
        }
    }
    w.finish()
}

/// Serves the control API until the fleet shuts down.
/// Holds the fleet weakly, so that dropping the last handle stops everything.
pub(crate) async fn serve_control(listener: TcpListener, inner: Arc<Inner>) {
    let cancel = inner.cancel.clone();
    let weak = Arc::downgrade(&inner);
    drop(inner);
    serve(listener, cancel, move |req: Req| {
        let inner = weak.upgrade();
        async move {
            match inner {
                Some(inner) => handle(inner, req).await,
                None => error(StatusCode::SERVICE_UNAVAILABLE, "the fleet is shut down"),
            }
        }
    })
    .await;
}
