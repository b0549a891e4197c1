//! The iptables builder against expected `iptables-restore` text (shapes as
//! in upstream's iptables proxier_test.go).

use proxy::iptables::{IptablesConfig, ruleset};
use proxy::{EndpointsChangeTracker, EndpointsMap, IpFamily, NodeTopology, ServiceChangeTracker, ServicePortMap};
use test_support::proxy::*;

fn cfg() -> IptablesConfig {
    IptablesConfig {
        masquerade_all: false,
        masquerade_bit: 14,
        local_cidr: Some("10.0.0.0/8".parse().unwrap()),
        node: NodeTopology { name: "node1".into(), zone: String::new() },
        family: IpFamily::V4,
        localhost_node_ports: true,
    }
}

fn build(services: &[k8s_openapi::api::core::v1::Service], slices: &[k8s_openapi::api::discovery::v1::EndpointSlice]) -> String {
    build_with(&cfg(), services, slices)
}

fn build_with(
    cfg: &IptablesConfig,
    services: &[k8s_openapi::api::core::v1::Service],
    slices: &[k8s_openapi::api::discovery::v1::EndpointSlice],
) -> String {
    let (mut st, mut et) = (ServiceChangeTracker::new(IpFamily::V4), EndpointsChangeTracker::new(IpFamily::V4, "node1"));
    let (mut sm, mut em) = (ServicePortMap::new(), EndpointsMap::new());
    for s in services {
        st.update(None, Some(s));
    }
    for s in slices {
        et.endpoint_slice_update(s, false);
    }
    st.apply(&mut sm);
    et.apply(&mut em);
    ruleset(&sm, &em, cfg)
}

#[test]
fn cluster_ip_with_two_endpoints() {
    let text = build(
        &[cluster_ip_service("ns1", "svc1", "172.30.0.41")],
        &[slice("ns1", "svc1", 80, &[("10.180.0.1", None), ("10.180.0.2", None)])],
    );
    let nat = &text[text.find("*nat").unwrap()..];
    for line in [
        ":KUBE-SVC-XPGD46QRK7WJZT7O - [0:0]",
        ":KUBE-SEP-SXIVWICOYRO3J4NJ - [0:0]",
        "-A KUBE-SERVICES -m comment --comment \"ns1/svc1:p80 cluster IP\" -m tcp -p tcp -d 172.30.0.41 --dport 80 -j KUBE-SVC-XPGD46QRK7WJZT7O",
        "-A KUBE-SVC-XPGD46QRK7WJZT7O -m comment --comment \"ns1/svc1:p80 cluster IP\" -m tcp -p tcp -d 172.30.0.41 --dport 80 ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ",
        "-A KUBE-SVC-XPGD46QRK7WJZT7O -m comment --comment \"ns1/svc1:p80 -> 10.180.0.1:80\" -m statistic --mode random --probability 0.5000000000 -j KUBE-SEP-SXIVWICOYRO3J4NJ",
        "-A KUBE-SEP-SXIVWICOYRO3J4NJ -m comment --comment ns1/svc1:p80 -s 10.180.0.1 -j KUBE-MARK-MASQ",
        "-A KUBE-SEP-SXIVWICOYRO3J4NJ -m comment --comment ns1/svc1:p80 -m tcp -p tcp -j DNAT --to-destination 10.180.0.1:80",
        "-A KUBE-MARK-MASQ -j MARK --or-mark 0x4000",
        "-A KUBE-POSTROUTING -m comment --comment \"kubernetes service traffic requiring SNAT\" -j MASQUERADE --random-fully",
    ] {
        assert!(nat.lines().any(|l| l == line), "missing {line}\n{nat}");
    }
    let svc_rules: Vec<&str> = nat.lines().filter(|l| l.starts_with("-A KUBE-SVC-")).collect();
    assert_eq!(svc_rules.len(), 3);
    assert!(svc_rules[2].contains("-> 10.180.0.2:80\" -j KUBE-SEP-") && !svc_rules[2].contains("statistic"));
    assert!(nat.trim_end().ends_with("-j KUBE-NODEPORTS\nCOMMIT"));
}

#[test]
fn no_endpoints_rejects_in_filter() {
    let text = build(&[cluster_ip_service("ns6", "svc6", "172.30.0.46")], &[]);
    assert!(text.contains(
        "-A KUBE-SERVICES -m comment --comment \"ns6/svc6:p80 has no endpoints\" -m tcp -p tcp -d 172.30.0.46 --dport 80 -j REJECT\n"
    ));
    assert!(!text.contains("KUBE-SVC-"));
}

#[test]
fn localhost_node_ports_false_keeps_node_ports_off_loopback() {
    let jump = |c: &IptablesConfig| build_with(c, &[], &[]).lines().find(|l| l.contains("-j KUBE-NODEPORTS")).unwrap().to_string();
    let on = jump(&cfg());
    assert!(on.ends_with("-m addrtype --dst-type LOCAL -j KUBE-NODEPORTS"), "{on}");
    let off = IptablesConfig { localhost_node_ports: false, ..cfg() };
    assert!(jump(&off).ends_with("-m addrtype --dst-type LOCAL ! -d 127.0.0.0/8 -j KUBE-NODEPORTS"), "{}", jump(&off));
    let v6 = IptablesConfig { family: IpFamily::V6, ..cfg() };
    assert!(jump(&v6).ends_with("--dst-type LOCAL ! -d ::1/128 -j KUBE-NODEPORTS"), "{}", jump(&v6));
}
