//! PromQL collector and cache for vLLM metrics (spec/collector.md).

pub use wva_core::{Freshness, FreshnessPolicy};

pub mod parse;
pub use parse::parse_exposition;
