//! tmpfs mounts for memory-backed volumes (upstream's emptyDir `medium: Memory`, which the
//! secret, downwardAPI and projected plugins wrap), and the mount-point check that keeps pod
//! directory removal from ever descending into a mount.
//!
//! [`Mounter`] is the boundary; [`SystemMounter`] calls mount(2)/umount2(2) through `rustix`.

use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// Mounting and unmounting volume directories.
pub trait Mounter: Send + Sync + 'static {
    /// Whether `path` is a mount point (upstream `IsLikelyNotMountPoint`, negated).
    fn is_mount_point(&self, path: &Path) -> io::Result<bool>;
    /// Mounts a fresh tmpfs on the existing directory `path`, of `size_bytes` when given.
    fn mount_tmpfs(&self, path: &Path, size_bytes: Option<u64>) -> io::Result<()>;
    /// Unmounts whatever is mounted on `path` (umount2(2) without flags).
    fn unmount(&self, path: &Path) -> io::Result<()>;
}

/// Whether `path` sits on another device than its parent (or is `/`); a symlink is never one.
pub fn is_mount_point(path: &Path) -> io::Result<bool> {
    let meta = std::fs::symlink_metadata(path)?;
    if meta.file_type().is_symlink() {
        return Ok(false);
    }
    let Some(parent) = path.parent() else { return Ok(true) };
    let parent_meta = std::fs::metadata(if parent.as_os_str().is_empty() { Path::new(".") } else { parent })?;
    Ok(meta.dev() != parent_meta.dev() || meta.ino() == parent_meta.ino())
}

/// The tmpfs option string: `size=<bytes>` when limited. No `mode`: the root keeps tmpfs's
/// default 1777, as upstream's emptyDir mounts it (specs read the sticky bit).
pub fn tmpfs_options(size_bytes: Option<u64>) -> String {
    size_bytes.map(|n| format!("size={n}")).unwrap_or_default()
}

/// mount(2) on the host.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemMounter;

impl Mounter for SystemMounter {
    fn is_mount_point(&self, path: &Path) -> io::Result<bool> {
        is_mount_point(path)
    }

    fn mount_tmpfs(&self, path: &Path, size_bytes: Option<u64>) -> io::Result<()> {
        let opts = std::ffi::CString::new(tmpfs_options(size_bytes)).map_err(io::Error::other)?;
        rustix::mount::mount("tmpfs", path, "tmpfs", rustix::mount::MountFlags::empty(), opts.as_c_str()).map_err(io::Error::from)
    }

    fn unmount(&self, path: &Path) -> io::Result<()> {
        rustix::mount::unmount(path, rustix::mount::UnmountFlags::empty()).map_err(io::Error::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_directories_and_symlinks_are_not_mount_points() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("d");
        std::fs::create_dir(&dir).unwrap();
        assert!(!is_mount_point(&dir).unwrap());
        std::os::unix::fs::symlink("/proc", tmp.path().join("l")).unwrap();
        assert!(!is_mount_point(&tmp.path().join("l")).unwrap());
        assert!(is_mount_point(Path::new("/")).unwrap());
        assert!(is_mount_point(Path::new("/proc")).unwrap());
        assert!(is_mount_point(&tmp.path().join("missing")).is_err());
    }

    #[test]
    fn tmpfs_options_carry_the_size_limit() {
        assert_eq!(tmpfs_options(None), "");
        assert_eq!(tmpfs_options(Some(64 << 20)), "size=67108864");
    }
}
