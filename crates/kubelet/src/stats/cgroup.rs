//! One cgroup's resource use, read from cgroupfs (v1: the `cpu`, `cpuacct`, `memory`, `pids`
//! and `blkio` hierarchies; v2: the unified tree). What cAdvisor reads for the kubelet; the
//! parsers are pure and the mount point is a parameter, so tests run on trees they write.

use std::collections::HashMap;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use rustix::fs::{Mode, OFlags};

use super::api::{PsiData, PsiStats};
use crate::cm::cgroupfs::Cgroupfs;

/// v1 limits at or above this are "no limit" (the kernel's is `PAGE_COUNTER_MAX` pages).
const V1_UNLIMITED: u64 = 1 << 62;
/// `USER_HZ`: the unit of v1 `cpuacct.stat`.
const USER_HZ: u64 = 100;

/// Memory figures of a cgroup, in bytes (faults are counts).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemorySample {
    /// Bytes charged, page cache included (v1 `memory.usage_in_bytes`, v2 `memory.current`).
    pub usage: u64,
    /// Peak usage (v1 `memory.max_usage_in_bytes`, v2 `memory.peak`); `None` where the kernel
    /// does not keep it.
    pub max_usage: Option<u64>,
    /// `None`: unlimited.
    pub limit: Option<u64>,
    /// Soft limit (v1) / `memory.low` (v2); 0 when none.
    pub reservation: u64,
    /// Times usage hit the limit (v1 `memory.failcnt`); `None` on v2.
    pub failcnt: Option<u64>,
    /// Page cache (v1 `total_cache`, v2 `file` of `memory.stat`).
    pub cache: u64,
    /// Anonymous memory (v1 `total_rss`, v2 `anon`).
    pub rss: u64,
    /// Memory-mapped file pages (v1 `total_mapped_file`, v2 `file_mapped`).
    pub mapped_file: u64,
    /// Inactive file pages, which the working set leaves out (`total_inactive_file` /
    /// `inactive_file`).
    pub inactive_file: u64,
    /// Page faults, cumulative (`pgfault`).
    pub page_faults: u64,
    /// Major page faults, cumulative (`pgmajfault`).
    pub major_page_faults: u64,
    /// `None`: the kernel does not account swap for this cgroup.
    pub swap: Option<u64>,
    /// The swap limit: v1 `memory.memsw.limit_in_bytes` (memory plus swap), v2
    /// `memory.swap.max`; `None`: unlimited or not accounted.
    pub swap_limit: Option<u64>,
    /// Processes the OOM killer killed in the cgroup (`oom_kill` of v1 `memory.oom_control`, v2
    /// `memory.events`).
    pub oom_kills: u64,
    /// v2 `memory.events`: `high` and `max`.
    pub events_high: u64,
    /// v2 `memory.events` `max`: times usage was about to go over `memory.max`; 0 on v1.
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
    /// The block device's major number.
    pub major: u64,
    /// The block device's minor number.
    pub minor: u64,
    /// Bytes read, cumulative (v1 `Read` of `io_service_bytes`, v2 `rbytes`).
    pub read_bytes: u64,
    /// Bytes written, cumulative (v1 `Write` of `io_service_bytes`, v2 `wbytes`).
    pub write_bytes: u64,
    /// Read operations, cumulative (v1 `Read` of `io_serviced`, v2 `rios`).
    pub reads: u64,
    /// Write operations, cumulative (v1 `Write` of `io_serviced`, v2 `wios`).
    pub writes: u64,
}

/// Everything read from one cgroup at one instant.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CgroupSample {
    /// When the cgroup directory was made (its change time).
    pub created: Option<SystemTime>,
    /// CPU time, cumulative, in nanoseconds (v1 `cpuacct.usage`, v2 `usage_usec` of `cpu.stat`).
    pub cpu_usage_ns: Option<u64>,
    /// User-mode CPU time, cumulative, in nanoseconds (v1 `cpuacct.stat`, v2 `user_usec`).
    pub cpu_user_ns: Option<u64>,
    /// Kernel-mode CPU time, cumulative, in nanoseconds (v1 `cpuacct.stat`, v2 `system_usec`).
    pub cpu_system_ns: Option<u64>,
    /// CFS enforcement periods elapsed (`nr_periods` of `cpu.stat`; on v1 read only with a quota).
    pub cpu_periods: Option<u64>,
    /// Periods in which the cgroup was throttled (`nr_throttled`).
    pub cpu_throttled_periods: Option<u64>,
    /// Time throttled, cumulative, in nanoseconds (v1 `throttled_time`, v2 `throttled_usec`).
    pub cpu_throttled_ns: Option<u64>,
    /// CPU shares (v1 `cpu.shares`; v2 `cpu.weight` converted back to shares).
    pub cpu_shares: Option<u64>,
    /// µs per period; `None`: no quota.
    pub cpu_quota_us: Option<u64>,
    /// The CFS period in µs (v1 `cpu.cfs_period_us`, v2 the second field of `cpu.max`).
    pub cpu_period_us: Option<u64>,
    /// Memory figures; `None` when the cgroup has no usage file (the v2 root).
    pub memory: Option<MemorySample>,
    /// Tasks in the cgroup now (`pids.current`).
    pub pids: Option<u64>,
    /// The cgroup's task limit (`pids.max`); `None` when unlimited (`max`) or unreadable.
    pub pids_max: Option<u64>,
    /// I/O counters per block device (v1 `blkio.throttle.*_recursive`, v2 `io.stat`).
    pub blkio: Vec<BlkioSample>,
    /// CPU pressure (`cpu.pressure`, v2 only).
    pub cpu_psi: Option<PsiStats>,
    /// Memory pressure (`memory.pressure`, v2 only).
    pub memory_psi: Option<PsiStats>,
    /// I/O pressure (`io.pressure`, v2 only).
    pub io_psi: Option<PsiStats>,
}

/// Reads cgroups of one cgroupfs mount. Limits and creation times are cached for a few rounds
/// (they change only with a resize); usage is read every time.
#[derive(Debug)]
pub struct CgroupReader {
    fs: Cgroupfs,
    /// v1: whether the kernel accounts swap (`memory.memsw.*` exist); checked once.
    swap_accounting: bool,
    round: AtomicU64,
    specs: Mutex<HashMap<String, CachedSpec>>,
}

impl CgroupReader {
    /// A reader of the mount `fs`; on v1 it checks once whether the kernel accounts swap.
    pub fn new(fs: Cgroupfs) -> Self {
        let swap_accounting = match &fs {
            Cgroupfs::V1 { mount } => mount.join("memory/memory.memsw.usage_in_bytes").exists(),
            Cgroupfs::V2 { .. } => true,
        };
        CgroupReader { fs, swap_accounting, round: AtomicU64::new(0), specs: Mutex::default() }
    }

    /// Whether the mount is cgroup v2 (the unified hierarchy).
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
            if let Some(s) = super::read::text_at(&dir.join("cgroup.procs")) {
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

    /// Starts a sampling round: cached limits older than `SPEC_REFRESH_ROUNDS` are read
    /// again, and those of cgroups not read in the last round are forgotten.
    pub fn begin_round(&self) {
        let round = self.round.fetch_add(1, Ordering::Relaxed) + 1;
        self.specs.lock().unwrap_or_else(|e| e.into_inner()).retain(|_, s| s.used + 1 >= round);
    }

    /// The cgroup's limits, from the cache unless due for a refresh; `read` reads them.
    fn spec(&self, rel: &str, read: impl FnOnce() -> Spec) -> Spec {
        let round = self.round.load(Ordering::Relaxed);
        let mut specs = self.specs.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = specs.get_mut(rel)
            && round < c.read + SPEC_REFRESH_ROUNDS
        {
            c.used = round;
            return c.spec.clone();
        }
        let spec = read();
        specs.insert(rel.to_string(), CachedSpec { spec: spec.clone(), read: round, used: round });
        spec
    }

    fn read_v1(&self, rel: &str) -> Option<CgroupSample> {
        let memory = Dir::open(&self.dir("memory", rel));
        let cpu = Dir::open(&self.dir("cpu", rel));
        let cpuacct = Dir::open(&self.dir("cpuacct", rel));
        if !memory.exists() && !cpuacct.exists() {
            return None;
        }
        let pids = Dir::open(&self.dir("pids", rel));
        let limited = |v: Option<u64>| v.filter(|l| *l < V1_UNLIMITED);
        let swap_accounting = self.swap_accounting;
        let spec = self.spec(rel, || Spec {
            created: memory.created().or_else(|| cpuacct.created()),
            cpu_shares: cpu.u64("cpu.shares"),
            cpu_period_us: cpu.u64("cpu.cfs_period_us"),
            cpu_quota_us: cpu.read("cpu.cfs_quota_us").and_then(|q| q.trim().parse::<i64>().ok()).and_then(|q| u64::try_from(q).ok()),
            memory_limit: limited(memory.u64("memory.limit_in_bytes")),
            reservation: limited(memory.u64("memory.soft_limit_in_bytes")).unwrap_or(0),
            swap_limit: if swap_accounting { limited(memory.u64("memory.memsw.limit_in_bytes")) } else { None },
            pids_max: pids.u64("pids.max"),
        });
        let mut s = CgroupSample {
            created: spec.created,
            cpu_shares: spec.cpu_shares,
            cpu_period_us: spec.cpu_period_us,
            cpu_quota_us: spec.cpu_quota_us,
            pids_max: spec.pids_max,
            ..Default::default()
        };
        s.cpu_usage_ns = cpuacct.u64("cpuacct.usage");
        if let Some(stat) = cpuacct.read("cpuacct.stat") {
            let ticks = |k| keyed(&stat, k).map(|t| t * (1_000_000_000 / USER_HZ));
            s.cpu_user_ns = ticks("user");
            s.cpu_system_ns = ticks("system");
        }
        if spec.cpu_quota_us.is_some()
            && let Some(stat) = cpu.read("cpu.stat")
        {
            s.cpu_periods = keyed(&stat, "nr_periods");
            s.cpu_throttled_periods = keyed(&stat, "nr_throttled");
            s.cpu_throttled_ns = keyed(&stat, "throttled_time");
        }
        if let Some(usage) = memory.u64("memory.usage_in_bytes") {
            let stat = memory.read("memory.stat").unwrap_or_default();
            let stat_of = |k| keyed(&stat, k).unwrap_or(0);
            let memsw = if swap_accounting { memory.u64("memory.memsw.usage_in_bytes") } else { None };
            s.memory = Some(MemorySample {
                usage,
                max_usage: memory.u64("memory.max_usage_in_bytes"),
                limit: spec.memory_limit,
                reservation: spec.reservation,
                failcnt: memory.u64("memory.failcnt"),
                cache: stat_of("total_cache"),
                rss: stat_of("total_rss"),
                mapped_file: stat_of("total_mapped_file"),
                inactive_file: stat_of("total_inactive_file"),
                page_faults: stat_of("total_pgfault"),
                major_page_faults: stat_of("total_pgmajfault"),
                swap: memsw.map(|m| m.saturating_sub(usage)),
                swap_limit: spec.swap_limit,
                oom_kills: memory.read("memory.oom_control").and_then(|c| keyed(&c, "oom_kill")).unwrap_or(0),
                events_high: 0,
                events_max: 0,
            });
        }
        s.pids = pids.u64("pids.current");
        let blkio = Dir::open(&self.dir("blkio", rel));
        s.blkio = v1_blkio(
            &blkio.read("blkio.throttle.io_service_bytes_recursive").unwrap_or_default(),
            &blkio.read("blkio.throttle.io_serviced_recursive").unwrap_or_default(),
        );
        Some(s)
    }

    fn read_v2(&self, rel: &str) -> Option<CgroupSample> {
        let dir = Dir::open(&self.dir("", rel));
        if !dir.exists() {
            return None;
        }
        let spec = self.spec(rel, || {
            let max = dir.read("cpu.max").unwrap_or_default();
            let mut parts = max.split_whitespace();
            Spec {
                created: dir.created(),
                cpu_shares: dir.u64("cpu.weight").map(weight_to_shares),
                cpu_quota_us: parts.next().and_then(|q| q.parse().ok()),
                cpu_period_us: parts.next().and_then(|p| p.parse().ok()),
                memory_limit: dir.u64("memory.max"),
                reservation: dir.u64("memory.low").unwrap_or(0),
                swap_limit: dir.u64("memory.swap.max"),
                pids_max: dir.u64("pids.max"),
            }
        });
        let mut s = CgroupSample {
            created: spec.created,
            cpu_shares: spec.cpu_shares,
            cpu_period_us: spec.cpu_period_us,
            cpu_quota_us: spec.cpu_quota_us,
            pids_max: spec.pids_max,
            ..Default::default()
        };
        if let Some(stat) = dir.read("cpu.stat") {
            let ns = |k| keyed(&stat, k).map(|us| us * 1000);
            s.cpu_usage_ns = ns("usage_usec");
            s.cpu_user_ns = ns("user_usec");
            s.cpu_system_ns = ns("system_usec");
            s.cpu_periods = keyed(&stat, "nr_periods");
            s.cpu_throttled_periods = keyed(&stat, "nr_throttled");
            s.cpu_throttled_ns = ns("throttled_usec");
        }
        if let Some(usage) = dir.u64("memory.current") {
            let stat = dir.read("memory.stat").unwrap_or_default();
            let stat_of = |k| keyed(&stat, k).unwrap_or(0);
            let events = dir.read("memory.events").unwrap_or_default();
            let event = |k| keyed(&events, k).unwrap_or(0);
            s.memory = Some(MemorySample {
                usage,
                max_usage: dir.u64("memory.peak"),
                limit: spec.memory_limit,
                reservation: spec.reservation,
                failcnt: None,
                cache: stat_of("file"),
                rss: stat_of("anon"),
                mapped_file: stat_of("file_mapped"),
                inactive_file: stat_of("inactive_file"),
                page_faults: stat_of("pgfault"),
                major_page_faults: stat_of("pgmajfault"),
                swap: dir.u64("memory.swap.current"),
                swap_limit: spec.swap_limit,
                oom_kills: event("oom_kill"),
                events_high: event("high"),
                events_max: event("max"),
            });
        }
        s.pids = dir.u64("pids.current");
        s.blkio = v2_io_stat(&dir.read("io.stat").unwrap_or_default());
        s.cpu_psi = dir.read("cpu.pressure").map(|p| parse_psi(&p));
        s.memory_psi = dir.read("memory.pressure").map(|p| parse_psi(&p));
        s.io_psi = dir.read("io.pressure").map(|p| parse_psi(&p));
        Some(s)
    }
}

/// How many rounds a cgroup's limits are reused before they are read again (a minute at the
/// collector's 10 s).
const SPEC_REFRESH_ROUNDS: u64 = 6;

/// What rarely changes in a cgroup: its creation time and limits.
#[derive(Debug, Clone, Default)]
struct Spec {
    created: Option<SystemTime>,
    cpu_shares: Option<u64>,
    cpu_period_us: Option<u64>,
    cpu_quota_us: Option<u64>,
    memory_limit: Option<u64>,
    reservation: u64,
    swap_limit: Option<u64>,
    pids_max: Option<u64>,
}

#[derive(Debug)]
struct CachedSpec {
    spec: Spec,
    /// The round it was read in, and the last round it was used in.
    read: u64,
    used: u64,
}

/// A cgroup directory opened once (`O_PATH`); its files are opened relative to it, so each
/// read resolves one name instead of the whole path.
struct Dir(Option<OwnedFd>);

impl Dir {
    fn open(path: &Path) -> Dir {
        Dir(rustix::fs::open(path, OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty()).ok())
    }

    fn exists(&self) -> bool {
        self.0.is_some()
    }

    fn read(&self, name: &str) -> Option<String> {
        let fd = rustix::fs::openat(self.0.as_ref()?, name, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty()).ok()?;
        super::read::text(std::fs::File::from(fd))
    }

    /// A file holding one number; `max` and junk read as `None`.
    fn u64(&self, name: &str) -> Option<u64> {
        self.read(name)?.trim().parse().ok()
    }

    /// When the directory was made (its change time).
    fn created(&self) -> Option<SystemTime> {
        let st = rustix::fs::fstat(self.0.as_ref()?).ok()?;
        let secs = u64::try_from(st.st_ctime).ok()?;
        Some(SystemTime::UNIX_EPOCH + std::time::Duration::new(secs, u32::try_from(st.st_ctime_nsec).unwrap_or(0)))
    }
}

/// The value of `key` in a `key value` per line file (`memory.stat`, `cpu.stat`).
pub fn keyed(text: &str, key: &str) -> Option<u64> {
    // Prefix tests, not a split at the first whitespace: most lines are not the key, and
    // this runs for a dozen keys of every cgroup at every sampling round.
    text.lines().find_map(|l| l.strip_prefix(key)?.strip_prefix([' ', '\t'])?.trim().parse().ok())
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
            let (Some(dev), Some(op), Some(v)) = (w.next().and_then(device), w.next(), w.next().and_then(|v| v.parse::<u64>().ok())) else {
                continue;
            };
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
