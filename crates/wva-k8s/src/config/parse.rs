//! Parsers of single configuration values; each returns the `{allowed}` text of spec/k8s.md
//! §6.3 on failure.

use std::time::Duration;

/// Allowed text of durations.
pub const DURATION: &str = "expected a positive duration such as 30s or 1m";
/// Allowed text of the leader-election timings.
pub const LEASE: &str =
    "expected whole seconds with lease duration > renew deadline > retry period > 0";
/// Allowed text of `LEADER_ELECTION_ID`.
pub const DNS_SUBDOMAIN: &str = "expected a DNS-1123 subdomain";
/// Allowed text of `CONTROLLER_INSTANCE`.
pub const LABEL_VALUE: &str = "expected a label value: at most 63 characters, alphanumerics, '-', '_' or '.', starting and ending with an alphanumeric";
/// Allowed text of bind addresses.
pub const BIND_ADDRESS: &str = "expected HOST:PORT, :PORT or 0";
/// Allowed text of booleans.
pub const BOOLEAN: &str = "expected true or false";
/// Allowed text of `SCALE_FROM_ZERO_ENGINE_MAX_CONCURRENCY`.
pub const POSITIVE_INTEGER: &str = "expected an integer greater than 0";
/// Allowed text of `METRICS_AUTH=static` without a token file.
pub const TOKEN_FILE_REQUIRED: &str = "expected METRICS_AUTH_TOKEN_FILE to be set";

/// A listener address: `HOST:PORT`, `:PORT` (all interfaces) or `0` (disabled).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BindAddress {
    /// `0`: the listener is not started.
    Disabled,
    /// Listen on `host:port`.
    Listen {
        /// Host or IP (`0.0.0.0` for `:PORT`; IPv6 without brackets).
        host: String,
        /// TCP port.
        port: u16,
    },
}

impl std::fmt::Display for BindAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BindAddress::Disabled => f.write_str("0"),
            BindAddress::Listen { host, port } if host.contains(':') => {
                write!(f, "[{host}]:{port}")
            }
            BindAddress::Listen { host, port } => write!(f, "{host}:{port}"),
        }
    }
}

/// Go-syntax boolean: `1 t T TRUE true True 0 f F FALSE false False`.
pub fn boolean(text: &str) -> Result<bool, &'static str> {
    match text {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Ok(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Ok(false),
        _ => Err(BOOLEAN),
    }
}

/// A positive Go-syntax duration (`100ms`, `30s`, `1m30s`).
pub fn positive_duration(text: &str) -> Result<Duration, &'static str> {
    match wva_core::parse_go_duration(text) {
        Ok(nanos) if nanos > 0 => u64::try_from(nanos)
            .map(Duration::from_nanos)
            .map_err(|_| DURATION),
        _ => Err(DURATION),
    }
}

/// A positive duration of whole seconds (leader election).
pub fn whole_seconds(text: &str) -> Result<Duration, &'static str> {
    let duration = positive_duration(text).map_err(|_| LEASE)?;
    if duration.subsec_nanos() == 0 {
        Ok(duration)
    } else {
        Err(LEASE)
    }
}

/// `HOST:PORT`, `:PORT` or `0`.
pub fn bind_address(text: &str) -> Result<BindAddress, &'static str> {
    if text == "0" {
        return Ok(BindAddress::Disabled);
    }
    let (host, port) = text.rsplit_once(':').ok_or(BIND_ADDRESS)?;
    let port: u16 = port.parse().map_err(|_| BIND_ADDRESS)?;
    let host = match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        Some(v6) if v6.parse::<std::net::Ipv6Addr>().is_ok() => v6.to_owned(),
        Some(_) => return Err(BIND_ADDRESS),
        None if host.is_empty() => "0.0.0.0".to_owned(),
        None if host.contains(':') || host.contains(char::is_whitespace) || host.contains('/') => {
            return Err(BIND_ADDRESS);
        }
        None => host.to_owned(),
    };
    Ok(BindAddress::Listen { host, port })
}

/// A Kubernetes label value (non-empty here: an empty instance means "unset").
pub fn label_value(text: &str) -> Result<String, &'static str> {
    let bytes = text.as_bytes();
    let edges_ok = |b: Option<&u8>| b.is_some_and(u8::is_ascii_alphanumeric);
    let ok = text.len() <= 63
        && edges_ok(bytes.first())
        && edges_ok(bytes.last())
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if ok {
        Ok(text.to_owned())
    } else {
        Err(LABEL_VALUE)
    }
}

/// A DNS-1123 subdomain: at most 253 characters, lowercase alphanumeric labels separated by
/// dots, each starting and ending with an alphanumeric and otherwise allowing `-`.
pub fn dns_subdomain(text: &str) -> Result<String, &'static str> {
    let label_ok = |label: &str| {
        let b = label.as_bytes();
        let edge = |c: Option<&u8>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
        edge(b.first())
            && edge(b.last())
            && b.iter()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
    };
    if text.len() <= 253 && text.split('.').all(label_ok) {
        Ok(text.to_owned())
    } else {
        Err(DNS_SUBDOMAIN)
    }
}

/// An integer greater than 0.
pub fn positive_integer(text: &str) -> Result<u32, &'static str> {
    match text.parse::<u32>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(POSITIVE_INTEGER),
    }
}

/// One of a fixed set of words; the allowed text lists them.
pub fn one_of<T: Copy>(text: &str, choices: &[(&str, T)]) -> Result<T, String> {
    choices
        .iter()
        .find(|(word, _)| *word == text)
        .map(|(_, v)| *v)
        .ok_or_else(|| {
            let words: Vec<&str> = choices.iter().map(|(w, _)| *w).collect();
            format!("expected one of {}", words.join(", "))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn booleans_accept_go_spellings_only() {
        for t in ["1", "t", "T", "TRUE", "true", "True"] {
            assert_eq!(boolean(t), Ok(true));
        }
        for f in ["0", "f", "F", "FALSE", "false", "False"] {
            assert_eq!(boolean(f), Ok(false));
        }
        for bad in ["yes", "on", "tRUE", ""] {
            assert_eq!(boolean(bad), Err(BOOLEAN));
        }
    }

    #[test]
    fn durations_use_go_syntax_and_must_be_positive() {
        assert_eq!(positive_duration("100ms"), Ok(Duration::from_millis(100)));
        assert_eq!(positive_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(positive_duration("2h"), Ok(Duration::from_secs(7200)));
        for bad in ["0", "0s", "-5s", "30", "thirty", ""] {
            assert_eq!(positive_duration(bad), Err(DURATION), "{bad}");
        }
    }

    #[test]
    fn lease_timings_need_whole_seconds() {
        assert_eq!(whole_seconds("1m"), Ok(Duration::from_secs(60)));
        assert_eq!(whole_seconds("1500ms"), Err(LEASE));
        assert_eq!(whole_seconds("0s"), Err(LEASE));
    }

    #[test]
    fn bind_addresses() {
        assert_eq!(bind_address("0"), Ok(BindAddress::Disabled));
        assert_eq!(
            bind_address(":8080"),
            Ok(BindAddress::Listen {
                host: "0.0.0.0".into(),
                port: 8080
            })
        );
        assert_eq!(
            bind_address("127.0.0.1:9"),
            Ok(BindAddress::Listen {
                host: "127.0.0.1".into(),
                port: 9
            })
        );
        assert_eq!(
            bind_address("[::1]:8443"),
            Ok(BindAddress::Listen {
                host: "::1".into(),
                port: 8443
            })
        );
        assert_eq!(
            bind_address("[::1]:8443").unwrap().to_string(),
            "[::1]:8443"
        );
        assert_eq!(bind_address(":8080").unwrap().to_string(), "0.0.0.0:8080");
        for bad in ["8080", ":http", "host:70000", "::1:80", "[nope]:80", ""] {
            assert_eq!(bind_address(bad), Err(BIND_ADDRESS), "{bad}");
        }
    }

    #[test]
    fn label_values() {
        assert!(label_value("team-a_1.x").is_ok());
        assert!(label_value(&"a".repeat(63)).is_ok());
        for bad in ["-a", "a-", "a b", "a/b", ""] {
            assert_eq!(label_value(bad), Err(LABEL_VALUE), "{bad}");
        }
        assert_eq!(label_value(&"a".repeat(64)), Err(LABEL_VALUE));
    }

    #[test]
    fn dns_subdomains() {
        assert!(dns_subdomain("72dd1cf1.llm-d.ai").is_ok());
        for bad in ["Upper.case", "a..b", "-a", "a_b", ""] {
            assert_eq!(dns_subdomain(bad), Err(DNS_SUBDOMAIN), "{bad}");
        }
    }

    #[test]
    fn positive_integers() {
        assert_eq!(positive_integer("10"), Ok(10));
        for bad in ["0", "-1", "1.5", "ten"] {
            assert_eq!(positive_integer(bad), Err(POSITIVE_INTEGER));
        }
    }

    #[test]
    fn one_of_lists_the_choices() {
        let choices = [("metrics", 1), ("direct", 2)];
        assert_eq!(one_of("direct", &choices), Ok(2));
        assert_eq!(
            one_of("both", &choices),
            Err("expected one of metrics, direct".to_owned())
        );
    }
}
