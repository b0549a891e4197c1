//! The IPVS mode against fakes: the builder's desired state and
//! `iptables-restore` text for known services (shapes as in upstream's ipvs
//! proxier_test.go), and the proxier driving a [`FakeIpvs`] kernel through
//! service and endpoint changes: add, scale 0 → 3 → 0 with graceful
//! draining, session affinity, NodePort, Local traffic policy, deletion and
//! a failed sync that the next one repairs.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use proxy::app::backend::IpvsBackend;
use proxy::app::proxier::{Proxier, SyncError};
use proxy::applier::{ApplyError, RulesApplier};
use proxy::ipvs::{IpvsConfig, VirtualServerKey, desired_state};
use proxy::{EndpointsChangeTracker, EndpointsMap, IpFamily, Protocol, ServiceChangeTracker, ServicePortMap};
use serde_json::json;
use test_support::ipvs::FakeIpvs;
use test_support::proxy::{FakeConntrack, service, slice};

const NODE_IP: &str = "192.168.1.10";

fn cfg() -> IpvsConfig {
    let mut c = IpvsConfig::new(IpFamily::V4, "node1");
    c.local_cidr = Some("10.0.0.0/8".parse().unwrap());
    c.node_port_ips = vec![NODE_IP.parse().unwrap()];
    c.node_ip = Some(NODE_IP.parse().unwrap());
    c
}

fn key(ip: &str, port: u16) -> VirtualServerKey {
    VirtualServerKey { address: ip.parse().unwrap(), protocol: Protocol::Tcp, port }
}

fn node_port_service(policy: &str) -> k8s_openapi::api::core::v1::Service {
    service(
        "ns",
        "web",
        json!({"type": "NodePort", "clusterIP": "172.30.0.41", "externalTrafficPolicy": policy,
               "ports": [{"name": "p80", "port": 80, "protocol": "TCP", "nodePort": 30080}]}),
        json!({}),
    )
}

fn maps(
    services: &[k8s_openapi::api::core::v1::Service],
    slices: &[k8s_openapi::api::discovery::v1::EndpointSlice],
) -> (ServicePortMap, EndpointsMap) {
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
    (sm, em)
}

fn two_endpoints() -> k8s_openapi::api::discovery::v1::EndpointSlice {
    slice("ns", "web", 8080, &[("10.180.0.1", Some("node1")), ("10.180.0.2", Some("node2"))])
}

#[test]
fn node_port_service_desired_state_and_rules() {
    let (sm, em) = maps(&[node_port_service("Cluster")], &[two_endpoints()]);
    let d = desired_state(&sm, &em, &cfg());
    let servers: Vec<String> = d.virtual_servers.keys().map(|k| k.to_string()).collect();
    assert_eq!(servers, ["172.30.0.41:80/TCP", "192.168.1.10:30080/TCP"]);
    for ds in d.virtual_servers.values() {
        let rs: Vec<String> = ds.real_servers.iter().map(|a| a.to_string()).collect();
        assert_eq!(rs, ["10.180.0.1:8080", "10.180.0.2:8080"]);
        assert_eq!(ds.server.scheduler, "rr");
        assert!(!ds.server.persistent);
    }
    let bound: BTreeSet<IpAddr> = ["172.30.0.41".parse().unwrap()].into();
    assert_eq!(d.bind_addresses, bound, "NodePort addresses are not bound");
    let want = "\
*filter
:KUBE-FORWARD - [0:0]
-A KUBE-FORWARD -m comment --comment \"kubernetes forwarding rules\" -m mark --mark 0x4000/0x4000 -j ACCEPT
-A KUBE-FORWARD -m comment --comment \"kubernetes forwarding conntrack pod source rule\" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A KUBE-FORWARD -m comment --comment \"kubernetes forwarding conntrack pod destination rule\" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
COMMIT
*nat
:KUBE-SERVICES - [0:0]
:KUBE-POSTROUTING - [0:0]
:KUBE-FIREWALL - [0:0]
:KUBE-NODE-PORT - [0:0]
:KUBE-LOAD-BALANCER - [0:0]
:KUBE-MARK-MASQ - [0:0]
-A KUBE-POSTROUTING -m comment --comment \"Kubernetes endpoints dst ip:port, source ip for solving hairpin purpose\" -m set --match-set KUBE-LOOP-BACK dst,dst,src -j MASQUERADE
-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN
-A KUBE-POSTROUTING -j MARK --xor-mark 0x4000
-A KUBE-POSTROUTING -m comment --comment \"kubernetes service traffic requiring SNAT\" -j MASQUERADE --random-fully
-A KUBE-MARK-MASQ -j MARK --or-mark 0x4000
-A KUBE-NODE-PORT -p tcp -m comment --comment \"Kubernetes nodeport TCP port for masquerade purpose\" -m set --match-set KUBE-NODE-PORT-TCP dst -j KUBE-MARK-MASQ
-A KUBE-SERVICES -m comment --comment \"Kubernetes service cluster ip + port for masquerade purpose\" -m set --match-set KUBE-CLUSTER-IP dst,dst ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ
-A KUBE-SERVICES -m addrtype --dst-type LOCAL -j KUBE-NODE-PORT
-A KUBE-LOAD-BALANCER -j KUBE-MARK-MASQ
-A KUBE-FIREWALL -j KUBE-MARK-DROP
-A KUBE-SERVICES -m set --match-set KUBE-CLUSTER-IP dst,dst -j ACCEPT
COMMIT
";
    assert_eq!(d.iptables, want);
    let loop_back: Vec<&String> = d.ipsets.values().flatten().filter(|e| e.contains(",10.")).collect();
    assert_eq!(loop_back, ["10.180.0.1,tcp:8080,10.180.0.1"], "only the local endpoint hairpins");
}

#[test]
fn external_and_load_balancer_ips_with_source_ranges() {
    let svc = service(
        "ns",
        "lb",
        json!({"type": "LoadBalancer", "clusterIP": "172.30.0.42", "externalIPs": ["198.51.100.7"],
               "loadBalancerSourceRanges": ["192.168.1.0/24"], "sessionAffinity": "ClientIP",
               "ports": [{"name": "p80", "port": 80, "protocol": "TCP", "nodePort": 30081}]}),
        json!({"loadBalancer": {"ingress": [{"ip": "203.0.113.9"}]}}),
    );
    let mut c = cfg();
    c.scheduler = "lc".into();
    c.masquerade_all = true;
    let (sm, em) = maps(&[svc], &[]);
    let d = desired_state(&sm, &em, &c);
    let servers: Vec<String> = d.virtual_servers.keys().map(|k| k.to_string()).collect();
    assert_eq!(servers, ["172.30.0.42:80/TCP", "192.168.1.10:30081/TCP", "198.51.100.7:80/TCP", "203.0.113.9:80/TCP"]);
    for ds in d.virtual_servers.values() {
        assert!(ds.server.persistent && ds.server.timeout == 10800 && ds.server.scheduler == "lc");
        assert!(ds.real_servers.is_empty());
    }
    assert_eq!(d.bind_addresses.len(), 3, "cluster, external and LB IPs are bound");
    let t = &d.iptables;
    assert!(t.contains("-A KUBE-SERVICES -m comment --comment \"Kubernetes service lb portal\" -m set --match-set KUBE-LOAD-BALANCER dst,dst -j KUBE-LOAD-BALANCER\n"), "{t}");
    assert!(t.contains("--match-set KUBE-LOAD-BALANCER-FW dst,dst -j KUBE-FIREWALL\n"));
    assert!(t.contains("--match-set KUBE-LOAD-BALANCER-SOURCE-CIDR dst,dst,src -j RETURN\n"));
    assert!(t.contains("--match-set KUBE-LOAD-BALANCER-SOURCE-IP dst,dst,src -j RETURN\n"), "the node IP is in the range");
    assert!(t.contains("--match-set KUBE-CLUSTER-IP dst,dst -j KUBE-MARK-MASQ\n"), "masqueradeAll");
    assert!(t.contains("--match-set KUBE-EXTERNAL-IP dst,dst -m physdev ! --physdev-is-in -m addrtype ! --src-type LOCAL -j ACCEPT\n"));
    let set = |k: proxy::ipvs::IpsetKind| d.ipsets.get(&k).cloned().unwrap_or_default();
    use proxy::ipvs::IpsetKind::*;
    assert_eq!(set(LoadBalancerSourceCidr), ["203.0.113.9,tcp:80,192.168.1.0/24".to_string()].into());
    assert_eq!(set(LoadBalancerSourceIp), ["203.0.113.9,tcp:80,203.0.113.9".to_string()].into());
    assert_eq!(set(ExternalIp), ["198.51.100.7,tcp:80".to_string()].into());
}

/// Records the iptables text the proxier writes.
#[derive(Clone, Default)]
struct Iptables(Arc<Mutex<Vec<String>>>);

impl RulesApplier for Iptables {
    fn apply(&mut self, tx: &str) -> Result<(), ApplyError> {
        self.0.lock().unwrap().push(tx.to_string());
        Ok(())
    }
}

fn proxier(fake: &FakeIpvs, ipt: &Iptables) -> Proxier {
    let backend = IpvsBackend::new(cfg(), Box::new(fake.clone()), Box::new(fake.clone()));
    Proxier::new(IpFamily::V4, Box::new(backend), Box::new(ipt.clone()), Box::new(FakeConntrack::default()))
}

fn sync(p: &mut Proxier) {
    p.sync(Instant::now(), false).expect("sync");
}

fn web_slice(n: u8) -> k8s_openapi::api::discovery::v1::EndpointSlice {
    let ips: Vec<String> = (1..=n).map(|i| format!("10.180.0.{i}")).collect();
    let eps: Vec<(&str, Option<&str>)> = ips.iter().map(|ip| (ip.as_str(), Some("node2"))).collect();
    slice("ns", "web", 8080, &eps)
}

#[test]
fn scale_zero_three_zero_drains_busy_real_servers() {
    let (fake, ipt) = (FakeIpvs::default(), Iptables::default());
    let mut p = proxier(&fake, &ipt);
    let cip = key("172.30.0.41", 80);
    p.on_service(None, Some(&node_port_service("Cluster")));
    sync(&mut p);
    {
        let s = fake.state();
        assert!(s.dummy_device);
        assert!(s.bound.contains(&cip.address));
        assert!(s.virtual_servers.contains_key(&cip));
        assert!(s.ipsets["KUBE-CLUSTER-IP"].contains("172.30.0.41,tcp:80"));
        assert!(s.ipsets["KUBE-NODE-PORT-TCP"].contains("30080"));
        assert_eq!(s.ipsets.len(), 15, "every set exists");
    }
    assert!(fake.real_servers(&cip).is_empty());
    assert_eq!(ipt.0.lock().unwrap().len(), 1);

    p.on_endpoint_slice(&web_slice(3), false);
    sync(&mut p);
    let three: Vec<(String, u32)> = (1..=3).map(|i| (format!("10.180.0.{i}:8080"), 1)).collect();
    assert_eq!(fake.real_servers(&cip), three.iter().cloned().collect());
    assert_eq!(fake.real_servers(&key(NODE_IP, 30080)), three.iter().cloned().collect());

    // 10.180.0.3 has a connection open when the service scales to 0.
    fake.set_active_conns(&cip, "10.180.0.3:8080".parse().unwrap(), 2);
    p.on_endpoint_slice(&web_slice(0), false);
    sync(&mut p);
    assert_eq!(fake.real_servers(&cip), [("10.180.0.3:8080".to_string(), 0)].into(), "the busy real server drains with weight 0");
    assert!(fake.real_servers(&key(NODE_IP, 30080)).is_empty());
    fake.set_active_conns(&cip, "10.180.0.3:8080".parse().unwrap(), 0);
    sync(&mut p);
    assert!(fake.real_servers(&cip).is_empty(), "deleted once idle");
    let calls = fake.state().calls.clone();
    assert!(calls.contains(&"update-rs 172.30.0.41:80/TCP 10.180.0.3:8080 w0".to_string()), "{calls:?}");
    let calls_before = calls.len();
    sync(&mut p);
    let after = fake.state().calls.len();
    assert_eq!(after, calls_before, "an in-sync kernel gets no IPVS or address changes");
}

#[test]
fn affinity_changes_update_the_virtual_server() {
    let (fake, ipt) = (FakeIpvs::default(), Iptables::default());
    let mut p = proxier(&fake, &ipt);
    let plain = test_support::proxy::cluster_ip_service("ns", "a", "172.30.0.50");
    let mut sticky = plain.clone();
    let spec = sticky.spec.as_mut().unwrap();
    spec.session_affinity = Some("ClientIP".into());
    spec.session_affinity_config = serde_json::from_value(json!({"clientIP": {"timeoutSeconds": 600}})).unwrap();
    p.on_service(None, Some(&plain));
    sync(&mut p);
    p.on_service(Some(&plain), Some(&sticky));
    sync(&mut p);
    let k = key("172.30.0.50", 80);
    let vs = fake.state().virtual_servers[&k].0.clone();
    assert!(vs.persistent);
    assert_eq!(vs.timeout, 600);
    assert!(fake.state().calls.contains(&"update-vs 172.30.0.50:80/TCP".to_string()));

    // Deleting the service removes the server, the address and the set entry.
    p.on_service(Some(&sticky), None);
    sync(&mut p);
    let s = fake.state();
    assert!(s.virtual_servers.is_empty());
    assert!(s.bound.is_empty());
    assert!(s.ipsets["KUBE-CLUSTER-IP"].is_empty());
}

#[test]
fn local_policy_node_port_uses_local_endpoints_only() {
    let (fake, ipt) = (FakeIpvs::default(), Iptables::default());
    let mut p = proxier(&fake, &ipt);
    p.on_service(None, Some(&node_port_service("Local")));
    p.on_endpoint_slice(&two_endpoints(), false);
    sync(&mut p);
    assert_eq!(fake.real_servers(&key(NODE_IP, 30080)), [("10.180.0.1:8080".to_string(), 1)].into(), "NodePort: this node's endpoint only");
    assert_eq!(fake.real_servers(&key("172.30.0.41", 80)).len(), 2, "ClusterIP: all");
    let s = fake.state();
    assert!(s.ipsets["KUBE-NODE-PORT-LOCAL-TCP"].contains("30080"));
    let text = ipt.0.lock().unwrap().last().unwrap().clone();
    let local = text.find("KUBE-NODE-PORT-LOCAL-TCP dst -j RETURN").expect("local RETURN");
    let masq = text.find("KUBE-NODE-PORT-TCP dst -j KUBE-MARK-MASQ").expect("masquerade");
    assert!(local < masq, "the Local RETURN comes before the masquerade mark");
}

#[test]
fn failed_sync_is_reported_and_repaired_by_the_next() {
    let (fake, ipt) = (FakeIpvs::default(), Iptables::default());
    let mut p = proxier(&fake, &ipt);
    p.on_service(None, Some(&node_port_service("Cluster")));
    fake.state().fail_next = Some("boom".into());
    let err = p.sync(Instant::now(), false).unwrap_err();
    assert!(matches!(err, SyncError::Ipvs(_)), "{err}");
    assert!(err.to_string().contains("boom"));
    sync(&mut p);
    assert_eq!(fake.state().virtual_servers.len(), 2);
}
