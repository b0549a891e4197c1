//! Host-wide figures from `/proc` (the node's memory, swap, pressure, process limits, boot
//! time) and per-process facts of a cgroup's processes (threads, open files, sockets), as
//! cAdvisor reads them. `proc_root` is a parameter so tests run on written trees.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, SystemTime};

use super::api::{PsiStats, SwapStats};
use super::cgroup::{MemorySample, keyed, parse_psi};
use crate::status::api_time;

/// `/proc/meminfo` in bytes, by field name.
fn meminfo(proc_root: &Path) -> Vec<(String, u64)> {
    let text = std::fs::read_to_string(proc_root.join("meminfo")).unwrap_or_default();
    text.lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(':')?;
            let kb: u64 = v.split_whitespace().next()?.parse().ok()?;
            Some((k.to_string(), kb * 1024))
        })
        .collect()
}

fn field(m: &[(String, u64)], k: &str) -> Option<u64> {
    m.iter().find(|(n, _)| n == k).map(|(_, v)| *v)
}

/// The node's memory from `/proc/meminfo` and `/proc/vmstat`, where the root cgroup has no
/// usage file (cgroup v2).
pub fn meminfo_sample(proc_root: &Path) -> Option<MemorySample> {
    let m = meminfo(proc_root);
    let total = field(&m, "MemTotal")?;
    let vmstat = std::fs::read_to_string(proc_root.join("vmstat")).unwrap_or_default();
    Some(MemorySample {
        usage: total.saturating_sub(field(&m, "MemFree").unwrap_or(0)),
        inactive_file: field(&m, "Inactive(file)").unwrap_or(0),
        rss: field(&m, "AnonPages").unwrap_or(0),
        cache: field(&m, "Cached").unwrap_or(0),
        mapped_file: field(&m, "Mapped").unwrap_or(0),
        page_faults: keyed(&vmstat, "pgfault").unwrap_or(0),
        major_page_faults: keyed(&vmstat, "pgmajfault").unwrap_or(0),
        ..Default::default()
    })
}

/// The node's swap (`None` without swap).
pub fn swap(proc_root: &Path, now: SystemTime) -> Option<SwapStats> {
    let m = meminfo(proc_root);
    let total = field(&m, "SwapTotal")?;
    let free = field(&m, "SwapFree").unwrap_or(0);
    Some(SwapStats { time: api_time(now), swap_available_bytes: Some(free), swap_usage_bytes: Some(total.saturating_sub(free)) })
}

/// System-wide pressure of `resource` (`cpu`, `memory`, `io`) from `/proc/pressure`.
pub fn psi(proc_root: &Path, resource: &str) -> Option<PsiStats> {
    std::fs::read_to_string(proc_root.join("pressure").join(resource)).ok().map(|t| parse_psi(&t))
}

/// When the machine booted (`btime` in `/proc/stat`).
pub fn boot_time(proc_root: &Path) -> Option<SystemTime> {
    let stat = std::fs::read_to_string(proc_root.join("stat")).ok()?;
    Some(SystemTime::UNIX_EPOCH + Duration::from_secs(keyed(&stat, "btime")?))
}

/// `kernel.pid_max`.
pub fn pid_max(proc_root: &Path) -> Option<i64> {
    std::fs::read_to_string(proc_root.join("sys/kernel/pid_max")).ok()?.trim().parse().ok()
}

/// Tasks on the node (the total in `/proc/loadavg`, what `sysinfo` counts).
pub fn process_count(proc_root: &Path) -> Option<i64> {
    let avg = std::fs::read_to_string(proc_root.join("loadavg")).ok()?;
    avg.split_whitespace().nth(3)?.split_once('/')?.1.parse().ok()
}

/// Logical CPUs (`processor` lines of `/proc/cpuinfo`).
pub fn num_cores(proc_root: &Path) -> u64 {
    let info = std::fs::read_to_string(proc_root.join("cpuinfo")).unwrap_or_default();
    let n = info.lines().filter(|l| l.starts_with("processor")).count() as u64;
    if n == 0 { std::thread::available_parallelism().map_or(1, |n| n.get() as u64) } else { n }
}

/// What a cgroup's processes hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProcessFacts {
    /// Processes looked at (the cgroup's, up to the collector's cap).
    pub processes: u64,
    /// Threads of those processes (`Threads:` of `/proc/<pid>/status`).
    pub threads: u64,
    /// The cgroup's `pids.max` (0: unlimited).
    pub threads_max: u64,
    /// Open file descriptors of those processes.
    pub file_descriptors: u64,
    /// Of those descriptors, the sockets.
    pub sockets: u64,
    /// The soft `RLIMIT_NOFILE` of the first process.
    pub max_open_files_soft: Option<u64>,
}

/// The soft "Max open files" limit of a `/proc/<pid>/limits` text (`None` when unlimited).
pub fn max_open_files_soft(limits: &str) -> Option<u64> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.trim_start_matches("Max open files").split_whitespace().next()?.parse().ok()
}

/// Facts about `pids` (their threads, open files and sockets).
pub fn process_facts(proc_root: &Path, pids: &[u32], pids_max: Option<u64>) -> ProcessFacts {
    let mut f = ProcessFacts { processes: pids.len() as u64, threads_max: pids_max.unwrap_or(0), ..Default::default() };
    for pid in pids {
        let dir = proc_root.join(pid.to_string());
        if let Some(status) = super::read::text_at(&dir.join("status")) {
            f.threads += status.lines().find_map(|l| l.strip_prefix("Threads:")).and_then(|v| v.trim().parse::<u64>().ok()).unwrap_or(0);
        }
        for fd in std::fs::read_dir(dir.join("fd")).into_iter().flatten().flatten() {
            f.file_descriptors += 1;
            if std::fs::read_link(fd.path()).is_ok_and(|t| t.to_string_lossy().starts_with("socket:")) {
                f.sockets += 1;
            }
        }
        if f.max_open_files_soft.is_none() {
            f.max_open_files_soft = super::read::text_at(&dir.join("limits")).and_then(|l| max_open_files_soft(&l));
        }
    }
    f
}

/// `/dev/<name>` of block device `major:minor` (from sysfs), empty when unknown. Names found
/// are kept: `/metrics/cadvisor` asks for each cgroup's devices at every scrape, and a sysfs
/// read per sample was most of its time. Unknown numbers are read again at the next call.
pub fn block_device_name(major: u64, minor: u64) -> String {
    static NAMES: std::sync::Mutex<BTreeMap<(u64, u64), String>> = std::sync::Mutex::new(BTreeMap::new());
    if let Some(name) = NAMES.lock().expect("device names lock").get(&(major, minor)) {
        return name.clone();
    }
    let uevent = std::fs::read_to_string(format!("/sys/dev/block/{major}:{minor}/uevent")).unwrap_or_default();
    let name = uevent.lines().find_map(|l| l.strip_prefix("DEVNAME=")).map(|n| format!("/dev/{n}")).unwrap_or_default();
    if !name.is_empty() {
        NAMES.lock().expect("device names lock").insert((major, minor), name.clone());
    }
    name
}

/// The device a path's filesystem is mounted from (`/dev/vda`), by the longest mount point
/// containing it in `/proc/self/mounts`.
pub fn mount_source(proc_root: &Path, path: &Path) -> Option<String> {
    let mounts = std::fs::read_to_string(proc_root.join("self/mounts")).ok()?;
    mounts
        .lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            let (src, point) = (w.next()?, w.next()?);
            path.starts_with(point).then(|| (point.len(), src.to_string()))
        })
        .max_by_key(|(len, _)| *len)
        .map(|(_, src)| src)
}

/// One disk's counters from `/proc/diskstats`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DiskStats {
    /// Reads completed.
    pub reads: u64,
    /// Adjacent reads merged into one.
    pub reads_merged: u64,
    /// 512-byte sectors read.
    pub sectors_read: u64,
    /// Time spent reading, in milliseconds.
    pub read_ms: u64,
    /// Writes completed.
    pub writes: u64,
    /// Adjacent writes merged into one.
    pub writes_merged: u64,
    /// 512-byte sectors written.
    pub sectors_written: u64,
    /// Time spent writing, in milliseconds.
    pub write_ms: u64,
    /// I/Os in flight now.
    pub in_progress: u64,
    /// Time the device was busy with I/O, in milliseconds.
    pub io_ms: u64,
    /// Time spent on I/O weighted by the I/Os in flight, in milliseconds.
    pub weighted_io_ms: u64,
}

/// The `/proc/diskstats` line of device `name` (`vda`).
pub fn disk_stats(proc_root: &Path, name: &str) -> Option<DiskStats> {
    let text = std::fs::read_to_string(proc_root.join("diskstats")).ok()?;
    text.lines().find_map(|l| {
        let w: Vec<&str> = l.split_whitespace().collect();
        if w.len() < 14 || w[2] != name {
            return None;
        }
        let v = |i: usize| w[i].parse().unwrap_or(0);
        Some(DiskStats {
            reads: v(3),
            reads_merged: v(4),
            sectors_read: v(5),
            read_ms: v(6),
            writes: v(7),
            writes_merged: v(8),
            sectors_written: v(9),
            write_ms: v(10),
            in_progress: v(11),
            io_ms: v(12),
            weighted_io_ms: v(13),
        })
    })
}

/// Total swap (bytes).
pub fn swap_total(proc_root: &Path) -> u64 {
    field(&meminfo(proc_root), "SwapTotal").unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_written_proc_files() {
        let root = tempfile::tempdir().unwrap();
        let p = root.path();
        std::fs::write(
            p.join("meminfo"),
            "MemTotal: 1000 kB\nMemFree: 400 kB\nInactive(file): 100 kB\nAnonPages: 200 kB\nSwapTotal: 50 kB\nSwapFree: 20 kB\n",
        )
        .unwrap();
        std::fs::write(p.join("vmstat"), "pgfault 77\npgmajfault 3\n").unwrap();
        std::fs::write(p.join("stat"), "cpu 1 2 3\nbtime 1700000000\n").unwrap();
        std::fs::write(p.join("loadavg"), "0.10 0.20 0.30 2/345 999\n").unwrap();
        std::fs::create_dir_all(p.join("sys/kernel")).unwrap();
        std::fs::write(p.join("sys/kernel/pid_max"), "4194304\n").unwrap();
        let m = meminfo_sample(p).unwrap();
        assert_eq!((m.usage, m.working_set(), m.rss, m.page_faults, m.major_page_faults), (600 * 1024, 500 * 1024, 200 * 1024, 77, 3));
        let s = swap(p, SystemTime::UNIX_EPOCH).unwrap();
        assert_eq!((s.swap_usage_bytes, s.swap_available_bytes), (Some(30 * 1024), Some(20 * 1024)));
        assert_eq!(boot_time(p), Some(SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000)));
        assert_eq!((pid_max(p), process_count(p)), (Some(4_194_304), Some(345)));
        assert_eq!(psi(p, "cpu"), None);
    }

    #[test]
    fn facts_of_this_process() {
        let f = process_facts(Path::new("/proc"), &[std::process::id()], Some(100));
        assert_eq!((f.processes, f.threads_max), (1, 100));
        assert!(f.threads >= 1 && f.file_descriptors >= 1 && f.max_open_files_soft.is_some(), "{f:?}");
    }
}
