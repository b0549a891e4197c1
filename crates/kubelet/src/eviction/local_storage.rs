//! Local ephemeral storage limits (upstream `localStorageEviction`, with
//! `localStorageCapacityIsolation`): a pod is evicted when an `emptyDir` holds more than its
//! `sizeLimit`, when its containers' writable layers, logs and local ephemeral volumes hold more
//! than the sum of their `ephemeral-storage` limits, or when one container's writable layer and
//! logs hold more than its own limit — checked in that order, one reason per pod, from the
//! stats collector's latest summary. Pure: pods and summary in, evictions out.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, Pod, Volume};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kubelet_types::resources::binary_si;

use crate::stats::api::{ContainerStats, PodStats, Summary};

/// `kubelet_evictions` signal names of the three checks.
pub const SIGNAL_EMPTY_DIR: &str = "emptydirfs.limit";
/// Signal of a pod whose local ephemeral storage is over the sum of its containers'
/// `ephemeral-storage` limits.
pub const SIGNAL_POD: &str = "ephemeralpodfs.limit";
/// Signal of a pod with one container's writable layer and logs over its own
/// `ephemeral-storage` limit.
pub const SIGNAL_CONTAINER: &str = "ephemeralcontainerfs.limit";

/// Why a pod is to be evicted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Eviction {
    /// The signal evicted for: a node pressure signal (`memory.available`, ...) or a local storage
    /// one ([`SIGNAL_EMPTY_DIR`], [`SIGNAL_POD`], [`SIGNAL_CONTAINER`]); the `kubelet_evictions`
    /// label.
    pub signal: &'static str,
    /// The pod's status message, as upstream words it.
    pub message: String,
    /// The pod's grace period; `None`: immediate (upstream's one second).
    pub grace_seconds: Option<i64>,
}

fn bytes(q: &Quantity) -> Option<u64> {
    let parsed = kubelet_config::quantity::parse(q.0.trim()).ok()?;
    u64::try_from(parsed.value()).ok()
}

fn storage_limit(c: &Container) -> Option<&Quantity> {
    c.resources.as_ref()?.limits.as_ref()?.get("ephemeral-storage")
}

/// Upstream `IsLocalEphemeralVolume`.
pub fn is_local_ephemeral(v: &Volume) -> bool {
    v.git_repo.is_some() || v.config_map.is_some() || v.empty_dir.as_ref().is_some_and(|e| e.medium.as_deref().unwrap_or("").is_empty())
}

/// A restartable init container (`restartPolicy: Always`).
fn is_sidecar(c: &Container) -> bool {
    c.restart_policy.as_deref() == Some("Always")
}

fn used(fs: Option<&crate::stats::api::FsStats>) -> u64 {
    fs.and_then(|f| f.used_bytes).unwrap_or(0)
}

fn container_usage(c: &ContainerStats) -> u64 {
    used(c.rootfs.as_ref()) + used(c.logs.as_ref())
}

/// The evictions due now, by pod UID.
pub fn local_storage_evictions(pods: &[Pod], summary: &Summary) -> BTreeMap<String, Eviction> {
    let stats: BTreeMap<&str, &PodStats> = summary.pods.iter().map(|p| (p.pod_ref.uid.as_str(), p)).collect();
    let mut out = BTreeMap::new();
    for pod in pods {
        let Some(uid) = pod.metadata.uid.as_deref() else { continue };
        let (Some(s), Some(spec)) = (stats.get(uid), pod.spec.as_ref()) else { continue };
        if let Some(e) =
            empty_dir(spec.volumes.as_deref().unwrap_or_default(), s).or_else(|| pod_total(pod, s)).or_else(|| per_container(spec, s))
        {
            out.insert(uid.to_string(), e);
        }
    }
    out
}

fn empty_dir(volumes: &[Volume], s: &PodStats) -> Option<Eviction> {
    volumes.iter().find_map(|v| {
        let e = v.empty_dir.as_ref()?;
        if e.medium.as_deref() == Some("Memory") {
            // tmpfs: the kernel enforces the size.
            return None;
        }
        let limit = e.size_limit.as_ref()?;
        let max = bytes(limit).filter(|b| *b > 0)?;
        let usage = s.volume_stats.iter().find(|vs| vs.name == v.name)?.fs.used_bytes?;
        (usage > max).then(|| Eviction {
            signal: SIGNAL_EMPTY_DIR,
            message: format!("Usage of EmptyDir volume {:?} exceeds the limit {:?}. ", v.name, limit.0),
            grace_seconds: None,
        })
    })
}

fn pod_total(pod: &Pod, s: &PodStats) -> Option<Eviction> {
    let spec = pod.spec.as_ref()?;
    // Upstream `PodLimits`: regular containers and sidecars (restartable init containers) add
    // up; an init container counts with the sidecars started before it.
    let sidecars: Vec<&Container> = spec.init_containers.iter().flatten().filter(|c| is_sidecar(c)).collect();
    let limits: Vec<&Quantity> = spec.containers.iter().chain(sidecars.iter().copied()).filter_map(storage_limit).collect();
    let regular: u64 = limits.iter().filter_map(|q| bytes(q)).sum();
    let mut started_sidecars = 0u64;
    let mut init = 0u64;
    for c in spec.init_containers.iter().flatten() {
        let own = storage_limit(c).and_then(bytes).unwrap_or(0);
        if is_sidecar(c) {
            started_sidecars += own;
            init = init.max(started_sidecars);
        } else {
            init = init.max(started_sidecars + own);
        }
    }
    let total = regular.max(init);
    if total == 0 {
        return None;
    }
    let volumes = spec.volumes.as_deref().unwrap_or_default();
    let local_volumes: u64 = s
        .volume_stats
        .iter()
        .filter(|vs| volumes.iter().any(|v| v.name == vs.name && is_local_ephemeral(v)))
        .map(|vs| vs.fs.used_bytes.unwrap_or(0))
        .sum();
    let usage: u64 = s.containers.iter().map(container_usage).sum::<u64>() + local_volumes;
    // The sum as the API would write it; one limit keeps the form it was given in.
    let shown = match limits.as_slice() {
        [one] if total == regular => one.0.clone(),
        _ => binary_si(i64::try_from(total).unwrap_or(i64::MAX)),
    };
    (usage > total).then(|| Eviction {
        signal: SIGNAL_POD,
        message: format!("Pod ephemeral local storage usage exceeds the total limit of containers {shown}. "),
        grace_seconds: None,
    })
}

fn per_container(spec: &k8s_openapi::api::core::v1::PodSpec, s: &PodStats) -> Option<Eviction> {
    let containers = spec.containers.iter().chain(spec.init_containers.iter().flatten().filter(|c| is_sidecar(c)));
    let containers: Vec<&Container> = containers.collect();
    s.containers.iter().find_map(|cs| {
        let limit = storage_limit(containers.iter().find(|c| c.name == cs.name)?)?;
        let max = bytes(limit)?;
        (container_usage(cs) > max).then(|| Eviction {
            signal: SIGNAL_CONTAINER,
            message: format!("Container {} exceeded its local ephemeral storage limit {:?}. ", cs.name, limit.0),
            grace_seconds: None,
        })
    })
}

#[cfg(test)]
#[path = "local_storage_tests.rs"]
mod tests;
