//! Listener addresses: `HOST:PORT`, `:PORT` or `0` (disabled).

use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::str::FromStr;

use crate::error::ExpositionError;

/// Where a listener binds, or that it is disabled (`0`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BindAddress {
    /// The listener is not started.
    Disabled,
    /// The listener binds this address.
    Addr(SocketAddr),
}

impl BindAddress {
    /// `0.0.0.0:port`.
    pub fn any(port: u16) -> Self {
        BindAddress::Addr(SocketAddr::from((Ipv4Addr::UNSPECIFIED, port)))
    }

    /// The default of `--metrics-bind-address`: `0.0.0.0:8080`.
    pub fn default_metrics() -> Self {
        BindAddress::any(8080)
    }

    /// The default of `--health-probe-bind-address`: `0.0.0.0:8081`.
    pub fn default_probes() -> Self {
        BindAddress::any(8081)
    }
}

impl FromStr for BindAddress {
    type Err = ExpositionError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let invalid = || ExpositionError::InvalidBindAddress {
            value: s.to_owned(),
        };
        let s_trimmed = s.trim();
        if s_trimmed == "0" {
            return Ok(BindAddress::Disabled);
        }
        if let Some(port) = s_trimmed.strip_prefix(':') {
            return port
                .parse::<u16>()
                .map(BindAddress::any)
                .map_err(|_| invalid());
        }
        s_trimmed
            .parse::<SocketAddr>()
            .map(BindAddress::Addr)
            .map_err(|_| invalid())
    }
}

impl fmt::Display for BindAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BindAddress::Disabled => f.write_str("0"),
            BindAddress::Addr(addr) => write!(f, "{addr}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_disables_the_listener() {
        assert_eq!("0".parse::<BindAddress>().unwrap(), BindAddress::Disabled);
    }

    #[test]
    fn port_only_binds_every_interface() {
        assert_eq!(
            ":8080".parse::<BindAddress>().unwrap(),
            BindAddress::default_metrics()
        );
    }

    #[test]
    fn host_and_port_are_kept() {
        assert_eq!(
            "127.0.0.1:9000".parse::<BindAddress>().unwrap().to_string(),
            "127.0.0.1:9000"
        );
        assert_eq!(
            "[::1]:9000".parse::<BindAddress>().unwrap().to_string(),
            "[::1]:9000"
        );
    }

    #[test]
    fn other_values_are_rejected_with_the_allowed_forms() {
        let err = "localhost".parse::<BindAddress>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid bind address \"localhost\": expected HOST:PORT, :PORT or 0"
        );
        assert!(":99999".parse::<BindAddress>().is_err());
    }
}
