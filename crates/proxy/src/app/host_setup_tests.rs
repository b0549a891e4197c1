//! Unit tests of start-up host preparation over a temporary `/proc/sys`,
//! `/proc` and `/sys`.

use std::path::Path;
use std::time::Duration;

use proxy_config::{KubeProxyConfiguration, ProxyMode};

use super::*;
use crate::sysctl::ProcSysctl;

fn write(root: &Path, name: &str, value: &str) {
    let p = root.join(name);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, value).unwrap();
}

fn read(root: &Path, name: &str) -> String {
    std::fs::read_to_string(root.join(name)).unwrap().trim().to_string()
}

#[test]
fn conntrack_max_scales_with_cpus_and_respects_min() {
    let mut c = KubeProxyConfiguration::default().conntrack;
    c.max_per_core = 32768;
    c.min = 131072;
    assert_eq!(conntrack_max(&c, 2), Some(131072));
    assert_eq!(conntrack_max(&c, 8), Some(262144));
    c.max_per_core = 0;
    assert_eq!(conntrack_max(&c, 8), None, "0 leaves the limit as is");
}

#[test]
fn conntrack_settings_are_written() {
    let dir = tempfile::tempdir().unwrap();
    let (sys, procsys) = (dir.path().join("sys"), dir.path().join("proc/sys"));
    write(&procsys, "net/netfilter/nf_conntrack_max", "65536");
    write(&procsys, "net/netfilter/nf_conntrack_tcp_timeout_established", "432000");
    write(&procsys, "net/netfilter/nf_conntrack_tcp_timeout_close_wait", "3600");
    write(&sys, HASHSIZE_PATH, "16384");
    let mut c = KubeProxyConfiguration::default().conntrack;
    c.max_per_core = 32768;
    c.min = 131072;
    c.tcp_established_timeout = Duration::from_secs(86400);
    c.tcp_close_wait_timeout = Duration::from_secs(3600);
    c.udp_timeout = Duration::ZERO;
    c.udp_stream_timeout = Duration::ZERO;
    c.tcp_be_liberal = false;
    let mut s = ProcSysctl::new(&procsys);
    let notes = apply_conntrack(&c, 4, &mut s, &sys);
    assert_eq!(read(&procsys, "net/netfilter/nf_conntrack_max"), "131072");
    assert_eq!(read(&sys, HASHSIZE_PATH), "32768", "raised to max/4");
    assert_eq!(read(&procsys, "net/netfilter/nf_conntrack_tcp_timeout_established"), "86400");
    // Unchanged values are not rewritten; zero timeouts are left alone.
    assert!(!notes.iter().any(|n| matches!(n, Note::Set { name, .. } if name.contains("close_wait"))));
    assert!(!procsys.join("net/netfilter/nf_conntrack_udp_timeout").exists());
    assert!(!notes.iter().any(|n| matches!(n, Note::Warning(_))), "{notes:?}");

    // A larger hash size is kept; a missing sysctl is a warning naming it.
    write(&sys, HASHSIZE_PATH, "1000000");
    std::fs::remove_file(procsys.join("net/netfilter/nf_conntrack_max")).unwrap();
    std::fs::remove_dir_all(procsys.join("net")).unwrap();
    let notes = apply_conntrack(&c, 4, &mut s, &sys);
    assert_eq!(read(&sys, HASHSIZE_PATH), "1000000");
    assert!(notes.iter().any(|n| matches!(n, Note::Warning(w) if w.contains("nf_conntrack_max"))), "{notes:?}");
}

#[test]
fn route_localnet_only_for_iptables_ipv4_loopback_node_ports() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), ROUTE_LOCALNET, "0");
    let mut s = ProcSysctl::new(dir.path());
    let lo: Vec<IpAddr> = vec!["127.0.0.1".parse().unwrap()];
    let node: Vec<IpAddr> = vec!["198.18.144.1".parse().unwrap()];
    for (mode, family, localhost, ips) in [
        (ProxyMode::NFTables, IpFamily::V4, true, None),
        (ProxyMode::IPTables, IpFamily::V6, true, None),
        (ProxyMode::IPTables, IpFamily::V4, false, None),
        (ProxyMode::IPTables, IpFamily::V4, true, Some(node.as_slice())),
    ] {
        assert!(apply_route_localnet(mode, family, localhost, ips, &mut s).is_empty());
        assert_eq!(read(dir.path(), ROUTE_LOCALNET), "0", "{mode:?} {family:?}");
    }
    let notes = apply_route_localnet(ProxyMode::IPTables, IpFamily::V4, true, Some(&lo), &mut s);
    assert_eq!(notes.len(), 1);
    assert_eq!(read(dir.path(), ROUTE_LOCALNET), "1");
    write(dir.path(), ROUTE_LOCALNET, "0");
    apply_route_localnet(ProxyMode::IPTables, IpFamily::V4, true, None, &mut s);
    assert_eq!(read(dir.path(), ROUTE_LOCALNET), "1");
}

#[test]
fn bridge_netfilter_warning() {
    let dir = tempfile::tempdir().unwrap();
    let s = ProcSysctl::new(dir.path());
    assert!(check_bridge_netfilter(&s).is_empty(), "module absent: silent, as upstream");
    write(dir.path(), BRIDGE_NF_CALL_IPTABLES, "0\n");
    let notes = check_bridge_netfilter(&s);
    assert!(matches!(&notes[..], [Note::Warning(w)] if w.contains("br-netfilter")));
    write(dir.path(), BRIDGE_NF_CALL_IPTABLES, "1\n");
    assert!(check_bridge_netfilter(&s).is_empty());
}

#[test]
fn oom_score_adj_written_or_warned() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "self/oom_score_adj", "0\n");
    assert_eq!(apply_oom_score_adj(dir.path(), -999).len(), 1);
    assert_eq!(read(dir.path(), "self/oom_score_adj"), "-999");
    assert!(apply_oom_score_adj(dir.path(), -999).is_empty(), "already set");
    let missing = dir.path().join("nope");
    let notes = apply_oom_score_adj(&missing, -999);
    assert!(matches!(&notes[..], [Note::Warning(w)] if w.contains("oom_score_adj")), "{notes:?}");
}

#[test]
fn prepare_host_runs_every_step() {
    let dir = tempfile::tempdir().unwrap();
    let (procfs, sys) = (dir.path().join("proc"), dir.path().join("sys"));
    write(&procfs, "self/oom_score_adj", "0");
    write(&procfs, "sys/net/bridge/bridge-nf-call-iptables", "0");
    let mut cfg = KubeProxyConfiguration { oom_score_adj: -999, ..Default::default() };
    cfg.conntrack.max_per_core = 0;
    cfg.conntrack.tcp_established_timeout = Duration::ZERO;
    cfg.conntrack.tcp_close_wait_timeout = Duration::ZERO;
    cfg.conntrack.udp_timeout = Duration::ZERO;
    cfg.conntrack.udp_stream_timeout = Duration::ZERO;
    cfg.conntrack.tcp_be_liberal = false;
    let mut s = ProcSysctl::new(procfs.join("sys"));
    let notes = prepare_host(&cfg, ProxyMode::IPTables, IpFamily::V4, None, &mut s, &procfs, &sys);
    assert_eq!(read(&procfs, "self/oom_score_adj"), "-999");
    // route_localnet did not exist: a warning, not an error; br_netfilter: a warning.
    let warnings = notes.iter().filter(|n| matches!(n, Note::Warning(_))).count();
    assert_eq!(warnings, 2, "{notes:?}");
}
