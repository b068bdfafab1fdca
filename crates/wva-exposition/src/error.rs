//! Errors of the exposition crate.

use std::net::SocketAddr;

/// Everything that can go wrong while building the registry or starting the servers.
#[derive(Debug, thiserror::Error)]
pub enum ExpositionError {
    /// `--metrics-naming` has a value outside `inferno`, `wva`, `both`.
    #[error("invalid metrics naming {value:?}: expected one of inferno, wva, both")]
    InvalidNaming {
        /// The rejected value.
        value: String,
    },
    /// A bind address is not `HOST:PORT`, `:PORT` or `0`.
    #[error("invalid bind address {value:?}: expected HOST:PORT, :PORT or 0")]
    InvalidBindAddress {
        /// The rejected value.
        value: String,
    },
    /// The `prometheus` crate refused a metric family (a bug in this crate's definitions).
    #[error("cannot register metric family {family}: {source}")]
    Register {
        /// Name of the family.
        family: String,
        /// The registry's complaint.
        #[source]
        source: prometheus::Error,
    },
    /// A listener could not be bound; the process should exit 1.
    #[error("cannot bind {address} for {listener}: {source}")]
    Bind {
        /// The address that failed.
        address: SocketAddr,
        /// `metrics` or `health probes`.
        listener: &'static str,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// The cycle report could not be serialised to JSON.
    #[error("cannot serialise the cycle report: {source}")]
    SerialiseReport {
        /// serde_json's error.
        #[source]
        source: serde_json::Error,
    },
    /// The metrics TLS certificate or key could not be loaded or generated; the process should exit 1.
    #[error("cannot load metrics TLS certificate from {path}: {message}")]
    TlsCertificate {
        /// Certificate directory (or what was being built).
        path: String,
        /// What went wrong.
        message: String,
    },
    /// The static bearer token file could not be read.
    #[error("cannot read metrics token file {path}: {source}")]
    TokenFile {
        /// Path of the token file.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}
