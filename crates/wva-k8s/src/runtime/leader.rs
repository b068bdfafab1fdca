//! Leader election (spec/k8s.md §6.5): our own loop over kube-lease-manager's
//! `LeaseManager::changed()`, sleeping the retry period after every Lease API error (and after
//! a failed `build()`), releasing the Lease under a 5 s timeout on shutdown. Without
//! `--leader-elect` the process leads at once.

use std::time::Duration;

use kube::Client;
use kube_lease_manager::{LeaseManager, LeaseManagerBuilder};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::labels::FIELD_MANAGER;
use crate::lease::LeaseParams;

/// How long `release()` may take on shutdown.
pub const RELEASE_TIMEOUT: Duration = Duration::from_secs(5);

/// Leader-election settings.
#[derive(Debug, Clone)]
pub struct LeaderOptions {
    /// `--leader-elect`; off → leader at once, no Lease.
    pub enabled: bool,
    /// `POD_NAMESPACE`: where the Lease lives.
    pub namespace: String,
    /// Name, identity and timings ([`crate::lease::lease_params`]).
    pub params: LeaseParams,
}

/// The election's state as seen by the rest of the manager.
pub struct Leadership {
    /// `true` while this replica holds the Lease.
    pub is_leader: watch::Receiver<bool>,
    /// Cancelled when a held Lease is lost, after the ERROR line `leader election lost;
    /// exiting` (the manager then clears the per-variant series and exits 1, §6.5).
    pub lost: CancellationToken,
    task: Option<JoinHandle<()>>,
}

impl Leadership {
    /// Waits until this replica leads; `false` if the election ended first (shutdown).
    pub async fn wait_for_leadership(&self) -> bool {
        let mut rx = self.is_leader.clone();
        rx.wait_for(|leader| *leader).await.is_ok()
    }

    /// Waits for the election task to end (after `shutdown` was cancelled it releases the
    /// Lease within [`RELEASE_TIMEOUT`]).
    pub async fn finished(mut self) {
        if let Some(task) = self.task.take()
            && let Err(error) = task.await
        {
            tracing::warn!("leader election task failed: {error}");
        }
    }
}

impl Drop for Leadership {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

/// Starts leader election; `shutdown` ends it (releasing a held Lease).
pub fn start_leader_election(
    client: Client,
    opts: LeaderOptions,
    shutdown: CancellationToken,
) -> Leadership {
    let lost = CancellationToken::new();
    if !opts.enabled {
        let (_, is_leader) = watch::channel(true);
        return Leadership {
            is_leader,
            lost,
            task: None,
        };
    }
    let (tx, is_leader) = watch::channel(false);
    let task = tokio::spawn(run(client, opts, shutdown, tx, lost.clone()));
    Leadership {
        is_leader,
        lost,
        task: Some(task),
    }
}

fn builder(client: Client, opts: &LeaderOptions) -> LeaseManagerBuilder {
    LeaseManagerBuilder::new(client, &opts.params.name)
        .with_namespace(&opts.namespace)
        .with_identity(&opts.params.identity)
        .with_duration(opts.params.duration_secs)
        .with_grace(opts.params.grace_secs)
        .with_field_manager(FIELD_MANAGER)
}

/// Sleeps `period` unless shutdown comes first; `false` on shutdown.
async fn pause(period: Duration, shutdown: &CancellationToken) -> bool {
    tokio::select! {
        () = shutdown.cancelled() => false,
        () = tokio::time::sleep(period) => true,
    }
}

async fn build(
    client: Client,
    opts: &LeaderOptions,
    shutdown: &CancellationToken,
) -> Option<LeaseManager> {
    loop {
        let attempt = tokio::select! {
            () = shutdown.cancelled() => return None,
            built = builder(client.clone(), opts).build() => built,
        };
        match attempt {
            Ok(manager) => return Some(manager),
            Err(error) => {
                tracing::warn!(lease = %opts.params.name, "cannot set up the leader-election Lease; retrying in {:?}: {error}", opts.params.retry_period);
                if !pause(opts.params.retry_period, shutdown).await {
                    return None;
                }
            }
        }
    }
}

async fn run(
    client: Client,
    opts: LeaderOptions,
    shutdown: CancellationToken,
    tx: watch::Sender<bool>,
    lost: CancellationToken,
) {
    let Some(manager) = build(client, &opts, &shutdown).await else {
        return;
    };
    loop {
        let changed = tokio::select! {
            biased;
            () = shutdown.cancelled() => {
                match tokio::time::timeout(RELEASE_TIMEOUT, manager.release()).await {
                    Ok(Ok(())) => tracing::info!(lease = %opts.params.name, "leader election Lease released"),
                    Ok(Err(error)) => tracing::warn!(lease = %opts.params.name, "releasing the Lease failed: {error}"),
                    Err(_) => tracing::warn!(lease = %opts.params.name, "releasing the Lease timed out"),
                }
                tx.send_replace(false);
                return;
            }
            changed = manager.changed() => changed,
        };
        match changed {
            Ok(true) => {
                tracing::info!(lease = %opts.params.name, identity = %opts.params.identity, "became the leader");
                tx.send_replace(true);
            }
            Ok(false) => {
                let was_leader = tx.send_replace(false);
                if was_leader {
                    tracing::error!(lease = %opts.params.name, "leader election lost; exiting");
                    lost.cancel();
                    return;
                }
            }
            Err(error) => {
                tracing::warn!(lease = %opts.params.name, "leader election Lease API error; retrying in {:?}: {error}", opts.params.retry_period);
                if !pause(opts.params.retry_period, &shutdown).await {
                    // Shutdown during the pause: release at the top of the loop.
                    continue;
                }
            }
        }
    }
}
