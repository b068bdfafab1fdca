//! Gateway routing among the ready replicas of one model (spec/sim.md §2.2).

use crate::config::Routing;
use crate::rng::{SimRng, below};

/// A ready replica as the router sees it: state at tick start plus what it routed this tick.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Candidate {
    /// Waiting requests at tick start.
    pub waiting: u64,
    /// KV usage at tick start.
    pub kv: f64,
    /// Running sequences at tick start.
    pub running: u64,
    /// `max_num_seqs` of the replica.
    pub max_num_seqs: u32,
    /// Requests routed to it in this tick so far.
    pub routed: u64,
}

impl Candidate {
    /// The least-loaded score: waiting (routed counted as waiting) + kv + running/max_num_seqs.
    pub fn score(&self) -> f64 {
        (self.waiting + self.routed) as f64
            + self.kv
            + self.running as f64 / f64::from(self.max_num_seqs.max(1))
    }

    /// Saturated for flow control: waiting ≥ 5 or KV ≥ 0.8.
    pub fn saturated(&self) -> bool {
        self.waiting + self.routed >= 5 || self.kv >= 0.8
    }
}

/// Picks a candidate (slice sorted by pod name); `None` when the slice is empty.
pub fn pick(
    policy: Routing,
    cands: &[Candidate],
    rr_cursor: &mut u64,
    rng: &mut SimRng,
) -> Option<usize> {
    if cands.is_empty() {
        return None;
    }
    match policy {
        Routing::LeastLoaded => {
            let mut best = 0;
            let mut best_score = cands[0].score();
            for (i, c) in cands.iter().enumerate().skip(1) {
                let s = c.score();
                if s < best_score {
                    best = i;
                    best_score = s;
                }
            }
            Some(best)
        }
        Routing::RoundRobin => {
            let i = (*rr_cursor % cands.len() as u64) as usize;
            *rr_cursor = rr_cursor.wrapping_add(1);
            Some(i)
        }
        Routing::Random => Some(below(rng, cands.len() as u64) as usize),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::stream;

    fn c(waiting: u64, kv: f64, routed: u64) -> Candidate {
        Candidate {
            waiting,
            kv,
            running: 0,
            max_num_seqs: 48,
            routed,
        }
    }

    #[test]
    fn least_loaded_prefers_low_score_and_ties_go_to_the_first_name() {
        let mut rr = 0;
        let mut rng = stream(1, "route");
        assert_eq!(
            pick(
                Routing::LeastLoaded,
                &[c(1, 0.1, 0), c(0, 0.1, 0)],
                &mut rr,
                &mut rng
            ),
            Some(1)
        );
        assert_eq!(
            pick(
                Routing::LeastLoaded,
                &[c(0, 0.1, 0), c(0, 0.1, 0)],
                &mut rr,
                &mut rng
            ),
            Some(0)
        );
        assert_eq!(
            pick(
                Routing::LeastLoaded,
                &[c(0, 0.1, 2), c(1, 0.1, 0)],
                &mut rr,
                &mut rng
            ),
            Some(1)
        );
    }

    #[test]
    fn round_robin_cycles_and_random_stays_in_range() {
        let mut rr = 0;
        let mut rng = stream(1, "route");
        let cs = [c(0, 0.0, 0); 3];
        let got: Vec<_> = (0..4)
            .filter_map(|_| pick(Routing::RoundRobin, &cs, &mut rr, &mut rng))
            .collect();
        assert_eq!(got, vec![0, 1, 2, 0]);
        for _ in 0..100 {
            assert!(pick(Routing::Random, &cs, &mut rr, &mut rng).is_some_and(|i| i < 3));
        }
        assert_eq!(pick(Routing::Random, &[], &mut rr, &mut rng), None);
    }

    #[test]
    fn saturation_thresholds() {
        assert!(c(5, 0.0, 0).saturated());
        assert!(c(3, 0.0, 2).saturated());
        assert!(c(0, 0.8, 0).saturated());
        assert!(!c(4, 0.79, 0).saturated());
    }
}
