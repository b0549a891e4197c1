//! Start-up host preparation against the in-memory [`FakeSysctl`]: which
//! sysctls each setting writes, that equal values are not rewritten, and
//! that a read-only `nf_conntrack_max` (a kube-proxy in a network
//! namespace) is a warning naming it, not a failure.

use std::path::Path;
use std::time::Duration;

use proxy::IpFamily;
use proxy::app::host_setup::{Note, ROUTE_LOCALNET, apply_conntrack, apply_route_localnet};
use proxy_config::{KubeProxyConfiguration, ProxyMode};
use test_support::proxy::FakeSysctl;

const MAX: &str = "net/netfilter/nf_conntrack_max";
const ESTABLISHED: &str = "net/netfilter/nf_conntrack_tcp_timeout_established";
const CLOSE_WAIT: &str = "net/netfilter/nf_conntrack_tcp_timeout_close_wait";

#[test]
fn conntrack_sysctls_in_a_network_namespace() {
    let mut s = FakeSysctl::with(&[(MAX, "262144"), (ESTABLISHED, "432000"), (CLOSE_WAIT, "60")]);
    s.read_only.push(MAX.into());
    let mut c = KubeProxyConfiguration::default().conntrack;
    c.max_per_core = 32768;
    c.min = 131072;
    c.tcp_established_timeout = Duration::from_secs(86400);
    c.tcp_close_wait_timeout = Duration::from_secs(3600);
    // No /sys here: the hash size cannot be read or written either.
    let notes = apply_conntrack(&c, 2, &mut s, Path::new("/nonexistent-sys"));
    assert_eq!(s.writes, [(ESTABLISHED.to_string(), "86400".to_string()), (CLOSE_WAIT.to_string(), "3600".to_string())]);
    let warnings: Vec<&String> = notes
        .iter()
        .filter_map(|n| match n {
            Note::Warning(w) => Some(w),
            Note::Set { .. } => None,
        })
        .collect();
    assert_eq!(warnings.len(), 2, "{notes:?}");
    assert!(warnings[0].contains(MAX), "{}", warnings[0]);
    assert!(warnings[1].contains("hash size"), "{}", warnings[1]);
}

#[test]
fn route_localnet_through_the_trait() {
    let mut s = FakeSysctl::with(&[(ROUTE_LOCALNET, "0")]);
    apply_route_localnet(ProxyMode::IPTables, IpFamily::V4, true, None, &mut s);
    assert_eq!(s.values[ROUTE_LOCALNET], "1");
    let mut s = FakeSysctl::with(&[(ROUTE_LOCALNET, "0")]);
    apply_route_localnet(ProxyMode::NFTables, IpFamily::V4, true, None, &mut s);
    assert!(s.writes.is_empty(), "nftables mode never serves NodePorts on localhost");
}
