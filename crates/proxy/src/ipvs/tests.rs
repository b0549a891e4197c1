//! Unit tests of the diff step on hand-built states (the builder's golden
//! tests, which need Service objects, are in `tests/ipvs.rs`).

use std::net::SocketAddr;

use super::*;

fn key(ip: &str, protocol: Protocol, port: u16) -> VirtualServerKey {
    VirtualServerKey { address: ip.parse().unwrap(), protocol, port }
}

fn vs(k: VirtualServerKey) -> VirtualServer {
    VirtualServer { key: k, scheduler: "rr".into(), persistent: false, timeout: 0 }
}

fn rs(addr: &str, weight: u32, active: u32) -> RealServer {
    RealServer { address: addr.parse().unwrap(), weight, active_conns: active, inactive_conns: 0 }
}

fn desired(k: VirtualServerKey, servers: &[&str]) -> DesiredState {
    let mut d = DesiredState::default();
    d.virtual_servers.insert(
        k,
        DesiredService {
            server: vs(k),
            real_servers: servers.iter().map(|s| s.parse::<SocketAddr>().unwrap()).collect(),
            service: crate::ServicePortName { service: crate::NamespacedName::new("ns", "s"), port: "p".into(), protocol: k.protocol },
        },
    );
    d.bind_addresses.insert(k.address);
    d
}

fn cfg() -> IpvsConfig {
    IpvsConfig::new(crate::IpFamily::V4, "node1")
}

#[test]
fn empty_kernel_gets_everything_added() {
    let k = key("10.0.0.1", Protocol::Tcp, 80);
    let p = plan(&desired(k, &["10.1.0.1:8080"]), &CurrentState::default(), &cfg());
    assert_eq!(
        p.operations,
        vec![
            Operation::BindAddress("10.0.0.1".parse().unwrap()),
            Operation::AddVirtualServer(vs(k)),
            Operation::AddRealServer { server: k, address: "10.1.0.1:8080".parse().unwrap(), weight: 1 },
        ]
    );
    assert_eq!(p.ipset_restore.lines().filter(|l| l.starts_with("create ")).count(), 15);
}

#[test]
fn in_sync_kernel_needs_nothing_and_changes_are_updates() {
    let k = key("10.0.0.1", Protocol::Tcp, 80);
    let want = desired(k, &["10.1.0.1:8080"]);
    let mut current = CurrentState::default();
    current.virtual_servers.insert(k, (vs(k), vec![rs("10.1.0.1:8080", 1, 0)]));
    current.bound_addresses.insert(k.address);
    assert!(plan(&want, &current, &cfg()).operations.is_empty());

    let mut sticky = want.clone();
    let d = sticky.virtual_servers.get_mut(&k).unwrap();
    d.server.persistent = true;
    d.server.timeout = 10800;
    let server = d.server.clone();
    let ops = plan(&sticky, &current, &cfg()).operations;
    assert_eq!(ops, vec![Operation::UpdateVirtualServer(server)]);
}

#[test]
fn removed_tcp_real_server_drains_then_goes() {
    let k = key("10.0.0.1", Protocol::Tcp, 80);
    let want = desired(k, &["10.1.0.1:8080"]);
    let mut current = CurrentState::default();
    current.bound_addresses.insert(k.address);
    let busy = "10.1.0.2:8080".parse().unwrap();
    current.virtual_servers.insert(k, (vs(k), vec![rs("10.1.0.1:8080", 1, 0), rs("10.1.0.2:8080", 1, 3)]));
    assert_eq!(
        plan(&want, &current, &cfg()).operations,
        vec![Operation::UpdateRealServer { server: k, address: busy, weight: 0 }],
        "weight 0 while connections remain"
    );
    current.virtual_servers.get_mut(&k).unwrap().1[1] = rs("10.1.0.2:8080", 0, 3);
    assert!(plan(&want, &current, &cfg()).operations.is_empty(), "still draining");
    current.virtual_servers.get_mut(&k).unwrap().1[1] = rs("10.1.0.2:8080", 0, 0);
    assert_eq!(plan(&want, &current, &cfg()).operations, vec![Operation::DeleteRealServer { server: k, address: busy }]);
    // Coming back while draining restores the weight.
    let back = desired(k, &["10.1.0.1:8080", "10.1.0.2:8080"]);
    current.virtual_servers.get_mut(&k).unwrap().1[1] = rs("10.1.0.2:8080", 0, 3);
    assert_eq!(plan(&back, &current, &cfg()).operations, vec![Operation::UpdateRealServer { server: k, address: busy, weight: 1 }]);
}

#[test]
fn udp_real_servers_go_at_once() {
    let k = key("10.0.0.1", Protocol::Udp, 53);
    let want = desired(k, &[]);
    let mut current = CurrentState::default();
    current.bound_addresses.insert(k.address);
    current.virtual_servers.insert(k, (vs(k), vec![rs("10.1.0.1:53", 1, 5)]));
    assert_eq!(
        plan(&want, &current, &cfg()).operations,
        vec![Operation::DeleteRealServer { server: k, address: "10.1.0.1:53".parse().unwrap() }]
    );
}

#[test]
fn stale_servers_and_addresses_go_except_excluded_and_other_family() {
    let mut current = CurrentState::default();
    let stale = key("10.0.0.9", Protocol::Tcp, 80);
    let excluded = key("192.168.5.1", Protocol::Tcp, 80);
    let v6 = key("fd00::1", Protocol::Tcp, 80);
    for k in [stale, excluded, v6] {
        current.virtual_servers.insert(k, (vs(k), vec![]));
        current.bound_addresses.insert(k.address);
    }
    let mut c = cfg();
    c.exclude_cidrs = vec!["192.168.0.0/16".parse().unwrap()];
    let ops = plan(&DesiredState::default(), &current, &c).operations;
    assert_eq!(ops, vec![Operation::DeleteVirtualServer(stale), Operation::UnbindAddress(stale.address)]);
}

#[test]
fn virtual_server_key_display() {
    assert_eq!(key("10.0.0.1", Protocol::Tcp, 80).to_string(), "10.0.0.1:80/TCP");
    assert_eq!(key("fd00::1", Protocol::Sctp, 80).to_string(), "[fd00::1]:80/SCTP");
}
