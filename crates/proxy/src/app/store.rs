//! The sync loop's memory of watched objects: every object's key and the
//! little the proxier needs of one that is gone. Turns the reflector's
//! [`Event`]s — list pages, updates, deletions — into the (previous,
//! current) pairs the change trackers want. The proxier parses each object
//! into its own compact form, so whole objects are not kept here: at 10k
//! Services they had been most of the proxy's heap.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Resource;

use super::watch::Event;
use crate::endpoints::SERVICE_NAME_LABEL;
use crate::endpoints::TRIGGER_TIME_ANNOTATION;

/// What the store keeps of an object once the proxier has parsed it: only
/// enough to announce its deletion after a relist.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Kept {
    /// The `kubernetes.io/service-name` label (EndpointSlices name their Service with it).
    service_name: Option<Box<str>>,
    /// The trigger-time annotation (the network-programming-latency metric reads it).
    trigger_time: Option<Box<str>>,
}

impl Kept {
    fn of(meta: &ObjectMeta) -> Self {
        let get = |m: &Option<BTreeMap<String, String>>, k: &str| m.as_ref().and_then(|m| m.get(k)).map(|v| v.as_str().into());
        Kept { service_name: get(&meta.labels, SERVICE_NAME_LABEL), trigger_time: get(&meta.annotations, TRIGGER_TIME_ANNOTATION) }
    }

    /// A skeleton object: namespace and name from `key`, plus what was kept.
    fn revive<K: Resource + Default>(self, key: &str) -> K {
        let (namespace, name) = key.split_once('/').unwrap_or(("", key));
        let one = |k: &str, v: Option<Box<str>>| v.map(|v| BTreeMap::from([(k.to_string(), String::from(v))]));
        let mut k = K::default();
        *k.meta_mut() = ObjectMeta {
            namespace: (!namespace.is_empty()).then(|| namespace.to_string()),
            name: Some(name.to_string()),
            labels: one(SERVICE_NAME_LABEL, self.service_name),
            annotations: one(TRIGGER_TIME_ANNOTATION, self.trigger_time),
            ..ObjectMeta::default()
        };
        k
    }
}

/// Every object seen, keyed by `namespace/name`; turns reflector events into
/// the (previous, current) pairs the change trackers want. A previous object
/// is a skeleton (namespace, name, service-name label, trigger-time
/// annotation): the trackers read only those of an object that went away.
#[derive(Debug)]
pub struct Store<K> {
    objects: BTreeMap<String, Kept>,
    /// During a (re)list: the objects not listed yet.
    unlisted: BTreeMap<String, Kept>,
    kind: std::marker::PhantomData<fn() -> K>,
}

impl<K> Default for Store<K> {
    fn default() -> Self {
        Store { objects: BTreeMap::new(), unlisted: BTreeMap::new(), kind: std::marker::PhantomData }
    }
}

fn key<K: Resource>(k: &K) -> String {
    let m = k.meta();
    format!("{}/{}", m.namespace.as_deref().unwrap_or_default(), m.name.as_deref().unwrap_or_default())
}

impl<K: Resource + Default> Store<K> {
    /// Applies an event; returns the (previous, current) pair of every object it changed
    /// (`current: None` for deletions, including those implied by a completed list).
    pub fn apply(&mut self, event: Event<K>) -> Vec<(Option<K>, Option<K>)> {
        match event {
            Event::Applied(k) => {
                let id = key(&k);
                let prev = self.objects.insert(id.clone(), Kept::of(k.meta()));
                vec![(prev.map(|p| p.revive(&id)), Some(k))]
            }
            Event::Deleted(k) => {
                self.objects.remove(&key(&k));
                vec![(Some(k), None)]
            }
            Event::List { items, first, last } => {
                if first {
                    // A relist that broke off left `unlisted` objects: still unknown.
                    let mut listed = std::mem::take(&mut self.objects);
                    self.unlisted.append(&mut listed);
                }
                let mut out = Vec::with_capacity(items.len());
                for k in items {
                    let id = key(&k);
                    let prev = self.unlisted.remove(&id).or_else(|| self.objects.remove(&id)).map(|p| p.revive(&id));
                    self.objects.insert(id, Kept::of(k.meta()));
                    out.push((prev, Some(k)));
                }
                if last {
                    let gone = std::mem::take(&mut self.unlisted);
                    out.extend(gone.into_iter().map(|(id, p)| (Some(p.revive(&id)), None)));
                }
                out
            }
        }
    }

    /// Objects known (listed or not yet re-listed).
    pub fn len(&self) -> usize {
        self.objects.len() + self.unlisted.len()
    }

    /// Whether no object is known (listed or not yet re-listed).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::Service;
    use k8s_openapi::api::discovery::v1::EndpointSlice;

    use super::*;

    fn svc(name: &str, rv: &str) -> Service {
        serde_json::from_value(serde_json::json!({"metadata": {"namespace": "ns", "name": name, "resourceVersion": rv}})).unwrap()
    }

    #[test]
    fn reset_deletes_what_is_gone() {
        let mut s = Store::default();
        s.apply(Event::reset(vec![svc("a", "1"), svc("b", "1")]));
        let changes = s.apply(Event::reset(vec![svc("a", "2")]));
        assert_eq!(changes.len(), 2);
        assert!(changes[0].0.is_some() && changes[0].1.is_some());
        assert_eq!(changes[1].0.as_ref().unwrap().metadata.name.as_deref(), Some("b"));
        assert!(changes[1].1.is_none());
        // A watched deletion hands on the object the API server sent.
        let d = s.apply(Event::Deleted(svc("a", "3")));
        assert_eq!(d[0].0.as_ref().unwrap().metadata.resource_version.as_deref(), Some("3"));
        assert!(s.is_empty());
    }

    fn slice(ns: &str, name: &str, service: &str) -> EndpointSlice {
        serde_json::from_value(serde_json::json!({
            "metadata": {"namespace": ns, "name": name, "resourceVersion": "7",
                "labels": {SERVICE_NAME_LABEL: service, "other": "x"},
                "annotations": {TRIGGER_TIME_ANNOTATION: "2020-01-01T00:00:00Z"}},
            "addressType": "IPv4",
            "ports": [{"port": 80}],
            "endpoints": [{"addresses": ["198.18.150.1"]}]}))
        .unwrap()
    }

    #[test]
    fn a_relist_deletion_is_a_skeleton_the_trackers_can_use() {
        let mut s = Store::default();
        s.apply(Event::reset(vec![slice("ns", "s-1", "svc"), slice("", "s-2", "x")]));
        let changes = s.apply(Event::reset(vec![]));
        assert_eq!(changes.len(), 2);
        // Sorted by key: "/s-2" first.
        let gone: &EndpointSlice = changes[1].0.as_ref().unwrap();
        assert!(changes[1].1.is_none());
        let m = &gone.metadata;
        assert_eq!((m.namespace.as_deref(), m.name.as_deref()), (Some("ns"), Some("s-1")));
        assert_eq!(m.labels.as_ref().unwrap().iter().collect::<Vec<_>>(), [(&SERVICE_NAME_LABEL.to_string(), &"svc".to_string())]);
        assert_eq!(m.annotations.as_ref().unwrap()[TRIGGER_TIME_ANNOTATION], "2020-01-01T00:00:00Z");
        assert!(gone.endpoints.as_deref().unwrap_or_default().is_empty() && m.resource_version.is_none());
        let m2 = &changes[0].0.as_ref().unwrap().metadata;
        assert_eq!((m2.namespace.as_deref(), m2.name.as_deref()), (None, Some("s-2")));
        // The endpoints tracker removes the Service's endpoints on that skeleton.
        let mut t = crate::tracker::EndpointsChangeTracker::new(crate::net::IpFamily::V4, "n");
        let mut map = crate::tracker::EndpointsMap::new();
        t.endpoint_slice_update(&slice("ns", "s-1", "svc"), false);
        assert_eq!(t.apply(&mut map).len(), 1);
        assert!(!map.is_empty());
        t.endpoint_slice_update(gone, true);
        assert_eq!(t.apply(&mut map).len(), 1);
        assert!(map.is_empty());
    }

    #[test]
    fn an_update_hands_on_the_new_object_and_a_skeleton_of_the_old() {
        let mut s = Store::default();
        s.apply(Event::Applied(svc("a", "1")));
        let c = s.apply(Event::Applied(svc("a", "2")));
        let (prev, cur) = (c[0].0.as_ref().unwrap(), c[0].1.as_ref().unwrap());
        assert_eq!(prev.metadata.name.as_deref(), Some("a"));
        assert_eq!(prev.metadata.namespace.as_deref(), Some("ns"));
        assert_eq!(cur.metadata.resource_version.as_deref(), Some("2"));
        assert_eq!(s.len(), 1);
    }

    fn page(items: Vec<Service>, first: bool, last: bool) -> Event<Service> {
        Event::List { items, first, last }
    }

    fn names(changes: &[(Option<Service>, Option<Service>)]) -> Vec<(String, bool)> {
        changes
            .iter()
            .map(|(p, c)| {
                let o = c.as_ref().or(p.as_ref()).unwrap();
                (o.metadata.name.clone().unwrap(), c.is_some())
            })
            .collect()
    }

    #[test]
    fn a_paged_relist_deletes_only_after_its_last_page() {
        let mut s = Store::default();
        s.apply(Event::reset(vec![svc("a", "1"), svc("b", "1"), svc("c", "1")]));
        let p1 = s.apply(page(vec![svc("b", "2")], true, false));
        assert_eq!(names(&p1), [("b".into(), true)]);
        assert!(p1[0].0.is_some(), "b was known: its previous is handed on");
        assert_eq!(s.len(), 3, "a and c are not gone before the list completes");
        let p2 = s.apply(page(vec![svc("d", "2")], false, true));
        assert_eq!(names(&p2), [("d".into(), true), ("a".into(), false), ("c".into(), false)]);
        assert!(p2[0].0.is_none(), "d is new");
        assert_eq!(s.len(), 2);
    }

    #[test]
    fn a_relist_that_broke_off_is_completed_by_the_next() {
        let mut s = Store::default();
        s.apply(Event::reset(vec![svc("a", "1"), svc("b", "1")]));
        // First page of a relist, then the list fails; the next relist starts over.
        s.apply(page(vec![svc("a", "2")], true, false));
        let done = s.apply(page(vec![svc("b", "3")], true, true));
        assert_eq!(names(&done), [("b".into(), true), ("a".into(), false)]);
        assert!(done[0].0.is_some());
        assert_eq!(s.len(), 1);
    }
}
