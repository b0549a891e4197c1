//! The eviction manager's observing half (upstream `pkg/kubelet/eviction`): every monitoring
//! period it reads the eviction signals, compares them with `evictionHard` / `evictionSoft`
//! and publishes the node's pressure (`MemoryPressure`, `DiskPressure`, `PIDPressure`) for the
//! node status and admission. It does not evict pods (see docs/kubelet.md).
//!
//! One writer (this task), many readers (the `watch` receivers).

pub mod observe;
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
}

impl EvictionManager {
    /// From the kubelet configuration.
    pub fn from_config(cfg: &KubeletConfiguration, paths: SignalPaths) -> Self {
        Self {
            thresholds: thresholds::thresholds(&cfg.eviction_hard, &cfg.eviction_soft, &cfg.eviction_soft_grace_period),
            transition_period: cfg.eviction_pressure_transition_period,
            paths,
            period: MONITORING_PERIOD,
        }
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
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(self.period) => {}
            }
        }
    }
}
