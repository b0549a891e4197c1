//! The pod status syncer (the API half of upstream `status_manager.go`): sends each pod's
//! latest status to the API server's `status` subresource when it differs from what the API
//! holds, and finishes graceful deletion by deleting, with grace 0, pods that were marked for
//! deletion once the kubelet has stopped them.
//!
//! The status of a static pod goes to its mirror pod. [`plan`] is pure; [`StatusSyncer::run`]
//! applies it on every status change and every [`SYNC_PERIOD`]. Statuses come through
//! [`PodStatusProvider`] (the kubelet's status manager).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Pod, PodStatus};
use kubelet_podconfig::{CONFIG_HASH_ANNOTATION, CONFIG_SOURCE_ANNOTATION};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::api::PodApi;
use crate::pod_source::{PodStore, full_name};
use kubelet_types::pod::{CONFIG_MIRROR_ANNOTATION, annotation, is_mirror_pod};
use kubelet_types::status::{PodStatusProvider, pod_condition_by_kubelet};

/// Upstream's status manager resync period.
pub const SYNC_PERIOD: Duration = Duration::from_secs(10);

/// One API write.
#[derive(Debug, Clone, PartialEq)]
pub enum StatusAction {
    /// Patch the `status` subresource of an API pod (the pod itself, or a static pod's mirror).
    Patch {
        /// The API pod's namespace.
        namespace: String,
        /// The API pod's name (`metadata.name`).
        name: String,
        /// The API pod's UID, a precondition of the patch (`metadata.uid`).
        uid: String,
        /// The status the kubelet reports.
        status: Box<PodStatus>,
        /// The API pod's resourceVersion the patch was planned against.
        resource_version: Option<String>,
        /// Kubelet-owned condition types the API holds and the kubelet no longer reports
        /// (e.g. `PodResizePending` once the resize is allocated): deleted by the patch.
        removed_conditions: Vec<String>,
        /// `(podIPs|hostIPs, ip)` the API holds that the kubelet's status replaced.
        removed_ips: Vec<(String, String)>,
    },
    /// Final deletion (grace 0, UID precondition) of a pod the kubelet has stopped.
    Delete {
        /// The pod's namespace.
        namespace: String,
        /// The pod's name (`metadata.name`).
        name: String,
        /// The pod's UID, the delete's precondition.
        uid: String,
    },
}

fn is_terminal(status: Option<&PodStatus>) -> bool {
    matches!(status.and_then(|s| s.phase.as_deref()), Some("Succeeded" | "Failed"))
}

fn has_running_containers(pod: &Pod) -> bool {
    pod.status.iter().flat_map(|s| s.container_statuses.iter().flatten()).any(|c| c.state.as_ref().is_some_and(|s| s.running.is_some()))
}

/// The API pod that carries `pod`'s status: itself, or the mirror of a static pod.
fn target<'a>(pod: &Pod, store: &'a PodStore, mirrors: &'a BTreeMap<String, Pod>) -> Option<&'a Pod> {
    match annotation(pod, CONFIG_SOURCE_ANNOTATION) {
        Some("file" | "http") => {
            let hash = annotation(pod, CONFIG_HASH_ANNOTATION).or(pod.metadata.uid.as_deref());
            mirrors.get(&full_name(pod)).filter(|m| annotation(m, CONFIG_MIRROR_ANNOTATION) == hash)
        }
        _ => store.pods.get(pod.metadata.uid.as_deref()?).map(|p| &**p),
    }
}

/// A status patched into the API: the API pod's resourceVersion it was planned against, and
/// the resourceVersion of the API's answer (the pod as our patch left it).
#[derive(Debug, Clone, PartialEq)]
pub struct Sent {
    /// A fingerprint of the kubelet's status that was sent ([`fingerprint`]): a copy of every
    /// pod's status was kept before, for an equality test.
    pub status: u64,
    /// The API pod's `resourceVersion` the patch was planned against.
    pub resource_version: Option<String>,
    /// The `resourceVersion` the API answered with: while the API pod still has it, it holds
    /// what our patch left (the API may store a status a little differently from what was
    /// sent, e.g. times at second precision). Only the version is kept, not that status: a
    /// copy of every pod's status was a tenth of the kubelet's heap with 100 pods.
    pub stored_version: Option<String>,
}

/// A 64-bit fingerprint of a status (SipHash of its JSON form, written straight into the
/// hasher). Two different statuses share one with a chance of 2^-64; then the newer would wait
/// for the pod's next status change.
pub fn fingerprint(status: &PodStatus) -> u64 {
    use std::hash::Hasher;
    struct Feed(std::collections::hash_map::DefaultHasher);
    impl std::io::Write for Feed {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.write(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut feed = Feed(std::collections::hash_map::DefaultHasher::new());
    // Serializing a PodStatus into a writer that cannot fail does not fail.
    let _ = serde_json::to_writer(&mut feed, status);
    feed.0.finish()
}

/// Condition types both sides may set (upstream `PodConditionSharedByKubelet`): the kubelet's
/// wins when it has one.
fn pod_condition_shared_by_kubelet(type_: &str) -> bool {
    type_ == "DisruptionTarget"
}

/// The conditions the kubelet reports: its own and the shared ones.
fn reported_by_kubelet(type_: &str) -> bool {
    pod_condition_by_kubelet(type_) || pod_condition_shared_by_kubelet(type_)
}

/// `status` with the conditions merged as upstream's `mergePodStatus`: the conditions others own
/// as the API holds them now (the kubelet's copy may predate a readiness gate's update, and
/// sending it would undo that update), then the kubelet's own and shared ones.
pub fn merge_pod_conditions(status: &PodStatus, api: Option<&PodStatus>) -> PodStatus {
    let ours = status.conditions.as_deref().unwrap_or_default();
    let has_shared = |t: &str| ours.iter().any(|c| c.type_ == t);
    let mut conditions: Vec<_> = api
        .and_then(|a| a.conditions.as_deref())
        .unwrap_or_default()
        .iter()
        .filter(|c| {
            // Others' conditions, but not a shared one the kubelet reports itself.
            let replaced = pod_condition_shared_by_kubelet(&c.type_) && has_shared(&c.type_);
            !(pod_condition_by_kubelet(&c.type_) || replaced)
        })
        .cloned()
        .collect();
    conditions.extend(ours.iter().filter(|c| reported_by_kubelet(&c.type_)).cloned());
    let mut merged = status.clone();
    merged.conditions = (!conditions.is_empty() || status.conditions.is_some()).then_some(conditions);
    merged
}

/// The strategic merge patch that writes `status` for the pod with `uid`: conditions merge by
/// type on the server, so only the kubelet's own (and shared) ones are sent and a condition
/// someone else set meanwhile is left alone; a reason or message ours lacks is sent as null.
/// Conditions in `removed` get the strategic merge patch's delete directive (a list merged by
/// key keeps an element the patch leaves out).
/// IPs in `removed_ips` (`podIPs`/`hostIPs` merge by `ip` the same way) get it too, with the
/// list's order (`$setElementOrder`), as upstream's two-way merge patch: a pod restarted under
/// the same UID has a new sandbox IP, and merging it with the old one is refused (422: one IP per
/// family).
pub fn status_patch(uid: &str, status: &PodStatus, removed: &[String], removed_ips: &[(String, String)]) -> serde_json::Value {
    let mut status = status.clone();
    if let Some(conditions) = status.conditions.as_mut() {
        conditions.retain(|c| reported_by_kubelet(&c.type_));
    }
    let mut patch = serde_json::json!({ "metadata": { "uid": uid }, "status": status });
    // A condition's reason and message are cleared when ours has none (Ready turning True after
    // `ContainersNotReady`): a field the patch leaves out keeps its old value on the server, as
    // upstream's two-way patch would set it to null.
    for condition in patch["status"]["conditions"].as_array_mut().into_iter().flatten() {
        if let Some(fields) = condition.as_object_mut() {
            for field in ["reason", "message"] {
                fields.entry(field).or_insert(serde_json::Value::Null);
            }
        }
    }
    if !removed.is_empty() {
        let list = patch["status"]["conditions"].as_array().cloned().unwrap_or_default();
        let deletes = removed.iter().map(|t| serde_json::json!({ "type": t, "$patch": "delete" }));
        patch["status"]["conditions"] = serde_json::Value::Array(list.into_iter().chain(deletes).collect());
    }
    for field in ["podIPs", "hostIPs"] {
        let gone: Vec<&String> = removed_ips.iter().filter(|(f, _)| f == field).map(|(_, ip)| ip).collect();
        if gone.is_empty() {
            continue;
        }
        let list = patch["status"][field].as_array().cloned().unwrap_or_default();
        patch["status"][format!("$setElementOrder/{field}")] =
            serde_json::Value::Array(list.iter().map(|e| serde_json::json!({ "ip": e["ip"] })).collect());
        let deletes = gone.into_iter().map(|ip| serde_json::json!({ "ip": ip, "$patch": "delete" }));
        patch["status"][field] = serde_json::Value::Array(list.into_iter().chain(deletes).collect());
    }
    patch
}

/// The pod and host IPs `api` holds that `ours` replaced (ours lists others).
fn removed_ips(ours: &PodStatus, api: Option<&PodStatus>) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let Some(api) = api else { return out };
    let pod = |s: &PodStatus| s.pod_ips.as_ref().map(|l| l.iter().map(|i| i.ip.clone()).collect::<Vec<_>>());
    let host = |s: &PodStatus| s.host_ips.as_ref().map(|l| l.iter().map(|i| i.ip.clone()).collect::<Vec<_>>());
    for (field, ours, theirs) in [("podIPs", pod(ours), pod(api)), ("hostIPs", host(ours), host(api))] {
        let (Some(ours), Some(theirs)) = (ours, theirs) else { continue };
        out.extend(theirs.into_iter().filter(|ip| !ours.contains(ip)).map(|ip| (field.to_owned(), ip)));
    }
    out
}

/// The kubelet-owned condition types `api` holds that `ours` lacks.
fn removed_conditions(ours: &PodStatus, api: Option<&PodStatus>) -> Vec<String> {
    let has = |t: &str| ours.conditions.iter().flatten().any(|c| c.type_ == t);
    let api_types = api.and_then(|a| a.conditions.as_deref()).unwrap_or_default().iter().map(|c| &c.type_);
    api_types.filter(|t| pod_condition_by_kubelet(t) && !has(t)).cloned().collect()
}

/// What to write, given the kubelet's statuses, the API's view, what was last sent (by API
/// UID) and the UIDs the kubelet has had a status for.
pub fn plan(pods: &[Pod], store: &PodStore, sent: &BTreeMap<String, Sent>, known: &BTreeSet<String>) -> Vec<StatusAction> {
    plan_with_finals(pods, &[], store, sent, known)
}

/// [`plan`], where `finals` are removed pods with their terminal status: it is sent first (a
/// patch comes before the deletion in the returned order), and they are deleted like any
/// removed pod.
pub fn plan_with_finals(
    pods: &[Pod],
    finals: &[Pod],
    store: &PodStore,
    sent: &BTreeMap<String, Sent>,
    known: &BTreeSet<String>,
) -> Vec<StatusAction> {
    let mirrors = store.mirror_pods();
    let mut actions = Vec::new();
    let mut with_status = BTreeSet::new();
    let running_uids: BTreeSet<&str> = pods.iter().filter_map(|p| p.metadata.uid.as_deref()).collect();
    // A pod that runs again (re-added under the same UID) is reported by its live status.
    let finals = finals.iter().filter(|p| p.metadata.uid.as_deref().is_none_or(|u| !running_uids.contains(u)));
    for (pod, live) in pods.iter().map(|p| (p, true)).chain(finals.map(|p| (p, false))) {
        if live {
            with_status.extend(pod.metadata.uid.clone());
        }
        let (Some(status), Some(api_pod)) = (pod.status.as_ref(), target(pod, store, &mirrors)) else { continue };
        let Some(api_uid) = api_pod.metadata.uid.clone() else { continue };
        let merged = merge_pod_conditions(status, api_pod.status.as_ref());
        let status = &merged;
        // What was sent stands while the watch has not caught up (same resourceVersion) or the
        // API still holds what our patch left; anything else is someone else's change (the node
        // controller marking pods not Ready during an outage), to reconcile.
        let rv = api_pod.metadata.resource_version.clone();
        let already_sent = sent.get(&api_uid).is_some_and(|s| {
            // The versions first: the fingerprint serializes the status.
            (s.resource_version == rv || (s.stored_version.is_some() && s.stored_version == rv)) && s.status == fingerprint(status)
        });
        if api_pod.status.as_ref() == Some(status) || already_sent {
            continue;
        }
        if is_terminal(api_pod.status.as_ref()) && !is_terminal(Some(status)) {
            continue; // a finished pod never runs again
        }
        actions.push(StatusAction::Patch {
            namespace: api_pod.metadata.namespace.clone().unwrap_or_default(),
            name: api_pod.metadata.name.clone().unwrap_or_default(),
            uid: api_uid,
            status: Box::new(status.clone()),
            resource_version: rv,
            removed_conditions: removed_conditions(status, api_pod.status.as_ref()),
            removed_ips: removed_ips(status, api_pod.status.as_ref()),
        });
    }
    for (uid, pod) in &store.pods {
        if pod.metadata.deletion_timestamp.is_none() || is_mirror_pod(pod) || with_status.contains(uid) {
            continue;
        }
        if known.contains(uid) || !has_running_containers(pod) {
            actions.push(StatusAction::Delete {
                namespace: pod.metadata.namespace.clone().unwrap_or_default(),
                name: pod.metadata.name.clone().unwrap_or_default(),
                uid: uid.clone(),
            });
        }
    }
    actions
}

/// Applies [`plan`] until shutdown.
pub struct StatusSyncer {
    /// Patches pod statuses and deletes finished pods.
    pub api: Arc<dyn PodApi>,
    /// The kubelet's pod statuses (the status manager), and its changes.
    pub provider: Arc<dyn PodStatusProvider>,
    /// The node's API pods, what the statuses are compared with.
    pub store: watch::Receiver<PodStore>,
    /// Told of every status the API server accepted (the pod startup latency SLI).
    pub startup: Option<Arc<dyn kubelet_types::startup::PodStartupObserver>>,
}

impl StatusSyncer {
    /// Plans and applies the writes on every status or API pod change and every [`SYNC_PERIOD`],
    /// once the pod store has synced, until `shutdown`.
    pub async fn run(mut self, shutdown: CancellationToken) {
        let mut changes = self.provider.subscribe();
        let mut sent: BTreeMap<String, Sent> = BTreeMap::new();
        let mut known: BTreeSet<String> = BTreeSet::new();
        let mut deleting: BTreeSet<String> = BTreeSet::new();
        loop {
            changes.borrow_and_update();
            let pods = self.provider.pods_with_status();
            let finals = self.provider.final_statuses();
            known.extend(pods.iter().filter_map(|p| p.metadata.uid.clone()));
            known.extend(self.provider.removed());
            let store = self.store.borrow_and_update().clone();
            if store.synced {
                let actions = plan_with_finals(&pods, &finals, &store, &sent, &known);
                tracing::debug!(pods = pods.len(), api_pods = store.pods.len(), actions = actions.len(), "status sync round");
                for action in actions {
                    match action {
                        StatusAction::Patch { namespace, name, uid, status, resource_version, removed_conditions, removed_ips } => {
                            let patch = status_patch(&uid, &status, &removed_conditions, &removed_ips);
                            match self.api.patch_pod_status(&namespace, &name, &patch).await {
                                Ok(stored) => {
                                    tracing::debug!(pod = %format!("{namespace}/{name}"), "status updated");
                                    if let Some(observer) = &self.startup {
                                        observer.status_updated(&stored);
                                    }
                                    let stored_version = stored.metadata.resource_version;
                                    sent.insert(uid, Sent { status: fingerprint(&status), resource_version, stored_version });
                                }
                                Err(e) => tracing::warn!(pod = %format!("{namespace}/{name}"), "failed to update status: {e}"),
                            }
                        }
                        StatusAction::Delete { namespace, name, uid } => {
                            if !deleting.insert(uid.clone()) {
                                continue;
                            }
                            match self.api.delete_pod(&namespace, &name, Some(0), Some(&uid)).await {
                                Ok(()) => {
                                    tracing::info!(pod = %format!("{namespace}/{name}"), "pod fully terminated and deleted from the API server")
                                }
                                Err(e) if e.is_not_found() => {}
                                Err(e) => {
                                    deleting.remove(&uid);
                                    tracing::warn!(pod = %format!("{namespace}/{name}"), "failed to delete terminated pod: {e}");
                                }
                            }
                        }
                    }
                }
                // Forget what the API no longer has.
                sent.retain(|uid, _| store.pods.contains_key(uid));
                known.retain(|uid| store.pods.contains_key(uid) || pods.iter().any(|p| p.metadata.uid.as_deref() == Some(uid)));
                deleting.retain(|uid| store.pods.contains_key(uid));
            }
            // Not kept while waiting: the next round takes fresh copies.
            drop((pods, finals, store));
            tokio::select! {
                _ = shutdown.cancelled() => return,
                r = changes.changed() => if r.is_err() { return },
                r = self.store.changed() => if r.is_err() { return },
                _ = tokio::time::sleep(SYNC_PERIOD) => {}
            }
        }
    }
}

#[cfg(test)]
#[path = "status_sync_tests.rs"]
mod tests;
