//! The pod startup latency SLI (upstream `pkg/kubelet/util/pod_startup_latency_tracker.go`,
//! sig-scalability's "pod startup latency"): how long a pod takes from its creation to all its
//! containers running, as the kubelet's own watch shows it.
//!
//! A pod is tracked from the first time the watch delivers it without `status.startTime` (a pod
//! the kubelet has not started yet), unless it is unschedulable (`PodScheduled=False`), which
//! excludes it for good. Image pulls (overlapping pulls count once) and the run time of init
//! containers (sidecars excluded) are recorded for it while it starts. The first status the API
//! server stores with every container running marks it started; the next watch delivery of it
//! running records `kubelet_pod_start_total_duration_seconds` (creation to that delivery) and,
//! for pods without persistent volumes, `kubelet_pod_start_sli_duration_seconds` (the same less
//! pulls and init containers). Only API pods are watched: a static pod counts through its
//! mirror pod (created without a status), as upstream's, its pulls under the static pod's UID.
//!
//! One difference: upstream's API source hands over every pod of the node at each change, so a
//! pod whose running status came back on the watch before the status manager saw the patch
//! return is recorded at the next change of any pod. Ours is told of the changed pod only, so
//! it keeps the time the watch first showed the pod running and records with it when the
//! patch's answer arrives.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use k8s_openapi::api::core::v1::Pod;
use kubelet_types::startup::PodStartupObserver;

use crate::kuberuntime::labels::pod_uid;
use crate::metrics::KubeletMetrics;
use kubelet_types::clock::Clock;

/// One pod's startup so far.
#[derive(Debug, Default)]
struct PodStartup {
    /// Finished pulls (start, end), in the order they finished.
    pulls: Vec<(SystemTime, SystemTime)>,
    /// Starts of pulls not finished yet, oldest first.
    pulls_started: VecDeque<SystemTime>,
    init_total: Duration,
    init_started: Option<SystemTime>,
    /// When a stored status first showed every container running.
    running_since: Option<SystemTime>,
    /// When the watch first showed every container running, if before `running_since`.
    watch_running_at: Option<SystemTime>,
    recorded: bool,
}

#[derive(Debug, Default)]
struct Pods {
    tracked: BTreeMap<String, PodStartup>,
    /// Pods found unschedulable: never tracked again.
    excluded: BTreeSet<String>,
    first_network_pod_seen: bool,
}

/// Tracks starting pods and records the SLI into the kubelet's metrics.
pub struct PodStartupLatencyTracker {
    clock: Arc<dyn Clock>,
    metrics: Arc<KubeletMetrics>,
    pods: Mutex<Pods>,
}

fn phase(pod: &Pod) -> Option<&str> {
    pod.status.as_ref()?.phase.as_deref()
}

/// Every container has started running (upstream `hasPodStartedSLO`; a pod without container
/// statuses counts as started, as there).
fn all_containers_running(pod: &Pod) -> bool {
    let statuses = pod.status.as_ref().and_then(|s| s.container_statuses.as_deref()).unwrap_or_default();
    statuses.iter().all(|c| c.state.as_ref().and_then(|s| s.running.as_ref()).is_some_and(|r| r.started_at.is_some()))
}

/// A volume other than Secret, ConfigMap, downward API, emptyDir or projected makes the pod
/// stateful: the SLI leaves such pods out.
fn is_stateful(pod: &Pod) -> bool {
    let volumes = pod.spec.as_ref().and_then(|s| s.volumes.as_deref()).unwrap_or_default();
    volumes
        .iter()
        .any(|v| v.secret.is_none() && v.config_map.is_none() && v.downward_api.is_none() && v.empty_dir.is_none() && v.projected.is_none())
}

fn is_unschedulable(pod: &Pod) -> bool {
    let conditions = pod.status.as_ref().and_then(|s| s.conditions.as_deref()).unwrap_or_default();
    conditions.iter().any(|c| c.type_ == "PodScheduled" && c.status == "False")
}

/// Time spent pulling: the union of the pull intervals, walked in the order they finished.
fn pulling_time(pulls: &[(SystemTime, SystemTime)]) -> Duration {
    let mut total = Duration::ZERO;
    let mut covered_until: Option<SystemTime> = None;
    for &(start, end) in pulls {
        match covered_until {
            Some(until) if start <= until => {
                if end > until {
                    total += end.duration_since(until).unwrap_or_default();
                    covered_until = Some(end);
                }
            }
            _ => {
                total += end.duration_since(start).unwrap_or_default();
                covered_until = Some(end);
            }
        }
    }
    total
}

impl PodStartupLatencyTracker {
    /// A tracker timing pods with `clock` and recording the startup durations into `metrics`.
    pub fn new(clock: Arc<dyn Clock>, metrics: Arc<KubeletMetrics>) -> Self {
        Self { clock, metrics, pods: Mutex::default() }
    }

    fn with_pod(&self, uid: &str, f: impl FnOnce(&mut PodStartup, SystemTime)) {
        let now = self.clock.now();
        if let Some(p) = self.pods.lock().expect("startup tracker lock").tracked.get_mut(uid) {
            f(p, now);
        }
    }

    /// The kubelet starts pulling an image for the pod.
    pub fn image_pull_started(&self, uid: &str) {
        self.with_pod(uid, |p, now| p.pulls_started.push_back(now));
    }

    /// A pull for the pod ended, or the image turned out to be present: the oldest pull under
    /// way ends now.
    pub fn image_pull_finished(&self, uid: &str) {
        self.with_pod(uid, |p, now| {
            if let Some(start) = p.pulls_started.pop_front() {
                p.pulls.push((start, now));
            }
        });
    }

    /// The kubelet started one of the pod's init containers (not a sidecar).
    pub fn init_container_started(&self, uid: &str) {
        self.with_pod(uid, |p, now| p.init_started = Some(now));
    }

    /// An init container the kubelet started has exited at `finished_at`. An exit before the
    /// last start is an earlier init container's, already counted.
    pub fn init_container_finished(&self, uid: &str, finished_at: SystemTime) {
        self.with_pod(uid, |p, _| {
            if let Some(ran) = p.init_started.and_then(|started| finished_at.duration_since(started).ok()) {
                p.init_total += ran;
                p.init_started = None;
            }
        });
    }

    /// Records `pod`, started, as seen at `when`.
    fn record(&self, pods: &mut Pods, pod: &Pod, when: SystemTime) {
        let Some(state) = pods.tracked.get_mut(pod_uid(pod)) else { return };
        state.recorded = true;
        let created = pod.metadata.creation_timestamp.as_ref().map_or(when, |t| SystemTime::from(t.0));
        let total = when.duration_since(created).unwrap_or_default();
        let pulling = pulling_time(&state.pulls);
        let sli = total.saturating_sub(pulling).saturating_sub(state.init_total);
        let stateful = is_stateful(pod);
        tracing::info!(
            pod = %format!("{}/{}", pod.metadata.namespace.as_deref().unwrap_or_default(), pod.metadata.name.as_deref().unwrap_or_default()),
            pod_start_slo_duration = sli.as_secs_f64(),
            pod_start_e2e_duration = ?total,
            total_images_pulling_time = ?pulling,
            total_init_container_runtime = ?state.init_total,
            stateful,
            "observed pod startup duration"
        );
        self.metrics.pod_start_total_duration.observe(&[], total.as_secs_f64());
        if stateful {
            return;
        }
        self.metrics.pod_start_sli_duration.observe(&[], sli.as_secs_f64());
        let host_network = pod.spec.as_ref().and_then(|s| s.host_network).unwrap_or(false);
        if !host_network && !pods.first_network_pod_seen {
            pods.first_network_pod_seen = true;
            *self.metrics.first_network_pod_start_sli_duration.lock().expect("metrics lock") = sli.as_secs_f64();
        }
    }
}

impl PodStartupObserver for PodStartupLatencyTracker {
    fn observed_on_watch(&self, pod: &Pod, when: SystemTime) {
        let uid = pod_uid(pod);
        let mut pods = self.pods.lock().expect("startup tracker lock");
        if matches!(phase(pod), Some("Succeeded" | "Failed")) {
            pods.tracked.remove(uid);
            return;
        }
        let Some(state) = pods.tracked.get_mut(uid) else {
            if pods.excluded.contains(uid) || pod.status.as_ref().is_some_and(|s| s.start_time.is_some()) {
                return;
            }
            if is_unschedulable(pod) {
                pods.excluded.insert(uid.to_string());
            } else {
                pods.tracked.insert(uid.to_string(), PodStartup::default());
            }
            return;
        };
        if is_unschedulable(pod) {
            pods.tracked.remove(uid);
            pods.excluded.insert(uid.to_string());
            return;
        }
        if state.recorded || !all_containers_running(pod) {
            return;
        }
        if state.running_since.is_none() {
            state.watch_running_at.get_or_insert(when);
            return;
        }
        self.record(&mut pods, pod, when);
    }

    fn status_updated(&self, pod: &Pod) {
        let now = self.clock.now();
        let mut pods = self.pods.lock().expect("startup tracker lock");
        let Some(p) = pods.tracked.get_mut(pod_uid(pod)) else { return };
        if p.recorded || p.running_since.is_some() || !all_containers_running(pod) {
            return;
        }
        p.running_since = Some(now);
        // The watch showed it running before this answer came back.
        if let Some(seen) = p.watch_running_at {
            self.record(&mut pods, pod, seen);
        }
    }

    fn forget(&self, uid: &str) {
        let mut pods = self.pods.lock().expect("startup tracker lock");
        pods.tracked.remove(uid);
        pods.excluded.remove(uid);
    }
}

#[cfg(test)]
#[path = "pod_startup_latency_tests.rs"]
mod tests;
