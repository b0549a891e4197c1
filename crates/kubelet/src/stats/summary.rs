//! Pure conversions from what was read (cgroup samples, filesystem figures, interface counters)
//! to the Summary API's records, as upstream's cAdvisor stats provider makes them.

use std::time::SystemTime;

use super::api::{CpuStats, FsStats, IoStats, MemoryStats, NetworkStats, SwapStats};
use super::cgroup::CgroupSample;
use super::fs::{DiskUsage, FsInfo};
use super::network::{DEFAULT_INTERFACE, InterfaceCounters};
use crate::status::api_time;

/// CPU use at `now`; the rate needs the previous sample of the same cgroup (`prev`: when, and
/// the cumulative nanoseconds then).
pub fn cpu_stats(s: &CgroupSample, now: SystemTime, prev: Option<(SystemTime, u64)>) -> Option<CpuStats> {
    let usage = s.cpu_usage_ns?;
    let rate = prev.and_then(|(then, before)| {
        let elapsed = now.duration_since(then).ok()?.as_nanos();
        (elapsed > 0 && usage >= before).then(|| u64::try_from(u128::from(usage - before) * 1_000_000_000 / elapsed).unwrap_or(u64::MAX))
    });
    Some(CpuStats { time: api_time(now), usage_nano_cores: rate, usage_core_nano_seconds: Some(usage), psi: s.cpu_psi.clone() })
}

/// Memory use; `available` is the limit (or `capacity` for an unlimited node-level cgroup)
/// minus the working set.
pub fn memory_stats(s: &CgroupSample, now: SystemTime, capacity: Option<u64>) -> Option<MemoryStats> {
    let m = s.memory.as_ref()?;
    let working_set = m.working_set();
    let available = m.limit.or(capacity).map(|l| l.saturating_sub(working_set));
    Some(MemoryStats {
        time: api_time(now),
        available_bytes: available,
        usage_bytes: Some(m.usage),
        working_set_bytes: Some(working_set),
        rss_bytes: Some(m.rss),
        page_faults: Some(m.page_faults),
        major_page_faults: Some(m.major_page_faults),
        psi: s.memory_psi.clone(),
    })
}

/// I/O pressure, where the kernel keeps it (cgroup v2).
pub fn io_stats(s: &CgroupSample, now: SystemTime) -> Option<IoStats> {
    s.io_psi.as_ref().map(|psi| IoStats { time: api_time(now), psi: Some(psi.clone()) })
}

/// Swap use, where the kernel accounts it for the cgroup.
pub fn swap_stats(s: &CgroupSample, now: SystemTime) -> Option<SwapStats> {
    let m = s.memory.as_ref()?;
    let usage = m.swap?;
    Some(SwapStats {
        time: api_time(now),
        swap_usage_bytes: Some(usage),
        swap_available_bytes: m.swap_limit.map(|l| l.saturating_sub(usage)),
    })
}

/// A filesystem's figures; `used` replaces the filesystem-wide use when given (a directory's).
pub fn fs_stats(info: Option<&FsInfo>, used: Option<DiskUsage>, now: SystemTime) -> FsStats {
    FsStats {
        time: api_time(now),
        available_bytes: info.map(|i| i.available),
        capacity_bytes: info.map(|i| i.capacity),
        used_bytes: used.map(|u| u.bytes).or(info.map(|i| i.used)),
        inodes_free: info.map(|i| i.inodes_free),
        inodes: info.map(|i| i.inodes),
        inodes_used: used.map(|u| u.inodes).or(info.map(|i| i.inodes.saturating_sub(i.inodes_free))),
    }
}

/// Network figures: `eth0` inline (empty when there is none), every interface listed.
pub fn network_stats(ifaces: &[InterfaceCounters], now: SystemTime) -> Option<NetworkStats> {
    if ifaces.is_empty() {
        return None;
    }
    let default_interface = ifaces.iter().find(|i| i.name == DEFAULT_INTERFACE).map(InterfaceCounters::summary).unwrap_or_default();
    Some(NetworkStats { time: api_time(now), default_interface, interfaces: ifaces.iter().map(InterfaceCounters::summary).collect() })
}

/// Adds `b` to `a`, each figure known only when it is known on both sides (upstream sums a
/// pod's ephemeral storage this way).
pub fn add_used(a: Option<DiskUsage>, b: Option<DiskUsage>) -> Option<DiskUsage> {
    match (a, b) {
        (Some(a), Some(b)) => Some(DiskUsage { bytes: a.bytes + b.bytes, inodes: a.inodes + b.inodes }),
        (x, None) | (None, x) => x,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::cgroup::MemorySample;
    use std::time::Duration;

    #[test]
    fn cpu_rate_comes_from_two_samples() {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
        let s = CgroupSample { cpu_usage_ns: Some(3_000_000_000), ..Default::default() };
        let first = cpu_stats(&s, t0, None).unwrap();
        assert_eq!((first.usage_nano_cores, first.usage_core_nano_seconds), (None, Some(3_000_000_000)));
        // 2 s of CPU over 10 s: 0.2 cores.
        let later = cpu_stats(&s, t0 + Duration::from_secs(10), Some((t0, 1_000_000_000))).unwrap();
        assert_eq!(later.usage_nano_cores, Some(200_000_000));
        // A counter that went back (a new cgroup of the same name) gives no rate.
        assert_eq!(cpu_stats(&s, t0 + Duration::from_secs(10), Some((t0, 9_000_000_000))).unwrap().usage_nano_cores, None);
    }

    #[test]
    fn working_set_and_available_bytes() {
        let now = SystemTime::UNIX_EPOCH;
        let mem = MemorySample { usage: 100, inactive_file: 30, limit: Some(1_000), rss: 50, ..Default::default() };
        let s = CgroupSample { memory: Some(mem.clone()), ..Default::default() };
        let m = memory_stats(&s, now, None).unwrap();
        assert_eq!((m.working_set_bytes, m.available_bytes, m.rss_bytes), (Some(70), Some(930), Some(50)));
        // Unlimited: no available bytes unless a capacity stands in.
        let unlimited = CgroupSample { memory: Some(MemorySample { limit: None, ..mem }), ..Default::default() };
        assert_eq!(memory_stats(&unlimited, now, None).unwrap().available_bytes, None);
        assert_eq!(memory_stats(&unlimited, now, Some(500)).unwrap().available_bytes, Some(430));
        // Inactive file above usage (racy reads) never underflows.
        let odd = CgroupSample { memory: Some(MemorySample { usage: 10, inactive_file: 20, ..Default::default() }), ..Default::default() };
        assert_eq!(memory_stats(&odd, now, None).unwrap().working_set_bytes, Some(0));
    }

    #[test]
    fn network_reports_eth0_inline_and_all_interfaces() {
        let now = SystemTime::UNIX_EPOCH;
        let eth0 = InterfaceCounters { name: "eth0".into(), rx_bytes: 5, ..Default::default() };
        let net1 = InterfaceCounters { name: "net1".into(), rx_bytes: 7, ..Default::default() };
        let n = network_stats(&[net1.clone(), eth0], now).unwrap();
        assert_eq!((n.default_interface.name.as_str(), n.default_interface.rx_bytes, n.interfaces.len()), ("eth0", Some(5), 2));
        let only_net1 = network_stats(&[net1], now).unwrap();
        assert_eq!((only_net1.default_interface.name.as_str(), only_net1.default_interface.rx_bytes), ("", None));
        assert_eq!(network_stats(&[], now), None);
    }

    #[test]
    fn fs_use_of_a_directory_or_the_whole_filesystem() {
        let now = SystemTime::UNIX_EPOCH;
        let info = FsInfo { capacity: 100, available: 40, used: 55, inodes: 10, inodes_free: 4 };
        let whole = fs_stats(Some(&info), None, now);
        assert_eq!((whole.used_bytes, whole.inodes_used, whole.available_bytes), (Some(55), Some(6), Some(40)));
        let dir = fs_stats(Some(&info), Some(DiskUsage { bytes: 8, inodes: 2 }), now);
        assert_eq!((dir.used_bytes, dir.inodes_used, dir.capacity_bytes), (Some(8), Some(2), Some(100)));
    }
}
