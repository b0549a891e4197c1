//! Observes the eviction signals on the host (upstream gets them from the summary API):
//! `memory.available` from `/proc/meminfo` (MemFree + Inactive(file), i.e. capacity minus the
//! working set), `nodefs.*` from `statvfs` of the kubelet root dir, `imagefs.*` from `statvfs`
//! of the image filesystem (the root dir's filesystem unless told otherwise), `pid.available`
//! from `kernel/pid_max` minus the scheduling entities counted in `/proc/loadavg`.
//!
//! Every path is a parameter so tests read fixtures. A signal that cannot be read is left out.

use std::path::{Path, PathBuf};

use super::thresholds::{Observation, Observations};

/// Where the signals are read from.
#[derive(Debug, Clone)]
pub struct SignalPaths {
    /// `/proc`.
    pub proc_root: PathBuf,
    /// The kubelet root dir (nodefs).
    pub node_fs: PathBuf,
    /// A path on the image filesystem (imagefs).
    pub image_fs: PathBuf,
}

/// Reads every signal it can.
pub fn observe(paths: &SignalPaths) -> Observations {
    let mut out = Observations::new();
    if let Some(m) = memory(&paths.proc_root) {
        out.insert("memory.available".into(), m);
    }
    for (prefix, path) in [("nodefs", &paths.node_fs), ("imagefs", &paths.image_fs)] {
        if let Some((bytes, inodes)) = filesystem(path) {
            out.insert(format!("{prefix}.available"), bytes);
            out.insert(format!("{prefix}.inodesFree"), inodes);
        }
    }
    if let Some(p) = pids(&paths.proc_root) {
        out.insert("pid.available".into(), p);
    }
    out
}

fn meminfo_bytes(text: &str, key: &str) -> Option<i64> {
    let line = text.lines().find(|l| l.split(':').next() == Some(key))?;
    let kib: i64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// `memory.available`: capacity minus working set (usage minus inactive file pages).
pub fn memory(proc_root: &Path) -> Option<Observation> {
    let text = std::fs::read_to_string(proc_root.join("meminfo")).ok()?;
    let total = meminfo_bytes(&text, "MemTotal")?;
    let free = meminfo_bytes(&text, "MemFree")?;
    let inactive_file = meminfo_bytes(&text, "Inactive(file)").unwrap_or(0);
    let working_set = (total - free - inactive_file).max(0);
    Some(Observation { available: total - working_set, capacity: total })
}

/// `pid.available`: `pid_max` minus the number of tasks.
pub fn pids(proc_root: &Path) -> Option<Observation> {
    let max: i64 = std::fs::read_to_string(proc_root.join("sys/kernel/pid_max")).ok()?.trim().parse().ok()?;
    let loadavg = std::fs::read_to_string(proc_root.join("loadavg")).ok()?;
    let tasks: i64 = loadavg.split_whitespace().nth(3)?.split('/').nth(1)?.parse().ok()?;
    Some(Observation { available: max - tasks, capacity: max })
}

/// Bytes and inodes of the filesystem holding `path`.
pub fn filesystem(path: &Path) -> Option<(Observation, Observation)> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    // SAFETY: statvfs writes into the zeroed struct we own; the path is NUL-terminated.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return None;
    }
    let frsize = st.f_frsize as i64;
    let bytes = Observation { available: (st.f_bavail as i64).saturating_mul(frsize), capacity: (st.f_blocks as i64).saturating_mul(frsize) };
    let inodes = Observation { available: st.f_ffree as i64, capacity: st.f_files as i64 };
    Some((bytes, inodes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_fixtures() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("meminfo"), "MemTotal:        8000000 kB\nMemFree:         1000000 kB\nMemAvailable:    5000000 kB\nInactive(file):  2000000 kB\n").unwrap();
        std::fs::create_dir_all(dir.path().join("sys/kernel")).unwrap();
        std::fs::write(dir.path().join("sys/kernel/pid_max"), "32768\n").unwrap();
        std::fs::write(dir.path().join("loadavg"), "0.10 0.20 0.30 2/768 12345\n").unwrap();
        let paths = SignalPaths { proc_root: dir.path().into(), node_fs: dir.path().into(), image_fs: dir.path().join("missing") };
        let o = observe(&paths);
        assert_eq!(o["memory.available"], Observation { available: 3_000_000 * 1024, capacity: 8_000_000 * 1024 });
        assert_eq!(o["pid.available"], Observation { available: 32768 - 768, capacity: 32768 });
        assert!(o["nodefs.available"].capacity > 0 && o["nodefs.inodesFree"].capacity > 0);
        assert!(!o.contains_key("imagefs.available"), "unreadable image fs is left out");
    }

    #[test]
    fn garbage_is_left_out() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("meminfo"), "nonsense\n").unwrap();
        std::fs::write(dir.path().join("loadavg"), "x\n").unwrap();
        assert_eq!(memory(dir.path()), None);
        assert_eq!(pids(dir.path()), None);
    }
}
