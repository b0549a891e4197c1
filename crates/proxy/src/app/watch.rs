//! List-and-watch of one resource type (a minimal reflector, as kube-rs's
//! watcher): list in pages of [`LIST_PAGE_SIZE`], announce each page as an
//! [`Event::List`], watch from the list's resourceVersion, relist after
//! `410 Gone` or any error (with a backoff from 1 s doubling to 30 s).
//! [`super::store::Store`] turns those events into the (previous, current)
//! pairs the change trackers want. One writer: the task.

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

use crate::endpoints::TRIGGER_TIME_ANNOTATION;

/// Objects per list request (upstream's reflector pages by 500 too). Paging
/// bounds what a list holds at once: at 10k Services one unpaged EndpointSlice
/// list was ~100 MiB of JSON and objects at the same time, and the freed
/// holes stayed in the heap around what the proxier kept.
pub const LIST_PAGE_SIZE: u32 = 500;

/// What a reflector announces.
#[derive(Debug, Clone)]
pub enum Event<K> {
    /// One page of a (re)list. `first` starts it; `last` completes it: the
    /// objects the pages did not list are gone.
    List {
        /// The objects of this page.
        items: Vec<K>,
        /// This page starts a new (re)list.
        first: bool,
        /// This page completes the list.
        last: bool,
    },
    /// Added or modified.
    Applied(K),
    /// Deleted, as last seen.
    Deleted(K),
}

impl<K> Event<K> {
    /// A complete list in one page.
    pub fn reset(items: Vec<K>) -> Self {
        Event::List { items, first: true, last: true }
    }
}

/// Field and label selectors of a list/watch.
#[derive(Debug, Clone, Default)]
pub struct Selectors {
    /// Field selector (e.g. `metadata.name=<node>`); `None` for none.
    pub fields: Option<String>,
    /// Label selector; `None` for none.
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
    let mut lp = ListParams::default().limit(LIST_PAGE_SIZE);
    let mut wp = WatchParams::default().timeout(290);
    if let Some(f) = &selectors.fields {
        lp = lp.fields(f);
        wp = wp.fields(f);
    }
    if let Some(l) = &selectors.labels {
        lp = lp.labels(l);
        wp = wp.labels(l);
    }
    let mut version = String::new();
    let mut first = true;
    loop {
        let page = api.list(&lp).await?;
        version = page.metadata.resource_version.clone().unwrap_or(version);
        let next = page.metadata.continue_.clone().filter(|c| !c.is_empty());
        let event = Event::List { items: page.items.into_iter().map(map).collect(), first, last: next.is_none() };
        if tx.send(wrap(event)).await.is_err() {
            return Ok(());
        }
        first = false;
        match next {
            Some(token) => lp = lp.continue_token(&token),
            None => break,
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

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
        let keys: Vec<&String> = slice.metadata.annotations.as_ref().unwrap().keys().collect();
        assert_eq!(keys, [TRIGGER_TIME_ANNOTATION]);
    }
}
