//! The query catalogue: names, groups, escaping, batching and rendering (spec §1).

mod config;
mod escape;
mod names;
mod plan;

pub use config::CatalogueConfig;
pub use escape::{alternation, escape_promql_string, escape_regex_literal};
pub use names::{QueryGroup, QueryName};
pub use plan::{Batch, BatchPlan, PlannedQuery, QueryCatalogue, Selector, TrackedSet};
