//! Exponential restart and image-pull backoff (upstream `flowcontrol.Backoff`).
//!
//! Keyed by a stable per-container key. A failure at `event_time` (the container's finish time)
//! starts or doubles the entry's delay, from `initial` up to `max`; an entry not touched for twice
//! `max` (10 minutes with the kubelet's 5 minute cap) is forgotten, which is how a container that ran
//! healthily for a while gets a fresh 10 s delay. Time is passed in, so this module is pure.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

/// Initial delay of the kubelet's container restart backoff.
pub const CONTAINER_BACKOFF_INITIAL: Duration = Duration::from_secs(10);
/// Maximum delay of the kubelet's container restart backoff (CrashLoopBackOff cap).
pub const CONTAINER_BACKOFF_MAX: Duration = Duration::from_secs(300);

#[derive(Clone, Copy, Debug)]
struct Entry {
    backoff: Duration,
    last_update: SystemTime,
}

/// Per-key exponential backoff.
#[derive(Debug)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    entries: HashMap<String, Entry>,
}

impl Default for Backoff {
    fn default() -> Self {
        Self::new(CONTAINER_BACKOFF_INITIAL, CONTAINER_BACKOFF_MAX)
    }
}

fn since(later: SystemTime, earlier: SystemTime) -> Duration {
    later.duration_since(earlier).unwrap_or_default()
}

impl Backoff {
    /// An empty backoff whose delays start at `initial` and double up to `max`.
    pub fn new(initial: Duration, max: Duration) -> Self {
        Self { initial, max, entries: HashMap::new() }
    }

    fn expired(&self, at: SystemTime, entry: &Entry) -> bool {
        since(at, entry.last_update) > 2 * self.max
    }

    /// If `key` is still backing off from an event at `event_time`, how long is left.
    pub fn remaining(&self, key: &str, event_time: SystemTime, now: SystemTime) -> Option<Duration> {
        let entry = self.entries.get(key)?;
        if self.expired(now, entry) {
            return None;
        }
        entry.backoff.checked_sub(since(now, event_time)).filter(|d| !d.is_zero())
    }

    /// If `key` is still backing off from its last recorded failure, how long is left.
    pub fn remaining_since_update(&self, key: &str, now: SystemTime) -> Option<Duration> {
        let entry = self.entries.get(key)?;
        self.remaining(key, entry.last_update, now)
    }

    /// Records a failure at `event_time`: starts the entry at `initial`, or doubles it up to `max`.
    pub fn next(&mut self, key: &str, event_time: SystemTime) {
        let fresh = Entry { backoff: self.initial, last_update: event_time };
        let updated = match self.entries.get(key) {
            Some(e) if !self.expired(event_time, e) => Entry { backoff: (e.backoff * 2).min(self.max), last_update: event_time },
            _ => fresh,
        };
        self.entries.insert(key.to_string(), updated);
    }

    /// Current delay of `key`, if it has an entry.
    pub fn current(&self, key: &str) -> Option<Duration> {
        self.entries.get(key).map(|e| e.backoff)
    }

    /// Forgets `key` (the container is gone for good).
    pub fn reset(&mut self, key: &str) {
        self.entries.remove(key);
    }

    /// Drops entries that expired, so the map does not grow with dead pods.
    pub fn gc(&mut self, now: SystemTime) {
        let max = self.max;
        self.entries.retain(|_, e| since(now, e.last_update) <= 2 * max);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(s)
    }

    #[test]
    fn first_restart_is_immediate_then_doubles_to_the_cap() {
        let mut b = Backoff::default();
        assert_eq!(b.remaining("c", t(100), t(100)), None);
        b.next("c", t(100));
        // Exits again right after the restart: 10 s to wait.
        assert_eq!(b.remaining("c", t(101), t(101)), Some(Duration::from_secs(10)));
        assert_eq!(b.remaining("c", t(101), t(111)), None);
        let mut finish = 111;
        let mut delays = vec![];
        for _ in 0..7 {
            b.next("c", t(finish));
            delays.push(b.current("c").unwrap().as_secs());
            finish += b.current("c").unwrap().as_secs() + 1;
        }
        assert_eq!(delays, vec![20, 40, 80, 160, 300, 300, 300]);
    }

    #[test]
    fn ten_healthy_minutes_reset_the_delay() {
        let mut b = Backoff::default();
        b.next("c", t(0));
        b.next("c", t(20));
        b.next("c", t(60));
        assert_eq!(b.current("c"), Some(Duration::from_secs(40)));
        // Ran for more than 10 minutes before failing again.
        b.next("c", t(60 + 601));
        assert_eq!(b.current("c"), Some(Duration::from_secs(10)));
        assert_eq!(b.remaining("c", t(661), t(661 + 700)), None);
        b.gc(t(661 + 700));
        assert_eq!(b.current("c"), None);
    }
}
