//! Evicting pods to relieve node pressure (upstream `managerImpl.synchronize`, after its
//! node-level reclaim): when a threshold has been met for its grace period, the signal to relieve
//! is chosen (memory first, then disk, then PIDs), the node's non-critical pods are ranked as
//! upstream ranks them, and the first one is evicted with upstream's message. Pure: the met
//! thresholds, pods and stats summary in, one eviction out.
//!
//! Rankings (upstream `rankMemoryPressure`, `rankDiskPressureFunc`, `rankPIDPressure`):
//! - memory: pods using more than they request first, then lower priority first, then the
//!   largest use above the request;
//! - disk bytes: the same with the pod's local ephemeral storage (writable layers, logs, local
//!   volumes) against its `ephemeral-storage` request; inodes: priority, then inodes used;
//! - PIDs: priority, then process count.
//!
//! Pods without stats rank first (upstream: nothing is known that would spare them).

use std::cmp::Ordering;

use k8s_openapi::api::core::v1::Pod;
use kubelet_types::resources::binary_si;

use super::local_storage::Eviction;
use super::thresholds::{Observation, Threshold};
use crate::cm::pod_cgroups::pod_request;
use crate::stats::api::{PodStats, Summary};

/// A threshold met past its grace period, with what was observed.
#[derive(Debug, Clone, PartialEq)]
pub struct MetThreshold {
    /// The threshold that is met.
    pub threshold: Threshold,
    /// The signal as observed in the round that found it met.
    pub observation: Observation,
}

/// What relieving a signal reclaims (upstream's `signalToResource`), as messages name it.
pub fn resource_of(signal: &str) -> Option<&'static str> {
    match signal {
        "memory.available" | "allocatableMemory.available" => Some("memory"),
        "nodefs.available" | "imagefs.available" | "containerfs.available" => Some("ephemeral-storage"),
        "nodefs.inodesFree" | "imagefs.inodesFree" | "containerfs.inodesFree" => Some("inodes"),
        "pid.available" => Some("pids"),
        _ => None,
    }
}

/// Upstream's order of relief: memory, then disk, then PIDs.
fn relief_order(signal: &str) -> u8 {
    match resource_of(signal) {
        Some("memory") => 0,
        Some("ephemeral-storage") => 1,
        Some("inodes") => 2,
        _ => 3,
    }
}

/// The threshold to relieve first among those met.
pub fn to_relieve(met: &[MetThreshold]) -> Option<&MetThreshold> {
    met.iter().filter(|m| resource_of(&m.threshold.signal).is_some()).min_by_key(|m| relief_order(&m.threshold.signal))
}

/// A pod's use of `resource` as the ranking measures it; `None` without stats.
fn usage(resource: &str, s: &PodStats) -> Option<i64> {
    let v = match resource {
        "memory" => s.memory.as_ref()?.working_set_bytes?,
        "ephemeral-storage" => s.ephemeral_storage.as_ref()?.used_bytes?,
        "inodes" => s.ephemeral_storage.as_ref()?.inodes_used?,
        "pids" => s.process_stats.as_ref()?.process_count?,
        _ => return None,
    };
    i64::try_from(v).ok()
}

/// What a pod requests of `resource` (inodes and PIDs cannot be requested).
fn request(resource: &str, pod: &Pod) -> i64 {
    match resource {
        "memory" | "ephemeral-storage" => pod_request(pod, resource),
        _ => 0,
    }
}

fn priority(pod: &Pod) -> i32 {
    pod.spec.as_ref().and_then(|s| s.priority).unwrap_or(0)
}

/// Upstream's comparators: `Less` puts the first pod first. Where either pod's use is unknown,
/// the unknown one goes first (`cmpBool(!found1, !found2)`).
fn unknown_first(u1: Option<i64>, u2: Option<i64>) -> Option<Ordering> {
    match (u1, u2) {
        (Some(_), Some(_)) => None,
        _ => Some(u2.is_none().cmp(&u1.is_none())),
    }
}

/// Ranks `pods` (with their stats) for relieving `resource`: the first is evicted first.
/// Memory and disk bytes: use above request first, then priority, then use above request;
/// inodes and PIDs: priority, then use (upstream `rankMemoryPressure`, `rankDiskPressureFunc`,
/// `rankPIDPressure`).
pub fn rank<'a>(resource: &str, mut pods: Vec<(&'a Pod, Option<&'a PodStats>)>) -> Vec<(&'a Pod, Option<&'a PodStats>)> {
    let requests_apply = matches!(resource, "memory" | "ephemeral-storage");
    pods.sort_by(|(p1, s1), (p2, s2)| {
        let (u1, u2) = (s1.and_then(|s| usage(resource, s)), s2.and_then(|s| usage(resource, s)));
        let (r1, r2) = (request(resource, p1), request(resource, p2));
        let exceeds = || {
            if !requests_apply {
                return Ordering::Equal;
            }
            unknown_first(u1, u2).unwrap_or_else(|| (u2.unwrap_or(0) > r2).cmp(&(u1.unwrap_or(0) > r1)))
        };
        let by_priority = || priority(p1).cmp(&priority(p2));
        let by_use = || unknown_first(u1, u2).unwrap_or_else(|| (u2.unwrap_or(0) - r2).cmp(&(u1.unwrap_or(0) - r1)));
        exceeds().then_with(by_priority).then_with(by_use)
    });
    pods
}

fn shown(resource: &str, n: i64) -> String {
    if matches!(resource, "memory" | "ephemeral-storage") { binary_si(n) } else { n.to_string() }
}

/// Upstream's eviction message: the resource, the threshold and what was available, and each
/// container using more memory or storage than it requests.
pub fn message(resource: &str, met: &MetThreshold, pod: &Pod, stats: Option<&PodStats>) -> String {
    let quantity = met.threshold.value.quantity_for(met.observation.capacity);
    let mut m = format!(
        "The node was low on resource: {resource}. Threshold quantity: {}, available: {}. ",
        shown(resource, quantity),
        shown(resource, met.observation.available)
    );
    let (Some(stats), Some(spec)) = (stats, pod.spec.as_ref()) else { return m };
    if !matches!(resource, "memory" | "ephemeral-storage") {
        return m;
    }
    let containers: Vec<_> = spec.containers.iter().chain(spec.init_containers.iter().flatten()).collect();
    for cs in &stats.containers {
        let Some(c) = containers.iter().find(|c| c.name == cs.name) else { continue };
        let requested = c.resources.as_ref().and_then(|r| r.requests.as_ref()).and_then(|r| r.get(resource));
        let used = match resource {
            "memory" => cs.memory.as_ref().and_then(|m| m.working_set_bytes),
            _ => match (cs.rootfs.as_ref().and_then(|f| f.used_bytes), cs.logs.as_ref().and_then(|f| f.used_bytes)) {
                (Some(a), Some(b)) => Some(a + b),
                _ => None,
            },
        };
        let Some(used) = used.and_then(|u| i64::try_from(u).ok()) else { continue };
        let requested_bytes = requested.and_then(|q| kubelet_config::quantity::parse(q.0.trim()).ok()).map_or(0, |q| q.value());
        if used > requested_bytes {
            let req = requested.map_or_else(|| "0".to_string(), |q| q.0.clone());
            m.push_str(&format!(
                "Container {} was using {}, request is {req}, has larger consumption of {resource}. ",
                c.name,
                binary_si(used)
            ));
        }
    }
    m
}

/// The grace period of an eviction (upstream: a hard threshold's is immediate; a soft one's
/// is `evictionMaxPodGracePeriod`, or the pod's own when shorter). `None`: immediate.
pub fn grace_seconds(met: &MetThreshold, pod: &Pod, max_pod_grace: i64) -> Option<i64> {
    met.threshold.grace_period?;
    let own = pod.spec.as_ref().and_then(|s| s.termination_grace_period_seconds);
    Some(own.map_or(max_pod_grace, |g| g.min(max_pod_grace)))
}

/// The pod to evict to relieve the most pressing of `met`, and why; `pods` are the candidates
/// (active, not critical).
pub fn pick(met: &[MetThreshold], pods: &[Pod], summary: &Summary, max_pod_grace: i64) -> Option<(String, Eviction)> {
    let relieve = to_relieve(met)?;
    let resource = resource_of(&relieve.threshold.signal)?;
    let with_stats =
        pods.iter().map(|p| (p, summary.pods.iter().find(|s| Some(s.pod_ref.uid.as_str()) == p.metadata.uid.as_deref()))).collect();
    let (pod, stats) = rank(resource, with_stats).into_iter().next()?;
    let signal = signal_name(&relieve.threshold.signal);
    let eviction =
        Eviction { signal, message: message(resource, relieve, pod, stats), grace_seconds: grace_seconds(relieve, pod, max_pod_grace) };
    Some((pod.metadata.uid.clone()?, eviction))
}

/// The signal as a `'static` name for `kubelet_evictions` (one of upstream's signals).
fn signal_name(signal: &str) -> &'static str {
    kubelet_config::eviction::SIGNALS.iter().find(|s| **s == signal).copied().unwrap_or("unknown")
}

#[cfg(test)]
#[path = "node_pressure_tests.rs"]
mod tests;
