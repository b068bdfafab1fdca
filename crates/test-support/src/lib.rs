//! Test harness shared by wva-rs integration tests.
