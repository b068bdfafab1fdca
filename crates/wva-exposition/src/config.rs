//! Configuration of the exposition registry: naming mode, instance label, build information.

use std::fmt;
use std::str::FromStr;

use crate::error::ExpositionError;

/// Which names the four per-variant families are published under (`--metrics-naming`, §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MetricsNaming {
    /// The seed names: `inferno_current_replicas`, … (the default).
    #[default]
    Inferno,
    /// The newer upstream names: `wva_current_replicas`, …
    Wva,
    /// Both sets, from the same publication.
    Both,
}

impl MetricsNaming {
    /// The name prefixes this mode publishes, in output order.
    pub(crate) fn prefixes(self) -> &'static [&'static str] {
        match self {
            MetricsNaming::Inferno => &["inferno"],
            MetricsNaming::Wva => &["wva"],
            MetricsNaming::Both => &["inferno", "wva"],
        }
    }

    /// The flag value: `inferno`, `wva` or `both`.
    pub fn as_str(self) -> &'static str {
        match self {
            MetricsNaming::Inferno => "inferno",
            MetricsNaming::Wva => "wva",
            MetricsNaming::Both => "both",
        }
    }
}

impl fmt::Display for MetricsNaming {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for MetricsNaming {
    type Err = ExpositionError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "inferno" => Ok(MetricsNaming::Inferno),
            "wva" => Ok(MetricsNaming::Wva),
            "both" => Ok(MetricsNaming::Both),
            other => Err(ExpositionError::InvalidNaming {
                value: other.to_owned(),
            }),
        }
    }
}

/// Values of the `wva_build_info` series.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildInfo {
    /// Release version of the binary.
    pub version: String,
    /// Git commit the binary was built from (`unknown` when not known).
    pub git_commit: String,
    /// Version of the compiler that built the binary (`unknown` when not known).
    pub rustc_version: String,
}

impl BuildInfo {
    /// Build information from its three values.
    pub fn new(
        version: impl Into<String>,
        git_commit: impl Into<String>,
        rustc_version: impl Into<String>,
    ) -> Self {
        BuildInfo {
            version: version.into(),
            git_commit: git_commit.into(),
            rustc_version: rustc_version.into(),
        }
    }
}

impl Default for BuildInfo {
    fn default() -> Self {
        BuildInfo::new(env!("CARGO_PKG_VERSION"), "unknown", "unknown")
    }
}

/// Everything [`Exposition::new`](crate::Exposition::new) needs.
#[derive(Debug, Clone, Default)]
pub struct ExpositionConfig {
    /// Names of the per-variant families.
    pub naming: MetricsNaming,
    /// `CONTROLLER_INSTANCE`: when non-empty, every series gets `controller_instance` as its last label.
    pub controller_instance: Option<String>,
    /// Values of `wva_build_info`.
    pub build_info: BuildInfo,
    /// `true` when leader election decides leadership; `false` makes this process the leader at once.
    pub leader_elect: bool,
}

impl ExpositionConfig {
    /// The instance label value, `None` when unset or empty.
    pub(crate) fn instance(&self) -> Option<&str> {
        self.controller_instance
            .as_deref()
            .filter(|value| !value.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn naming_parses_the_three_flag_values() {
        for mode in [
            MetricsNaming::Inferno,
            MetricsNaming::Wva,
            MetricsNaming::Both,
        ] {
            assert_eq!(mode.as_str().parse::<MetricsNaming>().unwrap(), mode);
        }
    }

    #[test]
    fn naming_rejects_other_values_with_the_allowed_list() {
        let err = "prometheus".parse::<MetricsNaming>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid metrics naming \"prometheus\": expected one of inferno, wva, both"
        );
    }

    #[test]
    fn empty_controller_instance_counts_as_unset() {
        let config = ExpositionConfig {
            controller_instance: Some(String::new()),
            ..ExpositionConfig::default()
        };
        assert_eq!(config.instance(), None);
    }
}
