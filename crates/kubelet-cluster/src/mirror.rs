//! Mirror pods (upstream `pkg/kubelet/pod/mirror_client.go`): every static pod (from a file or
//! URL) gets a pod object in the API server so the cluster sees it, annotated
//! `kubernetes.io/config.mirror=<static pod hash>` and owned by the Node. A mirror pod that is
//! missing, outdated (another hash) or being deleted is (re)created; one whose static pod is gone
//! is deleted. As upstream, a mirror pod stays while a static pod of its full name is still
//! terminating (removed or replaced in its source, containers within their grace period): the
//! cluster sees it Running until the pod has stopped.
//!
//! [`plan_mirrors`] is pure; [`MirrorPodManager::run`] applies it whenever the desired pods, the
//! API pods or the node change, and every 10 s. It touches only mirror pods.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kubelet_podconfig::{CONFIG_HASH_ANNOTATION, DesiredPods};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::api::PodApi;
use crate::pod_source::{PodStore, full_name};
use kubelet_types::pod::{CONFIG_MIRROR_ANNOTATION, annotation, is_static_pod};
use kubelet_types::status::PodStatusProvider;

const RESYNC: Duration = Duration::from_secs(10);

/// One API write.
#[derive(Debug, Clone, PartialEq)]
pub enum MirrorAction {
    /// Create this mirror pod (a static pod without one).
    Create(Box<Pod>),
    /// Delete a mirror pod (outdated, being deleted, or of no static pod), with grace period 0.
    Delete {
        /// The mirror pod's namespace.
        namespace: String,
        /// The mirror pod's name (`metadata.name`).
        name: String,
        /// The mirror pod's UID, a precondition of the delete.
        uid: String,
    },
}

fn static_hash(pod: &Pod) -> String {
    annotation(pod, CONFIG_HASH_ANNOTATION).map(str::to_string).or_else(|| pod.metadata.uid.clone()).unwrap_or_default()
}

/// The mirror pod object for a static pod on node `node` (UID `node_uid`).
pub fn mirror_pod(static_pod: &Pod, node: &str, node_uid: &str) -> Pod {
    let mut pod = static_pod.clone();
    let hash = static_hash(static_pod);
    pod.metadata.annotations.get_or_insert_with(BTreeMap::new).insert(CONFIG_MIRROR_ANNOTATION.into(), hash);
    pod.metadata.uid = None;
    pod.metadata.resource_version = None;
    pod.metadata.owner_references = Some(vec![OwnerReference {
        api_version: "v1".into(),
        kind: "Node".into(),
        name: node.into(),
        uid: node_uid.into(),
        controller: Some(true),
        ..OwnerReference::default()
    }]);
    pod.spec.get_or_insert_with(Default::default).node_name = Some(node.into());
    pod.status = None;
    pod
}

fn delete(pod: &Pod) -> MirrorAction {
    MirrorAction::Delete {
        namespace: pod.metadata.namespace.clone().unwrap_or_default(),
        name: pod.metadata.name.clone().unwrap_or_default(),
        uid: pod.metadata.uid.clone().unwrap_or_default(),
    }
}

/// Full names of static pods the kubelet still has (a status for) that are no longer desired:
/// removed from, or replaced in, their source and not yet terminated.
pub fn terminating_static_pods(desired: &DesiredPods, known: &[Pod]) -> BTreeSet<String> {
    known
        .iter()
        .filter(|p| is_static_pod(p) && p.metadata.uid.as_ref().is_some_and(|uid| !desired.pods.contains_key(uid)))
        .map(full_name)
        .collect()
}

/// Writes that bring the mirror pods in line with the static pods; the mirrors of `terminating`
/// full names are left as they are.
pub fn plan_mirrors(
    desired: &DesiredPods,
    mirrors: &BTreeMap<String, Pod>,
    terminating: &BTreeSet<String>,
    node: &str,
    node_uid: &str,
) -> Vec<MirrorAction> {
    let statics: BTreeMap<String, &Pod> = desired.pods.values().filter(|p| is_static_pod(p)).map(|p| (full_name(p), p.as_ref())).collect();
    let mut actions = Vec::new();
    for (name, pod) in &statics {
        match mirrors.get(name) {
            Some(m) if terminating.contains(name) && m.metadata.deletion_timestamp.is_none() => {}
            None => actions.push(MirrorAction::Create(Box::new(mirror_pod(pod, node, node_uid)))),
            Some(m) if annotation(m, CONFIG_MIRROR_ANNOTATION) != Some(&static_hash(pod)) || m.metadata.deletion_timestamp.is_some() => {
                // Outdated or being deleted: delete now, re-create on a later round.
                actions.push(delete(m));
            }
            Some(_) => {}
        }
    }
    for (name, m) in mirrors {
        if !statics.contains_key(name) && !terminating.contains(name) {
            actions.push(delete(m));
        }
    }
    actions
}

/// Keeps mirror pods in line with static pods.
pub struct MirrorPodManager {
    /// Creates and deletes the mirror pods.
    pub api: Arc<dyn PodApi>,
    /// This node's name, each mirror pod's `spec.nodeName` and owner.
    pub node_name: String,
    /// The desired pods from every source; the static ones need mirrors.
    pub desired: watch::Receiver<DesiredPods>,
    /// The node's API pods, where the mirror pods are found.
    pub store: watch::Receiver<PodStore>,
    /// The registered Node, whose UID owns the mirror pods; nothing is written before it exists.
    pub node: watch::Receiver<Option<Node>>,
    /// The kubelet's pods, terminating ones included.
    pub known: Arc<dyn PodStatusProvider>,
}

impl MirrorPodManager {
    /// Reconciles on every change and every 10 s until `shutdown`, once the pod store has synced
    /// and the Node is registered.
    pub async fn run(mut self, shutdown: CancellationToken) {
        let mut known_changes = self.known.subscribe();
        loop {
            known_changes.borrow_and_update();
            let node_uid = self.node.borrow_and_update().as_ref().and_then(|n| n.metadata.uid.clone());
            let store = self.store.borrow_and_update().clone();
            let desired = self.desired.borrow_and_update().clone();
            if let (Some(node_uid), true) = (node_uid, store.synced) {
                let terminating = terminating_static_pods(&desired, &self.known.pods_with_status());
                for action in plan_mirrors(&desired, &store.mirror_pods(), &terminating, &self.node_name, &node_uid) {
                    self.apply(action).await;
                }
            }
            drop((store, desired));
            tokio::select! {
                _ = shutdown.cancelled() => return,
                r = self.desired.changed() => if r.is_err() { return },
                r = self.store.changed() => if r.is_err() { return },
                r = self.node.changed() => if r.is_err() { return },
                r = known_changes.changed() => if r.is_err() { return },
                _ = tokio::time::sleep(RESYNC) => {}
            }
        }
    }

    async fn apply(&self, action: MirrorAction) {
        match action {
            MirrorAction::Create(pod) => {
                let key = format!(
                    "{}/{}",
                    pod.metadata.namespace.as_deref().unwrap_or_default(),
                    pod.metadata.name.as_deref().unwrap_or_default()
                );
                match self.api.create_pod(&pod).await {
                    Ok(_) => tracing::info!(pod = %key, "created mirror pod"),
                    Err(e) if e.is_already_exists() => {}
                    Err(e) => tracing::warn!(pod = %key, "failed creating a mirror pod: {e}"),
                }
            }
            MirrorAction::Delete { namespace, name, uid } => match self.api.delete_pod(&namespace, &name, Some(0), Some(&uid)).await {
                Ok(()) => tracing::info!(pod = %format!("{namespace}/{name}"), "deleted mirror pod"),
                Err(e) if e.is_not_found() => {}
                Err(e) => tracing::warn!(pod = %format!("{namespace}/{name}"), "failed deleting a mirror pod: {e}"),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
    use kubelet_types::pod::CONFIG_SOURCE_ANNOTATION;

    fn static_pod(name: &str, hash: &str) -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("default".into()),
                uid: Some(hash.into()),
                annotations: Some(
                    [(CONFIG_SOURCE_ANNOTATION.to_string(), "file".to_string()), (CONFIG_HASH_ANNOTATION.to_string(), hash.to_string())]
                        .into(),
                ),
                ..ObjectMeta::default()
            },
            ..Pod::default()
        }
    }

    fn desired(pods: Vec<Pod>) -> DesiredPods {
        DesiredPods { pods: pods.into_iter().map(|p| (p.metadata.uid.clone().unwrap(), Arc::new(p))).collect(), ..DesiredPods::default() }
    }

    fn mirror_of(p: &Pod, uid: &str) -> (String, Pod) {
        let mut m = mirror_pod(p, "n1", "node-uid");
        m.metadata.uid = Some(uid.into());
        (full_name(&m), m)
    }

    #[test]
    fn mirror_pod_is_annotated_bound_and_owned() {
        let m = mirror_pod(&static_pod("web-n1", "h1"), "n1", "node-uid");
        assert_eq!(annotation(&m, CONFIG_MIRROR_ANNOTATION), Some("h1"));
        assert_eq!(m.metadata.uid, None);
        assert_eq!(m.spec.unwrap().node_name.as_deref(), Some("n1"));
        let owner = &m.metadata.owner_references.unwrap()[0];
        assert_eq!((owner.kind.as_str(), owner.uid.as_str(), owner.controller), ("Node", "node-uid", Some(true)));
    }

    #[test]
    fn creates_missing_replaces_outdated_deletes_orphans() {
        let (a, b, c) = (static_pod("a-n1", "h-a"), static_pod("b-n1", "h-b2"), static_pod("c-n1", "h-c"));
        let mut mirrors: BTreeMap<String, Pod> =
            [mirror_of(&b, "mb"), mirror_of(&c, "mc"), mirror_of(&static_pod("gone-n1", "h-g"), "mg")].into();
        // b's static pod changed since its mirror was made.
        mirrors
            .get_mut("b-n1_default")
            .unwrap()
            .metadata
            .annotations
            .as_mut()
            .unwrap()
            .insert(CONFIG_MIRROR_ANNOTATION.into(), "h-b1".into());
        let mut api_pod = static_pod("api", "u-api");
        api_pod.metadata.annotations.as_mut().unwrap().insert(CONFIG_SOURCE_ANNOTATION.into(), "api".into());
        let actions = plan_mirrors(&desired(vec![a, b, c, api_pod]), &mirrors, &BTreeSet::new(), "n1", "node-uid");
        let summary: Vec<String> = actions
            .iter()
            .map(|a| match a {
                MirrorAction::Create(p) => format!("create {}", p.metadata.name.as_deref().unwrap()),
                MirrorAction::Delete { name, uid, .. } => format!("delete {name} {uid}"),
            })
            .collect();
        assert_eq!(summary, ["create a-n1", "delete b-n1 mb", "delete gone-n1 mg"]);
    }

    #[test]
    fn mirrors_of_terminating_static_pods_stay_until_they_stop() {
        let (b_old, b_new) = (static_pod("b-n1", "h-b1"), static_pod("b-n1", "h-b2"));
        let gone = static_pod("gone-n1", "h-g");
        let mirrors: BTreeMap<String, Pod> = [mirror_of(&b_old, "mb"), mirror_of(&gone, "mg")].into();
        let want = desired(vec![b_new.clone()]);
        // The kubelet still stops the old b and the removed pod: their mirrors stay.
        let terminating = terminating_static_pods(&want, &[b_old, gone, b_new]);
        assert_eq!(terminating, BTreeSet::from(["b-n1_default".to_string(), "gone-n1_default".to_string()]));
        assert_eq!(plan_mirrors(&want, &mirrors, &terminating, "n1", "node-uid"), []);
        // Once they have stopped, the outdated mirror is replaced and the orphan deleted.
        let terminating = terminating_static_pods(&want, &[]);
        let names: Vec<_> = plan_mirrors(&want, &mirrors, &terminating, "n1", "node-uid")
            .into_iter()
            .map(|a| match a {
                MirrorAction::Create(p) => p.metadata.name.unwrap(),
                MirrorAction::Delete { uid, .. } => uid,
            })
            .collect();
        assert_eq!(names, ["mb", "mg"]);
    }
}
