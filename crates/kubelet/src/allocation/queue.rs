//! The order in which deferred resizes get the node's room (upstream 1.35's prioritized
//! resizes, `sortPendingResizes`).
//!
//! When room frees up (a pod goes, another pod's resize gives some back), the deferred resizes
//! are tried again one after the other, each against what the ones before it took. The order:
//! resizes that do not raise the pod's requests first (they fit unless the node is already
//! overcommitted), then higher pod `priority`, then Guaranteed pods before the others, then the
//! one deferred longest (after a kubelet restart, by the transition time of the `Deferred`
//! condition the API holds).

use std::cmp::Reverse;

/// What ranks one deferred resize against the others.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResizeRank {
    /// The resize raises the pod's CPU or memory requests.
    pub raises_requests: bool,
    /// The pod's `spec.priority` (0 when unset).
    pub priority: i32,
    /// The pod is of the Guaranteed QoS class.
    pub guaranteed: bool,
    /// When the resize was first deferred, in seconds since the epoch, as the API's condition
    /// says after a kubelet restart; `i64::MAX` (last) when this kubelet deferred it first.
    pub deferred_since: i64,
    /// In which order this kubelet deferred it (smaller: earlier).
    pub deferred_seq: u64,
}

impl ResizeRank {
    /// The sort key: smaller goes first.
    pub fn key(&self) -> (bool, Reverse<i32>, bool, i64, u64) {
        (self.raises_requests, Reverse(self.priority), !self.guaranteed, self.deferred_since, self.deferred_seq)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rank(raises_requests: bool, priority: i32, guaranteed: bool, deferred_seq: u64) -> ResizeRank {
        ResizeRank { raises_requests, priority, guaranteed, deferred_since: i64::MAX, deferred_seq }
    }

    #[test]
    fn lowering_first_then_priority_then_guaranteed_then_the_oldest() {
        let mut ranks = [
            rank(true, 0, false, 1),
            rank(true, 0, true, 5),
            rank(true, 1000, false, 9),
            rank(false, -5, false, 8),
            rank(true, 0, false, 0),
        ];
        ranks.sort_by_key(ResizeRank::key);
        assert_eq!(
            ranks,
            [
                rank(false, -5, false, 8),
                rank(true, 1000, false, 9),
                rank(true, 0, true, 5),
                rank(true, 0, false, 0),
                rank(true, 0, false, 1)
            ]
        );
        // A resize the API says was deferred before a kubelet restart goes before those this
        // kubelet deferred since.
        let restored = ResizeRank { deferred_since: 1_700_000_000, ..rank(true, 0, false, 7) };
        let mut ranks = [rank(true, 0, false, 0), restored];
        ranks.sort_by_key(ResizeRank::key);
        assert_eq!(ranks[0], restored);
    }
}
