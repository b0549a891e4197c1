//! The sync loop (upstream `syncLoop`): turns the merged desired pods, PLEG events and
//! housekeeping ticks into work for the pod workers.
//!
//! It is the single writer of [`PodWorkers`]. Pods that vanished from every source are
//! terminated, and so are pods the API server marked for deletion (with their
//! `deletionGracePeriodSeconds`); runtime pods that no source knows (orphans, e.g. a manifest removed while the
//! kubelet was down) are terminated once all sources have reported at least once.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use kubelet_podconfig::DesiredPods;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use crate::kuberuntime::labels::{PodRef, pod_name, pod_namespace};
use crate::pleg::Relist;
use crate::pod_workers::PodWorkers;

/// Upstream's housekeeping period.
pub const HOUSEKEEPING_PERIOD: Duration = Duration::from_secs(2);

/// How often dangling `/var/log/containers` links are swept: upstream's container GC period.
pub const LOG_LINK_SWEEP_PERIOD: Duration = Duration::from_secs(60);

/// Liveness of the sync loop, for `/healthz`: seconds since the epoch of its last iteration.
#[derive(Clone, Default)]
pub struct SyncLoopHeartbeat(Arc<AtomicU64>);

impl SyncLoopHeartbeat {
    fn beat(&self) {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
        self.0.store(now, Ordering::Relaxed);
    }

    /// Time since the last iteration, `None` before the first.
    pub fn age(&self) -> Option<Duration> {
        let last = self.0.load(Ordering::Relaxed);
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
        (last > 0).then(|| Duration::from_secs(now.saturating_sub(last)))
    }
}

/// The sync loop's inputs.
pub struct SyncLoop {
    /// The pod workers, one per pod, that the loop starts, wakes and terminates.
    pub workers: PodWorkers,
    /// UIDs of pods whose worker has finished terminating them.
    pub finished: mpsc::UnboundedReceiver<String>,
    /// The pods every source (API server, static manifests) wants on this node.
    pub desired: watch::Receiver<DesiredPods>,
    /// Pods whose runtime state the PLEG saw change.
    pub pleg_events: mpsc::Receiver<PodRef>,
    /// Pods whose probe verdicts changed.
    pub probe_updates: mpsc::UnboundedReceiver<PodRef>,
    /// The PLEG's latest relist, for housekeeping's orphan sweeps.
    pub relist: watch::Receiver<Relist>,
    /// Beaten at every iteration, for `/healthz`.
    pub heartbeat: SyncLoopHeartbeat,
    /// Pods marked for deletion whose termination was started; never synced again.
    pub deleting: HashSet<String>,
}

impl SyncLoop {
    /// Runs until `shutdown`. Pods keep running when the kubelet stops, as upstream.
    pub async fn run(mut self, shutdown: CancellationToken) {
        let mut housekeeping = tokio::time::interval(HOUSEKEEPING_PERIOD);
        housekeeping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut log_links = tokio::time::interval(LOG_LINK_SWEEP_PERIOD);
        log_links.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        self.apply_desired();
        // The pod sources can all end (a standalone kubelet without `staticPodPath` has none):
        // their last pods stay desired and the loop goes on, as upstream's does.
        let mut sources_open = true;
        // Pods whose deferred resize was allocated by a retry: their workers apply it.
        let mut resize_wakes = self.workers.manager().allocation().take_wakes();
        loop {
            self.heartbeat.beat();
            tokio::select! {
                _ = shutdown.cancelled() => return,
                changed = self.desired.changed(), if sources_open => {
                    match changed {
                        Ok(()) => self.apply_desired(),
                        Err(_) => {
                            tracing::debug!("the pod sources ended; the sync loop goes on with their last pods");
                            sources_open = false;
                        }
                    }
                }
                Some(pod) = self.pleg_events.recv() => self.workers.poke(&pod.uid),
                Some(pod) = self.probe_updates.recv() => self.workers.poke(&pod.uid),
                Some(uid) = next_wake(&mut resize_wakes) => self.workers.poke(&uid),
                Some(uid) = self.finished.recv() => {
                    self.workers.finished(&uid);
                    // Re-added while it was terminating, or a static pod that waited for the
                    // one it replaces: start it now (unless it is being deleted).
                    let desired = self.desired.borrow().clone();
                    self.start_desired(&desired);
                }
                _ = housekeeping.tick() => self.housekeeping(),
                _ = log_links.tick() => self.workers.manager().remove_dangling_container_log_links(),
            }
        }
    }

    fn apply_desired(&mut self) {
        let desired = self.desired.borrow_and_update().clone();
        self.deleting.retain(|uid| desired.pods.contains_key(uid));
        // Terminations first, so a static pod replacing one of its name sees it terminating.
        let gone: Vec<String> =
            self.workers.uids().filter(|uid| !desired.pods.contains_key(*uid) && !self.workers.is_terminating(uid)).cloned().collect();
        for uid in gone {
            tracing::info!(uid = %uid, "pod removed from its source; terminating");
            self.workers.terminate(PodRef { uid, name: String::new(), namespace: String::new() }, None, None);
        }
        for (uid, pod) in &desired.pods {
            if pod.metadata.deletion_timestamp.is_some() && self.deleting.insert(uid.clone()) {
                let grace = pod.metadata.deletion_grace_period_seconds;
                tracing::info!(pod = %pod_key(pod), ?grace, "pod marked for deletion; terminating");
                let r = PodRef { uid: uid.clone(), name: pod_name(pod).into(), namespace: pod_namespace(pod).into() };
                self.workers.terminate(r, Some(pod.clone()), grace);
            }
        }
        self.start_desired(&desired);
    }

    /// Sends every desired pod not marked for deletion to its worker. A static pod whose full
    /// name another pod still terminating holds (its previous version, or a removed pod of the
    /// same name) waits until that one has stopped, as upstream.
    fn start_desired(&mut self, desired: &DesiredPods) {
        for (uid, pod) in &desired.pods {
            if pod.metadata.deletion_timestamp.is_some() {
                continue;
            }
            let waits = !self.workers.has_worker(uid)
                && kubelet_types::pod::is_static_pod(pod)
                && self.workers.is_full_name_terminating(&kubelet_podconfig::pod_full_name(pod), uid);
            if waits {
                tracing::debug!(pod = %pod_key(pod), uid = %uid, "static pod waits for the previous pod of its name to terminate");
                continue;
            }
            self.workers.update_pod(pod.clone());
        }
    }

    fn housekeeping(&mut self) {
        let desired = self.desired.borrow();
        if !desired.sources_ready {
            return;
        }
        // Deferred resizes are tried again (upstream's periodic retry), so room freed in other
        // ways than by a pod going or a resize (an estimate from the checkpoint replaced by
        // the pod's requests after a restart) is seen.
        self.workers.manager().allocation().retry_pending_resizes();
        let relist = self.relist.borrow().clone();
        // What the runtime runs is only known after a successful, recent relist: before the
        // first (the timer fires at once) or while relists fail, a running pod deleted while the
        // kubelet was down would look orphaned, and its directory (its volumes, its user
        // namespace range) would go while its sandbox runs. Upstream skips its cleanups too.
        if let Some(why) = relist.unhealthy() {
            tracing::debug!("housekeeping skips the orphan sweeps: {why}");
            return;
        }
        let orphans: Vec<PodRef> = relist
            .pods
            .values()
            .filter(|(r, _)| !desired.pods.contains_key(&r.uid) && !self.workers.has_worker(&r.uid))
            .map(|(r, _)| r.clone())
            .collect();
        // Pod cgroups of pods no source, worker or runtime knows (gone while the kubelet was
        // down, or whose removal failed).
        let known = |uid: &str| desired.pods.contains_key(uid) || self.workers.has_worker(uid) || relist.pods.contains_key(uid);
        self.workers.manager().remove_orphaned_pod_cgroups(known);
        self.workers.manager().allocation().remove_orphaned(known);
        self.workers.manager().remove_orphaned_pod_dirs(&known);
        drop(desired);
        for r in orphans {
            tracing::info!(pod = %format!("{}/{}", r.namespace, r.name), uid = %r.uid, "terminating orphaned pod found in the runtime");
            self.workers.terminate(r, None, None);
        }
    }
}

/// The next UID from `rx`; never, once it is closed or when there is none.
async fn next_wake(rx: &mut Option<mpsc::UnboundedReceiver<String>>) -> Option<String> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// `namespace/name` of a pod, for logs.
pub fn pod_key(pod: &k8s_openapi::api::core::v1::Pod) -> String {
    format!("{}/{}", pod_namespace(pod), pod_name(pod))
}
