//! Observes the eviction signals on the host (upstream gets them from the summary API):
//! `memory.available` as capacity (MemTotal) minus the working set, the working set being, as
//! upstream's (and `/stats/summary`'s node memory), the root memory cgroup's usage minus its
//! inactive file pages on a cgroup v1 host — kernel memory the cgroup does not charge is not
//! counted — and MemTotal − MemFree − Inactive(file) from `/proc/meminfo` where there is no v1
//! root memory cgroup; `nodefs.*` from `statvfs` of the kubelet root dir, `imagefs.*` from `statvfs`
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
    /// The v1 root memory cgroup (`/sys/fs/cgroup/memory`), when the host has one.
    pub memory_cgroup: Option<PathBuf>,
}

/// Reads every signal it can.
pub fn observe(paths: &SignalPaths) -> Observations {
    let mut out = Observations::new();
    if let Some(m) = memory_of(paths) {
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

/// Replaces the statvfs guesses for `imagefs.*` and adds `containerfs.*` with what the runtime
/// reported (CRI `ImageFsInfo`, through the stats collector's latest summary), as upstream takes
/// them from the summary's `runtime.imageFs` / `containerFs`.
pub fn with_runtime_filesystems(out: &mut Observations, runtime: Option<&crate::stats::api::RuntimeStats>) {
    let Some(runtime) = runtime else { return };
    for (prefix, fs) in
        [("imagefs", runtime.image_fs.as_ref()), ("containerfs", runtime.container_fs.as_ref().or(runtime.image_fs.as_ref()))]
    {
        let Some(fs) = fs else { continue };
        let n = |v: Option<u64>| v.and_then(|v| i64::try_from(v).ok());
        if let (Some(available), Some(capacity)) = (n(fs.available_bytes), n(fs.capacity_bytes)) {
            out.insert(format!("{prefix}.available"), Observation { available, capacity });
        }
        if let (Some(available), Some(capacity)) = (n(fs.inodes_free), n(fs.inodes)) {
            out.insert(format!("{prefix}.inodesFree"), Observation { available, capacity });
        }
    }
}

/// `allocatableMemory.available` from the summary's `pods` system container (the pods'
/// cgroup): what is left under its limit, out of limit (available + working set), as upstream.
pub fn with_allocatable_memory(out: &mut Observations, system_containers: &[crate::stats::api::ContainerStats]) {
    let Some(memory) =
        system_containers.iter().find(|c| c.name == crate::stats::api::SYSTEM_CONTAINER_PODS).and_then(|c| c.memory.as_ref())
    else {
        return;
    };
    let n = |v: Option<u64>| v.and_then(|v| i64::try_from(v).ok());
    if let (Some(available), Some(working_set)) = (n(memory.available_bytes), n(memory.working_set_bytes)) {
        out.insert("allocatableMemory.available".into(), Observation { available, capacity: available.saturating_add(working_set) });
    }
}

fn meminfo_bytes(text: &str, key: &str) -> Option<i64> {
    let line = text.lines().find(|l| l.split(':').next() == Some(key))?;
    let kib: i64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// `memory.available` where `paths` say to read it.
pub fn memory_of(paths: &SignalPaths) -> Option<Observation> {
    paths.memory_cgroup.as_deref().and_then(|cg| memory_from_cgroup(&paths.proc_root, cg)).or_else(|| memory(&paths.proc_root))
}

/// `memory.available` from the v1 root memory cgroup: MemTotal − (usage − total_inactive_file).
pub fn memory_from_cgroup(proc_root: &Path, memory_cgroup: &Path) -> Option<Observation> {
    let (total, usage) = total_and_usage(proc_root, memory_cgroup)?;
    let working_set = (usage - inactive_file(memory_cgroup)?).max(0);
    Some(Observation { available: total - working_set, capacity: total })
}

/// A lower bound of [`memory_from_cgroup`]'s `memory.available` without `memory.stat`:
/// MemTotal − usage (usage counts the inactive page cache the working set leaves out).
pub fn memory_available_at_least(proc_root: &Path, memory_cgroup: &Path) -> Option<Observation> {
    let (total, usage) = total_and_usage(proc_root, memory_cgroup)?;
    Some(Observation { available: total - usage, capacity: total })
}

/// MemTotal and the memory cgroup's `memory.usage_in_bytes`.
fn total_and_usage(proc_root: &Path, memory_cgroup: &Path) -> Option<(i64, i64)> {
    let total = meminfo_bytes(&crate::stats::read::text_at(&proc_root.join("meminfo"))?, "MemTotal")?;
    let usage = crate::stats::read::text_at(&memory_cgroup.join("memory.usage_in_bytes"))?.trim().parse().ok()?;
    Some((total, usage))
}

/// The v1 memory cgroup's inactive file pages (`total_inactive_file`, 0 when not listed);
/// `None` when `memory.stat` cannot be read.
pub fn inactive_file(memory_cgroup: &Path) -> Option<i64> {
    let stat = crate::stats::read::text_at(&memory_cgroup.join("memory.stat"))?;
    Some(crate::stats::cgroup::keyed(&stat, "total_inactive_file").and_then(|v| i64::try_from(v).ok()).unwrap_or(0))
}

/// `memory.available` from `/proc/meminfo`: capacity minus working set (MemTotal − MemFree −
/// Inactive(file)).
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
    let bytes =
        Observation { available: (st.f_bavail as i64).saturating_mul(frsize), capacity: (st.f_blocks as i64).saturating_mul(frsize) };
    let inodes = Observation { available: st.f_ffree as i64, capacity: st.f_files as i64 };
    Some((bytes, inodes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_fixtures() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("meminfo"),
            "MemTotal:        8000000 kB\nMemFree:         1000000 kB\nMemAvailable:    5000000 kB\nInactive(file):  2000000 kB\n",
        )
        .unwrap();
        std::fs::create_dir_all(dir.path().join("sys/kernel")).unwrap();
        std::fs::write(dir.path().join("sys/kernel/pid_max"), "32768\n").unwrap();
        std::fs::write(dir.path().join("loadavg"), "0.10 0.20 0.30 2/768 12345\n").unwrap();
        let paths = SignalPaths {
            proc_root: dir.path().into(),
            node_fs: dir.path().into(),
            image_fs: dir.path().join("missing"),
            memory_cgroup: None,
        };
        let o = observe(&paths);
        assert_eq!(o["memory.available"], Observation { available: 3_000_000 * 1024, capacity: 8_000_000 * 1024 });
        // With a v1 root memory cgroup: its usage less its inactive file pages is the working set.
        let cg = dir.path().join("memory");
        std::fs::create_dir_all(&cg).unwrap();
        std::fs::write(cg.join("memory.usage_in_bytes"), format!("{}\n", 3_000_000i64 * 1024)).unwrap();
        std::fs::write(cg.join("memory.stat"), format!("cache 1\ntotal_inactive_file {}\n", 1_000_000i64 * 1024)).unwrap();
        let with_cgroup = SignalPaths { memory_cgroup: Some(cg), ..paths };
        assert_eq!(observe(&with_cgroup)["memory.available"], Observation { available: 6_000_000 * 1024, capacity: 8_000_000 * 1024 });
        assert_eq!(o["pid.available"], Observation { available: 32768 - 768, capacity: 32768 });
        assert!(o["nodefs.available"].capacity > 0 && o["nodefs.inodesFree"].capacity > 0);
        assert!(!o.contains_key("imagefs.available"), "unreadable image fs is left out");
    }

    #[test]
    fn the_runtimes_image_filesystem_replaces_the_guess() {
        use crate::stats::api::{FsStats, RuntimeStats};
        let fs = FsStats {
            time: crate::status::api_time(std::time::UNIX_EPOCH),
            available_bytes: Some(30),
            capacity_bytes: Some(100),
            used_bytes: Some(70),
            inodes_free: Some(5),
            inodes: Some(10),
            inodes_used: Some(5),
        };
        let mut o = Observations::new();
        o.insert("imagefs.available".into(), Observation { available: 1, capacity: 2 });
        with_runtime_filesystems(&mut o, Some(&RuntimeStats { image_fs: Some(fs), container_fs: None }));
        assert_eq!(o["imagefs.available"], Observation { available: 30, capacity: 100 });
        assert_eq!(o["containerfs.inodesFree"], Observation { available: 5, capacity: 10 }, "containerfs is the image fs when not split");
        with_runtime_filesystems(&mut o, None);
        assert_eq!(o.len(), 4);
    }

    #[test]
    fn allocatable_memory_is_what_the_pods_cgroup_has_left() {
        let pods = |memory: serde_json::Value| -> crate::stats::api::ContainerStats {
            serde_json::from_value(serde_json::json!({"name": "pods", "startTime": "2026-01-01T00:00:00Z", "memory": memory})).unwrap()
        };
        let mut o = Observations::new();
        with_allocatable_memory(
            &mut o,
            &[pods(serde_json::json!({"time": "2026-01-01T00:00:00Z", "availableBytes": 300, "workingSetBytes": 700}))],
        );
        assert_eq!(o["allocatableMemory.available"], Observation { available: 300, capacity: 1000 });
        let mut o = Observations::new();
        with_allocatable_memory(&mut o, &[pods(serde_json::json!({"time": "2026-01-01T00:00:00Z", "workingSetBytes": 700}))]);
        assert!(o.is_empty(), "no limit on the pods cgroup: no signal");
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
