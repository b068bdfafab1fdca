//! Test harness shared by wva-rs integration tests.
//!
//! - [`prometheus::Prometheus`]: a real Prometheus child process on a free loopback port with a
//!   temporary TSDB, a 1 s scrape interval and file_sd targets (refresh 1 s); killed on drop.
//! - [`metrics_server::MetricsServer`]: an in-test HTTP server serving configurable exposition
//!   text (e.g. `vllm:*` series) per path, with switchable status codes.
//! - [`fake_api::FakeApi`]: a scripted HTTP server standing in for the Prometheus API in fault tests.
//! - [`vllm`]: builders for vLLM exposition text.
//! - [`http`]: a minimal HTTP/1.1 client for talking to the above without TLS machinery.

pub mod fake_api;
pub mod http;
pub mod metrics_server;
pub mod prometheus;
pub mod vllm;

pub use fake_api::{FakeApi, FakeResponse, RecordedRequest};
pub use metrics_server::MetricsServer;
pub use prometheus::{FileSdTarget, Prometheus};
pub use vllm::{VllmPod, vllm_text};
