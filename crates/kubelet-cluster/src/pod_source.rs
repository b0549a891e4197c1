//! The API pod source (upstream `config.NewSourceApiserver`): a reflector over the pods bound
//! to this node (`fieldSelector=spec.nodeName=<node>`) that sends the complete set to
//! `PodConfig` as [`PodSource::Api`] updates.
//!
//! [`PodStore`] is the pure part: a list replaces it, watch events edit it, and it splits
//! mirror pods (annotation `kubernetes.io/config.mirror`, owned by [`crate::mirror`]) from the
//! pods the kubelet must run, and runs node-side admission once per new pod (a rejected pod is
//! patched `Failed` and never sent). Pods marked for deletion are sent with their
//! `deletionTimestamp`: the sync loop stops them with their `deletionGracePeriodSeconds`, and
//! [`crate::status_sync`] deletes them for good. [`ApiPodSource::run`] is the I/O:
//! list, watch from the list's resource version, relist on `410 Gone` or errors, with backoff.
//! The store is published on a `watch` channel (one writer, many readers).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures::{FutureExt, StreamExt};
use k8s_openapi::api::core::v1::Pod;
use kube::api::WatchEvent;
use kubelet_podconfig::{PodSource, PodUpdate};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use k8s_openapi::api::core::v1::Node;

use crate::admission::{Rejection, admit};
use crate::api::PodApi;
use crate::error::ApiError;
use kubelet_types::pod::is_mirror_pod;
use kubelet_types::startup::PodStartupObserver;

/// The longest one pod WATCH is waited on.
const WATCH_DEADLINE: std::time::Duration = std::time::Duration::from_secs(320);

const RELIST_BACKOFF_MAX: Duration = Duration::from_secs(30);

/// At most this many watch events already received are applied before the desired set is
/// sent: each update is a copy of every pod of the node, and a burst of pods brings a burst
/// of events.
const MAX_EVENT_BATCH: usize = 256;

/// `name_namespace`, the kubelet's key for a pod.
pub fn full_name(pod: &Pod) -> String {
    kubelet_podconfig::pod_full_name(pod)
}

/// The node's API pods, by UID, with the resource version they are current at. Pods are shared
/// (`Arc`): the published store, the status syncer's and the mirror manager's views and the
/// last desired set sent all point to the same objects, so cloning the store is cheap.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PodStore {
    /// The pods bound to this node, by `metadata.uid`.
    pub pods: BTreeMap<String, Arc<Pod>>,
    /// The resource version of the last list or watch event applied; the next watch starts there.
    pub resource_version: String,
    /// True after the first complete list.
    pub synced: bool,
    /// UIDs admitted to run here, and those refused (node-side admission, decided once).
    pub admitted: std::collections::BTreeSet<String>,
    /// Refused pods by UID, with why (the reason and message of their `Failed` status).
    pub rejected: BTreeMap<String, Rejection>,
}

impl PodStore {
    /// Replaces the store with a fresh list.
    pub fn replace(&mut self, pods: Vec<Pod>, resource_version: String) {
        let earlier = std::mem::take(&mut self.pods);
        self.pods = pods
            .into_iter()
            .filter_map(|p| {
                let uid = p.metadata.uid.clone()?;
                let before = earlier.get(&uid);
                let pod = as_stored(p, before.map(|p| &**p));
                // An unchanged pod keeps its object, which the pod config and the pod workers
                // share: a relist must not leave them holding a second copy of every pod.
                let pod = before.filter(|b| ***b == pod).cloned().unwrap_or_else(|| Arc::new(pod));
                Some((uid, pod))
            })
            .collect();
        self.resource_version = resource_version;
        self.synced = true;
    }

    /// Applies one watch event; returns whether the pods changed.
    pub fn apply(&mut self, event: WatchEvent<Pod>) -> Result<bool, ApiError> {
        let (pod, deleted) = match event {
            WatchEvent::Added(p) | WatchEvent::Modified(p) => (p, false),
            WatchEvent::Deleted(p) => (p, true),
            WatchEvent::Bookmark(b) => {
                self.resource_version = b.metadata.resource_version;
                return Ok(false);
            }
            WatchEvent::Error(status) => {
                return Err(ApiError::from_status("pods (watch)".into(), status.code, &status.reason, &status.message));
            }
        };
        if let Some(rv) = &pod.metadata.resource_version {
            self.resource_version = rv.clone();
        }
        let Some(uid) = pod.metadata.uid.clone() else { return Ok(false) };
        if deleted {
            return Ok(self.pods.remove(&uid).is_some());
        }
        let pod = as_stored(pod, self.pods.get(&uid).map(|p| &**p));
        if self.pods.get(&uid).is_some_and(|p| **p == pod) {
            return Ok(false);
        }
        self.pods.insert(uid, Arc::new(pod));
        Ok(true)
    }

    /// The pods the kubelet should run or stop: admitted, not mirror pods (pods marked for
    /// deletion included; the sync loop terminates them).
    pub fn desired(&self) -> Vec<Arc<Pod>> {
        self.pods.iter().filter(|(uid, p)| !is_mirror_pod(p) && !self.rejected.contains_key(*uid)).map(|(_, p)| Arc::clone(p)).collect()
    }

    /// Runs admission for pods seen for the first time, oldest first, against `node` (skipped
    /// while the node is unknown); returns the newly rejected pods.
    pub fn admit_new(&mut self, node: Option<&Node>) -> Vec<(Pod, Rejection)> {
        self.admitted.retain(|uid| self.pods.contains_key(uid));
        self.rejected.retain(|uid, _| self.pods.contains_key(uid));
        let mut fresh: Vec<&Pod> = self
            .pods
            .iter()
            .filter(|(uid, p)| !is_mirror_pod(p) && !self.admitted.contains(*uid) && !self.rejected.contains_key(*uid))
            .map(|(_, p)| &**p)
            .collect();
        if fresh.is_empty() {
            return Vec::new();
        }
        fresh.sort_by_key(|p| p.metadata.creation_timestamp.as_ref().map(|t| t.0));
        let (mut newly_admitted, mut newly_rejected) = (Vec::new(), Vec::new());
        // Static pods take their share too, through their mirror pods.
        let mirrors = self.pods.values().filter(|p| is_mirror_pod(p));
        let mut admitted: Vec<&Pod> =
            self.admitted.iter().filter_map(|u| self.pods.get(u)).chain(mirrors).filter(|p| !is_finished(p)).map(|p| &**p).collect();
        for pod in fresh {
            let verdict = match node {
                Some(node) if !is_finished(pod) => admit(node, &admitted, pod),
                _ => Ok(()),
            };
            match verdict {
                Ok(()) => {
                    admitted.push(pod);
                    newly_admitted.push(pod.metadata.uid.clone().unwrap_or_default());
                }
                Err(r) => newly_rejected.push((pod.clone(), r)),
            }
        }
        self.admitted.extend(newly_admitted);
        for (pod, r) in &newly_rejected {
            self.rejected.insert(pod.metadata.uid.clone().unwrap_or_default(), r.clone());
        }
        newly_rejected
    }

    /// Mirror pods by full name.
    pub fn mirror_pods(&self) -> BTreeMap<String, Pod> {
        self.pods.values().filter(|p| is_mirror_pod(p)).map(|p| (full_name(p), Pod::clone(p))).collect()
    }
}

/// `pod` without what no part of the kubelet reads: `metadata.managedFields` (server-side
/// apply bookkeeping, often the larger part of a decoded pod). Every copy of a pod the kubelet
/// keeps (the store, the desired state, the pod workers, the status manager) is smaller for it.
pub fn without_unused_fields(mut pod: Pod) -> Pod {
    pod.metadata.managed_fields = None;
    pod
}

/// A pod as the store keeps it: [`without_unused_fields`], and (not mirror pods) with the pod
/// config's `config.source` and `config.seen` annotations (the latter kept from `earlier`, the
/// stored copy), so the pod config publishes the store's object itself instead of an annotated
/// copy of every pod.
fn as_stored(pod: Pod, earlier: Option<&Pod>) -> Pod {
    let mut pod = without_unused_fields(pod);
    if !is_mirror_pod(&pod) {
        kubelet_podconfig::annotate_from_source(&mut pod, PodSource::Api, earlier, SystemTime::now);
    }
    pod
}

fn is_finished(pod: &Pod) -> bool {
    matches!(pod.status.as_ref().and_then(|s| s.phase.as_deref()), Some("Succeeded" | "Failed"))
}

/// The reflector task.
pub struct ApiPodSource {
    /// Lists and watches the node's pods.
    pub api: Arc<dyn PodApi>,
    /// This node's name, for the `spec.nodeName=<node>` field selector.
    pub node_name: String,
    /// The registered node, for admission.
    pub node: watch::Receiver<Option<Node>>,
    /// Told of every pod received (the pod startup latency SLI).
    pub startup: Option<Arc<dyn PodStartupObserver>>,
}

impl ApiPodSource {
    /// `spec.nodeName=<node>`.
    pub fn field_selector(&self) -> String {
        format!("spec.nodeName={}", self.node_name)
    }

    /// Tells the startup observer of a watch event's pod.
    fn observe(&self, event: &WatchEvent<Pod>) {
        let Some(observer) = &self.startup else { return };
        match event {
            WatchEvent::Added(p) | WatchEvent::Modified(p) => observer.observed_on_watch(p, SystemTime::now()),
            WatchEvent::Deleted(p) => observer.forget(p.metadata.uid.as_deref().unwrap_or_default()),
            WatchEvent::Bookmark(_) | WatchEvent::Error(_) => {}
        }
    }

    /// Tells the startup observer of a list's pods, and of the pods it no longer has.
    fn observe_list(&self, before: &PodStore, pods: &[Pod]) {
        let Some(observer) = &self.startup else { return };
        let now = SystemTime::now();
        for pod in pods {
            observer.observed_on_watch(pod, now);
        }
        let listed: std::collections::BTreeSet<&str> = pods.iter().filter_map(|p| p.metadata.uid.as_deref()).collect();
        for uid in before.pods.keys().filter(|uid| !listed.contains(uid.as_str())) {
            observer.forget(uid);
        }
    }

    /// Lists and watches until `shutdown`, sending the desired set on `updates` whenever it
    /// changes and publishing the whole store on `store`.
    pub async fn run(self, updates: mpsc::Sender<PodUpdate>, store: watch::Sender<PodStore>, shutdown: CancellationToken) {
        let selector = self.field_selector();
        let mut backoff = Duration::from_millis(500);
        let mut last_sent: Option<Vec<Arc<Pod>>> = None;
        let send = |state: &mut PodStore, last_sent: &mut Option<Vec<Arc<Pod>>>| {
            for (pod, r) in state.admit_new(self.node.borrow().as_ref()) {
                tracing::warn!(pod = %full_name(&pod), reason = %r.reason, "pod rejected by node admission: {}", r.message);
                let api = self.api.clone();
                let patch = serde_json::json!({ "metadata": { "uid": pod.metadata.uid }, "status": r.pod_status() });
                tokio::spawn(async move {
                    let (ns, name) = (pod.metadata.namespace.clone().unwrap_or_default(), pod.metadata.name.clone().unwrap_or_default());
                    if let Err(e) = api.patch_pod_status(&ns, &name, &patch).await {
                        tracing::warn!(pod = %format!("{ns}/{name}"), "failed to mark rejected pod Failed: {e}");
                    }
                });
            }
            let desired = state.desired();
            let changed = last_sent.as_ref() != Some(&desired);
            store.send_replace(state.clone());
            if changed {
                let pods = desired.clone();
                *last_sent = Some(desired);
                Some(PodUpdate { source: PodSource::Api, pods, errors: Vec::new() })
            } else {
                None
            }
        };
        'relist: loop {
            let mut state = store.borrow().clone();
            match self.api.list_pods(&selector).await {
                Ok(list) => {
                    self.observe_list(&state, &list.pods);
                    state.replace(list.pods, list.resource_version);
                    backoff = Duration::from_millis(500);
                    if let Some(u) = send(&mut state, &mut last_sent)
                        && updates.send(u).await.is_err()
                    {
                        return;
                    }
                }
                Err(e) => {
                    tracing::warn!("listing pods for this node failed, retrying in {backoff:?}: {e}");
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(RELIST_BACKOFF_MAX);
                    continue 'relist;
                }
            }
            // Watch until the server ends it or it fails; resume from the last resource version.
            loop {
                let stream = tokio::select! {
                    _ = shutdown.cancelled() => return,
                    s = self.api.watch_pods(&selector, &state.resource_version) => s,
                };
                let mut stream = match stream {
                    Ok(s) => s,
                    Err(e) => {
                        tracing::warn!("watching pods failed, listing again: {e}");
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(RELIST_BACKOFF_MAX);
                        continue 'relist;
                    }
                };
                // The server ends a watch after its timeout (290 s); one silent past that is a
                // connection that died without a word: watched again rather than waited on.
                let deadline = tokio::time::Instant::now() + WATCH_DEADLINE;
                loop {
                    let next = tokio::select! {
                        _ = shutdown.cancelled() => return,
                        _ = tokio::time::sleep_until(deadline) => {
                            tracing::debug!("pod watch outlived its deadline; watching again");
                            None
                        }
                        n = stream.next() => n,
                    };
                    let Some(mut event) = next else { break };
                    let (mut changed, mut ended, mut applied) = (false, false, 0);
                    loop {
                        if let Ok(e) = &event {
                            self.observe(e);
                        }
                        match event.and_then(|e| state.apply(e)) {
                            Ok(c) => changed |= c,
                            Err(e) => {
                                tracing::info!("pod watch ended: {e}; listing again");
                                continue 'relist;
                            }
                        }
                        applied += 1;
                        if applied == MAX_EVENT_BATCH {
                            break;
                        }
                        match stream.next().now_or_never() {
                            Some(Some(e)) => event = e,
                            Some(None) => {
                                ended = true;
                                break;
                            }
                            None => break,
                        }
                    }
                    if changed
                        && let Some(u) = send(&mut state, &mut last_sent)
                        && updates.send(u).await.is_err()
                    {
                        return;
                    }
                    if ended {
                        break;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
    use kubelet_types::pod::CONFIG_MIRROR_ANNOTATION;

    pub(crate) fn pod(uid: &str, name: &str, rv: &str) -> Pod {
        Pod {
            metadata: ObjectMeta {
                uid: Some(uid.into()),
                name: Some(name.into()),
                namespace: Some("default".into()),
                resource_version: Some(rv.into()),
                ..ObjectMeta::default()
            },
            ..Pod::default()
        }
    }

    #[test]
    fn list_then_events() {
        let mut s = PodStore::default();
        s.replace(vec![pod("a", "pa", "1")], "5".into());
        assert!(s.synced);
        assert!(s.apply(WatchEvent::Added(pod("b", "pb", "6"))).unwrap());
        assert!(!s.apply(WatchEvent::Modified(pod("b", "pb", "6"))).unwrap(), "same object");
        assert_eq!(s.resource_version, "6");
        assert!(s.apply(WatchEvent::Deleted(pod("a", "pa", "7"))).unwrap());
        assert_eq!(s.desired().len(), 1);
        assert_eq!(s.resource_version, "7");
    }

    #[test]
    fn mirror_pods_are_not_desired_and_deleted_pods_are_passed_on() {
        let mut s = PodStore::default();
        let mut mirror = pod("m", "static-node", "1");
        mirror.metadata.annotations = Some([(CONFIG_MIRROR_ANNOTATION.to_string(), "hash".to_string())].into());
        let mut deleted = pod("d", "going", "1");
        deleted.metadata.deletion_timestamp = Some(Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH));
        s.replace(vec![pod("a", "pa", "1"), mirror, deleted], "1".into());
        let names: Vec<String> = s.desired().iter().map(|p| full_name(p)).collect();
        assert_eq!(names, ["pa_default", "going_default"]);
        assert!(s.desired()[1].metadata.deletion_timestamp.is_some(), "the sync loop terminates it");
        assert_eq!(s.mirror_pods().keys().collect::<Vec<_>>(), ["static-node_default"]);
    }

    #[test]
    fn admission_runs_once_per_pod_and_rejected_pods_are_not_desired() {
        use k8s_openapi::api::core::v1::{NodeStatus, PodSpec};
        use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
        let mut node = Node {
            status: Some(NodeStatus { allocatable: Some([("pods".to_string(), Quantity("1".into()))].into()), ..NodeStatus::default() }),
            ..Node::default()
        };
        node.metadata.name = Some("n1".into());
        let bound = |uid: &str, name: &str, at: i64| {
            let mut p = pod(uid, name, "1");
            p.spec = Some(PodSpec { node_name: Some("n1".into()), ..PodSpec::default() });
            p.metadata.creation_timestamp = Some(Time(k8s_openapi::jiff::Timestamp::from_second(at).unwrap()));
            p
        };
        let mut s = PodStore::default();
        s.replace(vec![bound("b", "second", 20), bound("a", "first", 10)], "1".into());
        let rejected = s.admit_new(Some(&node));
        assert_eq!(rejected.len(), 1);
        assert_eq!((full_name(&rejected[0].0), rejected[0].1.reason.as_str()), ("second_default".to_string(), "OutOfpods"));
        assert_eq!(s.desired().iter().map(|p| full_name(p)).collect::<Vec<_>>(), ["first_default"]);
        assert!(s.admit_new(Some(&node)).is_empty(), "decided once");
    }

    #[test]
    fn mirror_pods_count_against_max_pods() {
        use k8s_openapi::api::core::v1::{NodeStatus, PodSpec};
        use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
        let mut node = Node {
            status: Some(NodeStatus { allocatable: Some([("pods".to_string(), Quantity("1".into()))].into()), ..NodeStatus::default() }),
            ..Node::default()
        };
        node.metadata.name = Some("n1".into());
        let mut mirror = pod("m", "static-n1", "1");
        mirror.metadata.annotations = Some([(CONFIG_MIRROR_ANNOTATION.to_string(), "hash".to_string())].into());
        let mut api = pod("a", "api", "1");
        api.spec = Some(PodSpec { node_name: Some("n1".into()), ..PodSpec::default() });
        let mut s = PodStore::default();
        s.replace(vec![mirror, api], "1".into());
        let rejected = s.admit_new(Some(&node));
        assert_eq!(
            rejected.iter().map(|(p, r)| (full_name(p), r.reason.clone())).collect::<Vec<_>>(),
            [("api_default".to_string(), "OutOfpods".to_string())]
        );
    }

    #[test]
    fn stored_pods_carry_the_config_annotations_with_a_stable_seen_time() {
        use kubelet_podconfig::CONFIG_SEEN_ANNOTATION;
        let mut s = PodStore::default();
        s.replace(vec![pod("a", "pa", "1")], "1".into());
        let annotations = s.pods["a"].metadata.annotations.clone().unwrap();
        assert_eq!(annotations[kubelet_podconfig::CONFIG_SOURCE_ANNOTATION], "api");
        let seen = annotations[CONFIG_SEEN_ANNOTATION].clone();
        assert!(s.apply(WatchEvent::Modified(pod("a", "pa", "2"))).unwrap());
        assert!(!s.apply(WatchEvent::Modified(pod("a", "pa", "2"))).unwrap(), "the same object, annotated alike");
        let before = s.pods["a"].clone();
        s.replace(vec![pod("a", "pa", "2")], "3".into());
        assert!(Arc::ptr_eq(&before, &s.pods["a"]), "a relist keeps the object of an unchanged pod");
        s.replace(vec![pod("a", "pa", "3")], "3".into());
        assert_eq!(s.pods["a"].metadata.annotations.as_ref().unwrap()[CONFIG_SEEN_ANNOTATION], seen, "kept across events and relists");
    }

    #[test]
    fn managed_fields_are_not_kept_and_an_event_without_other_changes_is_no_change() {
        use k8s_openapi::apimachinery::pkg::apis::meta::v1::ManagedFieldsEntry;
        let managed = |mut p: Pod, manager: &str| {
            p.metadata.managed_fields =
                Some(vec![ManagedFieldsEntry { manager: Some(manager.into()), operation: Some("Update".into()), ..Default::default() }]);
            p
        };
        let mut s = PodStore::default();
        s.replace(vec![managed(pod("a", "pa", "1"), "kubectl")], "1".into());
        assert!(s.pods["a"].metadata.managed_fields.is_none());
        assert!(s.apply(WatchEvent::Added(managed(pod("b", "pb", "2"), "kubectl"))).unwrap());
        assert!(s.pods["b"].metadata.managed_fields.is_none());
        assert!(!s.apply(WatchEvent::Modified(managed(pod("b", "pb", "2"), "kubelet"))).unwrap(), "only managedFields differ");
        let before = Arc::clone(&s.pods["a"]);
        let published = s.clone();
        assert!(Arc::ptr_eq(&before, &published.pods["a"]), "a clone of the store shares its pods");
        assert!(Arc::ptr_eq(&before, &s.desired()[0]), "so does the desired set");
    }

    /// Lists one pod; the watch delivers `events` at once and then stays open.
    struct BurstApi {
        events: std::sync::Mutex<Vec<WatchEvent<Pod>>>,
    }

    #[async_trait::async_trait]
    impl PodApi for BurstApi {
        async fn list_pods(&self, _: &str) -> Result<crate::api::PodList, ApiError> {
            Ok(crate::api::PodList { pods: vec![pod("a", "pa", "1")], resource_version: "1".into() })
        }
        async fn watch_pods(
            &self,
            _: &str,
            _: &str,
        ) -> Result<futures::stream::BoxStream<'static, Result<WatchEvent<Pod>, ApiError>>, ApiError> {
            let events: Vec<_> = std::mem::take(&mut *self.events.lock().unwrap()).into_iter().map(Ok).collect();
            Ok(futures::stream::iter(events).chain(futures::stream::pending()).boxed())
        }
        async fn get_pod(&self, _: &str, _: &str) -> Result<Option<Pod>, ApiError> {
            Ok(None)
        }
        async fn create_pod(&self, pod: &Pod) -> Result<Pod, ApiError> {
            Ok(pod.clone())
        }
        async fn delete_pod(&self, _: &str, _: &str, _: Option<u32>, _: Option<&str>) -> Result<(), ApiError> {
            Ok(())
        }
        async fn patch_pod_status(&self, _: &str, _: &str, _: &serde_json::Value) -> Result<Pod, ApiError> {
            Ok(Pod::default())
        }
    }

    #[tokio::test]
    async fn a_burst_of_watch_events_is_sent_as_one_update() {
        let events = vec![
            WatchEvent::Added(pod("b", "pb", "2")),
            WatchEvent::Added(pod("c", "pc", "3")),
            WatchEvent::Modified(pod("b", "pb", "4")),
            WatchEvent::Deleted(pod("a", "pa", "5")),
        ];
        let src = ApiPodSource {
            api: Arc::new(BurstApi { events: std::sync::Mutex::new(events) }),
            node_name: "n1".into(),
            node: watch::channel(None).1,
            startup: None,
        };
        let (tx, mut rx) = mpsc::channel(16);
        let (store_tx, store) = watch::channel(PodStore::default());
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(src.run(tx, store_tx, shutdown.clone()));
        let names = |u: PodUpdate| u.pods.iter().map(|p| full_name(p)).collect::<Vec<_>>();
        assert_eq!(names(rx.recv().await.unwrap()), ["pa_default"], "the list");
        assert_eq!(names(rx.recv().await.unwrap()), ["pb_default", "pc_default"], "all four events at once");
        assert!(tokio::time::timeout(Duration::from_millis(100), rx.recv()).await.is_err(), "and nothing more");
        assert_eq!(store.borrow().resource_version, "5");
        shutdown.cancel();
        task.await.unwrap();
    }

    #[test]
    fn watch_errors_map_to_api_errors() {
        let mut s = PodStore::default();
        let status = kube::core::Status { code: 410, reason: "Expired".into(), message: "too old".into(), ..Default::default() };
        assert!(matches!(s.apply(WatchEvent::Error(Box::new(status))), Err(ApiError::Gone { .. })));
    }
}
