//! The eviction manager (upstream `pkg/kubelet/eviction`): every monitoring period it reads the
//! eviction signals, compares them with `evictionHard` / `evictionSoft` (with
//! `evictionMinimumReclaim`) and publishes the node's pressure (`MemoryPressure`,
//! `DiskPressure`, `PIDPressure`) for the node status and admission. When a threshold has been
//! met for its grace period it evicts one pod per round, ranked as upstream
//! ([`node_pressure`]), and waits for it to stop (up to 30 s) before the next; with
//! `localStorageCapacityIsolation` it evicts the pods over their local ephemeral storage limits
//! ([`local_storage`]). Evictions go through the pod workers ([`requests`]).
//!
//! Before evicting for a disk signal it reclaims at node level ([`NodeReclaim`]: dead
//! containers, then unused images, as upstream's `DeleteAllUnusedContainers` and
//! `DeleteUnusedImages`); when that removed anything the pods are left alone until the next
//! round's signals show whether it was enough (upstream re-observes at once; our figures come
//! with the next stats sample).
//!
//! One writer (this task), many readers (the `watch` receivers).

pub mod local_storage;
pub mod memory_watch;
pub mod node_pressure;
pub mod observe;
pub mod requests;
pub mod thresholds;

use std::time::Duration;

use kubelet_config::KubeletConfiguration;
use kubelet_types::node::Pressure;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use observe::SignalPaths;
use thresholds::{PressureTracker, Threshold};

/// Upstream's `evictionMonitoringPeriod`.
pub const MONITORING_PERIOD: Duration = Duration::from_secs(10);

/// How long the manager waits for an evicted pod to stop before evicting another (upstream
/// `podCleanupTimeout`).
const POD_CLEANUP_TIMEOUT: Duration = Duration::from_secs(30);

/// Observes signals and publishes pressure.
pub struct EvictionManager {
    /// The `evictionHard` and `evictionSoft` thresholds with their minimum reclaim, plus
    /// `allocatableMemory.available` ones when `enforceNodeAllocatable` has `pods`.
    pub thresholds: Vec<Threshold>,
    /// `evictionPressureTransitionPeriod`: how long a pressure condition is held after the last
    /// breach.
    pub transition_period: Duration,
    /// Where the signals are read on the host (`/proc`, nodefs, imagefs, the root memory cgroup).
    pub paths: SignalPaths,
    /// How often the signals are read ([`MONITORING_PERIOD`]).
    pub period: Duration,
    /// `evictionMaxPodGracePeriod`: the longest grace a soft eviction gives.
    pub max_pod_grace_seconds: i64,
    /// The pods and their stats, when the manager evicts.
    pub pods: Option<PodEvictions>,
    /// Whether local ephemeral storage limits are enforced (`localStorageCapacityIsolation`).
    pub local_storage: bool,
    /// The root memory cgroup to register kernel threshold notifications in
    /// (`kernelMemcgNotification` on a cgroup v1 host).
    pub memcg_root: Option<std::path::PathBuf>,
    /// Node-level reclaim for disk signals.
    pub reclaim: Option<std::sync::Arc<dyn NodeReclaim>>,
}

/// Node-level reclaim before evicting for a disk signal (upstream's `nodeReclaimFunc`s).
#[async_trait::async_trait]
pub trait NodeReclaim: Send + Sync + 'static {
    /// Frees what it can for `signal` (e.g. `imagefs.available`).
    async fn reclaim(&self, signal: &str) -> Reclaimed;
}

/// What a node-level reclaim removed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Reclaimed {
    /// Bytes freed, as far as the runtime tells (a container's writable layer may be unknown).
    pub bytes: u64,
    /// Dead containers removed.
    pub containers: usize,
}

impl Reclaimed {
    /// Whether nothing was removed (no bytes, no containers).
    pub fn is_empty(&self) -> bool {
        self.bytes == 0 && self.containers == 0
    }
}

/// What eviction reads (the pods, their stats) and where it files evictions.
pub struct PodEvictions {
    /// The pods the kubelet runs: the eviction candidates.
    pub pods: std::sync::Arc<dyn crate::server::PodLister>,
    /// The stats collector's latest snapshot: the runtime filesystems' signals, and each pod's
    /// use for ranking and local storage limits.
    pub stats: std::sync::Arc<dyn crate::stats::StatsSource>,
    /// Where evictions are filed for the pod workers.
    pub requests: requests::EvictionRequests,
}

/// The last pod evicted for node pressure, and when.
type LastEviction = Option<(String, Instant)>;

/// How many rounds a pod may lack stats before it is ranked as upstream ranks such pods
/// (first): stats of a pod just started, or of every pod right after a kubelet restart, come
/// with the collector's next sample, and evicting on a guess meanwhile would pick the wrong pod.
const ROUNDS_WITHOUT_STATS: u32 = 2;

impl PodEvictions {
    /// Pods that may be evicted: not finished (nothing left to evict) and not critical (static,
    /// mirror, system-critical priority: upstream's `evictPod` refuses them).
    fn candidates(&self) -> Vec<k8s_openapi::api::core::v1::Pod> {
        self.pods
            .pods()
            .into_iter()
            .filter(|p| !crate::status::is_terminal_phase(p.status.as_ref().and_then(|s| s.phase.as_deref()).unwrap_or_default()))
            .filter(|p| !kubelet_types::pod::is_critical_pod(p))
            .collect()
    }

    /// Evicts the first-ranked pod for the most pressing threshold met, unless the pod
    /// evicted last is still stopping.
    fn relieve(
        &self,
        met: &[node_pressure::MetThreshold],
        max_pod_grace: i64,
        last: &mut LastEviction,
        waited_for_stats: &mut std::collections::BTreeMap<String, u32>,
        now: Instant,
    ) {
        let pods = self.candidates();
        if let Some((uid, at)) = last.as_ref()
            && now.duration_since(*at) < POD_CLEANUP_TIMEOUT
            && pods.iter().any(|p| p.metadata.uid.as_deref() == Some(uid.as_str()))
        {
            tracing::info!(uid = %uid, "waiting for the evicted pod to stop before evicting another");
            return;
        }
        let Some(snapshot) = self.stats.latest() else {
            tracing::warn!("eviction thresholds met but no stats sampled yet; no pod evicted this round");
            return;
        };
        let without_stats: Vec<&str> = pods
            .iter()
            .filter_map(|p| p.metadata.uid.as_deref())
            .filter(|uid| !snapshot.summary.pods.iter().any(|s| s.pod_ref.uid == *uid))
            .collect();
        // Rounds each pod has gone without stats; only pods new to that wait hold the ranking
        // back (one that never gets stats, e.g. stuck pulling its image, ranks as upstream's).
        waited_for_stats.retain(|uid, _| without_stats.contains(&uid.as_str()));
        let mut waiting = Vec::new();
        for uid in &without_stats {
            let rounds = waited_for_stats.entry(uid.to_string()).or_insert(0);
            if *rounds < ROUNDS_WITHOUT_STATS {
                *rounds += 1;
                waiting.push(*uid);
            }
        }
        if !waiting.is_empty() {
            tracing::info!(pods = ?waiting, "eviction thresholds met; waiting a round for these pods' stats before ranking");
            return;
        }
        let Some((uid, eviction)) = node_pressure::pick(met, &pods, &snapshot.summary, max_pod_grace) else {
            tracing::warn!("eviction thresholds met but no pod may be evicted (only critical pods run)");
            return;
        };
        let Some(pod) = pods.iter().find(|p| p.metadata.uid.as_deref() == Some(uid.as_str())) else { return };
        if self.requests.request(pod, eviction.clone()) {
            tracing::warn!(pod = %crate::sync_loop::pod_key(pod), "evicting for node pressure: {}", eviction.message.trim_end());
        }
        *last = Some((uid, now));
    }

    /// Files an eviction for every running pod over a local storage limit in the latest stats.
    fn check_local_storage(&self) {
        let Some(snapshot) = self.stats.latest() else { return };
        let pods = self.candidates();
        for (uid, eviction) in local_storage::local_storage_evictions(&pods, &snapshot.summary) {
            let Some(pod) = pods.iter().find(|p| p.metadata.uid.as_deref() == Some(uid.as_str())) else { continue };
            if self.requests.request(pod, eviction.clone()) {
                tracing::warn!(pod = %crate::sync_loop::pod_key(pod), "evicting: {}", eviction.message.trim_end());
            }
        }
    }
}

impl EvictionManager {
    /// From the kubelet configuration.
    pub fn from_config(cfg: &KubeletConfiguration, paths: SignalPaths) -> Self {
        Self {
            thresholds: thresholds::with_allocatable(
                thresholds::with_min_reclaim(
                    thresholds::thresholds(&cfg.eviction_hard, &cfg.eviction_soft, &cfg.eviction_soft_grace_period),
                    &cfg.eviction_minimum_reclaim,
                ),
                &cfg.enforce_node_allocatable,
            ),
            transition_period: cfg.eviction_pressure_transition_period,
            paths,
            period: MONITORING_PERIOD,
            max_pod_grace_seconds: i64::from(cfg.eviction_max_pod_grace_period),
            pods: None,
            local_storage: cfg.local_storage_capacity_isolation,
            memcg_root: cfg
                .kernel_memcg_notification
                .then(|| memory_watch::v1_root_memory_cgroup(std::path::Path::new("/sys/fs/cgroup")))
                .flatten(),
            reclaim: None,
        }
    }

    /// Reclaims at node level before evicting for disk.
    pub fn with_reclaim(mut self, reclaim: std::sync::Arc<dyn NodeReclaim>) -> Self {
        self.reclaim = Some(reclaim);
        self
    }

    /// Node-level reclaim for the most pressing threshold met, when it is a disk signal;
    /// `true` when it freed something (the pods are spared this round).
    async fn reclaimed(&self, met: &[node_pressure::MetThreshold]) -> bool {
        let (Some(reclaim), Some(relieve)) = (&self.reclaim, node_pressure::to_relieve(met)) else { return false };
        let signal = relieve.threshold.signal.as_str();
        if !matches!(node_pressure::resource_of(signal), Some("ephemeral-storage" | "inodes")) {
            return false;
        }
        let freed = reclaim.reclaim(signal).await;
        if !freed.is_empty() {
            tracing::info!(
                signal,
                bytes = freed.bytes,
                containers = freed.containers,
                "reclaimed disk at node level (dead containers, unused images); evicting only if the next round still finds the threshold met"
            );
        }
        !freed.is_empty()
    }

    /// Waits for the next round: the monitoring period, or less when a memory threshold is
    /// newly met (read every 500 ms, or signalled by the kernel). `false` on shutdown.
    async fn wait_next_round(&self, shutdown: &CancellationToken) -> bool {
        let proc_root = &self.paths.proc_root;
        // Already under memory pressure: rounds keep their period, as upstream's.
        let watch_memory = !memory_watch::memory_threshold_met(&self.thresholds, &self.paths);
        let notifier = match (&self.memcg_root, watch_memory) {
            (Some(dir), true) => memory_watch::usage_threshold(&self.thresholds, proc_root, dir).and_then(|t| {
                memory_watch::MemcgNotifier::register(dir, t)
                    .map_err(|e| tracing::warn!("kernel memory threshold notification in {}: {e}", dir.display()))
                    .ok()
            }),
            _ => None,
        };
        let deadline = Instant::now() + self.period;
        loop {
            let tick = deadline.min(Instant::now() + memory_watch::WATCH_PERIOD);
            tokio::select! {
                _ = shutdown.cancelled() => return false,
                Some(Ok(())) = async { match &notifier { Some(n) => Some(n.crossed().await), None => std::future::pending().await } } => {
                    tracing::info!("the kernel signalled the memory threshold; checking now");
                    return true;
                }
                _ = tokio::time::sleep_until(tick) => {
                    if Instant::now() >= deadline {
                        return true;
                    }
                    if watch_memory && memory_watch::memory_threshold_met(&self.thresholds, &self.paths) {
                        tracing::info!("a memory eviction threshold is met between rounds; checking now");
                        return true;
                    }
                }
            }
        }
    }

    /// Evicts pods: for node pressure, and over local storage limits when enforced.
    pub fn with_pods(mut self, pods: PodEvictions) -> Self {
        self.pods = Some(pods);
        self
    }

    /// Runs until `shutdown`, publishing on `pressure`.
    pub async fn run(self, pressure: watch::Sender<Pressure>, shutdown: CancellationToken) {
        let mut tracker = PressureTracker::default();
        let mut last: LastEviction = None;
        let mut waited_for_stats = std::collections::BTreeMap::new();
        loop {
            let mut observations = observe::observe(&self.paths);
            if let Some(snapshot) = self.pods.as_ref().and_then(|p| p.stats.latest()) {
                observe::with_runtime_filesystems(&mut observations, snapshot.summary.node.runtime.as_ref());
                observe::with_allocatable_memory(&mut observations, &snapshot.summary.node.system_containers);
            }
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
            if let Some(p) = &self.pods {
                if !verdict.effective.is_empty() && !self.reclaimed(&verdict.effective).await {
                    p.relieve(&verdict.effective, self.max_pod_grace_seconds, &mut last, &mut waited_for_stats, Instant::now());
                }
                if self.local_storage {
                    p.check_local_storage();
                }
            }
            if !self.wait_next_round(&shutdown).await {
                return;
            }
        }
    }
}

#[cfg(test)]
mod reclaim_tests {
    use std::sync::{Arc, Mutex};

    use super::*;
    use node_pressure::MetThreshold;
    use thresholds::Observation;

    struct Reclaim(Mutex<Vec<String>>, u64);

    #[async_trait::async_trait]
    impl NodeReclaim for Reclaim {
        async fn reclaim(&self, signal: &str) -> Reclaimed {
            self.0.lock().unwrap().push(signal.into());
            Reclaimed { bytes: self.1, ..Default::default() }
        }
    }

    fn met(signal: &str) -> MetThreshold {
        let threshold =
            thresholds::thresholds(&[(signal.to_string(), "10%".to_string())].into(), &Default::default(), &Default::default()).remove(0);
        MetThreshold { threshold, observation: Observation { available: 1, capacity: 100 } }
    }

    fn manager(freed: u64) -> (EvictionManager, Arc<Reclaim>) {
        let reclaim = Arc::new(Reclaim(Mutex::default(), freed));
        let paths = SignalPaths {
            proc_root: "/nonexistent".into(),
            node_fs: "/nonexistent".into(),
            image_fs: "/nonexistent".into(),
            memory_cgroup: None,
        };
        (EvictionManager::from_config(&KubeletConfiguration::default(), paths).with_reclaim(reclaim.clone()), reclaim)
    }

    #[tokio::test]
    async fn disk_pressure_reclaims_images_before_evicting() {
        let (m, reclaim) = manager(5);
        assert!(m.reclaimed(&[met("imagefs.available")]).await, "freed something: no eviction this round");
        let (m, _) = manager(0);
        assert!(!m.reclaimed(&[met("nodefs.available")]).await, "nothing freed: evict");
        assert!(!manager(5).0.reclaimed(&[met("memory.available")]).await, "memory is not reclaimed at node level");
        assert!(!manager(5).0.reclaimed(&[met("memory.available"), met("imagefs.available")]).await, "memory is relieved first");
        assert_eq!(reclaim.0.lock().unwrap().as_slice(), ["imagefs.available"]);
    }
}
