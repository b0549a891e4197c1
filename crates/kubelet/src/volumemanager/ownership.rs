//! `fsGroup` ownership of volume contents (upstream `SetVolumeOwnership`): every file and
//! directory gets the group `fsGroup`, group read (and write unless the volume is read-only)
//! permission, directories also group search and the set-group-ID bit so new files inherit the
//! group. Symlinks get the group but keep their mode (a chmod would follow them).
//! `fsGroupChangePolicy: OnRootMismatch` skips the walk when the volume's root already has the
//! group and the permissions.

use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

const SETGID: u32 = 0o2000;
const RW_GROUP: u32 = 0o660;
const RO_GROUP: u32 = 0o440;
const EXEC: u32 = 0o110;

/// The mode bits a path gets added: `read_only` volumes only get read permission.
pub fn ownership_mask(is_dir: bool, read_only: bool) -> u32 {
    let mut mask = if read_only { RO_GROUP } else { RW_GROUP };
    if is_dir {
        mask |= SETGID | EXEC;
    }
    mask
}

/// Whether the volume's root already has what a walk would give it (`OnRootMismatch`).
fn root_matches(root: &Path, fs_group: u32, read_only: bool) -> io::Result<bool> {
    let meta = std::fs::metadata(root)?;
    let mask = ownership_mask(true, read_only);
    Ok(meta.gid() == fs_group && meta.mode() & mask == mask)
}

/// The user every container of `pod` runs as (its `runAsUser`, or the pod's), when all run as
/// the same one (upstream `FsUserFrom`); credential files of projected volumes are given to it.
pub fn fs_user(pod: &k8s_openapi::api::core::v1::Pod) -> Option<u32> {
    let spec = pod.spec.as_ref()?;
    let pod_user = spec.security_context.as_ref().and_then(|sc| sc.run_as_user);
    let regular = spec.init_containers.iter().flatten().chain(&spec.containers).map(|c| c.security_context.as_ref());
    let ephemeral = spec.ephemeral_containers.iter().flatten().map(|c| c.security_context.as_ref());
    let mut users = regular.chain(ephemeral).map(|sc| sc.and_then(|sc| sc.run_as_user).or(pod_user));
    let first = users.next()??;
    match users.all(|u| u == Some(first)) {
        true => u32::try_from(first).ok(),
        false => None,
    }
}

/// Gives the contents of `root` to group `fs_group`, as described in the module docs.
pub fn set_volume_ownership(root: &Path, fs_group: u32, read_only: bool, change_policy: Option<&str>) -> io::Result<()> {
    if change_policy == Some("OnRootMismatch") && root_matches(root, fs_group, read_only)? {
        return Ok(());
    }
    walk(root, fs_group, read_only)
}

fn walk(path: &Path, fs_group: u32, read_only: bool) -> io::Result<()> {
    let meta = std::fs::symlink_metadata(path)?;
    std::os::unix::fs::lchown(path, None, Some(fs_group))?;
    if meta.file_type().is_symlink() {
        return Ok(());
    }
    let mode = meta.mode() | ownership_mask(meta.is_dir(), read_only);
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode & 0o7777))?;
    if meta.is_dir() {
        for entry in std::fs::read_dir(path)? {
            walk(&entry?.path(), fs_group, read_only)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fs_user_is_the_one_user_of_every_container() {
        use k8s_openapi::api::core::v1::{Container, EphemeralContainer, Pod, PodSecurityContext, PodSpec, SecurityContext};
        let c = |user: Option<i64>| Container {
            security_context: user.map(|u| SecurityContext { run_as_user: Some(u), ..Default::default() }),
            ..Default::default()
        };
        let pod = |pod_user: Option<i64>, containers: Vec<Container>| Pod {
            spec: Some(PodSpec {
                security_context: Some(PodSecurityContext { run_as_user: pod_user, ..Default::default() }),
                containers,
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(fs_user(&pod(None, vec![c(Some(1000)), c(Some(1000))])), Some(1000));
        assert_eq!(fs_user(&pod(Some(1000), vec![c(None), c(Some(1000))])), Some(1000), "the pod's user fills in");
        assert_eq!(fs_user(&pod(None, vec![c(Some(1000)), c(None)])), None, "one container without a user");
        assert_eq!(fs_user(&pod(Some(7), vec![c(Some(1000)), c(None)])), None, "two users");
        assert_eq!(fs_user(&pod(None, vec![])), None);
        let mut p = pod(Some(1000), vec![c(None)]);
        p.spec.as_mut().unwrap().init_containers = Some(vec![c(Some(0))]);
        assert_eq!(fs_user(&p), None, "init containers count");
        let mut p = pod(None, vec![c(Some(5))]);
        p.spec.as_mut().unwrap().ephemeral_containers = Some(vec![EphemeralContainer::default()]);
        assert_eq!(fs_user(&p), None, "an ephemeral container without a user");
    }

    #[test]
    fn masks_as_upstream() {
        assert_eq!(ownership_mask(false, false), 0o660);
        assert_eq!(ownership_mask(false, true), 0o440);
        assert_eq!(ownership_mask(true, false), 0o2770);
        assert_eq!(ownership_mask(true, true), 0o2550);
    }

    #[test]
    fn walks_files_dirs_and_symlinks() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("vol");
        std::fs::create_dir_all(root.join("sub")).unwrap();
        std::fs::write(root.join("sub/file"), "x").unwrap();
        std::fs::set_permissions(root.join("sub/file"), std::fs::Permissions::from_mode(0o400)).unwrap();
        std::os::unix::fs::symlink("sub/file", root.join("link")).unwrap();
        // A group the test may give files to: any as root, else its own.
        let gid = if running_as_root() { 1234 } else { std::fs::metadata(&root).unwrap().gid() };
        set_volume_ownership(&root, gid, true, None).unwrap();
        let file = std::fs::metadata(root.join("sub/file")).unwrap();
        assert_eq!((file.gid(), file.mode() & 0o7777), (gid, 0o440));
        let sub = std::fs::metadata(root.join("sub")).unwrap();
        assert_eq!(sub.mode() & 0o2000, 0o2000);
        assert_eq!(std::fs::symlink_metadata(root.join("link")).unwrap().gid(), gid);
        // OnRootMismatch: a matching root means no walk.
        std::fs::set_permissions(root.join("sub/file"), std::fs::Permissions::from_mode(0o400)).unwrap();
        set_volume_ownership(&root, gid, true, Some("OnRootMismatch")).unwrap();
        assert_eq!(std::fs::metadata(root.join("sub/file")).unwrap().mode() & 0o7777, 0o400);
        set_volume_ownership(&root, gid, true, Some("Always")).unwrap();
        assert_eq!(std::fs::metadata(root.join("sub/file")).unwrap().mode() & 0o7777, 0o440);
    }

    /// Whether the test process runs as root (`/proc/self` belongs to the process's user).
    fn running_as_root() -> bool {
        std::fs::metadata("/proc/self").map(|m| m.uid() == 0).unwrap_or(false)
    }
}
