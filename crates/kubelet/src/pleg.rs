//! The pod lifecycle event generator (upstream generic PLEG).
//!
//! Relists the runtime every period (1 s upstream) with two CRI calls, compares each pod's
//! sandboxes and containers with the previous relist, and sends the UID of every pod whose state
//! changed so its worker syncs promptly. The latest relist is also published for the sync loop's
//! housekeeping (orphaned pods) and for `/healthz` (a relist older than 3 minutes is unhealthy).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::kuberuntime::labels::PodRef;
use crate::kuberuntime::runtime_state::{RelistSnapshot, relist};
use kubelet_cri::RuntimeService;

/// Upstream's relist period.
pub const RELIST_PERIOD: Duration = Duration::from_secs(1);
/// A relist older than this makes the kubelet unhealthy (upstream `relistThreshold`).
pub const RELIST_THRESHOLD: Duration = Duration::from_secs(180);

/// The latest successful relist and when it happened.
#[derive(Clone, Debug, Default)]
pub struct Relist {
    /// When the relist completed; `None` before the first successful one.
    pub at: Option<Instant>,
    /// Per pod UID, the pod and the CRI state of each of its sandboxes and containers.
    pub pods: Arc<RelistSnapshot>,
}

impl Relist {
    /// Why the PLEG is unhealthy (upstream `GenericPLEG.Healthy`), if it is: no successful
    /// relist yet, or the last one older than [`RELIST_THRESHOLD`].
    pub fn unhealthy(&self) -> Option<String> {
        use kubelet_config::go_duration::format;
        match self.at {
            None => Some("pleg has yet to be successful".into()),
            Some(at) if at.elapsed() > RELIST_THRESHOLD => {
                Some(format!("pleg was last seen active {} ago; threshold is {}", format(at.elapsed()), format(RELIST_THRESHOLD)))
            }
            Some(_) => None,
        }
    }
}

/// Relists the runtime and reports changed pods.
pub struct Pleg {
    runtime: Arc<dyn RuntimeService>,
    period: Duration,
    metrics: Option<Arc<crate::metrics::KubeletMetrics>>,
}

/// UIDs whose runtime state differs between two relists.
pub fn changed_pods(old: &RelistSnapshot, new: &RelistSnapshot) -> Vec<PodRef> {
    let mut out: Vec<PodRef> =
        new.iter().filter(|(uid, (_, states))| old.get(*uid).map(|(_, o)| o) != Some(states)).map(|(_, (r, _))| r.clone()).collect();
    out.extend(old.iter().filter(|(uid, _)| !new.contains_key(*uid)).map(|(_, (r, _))| r.clone()));
    out
}

impl Pleg {
    /// A PLEG relisting `runtime` over CRI every `period` ([`RELIST_PERIOD`] upstream).
    pub fn new(runtime: Arc<dyn RuntimeService>, period: Duration) -> Self {
        Self { runtime, period, metrics: None }
    }

    /// Records each relist's duration and the interval between relists.
    pub fn with_metrics(mut self, metrics: Arc<crate::metrics::KubeletMetrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// Runs until `shutdown`; sends changed pods on `events` and publishes each relist.
    pub async fn run(self, events: mpsc::Sender<PodRef>, latest: watch::Sender<Relist>, shutdown: CancellationToken) {
        let mut previous = Arc::new(RelistSnapshot::new());
        let mut last_relist: Option<Instant> = None;
        let mut tick = tokio::time::interval(self.period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            let started = Instant::now();
            if let (Some(m), Some(last)) = (&self.metrics, last_relist) {
                m.pleg_relist_interval.observe(&[], started.duration_since(last).as_secs_f64());
            }
            last_relist = Some(started);
            let result = relist(self.runtime.as_ref()).await;
            if let Some(m) = &self.metrics {
                m.pleg_relist_duration.observe(&[], started.elapsed().as_secs_f64());
            }
            let current = match result {
                Ok(c) => Arc::new(c),
                Err(e) => {
                    tracing::warn!("PLEG relist failed: {e}");
                    continue;
                }
            };
            for pod in changed_pods(&previous, &current) {
                if events.send(pod).await.is_err() {
                    return;
                }
            }
            latest.send_replace(Relist { at: Some(Instant::now()), pods: current.clone() });
            previous = current;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[tokio::test(start_paused = true)]
    async fn relist_health_follows_upstream_messages() {
        assert_eq!(Relist::default().unhealthy().as_deref(), Some("pleg has yet to be successful"));
        let fresh = Relist { at: Some(Instant::now()), ..Relist::default() };
        assert_eq!(fresh.unhealthy(), None);
        tokio::time::advance(Duration::from_secs(181)).await;
        assert_eq!(fresh.unhealthy().as_deref(), Some("pleg was last seen active 3m1s ago; threshold is 3m0s"));
    }

    fn snap(entries: &[(&str, &[(&str, i32)])]) -> RelistSnapshot {
        entries
            .iter()
            .map(|(uid, states)| {
                let r = PodRef { uid: uid.to_string(), name: "n".into(), namespace: "ns".into() };
                (uid.to_string(), (r, states.iter().map(|(id, s)| (id.to_string(), *s)).collect::<BTreeMap<_, _>>()))
            })
            .collect()
    }

    #[test]
    fn detects_new_changed_and_vanished_pods() {
        let old = snap(&[("a", &[("c1", 1)]), ("b", &[("c2", 1)]), ("gone", &[("c3", 1)])]);
        let new = snap(&[("a", &[("c1", 1)]), ("b", &[("c2", 2)]), ("new", &[("c4", 0)])]);
        let mut uids: Vec<_> = changed_pods(&old, &new).into_iter().map(|r| r.uid).collect();
        uids.sort();
        assert_eq!(uids, vec!["b", "gone", "new"]);
    }
}
