//! The vLLM command-line parser and the capacity helpers built on it (spec/core.md §5.6).

use serde::{Deserialize, Serialize};

/// The vLLM engine parameters that bound KV-cache capacity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VllmParams {
    /// `--gpu-memory-utilization` (default 0.9).
    pub gpu_memory_utilization: f64,
    /// `--block-size` (default 16).
    pub block_size: i64,
    /// `--kv-cache-dtype` (default `auto`).
    pub kv_cache_dtype: String,
    /// `--tensor-parallel-size` (default 1).
    pub tensor_parallel_size: i64,
    /// `--num-gpu-blocks-override` (default 0).
    pub num_gpu_blocks_override: i64,
    /// `--max-num-batched-tokens` (default 0 = engine default).
    pub max_num_batched_tokens: i64,
    /// `--max-num-seqs` (default 256).
    pub max_num_seqs: i64,
    /// `--max-model-len` (default 0).
    pub max_model_len: i64,
    /// `--enforce-eager`.
    pub enforce_eager: bool,
    /// V1 engine (unless `VLLM_USE_V1=0`).
    pub v1_engine: bool,
    /// Chunked prefill (always on with the V1 engine).
    pub chunked_prefill: bool,
}

impl Default for VllmParams {
    fn default() -> Self {
        VllmParams {
            gpu_memory_utilization: 0.9,
            block_size: 16,
            kv_cache_dtype: "auto".to_string(),
            tensor_parallel_size: 1,
            num_gpu_blocks_override: 0,
            max_num_batched_tokens: 0,
            max_num_seqs: 256,
            max_model_len: 0,
            enforce_eager: false,
            v1_engine: true,
            chunked_prefill: true,
        }
    }
}

const SHELLS: [&str; 4] = ["/bin/sh", "/bin/bash", "sh", "bash"];

/// Splits a shell line: whitespace separates tokens outside quotes; `'`/`"` runs are literal.
fn shell_split(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    for c in line.chars() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => cur.push(c),
            None if c == '\'' || c == '"' => quote = Some(c),
            None if c.is_whitespace() => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            None => cur.push(c),
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

fn env_v1(tokens: &[String]) -> Option<bool> {
    tokens
        .iter()
        .filter_map(|t| t.strip_prefix("VLLM_USE_V1="))
        .next_back()
        .map(|v| v != "0")
}

impl VllmParams {
    /// Parses a container's command followed by its args.
    pub fn parse(args: &[String]) -> VllmParams {
        let mut p = VllmParams::default();
        let mut v1 = env_v1(args);
        let shell_at = args
            .windows(3)
            .position(|w| SHELLS.contains(&w[0].as_str()) && w[1] == "-c");
        let split;
        let tokens: &[String] = match shell_at {
            Some(i) => {
                split = shell_split(&args[i + 2]);
                if let Some(after) = env_v1(&split) {
                    v1 = Some(after);
                }
                &split
            }
            None => args,
        };
        let mut i = 0;
        while i < tokens.len() {
            let token = &tokens[i];
            i += 1;
            if !token.starts_with("--") {
                continue;
            }
            let (key, value) = match token.split_once('=') {
                Some((k, v)) => (k, Some(v.to_string())),
                None => match tokens.get(i) {
                    Some(next) if !next.starts_with("--") => {
                        i += 1;
                        (token.as_str(), Some(next.clone()))
                    }
                    _ => (token.as_str(), None),
                },
            };
            let key = key.trim_start_matches('-').replace('-', "_");
            let int = |v: &Option<String>| v.as_deref().and_then(|s| s.parse::<i64>().ok());
            match key.as_str() {
                "gpu_memory_utilization" => {
                    if let Some(x) = value.as_deref().and_then(|s| s.parse::<f64>().ok())
                        && x.is_finite()
                    {
                        p.gpu_memory_utilization = x;
                    }
                }
                "block_size" => p.block_size = int(&value).unwrap_or(p.block_size),
                "num_gpu_blocks_override" => {
                    p.num_gpu_blocks_override = int(&value).unwrap_or(p.num_gpu_blocks_override)
                }
                "max_num_batched_tokens" => {
                    p.max_num_batched_tokens = int(&value).unwrap_or(p.max_num_batched_tokens)
                }
                "max_num_seqs" => p.max_num_seqs = int(&value).unwrap_or(p.max_num_seqs),
                "max_model_len" => p.max_model_len = int(&value).unwrap_or(p.max_model_len),
                "tensor_parallel_size" => {
                    p.tensor_parallel_size = int(&value).unwrap_or(p.tensor_parallel_size)
                }
                "kv_cache_dtype" => {
                    if let Some(v) = value {
                        p.kv_cache_dtype = v;
                    }
                }
                "enforce_eager" => p.enforce_eager = true,
                "enable_chunked_prefill" => p.chunked_prefill = true,
                _ => {}
            }
        }
        if v1 == Some(false) {
            p.v1_engine = false;
            p.chunked_prefill = false;
            // An explicit flag still turns chunked prefill on for the V0 engine.
            if tokens.iter().any(|t| {
                t.starts_with("--")
                    && t.split('=')
                        .next()
                        .map(|k| k.trim_start_matches('-').replace('-', "_"))
                        == Some("enable_chunked_prefill".to_string())
            }) {
                p.chunked_prefill = true;
            }
        }
        if p.v1_engine {
            p.chunked_prefill = true;
        }
        p
    }

    /// The engine's token budget per step.
    pub fn effective_max_batched_tokens(&self) -> i64 {
        if self.max_num_batched_tokens > 0 {
            self.max_num_batched_tokens
        } else if self.chunked_prefill && self.v1_engine {
            8192
        } else if self.chunked_prefill {
            2048
        } else if self.max_model_len > 2048 {
            self.max_model_len
        } else {
            2048
        }
    }

    /// Whether two configurations give the same KV capacity.
    pub fn capacity_compatible(&self, other: &VllmParams) -> bool {
        self.gpu_memory_utilization == other.gpu_memory_utilization
            && self.block_size == other.block_size
            && self.kv_cache_dtype == other.kv_cache_dtype
            && self.tensor_parallel_size == other.tensor_parallel_size
            && self.num_gpu_blocks_override == other.num_gpu_blocks_override
            && self.effective_max_batched_tokens() == other.effective_max_batched_tokens()
    }
}

/// `estimate(p, I, O)`: the k2 derived from engine parameters and token means.
pub fn estimate_k2(params: Option<&VllmParams>, avg_in: f64, avg_out: f64) -> i64 {
    let Some(p) = params else { return 0 };
    let b = p.effective_max_batched_tokens();
    if b <= 0 || avg_out <= 0.0 {
        return 0;
    }
    let n = (b as f64 * avg_out / (avg_in + avg_out)).min(p.max_num_seqs as f64);
    let k2 = (n * (avg_in + avg_out / 2.0)) as i64;
    k2.max(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(list: &[&str]) -> Vec<String> {
        list.iter().map(|t| t.to_string()).collect()
    }

    #[test]
    fn defaults_without_flags() {
        let p = VllmParams::parse(&s(&["vllm", "serve", "m"]));
        assert_eq!(p, VllmParams::default());
        assert_eq!(p.effective_max_batched_tokens(), 8192);
    }

    #[test]
    fn equals_and_space_forms_and_dash_normalisation() {
        let p = VllmParams::parse(&s(&[
            "vllm",
            "serve",
            "m",
            "--max-num-seqs",
            "128",
            "--block_size=32",
            "--gpu-memory-utilization=0.95",
            "--kv-cache-dtype",
            "fp8",
            "--enforce-eager",
            "--max-model-len",
            "notanumber",
            "--tensor-parallel-size",
            "2",
        ]));
        assert_eq!(p.max_num_seqs, 128);
        assert_eq!(p.block_size, 32);
        assert_eq!(p.gpu_memory_utilization, 0.95);
        assert_eq!(p.kv_cache_dtype, "fp8");
        assert!(p.enforce_eager);
        assert_eq!(p.max_model_len, 0);
        assert_eq!(p.tensor_parallel_size, 2);
    }

    #[test]
    fn bare_flag_before_another_flag_consumes_nothing() {
        let p = VllmParams::parse(&s(&["--enforce-eager", "--max-num-seqs", "64"]));
        assert!(p.enforce_eager);
        assert_eq!(p.max_num_seqs, 64);
    }

    #[test]
    fn shell_line_is_split_with_quotes() {
        let p = VllmParams::parse(&s(&[
            "/bin/sh",
            "-c",
            "VLLM_USE_V1=0 vllm serve 'my model' --max-model-len \"4096\" --max-num-seqs 32",
        ]));
        assert!(!p.v1_engine);
        assert!(!p.chunked_prefill);
        assert_eq!(p.max_model_len, 4096);
        assert_eq!(p.max_num_seqs, 32);
        assert_eq!(p.effective_max_batched_tokens(), 4096);
    }

    #[test]
    fn env_token_last_occurrence_wins_and_v1_forces_chunked_prefill() {
        let p = VllmParams::parse(&s(&["VLLM_USE_V1=0", "VLLM_USE_V1=1", "vllm"]));
        assert!(p.v1_engine && p.chunked_prefill);
        let p = VllmParams::parse(&s(&["VLLM_USE_V1=0", "vllm", "--enable-chunked-prefill"]));
        assert!(!p.v1_engine && p.chunked_prefill);
        assert_eq!(p.effective_max_batched_tokens(), 2048);
    }

    #[test]
    fn non_chunked_budget_is_max_model_len_above_2048() {
        let mut p = VllmParams {
            v1_engine: false,
            chunked_prefill: false,
            ..Default::default()
        };
        assert_eq!(p.effective_max_batched_tokens(), 2048);
        p.max_model_len = 2048;
        assert_eq!(p.effective_max_batched_tokens(), 2048);
        p.max_model_len = 2049;
        assert_eq!(p.effective_max_batched_tokens(), 2049);
        p.max_num_batched_tokens = 100;
        assert_eq!(p.effective_max_batched_tokens(), 100);
    }

    #[test]
    fn compatibility_compares_capacity_fields_only() {
        let a = VllmParams::default();
        let b = VllmParams {
            max_num_seqs: 1,
            enforce_eager: true,
            ..Default::default()
        };
        assert!(a.capacity_compatible(&b));
        let c = VllmParams {
            max_num_batched_tokens: 4096,
            ..Default::default()
        };
        assert!(!a.capacity_compatible(&c));
    }

    #[test]
    fn estimate_uses_batch_budget_and_token_means() {
        let p = VllmParams::default();
        // n = min(8192 × 100 / 1000, 256) = 819.2 → 256; k2 = trunc(256 × 950) = 243200.
        assert_eq!(estimate_k2(Some(&p), 900.0, 100.0), 243_200);
        let p = VllmParams {
            max_num_seqs: 1000,
            ..Default::default()
        };
        // n = 819.2; k2 = trunc(819.2 × 950) = 778240.
        assert_eq!(estimate_k2(Some(&p), 900.0, 100.0), 778_240);
        assert_eq!(estimate_k2(Some(&p), 900.0, 0.0), 0);
        assert_eq!(estimate_k2(None, 900.0, 100.0), 0);
    }
}
