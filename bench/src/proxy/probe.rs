//! What the proxy benchmark observes from outside a proxy: its `/metrics`
//! (the sync-duration histogram both upstream and knode export), its
//! `/proc/<pid>` memory and CPU, and the rules in the kernel (`iptables-save`,
//! `nft list ruleset`) of the network namespace the benchmark runs in.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

use anyhow::Context;

/// `kubeproxy_sync_proxy_rules_duration_seconds` `_count` and `_sum`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct SyncHistogram {
    pub count: u64,
    pub sum: f64,
}

const SYNC_METRIC: &str = "kubeproxy_sync_proxy_rules_duration_seconds";

/// `GET /metrics` on `addr` (HTTP/1.0: no chunking, the server closes).
pub fn scrape(addr: &str) -> anyhow::Result<String> {
    let mut s = TcpStream::connect(addr).with_context(|| format!("connecting to {addr}"))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    s.write_all(b"GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")?;
    let mut body = String::new();
    s.read_to_string(&mut body).with_context(|| format!("reading /metrics from {addr}"))?;
    Ok(body)
}

/// The value of series `name`, unlabelled or (as upstream 1.37 labels its sync metrics)
/// `name{ip_family="IPv4"}`: the benchmark is IPv4 only.
fn series<'t>(text: &'t str, name: &str) -> Option<&'t str> {
    let plain = format!("{name} ");
    let ipv4 = format!("{name}{{ip_family=\"IPv4\"}} ");
    text.lines().find_map(|l| l.strip_prefix(plain.as_str()).or_else(|| l.strip_prefix(ipv4.as_str()))).map(str::trim)
}

/// The sync histogram in a metrics text, if present.
pub fn sync_histogram(text: &str) -> Option<SyncHistogram> {
    let value = |suffix: &str| series(text, &format!("{SYNC_METRIC}_{suffix}"));
    Some(SyncHistogram { count: value("count")?.parse::<f64>().ok()? as u64, sum: value("sum")?.parse().ok()? })
}

/// A sample without labels (`name value`) or for IPv4, e.g. a gauge.
pub fn sample(text: &str, name: &str) -> Option<f64> {
    series(text, name)?.parse().ok()
}

/// No sync is queued: the last sync finished after the last change was
/// queued (both gauges exist upstream since 1.19 and in knode).
pub fn settled(text: &str) -> bool {
    let queued = sample(text, "kubeproxy_sync_proxy_rules_last_queued_timestamp_seconds");
    let synced = sample(text, "kubeproxy_sync_proxy_rules_last_timestamp_seconds");
    match (queued, synced) {
        (Some(q), Some(s)) => s >= q,
        _ => true,
    }
}

/// Memory and CPU of a process from `/proc`.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcStats {
    pub rss_kib: u64,
    pub hwm_kib: u64,
    /// utime + stime of the process itself, seconds.
    pub cpu_s: f64,
    /// cutime + cstime: its waited-for children (`iptables-restore`, `nft`).
    pub children_cpu_s: f64,
}

pub fn proc_stats(pid: u32) -> anyhow::Result<ProcStats> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).with_context(|| format!("reading /proc/{pid}/status"))?;
    let kib = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .unwrap_or(0)
    };
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).with_context(|| format!("reading /proc/{pid}/stat"))?;
    // Fields after the parenthesised command name; utime is field 14 overall.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<f64> = rest.split_whitespace().map(|v| v.parse().unwrap_or(0.0)).collect();
    let tick = 100.0; // USER_HZ on Linux
    let field = |n: usize| f.get(n - 3).copied().unwrap_or(0.0) / tick;
    Ok(ProcStats { rss_kib: kib("VmRSS:"), hwm_kib: kib("VmHWM:"), cpu_s: field(14) + field(15), children_cpu_s: field(16) + field(17) })
}

/// The kernel's rules as text: `iptables-save` (both tables) or the nftables ruleset.
pub fn rules_text(nftables: bool) -> anyhow::Result<String> {
    let out = if nftables { Command::new("nft").args(["list", "ruleset"]).output() } else { Command::new("iptables-save").output() }
        .context("dumping the rules")?;
    anyhow::ensure!(out.status.success(), "dumping the rules: {}", String::from_utf8_lossy(&out.stderr));
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Removes every rule in this network namespace (between proxy runs).
pub fn flush_rules() -> anyhow::Result<()> {
    let out = Command::new("nft").args(["flush", "ruleset"]).output().context("running nft")?;
    anyhow::ensure!(out.status.success(), "nft flush ruleset: {}", String::from_utf8_lossy(&out.stderr));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_sync_histogram() {
        let text = "# TYPE kubeproxy_sync_proxy_rules_duration_seconds histogram\n\
            kubeproxy_sync_proxy_rules_duration_seconds_bucket{le=\"0.001\"} 0\n\
            kubeproxy_sync_proxy_rules_duration_seconds_sum 1.25\n\
            kubeproxy_sync_proxy_rules_duration_seconds_count 3\n";
        assert_eq!(sync_histogram(text), Some(SyncHistogram { count: 3, sum: 1.25 }));
        assert_eq!(sync_histogram("other_metric 1\n"), None);
        let gauges = "kubeproxy_sync_proxy_rules_last_queued_timestamp_seconds 1.7e+09\n\
            kubeproxy_sync_proxy_rules_last_timestamp_seconds 1.6e+09\n";
        assert!(!settled(gauges));
        assert!(settled("kubeproxy_sync_proxy_rules_last_timestamp_seconds 1\n"));
        // Upstream 1.37 labels them by IP family; the IPv4 series counts.
        let labelled = "kubeproxy_sync_proxy_rules_duration_seconds_sum{ip_family=\"IPv4\"} 0.5\n\
            kubeproxy_sync_proxy_rules_duration_seconds_count{ip_family=\"IPv4\"} 1\n\
            kubeproxy_sync_proxy_rules_duration_seconds_sum{ip_family=\"IPv6\"} 0.1\n\
            kubeproxy_sync_proxy_rules_duration_seconds_count{ip_family=\"IPv6\"} 4\n";
        assert_eq!(sync_histogram(labelled), Some(SyncHistogram { count: 1, sum: 0.5 }));
    }
}
