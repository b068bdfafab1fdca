//! Load profiles: the offered request rate λ(t) of one model, and trace replay.

use crate::duration::serde_dur;
use serde::{Deserialize, Serialize};
use std::f64::consts::TAU;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// One point of a `step` profile: from `at` on, the rate is `rate`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepPoint {
    /// When the rate switches.
    #[serde(with = "serde_dur")]
    pub at: Duration,
    /// The rate from then on (req/s).
    pub rate: f64,
}

/// One segment of a `piecewise` profile.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Segment {
    /// How long the segment lasts (the last one extends forever).
    #[serde(with = "serde_dur")]
    pub duration: Duration,
    /// The profile of the segment, on time measured from the segment's start.
    pub profile: LoadProfile,
}

/// A load profile (req/s per model), tagged by `type`. Time is measured from the moment the
/// profile was installed (fleet start for configured profiles, the tick of a `PUT /load`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum LoadProfile {
    /// A flat rate.
    Constant {
        /// req/s.
        rate: f64,
    },
    /// Piecewise constant: `steps`, or `before` until `at` then `after`. 0 before the first step.
    Step {
        /// The steps, sorted by `at`.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        steps: Vec<StepPoint>,
        /// Rate before `at` (short form).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        before: Option<f64>,
        /// Rate from `at` on (short form).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        after: Option<f64>,
        /// Switch time (short form).
        #[serde(
            default,
            with = "serde_dur::option",
            skip_serializing_if = "Option::is_none"
        )]
        at: Option<Duration>,
    },
    /// `from` until `start`, linear to `to` over `duration`, then `to`.
    Ramp {
        /// Initial rate.
        from: f64,
        /// Final rate.
        to: f64,
        /// Ramp start.
        #[serde(with = "serde_dur")]
        start: Duration,
        /// Ramp length.
        #[serde(with = "serde_dur")]
        duration: Duration,
    },
    /// `mean + amplitude × sin(2π (t + phase) / period)`, clamped at 0.
    Diurnal {
        /// Mean rate.
        mean: f64,
        /// Amplitude.
        amplitude: f64,
        /// Period.
        #[serde(with = "serde_dur")]
        period: Duration,
        /// Phase shift.
        #[serde(default, with = "serde_dur")]
        phase: Duration,
    },
    /// `base`, with `peak` during `[start, start + duration)`, repeated every `every` if set.
    Burst {
        /// Base rate.
        base: f64,
        /// Rate inside a pulse.
        peak: f64,
        /// First pulse start.
        #[serde(with = "serde_dur")]
        start: Duration,
        /// Pulse length.
        #[serde(with = "serde_dur")]
        duration: Duration,
        /// Pulse period.
        #[serde(
            default,
            with = "serde_dur::option",
            skip_serializing_if = "Option::is_none"
        )]
        every: Option<Duration>,
    },
    /// 0 for `idle`, then `rate` (for `duration` if set, then 0 again).
    IdleThenBurst {
        /// Idle time.
        #[serde(with = "serde_dur")]
        idle: Duration,
        /// Rate after the idle time.
        rate: f64,
        /// How long the burst lasts (forever if unset).
        #[serde(
            default,
            with = "serde_dur::option",
            skip_serializing_if = "Option::is_none"
        )]
        duration: Option<Duration>,
    },
    /// Replays a CSV trace `timestamp_s[,prompt_tokens,output_tokens]`.
    Trace {
        /// CSV file.
        path: PathBuf,
        /// Multiplies every timestamp.
        #[serde(default = "one")]
        time_scale: f64,
        /// Restart at the end.
        #[serde(default, rename = "loop")]
        looped: bool,
    },
    /// Concatenated segments; the last segment extends forever.
    Piecewise {
        /// The segments.
        segments: Vec<Segment>,
    },
}

fn one() -> f64 {
    1.0
}

/// One arrival of a trace.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TraceEntry {
    /// Time since the profile start, in µs (after `time_scale`).
    pub at_us: u64,
    /// Prompt tokens, overriding the distribution.
    pub prompt_tokens: Option<u32>,
    /// Output tokens, overriding the distribution.
    pub output_tokens: Option<u32>,
}

/// A loaded trace.
#[derive(Debug, Clone, PartialEq)]
pub struct Trace {
    /// Entries, non-decreasing in time.
    pub entries: Vec<TraceEntry>,
    /// Loop length in µs when looping (the last timestamp, at least 1 µs; entries at or past it
    /// are not replayed), else `None`.
    pub loop_us: Option<u64>,
}

impl Trace {
    /// Parses the CSV text; errors name the line number.
    pub fn parse(text: &str, time_scale: f64, looped: bool) -> Result<Trace, String> {
        if !time_scale.is_finite() || time_scale <= 0.0 {
            return Err(format!("time_scale {time_scale} must be finite and > 0"));
        }
        let mut entries = Vec::new();
        let mut last = 0.0_f64;
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let mut cols = line.split(',').map(str::trim);
            let first = cols.next().unwrap_or("");
            let ts: f64 = match first.parse() {
                Ok(v) => v,
                Err(_) if i == 0 => continue, // header
                Err(_) => return Err(format!("line {}: bad timestamp {first:?}", i + 1)),
            };
            if !ts.is_finite() || ts < 0.0 || ts < last {
                return Err(format!(
                    "line {}: timestamp {ts} must be finite, >= 0 and non-decreasing",
                    i + 1
                ));
            }
            last = ts;
            let mut size = |name: &str| -> Result<Option<u32>, String> {
                match cols.next() {
                    None | Some("") => Ok(None),
                    Some(v) => v
                        .parse::<u32>()
                        .map(Some)
                        .map_err(|_| format!("line {}: bad {name} {v:?}", i + 1)),
                }
            };
            let prompt_tokens = size("prompt_tokens")?;
            let output_tokens = size("output_tokens")?;
            entries.push(TraceEntry {
                at_us: (ts * time_scale * 1e6).round() as u64,
                prompt_tokens,
                output_tokens,
            });
        }
        let loop_us = looped.then(|| entries.last().map_or(1, |e| e.at_us.max(1)));
        Ok(Trace { entries, loop_us })
    }

    /// Entries with time in `[a, b)` µs (profile time), with their absolute profile times.
    pub fn between(&self, a: u64, b: u64) -> Vec<(u64, TraceEntry)> {
        let mut out = Vec::new();
        let period = self.loop_us.unwrap_or(u64::MAX);
        let mut base = if self.loop_us.is_some() {
            (a / period) * period
        } else {
            0
        };
        loop {
            if base >= b {
                break;
            }
            let lo = a.saturating_sub(base);
            let hi = b - base;
            let start = self.entries.partition_point(|e| e.at_us < lo);
            for e in &self.entries[start..] {
                if e.at_us >= hi || (self.loop_us.is_some() && e.at_us >= period) {
                    break;
                }
                out.push((base + e.at_us, *e));
            }
            if self.loop_us.is_none() {
                break;
            }
            base += period;
        }
        out
    }
}

impl LoadProfile {
    /// Checks the parameters (and reads a trace file); errors say what is wrong.
    pub fn validate(&self) -> Result<(), String> {
        let rate_ok = |name: &str, r: f64| {
            if r.is_finite() && r >= 0.0 {
                Ok(())
            } else {
                Err(format!("{name}: {r} must be finite and >= 0"))
            }
        };
        match self {
            LoadProfile::Constant { rate } => rate_ok("rate", *rate),
            LoadProfile::Step {
                steps,
                before,
                after,
                at,
            } => {
                let short = before.is_some() || after.is_some() || at.is_some();
                if short && !steps.is_empty() {
                    return Err("use either steps or {before, after, at}, not both".into());
                }
                if short && (before.is_none() || after.is_none() || at.is_none()) {
                    return Err("the short form needs before, after and at".into());
                }
                if !short && steps.is_empty() {
                    return Err("steps must not be empty".into());
                }
                if steps.windows(2).any(|w| w[1].at < w[0].at) {
                    return Err("steps must be sorted by at".into());
                }
                for s in steps {
                    rate_ok("steps[].rate", s.rate)?;
                }
                rate_ok("before", before.unwrap_or(0.0))?;
                rate_ok("after", after.unwrap_or(0.0))
            }
            LoadProfile::Ramp { from, to, .. } => rate_ok("from", *from).and(rate_ok("to", *to)),
            LoadProfile::Diurnal {
                mean,
                amplitude,
                period,
                ..
            } => {
                rate_ok("mean", *mean)?;
                rate_ok("amplitude", *amplitude)?;
                if period.is_zero() {
                    Err("period must be > 0".into())
                } else {
                    Ok(())
                }
            }
            LoadProfile::Burst {
                base,
                peak,
                every,
                duration,
                ..
            } => {
                rate_ok("base", *base)?;
                rate_ok("peak", *peak)?;
                match every {
                    Some(e) if e.is_zero() || e < duration => {
                        Err("every must be >= duration and > 0".into())
                    }
                    _ => Ok(()),
                }
            }
            LoadProfile::IdleThenBurst { rate, .. } => rate_ok("rate", *rate),
            LoadProfile::Trace {
                path,
                time_scale,
                looped,
            } => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| format!("{}: {e}", path.display()))?;
                Trace::parse(&text, *time_scale, *looped)
                    .map(|_| ())
                    .map_err(|e| format!("{}: {e}", path.display()))
            }
            LoadProfile::Piecewise { segments } => {
                if segments.is_empty() {
                    return Err("segments must not be empty".into());
                }
                for (i, s) in segments.iter().enumerate() {
                    s.profile
                        .validate()
                        .map_err(|e| format!("segments[{i}].profile: {e}"))?;
                }
                Ok(())
            }
        }
    }

    /// The instantaneous rate λ(t) in req/s, `t` in seconds since the profile start.
    /// A trace reports 0 (its arrivals are exact timestamps).
    pub fn rate_at(&self, t: f64) -> f64 {
        match self {
            LoadProfile::Constant { rate } => *rate,
            LoadProfile::Step { .. } => {
                let pts = self.step_points();
                pts.iter()
                    .rev()
                    .find(|(at, _)| *at <= t)
                    .map_or(0.0, |(_, r)| *r)
            }
            LoadProfile::Ramp {
                from,
                to,
                start,
                duration,
            } => {
                let (s, d) = (start.as_secs_f64(), duration.as_secs_f64());
                if t < s {
                    *from
                } else if d == 0.0 || t >= s + d {
                    *to
                } else {
                    from + (to - from) * (t - s) / d
                }
            }
            LoadProfile::Diurnal {
                mean,
                amplitude,
                period,
                phase,
            } => (mean
                + amplitude * (TAU * (t + phase.as_secs_f64()) / period.as_secs_f64()).sin())
            .max(0.0),
            LoadProfile::Burst {
                base,
                peak,
                start,
                duration,
                every,
            } => {
                if in_pulse(
                    t,
                    start.as_secs_f64(),
                    duration.as_secs_f64(),
                    every.map(|e| e.as_secs_f64()),
                ) {
                    *peak
                } else {
                    *base
                }
            }
            LoadProfile::IdleThenBurst {
                idle,
                rate,
                duration,
            } => {
                let s = idle.as_secs_f64();
                let end = duration.map_or(f64::INFINITY, |d| s + d.as_secs_f64());
                if t >= s && t < end { *rate } else { 0.0 }
            }
            LoadProfile::Trace { .. } => 0.0,
            LoadProfile::Piecewise { segments } => {
                let (seg, off) = segment_at(segments, t);
                seg.profile.rate_at(t - off)
            }
        }
    }

    /// Λ = ∫λ(t)dt over `[a, b)` seconds: exact for the piecewise-linear profiles, Simpson's rule
    /// on 16 panels for a clamped sine.
    pub fn integral(&self, a: f64, b: f64) -> f64 {
        if b <= a {
            return 0.0;
        }
        match self {
            LoadProfile::Constant { rate } => rate * (b - a),
            LoadProfile::Step { .. } => {
                let pts = self.step_points();
                let mut total = 0.0;
                for (i, (at, r)) in pts.iter().enumerate() {
                    let end = pts.get(i + 1).map_or(f64::INFINITY, |p| p.0);
                    total += r * overlap(a, b, *at, end);
                }
                total
            }
            LoadProfile::Ramp {
                start, duration, ..
            } => {
                let (s, d) = (start.as_secs_f64(), duration.as_secs_f64());
                let mut total = 0.0;
                for (lo, hi) in [(f64::NEG_INFINITY, s), (s, s + d), (s + d, f64::INFINITY)] {
                    let (x, y) = (a.max(lo), b.min(hi));
                    if y > x {
                        total += (y - x) * (self.rate_at(x) + self.rate_at_left(y)) / 2.0;
                    }
                }
                total
            }
            LoadProfile::Diurnal {
                mean,
                amplitude,
                period,
                phase,
            } => {
                let p = period.as_secs_f64();
                if amplitude <= mean {
                    let ph = phase.as_secs_f64();
                    let w = TAU / p;
                    mean * (b - a) - amplitude / w * ((w * (b + ph)).cos() - (w * (a + ph)).cos())
                } else {
                    simpson(|t| self.rate_at(t), a, b, 16)
                }
            }
            LoadProfile::Burst {
                base,
                peak,
                start,
                duration,
                every,
            } => {
                let (s, d) = (start.as_secs_f64(), duration.as_secs_f64());
                let mut pulse = 0.0;
                match every {
                    None => pulse = overlap(a, b, s, s + d),
                    Some(e) => {
                        let e = e.as_secs_f64();
                        let first = ((a - s) / e).floor().max(0.0);
                        let mut k = first;
                        while s + k * e < b {
                            pulse += overlap(a, b, s + k * e, s + k * e + d);
                            k += 1.0;
                        }
                    }
                }
                base * (b - a) + (peak - base) * pulse
            }
            LoadProfile::IdleThenBurst {
                idle,
                rate,
                duration,
            } => {
                let s = idle.as_secs_f64();
                let end = duration.map_or(f64::INFINITY, |d| s + d.as_secs_f64());
                rate * overlap(a, b, s, end)
            }
            LoadProfile::Trace { .. } => 0.0,
            LoadProfile::Piecewise { segments } => {
                let mut total = 0.0;
                let mut off = 0.0;
                for (i, seg) in segments.iter().enumerate() {
                    let end = if i + 1 == segments.len() {
                        f64::INFINITY
                    } else {
                        off + seg.duration.as_secs_f64()
                    };
                    let (x, y) = (a.max(off), b.min(end));
                    if y > x {
                        total += seg.profile.integral(x - off, y - off);
                    }
                    off = end;
                }
                total
            }
        }
    }

    /// The time of the next rate change after `t` seconds, for piecewise-constant profiles.
    pub fn next_change(&self, t: f64) -> Option<f64> {
        match self {
            LoadProfile::Step { .. } => self
                .step_points()
                .into_iter()
                .map(|p| p.0)
                .find(|&at| at > t),
            LoadProfile::IdleThenBurst { idle, duration, .. } => {
                let s = idle.as_secs_f64();
                [Some(s), duration.map(|d| s + d.as_secs_f64())]
                    .into_iter()
                    .flatten()
                    .find(|&x| x > t)
            }
            LoadProfile::Piecewise { segments } => {
                let mut off = 0.0;
                for (i, seg) in segments.iter().enumerate() {
                    let end = if i + 1 == segments.len() {
                        f64::INFINITY
                    } else {
                        off + seg.duration.as_secs_f64()
                    };
                    if t < end {
                        let inner = seg
                            .profile
                            .next_change(t - off)
                            .map(|x| x + off)
                            .filter(|&x| x < end);
                        return inner.or(end.is_finite().then_some(end));
                    }
                    off = end;
                }
                None
            }
            _ => None,
        }
    }

    /// The trace of a `trace` profile, read from disk.
    pub fn load_trace(&self) -> Result<Option<Arc<Trace>>, String> {
        match self {
            LoadProfile::Trace {
                path,
                time_scale,
                looped,
            } => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| format!("{}: {e}", path.display()))?;
                Trace::parse(&text, *time_scale, *looped).map(|t| Some(Arc::new(t)))
            }
            _ => Ok(None),
        }
    }

    fn step_points(&self) -> Vec<(f64, f64)> {
        match self {
            LoadProfile::Step {
                steps,
                before,
                after,
                at,
            } => match (before, after, at) {
                (Some(b), Some(a), Some(at)) => {
                    vec![(f64::NEG_INFINITY, *b), (at.as_secs_f64(), *a)]
                }
                _ => steps.iter().map(|s| (s.at.as_secs_f64(), s.rate)).collect(),
            },
            _ => Vec::new(),
        }
    }

    fn rate_at_left(&self, t: f64) -> f64 {
        match self {
            LoadProfile::Ramp {
                from,
                to,
                start,
                duration,
            } => {
                let (s, d) = (start.as_secs_f64(), duration.as_secs_f64());
                if t <= s {
                    *from
                } else if t >= s + d {
                    *to
                } else {
                    from + (to - from) * (t - s) / d
                }
            }
            _ => self.rate_at(t),
        }
    }
}

fn segment_at(segments: &[Segment], t: f64) -> (&Segment, f64) {
    let mut off = 0.0;
    for (i, seg) in segments.iter().enumerate() {
        let d = seg.duration.as_secs_f64();
        if i + 1 == segments.len() || t < off + d {
            return (seg, off);
        }
        off += d;
    }
    // segments is validated non-empty; an empty list behaves like its own first segment.
    (&segments[0], 0.0)
}

fn in_pulse(t: f64, s: f64, d: f64, every: Option<f64>) -> bool {
    if t < s {
        return false;
    }
    let x = match every {
        Some(e) if e > 0.0 => (t - s) % e,
        _ => t - s,
    };
    x < d
}

fn overlap(a: f64, b: f64, lo: f64, hi: f64) -> f64 {
    (b.min(hi) - a.max(lo)).max(0.0)
}

fn simpson(f: impl Fn(f64) -> f64, a: f64, b: f64, n: usize) -> f64 {
    let h = (b - a) / n as f64;
    let mut s = f(a) + f(b);
    for i in 1..n {
        s += f(a + h * i as f64) * if i % 2 == 1 { 4.0 } else { 2.0 };
    }
    s * h / 3.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    fn step() -> LoadProfile {
        LoadProfile::Step {
            steps: vec![
                StepPoint {
                    at: secs(0),
                    rate: 2.0,
                },
                StepPoint {
                    at: secs(60),
                    rate: 20.0,
                },
            ],
            before: None,
            after: None,
            at: None,
        }
    }

    #[test]
    fn rate_tables_for_every_profile() {
        let cases: Vec<(LoadProfile, Vec<(f64, f64)>)> = vec![
            (
                LoadProfile::Constant { rate: 4.0 },
                vec![(0.0, 4.0), (100.0, 4.0)],
            ),
            (
                step(),
                vec![(0.0, 2.0), (59.9, 2.0), (60.0, 20.0), (1e4, 20.0)],
            ),
            (
                LoadProfile::Step {
                    steps: vec![],
                    before: Some(1.0),
                    after: Some(3.0),
                    at: Some(secs(10)),
                },
                vec![(0.0, 1.0), (9.99, 1.0), (10.0, 3.0)],
            ),
            (
                LoadProfile::Ramp {
                    from: 0.0,
                    to: 10.0,
                    start: secs(10),
                    duration: secs(10),
                },
                vec![
                    (0.0, 0.0),
                    (10.0, 0.0),
                    (15.0, 5.0),
                    (20.0, 10.0),
                    (30.0, 10.0),
                ],
            ),
            (
                LoadProfile::Diurnal {
                    mean: 5.0,
                    amplitude: 10.0,
                    period: secs(40),
                    phase: secs(0),
                },
                vec![(0.0, 5.0), (10.0, 15.0), (20.0, 5.0), (30.0, 0.0)],
            ),
            (
                LoadProfile::Burst {
                    base: 1.0,
                    peak: 9.0,
                    start: secs(5),
                    duration: secs(2),
                    every: Some(secs(10)),
                },
                vec![
                    (0.0, 1.0),
                    (5.0, 9.0),
                    (6.9, 9.0),
                    (7.0, 1.0),
                    (15.5, 9.0),
                    (17.5, 1.0),
                ],
            ),
            (
                LoadProfile::IdleThenBurst {
                    idle: secs(15),
                    rate: 2.0,
                    duration: Some(secs(5)),
                },
                vec![
                    (0.0, 0.0),
                    (14.9, 0.0),
                    (15.0, 2.0),
                    (19.9, 2.0),
                    (20.0, 0.0),
                ],
            ),
            (
                LoadProfile::Piecewise {
                    segments: vec![
                        Segment {
                            duration: secs(10),
                            profile: LoadProfile::Constant { rate: 1.0 },
                        },
                        Segment {
                            duration: secs(10),
                            profile: LoadProfile::Ramp {
                                from: 0.0,
                                to: 10.0,
                                start: secs(0),
                                duration: secs(10),
                            },
                        },
                    ],
                },
                vec![(5.0, 1.0), (15.0, 5.0), (100.0, 10.0)],
            ),
        ];
        for (p, points) in cases {
            p.validate().unwrap();
            for (t, want) in points {
                let got = p.rate_at(t);
                assert!((got - want).abs() < 1e-9, "{p:?} at {t}: {got} != {want}");
            }
        }
    }

    #[test]
    fn integrals_match_numeric_integration() {
        let profiles = vec![
            step(),
            LoadProfile::Ramp {
                from: 1.0,
                to: 9.0,
                start: secs(3),
                duration: secs(4),
            },
            LoadProfile::Diurnal {
                mean: 5.0,
                amplitude: 3.0,
                period: secs(20),
                phase: secs(2),
            },
            LoadProfile::Burst {
                base: 1.0,
                peak: 9.0,
                start: secs(5),
                duration: secs(2),
                every: Some(secs(4)),
            },
            LoadProfile::IdleThenBurst {
                idle: secs(3),
                rate: 2.0,
                duration: None,
            },
        ];
        for p in profiles {
            for (a, b) in [(0.0, 1.0), (2.5, 7.3), (59.95, 60.05), (0.0, 100.0)] {
                let exact = p.integral(a, b);
                let n = 200_000;
                let h = (b - a) / n as f64;
                let numeric: f64 = (0..n)
                    .map(|i| p.rate_at(a + h * (i as f64 + 0.5)) * h)
                    .sum();
                assert!(
                    (exact - numeric).abs() < 1e-3 * (1.0 + numeric),
                    "{p:?} [{a},{b}): {exact} vs {numeric}"
                );
            }
        }
    }

    #[test]
    fn step_switches_at_the_exact_tick() {
        let p = step();
        assert!((p.integral(59.9, 60.0) - 0.2).abs() < 1e-12);
        assert!((p.integral(60.0, 60.1) - 2.0).abs() < 1e-12);
        assert_eq!(p.next_change(10.0), Some(60.0));
    }

    #[test]
    fn trace_parses_and_replays_exact_timestamps() {
        let t = Trace::parse(
            "timestamp_s,prompt_tokens,output_tokens\n0.5,100,10\n1.25\n1.25,7,\n",
            1.0,
            false,
        )
        .unwrap();
        assert_eq!(t.entries.len(), 3);
        let got: Vec<u64> = t.between(0, 2_000_000).iter().map(|e| e.0).collect();
        assert_eq!(got, vec![500_000, 1_250_000, 1_250_000]);
        assert_eq!(t.entries[0].prompt_tokens, Some(100));
        assert_eq!(t.entries[2].output_tokens, None);
        assert!(t.between(0, 500_000).is_empty());
    }

    #[test]
    fn looped_trace_repeats() {
        let t = Trace::parse("0.0\n1.0\n", 1.0, true).unwrap();
        let got: Vec<u64> = t.between(0, 3_000_000).iter().map(|e| e.0).collect();
        assert_eq!(got, vec![0, 1_000_000, 2_000_000]);
    }

    #[test]
    fn bad_trace_line_names_its_number() {
        let e = Trace::parse("1.0\n0.5\n", 1.0, false).unwrap_err();
        assert!(e.starts_with("line 2:"), "{e}");
        let e = Trace::parse("ts\n1.0\nxyz\n", 1.0, false).unwrap_err();
        assert!(e.starts_with("line 3:"), "{e}");
    }

    #[test]
    fn profiles_round_trip_through_yaml() {
        let y = "type: step\nsteps:\n  - {at: 0s, rate: 4}\n  - {at: 10s, rate: 30}\n";
        let p: LoadProfile = serde_saphyr::from_str(y).unwrap();
        assert_eq!(p.rate_at(11.0), 30.0);
    }
}
