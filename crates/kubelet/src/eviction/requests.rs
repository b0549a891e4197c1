//! Evictions the eviction manager decided and the pod workers carry out: the manager files one
//! per pod (a pod already filed keeps its first reason) and pokes the pod's worker, whose next
//! sync takes it, fails the pod with reason `Evicted` and stops its containers.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use k8s_openapi::api::core::v1::Pod;
use tokio::sync::mpsc;

use super::local_storage::Eviction;
use crate::kuberuntime::labels::PodRef;

/// Pending evictions, shared by the eviction manager (writer) and the pod workers (takers).
#[derive(Clone, Default)]
pub struct EvictionRequests {
    pending: Arc<Mutex<HashMap<String, Eviction>>>,
    /// Wakes the pod's worker (the sync loop's poke channel).
    poke: Option<mpsc::UnboundedSender<PodRef>>,
}

impl EvictionRequests {
    /// No evictions pending; filing one sends the pod to `poke` to wake its worker.
    pub fn new(poke: mpsc::UnboundedSender<PodRef>) -> Self {
        EvictionRequests { pending: Arc::default(), poke: Some(poke) }
    }

    /// Files the eviction of `pod`; `false` when one was already pending.
    pub fn request(&self, pod: &Pod, eviction: Eviction) -> bool {
        let Some(uid) = pod.metadata.uid.clone() else { return false };
        let filed = {
            let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
            if pending.contains_key(&uid) {
                false
            } else {
                pending.insert(uid.clone(), eviction);
                true
            }
        };
        if filed && let Some(p) = &self.poke {
            let name = pod.metadata.name.clone().unwrap_or_default();
            let namespace = pod.metadata.namespace.clone().unwrap_or_else(|| "default".into());
            let _ = p.send(PodRef { uid, name, namespace });
        }
        filed
    }

    /// The pending eviction of pod `uid`, if any, removed.
    pub fn take(&self, uid: &str) -> Option<Eviction> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner()).remove(uid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_request_per_pod_and_the_worker_is_poked() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let q = EvictionRequests::new(tx);
        let mut pod = Pod::default();
        pod.metadata.uid = Some("u".into());
        pod.metadata.name = Some("web".into());
        let e = Eviction { signal: "emptydirfs.limit", message: "first".into(), grace_seconds: None };
        assert!(q.request(&pod, e.clone()));
        assert!(!q.request(&pod, Eviction { signal: "x", message: "second".into(), grace_seconds: None }));
        assert_eq!(rx.try_recv().unwrap().uid, "u");
        assert!(rx.try_recv().is_err(), "poked once");
        assert_eq!(q.take("u"), Some(e));
        assert_eq!(q.take("u"), None);
    }
}
