//! A small map whose entries expire: positive answers after one TTL, negative after another
//! (upstream caches webhook answers this way). Time is `tokio::time`, so tests can pause it.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// Beyond this many entries, expired ones are swept on insert; beyond twice it, the map is cleared.
const SWEEP_AT: usize = 4096;

pub struct TtlCache<K, V> {
    entries: Mutex<HashMap<K, (Instant, V)>>,
    positive_ttl: Duration,
    negative_ttl: Duration,
}

impl<K: Eq + Hash, V: Clone> TtlCache<K, V> {
    pub fn new() -> Self {
        Self { entries: Mutex::new(HashMap::new()), positive_ttl: Duration::ZERO, negative_ttl: Duration::ZERO }
    }

    pub fn set_ttls(&mut self, positive: Duration, negative: Duration) {
        self.positive_ttl = positive;
        self.negative_ttl = negative;
    }

    pub fn get<Q>(&self, key: &Q) -> Option<V>
    where
        K: std::borrow::Borrow<Q>,
        Q: Eq + Hash + ?Sized,
    {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries.get(key).filter(|(until, _)| Instant::now() < *until).map(|(_, v)| v.clone())
    }

    /// Stores `value` for the positive or the negative TTL; a zero TTL stores nothing.
    pub fn insert(&self, key: K, value: V, positive: bool) {
        let ttl = if positive { self.positive_ttl } else { self.negative_ttl };
        if ttl.is_zero() {
            return;
        }
        let now = Instant::now();
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= SWEEP_AT {
            entries.retain(|_, (until, _)| now < *until);
            if entries.len() >= 2 * SWEEP_AT {
                entries.clear();
            }
        }
        entries.insert(key, (now + ttl, value));
    }
}

impl<K: Eq + Hash, V: Clone> Default for TtlCache<K, V> {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn entries_expire_after_their_ttl() {
        let mut c = TtlCache::new();
        c.set_ttls(Duration::from_secs(300), Duration::from_secs(30));
        c.insert("yes", true, true);
        c.insert("no", false, false);
        assert_eq!((c.get("yes"), c.get("no")), (Some(true), Some(false)));
        tokio::time::advance(Duration::from_secs(31)).await;
        assert_eq!((c.get("yes"), c.get("no")), (Some(true), None));
        tokio::time::advance(Duration::from_secs(270)).await;
        assert_eq!(c.get("yes"), None);
        c.set_ttls(Duration::ZERO, Duration::ZERO);
        c.insert("z", true, true);
        assert_eq!(c.get("z"), None);
    }
}
