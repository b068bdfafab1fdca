//! What the demo shows: a live table on a terminal, logfmt or JSON lines otherwise, and the
//! closing summary.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write as _;

use wva_core::CycleReport;
use wva_sim::FleetSnapshot;

/// `--output`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    /// A table redrawn every second (the default on a terminal).
    Table,
    /// One logfmt line per variant per cycle (the default when stdout is not a terminal).
    Lines,
    /// One JSON object per variant per cycle.
    Json,
}

/// Per-variant tallies over the run.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct VariantTally {
    /// Cost per replica-hour.
    pub cost: f64,
    /// Desired replicas decided increases.
    pub scale_ups: u32,
    /// Desired replicas decided decreases.
    pub scale_downs: u32,
    /// Integral of current replicas over time (replica-seconds).
    pub replica_seconds: f64,
    /// The most replicas seen at once.
    pub peak_replicas: u32,
    /// Last published target.
    pub desired: Option<u32>,
    /// Last decision, `action reason`.
    pub last_decision: String,
}

/// Follows the run: new reports, replica time, events.
#[derive(Debug, Default)]
pub struct Tracker {
    /// Per variant.
    pub variants: BTreeMap<String, VariantTally>,
    last_report_time: Option<String>,
    last_sample_s: Option<f64>,
}

impl Tracker {
    /// Integrates replica time up to `snap`.
    pub fn sample(&mut self, snap: &FleetSnapshot) {
        let dt = self
            .last_sample_s
            .map_or(0.0, |t| (snap.time_s - t).max(0.0));
        self.last_sample_s = Some(snap.time_s);
        for v in &snap.variants {
            let t = self.variants.entry(v.name.clone()).or_default();
            t.cost = v.cost;
            t.replica_seconds += dt * f64::from(v.counts.current);
            t.peak_replicas = t.peak_replicas.max(v.counts.current);
        }
    }

    /// Records a report if it is new; returns whether it was.
    pub fn observe(&mut self, report: &CycleReport) -> bool {
        let stamp = report.input.now.as_ref().map(|n| n.to_string());
        if stamp.is_some() && stamp == self.last_report_time {
            return false;
        }
        self.last_report_time = stamp;
        for d in &report.decisions {
            let t = self.variants.entry(d.variant.clone()).or_default();
            let previous = t.desired.unwrap_or(d.current_replicas);
            if d.target_replicas > previous {
                t.scale_ups += 1;
            } else if d.target_replicas < previous {
                t.scale_downs += 1;
            }
            t.desired = Some(d.target_replicas);
            t.last_decision = format!("{} {}", d.action.as_str(), d.reason.as_str());
        }
        true
    }

    /// Decided scale-ups and scale-downs over all variants.
    pub fn totals(&self) -> (u32, u32) {
        self.variants
            .values()
            .fold((0, 0), |(u, d), t| (u + t.scale_ups, d + t.scale_downs))
    }
}

/// One logfmt line per variant of `report`.
pub fn lines(report: &CycleReport, snap: &FleetSnapshot) -> String {
    let mut out = String::new();
    for d in &report.decisions {
        let v = snap.variants.iter().find(|v| v.name == d.variant);
        let _ = writeln!(
            out,
            "t={:.1} variant={} accelerator={} load_rps={:.2} kv_avg={:.3} waiting={} ready={} current={} desired={} action={} reason={}",
            snap.time_s,
            d.variant,
            d.accelerator,
            v.map_or(0.0, |v| v.load_rps),
            v.map_or(0.0, |v| v.kv_avg),
            v.map_or(0, |v| v.waiting),
            v.map_or(0, |v| v.counts.ready),
            d.current_replicas,
            d.target_replicas,
            d.action.as_str(),
            d.reason.as_str(),
        );
    }
    out
}

/// One JSON object per variant of `report`.
pub fn json_lines(report: &CycleReport, snap: &FleetSnapshot) -> String {
    let mut out = String::new();
    for d in &report.decisions {
        let v = snap.variants.iter().find(|v| v.name == d.variant);
        let line = serde_json::json!({
            "t": snap.time_s,
            "variant": d.variant,
            "accelerator": d.accelerator,
            "loadRps": v.map_or(0.0, |v| v.load_rps),
            "kvAvg": v.map_or(0.0, |v| v.kv_avg),
            "waiting": v.map_or(0, |v| v.waiting),
            "ready": v.map_or(0, |v| v.counts.ready),
            "current": d.current_replicas,
            "desired": d.target_replicas,
            "action": d.action,
            "reason": d.reason,
        });
        let _ = writeln!(out, "{line}");
    }
    out
}

fn arrow(a: u32, b: u32) -> &'static str {
    match b.cmp(&a) {
        std::cmp::Ordering::Greater => "↑",
        std::cmp::Ordering::Less => "↓",
        std::cmp::Ordering::Equal => " ",
    }
}

/// The live table (without the clear-screen prefix).
pub fn table(
    scenario: &str,
    duration_s: f64,
    seed: u64,
    snap: &FleetSnapshot,
    tracker: &Tracker,
) -> String {
    let mut out = String::new();
    let load: Vec<String> = snap
        .models
        .iter()
        .map(|m| {
            let next = m
                .next_change_s
                .map(|t| format!(", next change at {t:.0}s"))
                .unwrap_or_default();
            format!("{} {:.1} req/s{next}", m.name, m.offered_rate)
        })
        .collect();
    let _ = writeln!(
        out,
        "wva-manager demo — scenario {scenario}  t={:.0}s/{duration_s:.0}s  seed {seed}",
        snap.time_s
    );
    let _ = writeln!(out, "offered load: {}", load.join("; "));
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "{:<18} {:<6} {:>5} {:>8} {:>11} {:>6} {:>7} {:>12}  last decision",
        "variant", "accel", "cost", "load/s", "KV avg/max", "queue", "running", "rdy/cur/des"
    );
    for v in &snap.variants {
        let t = tracker.variants.get(&v.name);
        let desired = t.and_then(|t| t.desired).unwrap_or(v.counts.current);
        let counts = format!(
            "{}/{}/{}{}",
            v.counts.ready,
            v.counts.current,
            desired,
            arrow(v.counts.current, desired)
        );
        let _ = writeln!(
            out,
            "{:<18} {:<6} {:>5.1} {:>8.1} {:>5.2}/{:<5.2} {:>6} {:>7} {:>12}  {}",
            v.name,
            v.accelerator,
            v.cost,
            v.load_rps,
            v.kv_avg,
            v.kv_max,
            v.waiting,
            v.running,
            counts,
            t.map_or("", |t| t.last_decision.as_str())
        );
    }
    let (ups, downs) = tracker.totals();
    let completed: u64 = snap.models.iter().map(|m| m.totals.completed).sum();
    let queue: u64 = snap.models.iter().map(|m| m.gateway_queue).sum();
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "gateway queue {queue}  completed {completed}  decided scale-ups {ups}  scale-downs {downs}   (Ctrl-C to stop; /metrics serves inferno_*)"
    );
    out
}

/// The closing summary.
pub fn summary(snap: &FleetSnapshot, tracker: &Tracker, duration_s: f64) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "summary after {:.0}s:", snap.time_s);
    for m in &snap.models {
        let t = &m.totals;
        let _ = writeln!(
            out,
            "  model {}: arrivals {} completed {} aborted {} rejected {} gateway-timeout {}",
            m.name, t.arrivals, t.completed, t.aborted, t.rejected, t.gateway_timeout
        );
    }
    let mut cost = 0.0;
    let mut static_cost = 0.0;
    for (name, t) in &tracker.variants {
        let replica_minutes = t.replica_seconds / 60.0;
        cost += t.replica_seconds / 3600.0 * t.cost;
        static_cost += f64::from(t.peak_replicas) * snap.time_s.max(duration_s.min(snap.time_s))
            / 3600.0
            * t.cost;
        let _ = writeln!(
            out,
            "  variant {name}: scale-ups {} scale-downs {} replica-minutes {replica_minutes:.2} peak {}",
            t.scale_ups, t.scale_downs, t.peak_replicas
        );
    }
    let _ = writeln!(
        out,
        "  cost {cost:.4} vs {static_cost:.4} for a static fleet sized at the observed peak"
    );
    let (ups, downs) = tracker.totals();
    let _ = writeln!(out, "  decided scale-ups {ups}, scale-downs {downs}");
    out
}

/// Restores the cursor when dropped (also on panic, through the hook installed by `install`).
pub struct TerminalGuard;

impl TerminalGuard {
    /// Hides the cursor and installs a panic hook that shows it again first.
    pub fn install() -> TerminalGuard {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            print!("\x1b[?25h");
            let _ = std::io::stdout().flush();
            previous(info);
        }));
        print!("\x1b[?25l");
        let _ = std::io::stdout().flush();
        TerminalGuard
    }
}

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        print!("\x1b[?25h");
        let _ = std::io::stdout().flush();
    }
}
