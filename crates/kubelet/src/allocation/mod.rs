//! In-place pod resize's bookkeeping (upstream `pkg/kubelet/allocation`).
//!
//! Three views of a container's CPU and memory exist while a pod is resized: what its spec asks
//! for now (desired), what the kubelet admitted (allocated) and what it last applied to the
//! container (actuated). The kubelet runs pods with their allocated resources; a spec change is
//! allocated only when the node has room for it, else it stays pending (`PodResizePending`,
//! reason `Infeasible` when the pod alone exceeds the node's allocatable, `Deferred` when other
//! pods' allocations are in the way). Deferred resizes wait in a queue ([`queue`]) and are tried
//! again, in upstream's order, whenever room may have freed up: a pod went, another resize was
//! allocated, and at every housekeeping. Allocated and actuated resources survive kubelet
//! restarts in upstream's checkpoint files.
//!
//! Choice: upstream 1.37 reports every resize that does not fit as `Deferred` and leaves
//! preemption to the scheduler; this kubelet calls one that could never fit `Infeasible` (as
//! upstream up to 1.34 did), so an operator sees at once that it will never happen.

pub mod checkpoint;
pub mod queue;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use tokio::sync::mpsc;

use k8s_openapi::api::core::v1::{Container, Pod, ResourceRequirements};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use self::checkpoint::{Entries, PodResourceInfo};
use self::queue::ResizeRank;
use crate::cm::pod_cgroups::{listed, pod_request};
use crate::kuberuntime::labels::pod_uid;

/// The checkpoint of allocated resources, as upstream names it.
pub const ALLOCATED_STATE_FILE: &str = "allocated_pods_state";
/// The checkpoint of actuated resources, as upstream names it.
pub const ACTUATED_STATE_FILE: &str = "actuated_pods_state";

/// `PodResizePending` reasons.
pub const REASON_INFEASIBLE: &str = "Infeasible";
/// The resize fits the node's allocatable, but not next to the other pods' allocations now.
pub const REASON_DEFERRED: &str = "Deferred";

/// A resize the kubelet has not allocated, for the pod's `PodResizePending` condition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingResize {
    /// [`REASON_INFEASIBLE`] or [`REASON_DEFERRED`].
    pub reason: &'static str,
    /// Which resource did not fit, with the amounts, for the condition's message.
    pub message: String,
    /// The pod generation the decision was about.
    pub generation: i64,
}

/// What [`AllocationManager::handle_resize`] decided about a pod's spec.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ResizeDecision {
    /// The spec asks for what is allocated.
    Unchanged,
    /// The new resources were allocated just now (`ResizeStarted`).
    Allocated,
    /// Not allocated; `newly` when the reason or generation changed (an event is due).
    Pending {
        /// Why, for the `PodResizePending` condition.
        pending: PendingResize,
        /// Whether the reason or generation changed since the last decision (an event is due).
        newly: bool,
    },
}

/// The CPU (millicores) and memory (bytes) of a requirements list, compared as amounts (so
/// `1` and `1000m` are the same).
fn amounts(list: Option<&BTreeMap<String, Quantity>>) -> [Option<i64>; 2] {
    [listed(list, "cpu"), listed(list, "memory")]
}

/// Whether two containers' CPU and memory requirements differ (the resizable resources).
pub fn resources_differ(a: &ResourceRequirements, b: &ResourceRequirements) -> bool {
    let (cpu, memory) = differing(a, b);
    cpu || memory
}

/// Which of CPU and memory differ between two requirements: `(cpu, memory)`.
pub fn differing(a: &ResourceRequirements, b: &ResourceRequirements) -> (bool, bool) {
    let (ra, rb) = (amounts(a.requests.as_ref()), amounts(b.requests.as_ref()));
    let (la, lb) = (amounts(a.limits.as_ref()), amounts(b.limits.as_ref()));
    (ra[0] != rb[0] || la[0] != lb[0], ra[1] != rb[1] || la[1] != lb[1])
}

/// The containers whose resources the kubelet allocates: all of them (init containers too, GA
/// in 1.37: `InPlacePodVerticalScalingInitContainers`).
fn resizable(pod: &Pod) -> impl Iterator<Item = &Container> {
    let spec = pod.spec.as_ref();
    spec.into_iter().flat_map(|s| s.containers.iter().chain(s.init_containers.iter().flatten()))
}

/// The pod's spec resources, as an allocation records them.
fn spec_info(pod: &Pod) -> PodResourceInfo {
    PodResourceInfo {
        container_resources: resizable(pod).map(|c| (c.name.clone(), c.resources.clone().unwrap_or_default())).collect(),
        pod_level_resources: pod.spec.as_ref().and_then(|s| s.resources.clone()),
    }
}

/// `pod` with its containers' resources replaced by `info`'s (those it records).
fn with_resources(pod: &Pod, info: &PodResourceInfo) -> Pod {
    let mut out = pod.clone();
    if let Some(spec) = out.spec.as_mut() {
        for c in spec.containers.iter_mut().chain(spec.init_containers.iter_mut().flatten()) {
            if let Some(r) = info.container_resources.get(&c.name) {
                c.resources = (r != &ResourceRequirements::default() || c.resources.is_some()).then(|| r.clone());
            }
        }
    }
    out
}

/// A checkpointed map of pod resources.
struct Checkpointed {
    path: Option<PathBuf>,
    entries: Mutex<Entries>,
}

impl Checkpointed {
    fn open(dir: Option<&Path>, file: &str) -> Self {
        let path = dir.map(|d| d.join(file));
        let entries = match path.as_deref().map(checkpoint::load) {
            Some(Ok(e)) => e,
            Some(Err(e)) => {
                tracing::warn!("{e}; starting from the pods' specs");
                Entries::new()
            }
            None => Entries::new(),
        };
        Checkpointed { path, entries: Mutex::new(entries) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Entries> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn get(&self, uid: &str) -> Option<PodResourceInfo> {
        self.lock().get(uid).cloned()
    }

    fn update(&self, f: impl FnOnce(&mut Entries) -> bool) {
        let mut entries = self.lock();
        if f(&mut entries)
            && let Some(path) = &self.path
            && let Err(e) = checkpoint::save(path, &entries)
        {
            tracing::warn!("{e}");
        }
    }
}

/// The node's allocatable CPU (millicores) and memory (bytes) that resizes are checked against.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Allocatable {
    /// Allocatable CPU in millicores (`i64::MAX` when the list has none).
    pub milli_cpu: i64,
    /// Allocatable memory in bytes (`i64::MAX` when the list has none).
    pub memory: i64,
}

impl Allocatable {
    /// From the node status's allocatable list.
    pub fn from_list(list: &BTreeMap<String, Quantity>) -> Self {
        let [cpu, memory] = amounts(Some(list));
        Allocatable { milli_cpu: cpu.unwrap_or(i64::MAX), memory: memory.unwrap_or(i64::MAX) }
    }
}

/// Allocated and actuated resources of the pods on this node.
pub struct AllocationManager {
    allocated: Checkpointed,
    actuated: Checkpointed,
    allocatable: Allocatable,
    /// CPU and memory requests of each allocated pod (for the others' total).
    requests: Mutex<BTreeMap<String, (i64, i64)>>,
    /// Resizes not allocated, by pod UID.
    pending: Mutex<BTreeMap<String, Waiting>>,
    /// The next [`ResizeRank::deferred_seq`].
    next_seq: std::sync::atomic::AtomicU64,
    /// Pods whose deferred resize a retry allocated; the next [`Self::handle_resize`] of each
    /// reports [`ResizeDecision::Allocated`] (its worker records `ResizeStarted`), unless the
    /// spec changed again meanwhile (that decision is about the newer spec).
    allocated_by_retry: Mutex<BTreeSet<String>>,
    /// Where a retry sends the UIDs of the pods it allocated or whose pending message changed,
    /// so their workers wake.
    wake_tx: mpsc::UnboundedSender<String>,
    /// The receiving end, until [`Self::take_wakes`] hands it to the sync loop.
    wake_rx: Mutex<Option<mpsc::UnboundedReceiver<String>>>,
    /// The pod cgroup settings last applied, by pod UID (in memory: after a restart each pod
    /// cgroup is brought in line once).
    pod_cgroups: Mutex<BTreeMap<String, crate::cm::pod_cgroups::CgroupResources>>,
    /// Held across a resize decision (others' total, fit, commit): two pods' resizes must not
    /// both take the same room.
    deciding: Mutex<()>,
    /// The pod generation each pod's latest resize was allocated at, and the last error
    /// applying it (for `PodResizeInProgress` and the `ResizeError` event).
    in_progress: Mutex<BTreeMap<String, (i64, Option<String>)>>,
}

/// A resize that is not allocated, with what a retry needs to decide it again without the pod.
#[derive(Clone, Debug)]
struct Waiting {
    resize: PendingResize,
    /// What the allocation would become.
    desired: PodResourceInfo,
    /// The pod's CPU and memory requests with it.
    requests: (i64, i64),
    rank: ResizeRank,
}

impl AllocationManager {
    /// Keeps its checkpoints in `root_dir` (`None`: in memory only, for tests).
    pub fn new(root_dir: Option<&Path>, allocatable: Allocatable) -> Self {
        let allocated = Checkpointed::open(root_dir, ALLOCATED_STATE_FILE);
        // Until each pod is seen again after a restart, its requests are estimated from the
        // checkpoint (containers summed: never less than upstream's total), so an early resize
        // of another pod cannot take room that is allocated.
        let requests = allocated
            .lock()
            .iter()
            .map(|(uid, info)| {
                let sum = |r: &str| {
                    info.container_resources.values().filter_map(|c| listed(c.requests.as_ref(), r)).fold(0i64, i64::saturating_add)
                };
                (uid.clone(), (sum("cpu"), sum("memory")))
            })
            .collect();
        let (wake_tx, wake_rx) = mpsc::unbounded_channel();
        AllocationManager {
            allocated,
            actuated: Checkpointed::open(root_dir, ACTUATED_STATE_FILE),
            allocatable,
            requests: Mutex::new(requests),
            pending: Mutex::default(),
            next_seq: Default::default(),
            allocated_by_retry: Mutex::default(),
            wake_tx,
            wake_rx: Mutex::new(Some(wake_rx)),
            pod_cgroups: Mutex::default(),
            deciding: Mutex::default(),
            in_progress: Mutex::default(),
        }
    }

    /// The generation the pod's latest resize was allocated at (`None`: none this run).
    pub fn allocated_generation(&self, uid: &str) -> Option<i64> {
        self.in_progress.lock().unwrap_or_else(|e| e.into_inner()).get(uid).map(|(g, _)| *g)
    }

    /// After a kubelet restart: the generation of the pod's resize in progress as the API
    /// reports it, unless one was allocated since.
    pub fn backfill_in_progress(&self, uid: &str, generation: i64) {
        self.in_progress.lock().unwrap_or_else(|e| e.into_inner()).entry(uid.to_string()).or_insert((generation, None));
    }

    /// Records the outcome of applying the pod's resize; `true` when `error` is new (a
    /// `ResizeError` event is due).
    pub fn note_resize_error(&self, uid: &str, error: Option<&str>) -> bool {
        let mut map = self.in_progress.lock().unwrap_or_else(|e| e.into_inner());
        let Some(entry) = map.get_mut(uid) else { return false };
        let new = error.is_some() && entry.1.as_deref() != error;
        entry.1 = error.map(String::from);
        new
    }

    /// The pod cgroup settings last applied to pod `uid`.
    pub fn pod_cgroup(&self, uid: &str) -> Option<crate::cm::pod_cgroups::CgroupResources> {
        self.pod_cgroups.lock().unwrap_or_else(|e| e.into_inner()).get(uid).cloned()
    }

    /// Records the pod cgroup settings just applied.
    pub fn set_pod_cgroup(&self, uid: &str, r: crate::cm::pod_cgroups::CgroupResources) {
        self.pod_cgroups.lock().unwrap_or_else(|e| e.into_inner()).insert(uid.to_string(), r);
    }

    /// Forgets the pods `known` does not know (deleted while the kubelet was down), as
    /// upstream's `RemoveOrphanedPods`.
    pub fn remove_orphaned(&self, known: impl Fn(&str) -> bool) {
        let uids: Vec<String> = self.allocated.lock().keys().chain(self.actuated.lock().keys()).filter(|u| !known(u)).cloned().collect();
        for uid in uids {
            self.remove_pod(&uid);
        }
    }

    fn note_requests(&self, allocated: &Pod) {
        let r = (pod_request(allocated, "cpu"), pod_request(allocated, "memory"));
        self.requests.lock().unwrap_or_else(|e| e.into_inner()).insert(pod_uid(allocated).to_string(), r);
    }

    /// Records an admitted pod's spec as its allocation unless it has one (a kubelet restart
    /// keeps what was allocated), and, for containers with no actuated record, their allocated
    /// resources as what runs (containers started before this kubelet kept records).
    pub fn admit(&self, pod: &Pod) {
        let uid = pod_uid(pod).to_string();
        // Not while a resize is decided: it must see this pod's requests or none of them.
        let _deciding = self.deciding.lock().unwrap_or_else(|e| e.into_inner());
        let info = spec_info(pod);
        let mut allocated = None;
        self.allocated.update(|e| match e.get(&uid) {
            Some(existing) => {
                allocated = Some(existing.clone());
                false
            }
            None => {
                e.insert(uid.clone(), info.clone());
                allocated = Some(info);
                true
            }
        });
        let allocated = allocated.unwrap_or_default();
        self.actuated.update(|e| {
            if e.contains_key(&uid) {
                return false;
            }
            e.insert(uid.clone(), allocated.clone());
            true
        });
        self.note_requests(&with_resources(pod, &allocated));
    }

    /// `pod` as the kubelet runs it: its containers' resources are the allocated ones.
    pub fn allocated_pod(&self, pod: &Pod) -> Pod {
        match self.allocated.get(pod_uid(pod)) {
            Some(info) => with_resources(pod, &info),
            None => pod.clone(),
        }
    }

    /// Allocates a changed spec when the node has room for it (upstream
    /// `handlePodResourcesResize`, with the queue of `PushPendingResize` and
    /// `RetryPendingResizes`): a new resize joins the deferred ones and they are all tried in
    /// order; one already deferred with this very spec waits for the next retry.
    pub fn handle_resize(&self, pod: &Pod) -> ResizeDecision {
        let _deciding = self.deciding.lock().unwrap_or_else(|e| e.into_inner());
        self.decide_locked(pod)
    }

    /// [`Self::handle_resize`], and the pod as it runs after the decision ([`Self::allocated_pod`]),
    /// read under the same lock: a retry cannot change the allocation between the two.
    pub fn handle_resize_and_allocate(&self, pod: &Pod) -> (ResizeDecision, Pod) {
        let _deciding = self.deciding.lock().unwrap_or_else(|e| e.into_inner());
        let decision = self.decide_locked(pod);
        (decision, self.allocated_pod(pod))
    }

    /// The decision; the caller holds `deciding`.
    fn decide_locked(&self, pod: &Pod) -> ResizeDecision {
        let uid = pod_uid(pod).to_string();
        let Some(allocated) = self.allocated.get(&uid) else { return ResizeDecision::Unchanged };
        let desired = spec_info(pod);
        let changed = resizable(pod).any(|c| {
            let want = c.resources.clone().unwrap_or_default();
            allocated.container_resources.get(&c.name).is_none_or(|have| resources_differ(have, &want))
        });
        if !changed {
            self.pending.lock().unwrap_or_else(|e| e.into_inner()).remove(&uid);
            if self.allocated_by_retry.lock().unwrap_or_else(|e| e.into_inner()).remove(&uid) {
                return ResizeDecision::Allocated;
            }
            return ResizeDecision::Unchanged;
        }
        // A newer spec than the one a retry allocated: this decision is about it.
        self.allocated_by_retry.lock().unwrap_or_else(|e| e.into_inner()).remove(&uid);
        let generation = pod.metadata.generation.unwrap_or(0);
        // The containers take the spec's values; pod-level resources are not resized.
        let next = PodResourceInfo { pod_level_resources: allocated.pod_level_resources.clone(), ..desired };
        let wanted = with_resources(pod, &next);
        let requests = (pod_request(&wanted, "cpu"), pod_request(&wanted, "memory"));
        let current = self.requests.lock().unwrap_or_else(|e| e.into_inner()).get(&uid).copied().unwrap_or_default();
        let old = {
            let mut map = self.pending.lock().unwrap_or_else(|e| e.into_inner());
            let old = map.get(&uid).cloned();
            if let Some(w) = &old
                && w.resize.generation == generation
                && w.desired == next
            {
                return ResizeDecision::Pending { pending: w.resize.clone(), newly: false };
            }
            // How long it has waited: kept while it waits; after a kubelet restart, since the
            // `Deferred` condition the API holds (upstream sorts by its transition time).
            let (deferred_since, deferred_seq) = match &old {
                Some(w) => (w.rank.deferred_since, w.rank.deferred_seq),
                None => (
                    api_condition(pod, REASON_DEFERRED).and_then(|c| c.last_transition_time.as_ref()).map_or(i64::MAX, |t| t.0.as_second()),
                    self.next_seq.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
                ),
            };
            let rank = ResizeRank {
                raises_requests: requests.0 > current.0 || requests.1 > current.1,
                priority: pod.spec.as_ref().and_then(|s| s.priority).unwrap_or(0),
                guaranteed: crate::status::pod_qos_class(pod) == crate::status::QOS_GUARANTEED,
                deferred_since,
                deferred_seq,
            };
            let resize = match infeasible(requests, self.allocatable) {
                Some(message) => PendingResize { reason: REASON_INFEASIBLE, message, generation },
                None => PendingResize { reason: REASON_DEFERRED, message: String::new(), generation },
            };
            map.insert(uid.clone(), Waiting { resize, desired: next, requests, rank });
            old
        };
        let mut allocated_itself = false;
        for done in self.retry_locked() {
            if done == uid {
                self.allocated_by_retry.lock().unwrap_or_else(|e| e.into_inner()).remove(&uid);
                allocated_itself = true;
            } else {
                let _ = self.wake_tx.send(done);
            }
        }
        if allocated_itself {
            return ResizeDecision::Allocated;
        }
        let pending = self.pending(&uid).unwrap_or_else(|| PendingResize { reason: REASON_DEFERRED, message: String::new(), generation });
        let newly = match old {
            Some(w) => w.resize.reason != pending.reason || w.resize.generation != pending.generation,
            // After a kubelet restart: news only if the API does not say so already (no second
            // event for the same decision).
            None => api_condition(pod, pending.reason).is_none_or(|c| c.observed_generation != Some(generation)),
        };
        ResizeDecision::Pending { pending, newly }
    }

    /// Tries the deferred resizes again, in the queue's order, and wakes the workers of the pods
    /// whose resize now fits (upstream's periodic and event-driven `RetryPendingResizes`).
    pub fn retry_pending_resizes(&self) {
        let _deciding = self.deciding.lock().unwrap_or_else(|e| e.into_inner());
        self.retry_and_wake_locked();
    }

    /// [`Self::retry_locked`], waking every pod it allocated; the caller holds `deciding`.
    fn retry_and_wake_locked(&self) {
        for uid in self.retry_locked() {
            let _ = self.wake_tx.send(uid);
        }
    }

    /// The UIDs of pods whose deferred resize a retry allocated, for the sync loop to wake their
    /// workers. `None` after the first call (one consumer).
    pub fn take_wakes(&self) -> Option<mpsc::UnboundedReceiver<String>> {
        self.wake_rx.lock().unwrap_or_else(|e| e.into_inner()).take()
    }

    /// Allocates every deferred resize that fits, in rank order, each next to what the ones
    /// before it took; returns their pods' UIDs. The pods whose pending message changed (the
    /// others' use moved) are woken here, so their condition says so. The caller holds
    /// `deciding`.
    fn retry_locked(&self) -> Vec<String> {
        // Nothing deferred (the usual case at every housekeeping): nothing to copy or sort.
        if !self.pending.lock().unwrap_or_else(|e| e.into_inner()).values().any(|w| w.resize.reason == REASON_DEFERRED) {
            return Vec::new();
        }
        let mut requests = self.requests.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let mut done = Vec::new();
        {
            let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
            let mut order: Vec<(String, ResizeRank)> =
                pending.iter().filter(|(_, w)| w.resize.reason == REASON_DEFERRED).map(|(u, w)| (u.clone(), w.rank)).collect();
            order.sort_by_key(|(_, r)| r.key());
            for (uid, _) in order {
                let Some(w) = pending.get_mut(&uid) else { continue };
                let others = requests
                    .iter()
                    .filter(|(u, _)| **u != uid)
                    .fold((0i64, 0i64), |acc, (_, r)| (acc.0.saturating_add(r.0), acc.1.saturating_add(r.1)));
                match deferred(w.requests, others, self.allocatable) {
                    Some(message) => {
                        if w.resize.message != message {
                            w.resize.message = message;
                            let _ = self.wake_tx.send(uid.clone());
                        }
                    }
                    None => {
                        requests.insert(uid.clone(), w.requests);
                        if let Some(w) = pending.remove(&uid) {
                            done.push((uid, w));
                        }
                    }
                }
            }
        }
        let mut uids = Vec::with_capacity(done.len());
        for (uid, w) in done {
            self.allocated.update(|e| {
                e.insert(uid.clone(), w.desired.clone());
                true
            });
            self.requests.lock().unwrap_or_else(|e| e.into_inner()).insert(uid.clone(), w.requests);
            self.in_progress.lock().unwrap_or_else(|e| e.into_inner()).insert(uid.clone(), (w.resize.generation, None));
            self.allocated_by_retry.lock().unwrap_or_else(|e| e.into_inner()).insert(uid.clone());
            uids.push(uid);
        }
        uids
    }

    /// The pod's resize that waits, if any.
    pub fn pending(&self, uid: &str) -> Option<PendingResize> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner()).get(uid).map(|w| w.resize.clone())
    }

    /// What was last applied to a container (`None`: nothing recorded).
    pub fn actuated(&self, uid: &str, container: &str) -> Option<ResourceRequirements> {
        self.actuated.get(uid)?.container_resources.get(container).cloned()
    }

    /// Records what a container now runs with (it started, or was updated in place).
    pub fn set_actuated(&self, uid: &str, container: &str, resources: &ResourceRequirements) {
        self.actuated.update(|e| {
            let info = e.entry(uid.to_string()).or_default();
            if info.container_resources.get(container) == Some(resources) {
                return false;
            }
            info.container_resources.insert(container.to_string(), resources.clone());
            true
        });
    }

    /// Forgets a pod that finished or was removed.
    pub fn remove_pod(&self, uid: &str) {
        // Under the decision lock: a retry running meanwhile must not allocate the pod again.
        let _deciding = self.deciding.lock().unwrap_or_else(|e| e.into_inner());
        self.allocated.update(|e| e.remove(uid).is_some());
        self.actuated.update(|e| e.remove(uid).is_some());
        self.requests.lock().unwrap_or_else(|e| e.into_inner()).remove(uid);
        self.pending.lock().unwrap_or_else(|e| e.into_inner()).remove(uid);
        self.pod_cgroups.lock().unwrap_or_else(|e| e.into_inner()).remove(uid);
        self.in_progress.lock().unwrap_or_else(|e| e.into_inner()).remove(uid);
        self.allocated_by_retry.lock().unwrap_or_else(|e| e.into_inner()).remove(uid);
        // Its room may be what a deferred resize waits for.
        self.retry_and_wake_locked();
    }
}

/// The pod's `PodResizePending` condition with `reason` in its status as the API holds it.
fn api_condition<'a>(pod: &'a Pod, reason: &str) -> Option<&'a k8s_openapi::api::core::v1::PodCondition> {
    pod.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == crate::status::resize::POD_RESIZE_PENDING && c.status == "True" && c.reason.as_deref() == Some(reason))
}

/// Why a pod asking for `requested` (CPU millicores, memory bytes) could never fit the node, if
/// it could not (`PodResizePending` reason `Infeasible`).
fn infeasible(requested: (i64, i64), allocatable: Allocatable) -> Option<String> {
    let wanted = [("cpu", requested.0, allocatable.milli_cpu), ("memory", requested.1, allocatable.memory)];
    wanted.into_iter().find(|(_, requested, capacity)| requested > capacity).map(|(name, requested, capacity)| {
        format!("Node didn't have enough capacity: {name}, requested: {requested}, capacity: {capacity}")
    })
}

/// Why `requested` does not fit next to `others` (their allocated requests) within
/// `allocatable` now, if it does not (reason `Deferred`).
fn deferred(requested: (i64, i64), others: (i64, i64), allocatable: Allocatable) -> Option<String> {
    let wanted = [("cpu", requested.0, others.0, allocatable.milli_cpu), ("memory", requested.1, others.1, allocatable.memory)];
    wanted.into_iter().find(|(_, requested, used, capacity)| requested.saturating_add(*used) > *capacity).map(
        |(name, requested, used, capacity)| {
            format!("Node didn't have enough resource: {name}, requested: {requested}, used: {used}, capacity: {capacity}")
        },
    )
}

#[cfg(test)]
mod tests;
