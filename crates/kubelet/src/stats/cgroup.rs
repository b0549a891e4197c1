//! One cgroup's resource use, read from cgroupfs (v1: the `cpu`, `cpuacct`, `memory`, `pids`
//! and `blkio` hierarchies; v2: the unified tree). What cAdvisor reads for the kubelet; the
//! parsers are pure and the mount point is a parameter, so tests run on trees they write.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::api::{PsiData, PsiStats};
use crate::cm::cgroupfs::Cgroupfs;

/// v1 limits at or above this are "no limit" (the kernel's is `PAGE_COUNTER_MAX` pages).
const V1_UNLIMITED: u64 = 1 << 62;
/// `USER_HZ`: the unit of v1 `cpuacct.stat`.
const USER_HZ: u64 = 100;

/// Memory figures of a cgroup, in bytes (faults are counts).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemorySample {
    pub usage: u64,
    pub max_usage: Option<u64>,
    /// `None`: unlimited.
    pub limit: Option<u64>,
    /// Soft limit (v1) / `memory.low` (v2); 0 when none.
    pub reservation: u64,
    pub failcnt: Option<u64>,
    pub cache: u64,
    pub rss: u64,
    pub mapped_file: u64,
    pub inactive_file: u64,
    pub page_faults: u64,
    pub major_page_faults: u64,
    /// `None`: the kernel does not account swap for this cgroup.
    pub swap: Option<u64>,
    pub swap_limit: Option<u64>,
    pub oom_kills: u64,
    /// v2 `memory.events`: `high` and `max`.
    pub events_high: u64,
    pub events_max: u64,
}

impl MemorySample {
    /// Usage minus inactive file pages, never below zero (upstream's working set).
    pub fn working_set(&self) -> u64 {
        self.usage.saturating_sub(self.inactive_file)
    }
}

/// Bytes and operations per block device, by direction.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BlkioSample {
    pub major: u64,
    pub minor: u64,
    pub read_bytes: u64,
    pub write_bytes: u64,
    pub reads: u64,
    pub writes: u64,
}

/// Everything read from one cgroup at one instant.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CgroupSample {
    /// When the cgroup directory was made (its change time).
    pub created: Option<SystemTime>,
    pub cpu_usage_ns: Option<u64>,
    pub cpu_user_ns: Option<u64>,
    pub cpu_system_ns: Option<u64>,
    pub cpu_periods: Option<u64>,
    pub cpu_throttled_periods: Option<u64>,
    pub cpu_throttled_ns: Option<u64>,
    pub cpu_shares: Option<u64>,
    /// µs per period; `None`: no quota.
    pub cpu_quota_us: Option<u64>,
    pub cpu_period_us: Option<u64>,
    pub memory: Option<MemorySample>,
    pub pids: Option<u64>,
    pub pids_max: Option<u64>,
    pub blkio: Vec<BlkioSample>,
    pub cpu_psi: Option<PsiStats>,
    pub memory_psi: Option<PsiStats>,
    pub io_psi: Option<PsiStats>,
}

/// Reads cgroups of one cgroupfs mount.
#[derive(Debug, Clone)]
pub struct CgroupReader {
    fs: Cgroupfs,
}

impl CgroupReader {
    pub fn new(fs: Cgroupfs) -> Self {
        CgroupReader { fs }
    }

    pub fn is_v2(&self) -> bool {
        matches!(self.fs, Cgroupfs::V2 { .. })
    }

    /// The directory of `rel` (`kubepods/pod…`, empty for the root) in `controller`'s hierarchy
    /// (ignored on v2).
    pub fn dir(&self, controller: &str, rel: &str) -> PathBuf {
        let rel = rel.trim_matches('/');
        match &self.fs {
            Cgroupfs::V2 { mount } => mount.join(rel),
            Cgroupfs::V1 { mount } => mount.join(controller).join(rel),
        }
    }

    /// The cgroup's sample; `None` when it does not exist (any more).
    pub fn read(&self, rel: &str) -> Option<CgroupSample> {
        match &self.fs {
            Cgroupfs::V1 { .. } => self.read_v1(rel),
            Cgroupfs::V2 { .. } => self.read_v2(rel),
        }
    }

    /// The names of `rel`'s child cgroups (v1: in the memory hierarchy).
    pub fn children(&self, rel: &str) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(self.dir("memory", rel)) else { return Vec::new() };
        entries.flatten().filter(|e| e.file_type().is_ok_and(|t| t.is_dir())).filter_map(|e| e.file_name().into_string().ok()).collect()
    }

    /// The processes in `rel` and its descendants (the first `limit` found).
    pub fn pids(&self, rel: &str, limit: usize) -> Vec<u32> {
        let mut out = Vec::new();
        let mut stack = vec![self.dir("pids", rel)];
        while let Some(dir) = stack.pop() {
            if let Ok(s) = std::fs::read_to_string(dir.join("cgroup.procs")) {
                out.extend(s.lines().filter_map(|l| l.trim().parse::<u32>().ok()));
            }
            if out.len() >= limit {
                out.truncate(limit);
                break;
            }
            if let Ok(entries) = std::fs::read_dir(&dir) {
                stack.extend(entries.flatten().filter(|e| e.file_type().is_ok_and(|t| t.is_dir())).map(|e| e.path()));
            }
        }
        out
    }

    fn read_v1(&self, rel: &str) -> Option<CgroupSample> {
        let memory_dir = self.dir("memory", rel);
        let cpu_dir = self.dir("cpu", rel);
        let cpuacct_dir = self.dir("cpuacct", rel);
        if !memory_dir.is_dir() && !cpuacct_dir.is_dir() {
            return None;
        }
        let mut s = CgroupSample { created: created(&memory_dir).or_else(|| created(&cpuacct_dir)), ..Default::default() };
        s.cpu_usage_ns = read_u64(&cpuacct_dir.join("cpuacct.usage"));
        if let Some(stat) = read(&cpuacct_dir.join("cpuacct.stat")) {
            let ticks = |k| keyed(&stat, k).map(|t| t * (1_000_000_000 / USER_HZ));
            s.cpu_user_ns = ticks("user");
            s.cpu_system_ns = ticks("system");
        }
        if let Some(stat) = read(&cpu_dir.join("cpu.stat")) {
            s.cpu_periods = keyed(&stat, "nr_periods");
            s.cpu_throttled_periods = keyed(&stat, "nr_throttled");
            s.cpu_throttled_ns = keyed(&stat, "throttled_time");
        }
        s.cpu_shares = read_u64(&cpu_dir.join("cpu.shares"));
        s.cpu_period_us = read_u64(&cpu_dir.join("cpu.cfs_period_us"));
        s.cpu_quota_us = read(&cpu_dir.join("cpu.cfs_quota_us")).and_then(|q| q.trim().parse::<i64>().ok()).and_then(|q| u64::try_from(q).ok());
        if let Some(usage) = read_u64(&memory_dir.join("memory.usage_in_bytes")) {
            let stat = read(&memory_dir.join("memory.stat")).unwrap_or_default();
            let stat_of = |k| keyed(&stat, k).unwrap_or(0);
            let limited = |v: Option<u64>| v.filter(|l| *l < V1_UNLIMITED);
            let memsw = read_u64(&memory_dir.join("memory.memsw.usage_in_bytes"));
            s.memory = Some(MemorySample {
                usage,
                max_usage: read_u64(&memory_dir.join("memory.max_usage_in_bytes")),
                limit: limited(read_u64(&memory_dir.join("memory.limit_in_bytes"))),
                reservation: limited(read_u64(&memory_dir.join("memory.soft_limit_in_bytes"))).unwrap_or(0),
                failcnt: read_u64(&memory_dir.join("memory.failcnt")),
                cache: stat_of("total_cache"),
                rss: stat_of("total_rss"),
                mapped_file: stat_of("total_mapped_file"),
                inactive_file: stat_of("total_inactive_file"),
                page_faults: stat_of("total_pgfault"),
                major_page_faults: stat_of("total_pgmajfault"),
                swap: memsw.map(|m| m.saturating_sub(usage)),
                swap_limit: limited(read_u64(&memory_dir.join("memory.memsw.limit_in_bytes"))),
                oom_kills: read(&memory_dir.join("memory.oom_control")).and_then(|c| keyed(&c, "oom_kill")).unwrap_or(0),
                events_high: 0,
                events_max: 0,
            });
        }
        let pids_dir = self.dir("pids", rel);
        s.pids = read_u64(&pids_dir.join("pids.current"));
        s.pids_max = read_u64(&pids_dir.join("pids.max"));
        let blkio_dir = self.dir("blkio", rel);
        s.blkio = v1_blkio(
            &read(&blkio_dir.join("blkio.throttle.io_service_bytes_recursive")).unwrap_or_default(),
            &read(&blkio_dir.join("blkio.throttle.io_serviced_recursive")).unwrap_or_default(),
        );
        Some(s)
    }

    fn read_v2(&self, rel: &str) -> Option<CgroupSample> {
        let dir = self.dir("", rel);
        if !dir.is_dir() {
            return None;
        }
        let mut s = CgroupSample { created: created(&dir), ..Default::default() };
        if let Some(stat) = read(&dir.join("cpu.stat")) {
            let ns = |k| keyed(&stat, k).map(|us| us * 1000);
            s.cpu_usage_ns = ns("usage_usec");
            s.cpu_user_ns = ns("user_usec");
            s.cpu_system_ns = ns("system_usec");
            s.cpu_periods = keyed(&stat, "nr_periods");
            s.cpu_throttled_periods = keyed(&stat, "nr_throttled");
            s.cpu_throttled_ns = ns("throttled_usec");
        }
        s.cpu_shares = read_u64(&dir.join("cpu.weight")).map(weight_to_shares);
        if let Some(max) = read(&dir.join("cpu.max")) {
            let mut parts = max.split_whitespace();
            s.cpu_quota_us = parts.next().and_then(|q| q.parse().ok());
            s.cpu_period_us = parts.next().and_then(|p| p.parse().ok());
        }
        if let Some(usage) = read_u64(&dir.join("memory.current")) {
            let stat = read(&dir.join("memory.stat")).unwrap_or_default();
            let stat_of = |k| keyed(&stat, k).unwrap_or(0);
            let events = read(&dir.join("memory.events")).unwrap_or_default();
            let event = |k| keyed(&events, k).unwrap_or(0);
            s.memory = Some(MemorySample {
                usage,
                max_usage: read_u64(&dir.join("memory.peak")),
                limit: read_u64(&dir.join("memory.max")),
                reservation: read_u64(&dir.join("memory.low")).unwrap_or(0),
                failcnt: None,
                cache: stat_of("file"),
                rss: stat_of("anon"),
                mapped_file: stat_of("file_mapped"),
                inactive_file: stat_of("inactive_file"),
                page_faults: stat_of("pgfault"),
                major_page_faults: stat_of("pgmajfault"),
                swap: read_u64(&dir.join("memory.swap.current")),
                swap_limit: read_u64(&dir.join("memory.swap.max")),
                oom_kills: event("oom_kill"),
                events_high: event("high"),
                events_max: event("max"),
            });
        }
        s.pids = read_u64(&dir.join("pids.current"));
        s.pids_max = read_u64(&dir.join("pids.max"));
        s.blkio = v2_io_stat(&read(&dir.join("io.stat")).unwrap_or_default());
        s.cpu_psi = read(&dir.join("cpu.pressure")).map(|p| parse_psi(&p));
        s.memory_psi = read(&dir.join("memory.pressure")).map(|p| parse_psi(&p));
        s.io_psi = read(&dir.join("io.pressure")).map(|p| parse_psi(&p));
        Some(s)
    }
}

fn read(path: &Path) -> Option<String> {
    std::fs::read_to_string(path).ok()
}

/// A file holding one number; `max` and junk read as `None`.
fn read_u64(path: &Path) -> Option<u64> {
    read(path)?.trim().parse().ok()
}

fn created(dir: &Path) -> Option<SystemTime> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(dir).ok()?;
    let secs = u64::try_from(m.ctime()).ok()?;
    Some(SystemTime::UNIX_EPOCH + std::time::Duration::new(secs, u32::try_from(m.ctime_nsec()).unwrap_or(0)))
}

/// The value of `key` in a `key value` per line file (`memory.stat`, `cpu.stat`).
pub fn keyed(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(char::is_whitespace)?;
        (k == key).then(|| v.trim().parse().ok()).flatten()
    })
}

/// v2 `cpu.weight` (1–10000) back to v1 shares (2–262144), as cAdvisor reports it.
pub fn weight_to_shares(weight: u64) -> u64 {
    2 + (weight.saturating_sub(1) * 262_142) / 9_999
}

/// A `*.pressure` file: `some avg10=… avg60=… avg300=… total=…` and a `full` line.
pub fn parse_psi(text: &str) -> PsiStats {
    let mut out = PsiStats::default();
    for line in text.lines() {
        let mut words = line.split_whitespace();
        let target = match words.next() {
            Some("some") => &mut out.some,
            Some("full") => &mut out.full,
            _ => continue,
        };
        let mut data = PsiData::default();
        for w in words {
            match w.split_once('=') {
                Some(("avg10", v)) => data.avg10 = v.parse().unwrap_or(0.0),
                Some(("avg60", v)) => data.avg60 = v.parse().unwrap_or(0.0),
                Some(("avg300", v)) => data.avg300 = v.parse().unwrap_or(0.0),
                Some(("total", v)) => data.total = v.parse().unwrap_or(0),
                _ => {}
            }
        }
        *target = data;
    }
    out
}

/// `MAJ:MIN` of a blkio / io.stat line.
fn device(word: &str) -> Option<(u64, u64)> {
    let (maj, min) = word.split_once(':')?;
    Some((maj.parse().ok()?, min.parse().ok()?))
}

fn entry(out: &mut Vec<BlkioSample>, (major, minor): (u64, u64)) -> &mut BlkioSample {
    let i = match out.iter().position(|b| b.major == major && b.minor == minor) {
        Some(i) => i,
        None => {
            out.push(BlkioSample { major, minor, ..Default::default() });
            out.len() - 1
        }
    };
    &mut out[i]
}

/// v1 `blkio.throttle.io_service_bytes_recursive` and `…io_serviced_recursive`
/// (`8:0 Read 4096` lines, a `Total` line last).
pub fn v1_blkio(bytes: &str, ops: &str) -> Vec<BlkioSample> {
    let mut out = Vec::new();
    for (text, is_bytes) in [(bytes, true), (ops, false)] {
        for line in text.lines() {
            let mut w = line.split_whitespace();
            let (Some(dev), Some(op), Some(v)) = (w.next().and_then(device), w.next(), w.next().and_then(|v| v.parse::<u64>().ok())) else { continue };
            let e = entry(&mut out, dev);
            match (op, is_bytes) {
                ("Read", true) => e.read_bytes = v,
                ("Write", true) => e.write_bytes = v,
                ("Read", false) => e.reads = v,
                ("Write", false) => e.writes = v,
                _ => {}
            }
        }
    }
    out
}

/// v2 `io.stat` (`8:0 rbytes=… wbytes=… rios=… wios=… dbytes=… dios=…`).
pub fn v2_io_stat(text: &str) -> Vec<BlkioSample> {
    let mut out = Vec::new();
    for line in text.lines() {
        let mut w = line.split_whitespace();
        let Some(dev) = w.next().and_then(device) else { continue };
        let e = entry(&mut out, dev);
        for kv in w {
            let Some((k, v)) = kv.split_once('=') else { continue };
            let v = v.parse().unwrap_or(0);
            match k {
                "rbytes" => e.read_bytes = v,
                "wbytes" => e.write_bytes = v,
                "rios" => e.reads = v,
                "wios" => e.writes = v,
                _ => {}
            }
        }
    }
    out
}

#[cfg(test)]
#[path = "cgroup_tests.rs"]
mod tests;
