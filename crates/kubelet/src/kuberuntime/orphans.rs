//! What a pod leaves on disk after it is gone, found for removal (upstream's
//! `cleanupOrphanedPodDirs` and the container GC's pod log sweep): `<root>/pods/<uid>`,
//! `<podLogsDir>/<namespace>_<name>_<uid>` and dangling `/var/log/containers/*.log` links of
//! pods the kubelet no longer knows, e.g. deleted while it was down.
//!
//! Listing only; [`super::RuntimeManager::remove_orphaned_pod_dirs`] unmounts and removes
//! (every housekeeping round, 2 s), and
//! [`super::RuntimeManager::remove_dangling_container_log_links`] removes the links (once a
//! minute, and right after an orphaned pod's log directory goes).

use std::path::{Path, PathBuf};

fn entries(dir: &Path) -> Vec<(String, PathBuf)> {
    std::fs::read_dir(dir)
        .map(|r| r.flatten().filter_map(|e| Some((e.file_name().into_string().ok()?, e.path()))).collect())
        .unwrap_or_default()
}

/// The UIDs of pod directories under `<root>/pods` that `known` does not claim. Known pods
/// cost no `stat`: the sweep runs every housekeeping period (2 s).
pub fn orphaned_pod_dirs(root_dir: &Path, known: &dyn Fn(&str) -> bool) -> Vec<String> {
    entries(&root_dir.join("pods")).into_iter().filter(|(name, path)| !known(name) && path.is_dir()).map(|(name, _)| name).collect()
}

/// Pod log directories (`<namespace>_<name>_<uid>`) of pods `known` does not claim.
pub fn orphaned_log_dirs(pod_logs_dir: &Path, known: &dyn Fn(&str) -> bool) -> Vec<PathBuf> {
    entries(pod_logs_dir)
        .into_iter()
        .filter(|(name, path)| {
            let mut parts = name.rsplitn(3, '_');
            let uid = parts.next().unwrap_or_default();
            parts.count() == 2 && !uid.is_empty() && !known(uid) && path.is_dir()
        })
        .map(|(_, path)| path)
        .collect()
}

/// `*.log` symlinks in `/var/log/containers` whose pod's log directory is gone (the target,
/// `<pod log dir>/<container>/<restart>.log`, is briefly missing for a live container too:
/// before the runtime creates it, and during a rotation).
pub fn dangling_container_log_links(container_logs_dir: &Path) -> Vec<PathBuf> {
    entries(container_logs_dir)
        .into_iter()
        .filter(|(name, path)| {
            name.ends_with(".log")
                && path.symlink_metadata().is_ok_and(|m| m.file_type().is_symlink())
                && std::fs::read_link(path)
                    .is_ok_and(|target| target.parent().and_then(Path::parent).is_some_and(|pod_dir| !pod_dir.exists()))
        })
        .map(|(_, path)| path)
        .collect()
}

/// Mount points at or under `dir` in `/proc/self/mountinfo` text.
pub fn mounts_under(mountinfo: &str, dir: &Path) -> Vec<PathBuf> {
    mountinfo.lines().filter_map(crate::shared_root::parse_line).map(|m| m.mount_point).filter(|p| p.starts_with(dir)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_unknown_pods_are_orphans() {
        let root = tempfile::tempdir().unwrap();
        for uid in ["keep", "gone"] {
            std::fs::create_dir_all(root.path().join("pods").join(uid).join("volumes")).unwrap();
        }
        std::fs::write(root.path().join("pods/stray-file"), "").unwrap();
        let known = |uid: &str| uid == "keep";
        assert_eq!(orphaned_pod_dirs(root.path(), &known), ["gone"]);

        let logs = root.path().join("logs");
        for d in ["default_web_keep", "kube-system_dns_x_y_gone", "not-a-pod-dir"] {
            std::fs::create_dir_all(logs.join(d)).unwrap();
        }
        assert_eq!(orphaned_log_dirs(&logs, &known), [logs.join("kube-system_dns_x_y_gone")]);

        let links = root.path().join("containers");
        std::fs::create_dir_all(&links).unwrap();
        std::os::unix::fs::symlink(logs.join("default_web_keep/main/0.log"), links.join("starting.log")).unwrap();
        std::os::unix::fs::symlink(logs.join("default_gone_x/main/0.log"), links.join("dead.log")).unwrap();
        std::os::unix::fs::symlink(logs.join("default_gone_x/main/0.log"), links.join("dead.txt")).unwrap();
        assert_eq!(dangling_container_log_links(&links), [links.join("dead.log")]);
    }

    #[test]
    fn mounts_under_a_pod_dir() {
        let info = "36 35 98:0 / /var/lib/kubelet/pods/u1/volumes/kubernetes.io~empty-dir/cache rw - tmpfs tmpfs rw\n\
                    37 35 98:0 / /var/lib/kubelet/pods/u10 rw - tmpfs tmpfs rw\n\
                    38 35 98:0 / /var/lib/kubelet rw - ext4 /dev/vda rw\n";
        assert_eq!(
            mounts_under(info, Path::new("/var/lib/kubelet/pods/u1")),
            [PathBuf::from("/var/lib/kubelet/pods/u1/volumes/kubernetes.io~empty-dir/cache")]
        );
    }
}
