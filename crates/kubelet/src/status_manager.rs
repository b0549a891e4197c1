//! The status manager: the latest `v1.PodStatus` of every pod this kubelet runs.
//!
//! One writer per pod (its pod worker), many readers (the read-only port's `/pods`, later the API
//! status syncer). It keeps the previously generated status so condition transition times and the
//! start time stay stable. It does not compute statuses; that is [`crate::status`].

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use k8s_openapi::api::core::v1::{Pod, PodStatus as ApiPodStatus};

use crate::server::PodLister;

#[derive(Clone, Debug)]
struct Entry {
    pod: Arc<Pod>,
    status: ApiPodStatus,
}

/// Latest pod statuses, by pod UID.
#[derive(Clone, Default)]
pub struct StatusManager {
    inner: Arc<RwLock<BTreeMap<String, Entry>>>,
    changes: Arc<tokio::sync::Notify>,
}

impl StatusManager {
    /// Records `status` for `pod`; returns whether it differs from the previous one.
    pub fn set_pod_status(&self, pod: Arc<Pod>, status: ApiPodStatus) -> bool {
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        let mut map = self.inner.write().expect("status lock");
        let changed = map.get(&uid).is_none_or(|e| e.status != status);
        map.insert(uid, Entry { pod, status });
        drop(map);
        if changed {
            self.changes.notify_waiters();
        }
        changed
    }

    /// The last status generated for pod `uid`.
    pub fn pod_status(&self, uid: &str) -> Option<ApiPodStatus> {
        self.inner.read().expect("status lock").get(uid).map(|e| e.status.clone())
    }

    /// Forgets a pod that was removed.
    pub fn remove(&self, uid: &str) {
        self.inner.write().expect("status lock").remove(uid);
        self.changes.notify_waiters();
    }

    /// Resolves when any status changes next.
    pub async fn changed(&self) {
        self.changes.notified().await
    }

    /// Every pod with its status filled in.
    pub fn pods_with_status(&self) -> Vec<Pod> {
        self.inner
            .read()
            .expect("status lock")
            .values()
            .map(|e| {
                let mut p = (*e.pod).clone();
                p.status = Some(e.status.clone());
                p
            })
            .collect()
    }
}

impl PodLister for StatusManager {
    fn pods(&self) -> Vec<Pod> {
        self.pods_with_status()
    }
}
