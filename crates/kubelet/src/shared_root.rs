//! The kubelet's root directory on a shared mount (upstream `MakeRShared` at start-up).
//!
//! A container volume with `mountPropagation: Bidirectional` or `HostToContainer` needs the
//! host path's mount to be shared or slave; containerd refuses otherwise ("... is mounted on /
//! but it is not a shared mount"). Pod volumes live under the root directory, so, as upstream,
//! the kubelet checks the mount that holds its root directory and, when that mount is not
//! shared, bind-mounts the directory on itself and marks it `rshared`. The bind mount stays after
//! the kubelet exits, as upstream's does.
//!
//! [`mount_of`] and [`is_shared`] read `/proc/self/mountinfo` text and are pure.

use std::io;
use std::path::{Path, PathBuf};

/// One line of `/proc/<pid>/mountinfo`, the fields this module needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MountInfo {
    /// Where the mount is, relative to the process's root (the fifth field), unescaped.
    pub mount_point: PathBuf,
    /// The optional fields (`shared:N`, `master:N`, ...), between the options and ` - `.
    pub optional: Vec<String>,
}

/// Undoes the kernel's octal escapes (`\040` for a space) in a mountinfo path.
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes.get(i + 1..i + 4).filter(|d| bytes[i] == b'\\' && d.iter().all(|b| (b'0'..=b'7').contains(b)));
        match octal {
            Some(d) => {
                out.push(d.iter().fold(0u8, |n, b| n.wrapping_mul(8).wrapping_add(b - b'0')));
                i += 4;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parses one mountinfo line; `None` when it does not have the kernel's shape.
pub fn parse_line(line: &str) -> Option<MountInfo> {
    let mut fields = line.split(' ');
    let mount_point = unescape(fields.nth(4)?);
    let _options = fields.next()?;
    let mut optional = Vec::new();
    for f in fields.by_ref() {
        if f == "-" {
            return Some(MountInfo { mount_point: PathBuf::from(mount_point), optional });
        }
        optional.push(f.to_string());
    }
    None
}

/// The mount `path` lives on: the last mounted (so topmost) mount point that contains it.
pub fn mount_of(mountinfo: &str, path: &Path) -> Option<MountInfo> {
    mountinfo.lines().rev().filter_map(parse_line).find(|m| path.starts_with(&m.mount_point))
}

/// Whether `path` lives on a shared mount; `None` when no mount holds it.
pub fn is_shared(mountinfo: &str, path: &Path) -> Option<bool> {
    mount_of(mountinfo, path).map(|m| m.optional.iter().any(|o| o.starts_with("shared:")))
}

/// Makes `root` a shared mount unless it already lives on one; returns whether it mounted.
pub fn make_rshared(root: &Path) -> io::Result<bool> {
    let root = root.canonicalize()?;
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo")?;
    if is_shared(&mountinfo, &root).unwrap_or(false) {
        return Ok(false);
    }
    // mount --bind <root> <root>; mount --make-rshared <root> (rustix, as the volume mounter).
    rustix::mount::mount_bind(&root, &root).map_err(io::Error::from)?;
    rustix::mount::mount_change(&root, rustix::mount::MountPropagationFlags::SHARED | rustix::mount::MountPropagationFlags::REC)
        .map_err(io::Error::from)?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOUNTINFO: &str = "\
22 1 8:1 / / rw,relatime - ext4 /dev/sda1 rw
23 22 0:21 / /proc rw,nosuid shared:5 - proc proc rw
40 22 0:35 / /var/lib rw,relatime shared:7 master:2 - ext4 /dev/sdb1 rw
41 40 0:35 /kubelet /var/lib/kubelet rw,relatime - ext4 /dev/sdb1 rw
42 22 0:36 / /mnt/my\\040disk rw shared:9 - ext4 /dev/sdc1 rw
";

    #[test]
    fn the_topmost_mount_holding_a_path_decides() {
        assert_eq!(is_shared(MOUNTINFO, Path::new("/var/lib/docker")), Some(true));
        assert_eq!(is_shared(MOUNTINFO, Path::new("/var/lib/kubelet/pods")), Some(false), "its own bind mount is private");
        assert_eq!(is_shared(MOUNTINFO, Path::new("/var/library")), Some(false), "a path prefix is not a parent directory");
        assert_eq!(is_shared(MOUNTINFO, Path::new("/mnt/my disk/x")), Some(true), "escaped space");
        assert_eq!(mount_of(MOUNTINFO, Path::new("/var/lib/kubelet")).unwrap().mount_point, Path::new("/var/lib/kubelet"));
        assert_eq!(is_shared("", Path::new("/")), None);
    }

    #[test]
    fn malformed_lines_are_skipped() {
        assert_eq!(parse_line("1 2 3"), None);
        assert_eq!(parse_line("1 2 3:4 / /x rw shared:1"), None, "no separator");
        assert_eq!(unescape("a\\04"), "a\\04");
        assert_eq!(unescape("\\134x"), "\\x");
    }

    /// Needs root (mount): a fresh directory on a private mount becomes a shared mount of its
    /// own, and a second call changes nothing.
    #[test]
    #[ignore = "needs root: run hack/test.sh"]
    fn a_private_root_directory_is_bind_mounted_rshared() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        let private = !is_shared(&std::fs::read_to_string("/proc/self/mountinfo").unwrap(), &root).unwrap();
        assert_eq!(make_rshared(&root).unwrap(), private);
        let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        assert_eq!(is_shared(&info, &root), Some(true), "{info}");
        assert!(!make_rshared(&root).unwrap(), "already shared");
        if private {
            rustix::mount::unmount(&root, rustix::mount::UnmountFlags::DETACH).unwrap();
        }
    }
}
