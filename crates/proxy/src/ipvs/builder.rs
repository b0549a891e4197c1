//! Services and endpoints → the desired IPVS state (upstream
//! `syncProxyRules` of the IPVS proxier, minus the kernel calls): one
//! virtual server per ClusterIP, ExternalIP, LoadBalancer ingress IP and
//! NodePort address of each service port; its real servers (the endpoints
//! [`categorize_endpoints`] selects for the port's traffic policy); the
//! addresses to bind to `kube-ipvs0`; the ipset entries; the iptables text.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use super::ipset::{IpsetEntries, IpsetKind};
use super::{IpvsConfig, VirtualServer, VirtualServerKey, rules};
use crate::endpoints::EndpointInfo;
use crate::service::{Protocol, ServicePortInfo, ServicePortName};
use crate::topology::categorize_endpoints;
use crate::tracker::{EndpointsMap, ServicePortMap};

/// One virtual server with the real servers it should have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredService {
    /// The virtual server: address, protocol, port, scheduler and persistence.
    pub server: VirtualServer,
    /// The endpoints (`ip:port`) the Service port's traffic policy selects.
    pub real_servers: BTreeSet<SocketAddr>,
    /// The service port it belongs to (for logs).
    pub service: ServicePortName,
}

/// Everything the IPVS proxier wants the kernel to hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DesiredState {
    /// Every virtual server wanted, by address, protocol and port; the first Service port
    /// claiming one keeps it.
    pub virtual_servers: BTreeMap<VirtualServerKey, DesiredService>,
    /// Addresses on `kube-ipvs0`: cluster, external and load-balancer IPs.
    pub bind_addresses: BTreeSet<IpAddr>,
    /// The entries wanted per ipset.
    pub ipsets: IpsetEntries,
    /// `iptables-restore --noflush` input (`filter` and `nat`).
    pub iptables: String,
}

impl DesiredState {
    fn entry(&mut self, kind: IpsetKind, entry: String) {
        self.ipsets.entry(kind).or_default().insert(entry);
    }

    /// A virtual server on the service port (cluster, external, LB IPs).
    fn virtual_server(&mut self, svc: &ServicePortInfo, address: IpAddr, endpoints: &[Arc<EndpointInfo>], cfg: &IpvsConfig) {
        let key = VirtualServerKey { address, protocol: svc.protocol, port: svc.port };
        self.add_server(svc, key, endpoints, cfg);
    }

    fn add_server(&mut self, svc: &ServicePortInfo, key: VirtualServerKey, endpoints: &[Arc<EndpointInfo>], cfg: &IpvsConfig) {
        // The first service port claiming an address:port/protocol keeps it.
        self.virtual_servers.entry(key).or_insert_with(|| DesiredService {
            server: VirtualServer {
                key,
                scheduler: cfg.scheduler().to_string(),
                persistent: svc.sticky_max_age_seconds.is_some(),
                timeout: svc.sticky_max_age_seconds.unwrap_or(0),
            },
            real_servers: endpoints.iter().map(|e| SocketAddr::new(e.ip, e.port)).collect(),
            service: svc.name.clone(),
        });
    }
}

/// `ip,proto:port` (ipset `hash:ip,port` entry syntax).
fn ip_port(ip: IpAddr, protocol: Protocol, port: u16) -> String {
    format!("{ip},{}:{port}", protocol.lower())
}

/// The desired IPVS state of this family's services.
pub fn desired_state(services: &ServicePortMap, endpoints: &EndpointsMap, cfg: &IpvsConfig) -> DesiredState {
    let mut out = DesiredState::default();
    for (spn, svc) in services {
        let eps = endpoints.get(spn).map(Vec::as_slice).unwrap_or(&[]);
        let cat = categorize_endpoints(eps, svc, &cfg.node);
        let internal = if svc.internal_policy_local { &cat.local } else { &cat.cluster };
        let external = if svc.external_policy_local { &cat.local } else { &cat.cluster };
        let proto = svc.protocol;
        // Hairpin: a local endpoint reaching its own service is masqueraded.
        for ep in eps.iter().filter(|e| e.is_local) {
            let entry = format!("{},{}", ip_port(ep.ip, proto, ep.port), ep.ip);
            out.entry(IpsetKind::LoopBack, entry);
        }
        out.entry(IpsetKind::ClusterIp, ip_port(svc.cluster_ip, proto, svc.port));
        out.bind_addresses.insert(svc.cluster_ip);
        out.virtual_server(svc, svc.cluster_ip, internal, cfg);

        for ip in &svc.external_ips {
            let kind = if svc.external_policy_local { IpsetKind::ExternalIpLocal } else { IpsetKind::ExternalIp };
            out.entry(kind, ip_port(*ip, proto, svc.port));
            out.bind_addresses.insert(*ip);
            out.virtual_server(svc, *ip, external, cfg);
        }

        for ip in &svc.load_balancer_vips {
            let entry = ip_port(*ip, proto, svc.port);
            out.entry(IpsetKind::LoadBalancer, entry.clone());
            if svc.external_policy_local {
                out.entry(IpsetKind::LoadBalancerLocal, entry.clone());
            }
            if !svc.load_balancer_source_ranges.is_empty() {
                out.entry(IpsetKind::LoadBalancerFw, entry.clone());
                let mut allow_from_node = false;
                for cidr in &svc.load_balancer_source_ranges {
                    out.entry(IpsetKind::LoadBalancerSourceCidr, format!("{entry},{cidr}"));
                    allow_from_node |= cfg.node_ip.is_some_and(|n| cidr.contains(&n));
                }
                // The node reaches a VIP bound on kube-ipvs0 with the VIP as source.
                if allow_from_node {
                    out.entry(IpsetKind::LoadBalancerSourceIp, format!("{entry},{ip}"));
                }
            }
            out.bind_addresses.insert(*ip);
            out.virtual_server(svc, *ip, external, cfg);
        }

        if svc.node_port != 0 {
            let local = svc.external_policy_local;
            let port = svc.node_port.to_string();
            match proto {
                Protocol::Tcp => {
                    out.entry(IpsetKind::NodePortTcp, port.clone());
                    if local {
                        out.entry(IpsetKind::NodePortLocalTcp, port);
                    }
                }
                Protocol::Udp => {
                    out.entry(IpsetKind::NodePortUdp, port.clone());
                    if local {
                        out.entry(IpsetKind::NodePortLocalUdp, port);
                    }
                }
                Protocol::Sctp => {
                    for ip in &cfg.node_port_ips {
                        let entry = ip_port(*ip, proto, svc.node_port);
                        out.entry(IpsetKind::NodePortSctp, entry.clone());
                        if local {
                            out.entry(IpsetKind::NodePortLocalSctp, entry);
                        }
                    }
                }
            }
            for ip in cfg.node_port_ips.iter().filter(|ip| cfg.family.matches(ip)) {
                let key = VirtualServerKey { address: *ip, protocol: proto, port: svc.node_port };
                out.add_server(svc, key, external, cfg);
            }
        }
    }
    out.iptables = rules::ruleset(&out.ipsets, cfg);
    out
}
