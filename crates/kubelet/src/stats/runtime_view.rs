//! What the runtime says in one sampling round: sandboxes, containers, their CRI stats
//! (writable layers; CPU and memory for containers outside the kubelet's cgroups) and the image
//! and container filesystems (`ImageFsInfo`).

use std::collections::HashMap;
use std::path::Path;

use kubelet_cri::{ImageService, RuntimeService, api};

use super::cgroup::{CgroupSample, MemorySample};
use super::fs::{DiskUsage, FsInfo, fs_info};

/// The runtime's view of one round: containers and their writable layers.
pub struct RuntimeView {
    /// Every pod sandbox the runtime lists (CRI `ListPodSandbox`).
    pub sandboxes: Vec<api::PodSandbox>,
    /// Every container the runtime lists, in any state (CRI `ListContainers`).
    pub containers: Vec<api::Container>,
    /// Each container's writable layer use, by container ID (CRI `ListContainerStats`).
    pub layers: HashMap<String, DiskUsage>,
    /// The runtime's own CPU and memory figures of each container, for containers whose
    /// cgroup the kubelet did not place (`cgroupsPerQOS: false`).
    pub cri: HashMap<String, api::ContainerStats>,
    /// The image filesystem's size and what images use of it (CRI `ImageFsInfo`).
    pub image_fs: Option<(FsInfo, DiskUsage)>,
    /// The container filesystem's size and what containers use of it; the image filesystem's when
    /// the runtime reports no separate one.
    pub container_fs: Option<(FsInfo, DiskUsage)>,
}

impl RuntimeView {
    /// Lists sandboxes, containers, container stats and the image filesystems; a call that
    /// fails leaves its part empty (logged at debug level: the runtime may not implement it).
    pub async fn read(runtime: &dyn RuntimeService, images: &dyn ImageService) -> RuntimeView {
        let sandboxes =
            runtime.list_pod_sandbox(None).await.inspect_err(|e| tracing::debug!("stats: listing sandboxes: {e}")).unwrap_or_default();
        let containers =
            runtime.list_containers(None).await.inspect_err(|e| tracing::debug!("stats: listing containers: {e}")).unwrap_or_default();
        let cri: HashMap<String, api::ContainerStats> = match runtime.list_container_stats(None).await {
            Ok(stats) => stats.into_iter().filter_map(|s| Some((s.attributes.as_ref()?.id.clone(), s))).collect(),
            Err(e) => {
                tracing::debug!("stats: listing container stats: {e}");
                HashMap::new()
            }
        };
        let layers = cri
            .iter()
            .filter_map(|(id, s)| {
                let w = s.writable_layer.as_ref()?;
                Some((id.clone(), DiskUsage { bytes: w.used_bytes.map_or(0, |u| u.value), inodes: w.inodes_used.map_or(0, |u| u.value) }))
            })
            .collect();
        let usage = |f: &api::FilesystemUsage| {
            let mount = f.fs_id.as_ref().map(|i| i.mountpoint.clone()).unwrap_or_default();
            let info = fs_info(Path::new(&mount))?;
            Some((
                info,
                DiskUsage { bytes: f.used_bytes.as_ref().map_or(0, |u| u.value), inodes: f.inodes_used.as_ref().map_or(0, |u| u.value) },
            ))
        };
        let (image_fs, container_fs) = match images.image_fs_info().await {
            Ok(r) => {
                let image = r.image_filesystems.first().and_then(usage);
                let container = r.container_filesystems.first().and_then(usage).or(image);
                (image, container)
            }
            Err(e) => {
                tracing::debug!("stats: image filesystem info: {e}");
                (None, None)
            }
        };
        RuntimeView { sandboxes, containers, layers, cri, image_fs, container_fs }
    }
}

/// A sample from the runtime's figures, for a container without a cgroup of the kubelet's.
pub fn cri_sample(s: &api::ContainerStats) -> CgroupSample {
    let memory = s.memory.as_ref().map(|m| {
        let usage = m.usage_bytes.map_or(0, |v| v.value);
        let working_set = m.working_set_bytes.map_or(usage, |v| v.value);
        MemorySample {
            usage,
            inactive_file: usage.saturating_sub(working_set),
            rss: m.rss_bytes.map_or(0, |v| v.value),
            page_faults: m.page_faults.map_or(0, |v| v.value),
            major_page_faults: m.major_page_faults.map_or(0, |v| v.value),
            ..Default::default()
        }
    });
    CgroupSample { cpu_usage_ns: s.cpu.as_ref().and_then(|c| c.usage_core_nano_seconds).map(|v| v.value), memory, ..Default::default() }
}
