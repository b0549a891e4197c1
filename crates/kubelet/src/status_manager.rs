//! The status manager: the latest `v1.PodStatus` of every pod this kubelet runs.
//!
//! One writer per pod (its pod worker), many readers (the read-only port's `/pods`, later the API
//! status syncer). It keeps the previously generated status so condition transition times and the
//! start time stay stable. It does not compute statuses; that is [`crate::status`].

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, RwLock};

use k8s_openapi::api::core::v1::{Pod, PodStatus as ApiPodStatus};

use crate::server::PodLister;

/// What a probe worker needs to know about its container, from the last published status.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProbeView {
    /// Runtime ID of the newest instance (without the `containerd://` prefix).
    pub container_id: Option<String>,
    /// Since when the instance runs; `None` when it is not running.
    pub running_since: Option<std::time::SystemTime>,
    /// The newest instance has terminated.
    pub terminated: bool,
    /// `started` as published (startup probe passed, or none declared).
    pub started: bool,
    /// The pod's primary IP (`status.podIP`), which probes target by default.
    pub pod_ip: Option<String>,
    /// The pod reached `Succeeded` or `Failed`.
    pub pod_terminal: bool,
}

#[derive(Clone, Debug)]
struct Entry {
    pod: Arc<Pod>,
    status: ApiPodStatus,
}

impl Entry {
    fn pod_with_status(&self) -> Pod {
        let mut p = (*self.pod).clone();
        p.status = Some(self.status.clone());
        p
    }

    /// The pod's metadata and status, without its spec (most of a pod).
    fn identity_and_status(&self) -> Pod {
        Pod { metadata: self.pod.metadata.clone(), spec: None, status: Some(self.status.clone()) }
    }
}

/// Latest pod statuses, by pod UID.
#[derive(Clone)]
pub struct StatusManager {
    inner: Arc<RwLock<BTreeMap<String, Entry>>>,
    /// UIDs of the pods most recently stopped and removed, newest last (at most [`REMOVED_KEPT`]).
    removed: Arc<RwLock<VecDeque<String>>>,
    /// The terminal statuses of recently removed pods, by UID (as many as `removed`), for the API
    /// status syncer to send before it deletes them.
    finals: Arc<RwLock<BTreeMap<String, Entry>>>,
    /// Bumped at every change; each consumer (the API status syncer, the mirror pod manager)
    /// has a receiver of its own, so every one of them sees every change.
    changes: Arc<tokio::sync::watch::Sender<u64>>,
}

impl Default for StatusManager {
    fn default() -> Self {
        Self {
            inner: Arc::default(),
            removed: Arc::default(),
            finals: Arc::default(),
            changes: Arc::new(tokio::sync::watch::Sender::new(0)),
        }
    }
}

/// How many removed pod UIDs are remembered for the API status syncer.
const REMOVED_KEPT: usize = 1024;

impl StatusManager {
    /// Records `status` for `pod`; returns whether it differs from the previous one.
    pub fn set_pod_status(&self, pod: Arc<Pod>, status: ApiPodStatus) -> bool {
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        let mut map = self.inner.write().expect("status lock");
        let changed = map.get(&uid).is_none_or(|e| e.status != status);
        map.insert(uid, Entry { pod, status });
        drop(map);
        if changed {
            self.notify();
        }
        changed
    }

    /// The last status generated for pod `uid`.
    pub fn pod_status(&self, uid: &str) -> Option<ApiPodStatus> {
        self.inner.read().expect("status lock").get(uid).map(|e| e.status.clone())
    }

    /// The probe worker's view of container `name` of pod `uid` (regular or init container).
    pub fn probe_view(&self, uid: &str, name: &str) -> Option<ProbeView> {
        let map = self.inner.read().expect("status lock");
        let status = &map.get(uid)?.status;
        let container =
            status.container_statuses.iter().flatten().chain(status.init_container_statuses.iter().flatten()).find(|c| c.name == name)?;
        let state = container.state.as_ref();
        let running_since = state.and_then(|s| s.running.as_ref()).and_then(|r| r.started_at.as_ref()).map(crate::status::system_time);
        Some(ProbeView {
            container_id: container.container_id.as_deref().map(|id| crate::container::bare_container_id(id).to_owned()),
            running_since,
            terminated: state.is_some_and(|s| s.terminated.is_some()),
            started: container.started.unwrap_or(false),
            pod_ip: status.pod_ip.clone(),
            pod_terminal: crate::status::is_terminal_phase(status.phase.as_deref().unwrap_or_default()),
        })
    }

    /// Sets the readiness of container instance `container_id` of pod `uid` as a readiness
    /// probe decided, between pod syncs (e.g. while the pod terminates).
    pub fn set_container_readiness(&self, uid: &str, container_id: &str, ready: bool, now: std::time::SystemTime) {
        let mut map = self.inner.write().expect("status lock");
        let Some(entry) = map.get_mut(uid) else { return };
        let Some(updated) = crate::status::with_container_readiness(&entry.pod, &entry.status, container_id, ready, now) else { return };
        entry.status = updated;
        drop(map);
        self.notify();
    }

    /// Forgets a pod that was removed.
    pub fn remove(&self, uid: &str) {
        self.remove_with_final(uid, None);
    }

    /// Forgets a pod that was stopped and removed, keeping its terminal status (phase
    /// `Succeeded` or `Failed`, every container terminated) for the API: upstream reports how a
    /// deleted pod ended before it deletes it, which is what a pod held by a finalizer shows.
    pub fn remove_with_final(&self, uid: &str, final_status: Option<(Arc<Pod>, ApiPodStatus)>) {
        self.inner.write().expect("status lock").remove(uid);
        let mut removed = self.removed.write().expect("removed lock");
        let mut finals = self.finals.write().expect("finals lock");
        removed.retain(|u| u != uid);
        removed.push_back(uid.to_string());
        match final_status {
            Some((pod, status)) => {
                finals.insert(uid.to_string(), Entry { pod, status });
            }
            None => {
                finals.remove(uid);
            }
        }
        if removed.len() > REMOVED_KEPT
            && let Some(oldest) = removed.pop_front()
        {
            finals.remove(&oldest);
        }
        drop((removed, finals));
        self.notify();
    }

    /// Removed pods with their terminal status filled in.
    pub fn final_statuses(&self) -> Vec<Pod> {
        self.finals.read().expect("finals lock").values().map(Entry::pod_with_status).collect()
    }

    /// Pods recently stopped and removed (their containers are gone), even ones this kubelet
    /// never had a status for, e.g. deleted while it was down.
    pub fn removed(&self) -> Vec<String> {
        self.removed.read().expect("removed lock").iter().cloned().collect()
    }

    fn notify(&self) {
        self.changes.send_modify(|v| *v = v.wrapping_add(1));
    }

    /// A receiver of status changes for one consumer: its `changed()` resolves after every
    /// change since it last looked (a change made while the consumer was busy is not lost, and
    /// no consumer takes a change from another, as a shared `Notify::notify_one` did: the
    /// mirror pod manager took the syncer's wake-ups, which then waited up to 10 s).
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changes.subscribe()
    }

    /// Every pod with its status filled in.
    pub fn pods_with_status(&self) -> Vec<Pod> {
        self.inner.read().expect("status lock").values().map(Entry::pod_with_status).collect()
    }
}

impl PodLister for StatusManager {
    fn pods(&self) -> Vec<Pod> {
        self.pods_with_status()
    }

    fn pod_specs(&self) -> Vec<crate::server::SharedPod> {
        let entries = self.inner.read().expect("status lock");
        entries.values().map(|e| crate::server::SharedPod { pod: e.pod.clone(), start_time: e.status.start_time.clone() }).collect()
    }
}

/// What the cluster-mode status syncer and mirror pod manager read: identities and statuses,
/// without specs. Both read every pod at each status change, and with 100 pods a copy of every
/// spec each time was most of their allocations (and, during a burst of pods, of the heap
/// fragmentation the kubelet kept afterwards).
impl kubelet_types::status::PodStatusProvider for StatusManager {
    fn pods_with_status(&self) -> Vec<Pod> {
        self.inner.read().expect("status lock").values().map(Entry::identity_and_status).collect()
    }
    fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        StatusManager::subscribe(self)
    }
    fn removed(&self) -> Vec<String> {
        StatusManager::removed(self)
    }
    fn final_statuses(&self) -> Vec<Pod> {
        StatusManager::final_statuses(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn every_consumer_sees_every_change_even_one_made_while_it_was_busy() {
        let sm = StatusManager::default();
        // Two consumers, as in cluster mode: the API status syncer and the mirror pod manager.
        let (mut syncer, mut mirrors) = (sm.subscribe(), sm.subscribe());
        let mut pod = Pod::default();
        pod.metadata.uid = Some("a".into());
        let status = ApiPodStatus { phase: Some("Running".into()), ..Default::default() };
        assert!(sm.set_pod_status(Arc::new(pod), status));
        // Each comes back after the change: each sees it at once, not at its next timer.
        let ms = std::time::Duration::from_millis(1);
        tokio::time::timeout(ms, mirrors.changed()).await.expect("mirror manager lost the change").unwrap();
        tokio::time::timeout(ms, syncer.changed()).await.expect("syncer lost the change").unwrap();
        // Nothing changed since: both wait.
        assert!(tokio::time::timeout(std::time::Duration::from_secs(5), syncer.changed()).await.is_err());
        sm.remove("a");
        tokio::time::timeout(ms, syncer.changed()).await.expect("removal was lost").unwrap();
        tokio::time::timeout(ms, mirrors.changed()).await.expect("removal was lost").unwrap();
    }

    #[test]
    fn removed_pods_are_remembered_newest_last_and_bounded() {
        let sm = StatusManager::default();
        let mut pod = Pod::default();
        pod.metadata.uid = Some("a".into());
        sm.set_pod_status(Arc::new(pod), ApiPodStatus::default());
        sm.remove("a");
        sm.remove("never-had-a-status");
        sm.remove("a");
        assert!(sm.pod_status("a").is_none());
        assert_eq!(sm.removed(), ["never-had-a-status", "a"]);
        for i in 0..REMOVED_KEPT + 10 {
            sm.remove(&i.to_string());
        }
        assert_eq!(sm.removed().len(), REMOVED_KEPT);
        assert_eq!(sm.removed().last().map(String::as_str), Some((REMOVED_KEPT + 9).to_string().as_str()));
    }

    #[test]
    fn readers_of_specs_share_the_pod_and_get_the_kubelets_start_time() {
        use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
        let sm = StatusManager::default();
        let mut pod = Pod::default();
        pod.metadata.uid = Some("a".into());
        pod.spec = Some(Default::default());
        let pod = Arc::new(pod);
        let started = Time(k8s_openapi::jiff::Timestamp::from_second(1_700_000_000).unwrap());
        sm.set_pod_status(pod.clone(), ApiPodStatus { start_time: Some(started.clone()), ..Default::default() });
        let shared = sm.pod_specs();
        assert!(Arc::ptr_eq(&shared[0].pod, &pod), "shared, not copied");
        assert_eq!(shared[0].start_time, Some(started));
        // The status syncer's view: identity and status, no spec.
        let views = kubelet_types::status::PodStatusProvider::pods_with_status(&sm);
        assert!(views[0].spec.is_none() && views[0].status.is_some());
        assert!(PodLister::pods(&sm)[0].spec.is_some(), "the full pods for the endpoints");
    }
}
