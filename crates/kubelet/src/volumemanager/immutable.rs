//! Immutable Secrets and ConfigMaps, fetched once (upstream's object managers stop watching an
//! object once it is `immutable: true`): the volume manager keeps such an object while some pod
//! that mounted it is still set up, and reads it from here instead of the API server. When the
//! last of those pods is torn down the object is forgotten, so a deleted and re-created object
//! of the same name is fetched afresh for the next pod.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

/// (namespace, name) → the object and the UIDs of the pods using it.
type Entries<T> = HashMap<(String, String), (T, HashSet<String>)>;

/// Immutable objects of one kind, with the pods using them.
pub struct ImmutableObjects<T> {
    entries: Mutex<Entries<T>>,
}

impl<T> Default for ImmutableObjects<T> {
    fn default() -> Self {
        Self { entries: Mutex::default() }
    }
}

impl<T: Clone> ImmutableObjects<T> {
    /// Object `namespace/name` for pod `uid`: the kept one, else what `fetch` answers, kept when
    /// `immutable` says it is.
    pub async fn get_or_fetch<E>(
        &self,
        namespace: &str,
        name: &str,
        uid: &str,
        immutable: impl Fn(&T) -> bool,
        fetch: impl Future<Output = Result<Option<T>, E>>,
    ) -> Result<Option<T>, E> {
        if let Some(kept) = self.get(namespace, name, uid) {
            return Ok(Some(kept));
        }
        let got = fetch.await?;
        if let Some(object) = got.as_ref().filter(|o| immutable(o)) {
            self.insert(namespace, name, uid, object.clone());
        }
        Ok(got)
    }

    /// The kept object, now also used by pod `uid`.
    fn get(&self, namespace: &str, name: &str, uid: &str) -> Option<T> {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let (object, pods) = entries.get_mut(&(namespace.to_string(), name.to_string()))?;
        pods.insert(uid.to_string());
        Some(object.clone())
    }

    /// Keeps `object` (fetched for pod `uid`, and immutable).
    fn insert(&self, namespace: &str, name: &str, uid: &str, object: T) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let entry = entries.entry((namespace.to_string(), name.to_string())).or_insert_with(|| (object, HashSet::new()));
        entry.1.insert(uid.to_string());
    }

    /// Pod `uid` no longer uses anything; objects nobody uses are forgotten.
    pub fn forget_pod(&self, uid: &str) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.retain(|_, (_, pods)| {
            pods.remove(uid);
            !pods.is_empty()
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kept_while_a_pod_uses_it() {
        let kept = ImmutableObjects::default();
        assert_eq!(kept.get("ns", "a", "p1"), None);
        kept.insert("ns", "a", "p1", 1);
        assert_eq!(kept.get("ns", "a", "p2"), Some(1));
        assert_eq!(kept.get("other", "a", "p1"), None);
        kept.forget_pod("p1");
        assert_eq!(kept.get("ns", "a", "p3"), Some(1), "p2 still uses it");
        kept.forget_pod("p2");
        kept.forget_pod("p3");
        assert_eq!(kept.get("ns", "a", "p1"), None, "forgotten with its last pod");
    }
}
