//! Accelerator profiles: performance coefficients, KV pool and scheduler limits.

use serde::{Deserialize, Serialize};

/// Step-time coefficients: a step takes `alpha_ms + beta_ms × C + gamma_ms × M` milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Perf {
    /// Base time of one engine step (ms).
    pub alpha_ms: f64,
    /// Time per computed token (ms).
    pub beta_ms: f64,
    /// Time per KV token read (ms).
    pub gamma_ms: f64,
}

/// KV-cache pool of one replica.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KvPool {
    /// Number of blocks.
    pub num_gpu_blocks: u32,
    /// Tokens per block.
    pub block_size: u32,
}

impl KvPool {
    /// Capacity in tokens.
    pub fn tokens(&self) -> u64 {
        u64::from(self.num_gpu_blocks) * u64::from(self.block_size)
    }
}

/// A complete replica profile (a built-in accelerator, possibly with overrides).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ReplicaProfile {
    /// Performance coefficients.
    pub perf: Perf,
    /// KV pool.
    pub kv: KvPool,
    /// Maximum running sequences.
    pub max_num_seqs: u32,
    /// Token budget per step.
    pub max_num_batched_tokens: u32,
    /// Default cost ($/h).
    pub cost: f64,
}

/// Names of the built-in accelerator profiles.
pub const BUILTIN_ACCELERATORS: [&str; 3] = ["L4", "A100", "H100"];

/// The built-in profile of an 8B-class model on `accelerator` (spec/sim.md §2.4), if any.
/// The numbers are illustrative; KV pools are scaled down about 10× so saturation is reachable.
pub fn builtin(accelerator: &str) -> Option<ReplicaProfile> {
    let (a, b, g, blocks, seqs, batched, cost) = match accelerator {
        "L4" => (20.0, 0.15, 0.0004, 2048, 48, 4096, 0.8),
        "A100" => (10.0, 0.07, 0.00015, 4096, 128, 8192, 2.5),
        "H100" => (6.0, 0.04, 0.00008, 6144, 256, 8192, 4.0),
        _ => return None,
    };
    Some(ReplicaProfile {
        perf: Perf {
            alpha_ms: a,
            beta_ms: b,
            gamma_ms: g,
        },
        kv: KvPool {
            num_gpu_blocks: blocks,
            block_size: 16,
        },
        max_num_seqs: seqs,
        max_num_batched_tokens: batched,
        cost,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtins_exist_and_unknown_is_none() {
        for a in BUILTIN_ACCELERATORS {
            assert!(builtin(a).is_some());
        }
        assert!(builtin("B200").is_none());
        assert_eq!(builtin("L4").map(|p| p.kv.tokens()), Some(32768));
    }
}
