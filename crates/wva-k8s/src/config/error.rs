//! Start-up configuration errors with their exact wording (spec/k8s.md §6.3). `Display` gives
//! the text after `error: `; the binary prints `error: {e}` on stderr and exits 2.

use std::fmt;

/// Where a value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// An explicitly given flag (`--name`).
    Flag(&'static str),
    /// The process environment.
    Environment,
    /// The config file at this path.
    ConfigFile(String),
    /// The built-in default.
    Default,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Flag(name) => write!(f, "flag --{name}"),
            Source::Environment => f.write_str("environment"),
            Source::ConfigFile(path) => write!(f, "config file {path}"),
            Source::Default => f.write_str("default"),
        }
    }
}

/// A configuration error that stops start-up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A value outside what the key allows.
    #[error("invalid value \"{value}\" for {key} (from {origin}): {allowed}")]
    InvalidValue {
        /// Environment name of the key.
        key: &'static str,
        /// The value as given.
        value: String,
        /// Where it came from.
        origin: Source,
        /// What is allowed.
        allowed: String,
    },
    /// The config file could not be read.
    #[error("cannot read config file {path}: {error}")]
    CannotReadFile {
        /// The path.
        path: String,
        /// The I/O error's text.
        error: String,
    },
    /// The config file is not a flat YAML mapping.
    #[error("config file {path} is not a YAML mapping of KEY: value")]
    NotAMapping {
        /// The path.
        path: String,
    },
    /// A flag name that is not a key of `run`.
    #[error("unknown flag --{flag}")]
    UnknownFlag {
        /// The flag name.
        flag: String,
    },
}

impl ConfigError {
    /// The error for a config file that cannot be read.
    pub fn cannot_read(path: &str, error: &std::io::Error) -> ConfigError {
        ConfigError::CannotReadFile {
            path: path.to_owned(),
            error: error.to_string(),
        }
    }
}

/// Every error found, in key order; non-empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl ConfigErrors {
    /// The error printed at start-up.
    pub fn first(&self) -> Option<&ConfigError> {
        self.0.first()
    }
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.first() {
            Some(first) => write!(f, "{first}"),
            None => f.write_str("no configuration error"),
        }
    }
}

impl std::error::Error for ConfigErrors {}
