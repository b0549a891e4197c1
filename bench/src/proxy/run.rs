//! One proxy under test: started `restarts` times on a flushed ruleset (each
//! first sync is a full sync), then `changes` one-Service endpoint changes
//! timed from the API write until the proxy reports the sync that programmed
//! it (for the iptables modes that sync is a full rewrite too), then memory
//! and CPU. Stopped with SIGTERM.

use std::fs::File;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::objects;
use crate::probe::{self, ProcStats, SyncHistogram};

pub const METRICS_ADDR: &str = "127.0.0.1:10249";
pub const NODE_NAME: &str = "knode-bench-proxy";

/// A proxy configuration to benchmark.
#[derive(Debug, Clone)]
pub struct ProxySpec {
    pub label: &'static str,
    pub binary: PathBuf,
    pub mode: &'static str,
}

impl ProxySpec {
    fn nftables(&self) -> bool {
        self.mode == "nftables"
    }
}

/// Everything measured for one proxy at one size.
#[derive(Debug, Clone, Default)]
pub struct Measurement {
    /// Duration of each first (full) sync, from the sync-duration metric.
    pub first_sync_s: Vec<f64>,
    /// Process start to the first sync done (includes listing from the API).
    pub start_to_synced_s: Vec<f64>,
    /// API write of a one-Service change to its sync done.
    pub change_e2e_s: Vec<f64>,
    /// The sync-duration metric of those syncs.
    pub change_sync_s: Vec<f64>,
    /// API write of a one-Service scale-up (one more endpoint) to its sync done.
    pub scale_e2e_s: Vec<f64>,
    /// The sync-duration metric of those syncs.
    pub scale_sync_s: Vec<f64>,
    /// Stats a few seconds after the first sync of the last start.
    pub after_sync: ProcStats,
    /// Stats at the end of the last start.
    pub end: ProcStats,
    /// Lines of rules in the kernel after the first sync.
    pub rule_lines: usize,
}

pub struct Settings<'a> {
    pub kubeconfig: &'a Path,
    pub out: &'a Path,
    pub services: usize,
    pub endpoints: usize,
    pub restarts: usize,
    pub changes: usize,
    pub timeout: Duration,
}

struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        // SIGTERM (an orderly shutdown) to the child we spawned, by its pid.
        let _ = Command::new("kill").args(["-TERM", &self.0.id().to_string()]).status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(spec: &ProxySpec, s: &Settings, run: usize) -> anyhow::Result<Running> {
    let log = s.out.join(format!("{}-{}svc-{run}.log", spec.label, s.services));
    let log = File::create(&log).with_context(|| format!("creating {}", log.display()))?;
    let child = Command::new(&spec.binary)
        .arg(format!("--kubeconfig={}", s.kubeconfig.display()))
        .arg(format!("--proxy-mode={}", spec.mode))
        .arg(format!("--hostname-override={NODE_NAME}"))
        .arg(format!("--metrics-bind-address={METRICS_ADDR}"))
        .args(["--healthz-bind-address=127.0.0.1:10256", "--conntrack-max-per-core=0"])
        .args(["--conntrack-tcp-timeout-established=0", "--conntrack-tcp-timeout-close-wait=0"])
        // A long period keeps the iptables modes (upstream's and ours) from
        // a timed full resync during a measurement.
        .arg("--iptables-sync-period=1h")
        .args(["--iptables-min-sync-period=1s", "--v=2"])
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .with_context(|| format!("starting {}", spec.binary.display()))?;
    Ok(Running(child))
}

fn histogram() -> Option<SyncHistogram> {
    probe::scrape(METRICS_ADDR).ok().as_deref().and_then(probe::sync_histogram)
}

/// Polls until the sync count exceeds `after.count`; returns the new histogram.
fn wait_sync(proc: &mut Running, after: SyncHistogram, timeout: Duration, poll: Duration) -> anyhow::Result<SyncHistogram> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(h) = histogram()
            && h.count > after.count
        {
            return Ok(h);
        }
        if let Some(st) = proc.0.try_wait()? {
            anyhow::bail!("the proxy exited ({st}) before syncing");
        }
        anyhow::ensure!(Instant::now() < deadline, "no sync within {timeout:?}");
        std::thread::sleep(poll);
    }
}

/// Waits until no sync is queued (e.g. the ones a start queues after the first).
fn wait_settled(proc: &mut Running, timeout: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    while !probe::scrape(METRICS_ADDR).map(|t| probe::settled(&t)).unwrap_or(false) {
        if let Some(st) = proc.0.try_wait()? {
            anyhow::bail!("the proxy exited ({st})");
        }
        anyhow::ensure!(Instant::now() < deadline, "syncs still queued after {timeout:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(())
}

fn contains_ip(rules: &str, ip: &str) -> bool {
    rules.match_indices(ip).any(|(i, _)| !rules[i + ip.len()..].starts_with(|c: char| c.is_ascii_digit()))
}

pub async fn measure(client: &kube::Client, spec: &ProxySpec, s: &Settings<'_>, proxy_idx: usize) -> anyhow::Result<Measurement> {
    let mut m = Measurement::default();
    let last_ip = objects::cluster_ip(client, s.services - 1).await?;
    for run in 0..s.restarts {
        probe::flush_rules()?;
        let started = Instant::now();
        let mut proc = start(spec, s, run)?;
        let first = wait_sync(&mut proc, SyncHistogram::default(), s.timeout, Duration::from_millis(20))?;
        m.start_to_synced_s.push(started.elapsed().as_secs_f64());
        m.first_sync_s.push(first.sum);
        eprintln!("  {} run {run}: first sync {:.3} s ({} s after start)", spec.label, first.sum, started.elapsed().as_secs_f64());
        let rules = probe::rules_text(spec.nftables())?;
        anyhow::ensure!(contains_ip(&rules, &last_ip), "{}: the rules lack the last Service's cluster IP {last_ip}", spec.label);
        m.rule_lines = rules.lines().count();
        let pid = proc.0.id();
        if run + 1 < s.restarts {
            continue;
        }
        std::thread::sleep(Duration::from_secs(3));
        m.after_sync = probe::proc_stats(pid)?;
        // Two kinds of one-Service change: endpoint 0 moves to a new address
        // (same count), and one endpoint is added (the count changes).
        let mut attempts = 0;
        for scale_up in [false, true] {
            let mut k = 0;
            while k < s.changes {
                attempts += 1;
                anyhow::ensure!(attempts <= 4 * s.changes, "{}: too many disturbed change measurements", spec.label);
                let i = s.services / 2 + k + usize::from(scale_up) * s.changes;
                let ip = Ipv4Addr::new(198, 18, 200 + proxy_idx as u8, attempts as u8);
                wait_settled(&mut proc, s.timeout)?;
                std::thread::sleep(Duration::from_millis(1500));
                let before = histogram().context("scraping /metrics")?;
                let t0 = Instant::now();
                objects::change_endpoint(client, i, s.endpoints, ip, scale_up).await?;
                let after = wait_sync(&mut proc, before, s.timeout, Duration::from_millis(2))?;
                let e2e = t0.elapsed().as_secs_f64();
                let sync = after.sum - before.sum;
                let rules = probe::rules_text(spec.nftables())?;
                if after.count != before.count + 1 || !contains_ip(&rules, &ip.to_string()) {
                    eprintln!("  {} change {k}: disturbed by another sync or not yet programmed, repeating", spec.label);
                    continue;
                }
                let (e2e_s, sync_s) =
                    if scale_up { (&mut m.scale_e2e_s, &mut m.scale_sync_s) } else { (&mut m.change_e2e_s, &mut m.change_sync_s) };
                e2e_s.push(e2e);
                sync_s.push(sync);
                eprintln!(
                    "  {} {} {k}: {:.1} ms end to end, sync {:.1} ms",
                    spec.label,
                    if scale_up { "scale-up" } else { "change" },
                    e2e * 1e3,
                    sync * 1e3
                );
                k += 1;
            }
        }
        m.end = probe::proc_stats(pid)?;
    }
    Ok(m)
}
