//! The eviction manager (upstream `pkg/kubelet/eviction`): every monitoring period it reads the
//! eviction signals, compares them with `evictionHard` / `evictionSoft` and publishes the node's
//! pressure (`MemoryPressure`, `DiskPressure`, `PIDPressure`) for the node status and
//! admission; with `localStorageCapacityIsolation` it evicts the pods over their local
//! ephemeral storage limits ([`local_storage`]) through the pod workers ([`requests`]). It
//! does not yet evict pods to relieve node pressure (see docs/kubelet.md).
//!
//! One writer (this task), many readers (the `watch` receivers).

pub mod local_storage;
pub mod observe;
pub mod requests;
pub mod thresholds;

use std::time::Duration;

use kubelet_api::conditions::Pressure;
use kubelet_config::KubeletConfiguration;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use observe::SignalPaths;
use thresholds::{PressureTracker, Threshold};

/// Upstream's `evictionMonitoringPeriod`.
pub const MONITORING_PERIOD: Duration = Duration::from_secs(10);

/// Observes signals and publishes pressure.
pub struct EvictionManager {
    pub thresholds: Vec<Threshold>,
    pub transition_period: Duration,
    pub paths: SignalPaths,
    pub period: Duration,
    /// Local ephemeral storage limits, when enforced.
    pub local_storage: Option<LocalStorageLimits>,
}

/// What local storage eviction reads and where it files evictions.
pub struct LocalStorageLimits {
    pub pods: std::sync::Arc<dyn crate::server::PodLister>,
    pub stats: std::sync::Arc<dyn crate::stats::StatsSource>,
    pub requests: requests::EvictionRequests,
}

impl LocalStorageLimits {
    /// Files an eviction for every running pod over a limit in the latest stats.
    fn check(&self) {
        let Some(snapshot) = self.stats.latest() else { return };
        // Finished pods have nothing left to evict; critical pods (static, mirror,
        // system-critical priority) are never evicted, as upstream's `evictPod` refuses them.
        let pods: Vec<_> = self
            .pods
            .pods()
            .into_iter()
            .filter(|p| !crate::status::is_terminal_phase(p.status.as_ref().and_then(|s| s.phase.as_deref()).unwrap_or_default()))
            .filter(|p| !kubelet_api::admission::is_critical_pod(p))
            .collect();
        for (uid, eviction) in local_storage::local_storage_evictions(&pods, &snapshot.summary) {
            let Some(pod) = pods.iter().find(|p| p.metadata.uid.as_deref() == Some(uid.as_str())) else { continue };
            if self.requests.request(pod, eviction.clone()) {
                tracing::warn!(pod = %format!("{}/{}", pod.metadata.namespace.as_deref().unwrap_or_default(), pod.metadata.name.as_deref().unwrap_or_default()), "evicting: {}", eviction.message.trim_end());
            }
        }
    }
}

impl EvictionManager {
    /// From the kubelet configuration.
    pub fn from_config(cfg: &KubeletConfiguration, paths: SignalPaths) -> Self {
        Self {
            thresholds: thresholds::thresholds(&cfg.eviction_hard, &cfg.eviction_soft, &cfg.eviction_soft_grace_period),
            transition_period: cfg.eviction_pressure_transition_period,
            paths,
            period: MONITORING_PERIOD,
            local_storage: None,
        }
    }

    /// Enforces local ephemeral storage limits (`localStorageCapacityIsolation`).
    pub fn with_local_storage(mut self, limits: LocalStorageLimits) -> Self {
        self.local_storage = Some(limits);
        self
    }

    /// Runs until `shutdown`, publishing on `pressure`.
    pub async fn run(self, pressure: watch::Sender<Pressure>, shutdown: CancellationToken) {
        let mut tracker = PressureTracker::default();
        loop {
            let observations = observe::observe(&self.paths);
            let verdict = tracker.observe(&self.thresholds, &observations, self.transition_period, Instant::now());
            let before = *pressure.borrow();
            if verdict.pressure != before {
                if verdict.met.is_empty() {
                    tracing::info!(?verdict.pressure, "eviction thresholds no longer met; node pressure changed");
                } else {
                    tracing::warn!(?verdict.pressure, "eviction thresholds met: {}", verdict.met.join(", "));
                }
                pressure.send_replace(verdict.pressure);
            }
            if let Some(l) = &self.local_storage {
                l.check();
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(self.period) => {}
            }
        }
    }
}
