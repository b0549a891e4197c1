//! Image garbage collection (upstream `pkg/kubelet/images/image_gc_manager.go`).
//!
//! Every [`IMAGE_GC_PERIOD`] the manager lists the runtime's images and containers, notes when
//! each image was first seen and last used by a container (running or exited), then:
//! - removes images unused for longer than `imageMaximumGCAge` (once the kubelet has run that
//!   long);
//! - when the image filesystem (CRI `ImageFsInfo`, sized with `statvfs`) is at or above
//!   `imageGCHighThresholdPercent`, removes unused images least recently used first until it
//!   would be down to `imageGCLowThresholdPercent`, skipping images detected less than
//!   `imageMinimumGCAge` ago.
//!
//! Images in use (by a container, or mounted as an image volume) and pinned images
//! (containerd's sandbox image) are never removed. When not
//! enough can be freed the node gets upstream's `FreeDiskSpaceFailed` event, and a second failure
//! in a row `ImageGCFailed`. Eviction calls [`ImageGcManager::delete_unused_images`] to reclaim
//! disk before evicting pods.

pub mod records;

#[cfg(test)]
mod tests;

use std::collections::HashSet;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use kubelet_cri::{CriError, ImageService, RuntimeService, api};
use tokio_util::sync::CancellationToken;

use kubelet_types::clock::Clock;
use kubelet_types::events::{EventRecorder, EventType};
use records::{Candidate, CapacityError, ImageGcPolicy, ImageRecords};

/// Upstream's `ImageGCPeriod`.
pub const IMAGE_GC_PERIOD: Duration = Duration::from_secs(5 * 60);

/// Why a round of image garbage collection failed; the messages are upstream's.
#[derive(Debug, thiserror::Error)]
pub enum ImageGcError {
    /// CRI `ListImages` failed.
    #[error("failed to list images: {0}")]
    ListImages(CriError),
    /// CRI `ListContainers` failed.
    #[error("failed to list containers: {0}")]
    ListContainers(CriError),
    /// The image filesystem's capacity and free space could not be read.
    #[error("failed to get image filesystem stats: {0}")]
    FsStats(String),
    /// The image filesystem reported figures GC cannot work with (a zero capacity).
    #[error(transparent)]
    Capacity(#[from] CapacityError),
    /// Removing images unused for longer than `imageMaximumGCAge` failed for some.
    #[error("wanted to free images older than {max_age:?}, encountered errors in image deletion: {}", joined(errors))]
    OldImages {
        /// The policy's `imageMaximumGCAge`.
        max_age: Duration,
        /// The CRI `RemoveImage` errors, one per image not removed.
        errors: Vec<CriError>,
    },
    /// Removing images to free `wanted` bytes (to the low threshold, or as much as possible for
    /// eviction's reclaim) failed for some.
    #[error("wanted to free {wanted} bytes, but freed {freed} bytes space with errors in image deletion: {}", joined(errors))]
    Remove {
        /// Bytes the round set out to free: down to `imageGCLowThresholdPercent`, or
        /// `u64::MAX` when eviction reclaims every unused image.
        wanted: u64,
        /// Bytes freed by the images that were removed.
        freed: u64,
        /// The CRI `RemoveImage` errors, one per image not removed.
        errors: Vec<CriError>,
    },
    /// Every removable image went and the image filesystem is still above the low threshold
    /// (the `FreeDiskSpaceFailed` node event).
    #[error(
        "Insufficient free disk space on the node's image filesystem ({usage_percent}% of {capacity} used). Failed to free sufficient space by deleting unused images (freed {freed} bytes). Investigate disk usage, as it could be used by active images, logs, volumes, or other data."
    )]
    Insufficient {
        /// Percent of the image filesystem in use before space was freed, rounded up.
        usage_percent: i64,
        /// The image filesystem's capacity, formatted as upstream's `formatSize` (`12.5 GiB`).
        capacity: String,
        /// Bytes freed by the images removed.
        freed: u64,
    },
}

fn joined(errors: &[CriError]) -> String {
    let parts: Vec<String> = errors.iter().map(ToString::to_string).collect();
    format!("[{}]", parts.join(", "))
}

/// The size and free space of the image filesystem.
#[async_trait::async_trait]
pub trait ImageFsStats: Send + Sync + 'static {
    /// `(capacity, available)` in bytes.
    async fn image_fs(&self) -> Result<(u64, u64), String>;
}

/// The runtime's image filesystem: the mount point CRI `ImageFsInfo` names, sized with `statvfs`.
pub struct RuntimeImageFs(pub Arc<dyn ImageService>);

/// The mount point of the runtime's (first) image filesystem, from CRI `ImageFsInfo`.
async fn image_fs_mount(images: &dyn ImageService) -> Result<String, String> {
    let info = images.image_fs_info().await.map_err(|e| e.to_string())?;
    let fs = info.image_filesystems.first().ok_or("the runtime reported no image filesystem")?;
    Ok(fs.fs_id.as_ref().map(|i| i.mountpoint.clone()).unwrap_or_default())
}

#[async_trait::async_trait]
impl ImageFsStats for RuntimeImageFs {
    async fn image_fs(&self) -> Result<(u64, u64), String> {
        let mount = image_fs_mount(self.0.as_ref()).await?;
        let stats =
            crate::stats::fs::fs_info(Path::new(&mount)).ok_or_else(|| format!("statfs of the image filesystem {mount:?} failed"))?;
        Ok((stats.capacity, stats.available))
    }
}

/// Removes unused images by the policy.
pub struct ImageGcManager {
    runtime: Arc<dyn RuntimeService>,
    images: Arc<dyn ImageService>,
    fs: Arc<dyn ImageFsStats>,
    events: Arc<dyn EventRecorder>,
    clock: Arc<dyn Clock>,
    policy: ImageGcPolicy,
    records: Mutex<ImageRecords>,
    /// Which credentials pulled each image: the records of removed images go after a round.
    pull_records: Option<Arc<crate::kuberuntime::pull_records::PullRecords>>,
    metrics: Option<Arc<crate::metrics::KubeletMetrics>>,
}

impl ImageGcManager {
    /// A manager collecting by `policy`, listing through the CRI `runtime` and `images`
    /// services, sizing the image filesystem with `fs` and reporting failures as node events.
    pub fn new(
        runtime: Arc<dyn RuntimeService>,
        images: Arc<dyn ImageService>,
        fs: Arc<dyn ImageFsStats>,
        events: Arc<dyn EventRecorder>,
        clock: Arc<dyn Clock>,
        policy: ImageGcPolicy,
    ) -> Self {
        Self { runtime, images, fs, events, clock, policy, records: Mutex::default(), pull_records: None, metrics: None }
    }

    /// Counts removals in `kubelet_image_garbage_collected_total`.
    pub fn with_metrics(mut self, metrics: Arc<crate::metrics::KubeletMetrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// Prunes the image pull records (which credentials pulled each image) after each round.
    pub fn with_pull_records(mut self, records: Arc<crate::kuberuntime::pull_records::PullRecords>) -> Self {
        self.pull_records = Some(records);
        self
    }

    /// Drops the pull records of images gone since `started` (upstream's `PruneUnknownRecords`).
    async fn prune_pull_records(&self, started: SystemTime) {
        let Some(records) = &self.pull_records else { return };
        match self.images.list_images(None).await {
            Ok(images) => records.prune(&images.into_iter().map(|i| i.id).collect(), started),
            Err(e) => tracing::warn!("listing images to prune the pull records: {e}"),
        }
    }

    /// Lists images and containers and updates the records; returns the images in use.
    async fn detect(&self, now: SystemTime) -> Result<HashSet<String>, ImageGcError> {
        let images = self.images.list_images(None).await.map_err(ImageGcError::ListImages)?;
        let containers = self.runtime.list_containers(None).await.map_err(ImageGcError::ListContainers)?;
        let mut in_use = records::images_in_use(&containers);
        // Image volumes: the images a container's mounts name (upstream's handleImageVolumes).
        for c in &containers {
            if let Ok(status) = self.runtime.container_status(&c.id).await {
                in_use.extend(status.mounts.iter().filter_map(|m| m.image.as_ref()).map(|i| i.image.clone()).filter(|i| !i.is_empty()));
            }
        }
        self.records.lock().expect("image records lock").detect(&images, &in_use, now);
        Ok(in_use)
    }

    async fn eviction_order(&self, now: SystemTime) -> Result<Vec<Candidate>, ImageGcError> {
        let in_use = self.detect(now).await?;
        let records = self.records.lock().expect("image records lock");
        let candidates = records.eviction_order(&in_use);
        tracing::debug!(images = records.len(), in_use = ?in_use, candidates = ?candidates, "images in eviction order");
        Ok(candidates)
    }

    /// Removes one image; `reason` is the metric's (`age`, `space`).
    async fn remove(&self, c: &Candidate, reason: &str, why: &str) -> Result<(), CriError> {
        tracing::info!(image = %c.id, size = c.record.size, "removing image ({why})");
        self.images.remove_image(&api::ImageSpec { image: c.id.clone(), ..Default::default() }).await?;
        self.records.lock().expect("image records lock").forget(&c.id);
        if let Some(m) = &self.metrics {
            m.image_garbage_collected.inc(&[reason]);
        }
        Ok(())
    }

    /// Removes candidates in order until `wanted` bytes are freed; returns what was freed.
    async fn free_space(&self, wanted: u64, now: SystemTime, candidates: &[Candidate]) -> Result<u64, ImageGcError> {
        let mut freed = 0u64;
        let mut errors = Vec::new();
        for c in candidates.iter().filter(|c| records::may_free(c, &self.policy, now)) {
            match self.remove(c, "space", "to free disk space").await {
                Ok(()) => freed = freed.saturating_add(c.record.size),
                Err(e) => errors.push(e),
            }
            if freed >= wanted {
                break;
            }
        }
        if errors.is_empty() { Ok(freed) } else { Err(ImageGcError::Remove { wanted, freed, errors }) }
    }

    /// One round (upstream's `GarbageCollect`); `began` is when the kubelet started collecting.
    pub async fn garbage_collect(&self, began: SystemTime) -> Result<(), ImageGcError> {
        // Pull records carry wall-clock times.
        let started = SystemTime::now();
        let result = self.collect(began).await;
        self.prune_pull_records(started).await;
        result
    }

    async fn collect(&self, began: SystemTime) -> Result<(), ImageGcError> {
        let now = self.clock.now();
        let candidates = self.eviction_order(now).await?;
        let mut left = Vec::with_capacity(candidates.len());
        let mut errors = Vec::new();
        for c in candidates {
            if !records::too_old(&c, &self.policy, now, began) {
                left.push(c);
                continue;
            }
            if let Err(e) = self.remove(&c, "age", &format!("unused for longer than imageMaximumGCAge {:?}", self.policy.max_age)).await {
                errors.push(e);
                left.push(c);
            }
        }
        if !errors.is_empty() {
            return Err(ImageGcError::OldImages { max_age: self.policy.max_age, errors });
        }
        let (capacity, available) = self.fs.image_fs().await.map_err(ImageGcError::FsStats)?;
        let space = match records::space_to_free(capacity, available, &self.policy) {
            Ok(s) => s,
            Err(e) => {
                self.events.node_event(EventType::Warning, "InvalidDiskCapacity", &e.to_string());
                return Err(e.into());
            }
        };
        let Some(space) = space else { return Ok(()) };
        tracing::info!(
            usage = space.usage_percent,
            high_threshold = self.policy.high_threshold_percent,
            low_threshold = self.policy.low_threshold_percent,
            amount_to_free = space.bytes,
            "disk usage on the image filesystem is over the high threshold; freeing bytes down to the low threshold"
        );
        let freed = self.free_space(space.bytes, now, &left).await?;
        if freed < space.bytes {
            let e = ImageGcError::Insufficient { usage_percent: space.usage_percent, capacity: records::format_size(capacity), freed };
            self.events.node_event(EventType::Warning, "FreeDiskSpaceFailed", &e.to_string());
            return Err(e);
        }
        Ok(())
    }

    /// Removes every unused image old enough (eviction's node-level reclaim); returns the bytes
    /// freed.
    pub async fn delete_unused_images(&self) -> Result<u64, ImageGcError> {
        tracing::info!("attempting to delete unused images");
        let now = self.clock.now();
        let candidates = self.eviction_order(now).await?;
        let started = SystemTime::now();
        let freed = self.free_space(u64::MAX, now, &candidates).await;
        self.prune_pull_records(started).await;
        freed
    }

    /// Collects every `period` until `shutdown` (the first round at once, as upstream's).
    /// A failure is logged; a second in a row is also the node event `ImageGCFailed`.
    pub async fn run(self: Arc<Self>, period: Duration, shutdown: CancellationToken) {
        if self.policy.disabled() {
            tracing::info!("imageGCHighThresholdPercent is 100 and imageMaximumGCAge is 0: image garbage collection is disabled");
            return;
        }
        let began = self.clock.now();
        let mut failed_before = false;
        loop {
            match self.garbage_collect(began).await {
                Ok(()) => {
                    if failed_before {
                        tracing::info!("image garbage collection succeeded");
                    }
                    failed_before = false;
                }
                Err(e) if failed_before => {
                    tracing::error!("image garbage collection failed multiple times in a row: {e}");
                    self.events.node_event(EventType::Warning, "ImageGCFailed", &e.to_string());
                }
                Err(e) => {
                    tracing::warn!("image garbage collection failed once (stats may not be ready yet): {e}");
                    failed_before = true;
                }
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(period) => {}
            }
        }
    }
}

/// Eviction's node-level reclaim: dead containers, then the images that leaves unused (upstream
/// `DeleteAllUnusedContainers`, `DeleteUnusedImages`). For `nodefs.*` signals only when the
/// images and writable layers live on the node's filesystem (upstream reclaims nothing for
/// nodefs when the image filesystem is a dedicated one).
pub struct DiskReclaim {
    /// The image garbage collector whose unused images go after the containers.
    pub gc: Arc<ImageGcManager>,
    /// Removes dead containers and sandboxes first; `None` reclaims images only.
    pub containers: Option<crate::kuberuntime::container_gc::ContainerReclaim>,
    /// The kubelet's root directory, on the node filesystem.
    pub node_fs: std::path::PathBuf,
}

impl DiskReclaim {
    async fn dedicated_image_fs(&self) -> bool {
        use std::os::unix::fs::MetadataExt;
        let Ok(mount) = image_fs_mount(self.gc.images.as_ref()).await else { return false };
        match (std::fs::metadata(&mount), std::fs::metadata(&self.node_fs)) {
            (Ok(image), Ok(node)) => image.dev() != node.dev(),
            _ => false,
        }
    }
}

#[async_trait::async_trait]
impl crate::eviction::NodeReclaim for DiskReclaim {
    async fn reclaim(&self, signal: &str) -> crate::eviction::Reclaimed {
        let mut out = crate::eviction::Reclaimed::default();
        if signal.starts_with("nodefs.") && self.dedicated_image_fs().await {
            return out;
        }
        if let Some(containers) = &self.containers {
            match containers.reclaim().await {
                Ok(removed) => {
                    out.bytes += removed.bytes;
                    // Empty sandboxes alone free next to nothing: they do not spare the pods.
                    out.containers += removed.containers;
                }
                Err(e) => tracing::warn!(signal, "removing dead containers failed: {e}"),
            }
        }
        match self.gc.delete_unused_images().await {
            Ok(freed) => out.bytes += freed,
            Err(e) => tracing::warn!(signal, "reclaiming unused images failed: {e}"),
        }
        out
    }
}
