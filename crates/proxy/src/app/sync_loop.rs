//! The sync loop (upstream `BoundedFrequencyRunner` + the proxier's event
//! handlers): feeds watch events to the [`Proxier`], syncs no more often than
//! `minSyncPeriod` after a change and at least every `syncPeriod`, rewrites
//! everything every hour, and publishes health, metrics and health-check
//! servers after each sync. Waits for the first Service and EndpointSlice
//! lists before the first sync, as upstream does. Only `tokio::time`.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use k8s_openapi::api::core::v1::{Node, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::health::ProxierHealth;
use super::metrics::Metrics;
use super::proxier::{Proxier, SyncError, SyncReport};
use super::service_health::ServiceHealthServers;
pub use super::settings::SyncPeriods;
use super::store::Store;
use super::watch::Event;
use crate::topology::{LABEL_TOPOLOGY_ZONE, NodeTopology};

/// Everything the watches send (moved, not copied: variant sizes do not matter).
#[derive(Debug)]
#[allow(clippy::large_enum_variant)]
pub enum ProxyEvent {
    /// A list page or change of the Services the proxy handles.
    Services(Event<Service>),
    /// A list page or change of the EndpointSlices the proxy handles (`v1`, converted from
    /// `v1beta1` on old API servers).
    Slices(Event<EndpointSlice>),
    /// A list page or change of this node's Node object (its zone label).
    Node(Event<Node>),
}

/// What the loop publishes to.
pub struct Outputs {
    /// The proxier health `/healthz` reports: queued on each change, updated after each sync.
    pub health: Arc<ProxierHealth>,
    /// The `kubeproxy_*` metrics, updated as changes queue and after each sync.
    pub metrics: Arc<Metrics>,
    /// The health-check node port servers, resynced with the proxier's after each sync.
    pub health_checks: ServiceHealthServers,
}

/// The node's topology from its Node object.
pub fn node_topology(node: &Node) -> NodeTopology {
    NodeTopology {
        name: node.metadata.name.clone().unwrap_or_default(),
        zone: node.metadata.labels.as_ref().and_then(|l| l.get(LABEL_TOPOLOGY_ZONE)).cloned().unwrap_or_default(),
    }
}

/// Runs until `shutdown` or until every event sender is gone.
pub async fn run(
    mut proxier: Proxier,
    mut events: mpsc::Receiver<ProxyEvent>,
    periods: SyncPeriods,
    mut out: Outputs,
    shutdown: CancellationToken,
) {
    let mut services = Store::<Service>::default();
    let mut slices = Store::<EndpointSlice>::default();
    let (mut services_synced, mut slices_synced) = (false, false);
    let mut dirty = true;
    let mut last_sync: Option<Instant> = None;
    let mut last_full = Instant::now();
    loop {
        let now = Instant::now();
        let ready = services_synced && slices_synced;
        let deadline = match (ready, last_sync) {
            (false, _) => None,
            (true, None) => Some(now),
            (true, Some(t)) if dirty => Some((t + periods.min_sync_period).max(now)),
            (true, Some(t)) => Some(t + periods.sync_period),
        };
        tokio::select! {
            _ = shutdown.cancelled() => break,
            ev = events.recv() => {
                let Some(ev) = ev else { break };
                match ev {
                    ProxyEvent::Services(e) => {
                        services_synced |= matches!(e, Event::List { last: true, .. });
                        for (prev, cur) in services.apply(e) {
                            proxier.on_service(prev.as_ref(), cur.as_ref());
                        }
                    }
                    ProxyEvent::Slices(e) => {
                        slices_synced |= matches!(e, Event::List { last: true, .. });
                        for (prev, cur) in slices.apply(e) {
                            match cur {
                                Some(s) => proxier.on_endpoint_slice(&s, false),
                                None => proxier.on_endpoint_slice(&prev.expect("a deletion has a previous object"), true),
                            }
                        }
                    }
                    ProxyEvent::Node(Event::Applied(n) | Event::Deleted(n)) => proxier.set_node(node_topology(&n)),
                    ProxyEvent::Node(Event::List { items, .. }) => {
                        if let Some(n) = items.first() {
                            proxier.set_node(node_topology(n));
                        }
                    }
                }
                dirty = true;
                out.health.queued(SystemTime::now());
                let (s, e) = proxier.pending();
                out.metrics.set("kubeproxy_sync_proxy_rules_service_changes_pending", s as f64);
                out.metrics.set("kubeproxy_sync_proxy_rules_endpoint_changes_pending", e as f64);
                out.metrics.set("kubeproxy_sync_proxy_rules_last_queued_timestamp_seconds", unix_secs(SystemTime::now()));
            }
            _ = sleep_until(deadline) => {
                let force_full = last_full.elapsed() >= periods.full_sync_period;
                let (p, result, took) = sync_blocking(proxier, force_full).await;
                proxier = p;
                last_sync = Some(Instant::now());
                match result {
                    Ok(report) => {
                        dirty = false;
                        if report.full {
                            last_full = Instant::now();
                        }
                        publish(&proxier, &report, took, &mut out).await;
                    }
                    Err(e) => {
                        tracing::error!("sync failed, retrying: {e}");
                        out.metrics.inc(if proxier.mode() == proxy_config::ProxyMode::NFTables {
                            "kubeproxy_sync_proxy_rules_nftables_sync_failures_total"
                        } else {
                            "kubeproxy_sync_proxy_rules_iptables_restore_failures_total"
                        }, 1.0);
                    }
                }
            }
        }
    }
    out.health_checks.shutdown();
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// Runs the (blocking: it spawns `nft`) sync off the async threads.
async fn sync_blocking(mut proxier: Proxier, force_full: bool) -> (Proxier, Result<SyncReport, SyncError>, Duration) {
    let start = Instant::now();
    let now = std::time::Instant::now();
    let (p, r) = tokio::task::spawn_blocking(move || {
        let r = proxier.sync(now, force_full);
        (proxier, r)
    })
    .await
    .expect("the sync task does not panic");
    (p, r, start.elapsed())
}

fn unix_secs(t: SystemTime) -> f64 {
    t.duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

async fn publish(proxier: &Proxier, report: &SyncReport, took: Duration, out: &mut Outputs) {
    let now = SystemTime::now();
    tracing::debug!(
        full = report.full,
        commands = report.commands,
        services_changed = report.services_changed,
        "synced proxy rules in {took:?}"
    );
    out.health.updated(now);
    let m = &out.metrics;
    m.observe_sync(took.as_secs_f64(), report.full);
    m.set("kubeproxy_sync_proxy_rules_last_timestamp_seconds", unix_secs(now));
    m.set("kubeproxy_sync_proxy_rules_service_changes_pending", 0.0);
    m.set("kubeproxy_sync_proxy_rules_endpoint_changes_pending", 0.0);
    m.set("kubeproxy_sync_proxy_rules_nftables_elements", report.commands as f64);
    m.inc("kubeproxy_conntrack_reconciler_deleted_entries_total", report.conntrack_deleted as f64);
    for t in &report.trigger_times {
        if let Ok(d) = now.duration_since(*t) {
            m.observe_network_programming(d.as_secs_f64());
        }
    }
    if let Some(e) = &report.cleanup_error {
        tracing::warn!("deleting stale chains failed (retried later): {e}");
        m.inc("kubeproxy_sync_proxy_rules_nftables_cleanup_failures_total", 1.0);
    }
    for e in &report.conntrack_errors {
        tracing::warn!("{e}");
    }
    let (internal, external) = proxier.no_local_endpoints();
    m.set_no_local_endpoints(internal, external);
    out.health_checks.sync(&proxier.health_checks()).await;
}
