use super::*;
use proxy_config::KubeProxyConfiguration;

fn node() -> Node {
    serde_json::from_value(serde_json::json!({
        "metadata": {"name": "n1", "labels": {"topology.kubernetes.io/zone": "z1"}},
        "spec": {"podCIDR": "198.18.0.0/24"},
        "status": {"addresses": [{"type": "Hostname", "address": "n1"}, {"type": "ExternalIP", "address": "198.18.255.9"}, {"type": "InternalIP", "address": "198.18.255.1"}]}
    }))
    .unwrap()
}

fn cfg(mode: ProxyMode) -> KubeProxyConfiguration {
    let mut c = proxy_config::defaults::defaulted();
    c.mode = mode;
    c
}

#[test]
fn node_facts() {
    let n = node();
    assert_eq!(node_ips(&n), ["198.18.255.1".parse::<IpAddr>().unwrap(), "198.18.255.9".parse().unwrap()]);
    assert_eq!(pod_cidrs(&n), ["198.18.0.0/24".parse::<Cidr>().unwrap()]);
    let mut c = cfg(ProxyMode::NFTables);
    assert_eq!(node_name(&c, "Host-A\n"), "host-a");
    c.hostname_override = "n1".into();
    assert_eq!(node_name(&c, "host-a"), "n1");
}

#[test]
fn local_detectors() {
    let mut c = cfg(ProxyMode::NFTables);
    c.detect_local_mode = LocalMode::NodeCIDR;
    assert_eq!(local_detector(&c, IpFamily::V4, Some(&node())).unwrap(), LocalDetector::Cidr("198.18.0.0/24".parse().unwrap()));
    assert!(matches!(local_detector(&c, IpFamily::V6, Some(&node())), Err(SettingsError::NoPodCidr { .. })));
    c.detect_local_mode = LocalMode::ClusterCIDR;
    c.cluster_cidr = "fd00::/48, 198.18.0.0/16".into();
    assert_eq!(local_detector(&c, IpFamily::V4, None).unwrap(), LocalDetector::Cidr("198.18.0.0/16".parse().unwrap()));
    c.cluster_cidr = String::new();
    assert_eq!(local_detector(&c, IpFamily::V4, None).unwrap(), LocalDetector::None);
}

#[test]
fn node_port_addresses() {
    let mut c = cfg(ProxyMode::NFTables);
    let node_ips: Vec<IpAddr> = vec!["198.18.255.1".parse().unwrap()];
    let local: Vec<IpAddr> = vec!["127.0.0.1".parse().unwrap(), "198.18.128.1".parse().unwrap(), "198.18.255.1".parse().unwrap()];
    assert_eq!(node_port_ips(&c, IpFamily::V4, &node_ips, &local).unwrap(), None);
    c.node_port_addresses = vec!["primary".into()];
    assert_eq!(node_port_ips(&c, IpFamily::V4, &node_ips, &local).unwrap(), Some(node_ips.clone()));
    c.node_port_addresses = vec!["198.18.128.0/17".into()];
    assert_eq!(node_port_ips(&c, IpFamily::V4, &node_ips, &local).unwrap().unwrap().len(), 2);
    c.node_port_addresses = vec!["0.0.0.0/0".into()];
    assert_eq!(node_port_ips(&c, IpFamily::V4, &node_ips, &local).unwrap(), None);
}

#[test]
fn backends() {
    let topo = NodeTopology { name: "n1".into(), zone: String::new() };
    let mut c = cfg(ProxyMode::IPVS);
    c.ipvs.scheduler = "wrr".into();
    c.ipvs.tcp_timeout = std::time::Duration::from_secs(900);
    let BackendConfig::Ipvs(ipvs) = backend_config(&c, IpFamily::V4, topo.clone(), LocalDetector::None, None, None).unwrap() else {
        panic!()
    };
    assert_eq!(ipvs.cfg.scheduler, "wrr");
    assert!(ipvs.node_ports_on_all_ips);
    assert_eq!(ipvs.timeouts.tcp, 900);
    assert_eq!(sync_periods(&c).sync_period, c.ipvs.sync_period);
    assert_eq!(sync_periods_for(&c, ProxyMode::IPTables).sync_period, c.iptables.sync_period);
    c.ipvs.exclude_cidrs = vec!["10.0.0.0/33".into()];
    let err = backend_config(&c, IpFamily::V4, topo.clone(), LocalDetector::None, None, None).unwrap_err();
    assert!(err.to_string().contains("ipvs.excludeCIDRs"), "{err}");
    let c = cfg(ProxyMode::KernelSpace);
    assert!(
        matches!(backend_config(&c, IpFamily::V4, topo.clone(), LocalDetector::None, None, None), Err(SettingsError::UnsupportedMode(m)) if m == "kernelspace")
    );
    let c = cfg(ProxyMode::IPTables);
    let BackendConfig::Iptables(ic) =
        backend_config(&c, IpFamily::V4, topo, LocalDetector::Cidr("198.18.0.0/24".parse().unwrap()), None, None).unwrap()
    else {
        panic!()
    };
    assert_eq!(ic.local_cidr, Some("198.18.0.0/24".parse().unwrap()));
    assert_eq!(sync_periods(&c).min_sync_period, c.iptables.min_sync_period);
}
