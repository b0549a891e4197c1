//! The node lease (upstream `component-helpers/apimachinery/lease` controller): a `Lease` named
//! after the node in `kube-node-lease`, held by the node, `leaseDurationSeconds` =
//! nodeLeaseDurationSeconds, renewed every quarter of that, owned by the Node object so it goes
//! away with it.
//!
//! [`desired_lease`] and [`LeaseBackoff`] are pure; [`LeaseController`] is the small I/O loop:
//! update the last lease it wrote; on a conflict or any failure get (or create) the lease again
//! with backoff, up to [`MAX_UPDATE_RETRIES`] updates per renewal.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, OwnerReference};
use tokio_util::sync::CancellationToken;

use crate::api::{LeaseApi, NodeApi};
use crate::error::ApiError;

/// Namespace of node leases.
pub const NODE_LEASE_NAMESPACE: &str = "kube-node-lease";
/// Updates tried per renewal before waiting for the next one.
pub const MAX_UPDATE_RETRIES: usize = 5;
/// Upstream `maxBackoff` while getting or creating the lease.
pub const MAX_BACKOFF: Duration = Duration::from_secs(7);
/// How soon a lease without its Node owner reference is first renewed (then twice as late each
/// time, up to the renew interval, until it has one).
pub const OWNERLESS_RENEW_INTERVAL: Duration = Duration::from_secs(1);

/// Renewal interval: a quarter of the lease duration (upstream `NodeLeaseRenewIntervalFraction`).
pub fn renew_interval(lease_duration_seconds: i32) -> Duration {
    Duration::from_millis(u64::try_from(lease_duration_seconds).unwrap_or(40) * 250)
}

/// The lease to write: `base` (the last one read or written) renewed at `now`, with the node as
/// owner when its UID is known and `base` has no owner yet.
pub fn desired_lease(base: Option<&Lease>, node: &str, duration_seconds: i32, now: MicroTime, node_uid: Option<&str>) -> Lease {
    let mut lease = base.cloned().unwrap_or_else(|| Lease {
        metadata: ObjectMeta { name: Some(node.into()), namespace: Some(NODE_LEASE_NAMESPACE.into()), ..ObjectMeta::default() },
        spec: None,
    });
    let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
    spec.holder_identity = Some(node.into());
    spec.lease_duration_seconds = Some(duration_seconds);
    spec.renew_time = Some(now);
    let owners = lease.metadata.owner_references.get_or_insert_with(Vec::new);
    if let (true, Some(uid)) = (owners.is_empty(), node_uid) {
        owners.push(OwnerReference {
            api_version: "v1".into(),
            kind: "Node".into(),
            name: node.into(),
            uid: uid.into(),
            ..OwnerReference::default()
        });
    }
    if owners.is_empty() {
        lease.metadata.owner_references = None;
    }
    lease
}

/// Removes an owner reference to an earlier Node of this name (another UID than `node_uid`), so
/// the next renewal owns the lease by the current Node. Left alone, the garbage collector would
/// delete the live lease for its deleted owner (a node deleted and re-registered while its lease
/// stayed, or a kubelet started before the collector caught up).
pub fn drop_stale_node_owner(lease: &mut Lease, node: &str, node_uid: &str) {
    if let Some(owners) = lease.metadata.owner_references.as_mut() {
        owners.retain(|o| !(o.kind == "Node" && o.name == node && o.uid != node_uid));
        if owners.is_empty() {
            lease.metadata.owner_references = None;
        }
    }
}

/// Upstream's ensure-lease backoff: 200ms doubling to [`MAX_BACKOFF`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseBackoff(Duration);

impl Default for LeaseBackoff {
    fn default() -> Self {
        LeaseBackoff(Duration::from_millis(200))
    }
}

impl LeaseBackoff {
    /// The next wait, doubling the one after it.
    pub fn next_wait(&mut self) -> Duration {
        let wait = self.0;
        self.0 = (self.0 * 2).min(MAX_BACKOFF);
        wait
    }
}

/// Keeps the node's lease renewed.
pub struct LeaseController {
    /// Reads, creates and updates the lease in `kube-node-lease`.
    pub leases: Arc<dyn LeaseApi>,
    /// Reads the Node object, whose UID makes it the lease's owner.
    pub nodes: Arc<dyn NodeApi>,
    /// This node's name: the lease's name and `holderIdentity`.
    pub node_name: String,
    /// `nodeLeaseDurationSeconds` of the KubeletConfiguration (default 40): the lease's
    /// `leaseDurationSeconds`; it is renewed every quarter of it.
    pub duration_seconds: i32,
    /// The wall clock as a `MicroTime` (injected for tests).
    pub clock: fn() -> MicroTime,
}

/// `MicroTime` of the current wall-clock time.
pub fn micro_now() -> MicroTime {
    MicroTime(k8s_openapi::jiff::Timestamp::now())
}

impl LeaseController {
    /// Renews the lease every quarter of its duration until `shutdown`.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut latest: Option<Lease> = None;
        let interval = renew_interval(self.duration_seconds);
        let mut ownerless_wait = OWNERLESS_RENEW_INTERVAL;
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = self.sync(&mut latest, &shutdown) => {}
            }
            // A lease made before the Node was registered has no owner yet: renew it soon, so it
            // gets one about when the node does (the node can be Ready within a second); 1 s,
            // doubling up to the renew interval if the Node does not come.
            let ownerless = latest.as_ref().is_some_and(|l| l.metadata.owner_references.as_ref().is_none_or(|o| o.is_empty()));
            let wait = if ownerless { interval.min(ownerless_wait) } else { interval };
            ownerless_wait = if ownerless { (ownerless_wait * 2).min(interval) } else { OWNERLESS_RENEW_INTERVAL };
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// One renewal: update the last lease, or ensure one exists and update it.
    pub async fn sync(&self, latest: &mut Option<Lease>, shutdown: &CancellationToken) {
        if let Some(base) = latest.as_ref() {
            match self.update(base).await {
                Ok(l) => {
                    *latest = Some(l);
                    return;
                }
                Err(e) => tracing::info!(node = %self.node_name, "failed to update the node lease, getting it again: {e}"),
            }
        }
        let Some((lease, created)) = self.ensure_with_backoff(shutdown).await else { return };
        if created {
            *latest = Some(lease);
            return;
        }
        let mut base = lease;
        for attempt in 0..MAX_UPDATE_RETRIES {
            match self.update(&base).await {
                Ok(l) => {
                    *latest = Some(l);
                    return;
                }
                Err(e) => {
                    tracing::warn!(node = %self.node_name, attempt, "failed to update the node lease: {e}");
                    if e.is_conflict() || e.is_not_found() {
                        match self.ensure_with_backoff(shutdown).await {
                            Some((_, true)) => return,
                            Some((l, false)) => base = l,
                            None => return,
                        }
                    }
                }
            }
        }
        *latest = None;
    }

    async fn node_uid(&self) -> Option<String> {
        self.nodes.get_node(&self.node_name).await.ok().flatten().and_then(|n| n.metadata.uid)
    }

    async fn update(&self, base: &Lease) -> Result<Lease, ApiError> {
        let uid = if base.metadata.owner_references.as_ref().is_none_or(|o| o.is_empty()) { self.node_uid().await } else { None };
        let lease = desired_lease(Some(base), &self.node_name, self.duration_seconds, (self.clock)(), uid.as_deref());
        self.leases.update_lease(&lease).await
    }

    /// Gets the lease, creating it when missing; `(lease, created)`. `None` on shutdown.
    async fn ensure_with_backoff(&self, shutdown: &CancellationToken) -> Option<(Lease, bool)> {
        let mut backoff = LeaseBackoff::default();
        loop {
            match self.ensure().await {
                Ok(found) => return Some(found),
                Err(e) => {
                    let wait = backoff.next_wait();
                    tracing::warn!(node = %self.node_name, "failed to ensure the node lease exists, retrying in {wait:?}: {e}");
                    tokio::select! {
                        _ = shutdown.cancelled() => return None,
                        _ = tokio::time::sleep(wait) => {}
                    }
                }
            }
        }
    }

    async fn ensure(&self) -> Result<(Lease, bool), ApiError> {
        if let Some(mut lease) = self.leases.get_lease(NODE_LEASE_NAMESPACE, &self.node_name).await? {
            if lease.metadata.owner_references.as_ref().is_some_and(|o| !o.is_empty())
                && let Some(uid) = self.node_uid().await
            {
                drop_stale_node_owner(&mut lease, &self.node_name, &uid);
            }
            return Ok((lease, false));
        }
        let uid = self.node_uid().await;
        let lease = desired_lease(None, &self.node_name, self.duration_seconds, (self.clock)(), uid.as_deref());
        Ok((self.leases.create_lease(&lease).await?, true))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::jiff::Timestamp;

    fn mt(s: i64) -> MicroTime {
        MicroTime(Timestamp::from_second(s).unwrap())
    }

    #[test]
    fn new_lease_is_held_and_owned_by_the_node() {
        let l = desired_lease(None, "n1", 40, mt(5), Some("uid-1"));
        assert_eq!(l.metadata.namespace.as_deref(), Some("kube-node-lease"));
        assert_eq!(l.metadata.name.as_deref(), Some("n1"));
        let spec = l.spec.clone().unwrap();
        assert_eq!((spec.holder_identity.as_deref(), spec.lease_duration_seconds, spec.renew_time), (Some("n1"), Some(40), Some(mt(5))));
        let owner = &l.metadata.owner_references.unwrap()[0];
        assert_eq!(
            (owner.kind.as_str(), owner.name.as_str(), owner.uid.as_str(), owner.api_version.as_str()),
            ("Node", "n1", "uid-1", "v1")
        );
    }

    #[test]
    fn renewal_keeps_metadata_and_moves_renew_time() {
        let mut base = desired_lease(None, "n1", 40, mt(5), None);
        assert!(base.metadata.owner_references.is_none(), "no owner before the node exists");
        base.metadata.resource_version = Some("7".into());
        let renewed = desired_lease(Some(&base), "n1", 40, mt(15), Some("uid-2"));
        assert_eq!(renewed.metadata.resource_version.as_deref(), Some("7"));
        assert_eq!(renewed.spec.unwrap().renew_time, Some(mt(15)));
        assert_eq!(renewed.metadata.owner_references.unwrap()[0].uid, "uid-2");
    }

    #[test]
    fn a_stale_node_owner_is_replaced_by_the_current_node() {
        let mut lease = desired_lease(None, "n1", 40, mt(5), Some("old-uid"));
        let other = OwnerReference {
            api_version: "v1".into(),
            kind: "Node".into(),
            name: "n2".into(),
            uid: "x".into(),
            ..OwnerReference::default()
        };
        lease.metadata.owner_references.as_mut().unwrap().push(other.clone());
        drop_stale_node_owner(&mut lease, "n1", "new-uid");
        assert_eq!(lease.metadata.owner_references.as_deref(), Some(&[other][..]), "only the old n1 owner goes");
        let mut lease = desired_lease(None, "n1", 40, mt(5), Some("old-uid"));
        drop_stale_node_owner(&mut lease, "n1", "new-uid");
        let renewed = desired_lease(Some(&lease), "n1", 40, mt(15), Some("new-uid"));
        assert_eq!(renewed.metadata.owner_references.unwrap()[0].uid, "new-uid");
        let mut current = desired_lease(None, "n1", 40, mt(5), Some("uid"));
        drop_stale_node_owner(&mut current, "n1", "uid");
        assert_eq!(current.metadata.owner_references.unwrap()[0].uid, "uid", "the current owner stays");
    }

    #[test]
    fn renew_interval_is_a_quarter() {
        assert_eq!(renew_interval(40), Duration::from_secs(10));
        assert_eq!(renew_interval(10), Duration::from_millis(2500));
    }

    #[test]
    fn backoff_doubles_to_seven_seconds() {
        let mut b = LeaseBackoff::default();
        let waits: Vec<u64> = (0..7).map(|_| b.next_wait().as_millis() as u64).collect();
        assert_eq!(waits, [200, 400, 800, 1600, 3200, 6400, 7000]);
    }
}
