//! Stale UDP conntrack entries (upstream `pkg/proxy/conntrack`): UDP has no
//! connection to break, so a client keeps talking to a removed endpoint (or
//! to the REJECT of a service that had none) until its conntrack entry is
//! deleted. [`stale_udp_entries`] computes, purely, which entries a sync made
//! stale; a [`ConntrackCleaner`] deletes them ([`ConntrackCli`] runs the
//! `conntrack` tool; the test fake lives in `test-support`).

mod cli;

use std::collections::BTreeSet;
use std::net::IpAddr;

pub use cli::ConntrackCli;

use crate::net::IpFamily;
use crate::service::{NamespacedName, Protocol, ServicePortInfo};
use crate::tracker::{EndpointsMap, ServicePortMap, service_range};

/// One `conntrack -D` filter.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Deletion {
    /// Entries to a service IP (`--orig-dst IP`): the service got its first endpoint.
    ServiceIp {
        /// A ClusterIP, external IP or load-balancer IP of the Service.
        ip: IpAddr,
        /// The Service port's protocol (UDP in practice).
        protocol: Protocol,
    },
    /// Entries to a NodePort (`--dport PORT`): likewise.
    NodePort {
        /// The Service port's `nodePort`.
        port: u16,
        /// The family whose conntrack table is cleaned (the Service's ClusterIP family).
        family: IpFamily,
        /// The Service port's protocol (UDP in practice).
        protocol: Protocol,
    },
    /// Entries to a service IP NATed to a removed endpoint (`--orig-dst IP --dst-nat EP`).
    Nat {
        /// The Service IP the client sent to (ClusterIP, external IP or load-balancer IP).
        origin: IpAddr,
        /// The removed endpoint's IP the entry was NATed to.
        endpoint: IpAddr,
        /// The Service port's protocol (UDP in practice).
        protocol: Protocol,
    },
    /// Entries to a NodePort NATed to a removed endpoint (`--dport PORT --dst-nat EP`).
    NodePortNat {
        /// The Service port's `nodePort`.
        port: u16,
        /// The removed endpoint's IP the entry was NATed to.
        endpoint: IpAddr,
        /// The Service port's protocol (UDP in practice).
        protocol: Protocol,
    },
}

impl Deletion {
    /// The `conntrack` arguments (after `-D`).
    pub fn args(&self) -> Vec<String> {
        let proto = |p: &Protocol| p.lower().to_string();
        let fam = |ip: &IpAddr| family_arg(IpFamily::of(ip)).to_string();
        match self {
            Deletion::ServiceIp { ip, protocol } => {
                vec!["-p".into(), proto(protocol), "-f".into(), fam(ip), "--orig-dst".into(), ip.to_string()]
            }
            Deletion::NodePort { port, family, protocol } => {
                vec!["-p".into(), proto(protocol), "-f".into(), family_arg(*family).into(), "--dport".into(), port.to_string()]
            }
            Deletion::Nat { origin, endpoint, protocol } => vec![
                "-p".into(),
                proto(protocol),
                "-f".into(),
                fam(origin),
                "--orig-dst".into(),
                origin.to_string(),
                "--dst-nat".into(),
                endpoint.to_string(),
            ],
            Deletion::NodePortNat { port, endpoint, protocol } => vec![
                "-p".into(),
                proto(protocol),
                "-f".into(),
                fam(endpoint),
                "--dport".into(),
                port.to_string(),
                "--dst-nat".into(),
                endpoint.to_string(),
            ],
        }
    }
}

fn family_arg(f: IpFamily) -> &'static str {
    match f {
        IpFamily::V4 => "ipv4",
        IpFamily::V6 => "ipv6",
    }
}

/// A `conntrack -D` that failed.
#[derive(Debug, thiserror::Error)]
#[error("deleting conntrack entries ({filter}): {source}")]
pub struct ConntrackError {
    /// The filter's arguments, space-separated, for the message.
    pub filter: String,
    /// Why the `conntrack` tool could not run or what it reported.
    #[source]
    pub source: crate::applier::ApplyError,
}

/// Deletes conntrack entries.
pub trait ConntrackCleaner {
    /// Deletes the entries `deletion` matches; matching none is not an error.
    fn delete(&mut self, deletion: &Deletion) -> Result<(), ConntrackError>;
}

/// Every destination IP a service port is reached on.
fn service_ips(svc: &ServicePortInfo) -> impl Iterator<Item = IpAddr> + '_ {
    std::iter::once(svc.cluster_ip).chain(svc.external_ips.iter().copied()).chain(svc.load_balancer_vips.iter().copied())
}

/// The conntrack entries that the change from (`services_before`,
/// `endpoints_before`) to (`services`, `endpoints`) made stale, for the
/// `changed` Services' UDP ports. Sorted, without duplicates.
pub fn stale_udp_entries(
    services_before: &ServicePortMap,
    endpoints_before: &EndpointsMap,
    services: &ServicePortMap,
    endpoints: &EndpointsMap,
    changed: &BTreeSet<NamespacedName>,
) -> Vec<Deletion> {
    let mut out = BTreeSet::new();
    for name in changed {
        for (spn, old_svc) in services_before.range(service_range(name)) {
            if old_svc.protocol != Protocol::Udp {
                continue;
            }
            let new_ips: BTreeSet<IpAddr> = endpoints.get(spn).into_iter().flatten().map(|e| e.ip).collect();
            for ep in endpoints_before.get(spn).into_iter().flatten() {
                if new_ips.contains(&ep.ip) && services.contains_key(spn) {
                    continue;
                }
                for origin in service_ips(old_svc) {
                    out.insert(Deletion::Nat { origin, endpoint: ep.ip, protocol: Protocol::Udp });
                }
                if old_svc.node_port != 0 {
                    out.insert(Deletion::NodePortNat { port: old_svc.node_port, endpoint: ep.ip, protocol: Protocol::Udp });
                }
            }
        }
        for (spn, svc) in services.range(service_range(name)) {
            if svc.protocol != Protocol::Udp {
                continue;
            }
            let had = endpoints_before.get(spn).is_some_and(|e| !e.is_empty());
            let has = endpoints.get(spn).is_some_and(|e| !e.is_empty());
            if had || !has {
                continue;
            }
            for ip in service_ips(svc) {
                out.insert(Deletion::ServiceIp { ip, protocol: Protocol::Udp });
            }
            if svc.node_port != 0 {
                out.insert(Deletion::NodePort { port: svc.node_port, family: IpFamily::of(&svc.cluster_ip), protocol: Protocol::Udp });
            }
        }
    }
    out.into_iter().collect()
}

#[cfg(test)]
mod tests;
