//! The prober manager (upstream `pkg/kubelet/prober`): one async worker per probe of every
//! container, and the latest verdicts the pod workers read.
//!
//! Workers are tokio tasks, not threads; a slow probe delays only its own next run. Each worker
//! watches the container through the status manager (the last status its pod worker published),
//! so it probes the instance the kubelet reports: a new instance resets the worker. Startup
//! gates liveness and readiness; a failed liveness or startup verdict holds the worker until the
//! pod worker has replaced the container. A changed verdict wakes the pod's worker through the
//! sync loop, which re-publishes `ready`/`started` or kills the container.

pub mod action;
pub mod metrics;
pub mod state;
mod worker;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use k8s_openapi::api::core::v1::{Container, Pod, Probe};
use kubelet_cri::RuntimeService;
use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;

use crate::container::{ContainerState, PodStatus};
use crate::kuberuntime::actions::ProbeVerdicts;
use crate::kuberuntime::labels::{PodRef, pod_name, pod_namespace, pod_uid};
use crate::status::ProbeResults;
use crate::status_manager::StatusManager;
use kubelet_types::clock::Clock;
use kubelet_types::events::EventRecorder;

/// The three probes a container can declare.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ProbeKind {
    /// `livenessProbe`: a failed verdict restarts the container.
    Liveness,
    /// `readinessProbe`: the verdict sets the container's `ready` and the pod's `Ready`.
    Readiness,
    /// `startupProbe`: holds back the other probes until it succeeds; failed, it restarts the
    /// container.
    Startup,
}

impl ProbeKind {
    /// As upstream writes it in events (`Liveness probe failed: ...`).
    pub fn title(self) -> &'static str {
        match self {
            ProbeKind::Liveness => "Liveness",
            ProbeKind::Readiness => "Readiness",
            ProbeKind::Startup => "Startup",
        }
    }

    fn of(self, c: &Container) -> Option<&Probe> {
        match self {
            ProbeKind::Liveness => c.liveness_probe.as_ref(),
            ProbeKind::Readiness => c.readiness_probe.as_ref(),
            ProbeKind::Startup => c.startup_probe.as_ref(),
        }
    }
}

/// Upstream's margin: a container that started this long before the kubelet was running before
/// it (`kubeletRestartGracePeriod`).
const KUBELET_RESTART_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

/// A verdict, after the thresholds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProbeResult {
    /// `successThreshold` checks in a row passed.
    Success,
    /// `failureThreshold` checks in a row failed.
    Failure,
}

/// Verdicts by (container runtime ID, probe), with the pod UID for cleanup.
type ResultMap = HashMap<(String, ProbeKind), (String, ProbeResult)>;

/// What workers share.
struct Shared {
    runtime: Arc<dyn RuntimeService>,
    status: StatusManager,
    events: Arc<dyn EventRecorder>,
    clock: Arc<dyn Clock>,
    results: Mutex<ResultMap>,
    /// Pods whose verdicts changed, for the sync loop.
    updates: mpsc::UnboundedSender<PodRef>,
    /// When the manager was created: probes of pods found at start-up get a random first delay.
    created: tokio::time::Instant,
    /// Containers started before this (10 s before the manager was created) were running
    /// before this kubelet: they keep their published readiness until a verdict.
    adopted_before: std::time::SystemTime,
    pub(crate) counters: metrics::ProbeCounters,
}

impl Shared {
    fn set(&self, pod: &PodRef, container_id: &str, kind: ProbeKind, result: Option<ProbeResult>) {
        let key = (container_id.to_owned(), kind);
        let mut map = self.results.lock().expect("probe results lock");
        let changed = match result {
            Some(r) => map.insert(key, (pod.uid.clone(), r)).map(|(_, old)| old) != Some(r),
            None => map.remove(&key).is_some(),
        };
        drop(map);
        if changed {
            if kind == ProbeKind::Readiness
                && let Some(r) = result
            {
                self.status.set_container_readiness(&pod.uid, container_id, r == ProbeResult::Success, self.clock.now());
            }
            let _ = self.updates.send(pod.clone());
        }
    }

    /// Whether this running instance was running before this kubelet started.
    fn adopted(&self, c: &crate::container::ContainerStatus) -> bool {
        c.state == ContainerState::Running && c.started_at.is_some_and(|t| t < self.adopted_before)
    }

    fn get(&self, container_id: &str, kind: ProbeKind) -> Option<ProbeResult> {
        self.results.lock().expect("probe results lock").get(&(container_id.to_owned(), kind)).map(|(_, r)| *r)
    }
}

struct WorkerHandle {
    stop: CancellationToken,
    wake: Arc<Notify>,
}

/// Runs the probes of every pod the pod workers sync.
pub struct ProbeManager {
    shared: Arc<Shared>,
    workers: Mutex<BTreeMap<(String, String, ProbeKind), WorkerHandle>>,
}

/// Containers that are probed: regular containers and sidecars (restartable init containers).
fn probed_containers(pod: &Pod) -> impl Iterator<Item = &Container> {
    let spec = pod.spec.as_ref();
    let sidecars =
        spec.and_then(|s| s.init_containers.as_ref()).into_iter().flatten().filter(|c| c.restart_policy.as_deref() == Some("Always"));
    spec.map(|s| s.containers.as_slice()).unwrap_or_default().iter().chain(sidecars)
}

impl ProbeManager {
    /// A manager whose verdict changes are sent to `updates`.
    pub fn new(
        runtime: Arc<dyn RuntimeService>,
        status: StatusManager,
        events: Arc<dyn EventRecorder>,
        clock: Arc<dyn Clock>,
        updates: mpsc::UnboundedSender<PodRef>,
    ) -> Self {
        let adopted_before = clock.now() - KUBELET_RESTART_GRACE;
        let shared = Shared {
            runtime,
            status,
            events,
            clock,
            results: Mutex::default(),
            updates,
            created: tokio::time::Instant::now(),
            adopted_before,
            counters: Default::default(),
        };
        Self { shared: Arc::new(shared), workers: Mutex::default() }
    }

    /// Starts the workers of `pod`'s probes that are not running yet (idempotent).
    pub fn add_pod(&self, pod: &Arc<Pod>) {
        let uid = pod_uid(pod).to_owned();
        let r = PodRef { uid: uid.clone(), name: pod_name(pod).into(), namespace: pod_namespace(pod).into() };
        let mut workers = self.workers.lock().expect("probe workers lock");
        for c in probed_containers(pod) {
            for kind in [ProbeKind::Startup, ProbeKind::Liveness, ProbeKind::Readiness] {
                let Some(probe) = kind.of(c) else { continue };
                let key = (uid.clone(), c.name.clone(), kind);
                if workers.contains_key(&key) {
                    continue;
                }
                let handle = WorkerHandle { stop: CancellationToken::new(), wake: Arc::new(Notify::new()) };
                let w = worker::Worker {
                    shared: self.shared.clone(),
                    pod: pod.clone(),
                    pod_ref: r.clone(),
                    container: c.clone(),
                    kind,
                    probe: probe.clone(),
                    stop: handle.stop.clone(),
                    wake: handle.wake.clone(),
                };
                tokio::spawn(w.run());
                workers.insert(key, handle);
            }
        }
    }

    /// The pod is terminating: its liveness and startup probes stop (and pass, so nothing kills
    /// the containers meanwhile); readiness probes go on so the pod turns unready as its
    /// containers shut down.
    pub fn pod_terminating(&self, uid: &str) {
        let mut workers = self.workers.lock().expect("probe workers lock");
        let keys: Vec<_> = workers.keys().filter(|(u, _, k)| u == uid && *k != ProbeKind::Readiness).cloned().collect();
        for key in keys {
            if let Some(h) = workers.remove(&key) {
                h.stop.cancel();
            }
        }
        drop(workers);
        for ((_, kind), (u, result)) in self.shared.results.lock().expect("probe results lock").iter_mut() {
            if u == uid && *kind != ProbeKind::Readiness && *result == ProbeResult::Failure {
                *result = ProbeResult::Success;
            }
        }
    }

    /// Stops the workers of pod `uid` and forgets its verdicts.
    pub fn remove_pod(&self, uid: &str) {
        let mut workers = self.workers.lock().expect("probe workers lock");
        let keys: Vec<_> = workers.keys().filter(|(u, _, _)| u == uid).cloned().collect();
        for key in keys {
            if let Some(h) = workers.remove(&key) {
                h.stop.cancel();
            }
        }
        drop(workers);
        self.shared.results.lock().expect("probe results lock").retain(|_, (u, _)| u != uid);
        self.shared.counters.remove_pod(uid);
    }

    /// `prober_probe_total` in the Prometheus text format (`/metrics/probes`).
    pub fn render_metrics(&self) -> String {
        self.shared.counters.render()
    }

    /// Lets pod `uid`'s workers look at its status now (a container may have started).
    pub fn wake_pod(&self, uid: &str) {
        let workers = self.workers.lock().expect("probe workers lock");
        for ((u, _, _), h) in workers.iter() {
            if u == uid {
                h.wake.notify_one();
            }
        }
    }

    /// Readiness and startup verdicts of the newest instance of each container, by name.
    pub fn results_for(&self, runtime: &PodStatus) -> ProbeResults {
        let mut out = ProbeResults::default();
        let mut seen = std::collections::HashSet::new();
        for c in &runtime.containers {
            if !seen.insert(c.name.as_str()) {
                continue; // older instance
            }
            if let Some(r) = self.shared.get(&c.id, ProbeKind::Readiness) {
                out.readiness.insert(c.name.clone(), r == ProbeResult::Success);
            }
            if let Some(r) = self.shared.get(&c.id, ProbeKind::Startup) {
                out.startup.insert(c.name.clone(), r == ProbeResult::Success);
            }
            if self.shared.adopted(c) {
                out.adopted.insert(c.name.clone());
            }
        }
        out
    }

    /// Verdicts about running containers, by runtime ID: those whose liveness or startup probe
    /// failed (the pod worker kills and, per the restart policy, restarts them) and those whose
    /// startup probe passed.
    pub fn verdicts(&self, runtime: &PodStatus) -> ProbeVerdicts {
        let mut out = ProbeVerdicts::default();
        for c in runtime.containers.iter().filter(|c| c.state == ContainerState::Running) {
            for kind in [ProbeKind::Liveness, ProbeKind::Startup] {
                if self.shared.get(&c.id, kind) == Some(ProbeResult::Failure) {
                    out.failed.entry(c.id.clone()).or_insert(kind);
                }
            }
            if self.shared.get(&c.id, ProbeKind::Startup) == Some(ProbeResult::Success) {
                out.started.insert(c.id.clone());
            }
        }
        out
    }

    /// Number of running probe workers (for tests and metrics).
    pub fn worker_count(&self) -> usize {
        self.workers.lock().expect("probe workers lock").len()
    }
}

impl crate::server::MetricsSource for ProbeManager {
    fn render(&self) -> String {
        self.render_metrics()
    }
}
