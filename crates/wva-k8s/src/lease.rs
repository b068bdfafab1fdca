//! Leader-election parameters (spec/k8s.md §6.5): the Lease name per controller instance and the
//! mapping of the three timings onto kube-lease-manager's duration and grace.

use std::time::Duration;

use crate::config::LeaseTimings;

/// Lease name: `LEADER_ELECTION_ID`, or `{id}-{instance}` with the instance lowercased and `_`
/// and `.` replaced by `-`, so that isolated instances never share a Lease.
pub fn lease_name(id: &str, controller_instance: Option<&str>) -> String {
    match controller_instance {
        Some(instance) => {
            let suffix: String = instance
                .chars()
                .map(|c| {
                    if c == '_' || c == '.' {
                        '-'
                    } else {
                        c.to_ascii_lowercase()
                    }
                })
                .collect();
            format!("{id}-{suffix}")
        }
        None => id.to_owned(),
    }
}

/// What the lease manager is built with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseParams {
    /// Lease name.
    pub name: String,
    /// Holder identity (`POD_NAME`).
    pub identity: String,
    /// Lease duration in seconds.
    pub duration_secs: u64,
    /// Grace = lease duration − renew deadline, in seconds.
    pub grace_secs: u64,
    /// Delay before retrying after a Lease API error.
    pub retry_period: Duration,
}

/// The lease manager's parameters from the validated configuration.
pub fn lease_params(
    id: &str,
    controller_instance: Option<&str>,
    identity: &str,
    timings: &LeaseTimings,
) -> LeaseParams {
    LeaseParams {
        name: lease_name(id, controller_instance),
        identity: identity.to_owned(),
        duration_secs: timings.lease_duration.as_secs(),
        grace_secs: timings
            .lease_duration
            .saturating_sub(timings.renew_deadline)
            .as_secs(),
        retry_period: timings.retry_period,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_instance_gets_its_own_lease() {
        assert_eq!(lease_name("72dd1cf1.llm-d.ai", None), "72dd1cf1.llm-d.ai");
        assert_eq!(
            lease_name("72dd1cf1.llm-d.ai", Some("Team_A.prod")),
            "72dd1cf1.llm-d.ai-team-a-prod"
        );
    }

    #[test]
    fn default_timings_map_to_sixty_seconds_with_ten_seconds_grace() {
        let timings = LeaseTimings {
            lease_duration: Duration::from_secs(60),
            renew_deadline: Duration::from_secs(50),
            retry_period: Duration::from_secs(10),
        };
        assert_eq!(
            lease_params("id", Some("x"), "pod-0", &timings),
            LeaseParams {
                name: "id-x".into(),
                identity: "pod-0".into(),
                duration_secs: 60,
                grace_secs: 10,
                retry_period: Duration::from_secs(10)
            }
        );
    }
}
