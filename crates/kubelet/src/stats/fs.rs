//! Filesystem figures: a filesystem's size (`statvfs`) and a directory's use (a `du -x` walk:
//! allocated blocks and inodes, hard links counted once). Walks are bounded in entries so a
//! volume with millions of files cannot stall the collector.

use std::collections::HashSet;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// Size of the filesystem holding a path.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FsInfo {
    /// Total size in bytes (`f_blocks` times the fragment size).
    pub capacity: u64,
    /// Bytes free to unprivileged users (`f_bavail`).
    pub available: u64,
    /// Capacity minus free blocks (free includes the root-reserved ones).
    pub used: u64,
    /// Total inodes (`f_files`).
    pub inodes: u64,
    /// Free inodes (`f_ffree`).
    pub inodes_free: u64,
}

/// `statvfs(path)`; `None` when it cannot be read.
pub fn fs_info(path: &Path) -> Option<FsInfo> {
    let s = rustix::fs::statvfs(path).ok()?;
    let block = s.f_frsize;
    Some(FsInfo {
        capacity: s.f_blocks * block,
        available: s.f_bavail * block,
        used: s.f_blocks.saturating_sub(s.f_bfree) * block,
        inodes: s.f_files,
        inodes_free: s.f_ffree,
    })
}

/// What a directory tree uses.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DiskUsage {
    /// Allocated bytes (512-byte blocks), the root directory included.
    pub bytes: u64,
    /// Inodes (distinct files, directories and links), the root included.
    pub inodes: u64,
}

/// The most entries one walk visits.
const MAX_ENTRIES: usize = 1_000_000;

/// The use of the tree at `root`, not descending into other filesystems; `None` when `root`
/// cannot be read.
pub fn disk_usage(root: &Path) -> Option<DiskUsage> {
    let meta = std::fs::symlink_metadata(root).ok()?;
    let dev = meta.dev();
    let mut seen = HashSet::new();
    let mut usage = DiskUsage::default();
    let mut count = |m: &std::fs::Metadata, usage: &mut DiskUsage| {
        if m.nlink() > 1 && !m.is_dir() && !seen.insert(m.ino()) {
            return;
        }
        usage.bytes += m.blocks() * 512;
        usage.inodes += 1;
    };
    count(&meta, &mut usage);
    let mut stack = vec![root.to_path_buf()];
    let mut visited = 0usize;
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for e in entries.flatten() {
            visited += 1;
            if visited > MAX_ENTRIES {
                return Some(usage);
            }
            let Ok(m) = e.path().symlink_metadata() else { continue };
            if m.dev() != dev {
                continue;
            }
            count(&m, &mut usage);
            if m.is_dir() {
                stack.push(e.path());
            }
        }
    }
    Some(usage)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_blocks_and_inodes_and_hard_links_once() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("sub/a"), vec![1u8; 10_000]).unwrap();
        std::fs::hard_link(dir.path().join("sub/a"), dir.path().join("b")).unwrap();
        let u = disk_usage(dir.path()).unwrap();
        // root, sub, and the file once.
        assert_eq!(u.inodes, 3);
        assert!(u.bytes >= 10_000, "{u:?}");
        let one = disk_usage(&dir.path().join("sub/a")).unwrap();
        assert!(u.bytes < one.bytes * 2 + 3 * 4096 + 1, "hard link counted twice: {u:?} vs {one:?}");
        assert_eq!(disk_usage(&dir.path().join("missing")), None);
    }

    #[test]
    fn statvfs_of_a_real_filesystem() {
        let dir = tempfile::tempdir().unwrap();
        let i = fs_info(dir.path()).unwrap();
        assert!(i.capacity > 0 && i.available <= i.capacity && i.used <= i.capacity, "{i:?}");
    }
}
