//! Reacting to memory pressure between monitoring rounds.
//!
//! Upstream checks its thresholds every 10 s, and with `kernelMemcgNotification` also when the
//! root memory cgroup's usage crosses a threshold the kernel watches. This kubelet does both
//! and, between rounds, reads `memory.available` (meminfo and the root memory cgroup) twice a second: a memory
//! threshold newly met starts a round at once, so a node runs out of memory seconds sooner
//! than a 10 s poll allows. Six small file reads a second cost next to nothing.
//!
//! The kernel notification ([`MemcgNotifier`]) is cgroup v1's: an eventfd registered in the
//! root memory cgroup's `cgroup.event_control` for `memory.usage_in_bytes` crossing
//! capacity − threshold + inactive file pages (usage counts the page cache the working set
//! leaves out), re-armed every round as upstream. cgroup v2 has no such interface; there the
//! one-second read stands alone.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::io::unix::AsyncFd;

use super::observe;
use super::thresholds::{Threshold, is_met};

/// How often `memory.available` is read between rounds.
pub const WATCH_PERIOD: Duration = Duration::from_millis(500);

/// Whether a memory threshold is met in the memory figures `paths` lead to now.
///
/// With a memory cgroup, the cgroup's usage is read first: it bounds the working set from above
/// (it counts the inactive page cache too), so when even `capacity − usage` meets no threshold,
/// none is met, and the root's `memory.stat` (which the kernel sums over every cgroup on the
/// node) is not read. That is the common case, twice a second.
pub fn memory_threshold_met(thresholds: &[Threshold], paths: &observe::SignalPaths) -> bool {
    let mut memory = thresholds.iter().filter(|t| t.signal == "memory.available").peekable();
    if memory.peek().is_none() {
        return false;
    }
    // Only where the full figure would come from the cgroup too (without `memory.stat` it comes
    // from `/proc/meminfo`, which the bound does not bound).
    if let Some(cgroup) = paths.memory_cgroup.as_deref()
        && cgroup.join("memory.stat").exists()
        && let Some(at_least) = observe::memory_available_at_least(&paths.proc_root, cgroup)
        && !memory.clone().any(|t| is_met(t, at_least))
    {
        return false;
    }
    let Some(obs) = observe::memory_of(paths) else { return false };
    memory.any(|t| is_met(t, obs))
}

/// A cgroup v1 memory threshold notification.
pub struct MemcgNotifier {
    event: AsyncFd<OwnedFd>,
    /// Kept open while registered (the kernel watches this file).
    _usage: File,
}

impl MemcgNotifier {
    /// Registers for `memory.usage_in_bytes` of the memory cgroup `dir` crossing `threshold`
    /// bytes.
    pub fn register(dir: &Path, threshold: u64) -> io::Result<Self> {
        // SAFETY: eventfd returns a new descriptor or -1; nothing else is touched.
        let raw = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `raw` is a descriptor we own from here on.
        let event = unsafe { OwnedFd::from_raw_fd(raw) };
        let usage = File::open(dir.join("memory.usage_in_bytes"))?;
        let mut control = std::fs::OpenOptions::new().write(true).open(dir.join("cgroup.event_control"))?;
        control.write_all(format!("{} {} {threshold}", event.as_raw_fd(), usage.as_raw_fd()).as_bytes())?;
        // SAFETY: an `OwnedFd` is a valid descriptor that stays open, the same one, for as long
        // as it is owned, and the `AsyncFd` owns it.
        let event = unsafe { AsyncFd::register(event) }.map_err(io::Error::from)?;
        Ok(MemcgNotifier { event, _usage: usage })
    }

    /// Waits for the kernel to signal the crossing.
    pub async fn crossed(&self) -> io::Result<()> {
        loop {
            let mut guard = self.event.readable().await?;
            let mut buf = [0u8; 8];
            let mut f = std::mem::ManuallyDrop::new(
                // SAFETY: a `File` view of our eventfd for one read; ManuallyDrop keeps it open.
                unsafe { File::from_raw_fd(self.event.get_ref().as_raw_fd()) },
            );
            match f.read(&mut buf) {
                Ok(_) => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => guard.clear_ready(),
                Err(e) => return Err(e),
            }
        }
    }
}

/// The root memory cgroup of a v1 host (`<mount>/memory`), when there is one.
pub fn v1_root_memory_cgroup(cgroup_mount: &Path) -> Option<PathBuf> {
    let dir = cgroup_mount.join("memory");
    dir.join("cgroup.event_control").exists().then_some(dir)
}

/// The usage at which the memory threshold is crossed: capacity − threshold + inactive file
/// pages of the root cgroup (upstream's `memoryThresholdNotifier.UpdateThreshold`).
pub fn usage_threshold(thresholds: &[Threshold], proc_root: &Path, memory_cgroup: &Path) -> Option<u64> {
    let obs = observe::memory_from_cgroup(proc_root, memory_cgroup)?;
    let t = thresholds.iter().find(|t| t.signal == "memory.available")?;
    let quantity = t.value.quantity_for(obs.capacity);
    u64::try_from(obs.capacity - quantity + observe::inactive_file(memory_cgroup)?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use kubelet_config::eviction::parse_threshold;

    fn threshold(v: &str) -> Threshold {
        Threshold {
            signal: "memory.available".into(),
            value: parse_threshold("memory.available", v).unwrap().unwrap(),
            grace_period: None,
            min_reclaim: None,
        }
    }

    #[test]
    fn a_met_memory_threshold_is_seen_in_meminfo() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("meminfo"), "MemTotal: 8000000 kB\nMemFree: 100000 kB\nInactive(file): 50000 kB\n").unwrap();
        let paths = observe::SignalPaths {
            proc_root: dir.path().into(),
            node_fs: dir.path().into(),
            image_fs: dir.path().into(),
            memory_cgroup: None,
        };
        assert!(memory_threshold_met(&[threshold("200Mi")], &paths));
        assert!(!memory_threshold_met(&[threshold("100Mi")], &paths));
        assert!(!memory_threshold_met(&[], &paths));
    }

    #[test]
    fn the_cgroup_usage_bound_decides_without_memory_stat_when_far_from_the_threshold() {
        let dir = tempfile::tempdir().unwrap();
        let cgroup = dir.path().join("memory");
        std::fs::create_dir(&cgroup).unwrap();
        std::fs::write(dir.path().join("meminfo"), "MemTotal: 1048576 kB\n").unwrap();
        let paths = observe::SignalPaths {
            proc_root: dir.path().into(),
            node_fs: dir.path().into(),
            image_fs: dir.path().into(),
            memory_cgroup: Some(cgroup.clone()),
        };
        // 1 GiB of memory, 600 MiB used: at least 424 MiB available whatever the page cache.
        std::fs::write(cgroup.join("memory.usage_in_bytes"), format!("{}\n", 600u64 << 20)).unwrap();
        // memory.stat is a directory here: present, but it cannot be read. The bound decides
        // alone while far from the threshold; within reach, the full figure fails to read.
        std::fs::create_dir(cgroup.join("memory.stat")).unwrap();
        assert!(!memory_threshold_met(&[threshold("100Mi")], &paths), "decided by the bound");
        assert!(!memory_threshold_met(&[threshold("500Mi")], &paths), "unreadable memory.stat: not observed, not met");
        std::fs::remove_dir(cgroup.join("memory.stat")).unwrap();
        std::fs::write(cgroup.join("memory.stat"), format!("total_inactive_file {}\n", 200u64 << 20)).unwrap();
        assert!(!memory_threshold_met(&[threshold("500Mi")], &paths), "624 MiB available once the page cache is left out");
        assert!(memory_threshold_met(&[threshold("700Mi")], &paths));
    }

    /// On a cgroup v1 host, as root: a process in a test cgroup filling a tmpfs file past the
    /// registered usage wakes the notifier.
    #[tokio::test]
    async fn the_kernel_signals_a_v1_threshold_crossing() {
        let Some(root) = v1_root_memory_cgroup(Path::new("/sys/fs/cgroup")) else {
            eprintln!("skipped: no cgroup v1 memory hierarchy");
            return;
        };
        let dir = root.join(format!("knode-memcg-test-{}", std::process::id()));
        if std::fs::create_dir(&dir).is_err() {
            eprintln!("skipped: cannot create a memory cgroup (not root?)");
            return;
        }
        let usage: u64 = std::fs::read_to_string(dir.join("memory.usage_in_bytes")).unwrap().trim().parse().unwrap();
        let notifier = MemcgNotifier::register(&dir, usage + (2 << 20)).unwrap();
        let file = format!("/dev/shm/knode-memcg-test-{}", std::process::id());
        let script = format!("echo $$ > {}/cgroup.procs && head -c 8388608 /dev/zero > {file}", dir.display());
        let status = std::process::Command::new("sh").args(["-c", &script]).status().unwrap();
        assert!(status.success());
        let woke = tokio::time::timeout(Duration::from_secs(5), notifier.crossed()).await;
        let _ = std::fs::remove_file(&file);
        // The charge stays with the cgroup until the file goes; then it can be removed.
        let _ = std::fs::remove_dir(&dir);
        assert!(woke.is_ok(), "no notification within 5 s");
    }
}
