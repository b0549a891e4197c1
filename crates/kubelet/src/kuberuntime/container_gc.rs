//! Dead containers and sandboxes removed to free disk (upstream's container GC, in the form
//! eviction's node-level reclaim calls it: `DeleteAllUnusedContainers`, which garbage-collects
//! with `evictNonDeletedPods`).
//!
//! A pod whose runtime may be removed (in a terminal phase) loses every dead container and every stopped sandbox left without containers; any
//! other pod keeps the newest dead instance of each container (what `lastState` and
//! `kubectl logs --previous` read) and its newest sandbox. Running containers and ready
//! sandboxes are never touched. Removing a container removes its log files and the legacy
//! `/var/log/containers` link as the runtime manager does.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;

use kubelet_cri::{CriError, RuntimeService, api};

use super::labels::{CONTAINER_NAME, POD_NAME, POD_NAMESPACE, POD_UID};
use super::pod_dirs::legacy_log_symlink;

/// What a reclaim removed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RemovedContainers {
    /// Dead containers removed.
    pub containers: usize,
    /// Stopped pod sandboxes removed.
    pub sandboxes: usize,
    /// The removed containers' writable layers and logs, as far as the runtime and the log
    /// files tell.
    pub bytes: u64,
}

/// Removes a container, then its log files and legacy log link (upstream `removeContainer`
/// and `removeContainerLog`). A container already gone is not an error.
pub async fn remove_container_and_logs(runtime: &dyn RuntimeService, container_logs_dir: &Path, id: &str) -> Result<u64, CriError> {
    let status = runtime.container_status(id).await.ok();
    match runtime.remove_container(id).await {
        Err(e) if !e.is_not_found() => return Err(e),
        _ => {}
    }
    let Some(s) = status else { return Ok(0) };
    let mut freed = 0;
    if !s.log_path.is_empty() {
        freed = log_bytes(Path::new(&s.log_path));
        crate::logs::rotation::remove_all(Path::new(&s.log_path));
    }
    let label = |k: &str| s.labels.get(k).cloned().unwrap_or_default();
    let _ =
        std::fs::remove_file(legacy_log_symlink(container_logs_dir, &label(POD_NAME), &label(POD_NAMESPACE), &label(CONTAINER_NAME), id));
    Ok(freed)
}

/// Bytes of a container's log and its rotated files (`<log>.<timestamp>[.gz]`).
fn log_bytes(log: &Path) -> u64 {
    let (Some(dir), Some(name)) = (log.parent(), log.file_name().and_then(|n| n.to_str())) else { return 0 };
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    entries
        .flatten()
        .filter(|e| e.file_name().to_str().is_some_and(|f| f == name || f.starts_with(&format!("{name}."))))
        .filter_map(|e| e.metadata().ok())
        .map(|m| m.len())
        .sum()
}

/// The dead (not running) containers to remove: all of a removable pod's, else all but the
/// newest of each container name. Containers without a pod UID label are not the kubelet's.
pub fn containers_to_remove<'a>(containers: &'a [api::Container], removable_pod: &dyn Fn(&str) -> bool) -> Vec<&'a api::Container> {
    let mut dead: BTreeMap<(&str, &str), Vec<&api::Container>> = BTreeMap::new();
    // Every container not running is evictable, as upstream's (created and unknown too).
    for c in containers.iter().filter(|c| c.state != api::ContainerState::ContainerRunning as i32) {
        let (Some(uid), Some(name)) = (c.labels.get(POD_UID), c.labels.get(CONTAINER_NAME)) else { continue };
        dead.entry((uid.as_str(), name.as_str())).or_default().push(c);
    }
    let mut out = Vec::new();
    for ((uid, _), mut instances) in dead {
        instances.sort_by_key(|c| std::cmp::Reverse(c.created_at));
        let keep = usize::from(!removable_pod(uid));
        out.extend(instances.into_iter().skip(keep));
    }
    out
}

/// The stopped sandboxes to remove once `remaining` containers are gone: those without
/// containers, all of a removable pod's, else all but the pod's newest sandbox.
pub fn sandboxes_to_remove<'a>(
    sandboxes: &'a [api::PodSandbox],
    remaining: &[&api::Container],
    removable_pod: &dyn Fn(&str) -> bool,
) -> Vec<&'a api::PodSandbox> {
    let mut by_pod: BTreeMap<&str, Vec<&api::PodSandbox>> = BTreeMap::new();
    for s in sandboxes {
        if let Some(uid) = s.metadata.as_ref().map(|m| m.uid.as_str()).filter(|u| !u.is_empty()) {
            by_pod.entry(uid).or_default().push(s);
        }
    }
    let mut out = Vec::new();
    for (uid, mut all) in by_pod {
        all.sort_by_key(|s| std::cmp::Reverse(s.created_at));
        let keep = usize::from(!removable_pod(uid));
        let newest = all.iter().take(keep).map(|s| s.id.as_str()).collect::<Vec<_>>();
        out.extend(all.into_iter().filter(|s| {
            s.state == api::PodSandboxState::SandboxNotready as i32
                && !newest.contains(&s.id.as_str())
                && !remaining.iter().any(|c| c.pod_sandbox_id == s.id)
        }));
    }
    out
}

/// Removes what [`containers_to_remove`] and [`sandboxes_to_remove`] select. Failures are
/// logged and skipped: the rest is still reclaimed.
pub async fn delete_all_unused_containers(
    runtime: &dyn RuntimeService,
    container_logs_dir: &Path,
    removable_pod: &(dyn Fn(&str) -> bool + Sync),
) -> Result<RemovedContainers, CriError> {
    let containers = runtime.list_containers(None).await?;
    let doomed = containers_to_remove(&containers, removable_pod);
    let layers: HashMap<String, u64> = match runtime.list_container_stats(None).await {
        Ok(stats) => stats
            .into_iter()
            .filter_map(|s| Some((s.attributes?.id, s.writable_layer.and_then(|w| w.used_bytes).map_or(0, |u| u.value))))
            .collect(),
        Err(_) => HashMap::new(),
    };
    let mut removed = RemovedContainers::default();
    let mut failed = Vec::new();
    for c in &doomed {
        match remove_container_and_logs(runtime, container_logs_dir, &c.id).await {
            Ok(log) => {
                removed.containers += 1;
                removed.bytes += log + layers.get(&c.id).copied().unwrap_or(0);
            }
            Err(e) => {
                tracing::warn!(container = %c.id, "removing a dead container to free disk: {e}");
                failed.push(c.id.as_str());
            }
        }
    }
    let remaining: Vec<&api::Container> =
        containers.iter().filter(|c| failed.contains(&c.id.as_str()) || !doomed.iter().any(|d| d.id == c.id)).collect();
    let sandboxes = runtime.list_pod_sandbox(None).await?;
    for s in sandboxes_to_remove(&sandboxes, &remaining, removable_pod) {
        match runtime.remove_pod_sandbox(&s.id).await {
            Ok(()) => removed.sandboxes += 1,
            Err(e) => tracing::warn!(sandbox = %s.id, "removing a stopped sandbox to free disk: {e}"),
        }
    }
    Ok(removed)
}

/// Eviction's container reclaim: the runtime, where logs links live, and which pods may lose
/// everything: those in a terminal phase. Pods the kubelet does not know yet keep their newest
/// instances (a pod just admitted has no status yet, and its finished init containers must
/// stay); the housekeeping's orphan sweep removes the runtime of pods gone for good.
pub struct ContainerReclaim {
    /// The CRI runtime service to list and remove containers and sandboxes through.
    pub runtime: Arc<dyn RuntimeService>,
    /// The directory of the legacy `/var/log/containers` log symlinks, removed with their containers.
    pub container_logs_dir: std::path::PathBuf,
    /// The kubelet's pods with their last computed status, to tell which are in a terminal phase.
    pub pods: Arc<dyn crate::server::PodLister>,
}

impl ContainerReclaim {
    /// Removes the dead containers and stopped sandboxes no pod needs (upstream
    /// `DeleteAllUnusedContainers`) and reports what went and how many bytes it freed.
    pub async fn reclaim(&self) -> Result<RemovedContainers, CriError> {
        let phases: HashMap<String, String> = self
            .pods
            .pods()
            .into_iter()
            .filter_map(|p| Some((p.metadata.uid?, p.status.and_then(|s| s.phase).unwrap_or_default())))
            .collect();
        let removable = |uid: &str| phases.get(uid).is_some_and(|phase| crate::status::is_terminal_phase(phase));
        delete_all_unused_containers(self.runtime.as_ref(), &self.container_logs_dir, &removable).await
    }
}

#[cfg(test)]
#[path = "container_gc_tests.rs"]
mod tests;
