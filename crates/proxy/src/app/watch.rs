//! List-and-watch of one resource type (a minimal reflector, as kube-rs's
//! watcher): list, announce the list as [`Event::Reset`], watch from its
//! resourceVersion, relist after `410 Gone` or any error (with a backoff
//! from 1 s doubling to 30 s). [`Store`] turns those events into the
//! (previous, current) pairs the change trackers want. One writer: the task.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{ListParams, WatchEvent, WatchParams};
use kube::{Api, Resource};
use serde::de::DeserializeOwned;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::proxier::TRIGGER_TIME_ANNOTATION;

/// What a reflector announces.
#[derive(Debug, Clone)]
pub enum Event<K> {
    /// The complete current list (after a (re)list).
    Reset(Vec<K>),
    /// Added or modified.
    Applied(K),
    Deleted(K),
}

/// Field and label selectors of a list/watch.
#[derive(Debug, Clone, Default)]
pub struct Selectors {
    pub fields: Option<String>,
    pub labels: Option<String>,
}

/// Lists and watches `api` until `shutdown`, sending `wrap(event)` on `tx`
/// after converting each object with `map`.
pub async fn reflect<K, T, M>(
    api: Api<K>,
    selectors: Selectors,
    map: fn(K) -> T,
    wrap: fn(Event<T>) -> M,
    tx: mpsc::Sender<M>,
    shutdown: CancellationToken,
) where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + 'static,
{
    let what = K::kind(&()).to_string();
    let mut backoff = Duration::from_secs(1);
    loop {
        let result = tokio::select! {
            _ = shutdown.cancelled() => return,
            r = list_then_watch(&api, &selectors, map, wrap, &tx) => r,
        };
        match result {
            Ok(()) => backoff = Duration::from_secs(1),
            Err(e) => {
                tracing::warn!("watch of {what} failed, relisting in {backoff:?}: {e}");
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(30));
            }
        }
        if tx.is_closed() {
            return;
        }
    }
}

/// One list, then watches until the resourceVersion expires (`Ok`) or an error.
async fn list_then_watch<K, T, M>(
    api: &Api<K>,
    selectors: &Selectors,
    map: fn(K) -> T,
    wrap: fn(Event<T>) -> M,
    tx: &mpsc::Sender<M>,
) -> Result<(), kube::Error>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + 'static,
{
    let mut lp = ListParams::default();
    let mut wp = WatchParams::default().timeout(290);
    if let Some(f) = &selectors.fields {
        lp = lp.fields(f);
        wp = wp.fields(f);
    }
    if let Some(l) = &selectors.labels {
        lp = lp.labels(l);
        wp = wp.labels(l);
    }
    let list = api.list(&lp).await?;
    let mut version = list.metadata.resource_version.clone().unwrap_or_default();
    let _ = tx
        .send(wrap(Event::Reset(
            list.items.into_iter().map(map).collect(),
        )))
        .await;
    loop {
        let mut stream = api.watch(&wp, &version).await?.boxed();
        while let Some(ev) = stream.try_next().await? {
            let (event, rv) = match ev {
                WatchEvent::Added(k) | WatchEvent::Modified(k) => {
                    let rv = k.meta().resource_version.clone();
                    (Some(Event::Applied(map(k))), rv)
                }
                WatchEvent::Deleted(k) => {
                    let rv = k.meta().resource_version.clone();
                    (Some(Event::Deleted(map(k))), rv)
                }
                WatchEvent::Bookmark(b) => (None, Some(b.metadata.resource_version)),
                WatchEvent::Error(status) if status.code == 410 => return Ok(()),
                WatchEvent::Error(status) => return Err(kube::Error::Api(status)),
            };
            if let Some(rv) = rv {
                version = rv;
            }
            if let Some(event) = event
                && tx.send(wrap(event)).await.is_err()
            {
                return Ok(());
            }
        }
    }
}

/// Drops what the proxy never reads but would keep for every stored object:
/// `metadata.managedFields` and annotations (e.g. `last-applied-configuration`).
pub fn slim_service(mut svc: Service) -> Service {
    svc.metadata.managed_fields = None;
    svc.metadata.annotations = None;
    svc
}

/// As [`slim_service`], keeping only the trigger-time annotation the
/// network-programming-latency metric reads.
pub fn slim_slice(mut slice: EndpointSlice) -> EndpointSlice {
    slice.metadata.managed_fields = None;
    if let Some(a) = &mut slice.metadata.annotations {
        a.retain(|k, _| k == TRIGGER_TIME_ANNOTATION);
    }
    slice
}

/// The last known version of every object, keyed by `namespace/name`.
#[derive(Debug)]
pub struct Store<K> {
    objects: BTreeMap<String, K>,
}

impl<K> Default for Store<K> {
    fn default() -> Self {
        Store {
            objects: BTreeMap::new(),
        }
    }
}

fn key<K: Resource>(k: &K) -> String {
    let m = k.meta();
    format!(
        "{}/{}",
        m.namespace.as_deref().unwrap_or_default(),
        m.name.as_deref().unwrap_or_default()
    )
}

impl<K: Resource + Clone> Store<K> {
    /// Applies an event; returns the (previous, current) pair of every object it changed
    /// (`current: None` for deletions, including those implied by a Reset).
    pub fn apply(&mut self, event: Event<K>) -> Vec<(Option<K>, Option<K>)> {
        match event {
            Event::Applied(k) => {
                let prev = self.objects.insert(key(&k), k.clone());
                vec![(prev, Some(k))]
            }
            Event::Deleted(k) => {
                let prev = self.objects.remove(&key(&k));
                vec![(Some(prev.unwrap_or(k)), None)]
            }
            Event::Reset(list) => {
                let mut old = std::mem::take(&mut self.objects);
                let mut out = Vec::new();
                for k in list {
                    let id = key(&k);
                    let prev = old.remove(&id);
                    self.objects.insert(id, k.clone());
                    out.push((prev, Some(k)));
                }
                out.extend(old.into_values().map(|k| (Some(k), None)));
                out
            }
        }
    }

    pub fn len(&self) -> usize {
        self.objects.len()
    }

    pub fn is_empty(&self) -> bool {
        self.objects.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn svc(name: &str, rv: &str) -> Service {
        serde_json::from_value(serde_json::json!({"metadata": {"namespace": "ns", "name": name, "resourceVersion": rv}})).unwrap()
    }

    #[test]
    fn slimming_keeps_only_what_the_proxy_reads() {
        let svc: Service = serde_json::from_value(serde_json::json!({"metadata": {
            "name": "a", "annotations": {"x": "y"},
            "managedFields": [{"manager": "kubectl"}]}, "spec": {"clusterIP": "198.19.0.9"}}))
        .unwrap();
        let svc = slim_service(svc);
        assert!(svc.metadata.managed_fields.is_none() && svc.metadata.annotations.is_none());
        assert_eq!(svc.spec.unwrap().cluster_ip.as_deref(), Some("198.19.0.9"));
        let slice: EndpointSlice = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "s", "managedFields": [{"manager": "m"}], "annotations": {
                "x": "y", TRIGGER_TIME_ANNOTATION: "2020-01-01T00:00:00Z"}},
            "addressType": "IPv4", "endpoints": []}))
        .unwrap();
        let slice = slim_slice(slice);
        assert!(slice.metadata.managed_fields.is_none());
        let keys: Vec<&String> = slice
            .metadata
            .annotations
            .as_ref()
            .unwrap()
            .keys()
            .collect();
        assert_eq!(keys, [TRIGGER_TIME_ANNOTATION]);
    }

    #[test]
    fn reset_deletes_what_is_gone() {
        let mut s = Store::default();
        s.apply(Event::Reset(vec![svc("a", "1"), svc("b", "1")]));
        let changes = s.apply(Event::Reset(vec![svc("a", "2")]));
        assert_eq!(changes.len(), 2);
        assert!(changes[0].0.is_some() && changes[0].1.is_some());
        assert_eq!(
            changes[1].0.as_ref().unwrap().metadata.name.as_deref(),
            Some("b")
        );
        assert!(changes[1].1.is_none());
        let d = s.apply(Event::Deleted(svc("a", "3")));
        assert_eq!(
            d[0].0
                .as_ref()
                .unwrap()
                .metadata
                .resource_version
                .as_deref(),
            Some("2")
        );
        assert!(s.is_empty());
    }
}
