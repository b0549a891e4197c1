//! End-to-end: rules programmed through the library (no API server) into a
//! network namespace this test creates, with real `nft` / `iptables-restore`,
//! and real TCP traffic from the node namespace to backends in another one.
//! ClusterIP and NodePort reach the backend; a service without endpoints
//! refuses connections at once; endpoints scale 0 → 3 → 0; `--cleanup`
//! removes everything. Needs root (run by hack/test.sh), one at a time.

mod support;

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use proxy::IpFamily;
use proxy::app::backend::{IptablesBackend, NftablesBackend};
use proxy::app::proxier::Proxier;
use proxy::applier::cleanup::cleanup_leftovers;
use proxy::applier::{ApplyError, IptablesApplier, NftApplier, RulesApplier};
use proxy::conntrack::ConntrackCli;
use proxy::iptables::IptablesConfig;
use proxy::nftables::NftConfig;
use serde_json::json;
use support::{Netns, Outcome, Topology, connect, serve_local_addr};
use test_support::proxy::{service, slice};

const BACKEND_PORT: u16 = 8080;

fn nft_proxier(ns: &Netns) -> Proxier {
    Proxier::new(
        IpFamily::V4,
        Box::new(NftablesBackend::new(NftConfig::new(IpFamily::V4, "node1"))),
        Box::new(NftApplier::new(Some(&ns.name))),
        Box::new(ConntrackCli::new(Some(&ns.name))),
    )
}

fn iptables_proxier(ns: &Netns) -> Proxier {
    iptables_proxier_with(ns, true)
}

/// `localhost_node_ports`: `iptables.localhostNodePorts`.
fn iptables_proxier_with(ns: &Netns, localhost_node_ports: bool) -> Proxier {
    let cfg = IptablesConfig {
        masquerade_all: false,
        masquerade_bit: 14,
        local_cidr: None,
        node: proxy::NodeTopology { name: "node1".into(), zone: String::new() },
        family: IpFamily::V4,
        localhost_node_ports,
    };
    Proxier::new(
        IpFamily::V4,
        Box::new(IptablesBackend::new(cfg)),
        Box::new(IptablesApplier::new(IpFamily::V4, Some(&ns.name))),
        Box::new(ConntrackCli::new(Some(&ns.name))),
    )
}

/// `ns/web`: NodePort service on port 80 (node port 30080).
fn web_service(ip: &str) -> k8s_openapi::api::core::v1::Service {
    service(
        "ns",
        "web",
        json!({"type": "NodePort", "clusterIP": ip,
               "ports": [{"name": "p80", "port": 80, "protocol": "TCP", "nodePort": 30080}]}),
        json!({}),
    )
}

fn web_slice(ips: &[String]) -> k8s_openapi::api::discovery::v1::EndpointSlice {
    let eps: Vec<(&str, Option<&str>)> = ips.iter().map(|ip| (ip.as_str(), None)).collect();
    slice("ns", "web", i32::from(BACKEND_PORT), &eps)
}

fn sync(p: &mut Proxier) {
    p.sync(Instant::now(), false).expect("rules apply");
}

/// Refused, and fast (a REJECT, not a timeout).
fn assert_refused(ns: &Netns, addr: &str) {
    let (out, took) = connect(ns, addr);
    assert_eq!(out, Outcome::Refused, "connecting to {addr}");
    assert!(took < Duration::from_secs(1), "refusal took {took:?}");
}

/// Distinct endpoints answering over 30 connections.
fn answers(ns: &Netns, addr: &str) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    for _ in 0..30 {
        match connect(ns, addr).0 {
            Outcome::Answer(a) => {
                seen.insert(a);
            }
            other => panic!("connecting to {addr}: {other:?}"),
        }
    }
    seen
}

fn scale_zero_three_zero(t: &Topology, mut p: Proxier) {
    serve_local_addr(&t.backend, BACKEND_PORT);
    let vip = format!("{}:80", t.service_ip());
    p.on_service(None, Some(&web_service(&t.service_ip())));
    sync(&mut p);
    assert_refused(&t.node, &vip);

    let three: Vec<String> = (0..3).map(|i| t.endpoint(i)).collect();
    p.on_endpoint_slice(&web_slice(&three), false);
    sync(&mut p);
    let want: BTreeSet<String> = three.iter().map(|ip| format!("{ip}:{BACKEND_PORT}")).collect();
    assert_eq!(answers(&t.node, &vip), want, "ClusterIP spreads over the three endpoints");
    let node_port = format!("{}:30080", t.node_ip());
    assert!(want.is_superset(&answers(&t.node, &node_port)), "NodePort reaches the endpoints");

    p.on_endpoint_slice(&web_slice(&[]), false);
    sync(&mut p);
    assert_refused(&t.node, &vip);
    assert_refused(&t.node, &node_port);
}

#[test]
#[ignore = "needs root: run hack/test.sh"]
fn nftables_cluster_ip_node_port_and_scaling() {
    let t = Topology::new("nf", 130);
    let p = nft_proxier(&t.node);
    scale_zero_three_zero(&t, p);
    let table = t.node.exec(&["nft", "list", "table", "ip", "kube-proxy"]);
    assert!(table.contains("map service-ips"), "{table}");

    let report = cleanup_leftovers(Some(&t.node.name), Path::new("/proc/net"));
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_eq!(report.nft_tables, ["ip kube-proxy"]);
    assert_eq!(t.node.exec(&["nft", "list", "tables"]).trim(), "");
}

#[test]
#[ignore = "needs root: run hack/test.sh"]
fn iptables_cluster_ip_node_port_and_scaling() {
    let t = Topology::new("it", 132);
    let p = iptables_proxier(&t.node);
    scale_zero_three_zero(&t, p);
    let saved = t.node.exec(&["iptables-save"]);
    assert!(saved.contains("-A OUTPUT -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES"), "{saved}");

    let report = cleanup_leftovers(Some(&t.node.name), Path::new("/proc/net"));
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert!(!report.iptables_chains.is_empty());
    let saved = t.node.exec(&["iptables-save"]);
    assert!(!saved.contains("KUBE-"), "left behind:\n{saved}");
}

#[test]
#[ignore = "needs root: run hack/test.sh"]
fn nftables_partial_syncs_follow_endpoint_changes() {
    let t = Topology::new("np", 134);
    serve_local_addr(&t.backend, BACKEND_PORT);
    let mut p = nft_proxier(&t.node);
    let vip = format!("{}:80", t.service_ip());
    p.on_service(None, Some(&web_service(&t.service_ip())));
    p.on_endpoint_slice(&web_slice(&[t.endpoint(0)]), false);
    sync(&mut p);
    assert_eq!(connect(&t.node, &vip).0, Outcome::Answer(format!("{}:{BACKEND_PORT}", t.endpoint(0))));
    // Move to another endpoint: a partial sync replaces the endpoint map's
    // element (and the hairpin pair); nothing of the old endpoint is left.
    p.on_endpoint_slice(&web_slice(&[t.endpoint(2)]), false);
    sync(&mut p);
    assert_eq!(connect(&t.node, &vip).0, Outcome::Answer(format!("{}:{BACKEND_PORT}", t.endpoint(2))));
    std::thread::sleep(Duration::from_millis(1100));
    sync(&mut p);
    let table = t.node.exec(&["nft", "list", "table", "ip", "kube-proxy"]);
    assert!(!table.contains(&format!(" {} .", t.endpoint(0))), "stale endpoint element left:\n{table}");
    assert!(table.contains(&format!(" {0} . {0} ", t.endpoint(2))), "no hairpin pair:\n{table}");
    // nft's own error comes back typed, with its stderr.
    let err = NftApplier::new(Some(&t.node.name)).apply("add rule ip kube-proxy no-such-chain drop\n").unwrap_err();
    assert!(matches!(&err, ApplyError::Rejected { message, .. } if message.contains("No such file or directory")), "{err}");
    // Someone deleted the table: a forced full sync recreates everything.
    t.node.exec(&["nft", "delete", "table", "ip", "kube-proxy"]);
    p.sync(Instant::now(), true).expect("a forced full sync recreates the table");
    assert_eq!(connect(&t.node, &vip).0, Outcome::Answer(format!("{}:{BACKEND_PORT}", t.endpoint(2))));
}

/// `iptables.localhostNodePorts`: with `route_localnet` on (as kube-proxy
/// sets it), a NodePort answers on 127.0.0.1 by default; with `false` the
/// `KUBE-NODEPORTS` jump skips loopback, so nothing answers there while the
/// node's own address still works.
#[test]
#[ignore = "needs root: run hack/test.sh"]
fn iptables_localhost_node_ports_follow_the_setting() {
    let t = Topology::new("lh", 138);
    serve_local_addr(&t.backend, BACKEND_PORT);
    t.node.exec(&["sysctl", "-qw", "net.ipv4.conf.all.route_localnet=1"]);
    let localhost = "127.0.0.1:30080";
    let node_port = format!("{}:30080", t.node_ip());
    let want = Outcome::Answer(format!("{}:{BACKEND_PORT}", t.endpoint(0)));
    for (on, localhost_answers) in [(true, true), (false, false)] {
        let mut p = iptables_proxier_with(&t.node, on);
        p.on_service(None, Some(&web_service(&t.service_ip())));
        p.on_endpoint_slice(&web_slice(&[t.endpoint(0)]), false);
        sync(&mut p);
        assert_eq!(connect(&t.node, &node_port).0, want, "localhostNodePorts {on}");
        if localhost_answers {
            assert_eq!(connect(&t.node, localhost).0, want);
        } else {
            assert_refused(&t.node, localhost);
        }
    }
}
