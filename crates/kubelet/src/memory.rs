//! Handing freed heap back to the kernel (the kubelet's answer to the Go runtime's scavenger).
//!
//! A burst of pods (API lists and watch events, one decoded copy of every pod per update, CRI
//! responses, queued events) leaves glibc's heap with free chunks between live ones; glibc
//! only gives back memory at the top of its heap by itself, so the kubelet's RSS would stay at
//! the burst's peak. [`MemoryTrimmer`] calls `malloc_trim(0)` every [`TRIM_PERIOD`], which
//! returns the whole free pages inside the heap too. With one malloc arena (the binary sets
//! `M_ARENA_MAX`) a trim walks a few thousand free chunks: tens of microseconds.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// How often freed heap is handed back.
pub const TRIM_PERIOD: Duration = Duration::from_secs(5);

/// Hands the allocator's free pages back to the kernel; returns whether any were released.
/// A no-op (false) where the allocator is not glibc's.
pub fn release_freed_memory() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free pages of the allocator's own arenas.
    unsafe {
        libc::malloc_trim(0) == 1
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    false
}

/// The periodic trim task.
pub struct MemoryTrimmer {
    /// Time between trims ([`TRIM_PERIOD`] by default).
    pub period: Duration,
}

impl Default for MemoryTrimmer {
    fn default() -> Self {
        Self { period: TRIM_PERIOD }
    }
}

impl MemoryTrimmer {
    /// Trims every `period` until `shutdown`; returns how many trims released memory.
    pub async fn run(self, shutdown: CancellationToken) -> u64 {
        let mut tick = tokio::time::interval(self.period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut released = 0;
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return released,
                _ = tick.tick() => released += u64::from(release_freed_memory()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[test]
    fn freed_heap_is_handed_back() {
        // Many small blocks (below the mmap threshold, so they come from the heap), every
        // other one freed: free pages between live blocks that only a trim returns.
        let mut blocks: Vec<Vec<u8>> = (0..4096).map(|i| vec![i as u8; 16 * 1024]).collect();
        let kept: Vec<Vec<u8>> = blocks.drain(..).enumerate().filter(|(i, _)| i % 2 == 0).map(|(_, b)| b).collect();
        assert!(release_freed_memory(), "32 MiB freed in the middle of the heap");
        assert!(kept.iter().enumerate().all(|(i, b)| b[0] == (2 * i) as u8), "live blocks keep their contents");
    }

    #[tokio::test(start_paused = true)]
    async fn trims_until_shutdown() {
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(MemoryTrimmer { period: Duration::from_millis(10) }.run(shutdown.clone()));
        tokio::time::sleep(Duration::from_millis(35)).await;
        shutdown.cancel();
        let released = task.await.expect("trimmer task");
        assert!(released <= 4, "at most one trim per period: {released}");
    }
}
