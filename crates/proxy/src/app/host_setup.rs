//! Start-up host preparation (upstream `cmd/kube-proxy/app/conntrack.go`,
//! `server_linux.go` and the iptables proxier's sysctl checks): the
//! conntrack table size and TCP/UDP timeouts from `conntrack`,
//! `route_localnet` for NodePorts on localhost (iptables mode), the
//! br_netfilter check, and `oomScoreAdj`. Everything goes through the
//! [`Sysctl`] trait and injected roots; nothing here is fatal — each
//! failure is a [`Note::Warning`] for the caller to log (a kube-proxy in a
//! network namespace cannot raise `nf_conntrack_max`, and without
//! CAP_SYS_RESOURCE it cannot lower its OOM score).

use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use proxy_config::{KubeProxyConfiguration, KubeProxyConntrackConfiguration, ProxyMode};

use crate::net::IpFamily;
use crate::sysctl::{Sysctl, ensure_int};

/// Where the conntrack hash size is (not under /proc/sys; global to the host).
pub const HASHSIZE_PATH: &str = "module/nf_conntrack/parameters/hashsize";
/// The sysctl (relative to `/proc/sys`) that lets IPv4 NodePorts answer on 127.0.0.1.
pub const ROUTE_LOCALNET: &str = "net/ipv4/conf/all/route_localnet";
/// The sysctl (relative to `/proc/sys`) that sends bridged traffic through iptables;
/// read only, to warn when br_netfilter is missing.
pub const BRIDGE_NF_CALL_IPTABLES: &str = "net/bridge/bridge-nf-call-iptables";

/// What one step did, for the caller to log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Note {
    /// A tunable was changed to `value`.
    Set {
        /// The sysctl name under `/proc/sys`, or the full path of a file written outside it.
        name: String,
        /// The value written, as text.
        value: String,
    },
    /// A step failed or found the host misconfigured; the message to log at warning.
    Warning(String),
}

/// `nf_conntrack_max` upstream wants: `maxPerCore × CPUs`, at least `min`;
/// `None` (leave as is) when `maxPerCore` is 0.
pub fn conntrack_max(cfg: &KubeProxyConntrackConfiguration, cpus: usize) -> Option<i64> {
    if cfg.max_per_core <= 0 {
        return None;
    }
    let scaled = i64::from(cfg.max_per_core) * i64::try_from(cpus).unwrap_or(1);
    Some(scaled.max(i64::from(cfg.min)))
}

fn ensure(s: &mut dyn Sysctl, name: &str, value: i64, notes: &mut Vec<Note>) {
    match ensure_int(s, name, value) {
        Ok(true) => notes.push(Note::Set { name: name.to_string(), value: value.to_string() }),
        Ok(false) => {}
        Err(e) => notes.push(Note::Warning(e.to_string())),
    }
}

fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

/// Applies the `conntrack` section: table size (and the hash size, raised to
/// a quarter of it when smaller), then the timeouts that are non-zero.
/// `sys_root`: usually `/sys`.
pub fn apply_conntrack(cfg: &KubeProxyConntrackConfiguration, cpus: usize, sysctl: &mut dyn Sysctl, sys_root: &Path) -> Vec<Note> {
    let mut notes = Vec::new();
    if let Some(max) = conntrack_max(cfg, cpus) {
        ensure(sysctl, "net/netfilter/nf_conntrack_max", max, &mut notes);
        let path = sys_root.join(HASHSIZE_PATH);
        let current = std::fs::read_to_string(&path).ok().and_then(|v| v.trim().parse::<i64>().ok());
        match current {
            Some(h) if h >= max / 4 => {}
            _ => match std::fs::write(&path, (max / 4).to_string()) {
                Ok(()) => notes.push(Note::Set { name: path.display().to_string(), value: (max / 4).to_string() }),
                Err(e) => notes.push(Note::Warning(format!(
                    "cannot set the conntrack hash size {} to {} (is /sys read-only, or is this not the host network namespace?): {e}",
                    path.display(),
                    max / 4
                ))),
            },
        }
    }
    let timeouts = [
        ("net/netfilter/nf_conntrack_tcp_timeout_established", cfg.tcp_established_timeout),
        ("net/netfilter/nf_conntrack_tcp_timeout_close_wait", cfg.tcp_close_wait_timeout),
        ("net/netfilter/nf_conntrack_udp_timeout", cfg.udp_timeout),
        ("net/netfilter/nf_conntrack_udp_timeout_stream", cfg.udp_stream_timeout),
    ];
    for (name, d) in timeouts {
        if !d.is_zero() {
            ensure(sysctl, name, secs(d), &mut notes);
        }
    }
    if cfg.tcp_be_liberal {
        ensure(sysctl, "net/netfilter/nf_conntrack_tcp_be_liberal", 1, &mut notes);
    }
    notes
}

/// iptables mode, IPv4, `localhostNodePorts`, and NodePorts served on
/// loopback (`node_port_ips` `None` = every local IP): `route_localnet=1`,
/// so NodePorts answer on 127.0.0.1 as upstream's do.
pub fn apply_route_localnet(
    mode: ProxyMode,
    family: IpFamily,
    localhost_node_ports: bool,
    node_port_ips: Option<&[IpAddr]>,
    sysctl: &mut dyn Sysctl,
) -> Vec<Note> {
    let on_loopback = node_port_ips.is_none_or(|ips| ips.iter().any(IpAddr::is_loopback));
    let mut notes = Vec::new();
    if mode == ProxyMode::IPTables && family == IpFamily::V4 && localhost_node_ports && on_loopback {
        ensure(sysctl, ROUTE_LOCALNET, 1, &mut notes);
    }
    notes
}

/// Warns, as upstream, when `bridge-nf-call-iptables` is readable and not 1:
/// pods on a Linux bridge would then bypass the service rules for replies.
pub fn check_bridge_netfilter(sysctl: &dyn Sysctl) -> Vec<Note> {
    match sysctl.get(BRIDGE_NF_CALL_IPTABLES) {
        Ok(v) if v != "1" => vec![Note::Warning(format!(
            "missing br-netfilter module or unset sysctl {BRIDGE_NF_CALL_IPTABLES} (it is {v}); proxy may not work as intended"
        ))],
        _ => Vec::new(),
    }
}

/// Writes `oomScoreAdj` to `<proc_root>/self/oom_score_adj` (upstream
/// `ApplyOOMScoreAdj(0, ...)`); a failure is a warning.
pub fn apply_oom_score_adj(proc_root: &Path, value: i32) -> Vec<Note> {
    let path = proc_root.join("self/oom_score_adj");
    if std::fs::read_to_string(&path).is_ok_and(|v| v.trim() == value.to_string()) {
        return Vec::new();
    }
    match std::fs::write(&path, value.to_string()) {
        Ok(()) => vec![Note::Set { name: path.display().to_string(), value: value.to_string() }],
        Err(e) => {
            vec![Note::Warning(format!("cannot apply oomScoreAdj {value} to {}: {e} (lowering it needs CAP_SYS_RESOURCE)", path.display()))]
        }
    }
}

/// Everything above for the running `mode`, with the real roots swapped
/// for `sysctl`, `proc_root` (`/proc`) and `sys_root` (`/sys`).
pub fn prepare_host(
    cfg: &KubeProxyConfiguration,
    mode: ProxyMode,
    family: IpFamily,
    node_port_ips: Option<&[IpAddr]>,
    sysctl: &mut dyn Sysctl,
    proc_root: &Path,
    sys_root: &Path,
) -> Vec<Note> {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut notes = apply_oom_score_adj(proc_root, cfg.oom_score_adj);
    notes.extend(apply_conntrack(&cfg.conntrack, cpus, sysctl, sys_root));
    notes.extend(apply_route_localnet(mode, family, cfg.iptables.localhost_node_ports, node_port_ips, sysctl));
    notes.extend(check_bridge_netfilter(sysctl));
    notes
}

/// Logs `notes`: changes at info, problems at warning.
pub fn log_notes(notes: &[Note]) {
    for n in notes {
        match n {
            Note::Set { name, value } => tracing::info!("set {name} to {value}"),
            Note::Warning(w) => tracing::warn!("{w}"),
        }
    }
}

#[cfg(test)]
#[path = "host_setup_tests.rs"]
mod tests;
