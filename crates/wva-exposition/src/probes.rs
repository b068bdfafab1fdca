//! Liveness and readiness state behind `/healthz` and `/readyz` (spec/exposition.md §7).

use std::sync::{Arc, PoisonError, RwLock};

/// Liveness: the tasks that stopped unexpectedly. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Health {
    stopped: Arc<RwLock<Vec<String>>>,
}

impl Health {
    /// Marks the reflector (or engine) task `kind` as terminated; `/healthz` then answers 500.
    pub fn task_stopped(&self, kind: impl Into<String>) {
        let kind = kind.into();
        let mut stopped = self.stopped.write().unwrap_or_else(PoisonError::into_inner);
        if !stopped.contains(&kind) {
            stopped.push(kind);
        }
    }

    /// `Ok(())` while every task runs, else one `reflector task {kind} stopped` line per task.
    pub fn verdict(&self) -> Result<(), String> {
        let stopped = self.stopped.read().unwrap_or_else(PoisonError::into_inner);
        if stopped.is_empty() {
            return Ok(());
        }
        Err(stopped
            .iter()
            .map(|kind| format!("reflector task {kind} stopped"))
            .collect::<Vec<_>>()
            .join("\n"))
    }
}

/// The state of one readiness check.
#[derive(Debug, Clone, PartialEq, Eq)]
enum CheckState {
    Ready,
    NotReady(String),
}

/// Readiness: named checks in registration order. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Readiness {
    checks: Arc<RwLock<Vec<(String, CheckState)>>>,
}

/// Handle on one named readiness check.
#[derive(Debug, Clone)]
pub struct ReadinessCheck {
    readiness: Readiness,
    index: usize,
}

impl ReadinessCheck {
    /// Marks the check as passed.
    pub fn set_ready(&self) {
        self.readiness.set(self.index, CheckState::Ready);
    }

    /// Marks the check as failing with `reason` (e.g. `waiting for the initial list of Deployment`).
    pub fn set_not_ready(&self, reason: impl Into<String>) {
        self.readiness
            .set(self.index, CheckState::NotReady(reason.into()));
    }
}

/// The rendered `/readyz` answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadinessReport {
    /// Whether every check passed.
    pub ready: bool,
    /// The response body.
    pub body: String,
}

impl Readiness {
    /// Registers a check named `name`, not ready until told otherwise, with `reason` shown meanwhile.
    pub fn add_check(&self, name: impl Into<String>, reason: impl Into<String>) -> ReadinessCheck {
        let mut checks = self.checks.write().unwrap_or_else(PoisonError::into_inner);
        checks.push((name.into(), CheckState::NotReady(reason.into())));
        ReadinessCheck {
            readiness: self.clone(),
            index: checks.len() - 1,
        }
    }

    fn set(&self, index: usize, state: CheckState) {
        let mut checks = self.checks.write().unwrap_or_else(PoisonError::into_inner);
        if let Some(entry) = checks.get_mut(index) {
            entry.1 = state;
        }
    }

    /// Whether every registered check passed (true with no checks).
    pub fn is_ready(&self) -> bool {
        let checks = self.checks.read().unwrap_or_else(PoisonError::into_inner);
        checks.iter().all(|(_, state)| *state == CheckState::Ready)
    }

    /// The `/readyz` answer: `ok`, or one line per check and a verdict (always with `verbose`).
    pub fn report(&self, verbose: bool) -> ReadinessReport {
        let checks = self.checks.read().unwrap_or_else(PoisonError::into_inner);
        let ready = checks.iter().all(|(_, state)| *state == CheckState::Ready);
        if ready && !verbose {
            return ReadinessReport {
                ready,
                body: "ok".to_owned(),
            };
        }
        let mut body = String::new();
        for (name, state) in checks.iter() {
            match state {
                CheckState::Ready => body.push_str(&format!("[+]{name} ok\n")),
                CheckState::NotReady(reason) => {
                    body.push_str(&format!("[-]{name} failed: {reason}\n"));
                }
            }
        }
        body.push_str(if ready {
            "readyz check passed\n"
        } else {
            "readyz check failed\n"
        });
        ReadinessReport { ready, body }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readiness_lists_each_check_and_a_verdict_when_failing() {
        let readiness = Readiness::default();
        let config = readiness.add_check("config", "not loaded yet");
        readiness.add_check("informers", "waiting for the initial list of Deployment");
        config.set_ready();
        let report = readiness.report(false);
        assert!(!report.ready);
        assert_eq!(
            report.body,
            "[+]config ok\n[-]informers failed: waiting for the initial list of Deployment\nreadyz check failed\n"
        );
    }

    #[test]
    fn readiness_says_ok_once_every_check_passed() {
        let readiness = Readiness::default();
        readiness.add_check("config", "not loaded yet").set_ready();
        assert_eq!(readiness.report(false).body, "ok");
        assert_eq!(
            readiness.report(true).body,
            "[+]config ok\nreadyz check passed\n"
        );
    }

    #[test]
    fn health_names_each_stopped_task() {
        let health = Health::default();
        assert_eq!(health.verdict(), Ok(()));
        health.task_stopped("Deployment");
        health.task_stopped("Deployment");
        assert_eq!(
            health.verdict(),
            Err("reflector task Deployment stopped".to_owned())
        );
    }
}
