//! The continuous-batching engine of one replica (spec/sim.md §2.3): pure, no I/O, no clock.
//!
//! Decoding sequences are kept as aggregates so that a step costs amortised O(1): their count,
//! the running sum of `context − start_step` (the KV tokens read follow from it), a counter per
//! block phase (how many cross a block boundary at this step) and a heap of finish steps.

use crate::metrics::{FinishReason, ReplicaMetrics};
use crate::profile::ReplicaProfile;
use serde::{Deserialize, Serialize};
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, VecDeque};

/// What happens when the KV pool runs out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Preemption {
    /// vLLM v1: preempt the most recently admitted sequence and recompute it later.
    #[default]
    Recompute,
    /// Reserve `I + O` tokens at admission; never preempt.
    Reserve,
}

/// Prefix-cache parameters of a replica.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PrefixParams {
    /// Shared prefix length P (tokens).
    pub prefix_tokens: u32,
    /// Groups kept resident (LRU).
    pub resident_groups: usize,
}

/// Static parameters of one replica's engine.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EngineParams {
    /// Performance model, KV pool and scheduler limits.
    pub profile: ReplicaProfile,
    /// Preemption mode.
    pub preemption: Preemption,
    /// `max_model_len` (token histograms' upper bucket).
    pub max_model_len: u32,
    /// Prefix cache, when enabled.
    pub prefix: Option<PrefixParams>,
}

/// One request as the replica receives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request {
    /// Fleet-unique id.
    pub id: u64,
    /// When it reaches the replica (µs, fleet virtual time).
    pub arrival_us: u64,
    /// Prompt tokens I (≥ 1).
    pub prompt_tokens: u32,
    /// Output tokens O to generate (≥ 1).
    pub output_tokens: u32,
    /// O was capped by `max_tokens` / `max_model_len` (finishes with `length`).
    pub capped: bool,
    /// Prefix group, when the prefix cache is on.
    pub prefix_group: Option<u32>,
}

/// A finished (or aborted) request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RequestRecord {
    /// Request id.
    pub id: u64,
    /// Arrival at the replica (µs).
    pub arrival_us: u64,
    /// First token (µs), if any.
    pub first_token_us: Option<u64>,
    /// Finish or abort time (µs).
    pub finish_us: u64,
    /// Prompt tokens.
    pub prompt_tokens: u32,
    /// Tokens generated.
    pub output_tokens: u32,
    /// Finish reason.
    pub reason: FinishReason,
}

#[derive(Debug, Clone)]
struct Seq {
    req: Request,
    prefill_target: u32,
    prefilled: u32,
    generated: u32,
    blocks: u64,
    first_scheduled_us: Option<u64>,
    first_token_us: Option<u64>,
    last_token_us: u64,
    admitted_once: bool,
    decoding: bool,
    dec_start_step: u64,
    dec_ctx_start: u64,
    finish_step: u64,
}

impl Seq {
    fn new(req: Request) -> Self {
        Seq {
            req,
            prefill_target: req.prompt_tokens,
            prefilled: 0,
            generated: 0,
            blocks: 0,
            first_scheduled_us: None,
            first_token_us: None,
            last_token_us: 0,
            admitted_once: false,
            decoding: false,
            dec_start_step: 0,
            dec_ctx_start: 0,
            finish_step: 0,
        }
    }

    /// KV tokens held before step `s` while decoding.
    fn kv_len(&self, s: u64) -> u64 {
        self.dec_ctx_start + s - self.dec_start_step
    }
}

/// One replica's engine state.
#[derive(Debug, Clone)]
pub struct ReplicaEngine {
    p: EngineParams,
    bs: u64,
    now_us: u64,
    step: u64,
    pending: VecDeque<Request>,
    waiting: VecDeque<Seq>,
    running: BTreeMap<u64, Seq>,
    next_admit: u64,
    prefilling: Vec<u64>,
    n_dec: u64,
    sum_base: i64,
    phase: Vec<u64>,
    heap: BinaryHeap<Reverse<(u64, u64)>>,
    used_blocks: u64,
    lru: VecDeque<u32>,
    chunks: Vec<(u64, u32)>,
    metrics: ReplicaMetrics,
    records: Vec<RequestRecord>,
    steps_run: u64,
}

fn ceil_div(a: u64, b: u64) -> u64 {
    a.div_ceil(b)
}

impl ReplicaEngine {
    /// A new idle engine whose local time starts at `start_us`.
    pub fn new(p: EngineParams, start_us: u64) -> Self {
        let bs = u64::from(p.profile.kv.block_size.max(1));
        ReplicaEngine {
            p,
            bs,
            now_us: start_us,
            step: 0,
            pending: VecDeque::new(),
            waiting: VecDeque::new(),
            running: BTreeMap::new(),
            next_admit: 0,
            prefilling: Vec::new(),
            n_dec: 0,
            sum_base: 0,
            phase: vec![0; bs as usize],
            heap: BinaryHeap::new(),
            used_blocks: 0,
            lru: VecDeque::new(),
            chunks: Vec::new(),
            metrics: ReplicaMetrics::new(p.max_model_len),
            records: Vec::new(),
            steps_run: 0,
        }
    }

    /// Hands a request to the replica; requests must come in non-decreasing arrival order.
    pub fn enqueue(&mut self, req: Request) {
        self.pending.push_back(req);
    }

    /// Runs engine steps until local time reaches `end_us` or there is no work left.
    pub fn run_until(&mut self, end_us: u64) {
        let mut stalls = 0u32;
        loop {
            self.absorb_arrivals();
            if self.now_us >= end_us {
                break;
            }
            if self.running.is_empty() && self.waiting.is_empty() {
                match self.pending.front() {
                    Some(r) if r.arrival_us < end_us => {
                        self.now_us = self.now_us.max(r.arrival_us);
                        continue;
                    }
                    _ => {
                        self.now_us = end_us;
                        break;
                    }
                }
            }
            if self.step_once() {
                stalls = 0;
            } else {
                stalls += 1;
                if stalls > 10_000 {
                    // Defensive: never spin; drop the head that cannot be scheduled.
                    if let Some(seq) = self.waiting.pop_front() {
                        let now = self.now_us;
                        self.record(seq, now, FinishReason::Error);
                    }
                    stalls = 0;
                }
            }
        }
        self.absorb_arrivals();
        self.update_gauges();
    }

    /// Aborts every request in flight at `at_us` (`finished_reason="abort"`); returns how many.
    pub fn abort_all(&mut self, at_us: u64) -> u64 {
        let mut n = 0;
        let running = std::mem::take(&mut self.running);
        let waiting = std::mem::take(&mut self.waiting);
        let pending: Vec<Request> = self.pending.drain(..).collect();
        for seq in running
            .into_values()
            .chain(waiting)
            .chain(pending.into_iter().map(Seq::new))
        {
            self.record(seq, at_us, FinishReason::Abort);
            n += 1;
        }
        self.prefilling.clear();
        self.n_dec = 0;
        self.sum_base = 0;
        self.phase.iter_mut().for_each(|x| *x = 0);
        self.heap.clear();
        self.used_blocks = 0;
        self.now_us = self.now_us.max(at_us);
        self.update_gauges();
        n
    }

    /// Requests in flight (not yet arrived, waiting or running).
    pub fn in_flight(&self) -> u64 {
        (self.pending.len() + self.waiting.len() + self.running.len()) as u64
    }

    /// Scheduled sequences after the last step.
    pub fn running(&self) -> u64 {
        self.running.len() as u64
    }

    /// Queue length (arrived requests not yet scheduled, preempted included).
    pub fn waiting(&self) -> u64 {
        self.metrics.waiting
    }

    /// Used KV blocks.
    pub fn used_blocks(&self) -> u64 {
        self.used_blocks
    }

    /// KV usage (used blocks / num_gpu_blocks).
    pub fn kv_usage(&self) -> f64 {
        self.used_blocks as f64 / f64::from(self.p.profile.kv.num_gpu_blocks.max(1))
    }

    /// The replica's local time (µs).
    pub fn now_us(&self) -> u64 {
        self.now_us
    }

    /// Engine steps run so far.
    pub fn steps(&self) -> u64 {
        self.steps_run
    }

    /// The metric state.
    pub fn metrics(&self) -> &ReplicaMetrics {
        &self.metrics
    }

    /// The engine's parameters.
    pub fn params(&self) -> &EngineParams {
        &self.p
    }

    /// Takes the records of requests finished since the last call.
    pub fn take_records(&mut self) -> Vec<RequestRecord> {
        std::mem::take(&mut self.records)
    }

    fn free_blocks(&self) -> u64 {
        u64::from(self.p.profile.kv.num_gpu_blocks).saturating_sub(self.used_blocks)
    }

    fn absorb_arrivals(&mut self) {
        while let Some(r) = self.pending.front() {
            if r.arrival_us > self.now_us {
                break;
            }
            if let Some(r) = self.pending.pop_front() {
                self.waiting.push_back(Seq::new(r));
            }
        }
    }

    fn update_gauges(&mut self) {
        self.metrics.running = self.running.len() as u64;
        self.metrics.waiting = self.waiting.len() as u64;
        self.metrics.kv_usage = self.kv_usage();
    }

    fn recompute(&self) -> bool {
        self.p.preemption == Preemption::Recompute
    }

    fn phase_key(&self, ctx: u64, start: u64) -> usize {
        (ctx as i64 - start as i64).rem_euclid(self.bs as i64) as usize
    }

    fn add_decode(&mut self, key: u64, start_step: u64) {
        let Some(seq) = self.running.get_mut(&key) else {
            return;
        };
        seq.decoding = true;
        seq.dec_start_step = start_step;
        seq.dec_ctx_start = u64::from(seq.prefill_target);
        seq.finish_step = start_step + u64::from(seq.req.output_tokens - seq.generated) - 1;
        let (ctx, fin) = (seq.dec_ctx_start, seq.finish_step);
        self.n_dec += 1;
        self.sum_base += ctx as i64 - start_step as i64;
        if self.recompute() {
            let k = self.phase_key(ctx, start_step);
            self.phase[k] += 1;
        }
        self.heap.push(Reverse((fin, key)));
    }

    /// Removes a running sequence at the start of step `s` (or, with `after`, the end of step `s`)
    /// and frees its blocks.
    fn remove_running(&mut self, key: u64, s: u64, after: bool) -> Option<Seq> {
        let mut seq = self.running.remove(&key)?;
        if seq.decoding {
            self.n_dec -= 1;
            self.sum_base -= seq.dec_ctx_start as i64 - seq.dec_start_step as i64;
            let done_steps = if after { s + 1 } else { s } - seq.dec_start_step;
            seq.generated += done_steps as u32;
            if self.recompute() {
                let k = self.phase_key(seq.dec_ctx_start, seq.dec_start_step);
                self.phase[k] -= 1;
                seq.blocks = ceil_div(seq.kv_len(if after { s + 1 } else { s }), self.bs);
            }
        } else {
            self.prefilling.retain(|k| *k != key);
        }
        self.used_blocks = self.used_blocks.saturating_sub(seq.blocks);
        seq.blocks = 0;
        seq.decoding = false;
        Some(seq)
    }

    fn preempt_last(&mut self, s: u64) -> bool {
        let Some((&key, _)) = self.running.last_key_value() else {
            return false;
        };
        let Some(mut seq) = self.remove_running(key, s, false) else {
            return false;
        };
        if seq.generated > 0 && seq.first_token_us.is_some() {
            seq.last_token_us = seq.last_token_us.max(self.now_us);
        }
        seq.prefill_target = seq.req.prompt_tokens + seq.generated;
        seq.prefilled = 0;
        self.metrics.preemptions += 1;
        self.waiting.push_front(seq);
        true
    }

    fn prefix_hit(&mut self, seq: &Seq) -> u32 {
        let (Some(pp), Some(g)) = (self.p.prefix, seq.req.prefix_group) else {
            return 0;
        };
        if seq.admitted_once {
            return 0;
        }
        let resident = self.lru.iter().any(|&x| x == g);
        if !resident {
            return 0;
        }
        let cap = pp.prefix_tokens.min(seq.prefill_target.saturating_sub(1));
        (u64::from(cap) / self.bs * self.bs) as u32
    }

    fn touch_group(&mut self, g: u32) {
        let Some(pp) = self.p.prefix else { return };
        self.lru.retain(|&x| x != g);
        self.lru.push_back(g);
        while self.lru.len() > pp.resident_groups {
            self.lru.pop_front();
        }
    }

    /// One engine step; false when nothing could be computed (a preemption or a drop happened).
    fn step_once(&mut self) -> bool {
        let s = self.step;
        let bs = self.bs;
        let mut budget = u64::from(self.p.profile.max_num_batched_tokens);
        // 1. Decode slots, preempting the newest sequences until they fit.
        if self.recompute() {
            loop {
                let key = (-(s as i64)).rem_euclid(bs as i64) as usize;
                let need = if self.n_dec > 0 { self.phase[key] } else { 0 };
                if need <= self.free_blocks() {
                    self.used_blocks += need;
                    break;
                }
                if !self.preempt_last(s) {
                    break;
                }
            }
        }
        let n_dec = self.n_dec;
        budget = budget.saturating_sub(n_dec);
        let mut c = n_dec;
        let mut m: i64 = self.sum_base + (n_dec as i64) * (s as i64 + 1);
        self.chunks.clear();
        // 2. Chunked prefill of partly prefilled sequences.
        for i in 0..self.prefilling.len() {
            if budget == 0 {
                break;
            }
            let key = self.prefilling[i];
            let free = self.free_blocks();
            let recompute = self.recompute();
            let Some(seq) = self.running.get_mut(&key) else {
                continue;
            };
            let remaining = u64::from(seq.prefill_target - seq.prefilled);
            let mut chunk = remaining.min(budget);
            if recompute {
                let cap = (seq.blocks + free) * bs - u64::from(seq.prefilled);
                chunk = chunk.min(cap);
            }
            if chunk == 0 {
                continue;
            }
            if recompute {
                let nb = ceil_div(u64::from(seq.prefilled) + chunk, bs).saturating_sub(seq.blocks);
                seq.blocks += nb;
                self.used_blocks += nb;
            }
            budget -= chunk;
            c += chunk;
            m += i64::from(seq.prefilled) + chunk as i64;
            self.chunks.push((key, chunk as u32));
        }
        // 3. Admission, FIFO.
        while self.running.len() < self.p.profile.max_num_seqs as usize && budget > 0 {
            let Some(front) = self.waiting.front() else {
                break;
            };
            let front = front.clone();
            let hits = self.prefix_hit(&front);
            let remaining = u64::from(front.prefill_target - hits);
            let chunk = remaining.min(budget);
            let need = if self.recompute() {
                ceil_div(u64::from(hits) + chunk, bs)
            } else {
                ceil_div(
                    u64::from(front.prefill_target)
                        + u64::from(front.req.output_tokens - front.generated),
                    bs,
                )
            };
            if need > self.free_blocks() {
                break;
            }
            let Some(mut seq) = self.waiting.pop_front() else {
                break;
            };
            if !seq.admitted_once {
                self.metrics.prefix_queries += if self.p.prefix.is_some() {
                    u64::from(seq.req.prompt_tokens)
                } else {
                    0
                };
                self.metrics.prefix_hits += u64::from(hits);
                if let Some(g) = seq.req.prefix_group {
                    self.touch_group(g);
                }
                seq.admitted_once = true;
            }
            seq.first_scheduled_us.get_or_insert(self.now_us);
            seq.prefilled = hits;
            seq.blocks = need;
            self.used_blocks += need;
            let key = self.next_admit;
            self.next_admit += 1;
            self.running.insert(key, seq);
            self.prefilling.push(key);
            self.chunks.push((key, chunk as u32));
            budget -= chunk;
            c += chunk;
            m += i64::from(hits) + chunk as i64;
        }
        if c == 0 {
            if !self.running.is_empty() {
                self.preempt_last(s);
            } else if let Some(seq) = self.waiting.pop_front() {
                let now = self.now_us;
                self.record(seq, now, FinishReason::Error);
            }
            return false;
        }
        // 4. Step time and effects at the end of the step.
        let perf = self.p.profile.perf;
        let tau_ms = perf.alpha_ms + perf.beta_ms * c as f64 + perf.gamma_ms * m.max(0) as f64;
        let tau_us = ((tau_ms * 1000.0).round() as u64).max(1);
        let t_end = self.now_us + tau_us;
        let tau_s = tau_us as f64 / 1e6;
        self.metrics.iteration_tokens.observe(c as f64);
        self.metrics.generation_tokens += n_dec;
        self.metrics.itl.observe_n(tau_s, n_dec);
        while let Some(&Reverse((fs, key))) = self.heap.peek() {
            if fs > s {
                break;
            }
            self.heap.pop();
            let valid = self
                .running
                .get(&key)
                .is_some_and(|q| q.decoding && q.finish_step == fs);
            if fs == s
                && valid
                && let Some(mut seq) = self.remove_running(key, s, true)
            {
                seq.generated = seq.req.output_tokens;
                let reason = if seq.req.capped {
                    FinishReason::Length
                } else {
                    FinishReason::Stop
                };
                self.record(seq, t_end, reason);
            }
        }
        let chunks = std::mem::take(&mut self.chunks);
        for &(key, chunk) in &chunks {
            let Some(seq) = self.running.get_mut(&key) else {
                continue;
            };
            seq.prefilled += chunk;
            if seq.prefilled < seq.prefill_target {
                continue;
            }
            seq.generated += 1;
            self.metrics.generation_tokens += 1;
            match seq.first_token_us {
                None => {
                    seq.first_token_us = Some(t_end);
                    self.metrics
                        .ttft
                        .observe((t_end - seq.req.arrival_us) as f64 / 1e6);
                    self.metrics.prompt_tokens += u64::from(seq.req.prompt_tokens);
                }
                Some(_) => {
                    let gap = t_end.saturating_sub(seq.last_token_us);
                    self.metrics.itl.observe(gap as f64 / 1e6);
                }
            }
            seq.last_token_us = t_end;
            let done = seq.generated >= seq.req.output_tokens;
            self.prefilling.retain(|k| *k != key);
            if done {
                if let Some(mut seq) = self.remove_running(key, s, true) {
                    seq.generated = seq.req.output_tokens;
                    let reason = if seq.req.capped {
                        FinishReason::Length
                    } else {
                        FinishReason::Stop
                    };
                    self.record(seq, t_end, reason);
                }
            } else {
                self.add_decode(key, s + 1);
            }
        }
        self.chunks = chunks;
        self.now_us = t_end;
        self.step += 1;
        self.steps_run += 1;
        self.update_gauges();
        true
    }

    fn record(&mut self, seq: Seq, at: u64, reason: FinishReason) {
        self.metrics.count_finish(reason);
        let r = &seq.req;
        if matches!(reason, FinishReason::Stop | FinishReason::Length) {
            let m = &mut self.metrics;
            let sched = seq.first_scheduled_us.unwrap_or(r.arrival_us);
            let first = seq.first_token_us.unwrap_or(at);
            m.prompt_tokens_hist.observe(f64::from(r.prompt_tokens));
            m.generation_tokens_hist.observe(f64::from(seq.generated));
            m.e2e.observe((at - r.arrival_us) as f64 / 1e6);
            m.queue
                .observe(sched.saturating_sub(r.arrival_us) as f64 / 1e6);
            m.prefill.observe(first.saturating_sub(sched) as f64 / 1e6);
            m.decode.observe(at.saturating_sub(first) as f64 / 1e6);
            m.inference.observe(at.saturating_sub(sched) as f64 / 1e6);
            if seq.generated > 1 {
                m.tpot
                    .observe(at.saturating_sub(first) as f64 / 1e6 / f64::from(seq.generated - 1));
            }
        }
        self.records.push(RequestRecord {
            id: r.id,
            arrival_us: r.arrival_us,
            first_token_us: seq.first_token_us,
            finish_us: at,
            prompt_tokens: r.prompt_tokens,
            output_tokens: seq.generated,
            reason,
        });
    }
}

#[cfg(test)]
#[path = "engine_tests.rs"]
mod tests;
