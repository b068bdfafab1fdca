//! Cycle triggers: a fixed interval plus coalesced event requests.
//!
//! A burst of events gives one cycle: a request waits `debounce` to gather others, an
//! event-triggered cycle starts at least `min_gap` after the previous cycle began, and requests
//! that arrive during a cycle cause exactly one follow-up cycle. The periodic timer restarts
//! after every cycle, whatever triggered it.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;
use wva_exposition::CycleTrigger as Trigger;

/// A cloneable handle that asks the engine for a cycle soon. Requests coalesce.
#[derive(Debug, Clone, Default)]
pub struct CycleRequester {
    notify: Arc<Notify>,
}

impl CycleRequester {
    /// A new requester (the engine keeps one and hands out clones).
    pub fn new() -> Self {
        Self::default()
    }

    /// Requests a cycle; many calls before the engine wakes up count as one.
    pub fn request(&self) {
        self.notify.notify_one();
    }

    pub(crate) async fn requested(&self) {
        self.notify.notified().await;
    }
}

/// Timing of the loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    /// Interval between periodic cycles, measured from the end of the previous cycle.
    pub interval: Duration,
    /// How long an event request waits to gather others.
    pub debounce: Duration,
    /// Minimum time between the start of one cycle and an event-triggered next one.
    pub min_gap: Duration,
}

impl Default for Schedule {
    fn default() -> Self {
        Schedule {
            interval: Duration::from_secs(30),
            debounce: Duration::from_secs(2),
            min_gap: Duration::from_secs(5),
        }
    }
}

/// Decides when the next cycle runs.
#[derive(Debug)]
pub(crate) struct Scheduler {
    schedule: Schedule,
    requests: CycleRequester,
    last_start: Option<Instant>,
}

impl Scheduler {
    pub(crate) fn new(schedule: Schedule, requests: CycleRequester) -> Self {
        Scheduler {
            schedule,
            requests,
            last_start: None,
        }
    }

    /// Waits until the next cycle is due and says why. The first cycle runs at once.
    pub(crate) async fn next(&mut self, last_end: Option<Instant>) -> Trigger {
        let Some(last_end) = last_end else {
            return Trigger::Periodic;
        };
        let periodic_at = last_end + self.schedule.interval;
        tokio::select! {
            _ = tokio::time::sleep_until(periodic_at) => return Trigger::Periodic,
            _ = self.requests.requested() => {}
        }
        // An event: gather the burst, respect the minimum gap, but never run later than the
        // periodic cycle would have.
        let mut at = Instant::now() + self.schedule.debounce;
        if let Some(start) = self.last_start {
            at = at.max(start + self.schedule.min_gap);
        }
        let at = at.min(periodic_at.max(Instant::now()));
        tokio::time::sleep_until(at).await;
        Trigger::Event
    }

    /// Records the start of a cycle.
    pub(crate) fn started(&mut self, at: Instant) {
        self.last_start = Some(at);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schedule() -> Schedule {
        Schedule {
            interval: Duration::from_secs(30),
            debounce: Duration::from_secs(2),
            min_gap: Duration::from_secs(5),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn first_cycle_runs_at_once() {
        let mut s = Scheduler::new(schedule(), CycleRequester::new());
        let t0 = Instant::now();
        assert_eq!(s.next(None).await, Trigger::Periodic);
        assert_eq!(Instant::now(), t0);
    }

    #[tokio::test(start_paused = true)]
    async fn periodic_cycle_follows_the_interval_from_the_last_end() {
        let mut s = Scheduler::new(schedule(), CycleRequester::new());
        let end = Instant::now();
        assert_eq!(s.next(Some(end)).await, Trigger::Periodic);
        assert_eq!(Instant::now() - end, Duration::from_secs(30));
    }

    #[tokio::test(start_paused = true)]
    async fn burst_of_requests_gives_one_event_cycle_after_debounce() {
        let req = CycleRequester::new();
        let mut s = Scheduler::new(schedule(), req.clone());
        let start = Instant::now();
        s.started(start);
        tokio::time::advance(Duration::from_secs(10)).await;
        let end = Instant::now();
        for _ in 0..50 {
            req.request();
        }
        assert_eq!(s.next(Some(end)).await, Trigger::Event);
        assert_eq!(Instant::now() - end, Duration::from_secs(2));
        // The burst was consumed: the next wait is the periodic one.
        let end2 = Instant::now();
        assert_eq!(s.next(Some(end2)).await, Trigger::Periodic);
    }

    #[tokio::test(start_paused = true)]
    async fn event_cycle_respects_the_minimum_gap() {
        let req = CycleRequester::new();
        let mut s = Scheduler::new(schedule(), req.clone());
        let start = Instant::now();
        s.started(start);
        tokio::time::advance(Duration::from_secs(1)).await;
        req.request();
        assert_eq!(s.next(Some(Instant::now())).await, Trigger::Event);
        assert_eq!(Instant::now() - start, Duration::from_secs(5));
    }

    #[tokio::test(start_paused = true)]
    async fn request_during_a_cycle_causes_one_follow_up() {
        let req = CycleRequester::new();
        let mut s = Scheduler::new(schedule(), req.clone());
        s.started(Instant::now());
        // Requests arrive while the cycle runs (before next() is called).
        req.request();
        req.request();
        tokio::time::advance(Duration::from_secs(6)).await;
        assert_eq!(s.next(Some(Instant::now())).await, Trigger::Event);
        let end = Instant::now();
        assert_eq!(s.next(Some(end)).await, Trigger::Periodic);
        assert_eq!(Instant::now() - end, Duration::from_secs(30));
    }
}
