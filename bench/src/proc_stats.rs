//! Process statistics from `/proc`, shared by the standalone and cluster benchmarks: RSS (`VmRSS`), peak RSS
//! (`VmHWM`), threads, and CPU seconds (utime + stime over `CLK_TCK`), and finding a running
//! process by its executable and a command-line argument (the upstream kubelet the harness
//! started). Read-only: never signals anything. Each benchmark binary uses a part of it.
#![allow(dead_code)]

use serde::{Deserialize, Serialize};

/// Memory, threads and CPU of one process at one moment.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize)]
pub struct ProcSample {
    pub rss_kib: u64,
    pub hwm_kib: u64,
    pub threads: u64,
    /// utime + stime since the process started, in seconds.
    pub cpu_s: f64,
}

/// Clock ticks per second for `/proc/<pid>/stat` (`getconf CLK_TCK`).
pub fn clock_ticks() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

/// Reads `/proc/<pid>/status` and `/proc/<pid>/stat`.
pub fn sample(pid: u32, ticks: f64) -> anyhow::Result<ProcSample> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // After the parenthesised command name: state is field 3, utime and stime fields 14 and 15.
    let after = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or_default();
    let nums: Vec<u64> = after.split_whitespace().skip(1).map(|f| f.parse().unwrap_or(0)).collect();
    let cpu_ticks = nums.get(11).copied().unwrap_or(0) + nums.get(12).copied().unwrap_or(0);
    Ok(ProcSample { rss_kib: field("VmRSS:"), hwm_kib: field("VmHWM:"), threads: field("Threads:"), cpu_s: cpu_ticks as f64 / ticks })
}

/// Copies `/proc/<pid>/smaps_rollup` (RSS split into anonymous, file-backed and shared memory) to
/// `to`, for reading where a figure's memory went; best effort, a failure is only reported.
pub fn save_smaps_rollup(pid: u32, to: &std::path::Path) {
    if let Err(e) = std::fs::copy(format!("/proc/{pid}/smaps_rollup"), to) {
        eprintln!("  cannot save /proc/{pid}/smaps_rollup to {}: {e}", to.display());
    }
}

/// CPU seconds of `pid`, 0 when it cannot be read.
pub fn cpu_s(pid: Option<u32>, ticks: f64) -> f64 {
    pid.and_then(|p| sample(p, ticks).ok()).map_or(0.0, |s| s.cpu_s)
}

/// The PID of the process running `exe` with `arg` among its arguments, and its arguments.
pub fn find_process(exe: &str, arg: &str) -> Option<(u32, Vec<String>)> {
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(raw) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let args: Vec<String> = raw.split(|b| *b == 0).filter(|a| !a.is_empty()).map(|a| String::from_utf8_lossy(a).into_owned()).collect();
        if args.first().map(String::as_str) == Some(exe) && args.iter().any(|a| a == arg) {
            return Some((pid, args));
        }
    }
    None
}

/// Our containerd's PID (from `hack/node-env.sh`'s pidfile).
pub fn containerd_pid() -> Option<u32> {
    let file = std::env::var("KNODE_CONTAINERD_PIDFILE").unwrap_or_else(|_| "/run/knode/containerd.pid".into());
    std::fs::read_to_string(file).ok()?.trim().parse().ok()
}

/// The 1-, 5- and 15-minute load averages.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg").map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" ")).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_and_finds_this_process() {
        let s = sample(std::process::id(), clock_ticks()).unwrap();
        assert!(s.rss_kib > 0 && s.threads >= 1 && s.hwm_kib >= s.rss_kib);
        assert!(find_process("/nonexistent/exe", "--x").is_none());
    }
}
