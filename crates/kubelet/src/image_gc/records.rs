//! What image garbage collection knows of each image (upstream's `imageRecord`) and the pure
//! decisions made from it: which images may go, in which order, how much must be freed.
//!
//! No I/O: [`super::ImageGcManager`] lists images and containers and removes what this says.

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, SystemTime};

use kubelet_cri::api;

/// `imageGCHighThresholdPercent`, `imageGCLowThresholdPercent`, `imageMinimumGCAge`,
/// `imageMaximumGCAge` (0: no maximum).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageGcPolicy {
    /// `imageGCHighThresholdPercent`: image filesystem use, in percent, at which GC frees space.
    pub high_threshold_percent: i32,
    /// `imageGCLowThresholdPercent`: image filesystem use, in percent, GC frees space down to.
    pub low_threshold_percent: i32,
    /// `imageMinimumGCAge`: how long after first being detected an image may be removed.
    pub min_age: Duration,
    /// `imageMaximumGCAge`: how long an image may go unused before it is removed; zero for no
    /// maximum.
    pub max_age: Duration,
}

impl ImageGcPolicy {
    /// Upstream stubs image GC out when the high threshold is 100 and there is no maximum age.
    pub fn disabled(&self) -> bool {
        self.high_threshold_percent >= 100 && self.max_age.is_zero()
    }
}

/// One image the runtime has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageRecord {
    /// When garbage collection first saw it.
    pub first_detected: SystemTime,
    /// When a container last used it; `None` if none has since it was first seen.
    pub last_used: Option<SystemTime>,
    /// The image's size as the runtime reports it, in bytes.
    pub size: u64,
    /// The runtime keeps it (e.g. containerd's sandbox image).
    pub pinned: bool,
}

/// An image that may be removed, with its record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// The runtime's image ID.
    pub id: String,
    /// What GC knows of the image.
    pub record: ImageRecord,
}

/// The records of every image the runtime has, keyed by image ID.
#[derive(Debug, Default)]
pub struct ImageRecords(BTreeMap<String, ImageRecord>);

/// The image IDs the runtime's containers (running or not) use. A container names its image by
/// ID in `image_ref` (containerd) and sometimes in `image`; both count.
pub fn images_in_use(containers: &[api::Container]) -> HashSet<String> {
    containers
        .iter()
        .flat_map(|c| [c.image_ref.clone(), c.image.as_ref().map(|i| i.image.clone()).unwrap_or_default()])
        .filter(|id| !id.is_empty())
        .collect()
}

impl ImageRecords {
    /// Records what the runtime lists at `now` (upstream's `detectImages`): new images are first
    /// detected now, images in use were last used now, images gone are forgotten.
    pub fn detect(&mut self, images: &[api::Image], in_use: &HashSet<String>, now: SystemTime) {
        let present: HashSet<&str> = images.iter().map(|i| i.id.as_str()).collect();
        self.0.retain(|id, _| present.contains(id.as_str()));
        for image in images {
            let record =
                self.0.entry(image.id.clone()).or_insert(ImageRecord { first_detected: now, last_used: None, size: 0, pinned: false });
            if in_use.contains(&image.id) {
                record.last_used = Some(now);
            }
            record.size = image.size;
            record.pinned = image.pinned;
        }
    }

    /// Images neither in use nor pinned, least recently used first, ties broken by the earlier
    /// detection (upstream's `imagesInEvictionOrder`).
    pub fn eviction_order(&self, in_use: &HashSet<String>) -> Vec<Candidate> {
        let mut candidates: Vec<Candidate> = self
            .0
            .iter()
            .filter(|(id, r)| !in_use.contains(*id) && !r.pinned)
            .map(|(id, r)| Candidate { id: id.clone(), record: *r })
            .collect();
        candidates.sort_by_key(|c| (c.record.last_used, c.record.first_detected));
        candidates
    }

    /// Forgets a removed image.
    pub fn forget(&mut self, id: &str) {
        self.0.remove(id);
    }

    /// How many images are recorded.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether no image is recorded.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Whether a candidate has gone unused longer than `imageMaximumGCAge` (upstream's
/// `freeOldImages`): never before the kubelet has run that long, so images used just before a
/// restart are not taken for old ones.
pub fn too_old(c: &Candidate, policy: &ImageGcPolicy, now: SystemTime, began: SystemTime) -> bool {
    if policy.max_age.is_zero() || elapsed(began, now) <= policy.max_age {
        return false;
    }
    match c.record.last_used {
        Some(used) => elapsed(used, now) > policy.max_age,
        // Never used since first seen: upstream's zero time, older than any maximum.
        None => true,
    }
}

/// Whether a candidate may be removed to free space at `now`: not used at or after `now` and
/// detected at least `imageMinimumGCAge` ago (it may have just been pulled for a container
/// about to start).
pub fn may_free(c: &Candidate, policy: &ImageGcPolicy, now: SystemTime) -> bool {
    c.record.last_used.is_none_or(|used| used < now) && elapsed(c.record.first_detected, now) >= policy.min_age
}

fn elapsed(from: SystemTime, to: SystemTime) -> Duration {
    to.duration_since(from).unwrap_or_default()
}

/// The image filesystem's use as upstream measures it for GC: percent used (rounded up) and the
/// bytes to free to get down to the low threshold, when the high threshold is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpaceToFree {
    /// Percent of the image filesystem in use, rounded up.
    pub usage_percent: i64,
    /// Bytes to free to get down to `imageGCLowThresholdPercent`.
    pub bytes: u64,
}

/// Errors in the filesystem figures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CapacityError {
    /// The image filesystem reports a capacity of zero bytes.
    #[error("invalid capacity 0 on image filesystem")]
    ZeroCapacity,
}

/// `None` below the high threshold; else how much to free (upstream's `GarbageCollect`).
pub fn space_to_free(capacity: u64, available: u64, policy: &ImageGcPolicy) -> Result<Option<SpaceToFree>, CapacityError> {
    if capacity == 0 {
        return Err(CapacityError::ZeroCapacity);
    }
    let (capacity, available) = (i128::from(capacity), i128::from(available.min(capacity)));
    let usage_percent = 100 - available * 100 / capacity;
    if usage_percent < i128::from(policy.high_threshold_percent) {
        return Ok(None);
    }
    let target = capacity * i128::from(100 - policy.low_threshold_percent) / 100;
    let bytes = u64::try_from((target - available).max(0)).unwrap_or(u64::MAX);
    Ok(Some(SpaceToFree { usage_percent: usage_percent as i64, bytes }))
}

/// Bytes as upstream's `formatSize` writes them in `FreeDiskSpaceFailed` (`12.5 GiB`).
pub fn format_size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut size = bytes as f64 / 1024.0;
    let mut unit = 0;
    while size >= 1024.0 && unit < UNITS.len() - 1 {
        size /= 1024.0;
        unit += 1;
    }
    format!("{size:.1} {}", UNITS[unit])
}
