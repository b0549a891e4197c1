use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use serde_json::json;

use super::*;
use crate::tracker::{EndpointsChangeTracker, ServiceChangeTracker};

fn udp_service() -> Service {
    serde_json::from_value(json!({
        "metadata": {"namespace": "ns", "name": "dns"},
        "spec": {"type": "NodePort", "clusterIP": "198.19.0.10",
                 "ports": [{"name": "dns", "port": 53, "protocol": "UDP", "nodePort": 30053}]}
    }))
    .unwrap()
}

fn slice(ips: &[&str]) -> EndpointSlice {
    serde_json::from_value(json!({
        "metadata": {"namespace": "ns", "name": "dns-1", "labels": {"kubernetes.io/service-name": "dns"}},
        "addressType": "IPv4",
        "endpoints": ips.iter().map(|ip| json!({"addresses": [ip]})).collect::<Vec<_>>(),
        "ports": [{"name": "dns", "port": 5353, "protocol": "UDP"}],
    }))
    .unwrap()
}

struct World {
    st: ServiceChangeTracker,
    et: EndpointsChangeTracker,
    services: ServicePortMap,
    endpoints: EndpointsMap,
}

impl World {
    fn new() -> Self {
        World {
            st: ServiceChangeTracker::new(IpFamily::V4),
            et: EndpointsChangeTracker::new(IpFamily::V4, "node1"),
            services: Default::default(),
            endpoints: Default::default(),
        }
    }

    /// Applies pending changes; returns the stale entries.
    fn sync(&mut self) -> Vec<Deletion> {
        let (sb, eb) = (self.services.clone(), self.endpoints.clone());
        let mut changed: BTreeSet<NamespacedName> = self.st.apply(&mut self.services);
        changed.extend(self.et.apply(&mut self.endpoints));
        stale_udp_entries(&sb, &eb, &self.services, &self.endpoints, &changed)
    }
}

#[test]
fn first_endpoint_clears_service_ip_and_node_port() {
    let mut w = World::new();
    w.st.update(None, Some(&udp_service()));
    assert!(w.sync().is_empty());
    w.et.endpoint_slice_update(&slice(&["198.18.130.2"]), false);
    let d = w.sync();
    assert_eq!(
        d,
        [
            Deletion::ServiceIp { ip: "198.19.0.10".parse().unwrap(), protocol: Protocol::Udp },
            Deletion::NodePort { port: 30053, family: IpFamily::V4, protocol: Protocol::Udp },
        ]
    );
    assert_eq!(d[0].args().join(" "), "-p udp -f ipv4 --orig-dst 198.19.0.10");
    assert_eq!(d[1].args().join(" "), "-p udp -f ipv4 --dport 30053");
}

#[test]
fn removed_endpoint_clears_its_nat_entries() {
    let mut w = World::new();
    w.st.update(None, Some(&udp_service()));
    w.et.endpoint_slice_update(&slice(&["198.18.130.2", "198.18.130.3"]), false);
    w.sync();
    w.et.endpoint_slice_update(&slice(&["198.18.130.3"]), false);
    let d = w.sync();
    let ep: IpAddr = "198.18.130.2".parse().unwrap();
    assert_eq!(
        d,
        [
            Deletion::Nat { origin: "198.19.0.10".parse().unwrap(), endpoint: ep, protocol: Protocol::Udp },
            Deletion::NodePortNat { port: 30053, endpoint: ep, protocol: Protocol::Udp },
        ]
    );
    assert_eq!(d[0].args().join(" "), "-p udp -f ipv4 --orig-dst 198.19.0.10 --dst-nat 198.18.130.2");
    // Deleting the service makes every endpoint's entries stale.
    w.st.update(Some(&udp_service()), None);
    assert_eq!(w.sync().len(), 2);
}

#[test]
fn tcp_services_are_ignored() {
    let mut w = World::new();
    let mut svc = udp_service();
    svc.spec.as_mut().unwrap().ports.as_mut().unwrap()[0].protocol = Some("TCP".into());
    w.st.update(None, Some(&svc));
    let mut s = slice(&["198.18.130.2"]);
    s.ports.as_mut().unwrap()[0].protocol = Some("TCP".into());
    w.et.endpoint_slice_update(&s, false);
    assert!(w.sync().is_empty());
}
