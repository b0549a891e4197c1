//! Resource usage of the node, its pods and containers (upstream's stats provider with
//! cAdvisor): sampled from cgroupfs (v1 and v2), `/proc`, the pods' directories and the
//! runtime's CRI stats by an owned [`collector::StatsCollector`] task on a housekeeping
//! interval, and served from the latest snapshot as `/stats/summary` ([`api`]),
//! `/metrics/resource` ([`resource_metrics`]) and `/metrics/cadvisor` ([`cadvisor_metrics`]).

pub mod api;
pub mod cadvisor_metrics;
pub mod cgroup;
pub mod collector;
pub mod fs;
pub mod host;
pub mod network;
pub mod read;
pub mod resource_metrics;
pub mod runtime_view;
pub mod summary;

pub use collector::{MachineLabels, StatsCollector, StatsConfig, StatsSnapshot, StatsStore};

/// What the endpoints read: the latest snapshot, if one was taken.
pub trait StatsSource: Send + Sync + 'static {
    /// The snapshot of the most recent sampling round; `None` until the collector has published
    /// one.
    fn latest(&self) -> Option<std::sync::Arc<StatsSnapshot>>;
}

impl StatsSource for StatsStore {
    fn latest(&self) -> Option<std::sync::Arc<StatsSnapshot>> {
        StatsStore::latest(self)
    }
}

/// The `/stats/summary` body; `only_cpu_and_memory` keeps just CPU, memory and swap (upstream's
/// `only_cpu_and_memory=true` query).
pub fn summary_json(s: &StatsSnapshot, only_cpu_and_memory: bool) -> Vec<u8> {
    let body = if only_cpu_and_memory {
        let mut summary = s.summary.clone();
        let trim = |c: &mut api::ContainerStats| {
            c.io = None;
            c.rootfs = None;
            c.logs = None;
        };
        summary.node.system_containers.iter_mut().for_each(trim);
        summary.node.io = None;
        summary.node.network = None;
        summary.node.fs = None;
        summary.node.runtime = None;
        summary.node.rlimit = None;
        for p in &mut summary.pods {
            p.containers.iter_mut().for_each(trim);
            p.io = None;
            p.network = None;
            p.volume_stats.clear();
            p.ephemeral_storage = None;
            p.process_stats = None;
        }
        serde_json::to_vec(&summary)
    } else {
        serde_json::to_vec(&s.summary)
    };
    body.unwrap_or_else(|_| b"{}".to_vec())
}
