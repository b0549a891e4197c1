//! Pod workers: one task per pod that drives it towards its desired state (upstream `podWorkers`).
//!
//! A worker syncs its pod when the pod's spec changes, when the PLEG reports a runtime change,
//! when a restart backoff ends, and every `syncFrequency`; a slow pod never delays another. A
//! terminating worker stops the pod gracefully, removes its sandbox and files, and exits.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use crate::allocation::ResizeDecision;
use crate::container::PodStatus;
use crate::kuberuntime::labels::{PodRef, pod_name, pod_namespace, pod_uid};
use crate::kuberuntime::{RuntimeManager, SyncError, pod_is_terminal};
use crate::prober::ProbeManager;
use crate::status::resize::{ResizeFacts, add_resize_status};
use crate::status::{StatusInputs, generate_api_pod_status, is_terminal_phase, terminated_pod_status};
use crate::status_manager::StatusManager;
use kubelet_types::events::EventType;

/// Retry delays after runtime errors.
const ERROR_BACKOFF_INITIAL: Duration = Duration::from_secs(1);
const ERROR_BACKOFF_MAX: Duration = Duration::from_secs(30);

/// What the workers share.
pub struct PodWorkerContext {
    /// Drives the pods' sandboxes and containers through the CRI.
    pub manager: Arc<RuntimeManager>,
    /// Where workers publish the pod statuses they generate.
    pub status: StatusManager,
    /// Starts and stops the probe workers of each pod's containers.
    pub prober: Arc<ProbeManager>,
    /// `syncFrequency` of the KubeletConfiguration: how often a worker resyncs its pod without
    /// any event.
    pub sync_frequency: Duration,
    /// Runtime type for API `containerID`s (`containerd`).
    pub runtime_name: String,
    /// The node's IP, reported as the pods' `status.hostIP`.
    pub host_ip: String,
    /// Admit handlers a pod passes before it first runs.
    pub admission: crate::admission::PodAdmitter,
    /// Pod worker and pod start durations.
    pub metrics: Arc<crate::metrics::KubeletMetrics>,
    /// Evictions the eviction manager filed.
    pub evictions: crate::eviction::requests::EvictionRequests,
}

#[derive(Clone, Debug)]
enum Work {
    Sync(Arc<Pod>),
    Terminate { pod: Option<Arc<Pod>>, grace: Option<i64> },
}

#[derive(Clone, Debug)]
struct WorkerState {
    work: Work,
    /// Bumped to wake the worker without changing its work.
    pokes: u64,
    /// The terminating pod was added again with the same UID (a static pod whose manifest came
    /// back): its stopped containers are kept for the next worker, which counts restarts from
    /// them, as upstream restarts such a pod.
    restart_requested: bool,
}

struct Worker {
    tx: watch::Sender<WorkerState>,
    terminating: bool,
    /// `name_namespace` of the pod.
    full_name: String,
}

/// The set of running pod workers. Owned by the sync loop (single writer).
pub struct PodWorkers {
    ctx: Arc<PodWorkerContext>,
    workers: HashMap<String, Worker>,
    done_tx: mpsc::UnboundedSender<String>,
    shutdown: CancellationToken,
}

fn pod_ref(pod: &Pod) -> PodRef {
    PodRef { uid: pod_uid(pod).into(), name: pod_name(pod).into(), namespace: pod_namespace(pod).into() }
}

impl PodWorkers {
    /// Creates the worker set; finished workers' UIDs arrive on the returned receiver.
    pub fn new(ctx: Arc<PodWorkerContext>, shutdown: CancellationToken) -> (Self, mpsc::UnboundedReceiver<String>) {
        let (done_tx, done_rx) = mpsc::unbounded_channel();
        (Self { ctx, workers: HashMap::new(), done_tx, shutdown }, done_rx)
    }

    fn spawn(&mut self, r: PodRef, work: Work) {
        let terminating = matches!(work, Work::Terminate { .. });
        let (tx, rx) = watch::channel(WorkerState { work, pokes: 0, restart_requested: false });
        let ctx = self.ctx.clone();
        let done = self.done_tx.clone();
        let shutdown = self.shutdown.clone();
        let key = r.uid.clone();
        let uid = r.uid.clone();
        let full_name = format!("{}_{}", r.name, r.namespace);
        tokio::spawn(async move {
            run_worker(ctx, r, rx, shutdown).await;
            let _ = done.send(uid);
        });
        self.workers.insert(key, Worker { tx, terminating, full_name });
    }

    /// Sends the desired spec of a pod to its worker, starting one if needed.
    pub fn update_pod(&mut self, pod: Arc<Pod>) {
        let uid = pod_uid(&pod).to_string();
        match self.workers.get(&uid) {
            // Re-spawned after it finishes, by the sync loop; meanwhile it keeps what it stopped.
            Some(w) if w.terminating => {
                w.tx.send_if_modified(|s| {
                    s.restart_requested = true;
                    false
                });
            }
            Some(w) => {
                w.tx.send_if_modified(|s| match &s.work {
                    Work::Sync(old) if **old == *pod => false,
                    _ => {
                        s.work = Work::Sync(pod.clone());
                        true
                    }
                });
            }
            None => self.spawn(pod_ref(&pod), Work::Sync(pod)),
        }
    }

    /// Stops a pod (gracefully) and removes it; `pod` is `None` for orphans found in the runtime.
    pub fn terminate(&mut self, r: PodRef, pod: Option<Arc<Pod>>, grace: Option<i64>) {
        match self.workers.get_mut(&r.uid) {
            Some(w) if w.terminating => {}
            Some(w) => {
                w.terminating = true;
                w.tx.send_modify(|s| {
                    let pod = pod.clone().or(match &s.work {
                        Work::Sync(p) => Some(p.clone()),
                        Work::Terminate { pod, .. } => pod.clone(),
                    });
                    s.work = Work::Terminate { pod, grace };
                });
            }
            None => self.spawn(r, Work::Terminate { pod, grace }),
        }
    }

    /// Wakes the worker of `uid` (a PLEG event).
    pub fn poke(&self, uid: &str) {
        if let Some(w) = self.workers.get(uid) {
            w.tx.send_modify(|s| s.pokes += 1);
        }
    }

    /// Forgets a worker that finished.
    pub fn finished(&mut self, uid: &str) {
        self.workers.remove(uid);
    }

    /// The runtime manager the workers drive.
    pub fn manager(&self) -> &RuntimeManager {
        &self.ctx.manager
    }

    /// Whether the pod with UID `uid` has a live worker.
    pub fn has_worker(&self, uid: &str) -> bool {
        self.workers.contains_key(uid)
    }

    /// Whether the worker of the pod with UID `uid` is terminating the pod.
    pub fn is_terminating(&self, uid: &str) -> bool {
        self.workers.get(uid).is_some_and(|w| w.terminating)
    }

    /// Whether a pod named `full_name` (`name_namespace`) other than `uid` is still terminating:
    /// a static pod replaced in its source waits for it, as upstream starts one static pod of a
    /// full name at a time.
    pub fn is_full_name_terminating(&self, full_name: &str, uid: &str) -> bool {
        self.workers.iter().any(|(u, w)| w.terminating && u != uid && w.full_name == full_name)
    }

    /// UIDs with a live worker.
    pub fn uids(&self) -> impl Iterator<Item = &String> {
        self.workers.keys()
    }
}

async fn run_worker(ctx: Arc<PodWorkerContext>, r: PodRef, mut rx: watch::Receiver<WorkerState>, shutdown: CancellationToken) {
    let mut error_backoff = ERROR_BACKOFF_INITIAL;
    // When the kubelet first saw the pod, until it is seen running (pod start duration), and
    // the spec of the last sync (create, update or sync).
    let mut first_seen = Some(tokio::time::Instant::now());
    let mut synced: Option<Arc<Pod>> = None;
    loop {
        let work = rx.borrow_and_update().work.clone();
        let last = work.clone();
        let started = tokio::time::Instant::now();
        let operation = match (&work, &synced) {
            (Work::Terminate { .. }, _) => "terminated",
            (Work::Sync(_), None) => "create",
            (Work::Sync(p), Some(prev)) if !Arc::ptr_eq(p, prev) => "update",
            (Work::Sync(_), Some(_)) => "sync",
        };
        if let Work::Sync(p) = &work {
            synced = Some(p.clone());
        }
        // The sync and termination futures are boxed: they are large (several KiB of CRI and
        // status state) and only live while the worker works, while the worker task itself
        // lives, waiting, for as long as its pod runs.
        let wait = match work {
            Work::Sync(pod) => match sync_unless_terminated(&ctx, &r, &pod, &rx).await {
                None => continue,
                Some(Ok(wait)) => {
                    error_backoff = ERROR_BACKOFF_INITIAL;
                    ctx.metrics.pod_worker_duration.observe(&[operation], started.elapsed().as_secs_f64());
                    let running = ctx.status.pod_status(&r.uid).is_some_and(|s| s.phase.as_deref() == Some(crate::status::PHASE_RUNNING));
                    if running && let Some(seen) = first_seen.take() {
                        ctx.metrics.pod_start_duration.observe(&[], seen.elapsed().as_secs_f64());
                    }
                    wait
                }
                Some(Err(e)) => {
                    tracing::warn!(pod = %format!("{}/{}", r.namespace, r.name), "sync failed, retrying in {error_backoff:?}: {e}");
                    let wait = error_backoff;
                    error_backoff = (error_backoff * 2).min(ERROR_BACKOFF_MAX);
                    wait
                }
            },
            Work::Terminate { pod, grace } => match Box::pin(terminate_pod(&ctx, &r, pod.as_ref(), grace, &rx)).await {
                Ok(()) => {
                    ctx.metrics.pod_worker_duration.observe(&[operation], started.elapsed().as_secs_f64());
                    return;
                }
                Err(e) => {
                    tracing::warn!(pod = %format!("{}/{}", r.namespace, r.name), "termination failed, retrying in {error_backoff:?}: {e}");
                    let wait = error_backoff;
                    error_backoff = (error_backoff * 2).min(ERROR_BACKOFF_MAX);
                    wait
                }
            },
        };
        // After a failure only new work (a new spec, a termination) cuts the backoff short: the
        // runtime's events about the pod (PLEG pokes) wait for it, or a container that cannot
        // be created would be retried at the relist rate, as upstream never does.
        let failed = error_backoff != ERROR_BACKOFF_INITIAL;
        let next = async { if failed { rx.wait_for(|s| !s.work.same_as(&last)).await.map(|_| ()) } else { rx.changed().await } };
        tokio::select! {
            _ = shutdown.cancelled() => return,
            changed = next => if changed.is_err() { return },
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

impl Work {
    /// The same work item (the same pod object, or the same termination) as `other`.
    fn same_as(&self, other: &Work) -> bool {
        match (self, other) {
            (Work::Sync(a), Work::Sync(b)) => Arc::ptr_eq(a, b),
            (Work::Terminate { grace: a, .. }, Work::Terminate { grace: b, .. }) => a == b,
            _ => false,
        }
    }
}

/// Why a pod's sync or termination did not finish; the worker logs it and retries with its
/// back-off.
#[derive(Debug, thiserror::Error)]
pub enum PodSyncError {
    /// Reading, stopping or removing the pod's sandboxes and containers.
    #[error(transparent)]
    Runtime(#[from] kubelet_cri::CriError),
    /// What one sync could not do (the rest of the sync went on).
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Sync(Vec<SyncError>),
}

/// One sync, abandoned as soon as the pod is to be terminated (upstream cancels the sync's
/// context): a pull from an unreachable registry or a slow volume must not hold a deleted pod.
/// Whatever the sync had started (a sandbox, a created container) is found in the runtime and
/// stopped by the termination. `None` when abandoned.
async fn sync_unless_terminated(
    ctx: &PodWorkerContext,
    r: &PodRef,
    pod: &Arc<Pod>,
    rx: &watch::Receiver<WorkerState>,
) -> Option<Result<Duration, PodSyncError>> {
    // A clone, so the worker's own receiver still sees every change made during the sync.
    let mut watch = rx.clone();
    tokio::select! {
        res = Box::pin(sync_pod(ctx, r, pod)) => Some(res),
        Ok(_) = watch.wait_for(|s| matches!(s.work, Work::Terminate { .. })) => {
            tracing::info!(pod = %format!("{}/{}", r.namespace, r.name), "sync abandoned: the pod is terminating");
            None
        }
    }
}

/// The pod's API status from its runtime state, the last published status and the probes.
fn generate_status(
    ctx: &PodWorkerContext,
    pod: &Arc<Pod>,
    runtime: &PodStatus,
    waiting: &std::collections::BTreeMap<String, (String, String)>,
    terminal: bool,
) -> k8s_openapi::api::core::v1::PodStatus {
    generate_status_with(ctx, pod, runtime, waiting, terminal, None)
}

/// [`generate_status`], with the error of an in-place resize that could not be applied.
fn generate_status_with(
    ctx: &PodWorkerContext,
    pod: &Arc<Pod>,
    runtime: &PodStatus,
    waiting: &std::collections::BTreeMap<String, (String, String)>,
    terminal: bool,
    resize_error: Option<&str>,
) -> k8s_openapi::api::core::v1::PodStatus {
    let previous = ctx.status.pod_status(pod_uid(pod));
    let probes = ctx.prober.results_for(runtime);
    let inputs = StatusInputs {
        pod,
        runtime,
        previous: previous.as_ref(),
        waiting_reasons: waiting,
        probes: &probes,
        host_ip: Some(&ctx.host_ip),
        pod_is_terminal: terminal,
        runtime_name: &ctx.runtime_name,
        now: ctx.manager.clock().now(),
    };
    let mut status = generate_api_pod_status(&inputs);
    let allocation = ctx.manager.allocation();
    let uid = pod_uid(pod);
    let actuated = |name: &str| allocation.actuated(uid, name);
    let facts = ResizeFacts {
        allocated: pod,
        actuated: &actuated,
        pending: allocation.pending(uid),
        error: resize_error.map(String::from),
        allocated_generation: allocation.allocated_generation(uid),
        now: inputs.now,
    };
    // After a kubelet restart the API's status stands in for the one generated before.
    add_resize_status(&mut status, previous.as_ref().or(pod.status.as_ref()), &facts);
    status
}

/// Records the events of a resize decision (upstream's `ResizeStarted`, `ResizeDeferred`,
/// `ResizeInfeasible`), with upstream's summary of the spec's resources.
fn resize_events(ctx: &PodWorkerContext, pod: &Pod, decision: &ResizeDecision) {
    let generation = pod.metadata.generation.unwrap_or(0);
    match decision {
        ResizeDecision::Allocated => {
            let msg = format!("Pod resize started: {}", resize_summary(pod, generation, None));
            ctx.manager.events().event(pod, EventType::Normal, "ResizeStarted", &msg);
        }
        ResizeDecision::Pending { pending, newly: true } => {
            let reason = if pending.reason == crate::allocation::REASON_INFEASIBLE { "ResizeInfeasible" } else { "ResizeDeferred" };
            let msg = format!("Pod resize {}: {}", pending.reason, resize_summary(pod, generation, Some(&pending.message)));
            ctx.manager.events().event(pod, EventType::Warning, reason, &msg);
        }
        _ => {}
    }
}

/// Upstream's resize event summary: `{"initContainers":[…],"containers":[…],"generation":N,"error":"…"}`.
fn resize_summary(pod: &Pod, generation: i64, error: Option<&str>) -> String {
    #[derive(serde::Serialize)]
    struct Entry<'a> {
        name: &'a str,
        resources: k8s_openapi::api::core::v1::ResourceRequirements,
    }
    #[derive(serde::Serialize)]
    struct Summary<'a> {
        #[serde(rename = "initContainers", skip_serializing_if = "Vec::is_empty")]
        init_containers: Vec<Entry<'a>>,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        containers: Vec<Entry<'a>>,
        generation: i64,
        #[serde(skip_serializing_if = "Option::is_none")]
        error: Option<&'a str>,
    }
    fn entry(c: &k8s_openapi::api::core::v1::Container) -> Entry<'_> {
        Entry { name: &c.name, resources: c.resources.clone().unwrap_or_default() }
    }
    let spec = pod.spec.as_ref();
    let summary = Summary {
        init_containers: spec.and_then(|s| s.init_containers.as_ref()).into_iter().flatten().map(entry).collect(),
        containers: spec.into_iter().flat_map(|s| s.containers.iter()).map(entry).collect(),
        generation,
        error,
    };
    serde_json::to_string(&summary).unwrap_or_default()
}

/// Sets the pod's generated status and wakes its probe workers, which look at the status just
/// published (a container may have started).
fn publish(ctx: &PodWorkerContext, pod: &Arc<Pod>, status: k8s_openapi::api::core::v1::PodStatus) {
    ctx.status.set_pod_status(pod.clone(), status);
    ctx.prober.wake_pod(pod_uid(pod));
}

/// The admit handlers, then the devices the pod asks for (upstream's resource allocation handler
/// runs after the sysctl one). A pod already terminal in the API gets no devices.
async fn admit(ctx: &PodWorkerContext, pod: &Pod) -> Result<(), crate::admission::PodRejection> {
    ctx.admission.admit(pod)?;
    let terminal = is_terminal_phase(pod.status.as_ref().and_then(|s| s.phase.as_deref()).unwrap_or_default());
    match ctx.manager.devices() {
        Some(devices) if !terminal => crate::devices::admit(devices.as_ref(), pod).await,
        _ => Ok(()),
    }
}

/// How soon a resize that could not be applied is tried again.
const RESIZE_RETRY: Duration = Duration::from_secs(5);

fn has_condition(status: &k8s_openapi::api::core::v1::PodStatus, type_: &str) -> bool {
    status.conditions.iter().flatten().any(|c| c.type_ == type_ && c.status == "True")
}

/// The reason of an evicted pod (upstream `eviction.Reason`).
const EVICTED: &str = "Evicted";
/// Grace of a pod evicted for its local storage (upstream `immediateEvictionGracePeriodSeconds`).
const EVICTION_GRACE_SECONDS: i64 = 1;

/// One sync; returns how long until the next one.
async fn sync_pod(ctx: &PodWorkerContext, r: &PodRef, pod: &Arc<Pod>) -> Result<Duration, PodSyncError> {
    let status = ctx.manager.pod_status(r).await?;
    // A pod without a status yet is new to this kubelet: admit it first (upstream
    // `HandlePodAdditions`); a rejected one is Failed and handled as finished below.
    let first_sync = ctx.status.pod_status(&r.uid).is_none();
    if first_sync {
        match admit(ctx, pod).await {
            // Its resources are allocated (a restarted kubelet keeps the earlier allocation, and
            // the generation of a resize the API says is in progress).
            Ok(()) => {
                ctx.manager.allocation().admit(pod);
                if let Some(generation) = crate::status::resize::in_progress_generation(pod.status.as_ref()) {
                    ctx.manager.allocation().backfill_in_progress(&r.uid, generation);
                }
            }
            Err(rejection) => {
                ctx.manager.events().event(pod, EventType::Warning, rejection.reason, &rejection.message);
                let now = ctx.manager.clock().now();
                ctx.status.set_pod_status(pod.clone(), crate::admission::rejected_status(pod, &rejection, now));
            }
        }
    }
    let already_terminal = ctx.status.pod_status(&r.uid).is_some_and(|s| is_terminal_phase(s.phase.as_deref().unwrap_or_default()));
    if already_terminal {
        // A finished pod is never restarted; make sure nothing of it still runs.
        ctx.manager.kill_pod(Some(pod), &status, None).await?;
        ctx.manager.clean_up_terminated(pod);
        return Ok(ctx.sync_frequency);
    }
    if let Some(eviction) = ctx.evictions.take(&r.uid) {
        // Upstream's eviction: Failed with reason Evicted and the DisruptionTarget condition
        // while the containers stop (one second of grace, or a soft threshold's), then again
        // with their final states; an Evicted event.
        ctx.metrics.evictions.inc(&[eviction.signal]);
        ctx.manager.events().event(pod, EventType::Warning, EVICTED, &eviction.message);
        // Upstream adds the condition for node pressure evictions only, not for local storage.
        let disruption = crate::eviction::node_pressure::resource_of(eviction.signal).is_some();
        publish_evicted(ctx, pod, &status, &eviction.message, disruption);
        ctx.prober.remove_pod(&r.uid);
        let grace = eviction.grace_seconds.unwrap_or(EVICTION_GRACE_SECONDS);
        ctx.manager.kill_pod(Some(pod), &status, Some(grace)).await?;
        let fresh = ctx.manager.pod_status(r).await.unwrap_or(status);
        publish_evicted(ctx, pod, &fresh, &eviction.message, disruption);
        ctx.manager.clean_up_terminated(pod);
        return Ok(ctx.sync_frequency);
    }
    let start_time = ctx.status.pod_status(&r.uid).and_then(|s| s.start_time).map(|t| crate::status::system_time(&t));
    let deadline_left = crate::active_deadline::time_left(pod, start_time, ctx.manager.clock().now());
    if deadline_left == Some(Duration::ZERO) {
        ctx.manager.events().event(pod, EventType::Normal, crate::active_deadline::REASON, crate::active_deadline::MESSAGE);
        // Failed first (as upstream: the status says so while the containers stop), then again
        // with the containers' final states.
        publish_failed(ctx, pod, &status, crate::active_deadline::REASON, crate::active_deadline::MESSAGE);
        ctx.prober.remove_pod(&r.uid);
        ctx.manager.kill_pod(Some(pod), &status, None).await?;
        let fresh = ctx.manager.pod_status(r).await.unwrap_or(status);
        publish_failed(ctx, pod, &fresh, crate::active_deadline::REASON, crate::active_deadline::MESSAGE);
        ctx.manager.clean_up_terminated(pod);
        return Ok(ctx.sync_frequency);
    }
    ctx.prober.add_pod(pod);
    // A changed spec is allocated when the node has room; the pod runs with its allocation.
    let (decision, allocated) = ctx.manager.allocation().handle_resize_and_allocate(pod);
    resize_events(ctx, pod, &decision);
    let allocated = Arc::new(allocated);
    let verdicts = ctx.prober.verdicts(&status);
    if first_sync {
        // Upstream publishes a status before it syncs: a new pod whose images take long to pull
        // shows Pending with its containers ContainerCreating, not nothing. Only on the first
        // sync: later ones would need upstream's reason cache not to flap waiting reasons.
        let before = generate_status(ctx, &allocated, &status, &Default::default(), false);
        if !before.phase.as_deref().is_some_and(is_terminal_phase) {
            publish(ctx, pod, before);
        }
    }
    let outcome = ctx.manager.sync_pod(&allocated, &status, &verdicts).await;
    let fresh = ctx.manager.pod_status(r).await.unwrap_or(status);
    let terminal = pod_is_terminal(&allocated, &fresh);
    let was_resizing = ctx.status.pod_status(&r.uid).is_some_and(|s| has_condition(&s, crate::status::resize::POD_RESIZE_IN_PROGRESS));
    if ctx.manager.allocation().note_resize_error(&r.uid, outcome.resize_error.as_deref()) {
        let generation = ctx.manager.allocation().allocated_generation(&r.uid).unwrap_or(0);
        let msg = format!("Pod resize error: {}", resize_summary(&allocated, generation, outcome.resize_error.as_deref()));
        ctx.manager.events().event(pod, EventType::Warning, "ResizeError", &msg);
    }
    let status = generate_status_with(ctx, &allocated, &fresh, &outcome.waiting, terminal, outcome.resize_error.as_deref());
    let resizing = has_condition(&status, crate::status::resize::POD_RESIZE_IN_PROGRESS);
    // Completed when the condition clears, or at once when the sync that allocated it applied it.
    if (was_resizing || decision == ResizeDecision::Allocated) && !resizing && !terminal {
        let msg = format!("Pod resize completed: {}", resize_summary(&allocated, allocated.metadata.generation.unwrap_or(0), None));
        ctx.manager.events().event(pod, EventType::Normal, "ResizeCompleted", &msg);
    }
    if status.phase.as_deref().is_some_and(is_terminal_phase) {
        // Finished just now: stop what is left (the sandbox, sidecars) before saying so, as
        // upstream keeps the old phase while containers could run; then report from the
        // runtime's final state and give back volumes and cgroup. A failed stop reports nothing
        // new and is retried.
        ctx.manager.kill_pod(Some(pod), &fresh, None).await?;
        let last = ctx.manager.pod_status(r).await.unwrap_or(fresh);
        publish(ctx, pod, generate_status(ctx, &allocated, &last, &outcome.waiting, true));
        ctx.manager.clean_up_terminated(pod);
    } else {
        publish(ctx, pod, status);
    }
    if !outcome.errors.is_empty() {
        return Err(PodSyncError::Sync(outcome.errors));
    }
    let mut wait = outcome.retry_after.map_or(ctx.sync_frequency, |d| d.min(ctx.sync_frequency));
    // A resize that failed to apply is tried again soon.
    if resizing {
        wait = wait.min(RESIZE_RETRY);
    }
    // A deferred resize waits in the allocation manager's queue, which wakes this worker when
    // it is allocated.
    // Wake up when the active deadline passes.
    Ok(deadline_left.map_or(wait, |left| wait.min(left.max(Duration::from_millis(100)))))
}

/// Publishes the pod as `Failed` for `reason` (its containers were killed).
fn publish_failed(ctx: &PodWorkerContext, pod: &Arc<Pod>, runtime: &PodStatus, reason: &str, message: &str) {
    let mut status = generate_status(ctx, pod, runtime, &Default::default(), true);
    status.phase = Some(crate::status::PHASE_FAILED.to_string());
    status.reason = Some(reason.to_string());
    status.message = Some(message.to_string());
    ctx.status.set_pod_status(pod.clone(), status);
}

/// Publishes the pod as evicted: `Failed`, reason `Evicted`, and with `disruption` upstream's
/// `DisruptionTarget` condition (reason `TerminationByKubelet`) with the eviction's message.
fn publish_evicted(ctx: &PodWorkerContext, pod: &Arc<Pod>, runtime: &PodStatus, message: &str, disruption: bool) {
    let allocated = Arc::new(ctx.manager.allocation().allocated_pod(pod));
    let mut status = generate_status(ctx, &allocated, runtime, &Default::default(), true);
    status.phase = Some(crate::status::PHASE_FAILED.to_string());
    status.reason = Some(EVICTED.to_string());
    status.message = Some(message.to_string());
    if !disruption {
        ctx.status.set_pod_status(pod.clone(), status);
        return;
    }
    let previous = ctx.status.pod_status(pod_uid(pod));
    let since = previous
        .as_ref()
        .and_then(|p| p.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.type_ == DISRUPTION_TARGET && c.status == "True"))
        .and_then(|c| c.last_transition_time.clone())
        .unwrap_or_else(|| crate::status::api_time(ctx.manager.clock().now()));
    let conditions = status.conditions.get_or_insert_with(Vec::new);
    conditions.retain(|c| c.type_ != DISRUPTION_TARGET);
    conditions.push(k8s_openapi::api::core::v1::PodCondition {
        type_: DISRUPTION_TARGET.into(),
        status: "True".into(),
        reason: Some("TerminationByKubelet".into()),
        message: Some(message.to_string()),
        last_transition_time: Some(since),
        observed_generation: pod.metadata.generation,
        ..Default::default()
    });
    ctx.status.set_pod_status(pod.clone(), status);
}

/// Upstream's condition of a pod the kubelet (or a controller) is disrupting.
const DISRUPTION_TARGET: &str = "DisruptionTarget";

async fn terminate_pod(
    ctx: &PodWorkerContext,
    r: &PodRef,
    pod: Option<&Arc<Pod>>,
    grace: Option<i64>,
    rx: &watch::Receiver<WorkerState>,
) -> Result<(), PodSyncError> {
    ctx.prober.pod_terminating(&r.uid);
    let status = ctx.manager.pod_status(r).await?;
    ctx.manager.kill_pod(pod.map(|p| &**p), &status, grace).await?;
    ctx.prober.remove_pod(&r.uid);
    let status = ctx.manager.pod_status(r).await?;
    // How the pod ended (upstream generates it with the pod terminal: Succeeded when every
    // regular container exited 0, else Failed), kept for the API until it is deleted there.
    // (Its probes are gone: no verdicts, and nothing runs any more.)
    // Containers that never ran are reported terminated, and a pod that never got to run
    // (deleted while pending) is Failed, as upstream's `TerminatePod`.
    // Reported with the resources the pod ran with (its allocation), then forgotten.
    let final_status = pod.map(|p| {
        let allocated = Arc::new(ctx.manager.allocation().allocated_pod(p));
        (p.clone(), terminated_pod_status(p, generate_status(ctx, &allocated, &status, &Default::default(), true)))
    });
    // A static pod removed from its source leaves its stopped sandbox and containers for the
    // housekeeping's orphan sweep (every 2 s) to remove, as upstream leaves them to its container
    // deleter: a manifest written back meanwhile restarts the same pod from them.
    let static_pod = pod.is_some_and(|p| kubelet_types::pod::is_static_pod(p));
    if rx.borrow().restart_requested || static_pod {
        tracing::info!(pod = %format!("{}/{}", r.namespace, r.name), uid = %r.uid, "keeping the stopped containers of a static pod for a restart or the orphan sweep");
    } else {
        ctx.manager.remove_pod(&status).await?;
    }
    if let Some(devices) = ctx.manager.devices() {
        devices.remove_pod(&r.uid);
    }
    ctx.manager.allocation().remove_pod(&r.uid);
    ctx.status.remove_with_final(&r.uid, final_status);
    tracing::info!(pod = %format!("{}/{}", r.namespace, r.name), uid = %r.uid, "pod terminated and removed");
    Ok(())
}
